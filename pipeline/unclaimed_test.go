package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// settableBacklog is a Backlog whose reading the test sets.
type settableBacklog struct{ at atomic.Int64 }

func (b *settableBacklog) OldestWaiting() (time.Time, bool) { return time.Unix(0, b.at.Load()), true }

// unclaimedMarkName is the name of the request stream's unclaimed mark.
func unclaimedMarkName(t *testing.T, h *harness) string {
	t.Helper()
	stream, err := h.obs.Stream(context.Background(), pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo()
	return fmt.Sprintf("unclaimed:%s:%d", info.Config.Name, info.Created.UnixNano())
}

// unclaimedMark reads the request stream's unclaimed mark.
func unclaimedMark(t *testing.T, h *harness) uint64 {
	t.Helper()
	v, err := h.db.Mark(unclaimedMarkName(t, h))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// recoverWith runs p's RecoverUnclaimed on the harness's request stream and
// consumer with marks, as a consumer does when it starts.
func recoverWith(t *testing.T, h *harness, p *pipeline.Pipeline, marks pipeline.Marks) int {
	t.Helper()
	n, err := recoverErr(t, h, p, marks)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// recoverErr is recoverWith returning RecoverUnclaimed's error.
func recoverErr(t *testing.T, h *harness, p *pipeline.Pipeline, marks pipeline.Marks) (int, error) {
	t.Helper()
	ctx := context.Background()
	cons, err := h.topo.EnsureConsumer(ctx, h.js, pipeline.ConsumerSettings{Workers: h.workers, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	return p.RecoverUnclaimed(ctx, stream, cons, marks)
}

// firstRun is a pipeline of a consumer run that stops (crashes) after the
// deliveries a test makes by hand: claimless, or claiming every order; its
// saves go to st.
func firstRun(t *testing.T, h *harness, cfg pipeline.Config, st pipeline.Store, backlog pipeline.Backlog, claimless bool) *pipeline.Pipeline {
	t.Helper()
	return firstRunWith(t, h, cfg, st, backlog, claimless, h.db)
}

// firstRunWith is firstRun with the unclaimed marks kept in marks.
func firstRunWith(t *testing.T, h *harness, cfg pipeline.Config, st pipeline.Store, backlog pipeline.Backlog, claimless bool, marks pipeline.Marks) *pipeline.Pipeline {
	t.Helper()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(cfg, v, st, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), h.provs)
	if err != nil {
		t.Fatal(err)
	}
	if claimless {
		p.WatchBacklog(backlog, marks)
	}
	recoverWith(t, h, p, marks)
	return p
}

// takeNext fetches the next request through the harness's consumer, as a
// run would take it: the server counts it delivered. Put back at once (as
// after the crash of the run that took it), it is delivered again at the
// next start without waiting for its ack wait.
func takeNext(t *testing.T, h *harness) (*pipeline.Message, func()) {
	t.Helper()
	m, jm := fetchNext(t, h)
	return m, func() { _ = jm.Nak() }
}

// fetchNext fetches the next request through the harness's consumer, as a
// run would take it, and returns it as the pipeline sees it with the
// JetStream message to acknowledge or put back.
func fetchNext(t *testing.T, h *harness) (*pipeline.Message, jetstream.Msg) {
	t.Helper()
	ctx := context.Background()
	cons, err := h.topo.EnsureConsumer(ctx, h.js, pipeline.ConsumerSettings{Workers: h.workers, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	jm, ok := <-batch.Messages()
	if !ok {
		t.Fatalf("no request to take: %v", batch.Error())
	}
	meta, err := jm.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	return &pipeline.Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers(), Stream: meta.Stream,
		StreamSeq: meta.Sequence.Stream, Deliveries: int(meta.NumDelivered), PublishedAt: meta.Timestamp,
		ConsumerCreated: cons.CachedInfo().Created}, jm
}

// crashWhile processes m through p as a run that crashes before it could
// acknowledge m, and puts m back.
func crashWhile(t *testing.T, p *pipeline.Pipeline, m *pipeline.Message, putBack func()) pipeline.Outcome {
	t.Helper()
	out := p.Process(context.Background(), m)
	if out.Published != nil {
		_ = out.Published(context.Background())
	}
	putBack()
	return out
}

// deliverMsg processes m through p and waits for its result's
// acknowledgement, as the consume loop does before it acknowledges m.
func deliverMsg(t *testing.T, p *pipeline.Pipeline, m *pipeline.Message) pipeline.Outcome {
	t.Helper()
	out := p.Process(context.Background(), m)
	if out.Published != nil {
		if err := out.Published(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// deliverRaw processes raw as its deliveries-th delivery through p and
// waits for its result's acknowledgement.
func deliverRaw(t *testing.T, p *pipeline.Pipeline, raw *jetstream.RawStreamMsg, deliveries int) pipeline.Outcome {
	t.Helper()
	out := p.Process(context.Background(), &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: pipeline.DefaultRequestStream,
		StreamSeq: raw.Sequence, Deliveries: deliveries, PublishedAt: raw.Time})
	if out.Published != nil {
		_ = out.Published(context.Background())
	}
	return out
}

// publishRaw publishes a request and returns it as the stream holds it.
func publishRaw(t *testing.T, h *harness, seller string, data []byte) *jetstream.RawStreamMsg {
	t.Helper()
	return publishRawMsg(t, h, &nats.Msg{Subject: schemas.Subjects{}.Request(seller), Data: data})
}

// publishRawMsg publishes m and returns it as the stream holds it.
func publishRawMsg(t *testing.T, h *harness, m *nats.Msg) *jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	ack, err := h.obs.PublishMsg(ctx, m)
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
	h, cfg, backlog, ahead := longCrashSetup(t)
	m, crashing := crashAfterClaimlessSubmission(t, h, cfg, backlog, "CRASH-J")
	if got := crashing.of("CRASH-J"); len(got) != 0 {
		t.Fatalf("order written as %v before the submission: want no claim", got)
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "CRASH-J"}); found {
		t.Fatal("the order has a record: the crash was not simulated")
	}
	if st := h.orderStats(jumdataSeller, "CRASH-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v after the first run", st)
	}
	if mark := unclaimedMark(t, h); mark <= m.StreamSeq {
		t.Fatalf("unclaimed mark %d, want above the request's sequence %d", mark, m.StreamSeq)
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
// claim: issue requests delivered and not acknowledged, below the
// unclaimed mark, of a seller whose provider repeats submissions, whose
// order has no record; it dates the submission from the request's
// publication. With no mark it reads nothing.
func TestRecoverUnclaimedRecordsOnlyWhatMayHaveBeenSubmitted(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, streamBacklog: true})
	h.start()
	if h.recovered != 0 || unclaimedMark(t, h) > 1 {
		t.Fatalf("a fresh store: recovered %d, mark %d", h.recovered, unclaimedMark(t, h))
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "DONE-J", nil), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "DONE-N", nil), "")
	h.waitResult(jumdataSeller, "DONE-J", 1, 10*time.Second)
	h.waitResult(nuonuoSeller, "DONE-N", 1, 10*time.Second)
	h.waitFor("the requests to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.stop()
	mark := unclaimedMark(t, h)
	// The next run starts (after that clean stop, it reads nothing), takes
	// requests and crashes.
	if n := recoverWith(t, h, h.p, h.db); n != 0 {
		t.Fatalf("a start after a clean stop recorded %d orders", n)
	}
	if mark < 2 {
		t.Fatalf("unclaimed mark %d after a claimless submission", mark)
	}

	// Left in the stream by a crash: one of each kind.
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "WAIT-N", nil), "")    // always claimed
	h.publish(jumdataSeller, []byte(`{"schemaVersion":"1","kind":"issue"}`), "") // malformed
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "INVALID-J", func(o *schemas.Order) { o.BuyerName = "" }), "")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "DONE-J", nil), "")            // recorded already
	want := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "WAIT-J", nil)) // may have been submitted
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NEVER-J", nil), "")           // never taken
	if want.Sequence >= mark {
		t.Fatalf("request #%d not below the mark %d", want.Sequence, mark)
	}
	// The crashed run took all but the last, and acknowledged none.
	var putBacks []func()
	for range 5 {
		_, putBack := takeNext(t, h)
		putBacks = append(putBacks, putBack)
	}
	stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	n, err := h.p.RecoverUnclaimed(ctx, stream, h.cons, h.db)
	if err != nil || n != 1 {
		t.Fatalf("RecoverUnclaimed = %d, %v; want 1", n, err)
	}
	rec, found, err := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "WAIT-J"})
	if err != nil || !found || rec.State != schemas.StateSubmitting || rec.Submissions != 1 || !rec.SubmittedAt.Equal(want.Time) {
		t.Fatalf("WAIT-J stored %+v (found %v, %v): want possibly submitted since %s", rec, found, err, want.Time)
	}
	// As a claim would have, the record keeps when its request entered the
	// request stream: a different request for the order published before
	// it is not submitted over it (order.staleCopy).
	if !rec.RequestPublishedAt.Equal(want.Time) || rec.RequestStream != pipeline.DefaultRequestStream || rec.RequestStreamSeq != want.Sequence ||
		!rec.RequestConsumerCreated.Equal(h.cons.CachedInfo().Created) {
		t.Fatalf("WAIT-J stored with its request %s #%d (durable of %s) at %s; want the request's, %s #%d (durable of %s) at %s",
			rec.RequestStream, rec.RequestStreamSeq, rec.RequestConsumerCreated, rec.RequestPublishedAt,
			pipeline.DefaultRequestStream, want.Sequence, h.cons.CachedInfo().Created, want.Time)
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "WAIT-N"}); found {
		t.Fatal("a Nuonuo order was recorded: its requests are always claimed")
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "NEVER-J"}); found {
		t.Fatal("a request never delivered was recorded")
	}
	if _, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "INVALID-J"}); found {
		t.Fatal("an invalid request was recorded: its order number would be taken for good")
	}
	if done, _, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "DONE-J"}); done.State != schemas.StateIssued {
		t.Fatalf("DONE-J is %s now", done.State)
	}
	// Again: everything is recorded now.
	if n, err := h.p.RecoverUnclaimed(ctx, stream, h.cons, h.db); err != nil || n != 0 {
		t.Fatalf("second RecoverUnclaimed = %d, %v; want 0", n, err)
	}

	// The requests are answered from there: WAIT-J finds nothing at jumdata
	// and is submitted once.
	for _, putBack := range putBacks {
		putBack()
	}
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
func (f *failingMarks) SetMark(context.Context, string, uint64) error {
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
	recoverWith(t, h, p, h.db)
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

// doubled changes the order's totals (a corrected request with other amounts).
func doubled(o *schemas.Order) {
	l := &o.InvoiceDetail[0]
	l.Price, l.TaxIncludedAmount, l.TaxExcludedAmount, l.Tax = schemas.ParseAmount("212"), schemas.ParseAmount("212.00"), schemas.ParseAmount("200.00"), schemas.ParseAmount("12.00")
}

// Two different requests for one order wait in the stream, the first and a
// corrected one behind it; the corrected one is taken first (the first was
// put back, or lost the race for the order) and submitted without a claim,
// and the consumer crashes before the save. At start-up nothing says which
// of the two was submitted: the order is saved as action_required without a
// fingerprint, the first request gets a conflict that says what to look
// for, and nothing is submitted again, whether the correction changed the totals or
// only the clerk (which a search by content would not tell apart), and
// whether the consumer is back within jumdata's window or after it.
func TestRecoverAmbiguousOrderNeedsAPerson(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(*schemas.Order)
		later time.Duration
	}{{"totals/9h", doubled, 9 * time.Hour}, {"clerk/1h", func(o *schemas.Order) { o.Clerk = "李四" }, time.Hour}} {
		t.Run(c.name, func(t *testing.T) { ambiguousOrder(t, c.edit, c.later) })
	}
}

