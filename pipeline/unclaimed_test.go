package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// settableBacklog is a Backlog whose reading the test sets.
type settableBacklog struct{ at atomic.Int64 }

func (b *settableBacklog) OldestWaiting() (time.Time, bool) { return time.Unix(0, b.at.Load()), true }

// unclaimedMark reads the request stream's unclaimed mark.
func unclaimedMark(t *testing.T, h *harness) uint64 {
	t.Helper()
	v, err := h.db.Mark("unclaimed:" + pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// publishRaw publishes a request and returns it as the stream holds it.
func publishRaw(t *testing.T, h *harness, seller string, data []byte) *jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	ack, err := h.obs.Publish(ctx, schemas.Subjects{}.Request(seller), data)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The case the claim exists for, without the claim: a jumdata order is
// submitted without a claim, and the consumer crashes before the answer is
// saved. Nine hours later (jumdata has forgotten the taskId) a corrected
// request for the same order has arrived too. At start-up the consumer
// records the first request's order as possibly submitted, found through
// the unclaimed mark raised before the submission: the corrected request
// conflicts with it, and the first request finds its invoice at jumdata.
// Without that record, both would be submitted again: a second invoice.
func TestCrashAfterClaimlessSubmissionThenLongOutage(t *testing.T) {
	ctx := context.Background()
	var ahead atomic.Int64 // every clock but the stream's runs this far ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fast
	cfg.Now = clock
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog, sandbox: sandbox.Config{Now: clock}})
	h.provs[jumdataSeller] = directJumdata(t, h, clock)

	// The first run takes the request and submits it without a claim; the
	// crash comes before its answer is saved.
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "CRASH-J", nil))
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	crashing := &writeLog{Store: h.db, failIssued: "CRASH-J"}
	run1, err := pipeline.New(cfg, v, crashing, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), h.provs)
	if err != nil {
		t.Fatal(err)
	}
	run1.WatchBacklog(backlog, h.db)
	out := run1.Process(ctx, &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Stream: pipeline.DefaultRequestStream,
		StreamSeq: raw.Sequence, Deliveries: 1, PublishedAt: raw.Time})
	if out.Published != nil {
		_ = out.Published(ctx)
	}
	if got := crashing.of("CRASH-J"); len(got) != 0 {
		t.Fatalf("order written as %v before the submission: want no claim", got)
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "CRASH-J"}); found {
		t.Fatal("the order has a record: the crash was not simulated")
	}
	if st := h.orderStats(jumdataSeller, "CRASH-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v after the first run", st)
	}
	if m := unclaimedMark(t, h); m <= raw.Sequence {
		t.Fatalf("unclaimed mark %d, want above the request's sequence %d", m, raw.Sequence)
	}

	// Nine hours on, a corrected request for the order waits behind it.
	ahead.Store(int64(9 * time.Hour))
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "CRASH-J", func(o *schemas.Order) { o.Clerk = "李四" }), "")
	h.start()
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
	}
	res := h.waitResult(jumdataSeller, "CRASH-J", 2, 15*time.Second)
	h.waitFor("both requests to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	var issued, conflicts int
	for _, r := range res {
		switch r.Status {
		case schemas.StatusIssued:
			issued++
		case schemas.StatusConflict:
			conflicts++
		default:
			t.Errorf("result %s %+v", r.Status, r.Error)
		}
	}
	if issued != 1 || conflicts != 1 {
		t.Errorf("%d issued and %d conflict results, want one of each", issued, conflicts)
	}
	if st := h.orderStats(jumdataSeller, "CRASH-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: the order was issued twice", st)
	}
}

