package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishWaitsForTheStream: a result published while its stream is not
// there yet (JetStream still restoring after a restart) is published again
// until the stream answers, and kept once.
func TestPublishWaitsForTheStream(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{})
	res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: "LATE-1",
		Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}

	created := make(chan error, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		created <- (pipeline.Topology{}).Ensure(context.Background(), js)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := pub.PublishResult(ctx, res, "result:TEST:1"); err != nil {
		t.Fatalf("publish before the stream existed: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishResult(ctx, res, "result:TEST:1"); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Msgs; n != 1 {
		t.Fatalf("%d results in the stream, want 1", n)
	}

	// A publish that cannot succeed ends with its context.
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	nowhere := pipeline.NewJetStreamPublisher(js, schemas.Subjects{Prefix: "nostream"})
	if err := nowhere.PublishResult(short, res, "result:TEST:2"); err == nil {
		t.Fatal("publish outside every stream succeeded")
	}
}

// TestPublishExpectsItsStreams: an operator moved the results' subjects
// out of the results stream into another one. A publisher that expects its
// streams (as the consumer's does) has such a result refused, so that its
// request is put back rather than acknowledged while the results stream's
// subscribers never see it; the async publish as much as the sync one, and
// dead letters too. Results published to the right stream still pass.
func TestPublishExpectsItsStreams(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream)
	res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: "MOVED-1",
		Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}
	if err := pub.PublishResult(ctx, res, "result:TEST:1"); err != nil {
		t.Fatalf("publish to the results stream: %v", err)
	}
	dl := &schemas.DeadLetter{SchemaVersion: schemas.SchemaVersion, Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OriginalStream: "TEST", OriginalSeq: 1}
	if err := pub.PublishDeadLetter(ctx, dl, "dlq:TEST:1"); err != nil {
		t.Fatalf("publish to the dead-letter stream: %v", err)
	}

	// The operator's edit: the results stream gives up its subjects, and
	// another stream takes them (and the dead letters').
	results, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := results.CachedInfo().Config
	moved := rcfg.Subjects
	rcfg.Subjects = []string{"elsewhere.>"}
	if _, err := js.UpdateStream(ctx, rcfg); err != nil {
		t.Fatal(err)
	}
	dlqs, err := js.Stream(ctx, pipeline.DefaultDeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	dcfg := dlqs.CachedInfo().Config
	movedDL := dcfg.Subjects
	dcfg.Subjects = []string{"elsewhere-dlq.>"}
	if _, err := js.UpdateStream(ctx, dcfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OPERATORS", Subjects: append(moved, movedDL...)}); err != nil {
		t.Fatal(err)
	}

	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	res.OrderNo = "MOVED-2"
	if err := pub.PublishResult(short, res, "result:TEST:2"); err == nil || !strings.Contains(err.Error(), "expected stream does not match") {
		t.Errorf("a result stored by another stream: %v; want refused, expected stream does not match", err)
	}
	if err := pub.PublishResultAsync(res, "result:TEST:3")(short); err == nil {
		t.Error("an async result stored by another stream was taken as published")
	}
	dl.OriginalSeq = 2
	if err := pub.PublishDeadLetter(short, dl, "dlq:TEST:2"); err == nil {
		t.Error("a dead letter stored by another stream was taken as published")
	}
	// Without the expectation, the other stream takes them: what the
	// consumer did before.
	loose := pipeline.NewJetStreamPublisher(js, schemas.Subjects{})
	if err := loose.PublishResult(short, res, "result:TEST:4"); err != nil {
		t.Fatalf("publish without an expected stream: %v", err)
	}
}

