package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// writeLog records the states written for each order.
type writeLog struct {
	pipeline.Store
	mu     sync.Mutex
	states map[string][]schemas.OrderState
	// failIssued fails the first issued write of this order number.
	failIssued string
}

func (w *writeLog) note(rec schemas.OrderRecord) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.states == nil {
		w.states = map[string][]schemas.OrderState{}
	}
	if rec.OrderNo == w.failIssued && rec.State == schemas.StateIssued {
		w.failIssued = ""
		return false
	}
	w.states[rec.OrderNo] = append(w.states[rec.OrderNo], rec.State)
	return true
}

func (w *writeLog) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if !w.note(rec) {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return w.Store.Put(ctx, rec)
}

func (w *writeLog) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if !w.note(rec) {
		return schemas.OrderRecord{}, context.DeadlineExceeded
	}
	return w.Store.PutPatient(ctx, rec)
}

func (w *writeLog) of(orderNo string) []schemas.OrderState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]schemas.OrderState(nil), w.states[orderNo]...)
}

// With the request stream's backlog young, a new jumdata order (whose
// submissions jumdata answers from the first for its taskId's life) is
// saved once, with its answer, without a claim first; a Nuonuo order is
// still claimed before it is submitted.
func TestRepeatableSubmitSkipsTheClaim(t *testing.T) {
	wl := &writeLog{}
	h := newHarness(t, harnessOptions{pipeline: fast, streamBacklog: true, wrapDB: func(s pipeline.Store) pipeline.Store {
		wl.Store = s
		return wl
	}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "NOCLAIM-J", nil), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CLAIM-N", nil), "")
	for _, o := range []struct{ seller, no string }{{jumdataSeller, "NOCLAIM-J"}, {nuonuoSeller, "CLAIM-N"}} {
		if r := h.waitResult(o.seller, o.no, 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
			t.Fatalf("%s: %+v", o.no, r)
		}
	}
	if got := wl.of("NOCLAIM-J"); len(got) != 1 || got[0] != schemas.StateIssued {
		t.Errorf("jumdata order written as %v, want [issued]", got)
	}
	if got := wl.of("CLAIM-N"); len(got) < 2 || got[0] != schemas.StateSubmitting {
		t.Errorf("Nuonuo order written as %v, want a claim first", got)
	}
}

// A jumdata order whose answer could not be saved is submitted again on its
// next delivery, without a record of the first submission: jumdata answers
// the repeat from the first, and one invoice is issued.
func TestUnrecordedRepeatableSubmissionIsNotIssuedTwice(t *testing.T) {
	wl := &writeLog{failIssued: "UNSAVED-J"}
	h := newHarness(t, harnessOptions{pipeline: fast, streamBacklog: true, wrapDB: func(s pipeline.Store) pipeline.Store {
		wl.Store = s
		return wl
	}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "UNSAVED-J", nil), "")
	r := h.waitResult(jumdataSeller, "UNSAVED-J", 1, 10*time.Second)[0]
	if r.Status != schemas.StatusIssued {
		t.Fatalf("result %+v", r)
	}
	h.waitFor("the request to be acknowledged", 10*time.Second, h.requestStreamEmpty)
	h.caughtUp(10 * time.Second) // acknowledged after its results' publishes: all collected
	st := h.orderStats(jumdataSeller, "UNSAVED-J")
	if st.Submissions+st.Queries != 2 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v: want the submission repeated and one invoice", st)
	}
	rec, ok, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "UNSAVED-J"})
	if err != nil || !ok || rec.State != schemas.StateIssued || rec.Invoices[0].InvoiceNo != r.Invoices[0].InvoiceNo {
		t.Fatalf("stored %+v %v %v", rec, ok, err)
	}
	if n := len(h.resultsFor(jumdataSeller, "UNSAVED-J")); n != 1 {
		t.Fatalf("%d results", n)
	}
}

// oldBacklog says a request has waited since at.
type oldBacklog struct{ at time.Time }

func (b oldBacklog) OldestWaiting() (time.Time, bool) { return b.at, true }

