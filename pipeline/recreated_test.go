package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// The request stream deleted and created again (by an operator, or by the
// consumer, which creates it again when it finds it missing) numbers its
// requests from 1 again. A request there gets its own result and dead
// letter, not ones the results and dead-letter streams drop as duplicates
// of the old stream's request of the same number (their message ids named
// the stream and the sequence alone): within the streams' duplicate window
// (10 minutes) the request was acknowledged and its result never reached
// anyone.
func TestARecreatedRequestStreamsRequestsGetTheirOwnResults(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "OLD-STREAM-1", nil), "")
	h.publish(nuonuoSeller, []byte("not json"), "")
	if r := h.waitResult(nuonuoSeller, "OLD-STREAM-1", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the old stream's request: %s", r.Status)
	}
	h.waitFor("the old stream's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(10 * time.Second) // a second dead letter would be collected by now
	h.exactDeadLetters(1)
	h.stop()

	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	if err := h.topo.Ensure(ctx, h.obs); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "NEW-STREAM-1", nil), "")
	h.publish(nuonuoSeller, []byte("not json either"), "")
	h.waitFor("the new stream to empty", 10*time.Second, h.requestStreamEmpty)
	for deadline := time.Now().Add(10 * time.Second); len(h.resultsFor(nuonuoSeller, "NEW-STREAM-1")) == 0 || len(h.deadLetters()) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new stream's requests were acknowledged, and 10 s later their results are %d (want 1) and the dead letters %d (want 2, the old stream's and the new one's)",
				len(h.resultsFor(nuonuoSeller, "NEW-STREAM-1")), len(h.deadLetters()))
		}
	}
	if r := h.resultsFor(nuonuoSeller, "NEW-STREAM-1")[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the new stream's request: %s", r.Status)
	}
	if dl := h.deadLetters()[1]; string(dl.Payload) != "not json either" || dl.OriginalSeq != 2 {
		t.Fatalf("the new stream's dead letter: #%d %q", dl.OriginalSeq, dl.Payload)
	}
}

// The request stream is deleted while the loop runs (nats stream rm),
// taking the durable with it. The loop creates both again with its
// settings (LoopConfig.Recreate) and takes the requests published since,
// instead of returning as if stopped (the server told its waiting pull
// that the consumer was deleted) or, when no pull of its was waiting (its
// workers busy, its buffer full), pulling from nothing for ever while it
// said it was bound. The request in flight then finishes, submitted once.
func TestDeletedRequestStreamIsCreatedAgainByTheLoop(t *testing.T) {
	for _, busy := range []bool{false, true} {
		name := "idle"
		if busy {
			name = "every worker busy"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			o := harnessOptions{pipeline: fast, recreate: true}
			if busy {
				o.workers, o.sandbox = 1, sandbox.Config{Latency: 500 * time.Millisecond}
			}
			h := newHarness(t, o)
			h.start()
			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BEFORE-1", nil), "")
			if busy {
				h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BEFORE-2", nil), "")
				h.waitFor("a request in flight", 10*time.Second, func() bool { return h.loop.InFlight() > 0 })
			} else {
				h.waitResult(nuonuoSeller, "BEFORE-1", 1, 10*time.Second)
			}
			before, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
				t.Fatal(err)
			}
			h.waitFor("the request stream and its consumer created again", 20*time.Second, func() bool {
				select {
				case err := <-h.loopDone:
					t.Fatalf("the loop returned %v once its request stream was deleted", err)
				default:
				}
				_, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
				return err == nil && h.loop.Bound() && h.loop.Missing() == nil
			})
			after, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
			if err != nil {
				t.Fatal(err)
			}
			want, got := before.CachedInfo().Config, after.CachedInfo().Config
			if got.Retention != jetstream.WorkQueuePolicy || got.Duplicates != want.Duplicates || got.Storage != want.Storage ||
				strings.Join(got.Subjects, " ") != strings.Join(want.Subjects, " ") || !after.CachedInfo().Created.After(before.CachedInfo().Created) {
				t.Errorf("the stream created again: %+v; want the topology's settings %+v", got, want)
			}
			cons, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
			if err != nil {
				t.Fatal(err)
			}
			if ci := cons.CachedInfo().Config; ci.AckPolicy != jetstream.AckExplicitPolicy || ci.AckWait != 5*time.Second || ci.MaxDeliver != -1 {
				t.Errorf("the durable created again: %+v; want the loop's settings", ci)
			}

			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "AFTER-1", nil), "AFTER-1")
			if r := h.waitResult(nuonuoSeller, "AFTER-1", 1, 15*time.Second)[0]; r.Status != schemas.StatusIssued {
				t.Fatalf("a request published after the stream was created again: %s", r.Status)
			}
			if r := h.waitResult(nuonuoSeller, "BEFORE-1", 1, 15*time.Second)[0]; r.Status != schemas.StatusIssued {
				t.Fatalf("the request in flight: %s", r.Status)
			}
			for _, no := range []string{"BEFORE-1", "AFTER-1"} {
				if st := h.orderStats(nuonuoSeller, no); st.Submissions != 1 || st.Issuances != 1 {
					t.Errorf("%s: sandbox %+v, want one submission and one issuance", no, st)
				}
			}
		})
	}
}