func ambiguousOrder(t *testing.T, edit func(*schemas.Order), later time.Duration) {
	ctx := context.Background()
	h, cfg, backlog, ahead := longCrashSetup(t)

	first := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "TWO-J", nil))
	corrected := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "TWO-J", edit))
	run1 := firstRun(t, h, cfg, &writeLog{Store: h.db, failIssued: "TWO-J"}, backlog, true)
	m1, putBack1 := takeNext(t, h) // the first request: taken, waiting for the order (or its seller held)
	defer putBack1()
	if m1.StreamSeq != first.Sequence {
		t.Fatalf("took #%d first", m1.StreamSeq)
	}
	m2, putBack2 := takeNext(t, h)
	if m2.StreamSeq != corrected.Sequence {
		t.Fatalf("took #%d second, want the corrected request #%d", m2.StreamSeq, corrected.Sequence)
	}
	crashWhile(t, run1, m2, putBack2)
	putBack1()
	if st := h.orderStats(jumdataSeller, "TWO-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v after the first run", st)
	}

	ahead.Store(int64(later))
	h.start()
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
	}
	// The corrected request's issued result went out while its save was
	// failing. After the restart nothing says which request was
	// submitted: both get a conflict that says what to look for (the
	// corrected one's is a result of its own, after its issued one: a
	// result's message id carries its status).
	h.settled(15 * time.Second) // a fourth result would be collected by now
	res := h.waitResult(jumdataSeller, "TWO-J", 3, 10*time.Second)
	byPrint := map[string][]schemas.Status{}
	for _, r := range res {
		byPrint[r.Fingerprint] = append(byPrint[r.Fingerprint], r.Status)
	}
	if len(res) != 3 || !slices.Equal(byPrint[decodeFingerprint(t, corrected.Data)], []schemas.Status{schemas.StatusIssued, schemas.StatusConflict}) ||
		!slices.Equal(byPrint[decodeFingerprint(t, first.Data)], []schemas.Status{schemas.StatusConflict}) {
		for _, r := range res {
			t.Logf("result %s %.12s %+v", r.Status, r.Fingerprint, r.Error)
		}
		t.Fatalf("want the corrected request issued (before the crash), then both a conflict")
	}
	rec, _, err := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "TWO-J"})
	if err != nil || rec.State != schemas.StateActionRequired || rec.Fingerprint != "" || rec.LastError == nil ||
		!strings.Contains(rec.LastError.Message, "2 different requests") {
		t.Fatalf("stored %s fingerprint %q %+v (%v), want action_required for a person", rec.State, rec.Fingerprint, rec.LastError, err)
	}
	if st := h.orderStats(jumdataSeller, "TWO-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: issued again", st)
	}
}

