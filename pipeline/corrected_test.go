package pipeline_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats.go"
)

// failAfterSubmission runs the request for orderNo with every provider
// answer lost (the sandbox takes each call and drops the answer) until it is
// given up as failed, then lifts the fault. The earlier request is issued at
// the provider by then, unknown to the pipeline.
func failAfterSubmission(t *testing.T, h *harness, seller, orderNo string) []byte {
	t.Helper()
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 11})
	req := issueRequest(t, seller, orderNo, nil)
	h.publish(seller, req, "")
	res := h.waitResult(seller, orderNo, 1, 30*time.Second)
	if res[0].Status != schemas.StatusFailed {
		t.Fatalf("earlier request: %+v", res[0])
	}
	h.sb.SetFaults(sandbox.Faults{})
	rec, ok, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: seller, OrderNo: orderNo})
	if err != nil || !ok || rec.State != schemas.StateFailed || rec.Submissions == 0 {
		t.Fatalf("stored after the give-up: %+v %v %v", rec, ok, err)
	}
	if st := h.orderStats(seller, orderNo); st.Issuances != 1 {
		t.Fatalf("sandbox after the earlier request: %+v", st)
	}
	return req
}

// startGivingUpSoon starts a harness whose requests are given up on their
// third delivery.
func startGivingUpSoon(t *testing.T) *harness {
	t.Helper()
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	h.start()
	return h
}

// A corrected request for an order whose earlier request was submitted and
// given up is not submitted blind: the provider is asked first, and an
// earlier request issued after all makes the corrected one a conflict, with
// the invoice, while the earlier request's record becomes issued.
func TestCorrectedRequestAfterFailedSubmissionAsksFirst(t *testing.T) {
	h := startGivingUpSoon(t)
	earlier := failAfterSubmission(t, h, nuonuoSeller, "CORR-N1")

	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-N1", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	res := h.waitResult(nuonuoSeller, "CORR-N1", 2, 15*time.Second)
	c := res[1]
	if c.Status != schemas.StatusConflict || c.Error == nil || c.Error.Code != schemas.CodeConflict ||
		!strings.Contains(c.Error.Message, "issued it after all") || c.Error.Field != "orderNo" {
		t.Fatalf("corrected request: %+v %+v", c, c.Error)
	}
	if st := h.orderStats(nuonuoSeller, "CORR-N1"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox: %+v: the corrected request reached the provider", st)
	}
	rec, ok, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "CORR-N1"})
	if err != nil || !ok || rec.State != schemas.StateIssued || len(rec.Invoices) != 1 || rec.Fingerprint != res[0].Fingerprint {
		t.Fatalf("stored: %+v %v %v", rec, ok, err)
	}
	if n := rec.Invoices[0].DigitalInvoiceNo; n == "" || !strings.Contains(c.Error.Message, n) {
		t.Errorf("the conflict does not name invoice %+v: %s", rec.Invoices[0], c.Error.Message)
	}

	// Replaying the earlier request (as from its dead letter) answers issued.
	h.publish(nuonuoSeller, earlier, "")
	res = h.waitResult(nuonuoSeller, "CORR-N1", 3, 15*time.Second)
	if res[2].Status != schemas.StatusIssued || len(res[2].Invoices) != 1 {
		t.Fatalf("replayed earlier request: %+v", res[2])
	}
	if st := h.orderStats(nuonuoSeller, "CORR-N1"); st.Issuances != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// When the provider has no record of the earlier request, the corrected one
// goes through.
func TestCorrectedRequestAfterUnansweredSubmissionIsIssued(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 3},
	}}}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-N2", nil), "")
	if r := h.waitResult(nuonuoSeller, "CORR-N2", 1, 15*time.Second)[0]; r.Status != schemas.StatusFailed {
		t.Fatalf("earlier request: %+v", r)
	}
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-N2", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	res := h.waitResult(nuonuoSeller, "CORR-N2", 2, 15*time.Second)
	if res[1].Status != schemas.StatusIssued || res[1].Fingerprint == res[0].Fingerprint {
		t.Fatalf("corrected request: %+v", res[1])
	}
	if st := h.orderStats(nuonuoSeller, "CORR-N2"); st.Issuances != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// A conflict calls no provider, but the order it answers for is at one:
// the result names the provider the order's record names, as the order's
// other results do (the downstream filters results by provider). Here a
// second request reuses an issued order's number, at each provider; a
// request refused before any provider is chosen names none.
func TestConflictNamesTheOrdersProvider(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	for _, seller := range []string{nuonuoSeller, jumdataSeller} {
		provider := h.provs[seller].Name()
		h.publish(seller, issueRequest(t, seller, "CONF-P", nil), "")
		if r := h.waitResult(seller, "CONF-P", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued || r.Provider != provider {
			t.Fatalf("%s: first request: %s, provider %q", provider, r.Status, r.Provider)
		}
		h.publish(seller, issueRequest(t, seller, "CONF-P", func(o *schemas.Order) { o.BuyerName = "另一个买方" }), "")
		if r := h.waitResult(seller, "CONF-P", 2, 10*time.Second)[1]; r.Status != schemas.StatusConflict || r.Provider != provider {
			t.Errorf("%s: second request: %s, provider %q; want a conflict naming %q", provider, r.Status, r.Provider, provider)
		}
	}
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CONF-P-BAD", func(o *schemas.Order) { o.InvoiceType = "9" }), "")
	if r := h.waitResult(nuonuoSeller, "CONF-P-BAD", 1, 10*time.Second)[0]; r.Status != schemas.StatusRejected || r.Provider != "" {
		t.Errorf("invalid request: %s, provider %q; want rejected naming none", r.Status, r.Provider)
	}
}

// A dead letter replayed after a corrected request for its order was
// issued is answered from the order store, a conflict: it names the
// order's provider too.
func TestReplayAfterACorrectedRequestNamesTheProvider(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 3},
	}}}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CONF-R", nil), "")
	if r := h.waitResult(nuonuoSeller, "CONF-R", 1, 15*time.Second)[0]; r.Status != schemas.StatusFailed {
		t.Fatalf("earlier request: %+v", r)
	}
	h.waitFor("the earlier request's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(10 * time.Second) // a second dead letter would be collected by now
	earlier := h.exactDeadLetters(1)[0]
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CONF-R", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	if r := h.waitResult(nuonuoSeller, "CONF-R", 2, 15*time.Second)[1]; r.Status != schemas.StatusIssued {
		t.Fatalf("corrected request: %+v", r)
	}
	h.publish(nuonuoSeller, earlier.Payload, "")
	if r := h.waitResult(nuonuoSeller, "CONF-R", 3, 15*time.Second)[2]; r.Status != schemas.StatusConflict || r.Provider != "nuonuo" {
		t.Errorf("replayed dead letter: %s, provider %q; want a conflict naming nuonuo", r.Status, r.Provider)
	}
	if st := h.orderStats(nuonuoSeller, "CONF-R"); st.Issuances != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// jumdata finds an order by its content, so it cannot say what an earlier,
// different request left: the corrected request is refused as a conflict
// that says how to settle it, and nothing is sent.
func TestCorrectedRequestJumdataCannotTell(t *testing.T) {
	h := startGivingUpSoon(t)
	failAfterSubmission(t, h, jumdataSeller, "CORR-J1")
	before := h.orderStats(jumdataSeller, "CORR-J1")

	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "CORR-J1", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	c := h.waitResult(jumdataSeller, "CORR-J1", 2, 15*time.Second)[1]
	if c.Status != schemas.StatusConflict || c.Error == nil || !strings.Contains(c.Error.Message, "cannot be established") ||
		!strings.Contains(c.Error.Message, "dead letter") {
		t.Fatalf("corrected request: %+v %+v", c, c.Error)
	}
	if st := h.orderStats(jumdataSeller, "CORR-J1"); st.Issuances != 1 || st.Submissions != before.Submissions {
		t.Fatalf("sandbox: %+v, before %+v: the corrected request reached jumdata", st, before)
	}
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "CORR-J1"})
	if rec.State != schemas.StateFailed {
		t.Fatalf("stored: %+v", rec)
	}
}