// When the request stream cannot be created again (here another stream
// took its subjects meanwhile), the loop takes nothing and says why:
// Bound is false and Missing names the missing consumer and the failure,
// until the stream can be created; then it goes on. A loop without
// Recreate returns an error saying that its consumer is gone, not nil, as
// a stop.
func TestMissingRequestConsumerIsReported(t *testing.T) {
	ctx := context.Background()
	// Its only worker busy with a slow provider, the loop has no pull
	// waiting at the server, and finds the consumer gone only once the
	// request is done: the other stream is there by then.
	h := newHarness(t, harnessOptions{pipeline: fast, recreate: true, workers: 1, sandbox: sandbox.Config{Latency: time.Second}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BEFORE-SQUATTER-1", nil), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BEFORE-SQUATTER-2", nil), "")
	h.waitFor("a request in flight", 10*time.Second, func() bool { return h.loop.InFlight() > 0 })
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	if _, err := h.obs.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{schemas.Subjects{}.RequestFilter()}}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the loop to say why it takes nothing", 20*time.Second, func() bool {
		err := h.loop.Missing()
		return err != nil && strings.Contains(err.Error(), "creating it again failed")
	})
	if err := h.loop.Missing(); !errors.Is(err, pipeline.ErrConsumerMissing) || h.loop.Bound() {
		t.Fatalf("Missing %v, Bound %v; want ErrConsumerMissing and not bound", err, h.loop.Bound())
	}
	if err := h.obs.DeleteStream(ctx, "SQUATTER"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the request stream created again", 2*pipeline.RecreateRetryMax, func() bool {
		return h.loop.Missing() == nil && h.loop.Bound()
	})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "AFTER-SQUATTER", nil), "")
	if r := h.waitResult(nuonuoSeller, "AFTER-SQUATTER", 1, 15*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("a request published after the stream was created again: %s", r.Status)
	}

	plain := newHarness(t, harnessOptions{pipeline: fast})
	plain.start()
	if err := plain.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-plain.loopDone:
		plain.stopLoop = nil
		if !errors.Is(err, pipeline.ErrConsumerMissing) {
			t.Fatalf("a loop without Recreate returned %v; want ErrConsumerMissing", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a loop without Recreate did not return within 20 s of its stream's deletion")
	}
}

// A loop that stops (a shutdown, or an instance standing down because
// another took its durable) while its request consumer is missing, and
// could not be created again, no longer reports it missing:
// invoice_request_consumer_missing is 0 and Missing nil once Run has
// returned. Left at 1, the gauge of an instance standing by would keep
// InvoiceRequestStreamDeleted firing for an instance that is not the one
// to act.
func TestStoppedLoopNoLongerReportsItsConsumerMissing(t *testing.T) {
	ctx := context.Background()
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	// The tries wait until another stream has taken the request
	// subjects: they fail then, as they do while it keeps them.
	taken := make(chan struct{})
	h := newHarness(t, harnessOptions{pipeline: fast, recreate: true, metrics: metrics, beforeRecreate: func(ctx context.Context) {
		select {
		case <-taken:
		case <-ctx.Done():
		}
	}})
	h.start()
	h.waitFor("the loop to pull", 10*time.Second, h.loop.Bound)
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	if _, err := h.obs.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{schemas.Subjects{}.RequestFilter()}}); err != nil {
		t.Fatal(err)
	}
	close(taken)
	h.waitFor("the loop to report its consumer missing", 20*time.Second, func() bool {
		err := h.loop.Missing()
		return testutil.ToFloat64(metrics.ConsumerMissing) == 1 && err != nil && strings.Contains(err.Error(), "creating it again failed")
	})
	if err := h.halt(); err != nil {
		t.Fatalf("Run returned %v once stopped; want nil", err)
	}
	if v, err := testutil.ToFloat64(metrics.ConsumerMissing), h.loop.Missing(); v != 0 || err != nil {
		t.Fatalf("once Run has returned: invoice_request_consumer_missing %v, Missing %v; want 0 and nil", v, err)
	}
}

// A loop stopped while one of its tries to create its request consumer
// again is under way (here held before the creation, as by a server slow
// to answer) gives the try up: nothing is created after the stop. Run on a
// context that the stop did not cancel, the try went on, and for an
// instance standing down because another instance took its durable, it
// wrote this instance back into the durable's owner record: the other
// would then stand down too, or take it back, and the partition could be
// left with no instance taking its requests.
func TestStoppedLoopCreatesNothingAgain(t *testing.T) {
	ctx := context.Background()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := newHarness(t, harnessOptions{pipeline: fast, recreate: true, beforeRecreate: func(context.Context) {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}})
	h.start()
	h.waitFor("the loop to pull", 10*time.Second, h.loop.Bound)
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the loop made no try to create its request consumer again within 20 s of its stream's deletion")
	}
	h.stopLoop() // the stop comes while the try is under way
	close(release)
	if err := h.halt(); err != nil {
		t.Fatalf("Run returned %v once stopped; want nil", err)
	}
	if _, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the request stream after the loop's stop: %v; want it still missing (the stopped loop's try created it)", err)
	}
	if _, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("the durable after the loop's stop: %v; want it still missing", err)
	}
}