// TestPublishCreatesItsMissingStreamsAgain: an operator deleted the results
// and dead-letter streams while the consumer runs. A publisher that may
// recreate them (as the consumer's does) creates each again, with the
// topology's settings, at the first publish that finds it missing, and the
// publish goes through, also when a plain subscriber took it meanwhile;
// one that may not waits for them as before.
func TestPublishCreatesItsMissingStreamsAgain(t *testing.T) {
	_, nc, js := MustJetStream(t, t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topo := pipeline.Topology{ResultMaxAge: 72 * time.Hour, Duplicates: 3 * time.Minute}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	var created []string
	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).
		ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream).
		RecreateStreams(topo.Streams(), "", func(cfg jetstream.StreamConfig) { created = append(created, cfg.Name) })
	for _, name := range []string{pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream} {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Fatal(err)
		}
	}

	// Without leave to recreate them, a publish waits for the streams.
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	defer cancelShort()
	res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: "GONE-1",
		Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}
	waits := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream)
	if err := waits.PublishResult(short, res, "result:TEST:1"); err == nil {
		t.Fatal("a result was published with its stream deleted")
	}
	if _, err := js.Stream(ctx, pipeline.DefaultResultStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the results stream, after a publisher without RecreateStreams: %v; want still missing", err)
	}

	start := time.Now()
	if err := pub.PublishResultAsync(res, "result:TEST:1")(ctx); err != nil {
		t.Fatalf("a result published after its stream was deleted: %v", err)
	}
	dl := &schemas.DeadLetter{SchemaVersion: schemas.SchemaVersion, Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OriginalStream: "TEST", OriginalSeq: 1}
	if err := pub.PublishDeadLetter(ctx, dl, "dlq:TEST:1"); err != nil {
		t.Fatalf("a dead letter published after its stream was deleted: %v", err)
	}
	t.Logf("both published %s after the first try", time.Since(start).Round(time.Millisecond))
	if want := []string{pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream}; !slices.Equal(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
	for _, want := range topo.Streams()[1:] {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := info.Config
		if got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates || got.Retention != want.Retention || !slices.Equal(got.Subjects, want.Subjects) {
			t.Errorf("%s created again as %+v, want the topology's %+v", want.Name, got, want)
		}
		if info.State.Msgs != 1 {
			t.Errorf("%s holds %d messages, want 1", want.Name, info.State.Msgs)
		}
	}

	// Deleted again, with a plain subscriber on the results' subjects,
	// which takes the publishes and answers none: the attempt runs out of
	// time instead of finding no responders, and the stream is created
	// again all the same.
	if err := js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
		t.Fatal(err)
	}
	sub, err := nc.SubscribeSync("invoice.result.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	res.OrderNo = "GONE-2"
	if err := pub.PublishResult(ctx, res, "result:TEST:2"); err != nil {
		t.Fatalf("a result published after its stream was deleted, with a plain subscriber on its subject: %v", err)
	}
	if want := []string{pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream, pipeline.DefaultResultStream}; !slices.Equal(created, want) {
		t.Errorf("created %v, want %v", created, want)
	}
}

// TestPublishErrorsSayWhatHappened: a publish the server refuses says so
// once, naming the subject, where the client says "nats: nats: API
// error: …"; a publish that nothing acknowledges names the subject and
// what a lookup of its stream found: a stream that does not exist, which
// a subscriber that is not a stream stood in for, or which no one
// answered for at all. The errors still wrap what they report.
func TestPublishErrorsSayWhatHappened(t *testing.T) {
	_, nc, js := MustJetStream(t, t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: "WHAT-1",
		Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}
	subject := schemas.Subjects{}.Result(schemas.StatusIssued, nuonuoSeller)

	elsewhere := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).ExpectStreams("ELSEWHERE", "")
	err := elsewhere.PublishResult(ctx, res, "result:TEST:1")
	var apiErr *jetstream.APIError
	if err == nil || strings.Contains(err.Error(), "nats: nats:") || !strings.Contains(err.Error(), subject) ||
		!strings.Contains(err.Error(), "expected stream does not match") || !errors.As(err, &apiErr) {
		t.Errorf("a publish the server refused: %v; want it said once, naming %s, and wrapping the API error", err, subject)
	}

	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream)
	if err := js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancelShort()
	err = pub.PublishResult(short, res, "result:TEST:2")
	if err == nil || !strings.Contains(err.Error(), subject) || !strings.Contains(err.Error(), "stream "+pipeline.DefaultResultStream+" does not exist") ||
		!errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("a publish to a deleted stream: %v; want it to name %s, say the stream does not exist and wrap no response from stream", err, subject)
	}

	// A plain subscriber on the results' subjects takes what no stream
	// answers, and answers nothing: every attempt runs out of time.
	sub, err := nc.SubscribeSync("invoice.result.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	swallowed, cancelSwallowed := context.WithTimeout(ctx, pipeline.PublishAttempt+time.Second)
	defer cancelSwallowed()
	err = pub.PublishResult(swallowed, res, "result:TEST:3")
	if err == nil || !strings.Contains(err.Error(), subject) || !strings.Contains(err.Error(), "stream "+pipeline.DefaultResultStream+" does not exist") ||
		!strings.Contains(err.Error(), "not a stream") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a publish a plain subscriber took: %v; want it to name %s, say the stream does not exist and something that is not a stream took it", err, subject)
	}
}