// redeliver processes data as a delivery after the first of a request
// published at publishedAt, as the consume loop would, and waits for its
// result's acknowledgement.
func redeliver(t *testing.T, h *harness, seller string, data []byte, deliveries int, publishedAt time.Time) pipeline.Outcome {
	t.Helper()
	out := h.p.Process(context.Background(), &pipeline.Message{
		Subject: schemas.Subjects{}.Request(seller), Data: data,
		Stream: pipeline.DefaultRequestStream, StreamSeq: 1 << 40, Deliveries: deliveries, PublishedAt: publishedAt,
	})
	if out.Published != nil {
		if err := out.Published(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A request delivered many times with no record of its order was never
// submitted (a held seller's, put back overnight): had an earlier delivery
// submitted it without a claim, its order would be recorded (by the save,
// by RecoverUnclaimed after a restart) or listed as unrecorded. It is
// claimed and submitted, not searched for by its content, which could take
// an identical invoice to the same buyer for its own.
func TestHeldRequestIsNotSearchedFor(t *testing.T) {
	wl := &writeLog{}
	published := time.Now().Add(-9*time.Hour - time.Minute)
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: oldBacklog{at: published}, wrapDB: func(s pipeline.Store) pipeline.Store {
		wl.Store = s
		return wl
	}})
	h.start()
	if out := redeliver(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "HELD-J", nil), 6, published); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("outcome %+v", out)
	}
	if got := wl.of("HELD-J"); len(got) != 2 || got[0] != schemas.StateSubmitting {
		t.Fatalf("written as %v, want a claim first", got)
	}
	if st := h.orderStats(jumdataSeller, "HELD-J"); st.Submissions != 1 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v: want one submission", st)
	}
	if n := h.sb.Stats().Requests["jumdata"]; n != 1 {
		t.Fatalf("%d calls to jumdata, want the submission alone (no search of its issued invoices)", n)
	}
}

// A jumdata order submitted without a claim whose answer could not be
// saved (a failing disk) is looked for on the next delivery, however late:
// nine hours on, jumdata has forgotten the taskId, so its issued invoices
// are searched (a submission would issue a second invoice). A search
// without an answer leaves the order saved as possibly submitted since the
// request's publication, and the delivery after that searches again.
func TestUnrecordedSubmissionIsLookedForLater(t *testing.T) {
	var ahead atomic.Int64 // every clock but the stream's runs this far ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fast
	cfg.Now = clock
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	wl := &writeLog{failIssued: "LOOK-RETRY"}
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog, sandbox: sandbox.Config{Now: clock}, wrapDB: func(s pipeline.Store) pipeline.Store {
		wl.Store = s
		return wl
	}})
	h.provs[jumdataSeller] = directJumdata(t, h, clock)
	h.start()
	h.stop() // deliveries are made by hand below
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "LOOK-RETRY", nil))
	deliver := func(n int) pipeline.Outcome {
		out := h.p.Process(context.Background(), &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Stream: pipeline.DefaultRequestStream,
			StreamSeq: raw.Sequence, Deliveries: n, PublishedAt: raw.Time})
		if out.Published != nil {
			_ = out.Published(context.Background())
		}
		return out
	}
	if out := deliver(1); out.Action != pipeline.Nak {
		t.Fatalf("first outcome %+v: want the failed save put back", out)
	}
	first := h.orderStats(jumdataSeller, "LOOK-RETRY")
	if first.Issuances != 1 {
		t.Fatalf("sandbox %+v after the first delivery", first)
	}
	ahead.Store(int64(9 * time.Hour))
	// The search fails once (an outage of the buyer's list is not followed
	// by the whole list).
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/query", HTTPStatus: 503, Times: 1}}})
	if out := deliver(2); out.Action != pipeline.Nak || out.Err != nil {
		t.Fatalf("second outcome %+v", out)
	}
	rec, found, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "LOOK-RETRY"})
	if err != nil || !found || rec.State != schemas.StateSubmitting || rec.Submissions != 1 || !rec.SubmittedAt.Equal(raw.Time) {
		t.Fatalf("stored %+v (%v, %v): want possibly submitted since the publication", rec, found, err)
	}
	if out := deliver(3); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("third outcome %+v", out)
	}
	if st := h.orderStats(jumdataSeller, "LOOK-RETRY"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v: issued twice", st)
	}
}

// With an old backlog, a request delivered for the first time cannot have
// been submitted by an earlier delivery: it is claimed and submitted
// without a search (a backlog left by a long outage is not searched order
// by order).
func TestOldBacklogFirstDeliveryIsClaimed(t *testing.T) {
	wl := &writeLog{}
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: oldBacklog{at: time.Now().Add(-9 * time.Hour)},
		wrapDB: func(s pipeline.Store) pipeline.Store {
			wl.Store = s
			return wl
		}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "OLD-FIRST", nil), "")
	if r := h.waitResult(jumdataSeller, "OLD-FIRST", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("result %+v", r)
	}
	if got := wl.of("OLD-FIRST"); len(got) != 2 || got[0] != schemas.StateSubmitting {
		t.Fatalf("written as %v, want a claim first", got)
	}
	if st := h.orderStats(jumdataSeller, "OLD-FIRST"); st.Queries != 0 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v: want no search", st)
	}
}