// The loop's warning once it has its request consumer again says truly
// whether this instance created the request stream again or found it
// there, created again first by another party (another partition's
// instance, whose mark names it, an instance's start or an operator), or
// whether the durable alone was deleted; and whether it created the
// durable again or found it there, created again by another party, and
// updated it to its settings or found it with them already. Before, a
// stream found there was said to be one whose durable alone had been
// deleted, its requests delivered again from the oldest, when the deleted
// stream had taken them with it; a stream this instance created, whose
// answer was lost (the server created it, the client gave up waiting, and
// the next try found it there), was said to be another party's, created_by
// naming this instance; and a durable found there was said to be created
// again.
func TestRecreatedConsumerLogSaysWhoCreatedTheStream(t *testing.T) {
	me := pipeline.Owner{Started: time.Now().UTC(), Name: "this instance"}
	other := pipeline.Owner{Started: time.Now().Add(-time.Hour).UTC(), Name: "partition 1's instance"}.String()
	for _, c := range []struct {
		name string
		// durableOnly deletes the durable alone, not the stream.
		durableOnly bool
		// first, when set, acts before this instance's first try to
		// create the request consumer again.
		first  func(t *testing.T, h *harness)
		want   string // in the warning's message
		not    string // not in it, when set
		wantBy string // its created_by
	}{
		{name: "this instance creates the stream again", want: "created again, empty, by this instance", not: "found"},
		{name: "another partition's instance created it again first", want: "found it there", not: "by this instance", wantBy: other,
			first: func(t *testing.T, h *harness) { createMarkedRequestStream(t, h, other) }},
		{name: "an earlier try of this instance created it, its answer lost", want: "created again, empty, by this instance", not: "another party",
			first: func(t *testing.T, h *harness) { createMarkedRequestStream(t, h, me.String()) }},
		{name: "the durable alone deleted", durableOnly: true, want: "created again with this instance's settings; the requests its stream holds are delivered again from the oldest", not: "found"},
		{name: "the durable alone deleted, and another party created it again first with other settings", durableOnly: true,
			want: "another party created it again before this instance could (an instance's start or an operator): found it there and updated it to this instance's settings", not: "created again with this instance's settings",
			first: func(t *testing.T, h *harness) {
				cfg := h.topo.Consumer(h.settings())
				cfg.AckWait = time.Minute
				createDurable(t, h, cfg)
			}},
		{name: "the durable alone deleted, and another party created it again first with this instance's settings", durableOnly: true,
			want: "another party created it again before this instance could (an instance's start or an operator): found it there with this instance's settings already, and left it as it was", not: "updated",
			first: func(t *testing.T, h *harness) { createDurable(t, h, h.topo.Consumer(h.settings())) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var once sync.Once
			var h *harness
			h = newHarness(t, harnessOptions{pipeline: fast, recreate: true, owner: me, beforeRecreate: func(context.Context) {
				if c.first != nil {
					once.Do(func() { c.first(t, h) })
				}
			}})
			logs := &logLines{}
			h.log = zerolog.New(logs)
			h.start()
			h.waitFor("the loop to pull", 10*time.Second, h.loop.Bound)
			var err error
			if c.durableOnly {
				err = h.obs.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
			} else {
				err = h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream)
			}
			if err != nil {
				t.Fatal(err)
			}
			var said []map[string]any
			h.waitFor("the loop's warning that it has its request consumer again", 20*time.Second, func() bool {
				said = logs.withField(t, "consumer")
				return len(said) > 0
			})
			msg, _ := said[0]["message"].(string)
			by, _ := said[0]["created_by"].(string)
			if len(said) != 1 || !strings.Contains(msg, c.want) || by != c.wantBy {
				t.Fatalf("the loop said %v; want one warning saying %q, created_by %q", said, c.want, c.wantBy)
			}
			if c.not != "" && strings.Contains(msg, c.not) {
				t.Fatalf("the loop said %q; want nothing of %q", msg, c.not)
			}
		})
	}
}

// createMarkedRequestStream creates the request stream with the
// topology's settings, marked as created again by mark
// (RecreatedByMetadataKey): as another instance does, or an earlier try
// of this one whose answer was lost.
func createMarkedRequestStream(t *testing.T, h *harness, mark string) {
	t.Helper()
	cfg := h.topo.Streams()[0]
	cfg.Metadata = map[string]string{pipeline.RecreatedByMetadataKey: mark}
	// The server may still be removing the deleted stream's files for a
	// moment ("error creating store for stream"), as the loop's tries
	// may find.
	var err error
	for try := 0; try < 50; try++ {
		if _, err = h.obs.CreateStream(context.Background(), cfg); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("create the request stream marked %q: %v", mark, err)
}

// createDurable creates the durable request consumer as cfg, as another
// party does, a moment after the durable was deleted.
func createDurable(t *testing.T, h *harness, cfg jetstream.ConsumerConfig) {
	t.Helper()
	// The server may still be removing the deleted durable: it refuses
	// the create ("consumer does not exist"), or removes the new one's
	// files afterwards, and then refuses every update of it ("open
	// …/meta.inf.tmp: no such file or directory"). An update tells.
	var err error
	for try := 0; try < 50; try++ {
		if _, err = h.obs.CreateConsumer(context.Background(), pipeline.DefaultRequestStream, cfg); err == nil {
			if _, err = h.obs.UpdateConsumer(context.Background(), pipeline.DefaultRequestStream, cfg); err == nil {
				return
			}
			_ = h.obs.DeleteConsumer(context.Background(), pipeline.DefaultRequestStream, cfg.Durable)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the other party's durable: %v", err)
}

// withField returns the log lines that have field, decoded.
func (l *logLines) withField(t *testing.T, field string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := e[field]; ok {
			out = append(out, e)
		}
	}
	return out
}

// A request stream deleted and created again numbers its requests from 1
// again: a correction published to the new stream has a lower sequence
// (#1) than the older request whose record it finds (#4, behind three
// requests rejected as invalid). It is the later request, and it starts the
// order over rather than being refused as a stale copy: two requests are
// ordered by their sequences only when delivered through the same durable,
// which the server deletes with its stream (the records the loop writes
// keep the durable's creation), and by their timestamps otherwise.
func TestCorrectionInARecreatedRequestStreamIsNotAStaleCopy(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, recreate: true, sandbox: nuonuoRejects(1)})
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "RECREATED-STALE"}
	for i := range 3 {
		h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, fmt.Sprintf("INVALID-%d", i), func(o *schemas.Order) { o.BuyerName = "" }), "")
	}
	// Published before the loop starts: publishRaw reads the request back
	// from the work-queue stream, which a running loop may already have
	// emptied.
	older := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil))
	h.start()
	if r := h.waitResult(key.Seller, key.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusRejected {
		t.Fatalf("the older request: %s %+v; want rejected", r.Status, r.Error)
	}
	oldDurable := h.cons.CachedInfo().Created
	rec, _, err := h.db.Get(ctx, key)
	if err != nil || rec.RequestStream != pipeline.DefaultRequestStream || rec.RequestStreamSeq != older.Sequence ||
		!rec.RequestConsumerCreated.Equal(oldDurable) || !rec.RequestPublishedAt.Equal(older.Time) {
		t.Fatalf("the older request's record keeps %s #%d (durable of %s) at %s (%v); want %s #%d (durable of %s) at %s",
			rec.RequestStream, rec.RequestStreamSeq, rec.RequestConsumerCreated, rec.RequestPublishedAt, err,
			pipeline.DefaultRequestStream, older.Sequence, oldDurable, older.Time)
	}
	h.waitFor("the old stream to empty", 10*time.Second, h.requestStreamEmpty)

	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the request stream and its consumer created again", 20*time.Second, func() bool {
		_, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		return err == nil && h.loop.Bound() && h.loop.Missing() == nil
	})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }),
		"correction-in-the-new-stream")
	res := h.waitResult(key.Seller, key.OrderNo, 2, 10*time.Second)
	if r := res[1]; r.Status != schemas.StatusIssued || r.Fingerprint == res[0].Fingerprint {
		t.Fatalf("the correction in the new stream: %s %+v; want it issued, not refused as a stale copy", r.Status, r.Error)
	}
	rec = h.issuedRecord(key)
	if rec.RequestStreamSeq != 1 || rec.RequestConsumerCreated.IsZero() || rec.RequestConsumerCreated.Equal(oldDurable) {
		t.Fatalf("the correction's record keeps #%d, durable of %s; want #1, the new durable's", rec.RequestStreamSeq, rec.RequestConsumerCreated)
	}
}