// A jumdata order submitted without a claim whose save failed is claimed in
// memory: a corrected request for it conflicts, as it would with the claim
// on disk (it must not be looked for by its own content, refused by
// jumdata, and saved as rejected over the submission). After a crash and
// nine hours, the first request finds its invoice. Both ways, with and
// without the claim: one invoice, the corrected request a conflict.
func TestCorrectedRequestConflictsWithAnUnrecordedSubmission(t *testing.T) {
	for _, claimless := range []bool{true, false} {
		t.Run(map[bool]string{true: "claimless", false: "claim"}[claimless], func(t *testing.T) {
			ctx := context.Background()
			h, cfg, backlog, ahead := longCrashSetup(t)
			run1 := firstRun(t, h, cfg, &writeLog{Store: h.db, failIssued: "UNREC-J"}, backlog, claimless)

			first := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "UNREC-J", nil))
			m, putBack := takeNext(t, h)
			if out := crashWhile(t, run1, m, putBack); out.Action != pipeline.Nak {
				t.Fatalf("first request: %+v, want its failed save put back", out)
			}
			corrected := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "UNREC-J", doubled))
			out := deliverRaw(t, run1, corrected, 1)
			if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
				t.Fatalf("corrected request: %s %s %s, want a conflict", out.Action, out.Event, out.Status)
			}
			stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.DeleteMsg(ctx, corrected.Sequence); err != nil { // as its ack would
				t.Fatal(err)
			}

			ahead.Store(int64(9 * time.Hour))
			h.start()
			h.waitFor("the first request to be answered", 15*time.Second, h.requestStreamEmpty)
			if st := h.orderStats(jumdataSeller, "UNREC-J"); st.Issuances != 1 {
				t.Fatalf("sandbox %+v: issued %d times", st, st.Issuances)
			}
			rec, _, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "UNREC-J"})
			if rec.State != schemas.StateIssued || rec.Fingerprint != decodeFingerprint(t, first.Data) {
				t.Fatalf("stored %s %.12s, want the first request issued", rec.State, rec.Fingerprint)
			}
		})
	}
}

// decodeFingerprint is the fingerprint of a valid jumdata request.
func decodeFingerprint(t *testing.T, data []byte) string {
	t.Helper()
	v, _ := schemas.NewValidator(schemas.ValidatorConfig{})
	d, err := v.Decode(data, jumdataSeller)
	if err != nil || !d.Valid() {
		t.Fatalf("%v %+v", err, d.Violations)
	}
	return d.Fingerprint
}

// needsPerson is jumdata, except that order HOLDER-J gets an answer a person
// must act on, which holds the seller.
type needsPerson struct{ *jumdata.Client }

func (n needsPerson) Submit(ctx context.Context, c *providers.Call) providers.Outcome {
	if c.Request.OrderNo == "HOLDER-J" {
		return providers.Outcome{Class: providers.ActionRequired, Code: "301", Message: "token expired"}
	}
	return n.Client.Submit(ctx, c)
}

// A request submitted without a claim is issued, its save fails, the
// seller is then held, and the request runs out of deliveries while held:
// the failed record it is given up with keeps the submission (as the claim
// would have), so that its dead letter, replayed the next morning, finds the
// invoice instead of submitting again after jumdata has forgotten the
// taskId. Both ways, with and without the claim: one invoice.
func TestHeldGiveUpKeepsAnUnrecordedSubmission(t *testing.T) {
	for _, claimless := range []bool{true, false} {
		t.Run(map[bool]string{true: "claimless", false: "claim"}[claimless], func(t *testing.T) {
			ctx := context.Background()
			var ahead atomic.Int64
			clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			cfg := fast
			cfg.Now = clock
			cfg.MaxDeliver = 3
			cfg.HoldProbe = time.Hour
			backlog := &settableBacklog{}
			backlog.at.Store(time.Now().UnixNano())
			h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog, sandbox: sandbox.Config{Now: clock}})
			h.provs[jumdataSeller] = needsPerson{directJumdata(t, h, clock)}
			run1 := firstRun(t, h, cfg, &writeLog{Store: h.db, failIssued: "GIVEUP-J"}, backlog, claimless)
			stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
			if err != nil {
				t.Fatal(err)
			}
			deliver := func(data []byte, deliveries int) pipeline.Outcome {
				raw := publishRaw(t, h, jumdataSeller, data)
				out := deliverRaw(t, run1, raw, deliveries)
				_ = stream.DeleteMsg(ctx, raw.Sequence) // each delivery here stands alone
				return out
			}
			req := issueRequest(t, jumdataSeller, "GIVEUP-J", nil)
			if out := deliver(req, 1); out.Action != pipeline.Nak {
				t.Fatalf("delivery 1: %+v", out)
			}
			if out := deliver(issueRequest(t, jumdataSeller, "HOLDER-J", nil), 1); out.Event != pipeline.EventActionRequired {
				t.Fatalf("holder: %s %s", out.Action, out.Event)
			}
			if out := deliver(req, 3); out.Action != pipeline.Term {
				t.Fatalf("last delivery: %s %s", out.Action, out.Event)
			}
			rec, _, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "GIVEUP-J"})
			if rec.State != schemas.StateFailed || rec.Submissions == 0 {
				t.Fatalf("given up as %s with %d submissions, want failed after a submission", rec.State, rec.Submissions)
			}

			// The next morning the dead letter is replayed.
			ahead.Store(int64(9 * time.Hour))
			h.start()
			h.publish(jumdataSeller, req, "")
			h.waitFor("the replay to be answered", 15*time.Second, h.requestStreamEmpty)
			if st := h.orderStats(jumdataSeller, "GIVEUP-J"); st.Issuances != 1 {
				t.Fatalf("sandbox %+v: issued %d times", st, st.Issuances)
			}
		})
	}
}

