package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// createsAfter is a JetStream client whose CreateStream lets another party
// act first (before), as one that the other's create beats by a moment
// does: the other is there by the time this create reaches the server.
type createsAfter struct {
	jetstream.JetStream
	before func()
}

// CreateStream calls before, then creates the stream.
func (c createsAfter) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	c.before()
	return c.JetStream.CreateStream(ctx, cfg)
}

// RecreateRequestConsumer says truly whether it created the request stream
// (StreamCreated): it did when the stream was missing and nobody else
// created it first; it did not when it found the stream there, or when
// another party created it between its look and its create (another
// partition's instance, which found the stream gone at the same moment,
// or an instance's start): the server answers a create that matches an
// existing stream as if it had made it, and this instance would say that
// it had created a stream it found. The stream's mark names the instance
// that created it again (StreamCreatedBy), until a start's Ensure, and
// tells this instance's own (StreamMine): a stream an earlier try created,
// whose answer was lost, is found there with it. It says as truly whether
// it created the durable again (ConsumerCreated), this call or an earlier
// one whose answer was lost (the durable bears its mark), or found it
// there, created again by another party first, and updated it to its
// settings (ConsumerUpdated) or left it as it was; before, it said nothing
// of it, and the loop said that it had created a durable it found.
func TestRecreateRequestConsumerSaysWhetherItCreatedTheStream(t *testing.T) {
	topo := pipeline.Topology{Partitions: 2}
	me := pipeline.ConsumerSettings{Partition: 0, Workers: 1, Owner: pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}}
	other := pipeline.ConsumerSettings{Partition: 1, Workers: 1, Owner: pipeline.Owner{Started: time.Now().Add(-time.Minute).UTC(), Name: "partition 1's instance"}}
	// createDurable creates this instance's durable as cfg, changed by
	// change, as another party, or an earlier try, does.
	createDurable := func(change func(*jetstream.ConsumerConfig)) func(t *testing.T, js jetstream.JetStream) {
		return func(t *testing.T, js jetstream.JetStream) {
			cfg := topo.Consumer(me)
			change(&cfg)
			if _, err := js.CreateConsumer(context.Background(), pipeline.DefaultRequestStream, cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name string
		// before, when set, acts before the call; first, when set,
		// between this instance's look and its create of the stream.
		before, first func(t *testing.T, js jetstream.JetStream)
		deleted       bool // the stream deleted (else the durable alone)
		wantCreated   bool
		wantBy        string // StreamCreatedBy, the stream's mark
		wantMine      bool
		// wantConsumer: "created", "updated" or "as it was".
		wantConsumer string
	}{
		{name: "the stream missing", deleted: true, wantCreated: true, wantBy: me.Owner.String(), wantMine: true, wantConsumer: "created"},
		{name: "an earlier try created the stream again, its answer lost", deleted: true, wantCreated: false, wantBy: me.Owner.String(), wantMine: true, wantConsumer: "created",
			before: func(t *testing.T, js jetstream.JetStream) {
				cfg := topo.Streams()[0]
				cfg.Metadata = map[string]string{pipeline.RecreatedByMetadataKey: me.Owner.String()}
				if _, err := js.CreateStream(context.Background(), cfg); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "the durable alone missing", deleted: false, wantCreated: false, wantConsumer: "created"},
		{name: "an earlier try created the durable again, its answer lost", deleted: false, wantConsumer: "created",
			before: createDurable(func(cfg *jetstream.ConsumerConfig) { cfg.Metadata[pipeline.RecreatedByMetadataKey] = me.Owner.String() })},
		{name: "another party created the durable again first, with other settings", deleted: false, wantConsumer: "updated",
			before: createDurable(func(cfg *jetstream.ConsumerConfig) { cfg.AckWait = time.Minute })},
		{name: "another party created the durable again first, with this instance's settings", deleted: false, wantConsumer: "as it was",
			before: createDurable(func(*jetstream.ConsumerConfig) {})},
		{name: "another partition's instance creates the stream again first", deleted: true, wantCreated: false, wantBy: other.Owner.String(), wantConsumer: "created",
			first: func(t *testing.T, js jetstream.JetStream) {
				rc, err := topo.RecreateRequestConsumer(context.Background(), js, other)
				if err != nil || !rc.StreamCreated {
					t.Fatalf("the other instance's creation: %+v %v; want it created by that one", rc, err)
				}
			}},
		{name: "an instance's start creates the stream first", deleted: true, wantCreated: false, wantConsumer: "created",
			first: func(t *testing.T, js jetstream.JetStream) {
				if err := topo.Ensure(context.Background(), js); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, js := MustJetStream(t, t.TempDir())
			ctx := context.Background()
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Fatal(err)
			}
			if c.deleted {
				if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
					t.Fatal(err)
				}
			} else if err := js.DeleteConsumer(ctx, pipeline.DefaultRequestStream, topo.Consumer(me).Durable); err != nil {
				t.Fatal(err)
			}
			if c.before != nil {
				c.before(t, js)
			}
			var client jetstream.JetStream = js
			if c.first != nil {
				var once sync.Once
				client = createsAfter{JetStream: js, before: func() { once.Do(func() { c.first(t, js) }) }}
			}
			rc, err := topo.RecreateRequestConsumer(ctx, client, me)
			if err != nil {
				t.Fatal(err)
			}
			if rc.StreamCreated != c.wantCreated || rc.StreamCreatedBy != c.wantBy || rc.StreamMine != c.wantMine {
				t.Errorf("StreamCreated %v, StreamCreatedBy %q, StreamMine %v; want %v, %q, %v", rc.StreamCreated, rc.StreamCreatedBy, rc.StreamMine, c.wantCreated, c.wantBy, c.wantMine)
			}
			consumer := "as it was"
			switch {
			case rc.ConsumerCreated:
				consumer = "created"
			case rc.ConsumerUpdated:
				consumer = "updated"
			}
			if consumer != c.wantConsumer {
				t.Errorf("the durable %s (ConsumerCreated %v, ConsumerUpdated %v); want it %s", consumer, rc.ConsumerCreated, rc.ConsumerUpdated, c.wantConsumer)
			}
			cons, err := js.Consumer(ctx, pipeline.DefaultRequestStream, topo.Consumer(me).Durable)
			if err != nil {
				t.Fatalf("this instance's durable: %v", err)
			}
			if got := cons.CachedInfo().Config; got.AckWait != topo.Consumer(me).AckWait || got.Metadata[pipeline.OwnerMetadataKey] != me.Owner.String() {
				t.Errorf("this instance's durable: AckWait %s, owner %q; want this instance's settings", got.AckWait, got.Metadata[pipeline.OwnerMetadataKey])
			}
			// The next start's Ensure and EnsureConsumer write the
			// topology's settings, without the marks.
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			stream, err := js.Stream(ctx, pipeline.DefaultRequestStream)
			if err != nil {
				t.Fatal(err)
			}
			if by, ok := stream.CachedInfo().Config.Metadata[pipeline.RecreatedByMetadataKey]; ok {
				t.Errorf("the stream still marked %q after a start's Ensure", by)
			}
			if cons, err = topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Fatal(err)
			}
			if by, ok := cons.CachedInfo().Config.Metadata[pipeline.RecreatedByMetadataKey]; ok {
				t.Errorf("the durable still marked %q after a start's EnsureConsumer", by)
			}
		})
	}
}