// A try to create the request consumer again that is refused once (the
// server sometimes refuses a file-storage stream created a moment after
// its deletion: "error creating store for stream"), the next one
// succeeding, is logged as a warning that says the loop tries again, not
// as an error: a one-off is not for the SRE to act on. A second refusal in
// a row is an error, even one with the same words. Meanwhile the loop is
// not bound, Missing says why and invoice_request_consumer_missing is 1,
// as /readyz and the gauge report; once it has its consumer again, none.
// Before, the first refusal was an error, and a second with the same
// words went unsaid.
func TestRecreateRefusedOnceIsAWarning(t *testing.T) {
	for _, c := range []struct {
		name     string
		refusals int32
		levels   []string // of the refusals' log lines, in order
	}{
		{name: "refused once", refusals: 1, levels: []string{"warn"}},
		{name: "refused twice", refusals: 2, levels: []string{"warn", "error"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			metrics := pipeline.NewMetrics(prometheus.NewRegistry())
			// Another stream holds the request subjects for the first
			// tries, which are refused for it.
			var tries atomic.Int32
			var h *harness
			h = newHarness(t, harnessOptions{pipeline: fast, recreate: true, metrics: metrics, beforeRecreate: func(ctx context.Context) {
				switch tries.Add(1) {
				case 1:
					if _, err := h.obs.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{schemas.Subjects{}.RequestFilter()}, Storage: jetstream.MemoryStorage}); err != nil {
						t.Errorf("the other stream: %v", err)
					}
				case c.refusals + 1:
					if err := h.obs.DeleteStream(ctx, "SQUATTER"); err != nil {
						t.Errorf("delete the other stream: %v", err)
					}
				}
			}})
			logs := &logLines{}
			h.log = zerolog.New(logs)
			h.start()
			h.waitFor("the loop to pull", 10*time.Second, h.loop.Bound)
			if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
				t.Fatal(err)
			}
			h.waitFor("the loop to report the refusal", 20*time.Second, func() bool {
				err := h.loop.Missing()
				return err != nil && strings.Contains(err.Error(), "creating it again failed")
			})
			if v := testutil.ToFloat64(metrics.ConsumerMissing); v != 1 || h.loop.Bound() {
				t.Errorf("after a refusal: invoice_request_consumer_missing %v, Bound %v; want 1, false", v, h.loop.Bound())
			}
			h.waitFor("the request consumer created again", 20*time.Second, func() bool {
				return h.loop.Missing() == nil && h.loop.Bound()
			})
			if v := testutil.ToFloat64(metrics.ConsumerMissing); v != 0 {
				t.Errorf("once created again: invoice_request_consumer_missing %v; want 0", v)
			}
			said := logs.withField(t, "retry_in")
			var levels []string
			for _, e := range said {
				levels = append(levels, fmt.Sprint(e["level"]))
			}
			if !slices.Equal(levels, c.levels) {
				t.Fatalf("the refusals were logged as %v; want %v:\n%v", levels, c.levels, said)
			}
			if msg := fmt.Sprint(said[0]["message"]); !strings.Contains(msg, "trying again") {
				t.Errorf("the first refusal said %q; want it to say that the loop tries again", msg)
			}
			if n := tries.Load(); n != c.refusals+1 {
				t.Errorf("%d tries; want %d", n, c.refusals+1)
			}
		})
	}
}