// A corrected request for an order the tax bureau refused at jumdata goes
// under a taskId of its own: the refused task keeps the order's first
// taskId, bound to the refused data, for 8 hours, and would refuse the
// corrected request as other data under it.
func TestCorrectedRequestAfterATaxBureauRefusal(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "CORR-J2"}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL" }), "")
	r := h.waitResult(jumdataSeller, key.OrderNo, 1, 15*time.Second)[0]
	if r.Status != schemas.StatusRejected || r.Error == nil || r.Error.Code != schemas.CodeProviderRejected || r.Error.ProviderCode != "399" {
		t.Fatalf("refused request: %+v %+v", r, r.Error)
	}
	rec, _, _ := h.db.Get(context.Background(), key)
	if rec.Restarts != 0 || rec.Refs.TaskID != jumdata.TaskID(key.Seller, key.OrderNo, 0) {
		t.Fatalf("stored after the refusal: restarts %d, refs %+v", rec.Restarts, rec.Refs)
	}

	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, nil), "")
	c := h.waitResult(jumdataSeller, key.OrderNo, 2, 15*time.Second)[1]
	if c.Status != schemas.StatusIssued || len(c.Invoices) != 1 {
		t.Fatalf("corrected request: %+v %+v", c, c.Error)
	}
	rec = h.issuedRecord(key)
	if rec.State != schemas.StateIssued || rec.Restarts != 1 || rec.Refs.TaskID != jumdata.TaskID(key.Seller, key.OrderNo, 1) {
		t.Fatalf("stored after the corrected request: %s, restarts %d, refs %+v", rec.State, rec.Restarts, rec.Refs)
	}
	if st := h.orderStats(jumdataSeller, key.OrderNo); st.Issuances != 1 || st.Invoices != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// A held seller's request that reaches its last delivery over an order
// stored as rejected for another request fails with a result and a dead
// letter, leaving the stored record alone; it is not put back forever.
// Process is called directly, on a delivery numbered as the last, so that
// the hold cannot hand the request its probe.
func TestHeldGiveUpOverRejectedOrder(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	cfg.HoldProbe = time.Minute
	h := newHarness(t, harnessOptions{pipeline: cfg})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "HELD-REJ", func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL" }), "")
	first := h.waitResult(nuonuoSeller, "HELD-REJ", 1, 10*time.Second)[0]
	if first.Status != schemas.StatusRejected {
		t.Fatalf("first request: %+v", first)
	}
	// Hold the seller: its next submission answers a code a person must act on.
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", Code: "070401", Times: 1000}}})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "HOLDER", nil), "")
	h.waitFor("the seller to be held", 10*time.Second, func() bool { return len(h.p.HeldSellers()) == 1 })

	out := h.p.Process(context.Background(), &pipeline.Message{
		Subject: schemas.Subjects{}.Request(nuonuoSeller), Data: issueRequest(t, nuonuoSeller, "HELD-REJ", nil),
		Stream: pipeline.DefaultRequestStream, StreamSeq: 1 << 40, Deliveries: cfg.MaxDeliver, PublishedAt: time.Now(),
	})
	if out.Action != pipeline.Term || out.Err != nil || out.DeadLetter != schemas.ReasonActionRequired {
		t.Fatalf("outcome %+v", out)
	}
	res := h.waitResult(nuonuoSeller, "HELD-REJ", 2, 10*time.Second)
	if res[1].Status != schemas.StatusFailed || res[1].Error.Code != schemas.CodeActionRequired || res[1].Fingerprint == first.Fingerprint {
		t.Fatalf("held give-up: %+v %+v", res[1], res[1].Error)
	}
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "HELD-REJ"})
	if rec.State != schemas.StateRejected || rec.Fingerprint != first.Fingerprint {
		t.Fatalf("stored: %+v", rec)
	}
	h.waitFor("a dead letter for HELD-REJ", 5*time.Second, func() bool {
		for _, dl := range h.deadLetters() {
			if dl.OrderNo == "HELD-REJ" && dl.Reason == schemas.ReasonActionRequired {
				return true
			}
		}
		return false
	})
}

// When the provider answers the look-up for the earlier request with
// something a person must act on, the seller is held as for any other
// order, with one action_required result; the probe that gets an answer
// releases the hold and settles the corrected request.
func TestCorrectedRequestLookupNeedsAPerson(t *testing.T) {
	h := startGivingUpSoon(t)
	failAfterSubmission(t, h, nuonuoSeller, "CORR-AR")
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.queryInvoiceResult", Code: "070401", Times: 1},
	}})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-AR", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	res := h.waitResult(nuonuoSeller, "CORR-AR", 3, 15*time.Second)
	if res[1].Status != schemas.StatusActionRequired || res[1].Error == nil || res[1].Error.ProviderCode != "070401" {
		t.Fatalf("look-up needing a person: %+v %+v", res[1], res[1].Error)
	}
	if res[2].Status != schemas.StatusConflict || !strings.Contains(res[2].Error.Message, "issued it after all") {
		t.Fatalf("after the probe: %+v %+v", res[2], res[2].Error)
	}
	// The probe's answer releases the hold right after the conflict is
	// published, in the same delivery.
	h.waitFor("the hold to be released", 5*time.Second, func() bool { return len(h.p.HeldSellers()) == 0 })
	if st := h.orderStats(nuonuoSeller, "CORR-AR"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v", st)
	}
}

