package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// A red confirmation form that waited for the buyer, then a store outage
// and a restart of the consumer (the put-backs forgotten): its first
// transient answer after that does not give it up. (Each waiting delivery
// makes two calls, the query and the inline poll, so counting calls would.)
func TestForgottenPutBacksOfAWaitingFormDoNotGiveItUpAtItsFirstAnswer(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-FORGOT-J", issuedBlue(t, h, p, "BLUE-FORGOT-J")))
	d := 1
	for ; d <= 2*cfg.MaxDeliver; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("waiting delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-FORGOT-J"})
	t.Logf("after the wait: %d calls, %d wait polls", rec.Attempts, rec.WaitPolls)
	h.sb.SetFaults(sandbox.Faults{Error5xx: 1}) // jumdata refuses calls for a while
	out := deliverRaw(t, p, raw, d+40)          // 40 put-backs forgotten by a restart
	if out.Action != pipeline.Nak {
		rec, _, _ = h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-FORGOT-J"})
		t.Fatalf("first answer after the restart: %s %s %q (order %s, %d calls, wait polls reset); want put back", out.Action, out.Event, out.Reason, rec.State, rec.Attempts)
	}
}

// A replayed dead letter resumes its order, whose request given up had
// MaxDeliver answers and more: a store outage and a restart during the
// replay do not give it up at its first answer either.
func TestForgottenPutBacksDoNotGiveUpAReplayAtItsFirstAnswer(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	body := issueRequest(t, jumdataSeller, "FORGOT-R", nil)
	raw := publishRaw(t, h, jumdataSeller, body)
	var out pipeline.Outcome
	for d := 1; d <= cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Term {
		t.Fatalf("original request: %s %s; want given up", out.Action, out.Event)
	}
	replay := publishRaw(t, h, jumdataSeller, body) // the dead letter replayed
	out = deliverRaw(t, p, replay, 1+40)            // 40 put-backs forgotten by a restart
	if out.Action != pipeline.Nak {
		t.Fatalf("the replay's first answer after the restart: %s %s %q; want put back", out.Action, out.Event, out.Reason)
	}
}

// A request given up as failed whose termination was lost (a reconnection,
// or a crash after the failed result) is delivered again, resumes its
// order and finds it issued: that result is published too, not dropped by
// the result stream as a duplicate of the failed one (both used to carry
// the message's one Nats-Msg-Id), so the results do not end at "failed"
// for an invoice that exists.
func TestAnIssuedResultAfterAGiveUpOfTheSameMessageIsPublished(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	p := firstRun(t, h, cfg, h.db, nil, false)
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 11}) // every call in doubt
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "AFTER-GIVEUP", nil))
	var out pipeline.Outcome
	d := 1
	for ; d <= cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Term || out.Status != schemas.StatusFailed {
		t.Fatalf("delivery %d: %s %s %s; want given up as failed", d, out.Action, out.Event, out.Status)
	}
	h.sb.SetFaults(sandbox.Faults{})
	if out = deliverRaw(t, p, raw, d+1); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("the same message again: %s %s %s %v; want issued", out.Action, out.Event, out.Status, out.Err)
	}
	got := h.waitResult(nuonuoSeller, "AFTER-GIVEUP", 2, 10*time.Second)
	if got[0].Status != schemas.StatusFailed || got[1].Status != schemas.StatusIssued {
		t.Fatalf("results %s, %s; want failed, then issued", got[0].Status, got[1].Status)
	}
}

// panicky is a provider with a bug: every call panics.
type panicky struct{ providers.Provider }

func (panicky) Submit(context.Context, *providers.Call) providers.Outcome { panic("a provider bug") }
func (panicky) Query(context.Context, *providers.Call) providers.Outcome  { panic("a provider bug") }

