package pipeline_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// An instance started with another partition count than the streams have
// (a forgotten --partitions) is refused, and the stream is left as it is;
// Reconfigure changes it.
func TestEnsureRefusesAnotherPartitionCount(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	transform := func() string {
		t.Helper()
		s, err := js.Stream(ctx, pipeline.DefaultRequestStream)
		if err != nil {
			t.Fatal(err)
		}
		if tr := s.CachedInfo().Config.SubjectTransform; tr != nil {
			return tr.Destination
		}
		return ""
	}
	if err := (pipeline.Topology{Partitions: 3}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	partitioned := transform()
	if !strings.Contains(partitioned, "partition(3,1)") {
		t.Fatalf("transform %q", partitioned)
	}
	if err := (pipeline.Topology{Partitions: 3}).Ensure(ctx, js); err != nil {
		t.Fatalf("the same topology again: %v", err)
	}
	for _, topo := range []pipeline.Topology{{}, {Partitions: 2}} {
		err := topo.Ensure(ctx, js)
		if !errors.Is(err, pipeline.ErrTopologyChanged) || !strings.Contains(err.Error(), "partitioned 3 ways") {
			t.Fatalf("partitions %d over 3: %v", topo.Partitions, err)
		}
		if got := transform(); got != partitioned {
			t.Fatalf("a refused Ensure changed the transform to %q", got)
		}
	}
	if err := (pipeline.Topology{Reconfigure: true}).Ensure(ctx, js); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	if got := transform(); got != "" {
		t.Fatalf("after Reconfigure without partitions: transform %q", got)
	}
	if err := (pipeline.Topology{Partitions: 3}).Ensure(ctx, js); !errors.Is(err, pipeline.ErrTopologyChanged) {
		t.Fatalf("partitioning an unpartitioned stream without Reconfigure: %v", err)
	}
}

// An instance started with another --prefix than the streams take is
// refused before it moves any stream off the subjects the order systems
// publish to; Reconfigure moves them.
func TestEnsureRefusesAnotherPrefix(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	subjects := func() []string {
		t.Helper()
		var all []string
		for _, name := range []string{pipeline.DefaultRequestStream, pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, s.CachedInfo().Config.Subjects...)
		}
		return all
	}
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	before := strings.Join(subjects(), " ")
	if before != "invoice.request.* invoice.result.> invoice.dlq.>" {
		t.Fatalf("subjects %q", before)
	}
	twin := pipeline.Topology{Subjects: schemas.Subjects{Prefix: "twin"}}
	err := twin.Ensure(ctx, js)
	if !errors.Is(err, pipeline.ErrTopologyChanged) || !strings.Contains(err.Error(), "takes the subjects invoice.request.*, and this consumer is configured for twin.request.*") {
		t.Fatalf("another prefix: %v", err)
	}
	if got := strings.Join(subjects(), " "); got != before {
		t.Fatalf("a refused Ensure changed the subjects to %q", got)
	}
	twin.Reconfigure = true
	if err := twin.Ensure(ctx, js); err != nil {
		t.Fatalf("Reconfigure: %v", err)
	}
	if got := strings.Join(subjects(), " "); got != "twin.request.* twin.result.> twin.dlq.>" {
		t.Fatalf("after Reconfigure: subjects %q", got)
	}
}

// A refused Ensure changes no stream, not even those checked before the
// one it refuses for.
func TestEnsureRefusedChangesNoStream(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	update := func(name string, change func(*jetstream.StreamConfig)) {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		change(&cfg)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// By hand: the request stream keeps its requests a day (Ensure would
	// set no limit), and the dead-letter stream takes one more subject.
	update(pipeline.DefaultRequestStream, func(c *jetstream.StreamConfig) { c.MaxAge = 24 * time.Hour })
	update(pipeline.DefaultDeadLetterStream, func(c *jetstream.StreamConfig) { c.Subjects = append(c.Subjects, "legacy.dlq.>") })
	err := (pipeline.Topology{}).Ensure(ctx, js)
	if !errors.Is(err, pipeline.ErrTopologyChanged) || !strings.Contains(err.Error(), pipeline.DefaultDeadLetterStream) {
		t.Fatalf("the dead-letter stream's extra subject: %v", err)
	}
	s, err := js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxAge; got != 24*time.Hour {
		t.Fatalf("the refused Ensure changed the request stream: MaxAge %s", got)
	}
}