// A request given up, then its corrected request given up too, and both
// dead letters replayed in the order of the dead-letter stream: the older
// request's replay comes first. The order system replaced that request by
// the corrected one, so it is not submitted: it gets a conflict saying it
// was superseded, and the corrected request's replay is issued. Before,
// the older request was submitted (nothing was issued for the corrected
// one, as the look-up showed) and issued, and the corrected request's
// replay got the conflict.
func TestReplayOfASupersededRequestIsNotSubmitted(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 2 * cfg.MaxDeliver},
	}}}})
	h.start()
	const orderNo = "SUPERSEDED-1"
	older := issueRequest(t, nuonuoSeller, orderNo, nil)
	corrected := issueRequest(t, nuonuoSeller, orderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" })
	h.publish(nuonuoSeller, older, "")
	if r := h.waitResult(nuonuoSeller, orderNo, 1, 15*time.Second)[0]; r.Status != schemas.StatusFailed {
		t.Fatalf("older request: %+v", r)
	}
	h.publish(nuonuoSeller, corrected, "")
	res := h.waitResult(nuonuoSeller, orderNo, 2, 15*time.Second)
	if res[1].Status != schemas.StatusFailed || res[1].Fingerprint == res[0].Fingerprint {
		t.Fatalf("corrected request: %+v", res[1])
	}
	h.waitFor("both dead letters", 10*time.Second, func() bool { return len(h.deadLetters()) >= 2 })
	h.settled(10 * time.Second) // a third dead letter would be collected by now
	h.exactDeadLetters(2)
	// Replayed as publisher dlq replay republishes a dead letter's request
	// (not read back: the running consumer may have taken it by then).
	replay := func(data []byte, deadLetter uint64) {
		t.Helper()
		m := &nats.Msg{Subject: schemas.Subjects{}.Request(nuonuoSeller), Data: data, Header: nats.Header{}}
		m.Header.Set(pipeline.HeaderReplayOf, strconv.FormatUint(deadLetter, 10))
		if _, err := h.obs.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}

	replay(older, 1)
	res = h.waitResult(nuonuoSeller, orderNo, 3, 15*time.Second)
	if c := res[2]; c.Status != schemas.StatusConflict || c.Fingerprint != res[0].Fingerprint || c.Error == nil ||
		!strings.Contains(c.Error.Message, "superseded") || !strings.Contains(c.Error.Message, res[1].Fingerprint[:12]) {
		t.Fatalf("the older request's replay: %s %+v; want a conflict saying the corrected request superseded it", c.Status, c.Error)
	}
	if st := h.orderStats(nuonuoSeller, orderNo); st.Issuances != 0 {
		t.Fatalf("sandbox: %+v: the older request was issued", st)
	}
	replay(corrected, 2)
	res = h.waitResult(nuonuoSeller, orderNo, 4, 15*time.Second)
	if r := res[3]; r.Status != schemas.StatusIssued || r.Fingerprint != res[1].Fingerprint {
		t.Fatalf("the corrected request's replay: %s %+v; want it issued", r.Status, r.Error)
	}
	if st := h.orderStats(nuonuoSeller, orderNo); st.Issuances != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// A copy of an older request that comes after a later, different request
// for its order was answered, without the replay mark: JetStream
// delivering the older request again (its acknowledgement was lost, a
// crash after its result went out) once its correction was processed.
// The correction issued, the copy gets a conflict (the order is issued for
// a different request). The correction rejected too, the copy is not
// submitted either: it was published before the correction, which
// superseded it, and gets a conflict saying so. Before, it started the
// order over and the outdated request was invoiced.
func TestStaleCopyOfASupersededRequestIsNotSubmitted(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rejections int // of the first submissions: the older request's, then the correction's
		correction schemas.Status
		says       string
	}{
		{"correction issued", 1, schemas.StatusIssued, "issued for a different request"},
		{"correction rejected", 2, schemas.StatusRejected, "superseded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{pipeline: fast, sandbox: nuonuoRejects(tc.rejections)})
			p := firstRun(t, h, fast, h.db, nil, false)
			const orderNo = "STALE-1"
			deliver := func(m *pipeline.Message) pipeline.Outcome { t.Helper(); return deliverMsg(t, p, m) }
			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, orderNo, nil), "")
			first, firstMsg := fetchNext(t, h)
			if out := deliver(first); out.Status != schemas.StatusRejected {
				t.Fatalf("the older request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
			}
			// Its acknowledgement is lost: JetStream delivers it again later.

			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, orderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
			second, secondMsg := fetchNext(t, h)
			if second.StreamSeq == first.StreamSeq {
				t.Fatal("the correction was not delivered before the older request's redelivery")
			}
			if out := deliver(second); out.Status != tc.correction {
				t.Fatalf("the correction: %s %s %s; want %s", out.Action, out.Event, out.Status, tc.correction)
			}
			if err := secondMsg.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			before := h.orderStats(nuonuoSeller, orderNo)

			if err := firstMsg.Nak(); err != nil {
				t.Fatal(err)
			}
			again, _ := fetchNext(t, h)
			if again.StreamSeq != first.StreamSeq || again.Deliveries != 2 {
				t.Fatalf("delivered #%d (delivery %d); want the older request #%d again", again.StreamSeq, again.Deliveries, first.StreamSeq)
			}
			out := deliver(again)
			if st := h.orderStats(nuonuoSeller, orderNo); st.Submissions != before.Submissions || st.Issuances != before.Issuances {
				t.Fatalf("sandbox %+v, before the copy %+v: the older request's copy was submitted (%s %s)", st, before, out.Event, out.Status)
			}
			if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
				t.Fatalf("the older request's copy: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
			}
			res := h.waitResult(nuonuoSeller, orderNo, 3, 10*time.Second)
			if c := res[2]; c.Status != schemas.StatusConflict || c.Error == nil || !strings.Contains(c.Error.Message, tc.says) ||
				c.Fingerprint != res[0].Fingerprint {
				t.Fatalf("the copy's result: %s %+v; want a conflict saying %q", c.Status, c.Error, tc.says)
			}
			rec, _, err := h.db.Get(ctx, schemas.OrderKey{Seller: nuonuoSeller, OrderNo: orderNo})
			if err != nil || rec.Fingerprint != res[1].Fingerprint || rec.State != schemas.OrderState(tc.correction) {
				t.Fatalf("stored: %s %.12s %v; want the correction's record, %s", rec.State, rec.Fingerprint, err, tc.correction)
			}
		})
	}
}