// createdThenTaken is a JetStream client after whose create of a stream, or
// of a consumer, the new one's files are taken (afterStream,
// afterConsumer): as the server's removal of a deleted stream's or
// durable's files takes those of one of the same name created a moment
// after the deletion.
type createdThenTaken struct {
	jetstream.JetStream
	afterStream, afterConsumer func()
}

// CreateStream creates the stream, then calls afterStream.
func (c createdThenTaken) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := c.JetStream.CreateStream(ctx, cfg)
	if c.afterStream != nil {
		c.afterStream()
	}
	return s, err
}

// CreateConsumer creates the consumer, then calls afterConsumer.
func (c createdThenTaken) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	cons, err := c.JetStream.CreateConsumer(ctx, stream, cfg)
	if c.afterConsumer != nil {
		c.afterConsumer()
	}
	return cons, err
}

// RecreateRequestConsumer checks the stream and the durable it created
// again before it returns them: one whose files the server took (its
// removal of the deleted one's, a moment after the deletion) stores
// nothing, answers no publish and refuses every update, while its info
// looks sane. It deletes the broken one and returns ErrRecreatedBroken, so
// that the next try creates it again, working; a stream that took a
// request of its own before its files went is left as it is (the error
// says so), rather than deleted with the request. Before, both were
// returned as created, and the loop pulled from them.
func TestRecreateRequestConsumerDeletesWhatTheServerBroke(t *testing.T) {
	topo := pipeline.Topology{}
	me := pipeline.ConsumerSettings{Workers: 1, Owner: pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}}
	subject := schemas.Subjects{}.Request("91110000MA01TEST0X")
	publish := func(t *testing.T, js jetstream.JetStream) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, subject, []byte("{}")); err != nil {
			t.Fatalf("publish to the request stream: %v", err)
		}
	}
	for _, c := range []struct {
		name    string
		deleted bool // the stream deleted (else the durable alone)
		// stream and durable take the new one's files (given the
		// store's directory), and whatever else the case does.
		stream, durable func(t *testing.T, js jetstream.JetStream, dir string)
		// wantStream: the stream after the refused try.
		wantStream bool
		wantSaid   string
	}{
		{name: "the stream's files taken after its creation", deleted: true, wantSaid: "deleted it, to create it again",
			stream: func(t *testing.T, _ jetstream.JetStream, dir string) {
				removeAsADeletedStreams(t, streamDir(dir, pipeline.DefaultRequestStream))
			}},
		{name: "the stream's files taken after it took a request", deleted: true, wantStream: true, wantSaid: "so it was left as it is",
			stream: func(t *testing.T, js jetstream.JetStream, dir string) {
				publish(t, js)
				removeAsADeletedStreams(t, streamDir(dir, pipeline.DefaultRequestStream))
			}},
		{name: "the durable's files taken after its creation", deleted: false, wantStream: true, wantSaid: "deleted it, to create it again",
			durable: func(t *testing.T, _ jetstream.JetStream, dir string) {
				// As the deleted durable's removal does
				// (consumerFileStore.delete).
				if err := os.RemoveAll(filepath.Join(streamDir(dir, pipeline.DefaultRequestStream), "obs", pipeline.DefaultDurable)); err != nil {
					t.Fatal(err)
				}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, js := MustJetStream(t, dir)
			ctx := context.Background()
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Fatal(err)
			}
			if c.deleted {
				if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
					t.Fatal(err)
				}
			} else {
				publish(t, js) // kept by the stream
				if err := js.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
					t.Fatal(err)
				}
			}
			client := createdThenTaken{JetStream: js}
			if c.stream != nil {
				client.afterStream = func() { c.stream(t, js, dir) }
			}
			if c.durable != nil {
				client.afterConsumer = func() { c.durable(t, js, dir) }
			}
			_, err := topo.RecreateRequestConsumer(ctx, client, me)
			if !errors.Is(err, pipeline.ErrRecreatedBroken) || !strings.Contains(fmt.Sprint(err), c.wantSaid) {
				t.Fatalf("RecreateRequestConsumer: %v; want ErrRecreatedBroken, saying %q", err, c.wantSaid)
			}
			s, err := js.Stream(ctx, pipeline.DefaultRequestStream)
			if c.wantStream != (err == nil) {
				t.Fatalf("the stream after the refused try: %v; want it there: %v", err, c.wantStream)
			}
			if _, err := js.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Fatalf("the durable after the refused try: %v; want it deleted", err)
			}
			if c.wantStream && c.stream != nil {
				if n := s.CachedInfo().State.Msgs; n != 1 {
					t.Fatalf("the stream left as it is holds %d requests; want its 1", n)
				}
				return // an operator's to look at
			}
			// The next try creates it again, working.
			rc, err := topo.RecreateRequestConsumer(ctx, js, me)
			if err != nil {
				t.Fatalf("the next try: %v", err)
			}
			if !rc.ConsumerCreated || rc.StreamCreated != c.deleted {
				t.Errorf("the next try: StreamCreated %v, ConsumerCreated %v; want %v, true", rc.StreamCreated, rc.ConsumerCreated, c.deleted)
			}
			publish(t, js)
			if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Errorf("the next start's EnsureConsumer: %v", err)
			}
			if s, err = js.Stream(ctx, pipeline.DefaultRequestStream); err != nil || s.CachedInfo().State.Msgs == 0 {
				t.Errorf("the stream after a publish: %v; want the request in it", err)
			}
		})
	}
}