// A request whose processing panics every time is put back like any error,
// and at its last delivery given up (a failed result and an exhausted dead
// letter) and terminated, instead of coming back for ever.
func TestARequestThatPanicsEveryTimeIsGivenUp(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	h.provs[nuonuoSeller] = panicky{h.provs[nuonuoSeller]}
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "PANICS", nil))
	for d := 1; d < cfg.MaxDeliver; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventError || !strings.Contains(fmt.Sprint(out.Err), "a provider bug") {
			t.Fatalf("delivery %d: %s %s %v; want put back with the panic", d, out.Action, out.Event, out.Err)
		}
	}
	out := deliverRaw(t, p, raw, cfg.MaxDeliver)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted || out.Status != schemas.StatusFailed {
		t.Fatalf("last delivery: %s %s %q %s %v; want given up", out.Action, out.Event, out.DeadLetter, out.Status, out.Err)
	}
	res := h.waitResult(nuonuoSeller, "PANICS", 1, 10*time.Second)
	if e := res[0].Error; res[0].Status != schemas.StatusFailed || e == nil || e.Code != schemas.CodeRetriesExhausted ||
		!strings.Contains(e.Message, "a provider bug") || strings.Contains(e.Message, "goroutine") {
		t.Fatalf("result %s %+v; want failed, retries_exhausted, naming the panic without its stack", res[0].Status, res[0].Error)
	}
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.caughtUp(10 * time.Second) // deliverRaw waited for its publishes: all collected
	if dl := h.exactDeadLetters(1)[0]; dl.Reason != schemas.ReasonExhausted || dl.OrderNo != "PANICS" || dl.OriginalSeq != raw.Sequence {
		t.Fatalf("dead letter %+v", dl)
	}
}

// queryRecorder remembers whether each Query was told the submission was
// accepted.
type queryRecorder struct {
	providers.Provider
	mu       sync.Mutex
	accepted []bool
}

func (q *queryRecorder) Query(ctx context.Context, c *providers.Call) providers.Outcome {
	q.mu.Lock()
	q.accepted = append(q.accepted, c.Accepted)
	q.mu.Unlock()
	return q.Provider.Query(ctx, c)
}

// A Query after the provider accepted the submission says so
// (providers.Call.Accepted), so that a provider whose submission cannot be
// repeated safely does not answer NotFound while it does not list it yet.
func TestAQueryAfterAnAcceptedSubmissionSaysSo(t *testing.T) {
	cfg := fast
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1}}})
	rec := &queryRecorder{Provider: h.provs[nuonuoSeller]}
	h.provs[nuonuoSeller] = rec
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "ACCEPTED-Q", nil))
	var out pipeline.Outcome
	for d := 1; d <= 5; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action == pipeline.Ack {
			break
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if out.Status != schemas.StatusIssued || len(rec.accepted) == 0 || !rec.accepted[len(rec.accepted)-1] {
		t.Fatalf("outcome %s %s; queries told accepted: %v", out.Action, out.Status, rec.accepted)
	}
}

// A request that an earlier build took as valid and submitted, and that a
// rule of this build refuses (here margin taxation: a deduction of 0.0,
// which says neither "0", none, nor "0.00", margin taxation with nothing
// deducted, and which the earlier build and the provider take as zero, on
// a tax-control invoice: a fully digital one takes no zero deduction), is
// finished when it comes back after the upgrade, never submitted again;
// answered rejected, its order would stay at the provider while the result
// said it was refused. The same body with no record is rejected.
func TestARequestAnEarlierBuildSubmittedIsFinishedUnderAStricterRule(t *testing.T) {
	cfg := fast
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	ctx := context.Background()
	withDeduction := func(o *schemas.Order) {
		o.InvoiceLine, o.InvoiceDetail[0].Deduction = "p", schemas.ParseAmount("0.0")
	}
	body := issueRequest(t, nuonuoSeller, "UPGRADE-1", withDeduction)
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := v.Decode(body, nuonuoSeller)
	if err != nil || d.Valid() || d.Request == nil {
		t.Fatalf("want a request this build refuses: %v %+v", err, d.Violations)
	}
	// What the earlier build did: submit it, and record it accepted.
	prov := h.provs[nuonuoSeller]
	submittedAt := time.Now()
	a := prov.Submit(ctx, &providers.Call{Request: d.Request, SubmittedAt: submittedAt})
	if a.Class != providers.Accepted {
		t.Fatalf("the earlier build's submission: %s %s %v", a.Class, a.Code, a.Err)
	}
	rec := schemas.OrderRecord{Seller: nuonuoSeller, OrderNo: "UPGRADE-1", Kind: schemas.KindIssue, State: schemas.StateAccepted,
		Fingerprint: d.Fingerprint, Provider: prov.Name(), Refs: a.Refs, Submissions: 1, Attempts: 1,
		SubmittedAt: submittedAt, ReceivedAt: submittedAt}
	if _, err := h.db.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	raw := publishRaw(t, h, nuonuoSeller, body)
	var out pipeline.Outcome
	for dl := 1; dl <= 5; dl++ {
		if out = deliverRaw(t, p, raw, dl); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("after the upgrade: %s %s %s %v; want the order finished, issued", out.Action, out.Event, out.Status, out.Err)
	}
	if st := h.orderStats(nuonuoSeller, "UPGRADE-1"); st.Submissions != 1 {
		t.Fatalf("sandbox %+v: submitted again", st)
	}
	fresh := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "UPGRADE-2", withDeduction))
	if out = deliverRaw(t, p, fresh, 1); out.Action != pipeline.Ack || out.Status != schemas.StatusRejected {
		t.Fatalf("the same body with no record: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
}

// An invalid request whose key no build could have recorded (an order
// number longer than the store's keys) is rejected at once: the look for an
// earlier build's record of it finds nothing, it does not fail.
func TestAnInvalidRequestWithAnImpossibleKeyIsRejectedAtOnce(t *testing.T) {
	cfg := fast
	h := newHarness(t, harnessOptions{pipeline: cfg})
	p := firstRun(t, h, cfg, h.db, nil, false)
	long := strings.Repeat("9", 40000)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, long, nil))
	if out := deliverRaw(t, p, raw, 1); out.Action != pipeline.Ack || out.Status != schemas.StatusRejected {
		t.Fatalf("%s %s %s %v; want rejected at the first delivery", out.Action, out.Event, out.Status, out.Err)
	}
}