// failingPuts refuses every write to the order store while fail is set,
// as a full disk does.
type failingPuts struct {
	pipeline.Store
	fail atomic.Bool
}

func (f *failingPuts) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if f.fail.Load() {
		return schemas.OrderRecord{}, fmt.Errorf("%w: no space left on device", store.ErrWriteFailed)
	}
	return f.Store.Put(ctx, rec)
}

func (f *failingPuts) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	if f.fail.Load() {
		return schemas.OrderRecord{}, fmt.Errorf("%w: no space left on device", store.ErrWriteFailed)
	}
	return f.Store.PutPatient(ctx, rec)
}

// A copy of an older request delivered after a later, different request
// for its order was replayed from the dead-letter stream and answered. The
// later request was given up without a record of its own (the order store
// refused its claim on its last delivery), so its replay started the
// order's record over the older request's; the record keeps when the later
// request first entered the request stream, which the replay carries
// (HeaderReplayPublished, as publisher dlq replay sets it from the dead
// letter), and the older request's copy gets a conflict, nothing
// submitted. Before, a record started by a replay did not know when its
// request was published, and the copy started the order over and was
// invoiced.
func TestStaleCopyAfterAReplayedRequestIsNotSubmitted(t *testing.T) {
	ctx := context.Background()
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: nuonuoRejects(2)})
	puts := &failingPuts{Store: h.db}
	p := firstRun(t, h, cfg, puts, nil, false)
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "STALE-REPLAY"}
	older := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil))
	if out := deliverRaw(t, p, older, 1); out.Status != schemas.StatusRejected {
		t.Fatalf("the older request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
	// Its acknowledgement is lost: JetStream delivers it again later.

	later := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }))
	puts.fail.Store(true)
	out := deliverRaw(t, p, later, cfg.MaxDeliver)
	puts.fail.Store(false)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("the later request's last delivery, its claim refused: %s %s %q; want given up", out.Action, out.Event, out.DeadLetter)
	}
	h.waitFor("the later request's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.caughtUp(10 * time.Second) // deliverRaw waited for its publishes: all collected
	h.exactDeadLetters(1)
	dl, dlMsg := deadLetterAt(t, h, 1)
	res := h.waitResult(nuonuoSeller, key.OrderNo, 2, 10*time.Second)
	olderPrint, laterPrint := res[0].Fingerprint, res[1].Fingerprint
	if res[1].Status != schemas.StatusFailed || laterPrint == olderPrint {
		t.Fatalf("the later request's result: %s %.12s; want failed, its own fingerprint", res[1].Status, laterPrint)
	}
	if rec, _, err := h.db.Get(ctx, key); err != nil || rec.Fingerprint != olderPrint {
		t.Fatalf("stored: %.12s (%v); want the older request's record, the later one given up without its own", rec.Fingerprint, err)
	}

	replay := publishReplayOf(t, h, dl, dlMsg.Header, 1)
	if out := deliverRaw(t, p, replay, 1); out.Status != schemas.StatusRejected {
		t.Fatalf("the later request's replay: %s %s %s; want it submitted and rejected", out.Action, out.Event, out.Status)
	}
	before := h.orderStats(nuonuoSeller, key.OrderNo)

	out = deliverRaw(t, p, older, 2)
	if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Submissions != before.Submissions || st.Issuances != 0 {
		t.Fatalf("sandbox %+v, before the copy %+v: the older request's copy was submitted (%s %s)", st, before, out.Event, out.Status)
	}
	if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
		t.Fatalf("the older request's copy: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
	}
	rec, _, err := h.db.Get(ctx, key)
	if err != nil || rec.Fingerprint != laterPrint || !rec.RequestPublishedAt.Equal(later.Time) {
		t.Fatalf("stored: %.12s, request published %s (%v); want the later request's record, published %s",
			rec.Fingerprint, rec.RequestPublishedAt, err, later.Time)
	}
}