// The server takes a deleted stream out of its account before it removes
// the stream's files (nats-server v2.15.2 and v2.15.3: stream.stop, then
// fileStore.Delete). The loop, told at once that its durable was deleted,
// may create the stream again in that moment: the server builds the new
// stream on the deleted one's files (it holds their sequences, older than
// itself) and the removal then takes them from under it. The server then
// stores nothing in the stream and answers no publish to it, while stream
// info looks sane; the loop said it was bound, and an order system's
// publish got no answer at all. The test forces that moment: for the
// loop's first try it puts the deleted stream's files back, as the server
// still has them, and removes them after the try as the server does. The
// loop deletes the broken stream and creates it again at its next try;
// meanwhile it is not bound, Missing says why, invoice_request_consumer_missing
// is 1 (as /readyz and the gauge report), and the log says what happened.
func TestRequestStreamBuiltOnTheDeletedOnesFilesIsCreatedAgain(t *testing.T) {
	ctx := context.Background()
	name := pipeline.DefaultRequestStream
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	deleted := filepath.Join(t.TempDir(), "deleted") // the deleted stream's files
	var tries atomic.Int32
	done := make(chan struct{}) // closed once the deletion is answered
	// What the loop's second try found when it began.
	var mu sync.Mutex
	var (
		retried   bool
		bound     bool
		missing   error
		gauge     float64
		streamErr error
	)
	var h *harness
	h = newHarness(t, harnessOptions{pipeline: fast, recreate: true, metrics: metrics,
		beforeRecreate: func(ctx context.Context) {
			switch tries.Add(1) {
			case 1:
				// Once the deletion is done (the server has answered
				// it), whatever the moment the loop heard of it.
				select {
				case <-done:
				case <-ctx.Done():
					t.Errorf("the stream's deletion not answered before the try's end: %v", ctx.Err())
					return
				}
				if err := os.CopyFS(h.streamDir(name), os.DirFS(deleted)); err != nil {
					t.Errorf("put the deleted stream's files back: %v", err)
				}
			case 2:
				_, err := h.obs.Stream(ctx, name)
				mu.Lock()
				defer mu.Unlock()
				retried, bound, missing, gauge, streamErr = true, h.loop.Bound(), h.loop.Missing(), testutil.ToFloat64(metrics.ConsumerMissing), err
			}
		},
		afterRecreate: func(pipeline.RecreatedConsumer, error) {
			if tries.Load() == 1 {
				removeAsADeletedStreams(t, h.streamDir(name))
			}
		}})
	logs := &logLines{}
	h.log = zerolog.New(logs)
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "OLD-FILES-J", nil), "")
	h.waitResult(jumdataSeller, "OLD-FILES-J", 1, 10*time.Second)
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	if err := os.CopyFS(deleted, os.DirFS(h.streamDir(name))); err != nil {
		t.Fatal(err)
	}
	if err := h.obs.DeleteStream(ctx, name); err != nil {
		t.Fatal(err)
	}
	close(done)
	h.waitFor("the loop to have its request consumer again", 20*time.Second, func() bool {
		_, err := h.obs.Consumer(ctx, name, pipeline.DefaultDurable)
		return err == nil && h.loop.Bound() && h.loop.Missing() == nil
	})
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NEW-FILES-J", nil), "")
	if r := h.waitResult(jumdataSeller, "NEW-FILES-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("a request published to the stream created again: %s", r.Status)
	}

	mu.Lock()
	defer mu.Unlock()
	if !retried {
		t.Fatalf("the loop took its first try's stream, built on the deleted one's files, and tried no more (%d tries)", tries.Load())
	}
	if bound || !errors.Is(missing, pipeline.ErrConsumerMissing) || !strings.Contains(fmt.Sprint(missing), "on the files of the deleted stream") || gauge != 1 {
		t.Errorf("before its next try: Bound %v, Missing %v, invoice_request_consumer_missing %v; want false, the broken stream, 1", bound, missing, gauge)
	}
	if !errors.Is(streamErr, jetstream.ErrStreamNotFound) {
		t.Errorf("the broken stream before the next try: %v; want it deleted", streamErr)
	}
	said := logs.withField(t, "retry_in")
	if len(said) != 1 || said[0]["level"] != "warn" || !strings.Contains(fmt.Sprint(said[0]["error"]), "deleted it, to create it again") {
		t.Errorf("the loop said %v; want one warning that it deleted the broken stream to create it again", said)
	}
}

// removeAsADeletedStreams removes a stream's files at dir as the server
// removes a deleted stream's (fileStore.Delete): its meta.inf, then the
// directory, renamed aside first; it stops where it finds nothing, as the
// server's does. It first waits (10 s at most) for the server to finish
// removing the files of the deletion before, renamed aside where it
// renames these.
func removeAsADeletedStreams(t *testing.T, dir string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(aside(dir)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the files of the deletion before still at %s after 10 s", aside(dir))
			return
		}
	}
	if err := os.Remove(filepath.Join(dir, "meta.inf")); err != nil {
		return
	}
	if err := os.Rename(dir, aside(dir)); err != nil {
		t.Errorf("remove the deleted stream's files: %v", err)
		return
	}
	if err := os.RemoveAll(aside(dir)); err != nil {
		t.Errorf("remove the deleted stream's files: %v", err)
	}
}

// aside is where the server renames a deleted stream's files at dir before
// it removes them.
func aside(dir string) string { return filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)) }