// An order submitted without a claim whose answer could not be saved is
// known only to the pipeline's memory. A request for it that panics at its
// last delivery is given up, but not so as to lose that: terminated, the
// request leaves the stream, and after a restart nothing would say the order
// was submitted. The order's record is on disk before the request goes.
func TestAPanicAtTheLastDeliveryKeepsAnUnrecordedSubmission(t *testing.T) {
	ctx := context.Background()
	cfg := fast
	cfg.MaxDeliver = 3
	backlog := &settableBacklog{}
	backlog.at.Store(time.Now().UnixNano())
	h := newHarness(t, harnessOptions{pipeline: cfg, backlog: backlog})
	p := firstRun(t, h, cfg, &writeLog{Store: h.db, failIssued: "PANIC-J"}, backlog, true)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "PANIC-J", nil))
	if out := deliverRaw(t, p, raw, 1); out.Action != pipeline.Nak {
		t.Fatalf("delivery 1 (its issued save fails): %s %s", out.Action, out.Event)
	}
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "PANIC-J"}
	if _, found, _ := h.db.Get(ctx, key); found {
		t.Fatal("setup: the order store holds a record: the order was claimed")
	}
	h.provs[jumdataSeller] = panicky{h.provs[jumdataSeller]}
	out := deliverRaw(t, p, raw, cfg.MaxDeliver)
	rec, found, err := h.db.Get(ctx, key)
	if out.Action == pipeline.Term && (err != nil || !found || rec.Submissions == 0) {
		t.Fatalf("the last delivery panicked and was terminated (%s), and the order store holds no submission of the order (found %v, %+v, %v): after a restart nothing says it was submitted",
			out.Event, found, rec, err)
	}
}

// panicAfterPatientSave is an order store with a bug in saving issued
// records (PutPatient, the save made while the issued result is being
// published): it panics, after the save when saved is set, before it
// otherwise.
type panicAfterPatientSave struct {
	pipeline.Store
	saved bool
}

func (s panicAfterPatientSave) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if s.saved {
		if _, err := s.Store.PutPatient(ctx, rec); err != nil {
			return rec, err
		}
	}
	panic("an order store bug")
}

// pipelineOver returns a pipeline over the harness with st as its order
// store and pub as its publisher, started as the consumer starts it.
func pipelineOver(t *testing.T, h *harness, cfg pipeline.Config, st pipeline.Store, pub pipeline.Publisher) *pipeline.Pipeline {
	t.Helper()
	return pipelineOverProviders(t, h, cfg, st, pub, h.provs)
}

// pipelineOverProviders is pipelineOver with the providers provs.
func pipelineOverProviders(t *testing.T, h *harness, cfg pipeline.Config, st pipeline.Store, pub pipeline.Publisher, provs pipeline.ProviderMap) *pipeline.Pipeline {
	t.Helper()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(cfg, v, st, pub, provs)
	if err != nil {
		t.Fatal(err)
	}
	recoverWith(t, h, p, h.db)
	return p
}