// A request stream deleted and made again starts its sequences over: the
// old stream's unclaimed mark is not the new one's, so the requests of the
// new stream are not taken for ones submitted without a claim.
func TestRecreatedStreamHasItsOwnMark(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	if err := h.db.RaiseMark(ctx, unclaimedMarkName(t, h), 1_000_000); err != nil {
		t.Fatal(err)
	}
	old := unclaimedMarkName(t, h)
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // a creation time of its own
	if err := h.topo.Ensure(ctx, h.obs); err != nil {
		t.Fatal(err)
	}
	if unclaimedMarkName(t, h) == old {
		t.Fatal("the new stream has the old stream's mark name")
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NEW-J", nil), "")
	h.start()
	if h.recovered != 0 {
		t.Fatalf("RecoverUnclaimed recorded %d orders of the new stream", h.recovered)
	}
	if r := h.waitResult(jumdataSeller, "NEW-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
}

// failingGets fails every read of the order store while fail is set.
type failingGets struct {
	pipeline.Store
	fail atomic.Bool
}

func (f *failingGets) Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	if f.fail.Load() {
		return schemas.OrderRecord{}, false, errors.New("input/output error")
	}
	return f.Store.Get(ctx, key)
}

// An order submitted without a claim whose save failed is not given up on
// while the store cannot be read, even on the last delivery: terminated,
// its request would leave the stream, and after a restart nothing would
// say it was submitted. It is put back until the store answers.
func TestUnrecordedSubmissionIsNotTerminatedWhileTheStoreFails(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog})
	gets := &failingGets{Store: h.db}
	run1 := firstRun(t, h, cfg, &writeLog{Store: gets, failIssued: "IOERR-J"}, backlog, true)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "IOERR-J", nil))
	if out := deliverRaw(t, run1, raw, 1); out.Action != pipeline.Nak {
		t.Fatalf("delivery 1: %+v", out)
	}
	gets.fail.Store(true)
	if out := deliverRaw(t, run1, raw, 3); out.Action != pipeline.Nak || out.Event != pipeline.EventError {
		t.Fatalf("last delivery with the store failing: %s %s, want it put back", out.Action, out.Event)
	}
	gets.fail.Store(false)
	if out := deliverRaw(t, run1, raw, 4); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("delivery after the store recovered: %s %s %s", out.Action, out.Event, out.Status)
	}
	if st := h.orderStats(jumdataSeller, "IOERR-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v", st)
	}
}

// gatedJumdata is jumdata whose submissions wait for the gate to open.
type gatedJumdata struct {
	*jumdata.Client
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedJumdata) Submit(ctx context.Context, c *providers.Call) providers.Outcome {
	g.entered <- struct{}{}
	<-g.gate
	return g.Client.Submit(ctx, c)
}

// While an order is being submitted without a claim, the pipeline's readers
// (the status service, the partner API) find it submitting, as they would
// find its claim; once answered, issued.
func TestClaimlessOrderReadsAsSubmittingWhileInFlight(t *testing.T) {
	ctx := context.Background()
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: backlog})
	g := gatedJumdata{Client: directJumdata(t, h, time.Now), entered: make(chan struct{}, 1), gate: make(chan struct{})}
	h.provs[jumdataSeller] = g
	p := firstRun(t, h, fast, h.db, backlog, true)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "FLIGHT-J", nil))
	done := make(chan pipeline.Outcome, 1)
	go func() { done <- deliverRaw(t, p, raw, 1) }()
	<-g.entered
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "FLIGHT-J"}
	if _, found, _ := h.db.Get(ctx, key); found {
		t.Fatal("the order store holds a record: the order was claimed")
	}
	rec, found, err := p.Orders().Get(ctx, key)
	if err != nil || !found || rec.State != schemas.StateSubmitting {
		t.Fatalf("in flight, readers find %s (found %v, %v), want submitting", rec.State, found, err)
	}
	close(g.gate)
	if out := <-done; out.Status != schemas.StatusIssued {
		t.Fatalf("outcome %+v", out)
	}
	if rec, _, _ := p.Orders().Get(ctx, key); rec.State != schemas.StateIssued {
		t.Fatalf("after the answer, readers find %s", rec.State)
	}
}

// crashAfterClaimlessSubmission publishes an issue request for order no and
// has a claimless run take it and submit it, then crash before its answer
// is saved (its saves go through the returned log, which fails the issued
// one). It returns the request as taken.
func crashAfterClaimlessSubmission(t *testing.T, h *harness, cfg pipeline.Config, backlog pipeline.Backlog, no string) (*pipeline.Message, *writeLog) {
	t.Helper()
	publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, no, nil))
	wl := &writeLog{Store: h.db, failIssued: no}
	run := firstRun(t, h, cfg, wl, backlog, true)
	m, putBack := takeNext(t, h)
	crashWhile(t, run, m, putBack)
	return m, wl
}

// startLater starts the consumer nine hours on (jumdata has forgotten the
// taskIds of before) and checks how many orders its start-up recorded.
func startLater(t *testing.T, h *harness, ahead *atomic.Int64, recorded int) {
	t.Helper()
	ahead.Store(int64(9 * time.Hour))
	h.start()
	if h.recovered != recorded {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want %d", h.recovered, recorded)
	}
}

// wantOneInvoice waits for every request to be answered and checks that
// order no was issued once.
func wantOneInvoice(t *testing.T, h *harness, no string) {
	t.Helper()
	h.waitFor("the requests to be answered", 15*time.Second, h.requestStreamEmpty)
	if st := h.orderStats(jumdataSeller, no); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: issued %d times", st, st.Issuances)
	}
}