// Two requests of one stream are ordered by their stream sequences, not by
// the NATS servers' clocks: the stream leader stamps each request with its
// own clock, and after a leader change in a cluster the new leader's clock
// may be behind the old one's, while the stream's sequence goes on from
// where it was. Here the leader that stored the older request had its
// clock a second ahead of the one that stored the correction (the message
// times are set so, as the server would give them at every delivery). The
// correction, later in the stream, is submitted; the older request's copy
// delivered after it, earlier in the stream through the same durable, gets
// a conflict and nothing is submitted; the correction delivered again gets
// its own stored result. Before, by the timestamps, the
// correction was refused as a stale copy of the older request, and once
// it was answered the older request's copy would have started the order
// over and been invoiced.
func TestStaleCopyIsJudgedByItsStreamSequence(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: nuonuoRejects(2)})
	p := firstRun(t, h, fast, h.db, nil, false)
	const orderNo = "SKEWED-LEADER"
	const ahead = time.Second // the first leader's clock against the second's
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, orderNo, nil), "")
	first, firstMsg := fetchNext(t, h)
	first.PublishedAt = first.PublishedAt.Add(ahead)
	if out := deliverMsg(t, p, first); out.Status != schemas.StatusRejected {
		t.Fatalf("the older request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
	// Its acknowledgement is lost: JetStream delivers it again later.

	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, orderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	second, secondMsg := fetchNext(t, h)
	if second.StreamSeq <= first.StreamSeq || !second.PublishedAt.Before(first.PublishedAt) {
		t.Fatalf("the correction #%d at %s, the older request #%d at %s: want it later in the stream, stamped earlier",
			second.StreamSeq, second.PublishedAt, first.StreamSeq, first.PublishedAt)
	}
	if out := deliverMsg(t, p, second); out.Status != schemas.StatusRejected {
		t.Fatalf("the correction: %s %s %s; want it submitted (and rejected), not refused as a stale copy", out.Action, out.Event, out.Status)
	}
	// Delivered again itself (its acknowledgement lost), the correction is
	// never a stale copy of its own record: its stored result again.
	if err := secondMsg.Nak(); err != nil {
		t.Fatal(err)
	}
	secondAgain, secondAgainMsg := fetchNext(t, h)
	if secondAgain.StreamSeq != second.StreamSeq {
		t.Fatalf("delivered #%d; want the correction #%d again", secondAgain.StreamSeq, second.StreamSeq)
	}
	if out := deliverMsg(t, p, secondAgain); out.Event != pipeline.EventReplayed || out.Status != schemas.StatusRejected {
		t.Fatalf("the correction delivered again: %s %s %s; want its stored result", out.Action, out.Event, out.Status)
	}
	if err := secondAgainMsg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.orderStats(nuonuoSeller, orderNo)

	if err := firstMsg.Nak(); err != nil {
		t.Fatal(err)
	}
	again, _ := fetchNext(t, h)
	if again.StreamSeq != first.StreamSeq || again.Deliveries != 2 {
		t.Fatalf("delivered #%d (delivery %d); want the older request #%d again", again.StreamSeq, again.Deliveries, first.StreamSeq)
	}
	again.PublishedAt = again.PublishedAt.Add(ahead)
	out := deliverMsg(t, p, again)
	if st := h.orderStats(nuonuoSeller, orderNo); st.Submissions != before.Submissions || st.Issuances != 0 {
		t.Fatalf("sandbox %+v, before the copy %+v: the older request's copy was submitted (%s %s)", st, before, out.Event, out.Status)
	}
	if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
		t.Fatalf("the older request's copy: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
	}
	res := h.waitResult(nuonuoSeller, orderNo, 3, 10*time.Second)
	if c := res[2]; c.Error == nil || !strings.Contains(c.Error.Message, "superseded") {
		t.Fatalf("the copy's result: %s %+v; want a conflict saying that the correction superseded it", c.Status, c.Error)
	}
}

// The replayed dead letter of an older request that was given up without a
// record of its own (the order store refused its claim on its last
// delivery), replayed after a later, different request for its order
// started the order and was rejected. The record does not list the older
// request as superseded (it never held the order), but it keeps when its
// own request entered the request stream, and the replay says when the
// older request did (HeaderReplayPublished): it was published before, so
// it gets a conflict saying that the later request superseded it, and
// nothing is submitted. Before, a replay was judged only by the record's
// list, and the outdated request was invoiced over the later one.
func TestReplayOfAnOlderRequestGivenUpWithoutARecordIsNotSubmitted(t *testing.T) {
	ctx := context.Background()
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: nuonuoRejects(1)})
	puts := &failingPuts{Store: h.db}
	p := firstRun(t, h, cfg, puts, nil, false)
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "OLDER-REPLAY"}
	older := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil))
	puts.fail.Store(true)
	out := deliverRaw(t, p, older, cfg.MaxDeliver)
	puts.fail.Store(false)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("the older request's last delivery, its claim refused: %s %s %q; want given up", out.Action, out.Event, out.DeadLetter)
	}
	if _, found, err := h.db.Get(ctx, key); found || err != nil {
		t.Fatalf("the order has a record (%v): want the older request given up without one", err)
	}
	h.waitFor("the older request's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.caughtUp(10 * time.Second) // deliverRaw waited for its publishes: all collected
	h.exactDeadLetters(1)
	dl, dlMsg := deadLetterAt(t, h, 1)

	later := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }))
	if out := deliverRaw(t, p, later, 1); out.Status != schemas.StatusRejected {
		t.Fatalf("the later request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
	before := h.orderStats(nuonuoSeller, key.OrderNo)

	out = deliverRaw(t, p, publishReplayOf(t, h, dl, dlMsg.Header, 1), 1)
	if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Submissions != before.Submissions || st.Issuances != 0 {
		t.Fatalf("sandbox %+v, before the replay %+v: the older request's replay was submitted (%s %s)", st, before, out.Event, out.Status)
	}
	if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
		t.Fatalf("the older request's replay: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
	}
	res := h.waitResult(nuonuoSeller, key.OrderNo, 3, 10*time.Second)
	if c := res[2]; c.Error == nil || !strings.Contains(c.Error.Message, "superseded") || c.Fingerprint != res[0].Fingerprint {
		t.Fatalf("the replay's result: %s %+v; want a conflict saying that the later request superseded it", c.Status, c.Error)
	}
}

// nuonuoRejects is a sandbox that refuses the first n (at least 1) Nuonuo
// submissions with E9117, a refusal the client classifies as Rejected
// (naming order.buyerName), and issues the later ones: an order whose
// request is rejected, for a correction to follow.
func nuonuoRejects(n int) sandbox.Config {
	return sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", Code: "E9117", Times: n},
	}}}
}