// A request whose issued result is on its way, and whose processing then
// panics at its last delivery, every time (here in the save of its issued
// record, after the save landed): it ends, terminated with a dead letter
// for the SRE, and its result stays the issued one. Given up with a
// "failed" result as a request that never got that far, the results would
// say both issued and failed for one invoice.
func TestAPanicAfterAnIssuedResultEndsWithoutAFailedResult(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	p := pipelineOver(t, h, cfg, panicAfterPatientSave{Store: h.db, saved: true}, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}))
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "PANIC-ISSUED", nil))
	out := deliverRaw(t, p, raw, cfg.MaxDeliver)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted || !strings.Contains(fmt.Sprint(out.Err), "an order store bug") {
		t.Fatalf("last delivery: %s %s %q %s %v; want terminated with a dead letter", out.Action, out.Event, out.DeadLetter, out.Status, out.Err)
	}
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) == 1 })
	// The issued result went out before the dead letter, but its collector
	// may not have it yet; a second result would have been published
	// before the delivery ended too.
	h.waitResult(nuonuoSeller, "PANIC-ISSUED", 1, 10*time.Second)
	h.caughtUp(10 * time.Second)
	if dls := h.deadLetters(); len(dls) != 1 || dls[0].Reason != schemas.ReasonExhausted || dls[0].OrderNo != "PANIC-ISSUED" || !strings.Contains(dls[0].Error.Message, "an order store bug") {
		t.Fatalf("dead letters %+v; want the one of the panic", dls)
	}
	if res := h.resultsFor(nuonuoSeller, "PANIC-ISSUED"); len(res) != 1 || res[0].Status != schemas.StatusIssued {
		var got []schemas.Status
		for _, r := range res {
			got = append(got, r.Status)
		}
		t.Fatalf("results %v; want the issued one only", got)
	}
	if rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "PANIC-ISSUED"}); rec.State != schemas.StateIssued {
		t.Fatalf("order %s; want issued", rec.State)
	}
}

// The same panic before the issued record's save landed: the order store
// holds the order as claimed, not issued, and terminated, the request
// would leave nothing to ask the provider again and record the invoice.
// It is put back, with neither a "failed" result nor a dead letter, and
// once the store saves again the next delivery records the invoice.
func TestAPanicAfterAnIssuedResultTheStoreLacksIsPutBack(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	pub := pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{})
	p := pipelineOver(t, h, cfg, panicAfterPatientSave{Store: h.db}, pub)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "PANIC-UNSAVED", nil))
	for d := cfg.MaxDeliver; d < cfg.MaxDeliver+3; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Status == schemas.StatusFailed {
			t.Fatalf("delivery %d: %s %s %q %s %v; want put back", d, out.Action, out.Event, out.DeadLetter, out.Status, out.Err)
		}
	}
	h.waitResult(nuonuoSeller, "PANIC-UNSAVED", 1, 10*time.Second)
	h.caughtUp(10 * time.Second) // no second result, no dead letter on their way
	if res := h.resultsFor(nuonuoSeller, "PANIC-UNSAVED"); len(res) != 1 || res[0].Status != schemas.StatusIssued || len(h.deadLetters()) != 0 {
		t.Fatalf("%d results (first %s), %d dead letters; want the issued result only", len(res), res[0].Status, len(h.deadLetters()))
	}
	fixed := pipelineOver(t, h, cfg, h.db, pub)
	if out := deliverRaw(t, fixed, raw, cfg.MaxDeliver+3); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("with the store fixed: %s %s %s %v; want issued", out.Action, out.Event, out.Status, out.Err)
	}
	if st := h.orderStats(nuonuoSeller, "PANIC-UNSAVED"); st.Submissions != 1 {
		t.Fatalf("sandbox %+v: submitted again", st)
	}
}

// panickyDeadLetters is a publisher with a bug in publishing the dead
// letters of one reason: they panic.
type panickyDeadLetters struct {
	pipeline.Publisher
	reason schemas.DeadLetterReason
}

func (p panickyDeadLetters) PublishDeadLetter(ctx context.Context, dl *schemas.DeadLetter, msgID string) error {
	if dl.Reason == p.reason {
		panic("a dead-letter bug")
	}
	return p.Publisher.PublishDeadLetter(ctx, dl, msgID)
}