// longCrashSetup is a harness whose clocks (the consumer's, jumdata's, the
// sandbox's; not the stream's) can be moved ahead, and a young backlog.
func longCrashSetup(t *testing.T) (*harness, pipeline.Config, *settableBacklog, *atomic.Int64) {
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fast
	cfg.Now = clock
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog, sandbox: sandbox.Config{Now: clock}})
	h.provs[jumdataSeller] = directJumdata(t, h, clock)
	return h, cfg, backlog, &ahead
}

// A claimless submission, a crash, and a start with the seller missing
// from the configuration: the order is recorded all the same (what the
// crashed run's configuration allowed is not this one's to judge), so a
// corrected request nine hours later, the seller configured again,
// conflicts instead of being submitted.
func TestRecoveryDoesNotDependOnTheConfigurationNow(t *testing.T) {
	h, cfg, backlog, ahead := longCrashSetup(t)
	crashAfterClaimlessSubmission(t, h, cfg, backlog, "CFG2-J")

	jc := h.provs[jumdataSeller]
	delete(h.provs, jumdataSeller)
	h.start()
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders with the seller unconfigured, want 1", h.recovered)
	}
	if r := h.waitResult(jumdataSeller, "CFG2-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued && r.Status != schemas.StatusRejected {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	h.waitFor("the request to be answered", 10*time.Second, h.requestStreamEmpty)
	h.stop()

	h.provs[jumdataSeller] = jc
	ahead.Store(int64(9 * time.Hour))
	h.start()
	corrected := issueRequest(t, jumdataSeller, "CFG2-J", doubled)
	h.publish(jumdataSeller, corrected, "")
	h.waitFor("the corrected request to be answered", 10*time.Second, h.requestStreamEmpty)
	// The request left the stream once acknowledged, which the loop does
	// only once its result is in the result stream (the PubAck): the
	// result exists, but the harness's reader of that stream may not have
	// it yet. Wait for the corrected request's own result (its
	// fingerprint), not for the last one read so far, which was the first
	// request's when the reader was behind.
	fp := decodeFingerprint(t, corrected)
	answers := func() (out []schemas.Result) {
		for _, r := range h.resultsFor(jumdataSeller, "CFG2-J") {
			if r.Fingerprint == fp {
				out = append(out, r)
			}
		}
		return out
	}
	h.waitFor("the corrected request's result", 10*time.Second, func() bool { return len(answers()) > 0 })
	h.caughtUp(10 * time.Second) // the request was acknowledged: every answer of its is collected
	for _, r := range answers() {
		if r.Status != schemas.StatusConflict {
			t.Fatalf("corrected request: %s %+v, want a conflict", r.Status, r.Error)
		}
	}
	if st := h.orderStats(jumdataSeller, "CFG2-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: issued %d times", st, st.Issuances)
	}
}

// forgetfulMarks stores nothing: a build from before the unclaimed mark.
type forgetfulMarks struct{}

func (forgetfulMarks) RaiseMark(context.Context, string, uint64) error { return nil }
func (forgetfulMarks) SetMark(context.Context, string, uint64) error   { return nil }
func (forgetfulMarks) Mark(string) (uint64, error)                     { return 0, nil }

// A build without the unclaimed mark submits without a claim and crashes;
// the first start of this build, claimless too, finds no mark, and reads
// up to the server's delivered pointer all the same: the request, back
// nine hours later, finds its invoice instead of being submitted again.
func TestFirstStartAfterAnUnmarkedBuild(t *testing.T) {
	h, cfg, backlog, ahead := longCrashSetup(t)
	publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "OLDBUILD-J", nil))
	run1 := firstRunWith(t, h, cfg, &writeLog{Store: h.db, failIssued: "OLDBUILD-J"}, backlog, true, forgetfulMarks{})
	m, putBack := takeNext(t, h)
	crashWhile(t, run1, m, putBack)
	if mark := unclaimedMark(t, h); mark != 0 {
		t.Fatalf("mark %d: the old build left none", mark)
	}

	ahead.Store(int64(9 * time.Hour))
	h.start()
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
	}
	h.waitFor("the request to be answered", 15*time.Second, h.requestStreamEmpty)
	if r := h.waitResult(jumdataSeller, "OLDBUILD-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	if st := h.orderStats(jumdataSeller, "OLDBUILD-J"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: issued %d times", st, st.Issuances)
	}
	if mark := unclaimedMark(t, h); mark == 0 {
		t.Fatal("no mark after the first start")
	}
}

// pairDelivered publishes a request for order no and a corrected one, and
// has a run take both and stop with neither acknowledged.
func pairDelivered(t *testing.T, h *harness, no string) (first, corrected *jetstream.RawStreamMsg) {
	t.Helper()
	first = publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, no, nil))
	corrected = publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, no, doubled))
	_, putBack1 := takeNext(t, h)
	_, putBack2 := takeNext(t, h)
	putBack1()
	putBack2()
	return first, corrected
}

// wantOneIssuedOneConflict checks what the claim gives a request and its
// correction: one of them (whichever took the order first) is issued, the
// other gets a conflict, and there is one invoice.
func wantOneIssuedOneConflict(t *testing.T, h *harness, no string, first, corrected *jetstream.RawStreamMsg) {
	t.Helper()
	h.waitFor("both requests to be answered", 15*time.Second, h.requestStreamEmpty)
	byPrint := map[string]schemas.Status{}
	for _, r := range h.waitResult(jumdataSeller, no, 2, 10*time.Second) {
		byPrint[r.Fingerprint] = r.Status
	}
	a, b := byPrint[decodeFingerprint(t, first.Data)], byPrint[decodeFingerprint(t, corrected.Data)]
	if !(a == schemas.StatusIssued && b == schemas.StatusConflict) && !(a == schemas.StatusConflict && b == schemas.StatusIssued) {
		t.Fatalf("results %s and %s: want one issued and the other a conflict", a, b)
	}
	if st := h.orderStats(jumdataSeller, no); st.Issuances != 1 {
		t.Fatalf("sandbox %+v", st)
	}
}