// A durable deleted alone (nats consumer rm) is created again by the loop
// with files that the server keeps. The server takes a deleted durable out
// of its stream before it removes the durable's files (consumer
// stopWithFlags, nats-server v2.15.2), and tells the pulls waiting on it
// first: the loop, told at once, created the durable again in that moment,
// and the removal then took the new durable's files. The server refused
// every update of it from then on ("open …/meta.inf.tmp: no such file or
// directory"), the next start's EnsureConsumer with them (each of three
// deletions here had that chance, and one or another nearly always hit
// it). The loop now waits RecreateSettle before it creates anything
// again; the server gives no sign of when its removal is done.
func TestDurableDeletedAloneIsCreatedAgainWithItsFiles(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, recreate: true})
	h.start()
	h.waitFor("the loop to pull", 10*time.Second, h.loop.Bound)
	for i := range 3 {
		deleted, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.obs.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
			t.Fatal(err)
		}
		var again jetstream.Consumer
		h.waitFor("the durable created again", 20*time.Second, func() bool {
			again, err = h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
			return err == nil && again.CachedInfo().Created.After(deleted.CachedInfo().Created) && h.loop.Bound() && h.loop.Missing() == nil
		})
		if _, err := h.obs.UpdateConsumer(ctx, pipeline.DefaultRequestStream, again.CachedInfo().Config); err != nil {
			t.Fatalf("deletion %d: the durable created again refuses a write of its own settings, as it would the next start's: %v", i+1, err)
		}
	}
	h.stop()
	h.start() // EnsureConsumer updates the durable
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "AFTER-DURABLE-J", nil), "")
	if r := h.waitResult(jumdataSeller, "AFTER-DURABLE-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("a request after the durable was created again: %s", r.Status)
	}
}

// The request stream deleted and created again with its durable by
// another party (an operator applying the definitions again) while every
// worker is busy and the loop holds a request it took for the next free
// one: no pull request waits on the server then, so nobody tells the loop
// that its durable was deleted (the server tells the pulls waiting on it),
// and the loop's next pull, once a worker is free, is answered by the new
// durable of the same name. The correction published to the new stream
// (#1) is the later request of its order, whose record keeps the deleted
// stream's #4: it is issued, not refused as a stale copy. Before, the
// loop took the new durable for the one it had bound to, whose creation
// (Message.ConsumerCreated) it still labelled the deliveries with, and the
// two sequences of two streams were compared as one stream's.
func TestDurableReplacedUnseenIsNotTakenForTheOldOne(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, workers: 1, sandbox: nuonuoRejects(1)})
	held := newHeldProvider(h.provs[jumdataSeller], "BUSY-J")
	h.provs[jumdataSeller] = held
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "REPLACED-UNSEEN"}
	for i := range 3 {
		h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, fmt.Sprintf("INVALID-%d", i), func(o *schemas.Order) { o.BuyerName = "" }), "")
	}
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil), "")
	logs := &logLines{}
	h.log = zerolog.New(logs)
	h.start()
	if r := h.waitResult(key.Seller, key.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusRejected {
		t.Fatalf("the older request: %s %+v; want rejected", r.Status, r.Error)
	}
	if rec, _, err := h.db.Get(ctx, key); err != nil || rec.RequestStreamSeq != 4 {
		t.Fatalf("the older request's record keeps #%d (%v); want #4", rec.RequestStreamSeq, err)
	}
	h.waitFor("the old stream to empty", 10*time.Second, h.requestStreamEmpty)

	replaceUnseen(t, h, held)
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	close(held.release)

	res := h.waitResult(key.Seller, key.OrderNo, 2, 10*time.Second)
	if r := res[1]; r.Status != schemas.StatusIssued || r.Fingerprint == res[0].Fingerprint {
		t.Fatalf("the correction in the new stream: %s %+v; want it issued, not refused as a stale copy", r.Status, r.Error)
	}
	now, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	if rec := h.issuedRecord(key); rec.RequestStreamSeq != 1 || !rec.RequestConsumerCreated.Equal(now.CachedInfo().Created) {
		t.Fatalf("the correction's record keeps #%d, durable of %s; want #1, the new durable's (%s)",
			rec.RequestStreamSeq, rec.RequestConsumerCreated, now.CachedInfo().Created)
	}
	said := logs.withField(t, "consumer_seq")
	if len(said) != 1 || said[0]["level"] != "warn" || !strings.Contains(fmt.Sprint(said[0]["message"]), "not the one this instance was bound to") {
		t.Fatalf("the loop said %v; want one warning that the durable delivering is another one", said)
	}
}

// The request stream deleted and created again with its durable by
// another party (an operator applying the definitions again) after the
// loop bound to its durable and before the loop's first pull, the durable
// bound having delivered nothing: nothing tells the loop (no pull request
// of its waited on the deleted durable), and its first pull is answered by
// the new durable, whose first consumer sequence (1) is above the bound
// one's (0) as any first delivery's is. The loop reads the durable's info
// at its first delivery and finds another creation: the requests are
// labelled with the new durable's creation, and the stream's unclaimed
// mark is unknown, so a jumdata order that could go without a claim is
// claimed. Before, the loop took the new durable for the one it was bound
// to: it submitted the order without a claim under the deleted stream's
// mark (raising it), which no later start reads (a start reads the mark
// of the stream as created then): after a crash before the answer's save,
// the request would not be recorded, and, delivered again past jumdata's
// repeat window, it would be submitted again, a second invoice.
func TestDurableReplacedBeforeItsFirstDeliveryIsNotTakenForTheOldOne(t *testing.T) {
	ctx := context.Background()
	h, p, cons, wl := claimlessBound(t)
	bound := cons.CachedInfo()
	deletedMark := unclaimedMarkName(t, h)
	markBefore, err := h.db.Mark(deletedMark) // as RecoverUnclaimed set it
	if err != nil {
		t.Fatal(err)
	}

	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	createMarkedRequestStream(t, h, "an operator")
	createDurable(t, h, h.topo.Consumer(h.settings()))
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "FIRST-AFTER-REPLACED"}
	h.publish(key.Seller, issueRequest(t, key.Seller, key.OrderNo, nil), "")

	logs := &logLines{}
	halt := runLoop(t, pipeline.NewLoop(pipeline.LoopConfig{Workers: h.workers, AckWait: 5 * time.Second}, p, cons, zerolog.New(logs), nil))

	if r := h.waitResult(key.Seller, key.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	halt()
	if got := wl.of(key.OrderNo); len(got) == 0 || got[0] != schemas.StateSubmitting {
		t.Errorf("the order was written as %v; want a claim first (the new stream's unclaimed mark is unknown)", got)
	}
	if v, err := h.db.Mark(deletedMark); err != nil || v != markBefore {
		t.Errorf("the deleted stream's unclaimed mark is %d (%v); want it left at %d, not raised for the new stream's request", v, err, markBefore)
	}
	now, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	if rec := h.issuedRecord(key); !rec.RequestConsumerCreated.Equal(now.CachedInfo().Created) {
		t.Errorf("the record keeps the durable of %s; want the new durable's (%s), not the one bound (%s)",
			rec.RequestConsumerCreated, now.CachedInfo().Created, bound.Created)
	}
	said := logs.withField(t, "consumer_seq")
	if len(said) != 1 || said[0]["level"] != "warn" || !strings.Contains(fmt.Sprint(said[0]["message"]), "not the one this instance was bound to") {
		t.Errorf("the loop said %v; want one warning that the durable delivering is another one", said)
	}
}