// RecoverUnclaimed records only what may have been submitted without a
// claim: valid requests below the unclaimed mark, for a seller whose
// provider repeats submissions, whose order has no record; it dates the
// submission from the request's publication. With no mark it reads
// nothing.
func TestRecoverUnclaimedRecordsOnlyWhatMayHaveBeenSubmitted(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, streamBacklog: true})
	h.start()
	if h.recovered != 0 || unclaimedMark(t, h) != 0 {
		t.Fatalf("a fresh store: recovered %d, mark %d", h.recovered, unclaimedMark(t, h))
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "DONE-J", nil), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "DONE-N", nil), "")
	h.waitResult(jumdataSeller, "DONE-J", 1, 10*time.Second)
	h.waitResult(nuonuoSeller, "DONE-N", 1, 10*time.Second)
	h.waitFor("the requests to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.stop()
	mark := unclaimedMark(t, h)
	if mark < 2 {
		t.Fatalf("unclaimed mark %d after a claimless submission", mark)
	}

	// Left in the stream by a crash: one of each kind.
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "WAIT-N", nil), "")              // always claimed
	h.publish(jumdataSeller, []byte(`{"schemaVersion":"1","kind":"issue"}`), "")           // invalid
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "DONE-J", nil), "")            // recorded already
	want := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "WAIT-J", nil)) // may have been submitted
	if want.Sequence >= mark {
		t.Fatalf("request #%d not below the mark %d", want.Sequence, mark)
	}
	stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.p.RecoverUnclaimed(ctx, stream, schemas.Subjects{}.RequestFilter(), h.db)
	if err != nil || n != 1 {
		t.Fatalf("RecoverUnclaimed = %d, %v; want 1", n, err)
	}
	rec, found, err := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "WAIT-J"})
	if err != nil || !found || rec.State != schemas.StateSubmitting || rec.Submissions != 1 || !rec.SubmittedAt.Equal(want.Time) {
		t.Fatalf("WAIT-J stored %+v (found %v, %v): want possibly submitted since %s", rec, found, err, want.Time)
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "WAIT-N"}); found {
		t.Fatal("a Nuonuo order was recorded: its requests are always claimed")
	}
	if done, _, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "DONE-J"}); done.State != schemas.StateIssued {
		t.Fatalf("DONE-J is %s now", done.State)
	}
	// Again: everything is recorded now.
	if n, err := h.p.RecoverUnclaimed(ctx, stream, schemas.Subjects{}.RequestFilter(), h.db); err != nil || n != 0 {
		t.Fatalf("second RecoverUnclaimed = %d, %v; want 0", n, err)
	}

	// The requests are answered from there: WAIT-J finds nothing at jumdata
	// and is submitted once.
	h.start()
	if r := h.waitResult(jumdataSeller, "WAIT-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("WAIT-J %s %+v", r.Status, r.Error)
	}
	if st := h.orderStats(jumdataSeller, "WAIT-J"); st.Issuances != 1 {
		t.Fatalf("WAIT-J sandbox %+v", st)
	}
}

// failingMarks cannot raise a mark (a full disk).
type failingMarks struct{ raises atomic.Int64 }

func (f *failingMarks) RaiseMark(context.Context, string, uint64) error {
	f.raises.Add(1)
	return errors.New("no space left on device")
}
func (f *failingMarks) Mark(string) (uint64, error) { return 0, nil }

// When the unclaimed mark cannot be raised, a crash could leave a
// claimless submission where RecoverUnclaimed would not look: the order is
// claimed instead, and every request tries the mark again.
func TestUnraisableMarkMeansAClaim(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	wl := &writeLog{Store: h.db}
	marks := &failingMarks{}
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(fast, v, wl, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), h.provs)
	if err != nil {
		t.Fatal(err)
	}
	p.WatchBacklog(backlog, marks)
	for i, no := range []string{"NOMARK-1", "NOMARK-2"} {
		raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, no, nil))
		out := p.Process(context.Background(), &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Stream: pipeline.DefaultRequestStream,
			StreamSeq: raw.Sequence, Deliveries: 1, PublishedAt: raw.Time})
		if out.Published != nil {
			if err := out.Published(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
			t.Fatalf("%s: %+v", no, out)
		}
		if got := wl.of(no); len(got) != 2 || got[0] != schemas.StateSubmitting {
			t.Errorf("%s written as %v, want a claim first", no, got)
		}
		if n := marks.raises.Load(); n != int64(i+1) {
			t.Errorf("%d raises after %d requests", n, i+1)
		}
	}
}