// After a clean stop nothing is left submitted without a claim, and the
// next start reads nothing: requests the stopped run had taken (put back
// when it stopped) are answered as with the claim, not recorded as
// possibly submitted (two different ones would take the order number).
func TestCleanStopLeavesNothingToRecover(t *testing.T) {
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: backlog})
	h.start() // a run that submits without a claim
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "WARM-J", nil), "")
	h.waitResult(jumdataSeller, "WARM-J", 1, 10*time.Second)
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.stop()
	if unclaimedMark(t, h) == 0 {
		t.Fatal("no mark after a claimless submission")
	}
	// The next run takes a request and its correction, and stops cleanly.
	if n := recoverWith(t, h, h.p, h.db); n != 0 {
		t.Fatalf("a start after a clean stop recorded %d orders", n)
	}
	first, corrected := pairDelivered(t, h, "PAIR-J")
	stream, err := h.obs.Stream(context.Background(), pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.p.StoppedCleanly(context.Background(), stream, h.db); err != nil {
		t.Fatal(err)
	}
	h.start()
	if h.recovered != 0 {
		t.Fatalf("RecoverUnclaimed recorded %d orders after a clean stop", h.recovered)
	}
	wantOneIssuedOneConflict(t, h, "PAIR-J", first, corrected)
}

// The consume loop created its request stream again while it ran
// (LoopConfig.Recreate) and submitted a request of the new stream without a
// claim; then it stopped cleanly, a request and its correction put back.
// The consumer records the clean stop with the stream it read when it
// started (cmd/consumer keeps that one): the stop is clean for the new
// stream all the same, whose mark the run raised, and the next start reads
// nothing and answers the pair as with the claim. The clean stop was
// recorded under the old stream's mark, and the next start recorded the
// pair as possibly submitted: the order saved action_required, its number
// taken, both requests a conflict.
func TestCleanStopAfterTheLoopCreatedItsStreamAgain(t *testing.T) {
	ctx := context.Background()
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: backlog, recreate: true})
	h.start()
	atStart, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "OLD-STREAM-J", nil), "")
	h.waitResult(jumdataSeller, "OLD-STREAM-J", 1, 10*time.Second)
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the loop to create its stream and durable again", 20*time.Second, func() bool {
		_, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		return err == nil && h.loop.Bound() && h.loop.Missing() == nil
	})
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NEW-STREAM-J", nil), "")
	if r := h.waitResult(jumdataSeller, "NEW-STREAM-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the new stream's request: %s", r.Status)
	}
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	if unclaimedMark(t, h) == 0 {
		t.Fatal("no mark of the new stream after a claimless submission in it")
	}

	// The stop: the loop returns, the pair is taken and put back as by a
	// loop that stops with them in its pull buffer, and the clean stop is
	// recorded as the consumer records it.
	h.stopLoop()
	select {
	case err := <-h.loopDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the loop did not stop within 30 s")
	}
	h.stopLoop = nil
	first, corrected := pairDelivered(t, h, "PAIR-AFTER-J")
	if err := h.p.StoppedCleanly(ctx, atStart, h.db); err != nil {
		t.Fatal(err)
	}
	h.start()
	if h.recovered != 0 {
		t.Fatalf("RecoverUnclaimed recorded %d orders after a clean stop", h.recovered)
	}
	wantOneIssuedOneConflict(t, h, "PAIR-AFTER-J", first, corrected)
}

// The opt-in turned off after a crash: the first start without it records
// what the claimless run left (and the order finds its invoice), and later
// starts read nothing, with the opt-in off or back on (every submission
// since was claimed): a request and its correction that a claiming run
// took before its crash are answered as with the claim.
func TestOptInTurnedOffIsReadOnce(t *testing.T) {
	for _, back := range []bool{false, true} {
		t.Run(map[bool]string{false: "still off", true: "back on"}[back], func(t *testing.T) {
			h, cfg, backlog, ahead := longCrashSetup(t)
			crashAfterClaimlessSubmission(t, h, cfg, backlog, "LEFT-J")

			h.backlog = nil // the opt-in is off from now on
			startLater(t, h, ahead, 1)
			wantOneInvoice(t, h, "LEFT-J")
			h.stop()

			// A run without the opt-in starts, takes a request and its
			// correction (claiming whichever it submits), and crashes.
			firstRun(t, h, cfg, h.db, nil, false)
			first, corrected := pairDelivered(t, h, "PAIR-J")
			if back {
				h.backlog = backlog
			}
			h.start()
			if h.recovered != 0 {
				t.Fatalf("a later start recorded %d orders", h.recovered)
			}
			wantOneIssuedOneConflict(t, h, "PAIR-J", first, corrected)
		})
	}
}

// A start with the opt-in back on clears what a start without it recorded
// (that nothing is left to read): a claimless run that then crashes is read
// by the next start, with the opt-in off again.
func TestOptInAgainIsReadAgain(t *testing.T) {
	h, cfg, backlog, ahead := longCrashSetup(t)
	firstRun(t, h, cfg, h.db, backlog, true) // leaves a mark
	firstRun(t, h, cfg, h.db, nil, false)    // off: nothing left to read from now on
	crashAfterClaimlessSubmission(t, h, cfg, backlog, "AGAIN-J")
	h.backlog = nil
	startLater(t, h, ahead, 1)
	wantOneInvoice(t, h, "AGAIN-J")
}

// failingOrder fails every write of one order: a disk that refuses it.
type failingOrder struct {
	pipeline.Store
	no string
}

func (f failingOrder) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if rec.OrderNo == f.no {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return f.Store.Put(ctx, rec)
}

func (f failingOrder) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if rec.OrderNo == f.no {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return f.Store.PutPatient(ctx, rec)
}

// A graceful stop while an order is claimed only in memory (its save
// failed) is not a clean one: the next start records the order.
func TestNoCleanStopWhileAnOrderIsClaimedInMemory(t *testing.T) {
	h, _, _, ahead := longCrashSetup(t)
	h.wrapDB = func(s pipeline.Store) pipeline.Store { return failingOrder{Store: s, no: "MEM-J"} }
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "MEM-J", nil), "")
	h.waitFor("the submission", 10*time.Second, func() bool { return h.orderStats(jumdataSeller, "MEM-J").Issuances == 1 })
	h.waitFor("its save to fail", 10*time.Second, func() bool {
		_, found, _ := h.p.Orders().Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "MEM-J"})
		return found
	})
	h.stop()
	if v, _ := h.db.Mark(unclaimedMarkName(t, h) + ":clean"); v != 0 {
		t.Fatalf("clean stop recorded (%d) while MEM-J is claimed only in memory", v)
	}
	h.wrapDB = nil
	startLater(t, h, ahead, 1)
	wantOneInvoice(t, h, "MEM-J")
}