// replaceUnseen makes the loop's durable replaced unseen: the only worker
// busy with a jumdata order whose submission held holds, and the next
// request (WAITING-J) taken and held for it, so that no pull request waits
// to be told, the request stream is deleted and created again, with its
// durable, by another party ("an operator").
func replaceUnseen(t *testing.T, h *harness, held *heldProvider) {
	t.Helper()
	ctx := context.Background()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "BUSY-J", nil), "")
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the busy order's submission did not start within 10 s")
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "WAITING-J", nil), "")
	h.waitFor("the loop to hold the next request, no pull request waiting", 10*time.Second, func() bool {
		c, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		if err != nil {
			t.Fatal(err)
		}
		info := c.CachedInfo()
		return info.NumAckPending == 2 && info.NumPending == 0 && info.NumWaiting == 0
	})
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	createMarkedRequestStream(t, h, "an operator")
	createDurable(t, h, h.topo.Consumer(h.settings()))
}

// The read of the durable's info at the first delivery after the loop
// binds fails (the server's API not answering for a moment, as during a
// reconnect at a start): the loop cannot tell the durable from a
// replacement, so that delivery's order is claimed, and the warning says
// so. The read is tried again at the next delivery, and when it finds the
// durable the loop was bound to, the stream's unclaimed mark is known
// again: the next jumdata order goes without a claim, under the mark,
// labelled with the durable's creation. Before, one failed read left every
// order claimed, and labelled with no creation, until the instance was
// restarted, which the single warning at the first delivery was the only
// sign of (days, for an instance nobody restarts).
func TestFirstDeliveryNotCheckedIsCheckedAgainAtTheNext(t *testing.T) {
	h, p, cons, wl := claimlessBound(t)
	bound := cons.CachedInfo()
	mark := unclaimedMarkName(t, h)
	markBefore, err := h.db.Mark(mark) // as RecoverUnclaimed set it
	if err != nil {
		t.Fatal(err)
	}
	cut := &cutOff{Consumer: cons}
	cut.off.Store(true) // the first delivery's check cannot read the info

	logs := &logLines{}
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	unknown := metrics.UnclaimedMarkUnknown.WithLabelValues(pipeline.DefaultRequestStream)
	halt := runLoop(t, pipeline.NewLoop(pipeline.LoopConfig{Workers: h.workers, AckWait: 5 * time.Second}, p, cut, zerolog.New(logs), metrics))
	if v := testutil.ToFloat64(unknown); v != 0 {
		t.Errorf("invoice_unclaimed_mark_unknown is %v before the first delivery; want 0 (RecoverUnclaimed read the mark)", v)
	}

	first := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "UNCHECKED-1"}
	h.publish(first.Seller, issueRequest(t, first.Seller, first.OrderNo, nil), "")
	if r := h.waitResult(first.Seller, first.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	if v := testutil.ToFloat64(unknown); v != 1 {
		t.Errorf("invoice_unclaimed_mark_unknown is %v after the unchecked delivery; want 1 (every order is claimed)", v)
	}
	cut.off.Store(false) // the server answers again
	next := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "CHECKED-2"}
	h.publish(next.Seller, issueRequest(t, next.Seller, next.OrderNo, nil), "")
	if r := h.waitResult(next.Seller, next.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	if v := testutil.ToFloat64(unknown); v != 0 {
		t.Errorf("invoice_unclaimed_mark_unknown is %v after the check found the durable bound; want 0 (the mark is known again)", v)
	}
	firstRec, nextRec := h.issuedRecord(first), h.issuedRecord(next)
	halt()

	if got := wl.of(first.OrderNo); len(got) == 0 || got[0] != schemas.StateSubmitting {
		t.Errorf("the first order was written as %v; want a claim first (its delivery could not be checked)", got)
	}
	if !firstRec.RequestConsumerCreated.IsZero() {
		t.Errorf("the first order's record keeps the durable of %s; want none (its delivery could not be checked)", firstRec.RequestConsumerCreated)
	}
	if got := wl.of(next.OrderNo); len(got) == 0 || got[0] == schemas.StateSubmitting {
		t.Errorf("the next order was written as %v; want no claim: the check at its delivery found the durable bound", got)
	}
	if !nextRec.RequestConsumerCreated.Equal(bound.Created) {
		t.Errorf("the next order's record keeps the durable of %s; want the one bound (%s)", nextRec.RequestConsumerCreated, bound.Created)
	}
	if v, err := h.db.Mark(mark); err != nil || v <= markBefore {
		t.Errorf("the stream's unclaimed mark is %d (%v); want it raised above %d for the next order, submitted without a claim", v, err, markBefore)
	}
	said := logs.withField(t, "consumer_seq")
	if len(said) != 2 || said[0]["level"] != "warn" || !strings.Contains(fmt.Sprint(said[0]["message"]), "could not be checked") ||
		!strings.Contains(fmt.Sprint(said[1]["message"]), "checked now") {
		t.Errorf("the loop said %v; want a warning that the first delivery could not be checked, then that the next one was checked", said)
	}
}