// directJumdata is a jumdata client of the harness's sandbox on clock.
func directJumdata(t *testing.T, h *harness, clock func() time.Time) *jumdata.Client {
	c, err := jumdata.New(jumdata.Config{BaseURL: h.sbURL, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret,
		Token: sandbox.DefaultJumdataToken, SellerTaxNum: jumdataSeller, DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// decodeReq decodes a valid jumdata request.
func decodeReq(t *testing.T, data []byte) *schemas.Request {
	v, _ := schemas.NewValidator(schemas.ValidatorConfig{})
	d, err := v.Decode(data, jumdataSeller)
	if err != nil || !d.Valid() {
		t.Fatalf("%v %+v", err, d.Violations)
	}
	return d.Request
}

// A request submitted without a claim and redelivered later is dated from
// its publication, not from the delivery that saved it: a look-up after
// jumdata has forgotten the first submission's taskId searches instead of
// repeating it (which would issue a second invoice), one hour or a day on.
func TestClaimlessSubmissionIsDatedFromThePublication(t *testing.T) {
	for _, later := range []time.Duration{time.Hour, 24 * time.Hour} {
		t.Run(later.String(), func(t *testing.T) { claimlessSubmittedAt(t, later) })
	}
}

func claimlessSubmittedAt(t *testing.T, later time.Duration) {
	var behind atomic.Int64
	clock := func() time.Time { return time.Now().Add(-time.Duration(behind.Load())) }
	published := time.Now().Add(-7*time.Hour - 30*time.Minute)
	var adv atomic.Int64 // the consumer's clock moves with the sandbox's
	ours := func() time.Time { return time.Now().Add(time.Duration(adv.Load())) }
	cfg := fast
	cfg.Now = ours
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: oldBacklog{at: published}, sandbox: sandbox.Config{Now: clock}})
	h.provs[jumdataSeller] = directJumdata(t, h, ours)
	req := issueRequest(t, jumdataSeller, "SUBAT-J", nil)
	// Delivery 1, 7h30 ago: claimless submit made, crash before the save.
	behind.Store(int64(7*time.Hour + 30*time.Minute))
	if first := directJumdata(t, h, clock).Submit(context.Background(), &providers.Call{Request: decodeReq(t, req)}); first.Class != providers.Issued {
		t.Fatalf("direct: %+v", first)
	}
	behind.Store(0)
	h.start()
	// Delivery 2, now: backlog young (7h30 < 7h50) → claimless submit; jumdata
	// answers 501 (tax bureau down) → Retry, saved as submitting.
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", Code: "501"}}})
	out := redeliver(t, h, jumdataSeller, req, 2, published)
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "SUBAT-J"})
	t.Logf("delivery 2: action=%v event=%s; stored state=%s SubmittedAt=%s ago (first submission was 7h30m ago)", out.Action, out.Event, rec.State, time.Since(rec.SubmittedAt).Round(time.Second))
	// One hour later (all clocks +1h: the sandbox is moved ahead; the pipeline's
	// relative view is the same): the first task is 8h30 old and forgotten.
	behind.Store(-int64(later))
	adv.Store(int64(later))
	out = redeliver(t, h, jumdataSeller, req, 3, published)
	st := h.orderStats(jumdataSeller, "SUBAT-J")
	rec, _, _ = h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "SUBAT-J"})
	t.Logf("after delivery 3: state=%s lastError=%+v", rec.State, rec.LastError)
	t.Logf("delivery 3: action=%v event=%s; sandbox %+v", out.Action, out.Event, st)
	if st.Issuances > 1 {
		t.Errorf("order issued %d times", st.Issuances)
	}
}

// A request submitted without a claim and redelivered after a deploy that
// changed the data sent for it (jumdata refuses the repeated taskId with 400)
// is searched for, and the invoice of the first submission is found, not
// stored as a rejection.
func TestRedeliveredAfterConfigChangeFindsTheInvoice(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, backlog: oldBacklog{at: time.Now().Add(-time.Hour)}})
	req := issueRequest(t, jumdataSeller, "CFG-J", nil)
	// The run before the deploy took the request and submitted it without
	// a claim (the unclaimed mark above it), then stopped before saving.
	raw := publishRaw(t, h, jumdataSeller, req)
	if err := h.db.RaiseMark(ctx, unclaimedMarkName(t, h), raw.Sequence+1); err != nil {
		t.Fatal(err)
	}
	_, putBack := takeNext(t, h)
	putBack()
	before, err := jumdata.New(jumdata.Config{BaseURL: h.sbURL, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret,
		Token: sandbox.DefaultJumdataToken, SellerTaxNum: jumdataSeller, DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm, SellerName: "旧名称有限公司"})
	if err != nil {
		t.Fatal(err)
	}
	first := before.Submit(ctx, &providers.Call{Request: decodeReq(t, req)})
	if first.Class != providers.Issued {
		t.Fatalf("direct: %+v", first)
	}
	h.start()
	if h.recovered != 1 {
		t.Fatalf("RecoverUnclaimed recorded %d orders, want 1", h.recovered)
	}
	r := h.waitResult(jumdataSeller, "CFG-J", 1, 10*time.Second)[0]
	st := h.orderStats(jumdataSeller, "CFG-J")
	if r.Status != schemas.StatusIssued || r.Invoices[0].InvoiceNo != first.Invoices[0].InvoiceNo || st.Issuances != 1 {
		t.Fatalf("result %s %+v %+v, sandbox %+v: want the invoice of the first submission %s", r.Status, r.Error, r.Invoices, st, first.Invoices[0].InvoiceNo)
	}
}