// A store whose mark a build before the consumers' creation times raised
// (no clean stop recorded either) is read up to the delivered pointer, as
// that build did: requests waiting and never delivered are not recorded.
func TestMarkFromBeforeConsumerTimesReadsOnlyDelivered(t *testing.T) {
	ctx := context.Background()
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: backlog})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "WARM-J", nil), "")
	h.waitResult(jumdataSeller, "WARM-J", 1, 10*time.Second)
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.stop()
	name := unclaimedMarkName(t, h)
	for _, k := range []string{name + ":clean", name + ":consumers", name + ":consumer:" + pipeline.DefaultDurable} {
		if err := h.db.SetMark(ctx, k, 0); err != nil {
			t.Fatal(err)
		}
	}
	first := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "WAITING-J", nil))
	corrected := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "WAITING-J", doubled))
	h.start()
	if h.recovered != 0 {
		t.Fatalf("recorded %d orders never delivered", h.recovered)
	}
	wantOneIssuedOneConflict(t, h, "WAITING-J", first, corrected)
}

// A consumer deleted after a crash and created again knows nothing of what
// the old one delivered: the start reads every request below the mark, so
// the one submitted without a claim is recorded, and nine hours later it
// finds its invoice rather than being submitted again.
func TestRecreatedConsumerReadsUpToTheMark(t *testing.T) {
	ctx := context.Background()
	h, cfg, backlog, ahead := longCrashSetup(t)
	crashAfterClaimlessSubmission(t, h, cfg, backlog, "RECON-J")
	if err := h.obs.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	startLater(t, h, ahead, 1)
	wantOneInvoice(t, h, "RECON-J")
}

// Without the opt-in and without a mark (nothing was ever submitted without
// a claim), a start reads nothing: a request and its correction taken
// before a crash are answered as ever.
func TestDefaultModeReadsNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	first, corrected := pairDelivered(t, h, "DEF-J")
	h.start()
	if h.recovered != 0 {
		t.Fatalf("default mode recorded %d orders", h.recovered)
	}
	wantOneIssuedOneConflict(t, h, "DEF-J", first, corrected)
}

// A consumer reset after a crash keeps the consumer (and its creation
// time) but moves its delivered pointer back: the start sees the pointer
// below what the mark says was delivered, reads every request below the
// mark, and the one submitted without a claim finds its invoice nine hours
// later instead of being submitted again.
func TestConsumerResetReadsUpToTheMark(t *testing.T) {
	ctx := context.Background()
	h, cfg, backlog, ahead := longCrashSetup(t)
	crashAfterClaimlessSubmission(t, h, cfg, backlog, "RESET-J")
	if _, err := h.obs.ResetConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	startLater(t, h, ahead, 1)
	wantOneInvoice(t, h, "RESET-J")
}

// A consumer reset after a crash moves the delivered pointer back to the
// ack floor. When requests before the one submitted without a claim were
// acknowledged (the ack floor is past the sequence at which the mark was
// last raised), the pointer after the reset is still within the mark's
// lead of it: the start must see the reset all the same (the consumer has
// delivered nothing since it), read up to the mark, and record the order,
// so that nine hours later it finds its invoice instead of being submitted
// again.
func TestConsumerResetPastAcknowledgedRequestsReadsUpToTheMark(t *testing.T) {
	ctx := context.Background()
	h, cfg, backlog, ahead := longCrashSetup(t)
	// A run that submits without a claim (raising the mark at the first
	// sequence) and acknowledges its request: the ack floor moves past it.
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "ACKED-J", nil), "")
	h.waitResult(jumdataSeller, "ACKED-J", 1, 10*time.Second)
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.stop()
	crashAfterClaimlessSubmission(t, h, cfg, backlog, "RESET2-J")
	if _, err := h.obs.ResetConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable); err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(9 * time.Hour))
	h.start()
	wantOneInvoice(t, h, "RESET2-J")
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
	}
}

// blockingRaises is the order store's marks whose raises wait until
// release is closed; running counts the raises under way.
type blockingRaises struct {
	pipeline.Marks
	entered chan struct{}
	release chan struct{}
	running atomic.Int64
}

func (b *blockingRaises) RaiseMark(ctx context.Context, name string, v uint64) error {
	b.running.Add(1)
	defer b.running.Add(-1)
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return b.Marks.RaiseMark(ctx, name, v)
}