// A request given up at its last delivery (saved failed, its "failed"
// result published) whose giving up then panics, every time: it ends,
// terminated with a dead letter of the panic, rather than being put back
// for ever to be given up and panic again.
func TestAPanicAfterAFailedResultEndsTheRequest(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	h.provs[jumdataSeller] = needsPerson{h.provs[jumdataSeller].(*jumdata.Client)} // HOLDER-J needs a person
	p := pipelineOver(t, h, cfg, h.db, panickyDeadLetters{Publisher: pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), reason: schemas.ReasonActionRequired})
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "HOLDER-J", nil))
	out := deliverRaw(t, p, raw, cfg.MaxDeliver)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted || !strings.Contains(fmt.Sprint(out.Err), "a dead-letter bug") {
		t.Fatalf("last delivery: %s %s %q %s %v; want terminated with a dead letter", out.Action, out.Event, out.DeadLetter, out.Status, out.Err)
	}
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.caughtUp(10 * time.Second) // deliverRaw waited for its publishes: all collected
	if dl := h.exactDeadLetters(1)[0]; dl.Reason != schemas.ReasonExhausted || dl.OrderNo != "HOLDER-J" {
		t.Fatalf("dead letter %+v", dl)
	}
	res := h.waitResult(jumdataSeller, "HOLDER-J", 2, 10*time.Second)
	if len(res) != 2 || res[0].Status != schemas.StatusActionRequired || res[1].Status != schemas.StatusFailed {
		t.Fatalf("results %+v; want action_required, then failed", res)
	}
	if rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "HOLDER-J"}); rec.State != schemas.StateFailed {
		t.Fatalf("order %s; want failed", rec.State)
	}
}

// A replayed dead letter resumes its order, stored as failed, and finds
// it issued; the save of the issued record panics at the replay's last
// delivery, every time, before it lands. The store says failed while the
// result says issued: the replay is put back, without a "failed" result or
// a dead letter, until the store records the invoice.
func TestAPanicAfterAnIssuedResultOfAFailedOrderIsPutBack(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	pub := pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{})
	p := pipelineOver(t, h, cfg, h.db, pub)
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 11}) // every call in doubt
	body := issueRequest(t, nuonuoSeller, "PANIC-REPLAY", nil)
	raw := publishRaw(t, h, nuonuoSeller, body)
	var out pipeline.Outcome
	for d := 1; d <= cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Term || out.Status != schemas.StatusFailed {
		t.Fatalf("original request: %s %s %s; want given up as failed", out.Action, out.Event, out.Status)
	}
	h.sb.SetFaults(sandbox.Faults{})
	buggy := pipelineOver(t, h, cfg, panicAfterPatientSave{Store: h.db}, pub)
	replay := publishRaw(t, h, nuonuoSeller, body) // the dead letter replayed
	for d := cfg.MaxDeliver; d < cfg.MaxDeliver+2; d++ {
		if out = deliverRaw(t, buggy, replay, d); out.Action != pipeline.Nak || out.DeadLetter != "" {
			t.Fatalf("replay delivery %d: %s %s %q %s %v; want put back", d, out.Action, out.Event, out.DeadLetter, out.Status, out.Err)
		}
	}
	// The original's dead letter went out before the replay's result,
	// but its collector may not have it yet.
	h.waitResult(nuonuoSeller, "PANIC-REPLAY", 2, 10*time.Second)
	h.waitFor("the original's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.caughtUp(10 * time.Second)
	if res := h.resultsFor(nuonuoSeller, "PANIC-REPLAY"); len(res) != 2 || res[1].Status != schemas.StatusIssued || len(h.deadLetters()) != 1 {
		t.Fatalf("%d results, %d dead letters; want failed and issued, and the original's dead letter only", len(res), len(h.deadLetters()))
	}
	if out = deliverRaw(t, p, replay, cfg.MaxDeliver+2); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("with the store fixed: %s %s %s %v; want issued", out.Action, out.Event, out.Status, out.Err)
	}
}

// panickyGets is an order store with a bug in reading orders: every read
// panics, before the pipeline has chosen the order's provider.
type panickyGets struct{ pipeline.Store }

func (panickyGets) Get(context.Context, schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	panic("an order store bug")
}

// withoutSeller returns the harness's providers less seller's: a seller
// not configured.
func withoutSeller(h *harness, seller string) pipeline.ProviderMap {
	provs := pipeline.ProviderMap{}
	for s, p := range h.provs {
		if s != seller {
			provs[s] = p
		}
	}
	return provs
}