// answerLost is a JetStream client whose stream creates the server carries
// out, and whose answers are lost: the client gives up waiting, as when
// the connection is cut at that moment or the server is slow to answer.
type answerLost struct{ jetstream.JetStream }

// CreateStream creates the stream, then says that no answer came in time.
func (a answerLost) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if _, err := a.JetStream.CreateStream(ctx, cfg); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("create stream %s: %w", cfg.Name, context.DeadlineExceeded)
}

// TestRecreatedStreamsAreReportedTruly: a publisher that creates its
// missing streams again (RecreateStreams) tells created of each stream it
// created, and of no other. Before, it told of one that another party
// created between its look and its create (an instance's start; or another
// instance's publisher: with partitions every instance publishes results,
// and all find the stream missing at once), because the server answers a
// create that matches an existing stream as one that made it, and every
// instance said it had created the stream; and it told nothing of one it
// created whose answer was lost, the stream there all the same.
func TestRecreatedStreamsAreReportedTruly(t *testing.T) {
	topo := pipeline.Topology{}
	res := func(orderNo string) *schemas.Result {
		return &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: orderNo,
			Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}
	}
	for _, c := range []struct {
		name string
		// wrap, when set, wraps the publisher's JetStream client; obs is
		// the test's, other the other instance's publisher.
		wrap func(t *testing.T, js, obs jetstream.JetStream, other *pipeline.JetStreamPublisher) jetstream.JetStream
		// want are the streams the publisher tells of, wantOther those
		// the other instance's publisher tells of.
		want, wantOther []string
	}{
		{name: "this publisher creates it", want: []string{pipeline.DefaultResultStream}},
		{name: "an instance's start creates it between this publisher's look and its create",
			wrap: func(t *testing.T, js, obs jetstream.JetStream, _ *pipeline.JetStreamPublisher) jetstream.JetStream {
				var once sync.Once
				return createsAfter{JetStream: js, before: func() {
					once.Do(func() {
						if err := topo.Ensure(context.Background(), obs); err != nil {
							t.Errorf("the start's Ensure: %v", err)
						}
					})
				}}
			}},
		{name: "another instance's publisher creates it between this publisher's look and its create", wantOther: []string{pipeline.DefaultResultStream},
			wrap: func(t *testing.T, js, _ jetstream.JetStream, other *pipeline.JetStreamPublisher) jetstream.JetStream {
				var once sync.Once
				return createsAfter{JetStream: js, before: func() {
					once.Do(func() {
						if err := other.PublishResult(t.Context(), res("OTHER-1"), "result:OTHER:1"); err != nil {
							t.Errorf("the other instance's publish: %v", err)
						}
					})
				}}
			}},
		{name: "its create's answer lost", want: []string{pipeline.DefaultResultStream},
			wrap: func(_ *testing.T, js, _ jetstream.JetStream, _ *pipeline.JetStreamPublisher) jetstream.JetStream {
				return answerLost{js}
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, js := MustJetStream(t, t.TempDir())
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := topo.Ensure(ctx, js); err != nil {
				t.Fatal(err)
			}
			newPublisher := func(created *[]string) *pipeline.JetStreamPublisher {
				return pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).
					ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream).
					RecreateStreams(topo.Streams(), "", func(cfg jetstream.StreamConfig) { *created = append(*created, cfg.Name) })
			}
			var created, otherCreated []string
			pub, other := newPublisher(&created), newPublisher(&otherCreated)
			if c.wrap != nil {
				pub.WrapJetStream(func(own jetstream.JetStream) jetstream.JetStream { return c.wrap(t, own, js, other) })
			}
			if err := js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
				t.Fatal(err)
			}
			if err := pub.PublishResult(ctx, res("MINE-1"), "result:MINE:1"); err != nil {
				t.Fatalf("a result published after its stream was deleted: %v", err)
			}
			if !slices.Equal(created, c.want) || !slices.Equal(otherCreated, c.wantOther) {
				t.Errorf("the publisher told of %v created again, the other instance's of %v; want %v and %v", created, otherCreated, c.want, c.wantOther)
			}
			s, err := js.Stream(ctx, pipeline.DefaultResultStream)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetLastMsgForSubject(ctx, schemas.Subjects{}.Result(schemas.StatusIssued, nuonuoSeller)); err != nil {
				t.Errorf("the result in the stream created again: %v", err)
			}
		})
	}
}