// As TestFirstDeliveryNotCheckedIsCheckedAgainAtTheNext, but the durable
// delivering is indeed another one: the request stream and its durable
// were deleted and created again by another party after the loop bound and
// before its first pull. The check tried again at the next delivery finds
// the new durable's creation: the stream's unclaimed mark stays unknown
// (the deleted stream's is not given back), both orders are claimed, the
// second is labelled with the new durable's creation, and the loop says
// that the durable delivering is not the one it was bound to.
func TestFirstDeliveryNotCheckedFromAReplacedDurableStaysClaimed(t *testing.T) {
	ctx := context.Background()
	h, p, cons, wl := claimlessBound(t)
	deletedMark := unclaimedMarkName(t, h)
	markBefore, err := h.db.Mark(deletedMark) // as RecoverUnclaimed set it
	if err != nil {
		t.Fatal(err)
	}
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	createMarkedRequestStream(t, h, "an operator")
	createDurable(t, h, h.topo.Consumer(h.settings()))
	cut := &cutOff{Consumer: cons}
	cut.off.Store(true) // the first delivery's check cannot read the info

	logs := &logLines{}
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	halt := runLoop(t, pipeline.NewLoop(pipeline.LoopConfig{Workers: h.workers, AckWait: 5 * time.Second}, p, cut, zerolog.New(logs), metrics))

	keys := []schemas.OrderKey{{Seller: jumdataSeller, OrderNo: "REPLACED-UNCHECKED-1"}, {Seller: jumdataSeller, OrderNo: "REPLACED-CHECKED-2"}}
	for i, k := range keys {
		if i == 1 {
			cut.off.Store(false) // the server answers again
		}
		h.publish(k.Seller, issueRequest(t, k.Seller, k.OrderNo, nil), "")
		if r := h.waitResult(k.Seller, k.OrderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
			t.Fatalf("%s: result %s %+v", k.OrderNo, r.Status, r.Error)
		}
	}
	rec := h.issuedRecord(keys[1])
	if v := testutil.ToFloat64(metrics.UnclaimedMarkUnknown.WithLabelValues(pipeline.DefaultRequestStream)); v != 1 {
		t.Errorf("invoice_unclaimed_mark_unknown is %v; want 1 (the new stream's mark stays unknown, every order is claimed)", v)
	}
	halt()

	for _, k := range keys {
		if got := wl.of(k.OrderNo); len(got) == 0 || got[0] != schemas.StateSubmitting {
			t.Errorf("%s was written as %v; want a claim first (the new stream's unclaimed mark is unknown)", k.OrderNo, got)
		}
	}
	if v, err := h.db.Mark(deletedMark); err != nil || v != markBefore {
		t.Errorf("the deleted stream's unclaimed mark is %d (%v); want it left at %d", v, err, markBefore)
	}
	now, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.RequestConsumerCreated.Equal(now.CachedInfo().Created) {
		t.Errorf("the second record keeps the durable of %s; want the new durable's (%s)", rec.RequestConsumerCreated, now.CachedInfo().Created)
	}
	said := logs.withField(t, "consumer_seq")
	if len(said) != 2 || !strings.Contains(fmt.Sprint(said[0]["message"]), "could not be checked") ||
		said[1]["level"] != "warn" || !strings.Contains(fmt.Sprint(said[1]["message"]), "not the one this instance was bound to") {
		t.Errorf("the loop said %v; want a warning that the first delivery could not be checked, then one that the durable delivering is another one", said)
	}
}

// runLoop runs loop until the test ends or the returned halt is called,
// whichever comes first (halt is the test's cleanup, registered before the
// store's close runs), and fails the test when the loop returns an error or
// does not stop within 30 s.
func runLoop(t *testing.T, loop *pipeline.Loop) (halt func()) {
	t.Helper()
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop.Run(runCtx) }()
	halt = sync.OnceFunc(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("loop: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the loop did not stop within 30s")
		}
	})
	t.Cleanup(halt)
	return halt
}

// claimlessBound is a harness whose pipeline submits young jumdata orders
// without a claim, having read the request stream's unclaimed mark as a
// start does (firstRun; wl logs its store's writes), and the request
// durable it binds to, which has delivered nothing yet.
func claimlessBound(t *testing.T) (h *harness, p *pipeline.Pipeline, cons jetstream.Consumer, wl *writeLog) {
	t.Helper()
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano()) // young: jumdata orders may go without a claim
	wl = &writeLog{}
	h = newHarness(t, harnessOptions{pipeline: fast})
	wl.Store = h.db
	p = firstRun(t, h, fast, wl, backlog, true)
	cons, err := h.topo.EnsureConsumer(context.Background(), h.js, h.settings())
	if err != nil {
		t.Fatal(err)
	}
	if n := cons.CachedInfo().Delivered.Consumer; n != 0 {
		t.Fatalf("setup: the durable bound has delivered %d", n)
	}
	return h, p, cons, wl
}