// The unclaimed mark is raised in the background while the requests below
// it are taken (off their way to the provider), and that raise is the
// loop's: Run returns only once it has ended, so that no raise outlives
// the consumer's shutdown and reaches the order store after it is closed.
func TestTheLoopWaitsForTheUnclaimedMarksRaise(t *testing.T) {
	ctx := context.Background()
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: fast})
	marks := &blockingRaises{Marks: h.db, entered: make(chan struct{}, 1), release: make(chan struct{})}
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(marks.release) }) }) // before the store closes
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(fast, v, h.db, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), h.provs)
	if err != nil {
		t.Fatal(err)
	}
	p.WatchBacklog(backlog, marks)
	recoverWith(t, h, p, h.db)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "RAISE-J", nil))
	// The request is below the mark, within half its lead: it goes at
	// once, and the mark is raised in the background.
	if err := h.db.RaiseMark(ctx, unclaimedMarkName(t, h), raw.Sequence+10); err != nil {
		t.Fatal(err)
	}
	cons, err := h.topo.EnsureConsumer(ctx, h.js, pipeline.ConsumerSettings{Workers: h.workers, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	loop := pipeline.NewLoop(pipeline.LoopConfig{Workers: h.workers, AckWait: 5 * time.Second}, p, cons, h.log, nil)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- loop.Run(runCtx) }()
	if r := h.waitResult(jumdataSeller, "RAISE-J", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %s %+v", r.Status, r.Error)
	}
	select {
	case <-marks.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the unclaimed mark was not raised in the background")
	}
	stop()
	select {
	case err := <-done:
		t.Fatalf("the loop returned (%v) while the unclaimed mark's raise it started was still running (%d raises under way)", err, marks.running.Load())
	case <-time.After(500 * time.Millisecond):
	}
	release.Do(func() { close(marks.release) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not return once the raise ended")
	}
	if n := marks.running.Load(); n != 0 {
		t.Fatalf("%d raises under way after the loop returned", n)
	}
	if m := unclaimedMark(t, h); m <= raw.Sequence+10 {
		t.Fatalf("unclaimed mark %d after the raise, want above %d", m, raw.Sequence+10)
	}
}

// repeatableHeld is a heldProvider that repeats submissions as the
// provider it holds does (providers.RepeatableSubmitter), so that the
// pipeline may submit its orders without a claim.
type repeatableHeld struct {
	*heldProvider
	rs providers.RepeatableSubmitter
}

// RepeatableFor is the held provider's.
func (p repeatableHeld) RepeatableFor(c *providers.Call) time.Duration { return p.rs.RepeatableFor(c) }

// answersUnsaved is an order store whose writes of one order fail, except
// a claim's (a write of the order as submitting): as a consumer that
// crashes before it can save the provider's answer.
type answersUnsaved struct {
	pipeline.Store
	orderNo string
	failed  atomic.Bool // a write of the answer failed
}

func (s *answersUnsaved) refused(rec schemas.OrderRecord) bool {
	if rec.OrderNo == s.orderNo && rec.State != schemas.StateSubmitting {
		s.failed.Store(true)
		return true
	}
	return false
}

func (s *answersUnsaved) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if s.refused(rec) {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return s.Store.Put(ctx, rec)
}

func (s *answersUnsaved) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if s.refused(rec) {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return s.Store.PutPatient(ctx, rec)
}

// A request stream and its durable deleted and created again by another
// party while no pull request of the loop's waits (the only worker busy,
// the next request held for it), which the loop notices only by the new
// durable's consumer sequences (deliveredBy), not as a rebind: the new
// stream's requests must not be submitted without a claim under the old
// stream's unclaimed mark, which no later start reads (the mark is named
// after the stream's creation). Here the new stream's first request is
// submitted, the consumer crashes before its answer is saved, and starts
// nine hours later (jumdata has forgotten the taskId) without the opt-in:
// the order is found, and issued once. Before, the submission raised no
// mark of the new stream (its sequence lay below the old stream's mark),
// the start read nothing, and the request was submitted again: a second
// invoice.
func TestClaimlessSubmissionAfterAnUnseenReplacementSurvivesACrash(t *testing.T) {
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fast
	cfg.Now = clock
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: cfg, workers: 1, backlog: backlog, sandbox: sandbox.Config{Now: clock}})
	jc := directJumdata(t, h, clock)
	held := newHeldProvider(jc, "BUSY-J")
	h.provs[jumdataSeller] = repeatableHeld{heldProvider: held, rs: jc}
	unsaved := &answersUnsaved{orderNo: "NEW-J"}
	h.wrapDB = func(s pipeline.Store) pipeline.Store { unsaved.Store = s; return unsaved }
	logs := &logLines{}
	h.log = zerolog.New(logs)
	h.start()

	replaceUnseen(t, h, held)
	// Another amount than the others': a search for its invoice finds
	// only its own.
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NEW-J", doubled), "")
	close(held.release)
	h.waitFor("NEW-J submitted, its answer unsaved", 15*time.Second, func() bool {
		return h.orderStats(jumdataSeller, "NEW-J").Issuances == 1 && unsaved.failed.Load()
	})
	if err := h.halt(); err != nil { // a crash: no clean stop recorded
		t.Fatal(err)
	}
	said := logs.withField(t, "consumer_seq")
	if len(said) != 1 || !strings.Contains(fmt.Sprint(said[0]["message"]), "every new order is claimed") {
		t.Errorf("the loop said %v; want one warning that the durable delivering is another one, and that orders are claimed", said)
	}

	h.wrapDB, h.backlog = nil, nil // the store whole again; the opt-in off
	ahead.Store(int64(9 * time.Hour))
	h.start()
	wantOneInvoice(t, h, "NEW-J")
	if r := h.waitResult(jumdataSeller, "NEW-J", 1, 10*time.Second); r[len(r)-1].Status != schemas.StatusIssued {
		t.Fatalf("NEW-J after the start: %s %+v; want issued", r[len(r)-1].Status, r[len(r)-1].Error)
	}
}

// The consume loop creates its request stream again while it runs (an
// operator deleted it: LoopConfig.Recreate), and submits a request of the
// new stream without a claim; the consumer crashes before the answer is
// saved, and the durable is then replaced (deleted: the start creates it
// again) or reset. The start must read the new stream up to its unclaimed
// mark, as it does for a stream it found at a start (the mark's
// consumers are kept): the order is recorded, and nine hours later
// (jumdata has forgotten the taskId) it finds its invoice instead of being
// submitted again. Before, a stream the loop created again had no record
// of its durable's creation (set only at a start), so the start took the
// store for one written before consumers were kept and read only up to the
// delivered pointer, which the new or reset durable had not advanced: the
// order was not recorded, and invoiced a second time.
func TestClaimlessSubmissionInAStreamTheLoopCreatedAgainSurvivesACrash(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after func(ctx context.Context, h *harness) error
	}{
		{"durable replaced", func(ctx context.Context, h *harness) error {
			return h.obs.DeleteConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		}},
		{"durable reset", func(ctx context.Context, h *harness) error {
			_, err := h.obs.ResetConsumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			var ahead atomic.Int64
			clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			cfg := fast
			cfg.Now = clock
			backlog := &settableBacklog{}
			backlog.at.Store(time.Now().UnixNano())
			h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog, recreate: true, sandbox: sandbox.Config{Now: clock}})
			h.provs[jumdataSeller] = directJumdata(t, h, clock)
			unsaved := &answersUnsaved{orderNo: "AGAIN-J"}
			h.wrapDB = func(s pipeline.Store) pipeline.Store { unsaved.Store = s; return unsaved }
			h.start()
			old := unclaimedMarkName(t, h)
			if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
				t.Fatal(err)
			}
			h.waitFor("the loop to create its stream and durable again", 20*time.Second, func() bool {
				_, err := h.obs.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
				return err == nil && h.loop.Bound() && h.loop.Missing() == nil
			})
			if unclaimedMarkName(t, h) == old {
				t.Fatal("the stream created again has the deleted stream's mark name")
			}
			h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "AGAIN-J", nil), "")
			h.waitFor("AGAIN-J submitted, its answer unsaved", 15*time.Second, func() bool {
				return h.orderStats(jumdataSeller, "AGAIN-J").Issuances == 1 && unsaved.failed.Load()
			})
			if err := h.halt(); err != nil { // a crash: no clean stop recorded
				t.Fatal(err)
			}
			if _, found, err := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "AGAIN-J"}); err != nil || found {
				t.Fatalf("AGAIN-J recorded before the start (%v, %v): it was claimed, not submitted without a claim", found, err)
			}
			if unclaimedMark(t, h) == 0 {
				t.Fatal("no mark of the new stream after a claimless submission in it")
			}
			if err := tt.after(ctx, h); err != nil {
				t.Fatal(err)
			}
			h.wrapDB = nil
			ahead.Store(int64(9 * time.Hour))
			h.start()
			wantOneInvoice(t, h, "AGAIN-J")
			if h.recovered != 1 {
				t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
			}
		})
	}
}