// consumerAnswerLost is a JetStream client whose consumer creates the
// server carries out, and whose answers are lost: the client gives up
// waiting, as when the connection is cut at that moment.
type consumerAnswerLost struct{ jetstream.JetStream }

// CreateConsumer creates the consumer, then says that no answer came in
// time.
func (a consumerAnswerLost) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if _, err := a.JetStream.CreateConsumer(ctx, stream, cfg); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, stream, context.DeadlineExceeded)
}

// A durable that an earlier try of this instance created again, whose
// answer was lost, and whose files the server then took (its removal of
// the deleted durable's) is this instance's own: its mark says so. The
// next try finds it broken, deletes it and returns ErrRecreatedBroken, and
// the one after creates it again, working. Before, each later create was
// refused (the server cannot write the broken durable), and the loop tried
// and logged the refusal until an operator deleted the durable.
func TestRecreateRequestConsumerRepairsItsEarlierTrysBrokenDurable(t *testing.T) {
	dir := t.TempDir()
	_, _, js := MustJetStream(t, dir)
	ctx := context.Background()
	topo := pipeline.Topology{}
	me := pipeline.ConsumerSettings{Workers: 1, Owner: pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.Publish(pctx, schemas.Subjects{}.Request("91110000MA01TEST0X"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	lost := consumerAnswerLost{createdThenTaken{JetStream: js, afterConsumer: func() {
		// As the deleted durable's removal does (consumerFileStore.delete).
		if err := os.RemoveAll(filepath.Join(streamDir(dir, pipeline.DefaultRequestStream), "obs", pipeline.DefaultDurable)); err != nil {
			t.Fatal(err)
		}
	}}}
	if _, err := topo.RecreateRequestConsumer(ctx, lost, me); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the try whose answer was lost: %v; want its lost answer", err)
	}
	_, err := topo.RecreateRequestConsumer(ctx, js, me)
	if !errors.Is(err, pipeline.ErrRecreatedBroken) || !strings.Contains(fmt.Sprint(err), "deleted it, to create it again") {
		t.Fatalf("the next try: %v; want ErrRecreatedBroken, saying that it deleted the broken durable to create it again", err)
	}
	if _, err := js.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the broken durable after the next try: %v; want it deleted", err)
	}
	rc, err := topo.RecreateRequestConsumer(ctx, js, me)
	if err != nil || !rc.ConsumerCreated {
		t.Fatalf("the try after: %v, ConsumerCreated %v; want the durable created again", err, rc.ConsumerCreated)
	}
	if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
		t.Errorf("the next start's EnsureConsumer: %v", err)
	}
	if info, err := rc.Consumer.Info(ctx); err != nil || info.NumPending+uint64(info.NumAckPending) != 1 {
		t.Errorf("the durable created again: %+v, %v; want the stream's request to deliver", info, err)
	}
}