// The server takes a deleted stream out of its account before it removes
// the stream's files (nats-server v2.15.2 and v2.15.3): a results stream
// that a publisher creates again in that moment is built on the deleted
// one's files, and the removal then takes them from under it. The server
// then stores nothing in it and answers no result published to it, while
// stream info looks sane: every result waited for an acknowledgement
// until its context ended, and the consumer put its request back, again
// and again (nothing lost, but nothing answered either) until an operator
// deleted the stream. The test forces that moment, as
// TestRequestStreamBuiltOnTheDeletedOnesFilesIsCreatedAgain does for the
// consume loop: the publisher's first create finds the deleted stream's
// files back in place, and they are removed after it as the server's
// fileStore.Delete does. The publisher finds the stream it created broken,
// deletes it, says so in the publish's error, and creates it again at a
// later look; the result is then published, and created is told of the
// working stream alone.
func TestResultStreamBuiltOnTheDeletedOnesFilesIsCreatedAgain(t *testing.T) {
	dir := t.TempDir()
	_, _, js := MustJetStream(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	topo := pipeline.Topology{}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	name := pipeline.DefaultResultStream
	var created []string
	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{}).
		ExpectStreams(pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream).
		RecreateStreams(topo.Streams(), "", func(cfg jetstream.StreamConfig) { created = append(created, cfg.Name) })
	res := func(orderNo string) *schemas.Result {
		return &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: orderNo,
			Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}
	}
	if err := pub.PublishResult(ctx, res("OLD-FILES-1"), "result:OLD:1"); err != nil {
		t.Fatal(err)
	}
	deleted := filepath.Join(t.TempDir(), "deleted") // the deleted stream's files
	if err := os.CopyFS(deleted, os.DirFS(streamDir(dir, name))); err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, name); err != nil {
		t.Fatal(err)
	}
	var creates int
	pub.WrapJetStream(func(own jetstream.JetStream) jetstream.JetStream {
		return createdThenTaken{
			JetStream: createsAfter{JetStream: own, before: func() {
				if creates++; creates == 1 {
					if err := os.CopyFS(streamDir(dir, name), os.DirFS(deleted)); err != nil {
						t.Errorf("put the deleted stream's files back: %v", err)
					}
				}
			}},
			afterStream: func() {
				if creates == 1 {
					removeAsADeletedStreams(t, streamDir(dir, name))
				}
			},
		}
	})

	// The first publish's try finds the stream missing; its create is
	// the broken one.
	var err error
	short, cancelShort := context.WithTimeout(ctx, pipeline.PublishAttempt+3*time.Second)
	defer cancelShort()
	if err = pub.PublishResult(short, res("NEW-FILES-1"), "result:NEW:1"); err == nil {
		if creates < 2 {
			t.Fatalf("a result was published to the stream built on the deleted one's files (%d creates)", creates)
		}
	} else if !errors.Is(err, pipeline.ErrRecreatedBroken) || !strings.Contains(err.Error(), "deleted it, to create it again") {
		t.Fatalf("the publish to the stream built on the deleted one's files: %v; want it to say the stream created again was broken, and deleted", err)
	}
	if err != nil {
		if err := pub.PublishResult(ctx, res("NEW-FILES-1"), "result:NEW:1"); err != nil {
			t.Fatalf("the publish after the broken stream was deleted: %v", err)
		}
	}
	if creates != 2 {
		t.Errorf("%d creates; want 2, the broken one and the working one", creates)
	}
	if want := []string{name}; !slices.Equal(created, want) {
		t.Errorf("created told of %v; want %v, once", created, want)
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.UpdateStream(ctx, s.CachedInfo().Config); err != nil {
		t.Errorf("the stream created again refuses a write of its own settings: %v", err)
	}
	if msg, err := s.GetLastMsgForSubject(ctx, schemas.Subjects{}.Result(schemas.StatusIssued, nuonuoSeller)); err != nil || !strings.Contains(string(msg.Data), "NEW-FILES-1") {
		t.Errorf("the result in the stream created again: %v", err)
	}
}