// A request that panics at every delivery is given up at its last with a
// "failed" result, which names the order's provider as the order's other
// results do (the downstream filters results by provider): the provider
// the delivery had chosen when the panic came from the provider call, the
// seller's configured one when it came before the provider was chosen
// (reading the order). A seller with no provider names none. It counts
// the provider calls made, the one that panicked included.
func TestAPanickedRequestsFailedResultNamesTheProvider(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	for _, c := range []struct {
		name, seller, orderNo, want string
		panicky                     bool // the provider call panics, else the order store's read
	}{
		{name: "in the provider call", seller: nuonuoSeller, orderNo: "PANIC-PROV-N", want: "nuonuo", panicky: true},
		{name: "reading the order", seller: jumdataSeller, orderNo: "PANIC-GET-J", want: "jumdata"},
		{name: "reading the order of a seller not configured", seller: nuonuoSeller2, orderNo: "PANIC-GET-X", want: ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{pipeline: cfg})
			provs := withoutSeller(h, nuonuoSeller2)
			var st pipeline.Store = panickyGets{Store: h.db}
			if c.panicky {
				provs[c.seller] = panicky{provs[c.seller]}
				st = h.db
			}
			v, err := schemas.NewValidator(schemas.ValidatorConfig{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := pipeline.New(cfg, v, st, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), provs)
			if err != nil {
				t.Fatal(err)
			}
			req := issueRequest(t, c.seller, c.orderNo, nil)
			raw := publishRaw(t, h, c.seller, req)
			out := deliverRaw(t, p, raw, cfg.MaxDeliver)
			if out.Action != pipeline.Term || out.Status != schemas.StatusFailed || !strings.Contains(fmt.Sprint(out.Err), "bug") {
				t.Fatalf("last delivery: %s %s %s %v; want given up after the panic", out.Action, out.Event, out.Status, out.Err)
			}
			if r := h.waitResult(c.seller, c.orderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusFailed || r.Provider != c.want {
				t.Errorf("result %s naming provider %q; want failed naming %q", r.Status, r.Provider, c.want)
			} else if d, err := v.Decode(req, ""); err != nil || r.Fingerprint != d.Fingerprint {
				// publish --wait ties a result to its request by it.
				t.Errorf("result's fingerprint %q, the request's %q (%v)", r.Fingerprint, d.Fingerprint, err)
			} else if called := r.Attempts > 0; called != c.panicky {
				t.Errorf("result counts %d attempts; want some only when the provider was called", r.Attempts)
			}
		})
	}
}

// A request given up at its last delivery while the order store cannot be
// read is answered "failed" without the store: the seller's provider is
// known all the same (the pipeline's configuration), and the result names
// it, as the order's other results do. A seller with no provider names
// none.
func TestAGiveUpWhileTheStoreCannotBeReadNamesTheProvider(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	st := &failingGets{Store: h.db}
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(cfg, v, st, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), withoutSeller(h, nuonuoSeller2))
	if err != nil {
		t.Fatal(err)
	}
	recoverWith(t, h, p, h.db)
	st.fail.Store(true)
	for _, c := range []struct{ seller, orderNo, want string }{
		{nuonuoSeller, "UNREAD-N", "nuonuo"},
		{jumdataSeller, "UNREAD-J", "jumdata"},
		{nuonuoSeller2, "UNREAD-X", ""}, // not configured
	} {
		raw := publishRaw(t, h, c.seller, issueRequest(t, c.seller, c.orderNo, nil))
		// Published long before: past any wait for a buyer, so that the
		// unreadable record does not keep the request (order.mayBeWaiting).
		out := p.Process(context.Background(), &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Stream: pipeline.DefaultRequestStream,
			StreamSeq: raw.Sequence, Deliveries: cfg.MaxDeliver, PublishedAt: raw.Time.Add(-30 * 24 * time.Hour)})
		if out.Action != pipeline.Term || out.Status != schemas.StatusFailed {
			t.Fatalf("%s: last delivery: %s %s %s %v; want given up", c.orderNo, out.Action, out.Event, out.Status, out.Err)
		}
		if r := h.waitResult(c.seller, c.orderNo, 1, 10*time.Second)[0]; r.Status != schemas.StatusFailed || r.Provider != c.want {
			t.Errorf("%s: result %s naming provider %q; want failed naming %q", c.orderNo, r.Status, r.Provider, c.want)
		}
	}
}