// clocksApart is a JetStream client of a cluster whose meta leader, which
// stamps a stream's creation, has a clock ahead of the stream leader's,
// which stamps its messages.
type clocksApart struct {
	jetstream.JetStream
	ahead time.Duration
}

// Stream reads the stream, its creation stamped by the meta leader's clock.
func (c clocksApart) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := c.JetStream.Stream(ctx, name)
	if err != nil {
		return s, err
	}
	return createdAhead{Stream: s, ahead: c.ahead}, nil
}

// createdAhead is a stream whose creation its info says ahead of the
// clock that stamped its messages.
type createdAhead struct {
	jetstream.Stream
	ahead time.Duration
}

// CachedInfo is the stream's info, its creation ahead.
func (s createdAhead) CachedInfo() *jetstream.StreamInfo {
	info := *s.Stream.CachedInfo()
	info.Created = info.Created.Add(s.ahead)
	return &info
}

// refusedThenPublished is a JetStream client of a cluster that refuses a
// stream update for a passing reason (a leader election in progress), and
// where an order system publishes a request (publish) the moment after
// each stream read that finds the stream.
type refusedThenPublished struct {
	jetstream.JetStream
	publish func()
}

// UpdateStream is refused as a cluster without a leader refuses it.
func (r refusedThenPublished) UpdateStream(context.Context, jetstream.StreamConfig) (jetstream.Stream, error) {
	return nil, &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
}

// Stream reads the stream; once found, a request is published to it.
func (r refusedThenPublished) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	s, err := r.JetStream.Stream(ctx, name)
	if err == nil {
		r.publish()
	}
	return s, err
}

// A request stream that this instance created again and that works is
// never deleted with requests in it, whatever else a check of it finds:
// deleting it would lose requests whose publication the server
// acknowledged. The stream, created by an earlier try whose answer was
// lost, holds a request published since; in a cluster the request's
// timestamp (the stream leader's clock) may be a moment before the
// stream's creation (the meta leader's), which read as a stream built on
// the deleted one's files. And an update refused for a passing reason (a
// leader election) is no sign of a stream whose files are gone, while a
// request published after the check's last read of an empty stream went
// with it. Before, both were found broken and deleted, and the request
// with them.
func TestRecreatedStreamIsNotDeletedWithItsRequests(t *testing.T) {
	topo := pipeline.Topology{}
	me := pipeline.ConsumerSettings{Workers: 1, Owner: pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}}
	subject := schemas.Subjects{}.Request("91110000MA01TEST0X")
	var published atomic.Uint64 // by the case under way
	publish := func(t *testing.T, js jetstream.JetStream) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.Publish(ctx, subject, []byte("{}")); err != nil {
			t.Errorf("publish to the request stream: %v", err)
			return
		}
		published.Add(1)
	}
	for _, c := range []struct {
		name string
		// before acts once the stream is deleted; client is the
		// instance's JetStream client.
		before func(t *testing.T, js jetstream.JetStream)
		client func(t *testing.T, js jetstream.JetStream) jetstream.JetStream
	}{
		{name: "its request stamped before its creation by another server's clock",
			before: func(t *testing.T, js jetstream.JetStream) {
				cfg := topo.Streams()[0]
				cfg.Metadata = map[string]string{pipeline.RecreatedByMetadataKey: me.Owner.String()}
				if _, err := js.CreateStream(context.Background(), cfg); err != nil {
					t.Fatal(err)
				}
				publish(t, js)
			},
			client: func(_ *testing.T, js jetstream.JetStream) jetstream.JetStream {
				return clocksApart{JetStream: js, ahead: 300 * time.Millisecond}
			}},
		{name: "its update refused for a passing reason, a request published after the check's read",
			client: func(t *testing.T, js jetstream.JetStream) jetstream.JetStream {
				var once sync.Once
				return refusedThenPublished{JetStream: js, publish: func() { once.Do(func() { publish(t, js) }) }}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			published.Store(0)
			_, _, js := MustJetStream(t, t.TempDir())
			ctx := context.Background()
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
				t.Fatal(err)
			}
			if c.before != nil {
				c.before(t, js)
			}
			_, err := topo.RecreateRequestConsumer(ctx, c.client(t, js), me)
			if errors.Is(err, pipeline.ErrRecreatedBroken) {
				t.Errorf("RecreateRequestConsumer: %v; want the stream, which works, not found broken", err)
			}
			s, serr := js.Stream(ctx, pipeline.DefaultRequestStream)
			if serr != nil || s.CachedInfo().State.Msgs != published.Load() {
				t.Fatalf("after RecreateRequestConsumer (%v): the stream %v; want it there with the %d request(s) published to it", err, serr, published.Load())
			}
		})
	}
}

// durableRefused is a JetStream client of a server that refuses a
// consumer's update, and its create when create is set, for a passing
// reason (code, an error code other than the one of a failed write of the
// durable's files: a leader election in a cluster, insufficient
// resources).
type durableRefused struct {
	jetstream.JetStream
	code   jetstream.ErrorCode
	create bool
}

// refusal is the server's answer.
func (r durableRefused) refusal() error {
	return &jetstream.APIError{Code: 503, ErrorCode: r.code, Description: "refused for a passing reason"}
}

// CreateConsumer is refused when r.create is set.
func (r durableRefused) CreateConsumer(ctx context.Context, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if r.create {
		return nil, r.refusal()
	}
	return r.JetStream.CreateConsumer(ctx, stream, cfg)
}

// UpdateConsumer is refused.
func (r durableRefused) UpdateConsumer(context.Context, string, jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return nil, r.refusal()
}

// A durable that this instance created again and that works is not found
// broken and deleted because the server refused its check (an update with
// its own settings) for a passing reason: only the refusal of a write of
// its files (JSErrCodeConsumerCreate, "open …/meta.inf.tmp: no such file
// or directory") says that they are gone, as only 10069 does for a
// stream. Deleting a working durable loses what it delivered and has yet
// to be acknowledged (its redelivery state), and creates it again a
// moment after its deletion, which is what breaks a durable. Before, any
// API error of the check deleted it: here the durable this try created,
// and the one an earlier try created (its answer lost) that had
// delivered a request since.
func TestRecreatedDurableIsNotDeletedForAPassingRefusal(t *testing.T) {
	topo := pipeline.Topology{}
	me := pipeline.ConsumerSettings{Workers: 1, AckWait: time.Minute, Owner: pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}}
	for _, c := range []struct {
		name string
		code jetstream.ErrorCode
		// earlier: an earlier try created the durable, its answer
		// lost, and it delivered a request since; this try's create
		// is refused too.
		earlier bool
	}{
		{name: "created by this try, its check refused by a leader election", code: 10008},
		{name: "created by this try, its check refused for insufficient resources", code: 10023},
		{name: "created by an earlier try, delivering, both refused by a leader election", code: 10008, earlier: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, js := MustJetStream(t, t.TempDir())
			ctx := context.Background()
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			if _, err := topo.EnsureConsumer(ctx, js, me); err != nil {
				t.Fatal(err)
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, err := js.Publish(pctx, schemas.Subjects{}.Request("91110000MA01TEST0X"), []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := js.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
				t.Fatal(err)
			}
			wantPending := 0
			if c.earlier {
				if _, err := topo.RecreateRequestConsumer(ctx, consumerAnswerLost{js}, me); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("the try whose answer was lost: %v; want its lost answer", err)
				}
				cons, err := js.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
				if err != nil {
					t.Fatal(err)
				}
				batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for range batch.Messages() { // delivered, not acknowledged
					wantPending++
				}
				if wantPending != 1 {
					t.Fatalf("the durable delivered %d request(s) (%v); want 1", wantPending, batch.Error())
				}
			}
			_, err := topo.RecreateRequestConsumer(ctx, durableRefused{JetStream: js, code: c.code, create: c.earlier}, me)
			if err == nil || errors.Is(err, pipeline.ErrRecreatedBroken) {
				t.Errorf("RecreateRequestConsumer: %v; want the refusal, and the durable, which works, not found broken", err)
			}
			info, ierr := js.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
			if ierr != nil {
				t.Fatalf("the durable after the refused check (%v): %v; want it there", err, ierr)
			}
			if n := info.CachedInfo().NumAckPending; n != wantPending {
				t.Errorf("the durable after the refused check has %d request(s) delivered and not acknowledged; want %d", n, wantPending)
			}
			// The next try, answered, takes it as it is.
			rc, err := topo.RecreateRequestConsumer(ctx, js, me)
			if err != nil || !rc.ConsumerCreated {
				t.Fatalf("the next try: %v, ConsumerCreated %v; want the durable there taken as this instance's", err, rc.ConsumerCreated)
			}
		})
	}
}
