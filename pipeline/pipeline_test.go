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
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// fast makes the pipeline's waits short enough for tests.
var fast = pipeline.Config{
	RetryBase:    20 * time.Millisecond,
	RetryMax:     200 * time.Millisecond,
	PollSchedule: []time.Duration{50 * time.Millisecond},
	HoldProbe:    300 * time.Millisecond,
}

func TestHappyPathEveryKind(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	// A failed order to reissue: the sandbox fails orders whose remark says so.
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "FAIL-1", func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL" }), "")
	failed := h.waitResult(nuonuoSeller, "FAIL-1", 1, 10*time.Second)
	if failed[0].Status != schemas.StatusRejected || failed[0].Error == nil || failed[0].Error.Code != schemas.CodeProviderFailed {
		t.Fatalf("SANDBOX:FAIL order: %+v", failed[0])
	}
	// Blue invoices to reverse: the sandboxes check that the invoice exists.
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "BLUE-J-1", nil), "")
	blueJ := h.waitResult(jumdataSeller, "BLUE-J-1", 1, 10*time.Second)[0]
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BLUE-N-1", nil), "")
	blueN := h.waitResult(nuonuoSeller, "BLUE-N-1", 1, 10*time.Second)[0]
	if blueJ.Status != schemas.StatusIssued || blueN.Status != schemas.StatusIssued {
		t.Fatalf("blue invoices: %+v %+v", blueJ, blueN)
	}

	cases := []struct {
		name, seller, orderNo string
		data                  []byte
		invoices              int
	}{
		{"issue at nuonuo", nuonuoSeller, "ISSUE-N-1", issueRequest(t, nuonuoSeller, "ISSUE-N-1", nil), 1},
		{"issue at jumdata", jumdataSeller, "ISSUE-J-1", issueRequest(t, jumdataSeller, "ISSUE-J-1", nil), 1},
		{"red confirmation at nuonuo", nuonuoSeller, "RC-N-1", redConfirmRequest(t, nuonuoSeller, "RC-N-1", blueN.Invoices[0]), -1},
		{"red confirmation at jumdata", jumdataSeller, "RC-J-1", redConfirmRequest(t, jumdataSeller, "RC-J-1", blueJ.Invoices[0]), -1},
		{"reissue at nuonuo", nuonuoSeller, "RE-N-1", reissueRequest(t, nuonuoSeller, "RE-N-1", "FAIL-1"), 1},
	}
	for _, tc := range cases {
		h.publish(tc.seller, tc.data, "")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := h.waitResult(tc.seller, tc.orderNo, 1, 15*time.Second)
			r := res[0]
			if r.Status != schemas.StatusIssued {
				t.Fatalf("status %s, error %+v", r.Status, r.Error)
			}
			if tc.invoices >= 0 && len(r.Invoices) != tc.invoices {
				t.Fatalf("%d invoices, want %d: %+v", len(r.Invoices), tc.invoices, r.Invoices)
			}
			for _, inv := range r.Invoices {
				if inv.InvoiceNo == "" && inv.DigitalInvoiceNo == "" {
					t.Errorf("invoice without a number: %+v", inv)
				}
				if !inv.TotalAmount.Valid() {
					t.Errorf("invoice without a total: %+v", inv)
				}
			}
			if r.Attempts < 1 || r.Provider == "" || r.ReceivedAt.IsZero() || r.CompletedAt.Before(r.ReceivedAt) {
				t.Errorf("result bookkeeping: %+v", r)
			}
		})
	}
	h.waitFor("request stream to empty", 5*time.Second, h.requestStreamEmpty)
}

func TestSameRequestTwiceIssuesOnceAndAnswersTwice(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	req := issueRequest(t, nuonuoSeller, "DUP-1", nil)
	h.publish(nuonuoSeller, req, "")
	first := h.waitResult(nuonuoSeller, "DUP-1", 1, 10*time.Second)
	h.publish(nuonuoSeller, req, "") // no Nats-Msg-Id: the stream keeps both copies
	h.waitResult(nuonuoSeller, "DUP-1", 2, 10*time.Second)
	h.settled(10 * time.Second) // a third result would be collected by now
	both := h.resultsFor(nuonuoSeller, "DUP-1")
	if len(both) != 2 {
		t.Fatalf("%d results", len(both))
	}
	a, b := mustJSON(t, both[0]), mustJSON(t, both[1])
	if string(a) != string(b) {
		t.Fatalf("results differ:\n%s\n%s", a, b)
	}
	if first[0].Status != schemas.StatusIssued {
		t.Fatalf("status %s", first[0].Status)
	}
	st := h.orderStats(nuonuoSeller, "DUP-1")
	if st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox: %+v, want one submission and one issuance", st)
	}
	if d := h.sb.Stats().Duplicates; len(d) != 0 {
		t.Fatalf("duplicates: %v", d)
	}
}

func TestPendingIssuanceIsPolledToCompletion(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: sandbox.Config{
		Nuonuo: sandbox.NuonuoConfig{PendingQueries: 4}, Jumdata: sandbox.JumdataConfig{PendingPolls: 4},
	}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "POLL-N", nil), "")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "POLL-J", nil), "")
	for _, o := range []struct{ seller, no string }{{nuonuoSeller, "POLL-N"}, {jumdataSeller, "POLL-J"}} {
		r := h.waitResult(o.seller, o.no, 1, 15*time.Second)[0]
		if r.Status != schemas.StatusIssued {
			t.Fatalf("%s: %s %+v", o.no, r.Status, r.Error)
		}
		if st := h.orderStats(o.seller, o.no); st.Issuances != 1 || st.Queries < 4 {
			t.Fatalf("%s sandbox: %+v, want 1 issuance after at least 4 polls", o.no, st)
		}
	}
}

func TestTransientErrorsThenSuccess(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 2},
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", Code: "070201", Times: 1},
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "609", Times: 2},
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "501", Times: 1},
	}}}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "FLAKY-N", nil), "")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "FLAKY-J", nil), "")
	orders := []struct{ seller, no string }{{nuonuoSeller, "FLAKY-N"}, {jumdataSeller, "FLAKY-J"}}
	for _, o := range orders {
		h.waitResult(o.seller, o.no, 1, 20*time.Second)
	}
	h.settled(10 * time.Second) // a second result of either would be collected by now
	for _, o := range orders {
		res := h.resultsFor(o.seller, o.no)
		if len(res) != 1 || res[0].Status != schemas.StatusIssued {
			t.Fatalf("%s: %+v", o.no, res)
		}
		if res[0].Attempts < 3 {
			t.Errorf("%s: %d attempts; the scripted failures should have cost some", o.no, res[0].Attempts)
		}
		if st := h.orderStats(o.seller, o.no); st.Issuances != 1 {
			t.Fatalf("%s sandbox: %+v", o.no, st)
		}
	}
}

func TestRetriesExhaustedFailAndDeadLetter(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "501", Times: 100},
	}}}})
	h.start()
	req := issueRequest(t, jumdataSeller, "DOOMED-1", nil)
	h.publish(jumdataSeller, req, "doomed-msg-id")
	res := h.waitResult(jumdataSeller, "DOOMED-1", 1, 15*time.Second)
	if res[0].Status != schemas.StatusFailed || res[0].Error == nil || res[0].Error.Code != schemas.CodeRetriesExhausted {
		t.Fatalf("result %+v", res[0])
	}
	h.waitFor("dead letter", 5*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(5 * time.Second) // a second dead letter would be collected by now
	dl := h.exactDeadLetters(1)[0]
	if dl.Reason != schemas.ReasonExhausted || dl.Deliveries != 3 || dl.OrderNo != "DOOMED-1" || string(dl.Payload) != string(req) ||
		dl.OriginalSubject != (schemas.Subjects{}).Request(jumdataSeller) || dl.OriginalSeq == 0 || dl.Headers["Nats-Msg-Id"][0] != "doomed-msg-id" ||
		dl.Error.ProviderCode != "501" {
		t.Fatalf("dead letter %+v", dl)
	}
	rec, ok, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "DOOMED-1"})
	if err != nil || !ok || rec.State != schemas.StateFailed {
		t.Fatalf("store: %+v %v %v", rec, ok, err)
	}
}

func TestMalformedIsDeadLettered(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	for _, body := range []string{"not json at all", `{"truncated":`, "\xff\xfe", ""} {
		h.publish(nuonuoSeller, []byte(body), "")
	}
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "AFTER-MALFORMED", nil), "")
	h.waitFor("4 dead letters", 10*time.Second, func() bool { return len(h.deadLetters()) >= 4 })
	h.settled(10 * time.Second) // a fifth dead letter would be collected by now
	for _, dl := range h.exactDeadLetters(4) {
		if dl.Reason != schemas.ReasonMalformed || dl.Error.Code != schemas.CodeMalformed || !strings.Contains(dl.Error.Message, "malformed") || dl.SellerTaxNum != nuonuoSeller {
			t.Errorf("dead letter %+v", dl)
		}
	}
	if r := h.waitResult(nuonuoSeller, "AFTER-MALFORMED", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("valid work after malformed messages: %+v", r)
	}
	h.waitFor("request stream to empty", 5*time.Second, h.requestStreamEmpty)
}

func TestInvalidIsRejectedWithEveryViolation(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	bad := issueRequest(t, nuonuoSeller, "BAD-1", func(o *schemas.Order) {
		o.InvoiceType = "9"
		o.InvoiceDetail[0].TaxIncludedAmount = schemas.ParseAmount("106.01")
	})
	h.publish(nuonuoSeller, bad, "")
	h.publish(jumdataSeller, issueRequest(t, nuonuoSeller, "WRONG-SUBJECT", nil), "")
	h.publish(strings.ToLower(jumdataSeller), issueRequest(t, jumdataSeller, "LOWER-SUBJECT", nil), "")
	r := h.waitResult(nuonuoSeller, "BAD-1", 1, 10*time.Second)[0]
	if r.Status != schemas.StatusRejected || r.Error.Code != schemas.CodeInvalidRequest || len(r.Error.Violations) < 2 {
		t.Fatalf("%+v", r)
	}
	codes := map[string]bool{}
	for _, v := range r.Error.Violations {
		codes[v.ProviderCode] = true
	}
	if !codes["E9101"] || !codes["E9130"] {
		t.Fatalf("violations %+v", r.Error.Violations)
	}
	// Published on the jumdata seller's subject: answered there, nothing issued.
	w := h.waitResult(jumdataSeller, "WRONG-SUBJECT", 1, 10*time.Second)[0]
	if w.Status != schemas.StatusRejected || w.Error.Violations[0].Rule != "subject_mismatch" {
		t.Fatalf("%+v", w)
	}
	// Published on the seller's subject in lower case: partitioned
	// consumers would share the seller's orders out by both spellings.
	l := h.waitResult(strings.ToLower(jumdataSeller), "LOWER-SUBJECT", 1, 10*time.Second)[0] // answered on the subject it came on
	if l.Status != schemas.StatusRejected || l.Error.Violations[0].Rule != schemas.RuleSubjectSpelling {
		t.Fatalf("%+v", l)
	}
	if st := h.sb.Stats(); st.Submissions != 0 {
		t.Fatalf("the sandbox saw %d submissions for invalid requests", st.Submissions)
	}
}

// TestNuonuoComputedAmountsAreWarnedOrRefused: Nuonuo computes a line that
// leaves an amount out from price × num and the rate, and issues those
// amounts instead of the ones the line gives (seed 001). An amount given
// 0.04 from the computed one is issued with a warning in the result that
// names the figure on the invoice; one 44.00 away is refused before any
// submission, by this service's own rule (no provider code).
func TestNuonuoComputedAmountsAreWarnedOrRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	// 106.00 with tax at 6% is 100.00 + 6.00.
	split := func(excl, tax string) func(o *schemas.Order) {
		return func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount(excl), schemas.ParseAmount(tax), schemas.Amount{}
		}
	}
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CLOSE-1", split("100.04", "5.96")), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "FAR-1", split("56.00", "50.00")), "")
	// computed lists a result's findings of rule computed_amount as
	// "field: message".
	computed := func(vs []schemas.Violation) []string {
		var out []string
		for _, v := range vs {
			if v.Rule == schemas.RuleComputedAmount {
				if v.ProviderCode != "" {
					t.Errorf("%s names provider code %s: Nuonuo would issue, not refuse", v.Field, v.ProviderCode)
				}
				out = append(out, v.Field+": "+v.Message)
			}
		}
		slices.Sort(out)
		return out
	}
	near := h.waitResult(nuonuoSeller, "CLOSE-1", 1, 10*time.Second)[0]
	if near.Status != schemas.StatusIssued || len(near.Invoices) != 1 {
		t.Fatalf("CLOSE-1: %s %+v %+v", near.Status, near.Error, near.Invoices)
	}
	inv := near.Invoices[0]
	if got := [3]string{inv.ExTaxAmount.String(), inv.TaxAmount.String(), inv.TotalAmount.String()}; got != [3]string{"100.00", "6.00", "106.00"} {
		t.Errorf("CLOSE-1 issued %v, want the amounts Nuonuo computes", got)
	}
	w := computed(near.Warnings)
	if len(w) != 2 || !strings.HasPrefix(w[0], "order.invoiceDetail[0].tax: is 5.96, but Nuonuo will issue 6.00") ||
		!strings.HasPrefix(w[1], "order.invoiceDetail[0].taxExcludedAmount: is 100.04, but Nuonuo will issue 100.00") {
		t.Errorf("CLOSE-1 warnings %q, want the tax and the amount without tax, each with the figure issued", w)
	}
	far := h.waitResult(nuonuoSeller, "FAR-1", 1, 10*time.Second)[0]
	if far.Status != schemas.StatusRejected || far.Error == nil || far.Error.Code != schemas.CodeInvalidRequest {
		t.Fatalf("FAR-1: %s %+v", far.Status, far.Error)
	}
	if v := computed(far.Error.Violations); len(v) != 2 || !strings.HasPrefix(v[0], "order.invoiceDetail[0].tax: is 50.00, but Nuonuo will issue 6.00") {
		t.Errorf("FAR-1 violations %q", v)
	}
	if st := h.orderStats(nuonuoSeller, "FAR-1"); st.Submissions != 0 {
		t.Errorf("FAR-1 reached the sandbox: %+v", st)
	}
}

func TestConflict(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CONFLICT-1", nil), "")
	h.waitResult(nuonuoSeller, "CONFLICT-1", 1, 10*time.Second)
	other := issueRequest(t, nuonuoSeller, "CONFLICT-1", func(o *schemas.Order) { o.BuyerName = "另一个买方" })
	h.publish(nuonuoSeller, other, "")
	res := h.waitResult(nuonuoSeller, "CONFLICT-1", 2, 10*time.Second)
	if res[0].Status != schemas.StatusIssued || res[1].Status != schemas.StatusConflict || res[1].Error.Code != schemas.CodeConflict {
		t.Fatalf("results %+v", res)
	}
	if st := h.orderStats(nuonuoSeller, "CONFLICT-1"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox %+v", st)
	}
}

func TestActionRequiredHoldsOneSellerOnly(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 200
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		// The seller's credentials are refused four times, then fixed.
		{Provider: "jumdata", Code: "302", Message: "未登录或登录已失效,请重新登录", Times: 4},
	}}}})
	h.start()
	for i := range 3 {
		h.publish(jumdataSeller, issueRequest(t, jumdataSeller, fmt.Sprintf("HELD-%d", i), nil), "")
	}
	for i := range 3 {
		h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, fmt.Sprintf("FREE-%d", i), nil), "")
	}
	// The other seller carries on while the jumdata seller is held.
	for i := range 3 {
		if r := h.waitResult(nuonuoSeller, fmt.Sprintf("FREE-%d", i), 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
			t.Fatalf("FREE-%d: %+v", i, r)
		}
	}
	// Then the held seller's orders are all issued after the scripted refusals.
	for i := range 3 {
		h.waitResult(jumdataSeller, fmt.Sprintf("HELD-%d", i), 1, 20*time.Second)
		h.waitFor("issued", 20*time.Second, func() bool {
			res := h.resultsFor(jumdataSeller, fmt.Sprintf("HELD-%d", i))
			return res[len(res)-1].Status == schemas.StatusIssued
		})
	}
	h.settled(10 * time.Second) // a late action_required result would be collected by now
	actionResults := 0
	for i := range 3 {
		for _, r := range h.resultsFor(jumdataSeller, fmt.Sprintf("HELD-%d", i)) {
			if r.Status == schemas.StatusActionRequired {
				actionResults++
				if r.Error == nil || r.Error.Code != schemas.CodeActionRequired || r.Error.ProviderCode != "302" {
					t.Errorf("action_required result %+v", r)
				}
			}
		}
	}
	// One episode, one action_required event: the first order to hit the
	// refusal reports it; the others wait without calling the provider.
	if actionResults != 1 {
		t.Fatalf("%d action_required results, want 1 for the episode", actionResults)
	}
}

func TestAcceptThenDropIsReconciled(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 7})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "DROP-N", nil), "")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "DROP-J", nil), "")
	// Every answer is lost while the fault lasts: the orders stay in doubt.
	h.waitFor("both submissions to reach the sandbox", 10*time.Second, func() bool {
		return h.orderStats(nuonuoSeller, "DROP-N").Submissions > 0 && h.orderStats(jumdataSeller, "DROP-J").Submissions > 0
	})
	time.Sleep(300 * time.Millisecond)
	h.sb.SetFaults(sandbox.Faults{})
	orders := []struct{ seller, no string }{{nuonuoSeller, "DROP-N"}, {jumdataSeller, "DROP-J"}}
	for _, o := range orders {
		h.waitResult(o.seller, o.no, 1, 20*time.Second)
	}
	// Both requests ended: a second result of either, the in-doubt
	// submission answered twice, would be collected by now.
	h.settled(10 * time.Second)
	for _, o := range orders {
		res := h.resultsFor(o.seller, o.no)
		if len(res) != 1 || res[0].Status != schemas.StatusIssued {
			t.Fatalf("%s: %+v", o.no, res)
		}
		if st := h.orderStats(o.seller, o.no); st.Issuances != 1 {
			t.Fatalf("%s: sandbox %+v: the in-doubt order was issued %d times", o.no, st, st.Issuances)
		}
	}
	if d := h.sb.Stats().Duplicates; len(d) != 0 {
		t.Fatalf("duplicates %v", d)
	}
}

// TestAbruptStopAndRestart kills the consumer mid-flight the hard way — the
// NATS connection drops without any acknowledgement and the store is closed
// under the workers — then starts a new one on the same data: every order
// ends with exactly one invoice and one terminal result.
func TestAbruptStopAndRestart(t *testing.T) {
	const n = 120
	h := newHarness(t, harnessOptions{pipeline: fast, workers: 16, sandbox: sandbox.Config{
		Latency: 20 * time.Millisecond, Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1}, Jumdata: sandbox.JumdataConfig{PendingPolls: 1},
	}})
	sellers := []string{nuonuoSeller, jumdataSeller}
	for i := range n {
		s := sellers[i%2]
		h.publish(s, issueRequest(t, s, fmt.Sprintf("CRASH-%03d", i), nil), "")
	}
	h.start()
	h.waitFor("some orders done", 20*time.Second, func() bool {
		return len(h.resultsFor(nuonuoSeller, "CRASH-000"))+len(h.resultsFor(jumdataSeller, "CRASH-001")) > 0
	})
	// Abrupt: no drain, no acks for what is in flight.
	h.nc.Close()
	_ = h.db.Close()
	if err := h.crashed(); err == nil {
		t.Error("the loop returned nil after its connection was closed")
	}

	// Restart on the same data directory with a fresh connection and store.
	var err error
	if h.nc, err = natsReconnect(h); err != nil {
		t.Fatal(err)
	}
	h.openStore()
	h.start()
	for i := range n {
		s := sellers[i%2]
		no := fmt.Sprintf("CRASH-%03d", i)
		h.waitResult(s, no, 1, 30*time.Second)
	}
	h.settled(30 * time.Second) // a second result of any order would be collected by now
	for i := range n {
		s := sellers[i%2]
		no := fmt.Sprintf("CRASH-%03d", i)
		res := h.resultsFor(s, no)
		if len(res) != 1 || res[0].Status != schemas.StatusIssued {
			t.Errorf("%s: %d results %+v", no, len(res), res)
		}
		if st := h.orderStats(s, no); st.Issuances != 1 {
			t.Errorf("%s: issued %d times", no, st.Issuances)
		}
	}
}

func TestGracefulShutdownUnderLoadLosesNothing(t *testing.T) {
	const n = 200
	h := newHarness(t, harnessOptions{pipeline: fast, workers: 16, sandbox: sandbox.Config{Latency: 40 * time.Millisecond}})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, fmt.Sprintf("GRACE-%03d", i), nil), "")
		}
	})
	h.start()
	done := func() int {
		c := 0
		for i := range n {
			if len(h.resultsFor(nuonuoSeller, fmt.Sprintf("GRACE-%03d", i))) > 0 {
				c++
			}
		}
		return c
	}
	h.waitFor("the first results", 10*time.Second, func() bool { return done() > 0 })
	h.stop() // graceful: stop pulling, finish in flight
	if d := done(); d == 0 || d == n {
		t.Fatalf("%d of %d done at shutdown: the test did not stop mid-load", d, n)
	}
	wg.Wait()
	h.start()
	for i := range n {
		h.waitResult(nuonuoSeller, fmt.Sprintf("GRACE-%03d", i), 1, 30*time.Second)
	}
	h.settled(20 * time.Second) // a second result of any order would be collected by now
	for i := range n {
		no := fmt.Sprintf("GRACE-%03d", i)
		if res := h.resultsFor(nuonuoSeller, no); len(res) != 1 || res[0].Status != schemas.StatusIssued {
			t.Errorf("%s: %+v", no, res)
		}
		if st := h.orderStats(nuonuoSeller, no); st.Issuances != 1 {
			t.Errorf("%s: %+v", no, st)
		}
	}
}

// stuckSubmitter is a provider whose submissions never answer: each
// returns only once its context ends, with what the provider's client
// answers a call cut short.
type stuckSubmitter struct {
	providers.Provider
	held  chan struct{} // one value per submission held
	ended chan error    // and the error of its context, once it ends
}

func (s stuckSubmitter) Submit(ctx context.Context, c *providers.Call) providers.Outcome {
	s.held <- struct{}{}
	<-ctx.Done()
	s.ended <- ctx.Err()
	return s.Provider.Submit(ctx, c)
}

// TestAbandonCutsShortTheRequestsInFlight: a shutdown that cannot wait any
// longer (Loop.Abandon after Run's context has ended) cancels a provider
// call that would never end: Run returns with nothing left in flight, the
// request is put back unacknowledged, and the next start issues it once.
func TestAbandonCutsShortTheRequestsInFlight(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	prov := h.provs[nuonuoSeller]
	held, ended := make(chan struct{}, 1), make(chan error, 1)
	h.provs[nuonuoSeller] = stuckSubmitter{Provider: prov, held: held, ended: ended}
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "ABANDON-1", nil), "")
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached its provider")
	}
	loop, done := h.loop, h.loopDone
	h.stopLoop()
	h.stopLoop = nil
	loop.Abandon()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("loop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the loop did not return within 30s of Abandon")
	}
	if n := loop.InFlight(); n != 0 {
		t.Fatalf("Run returned with %d requests in flight", n)
	}
	// Cancelled, not timed out after LoopConfig.ProcessTimeout.
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the provider call ended with %v; want it cancelled", err)
	}
	if h.requestStreamEmpty() {
		t.Fatal("the abandoned request was acknowledged")
	}
	h.caughtUp(10 * time.Second) // the loop has returned: nothing more is published
	if res := h.resultsFor(nuonuoSeller, "ABANDON-1"); len(res) != 0 {
		t.Fatalf("results of the abandoned request: %+v", res)
	}

	h.provs[nuonuoSeller] = prov
	h.start()
	if res := h.waitResult(nuonuoSeller, "ABANDON-1", 1, 30*time.Second); res[0].Status != schemas.StatusIssued {
		t.Fatalf("after the restart: %+v", res[0])
	}
	h.waitFor("request stream to empty", 20*time.Second, h.requestStreamEmpty)
	if st := h.orderStats(nuonuoSeller, "ABANDON-1"); st.Issuances != 1 {
		t.Errorf("issued %d times", st.Issuances)
	}
}

// stuckDocuments is a document store that never answers: it returns only
// when its context ends.
type stuckDocuments struct{ calls chan error }

func (d stuckDocuments) Keep(ctx context.Context, _ schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	<-ctx.Done()
	d.calls <- ctx.Err()
	return make([]string, len(invoices)), ctx.Err()
}

func (d stuckDocuments) Get(ctx context.Context, _ schemas.OrderKey, _ string) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStuckDocumentsDoNotHoldTheInvoiceBack: the PDFs are kept in the
// background, each order within the keeper's timeout, so an object store
// that hangs (a NATS outage) costs the order its documents, not its result.
func TestStuckDocumentsDoNotHoldTheInvoiceBack(t *testing.T) {
	docs := stuckDocuments{calls: make(chan error, 10)}
	h := newHarness(t, harnessOptions{pipeline: fast, docs: docs, docsTO: 100 * time.Millisecond})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "DOCS-1", nil), "")
	res := h.waitResult(nuonuoSeller, "DOCS-1", 1, 10*time.Second)
	if res[0].Status != schemas.StatusIssued || len(res[0].Invoices) != 1 {
		t.Fatalf("result %+v", res[0])
	}
	if err := <-docs.calls; err != context.DeadlineExceeded {
		t.Fatalf("documents kept with %v, want the document timeout", err)
	}
	rec, found, err := h.db.Get(t.Context(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "DOCS-1"})
	if err != nil || !found || rec.State != schemas.StateIssued {
		t.Fatalf("stored %+v %v %v", rec, found, err)
	}
	if st := h.orderStats(nuonuoSeller, "DOCS-1"); st.Issuances != 1 {
		t.Fatalf("sandbox %+v, want one issuance", st)
	}
}

// losingPublisher loses the first asynchronous result of each order: its
// wait reports an error and nothing reaches the stream.
type losingPublisher struct {
	pipeline.Publisher
	mu   sync.Mutex
	lost map[string]bool
}

func (p *losingPublisher) PublishResultAsync(res *schemas.Result, msgID string) func(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lost[res.OrderNo] {
		p.lost[res.OrderNo] = true
		return func(context.Context) error { return fmt.Errorf("result %s lost", msgID) }
	}
	return p.Publisher.PublishResultAsync(res, msgID)
}

// TestLostResultPutsTheRequestBack: a request is acknowledged only once its
// result is in the stream. When the result's publish fails the request comes
// back, and the next delivery answers from the order store: one invoice,
// one result.
func TestLostResultPutsTheRequestBack(t *testing.T) {
	lp := &losingPublisher{lost: map[string]bool{}}
	h := newHarness(t, harnessOptions{pipeline: fast, wrapPub: func(p pipeline.Publisher) pipeline.Publisher {
		lp.Publisher = p
		return lp
	}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "LOST-1", nil), "")
	res := h.waitResult(nuonuoSeller, "LOST-1", 1, 10*time.Second)
	if res[0].Status != schemas.StatusIssued {
		t.Fatalf("result %+v", res[0])
	}
	h.waitFor("request stream to empty", 5*time.Second, h.requestStreamEmpty)
	h.caughtUp(10 * time.Second) // acknowledged after its results' publishes: all collected
	if st := h.orderStats(nuonuoSeller, "LOST-1"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox %+v, want one submission and one issuance", st)
	}
	if n := len(h.resultsFor(nuonuoSeller, "LOST-1")); n != 1 {
		t.Fatalf("%d results, want 1", n)
	}
}

// TestUnsavedIssuedResultIsRepaired: an issued result is published while
// its record is saved. When that save fails the result is out (and true:
// the provider issued the invoice), but the request is not acknowledged; its
// next delivery finds the order claimed, queries the provider instead of
// submitting again, saves the invoice and acknowledges. One submission, one
// issuance, one result in the stream.
func TestUnsavedIssuedResultIsRepaired(t *testing.T) {
	fs := &failingStore{}
	h := newHarness(t, harnessOptions{pipeline: fast, wrapDB: func(s pipeline.Store) pipeline.Store {
		fs.Store = s
		return fs
	}})
	// The failing save looks for the result first: it is published while
	// the record is saved, not after.
	var publishedFirst atomic.Bool
	fs.beforeFail = func() {
		deadline := time.Now().Add(5 * time.Second)
		for len(h.resultsFor(jumdataSeller, "UNSAVED-1")) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		publishedFirst.Store(len(h.resultsFor(jumdataSeller, "UNSAVED-1")) == 1)
	}
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "UNSAVED-1", nil), "")
	res := h.waitResult(jumdataSeller, "UNSAVED-1", 1, 10*time.Second)
	if res[0].Status != schemas.StatusIssued || len(res[0].Invoices) != 1 {
		t.Fatalf("result %+v, want issued with its invoice", res[0])
	}
	h.waitFor("request stream to empty", 10*time.Second, h.requestStreamEmpty)
	h.caughtUp(10 * time.Second) // acknowledged after its results' publishes: all collected
	if failed, patient := fs.counts(); failed != 1 || patient != 2 {
		t.Fatalf("%d failed and %d patient writes, want the first of two to fail", failed, patient)
	}
	if !publishedFirst.Load() {
		t.Fatal("no result was published while the issued record was being saved")
	}
	rec, found, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "UNSAVED-1"})
	if err != nil || !found || rec.State != schemas.StateIssued {
		t.Fatalf("stored %+v found=%v err=%v, want issued", rec, found, err)
	}
	if len(rec.Invoices) != 1 || rec.Invoices[0].DigitalInvoiceNo != res[0].Invoices[0].DigitalInvoiceNo {
		t.Fatalf("stored invoices %+v, published %+v", rec.Invoices, res[0].Invoices)
	}
	if st := h.orderStats(jumdataSeller, "UNSAVED-1"); st.Submissions != 1 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v, want one submission and one issuance", st)
	}
	if n := len(h.resultsFor(jumdataSeller, "UNSAVED-1")); n != 1 {
		t.Fatalf("%d results in the stream, want 1 (the redelivery's is a duplicate)", n)
	}
}

// TestOrdersReadTheIssuedSave: a subscriber that asks about an order as
// soon as its issued result arrives (the status service and the partner
// API read through Pipeline.Orders) finds it issued at once, though the
// result was published while the record was still being saved, and
// however long that save takes.
func TestOrdersReadTheIssuedSave(t *testing.T) {
	ss := &slowStore{entered: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, harnessOptions{pipeline: fast, wrapDB: func(s pipeline.Store) pipeline.Store {
		ss.Store = s
		return ss
	}})
	h.start()
	released := false
	t.Cleanup(func() { // a failed check must not leave the worker held
		if !released {
			close(ss.release)
		}
	})
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "READ-1", nil), "")
	<-ss.entered
	h.waitResult(jumdataSeller, "READ-1", 1, 10*time.Second) // out while the save is held
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "READ-1"}
	if rec, _, err := ss.Store.Get(context.Background(), key); err != nil || rec.State == schemas.StateIssued {
		t.Fatalf("the store holds %s (%v) while the save is held; want the record before it", rec.State, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rec, found, err := h.p.Orders().Get(ctx, key)
	if err != nil || !found || rec.State != schemas.StateIssued || len(rec.Invoices) == 0 {
		t.Fatalf("Orders answered %s (found %v, %d invoices), %v while the issued record was being saved; want it issued", rec.State, found, len(rec.Invoices), err)
	}
	close(ss.release)
	released = true
	h.waitFor("request stream to empty", 10*time.Second, h.requestStreamEmpty)
	if rec, _, err := h.p.Orders().Get(context.Background(), key); err != nil || rec.State != schemas.StateIssued {
		t.Fatalf("Orders answered %s, %v after the save; want issued", rec.State, err)
	}
}

// slowStore holds the first patient write until release is closed.
type slowStore struct {
	pipeline.Store
	once             sync.Once
	entered, release chan struct{}
}

func (s *slowStore) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	s.once.Do(func() {
		close(s.entered)
		<-s.release
	})
	return s.Store.PutPatient(ctx, rec)
}

// failingStore fails the first patient write (the issued save) as a full
// disk would.
type failingStore struct {
	pipeline.Store
	beforeFail      func() // called before the failure is returned
	mu              sync.Mutex
	failed, patient int
}

func (s *failingStore) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	s.mu.Lock()
	s.patient++
	fail := s.failed == 0
	if fail {
		s.failed++
	}
	s.mu.Unlock()
	if fail {
		if s.beforeFail != nil {
			s.beforeFail()
		}
		return schemas.OrderRecord{}, fmt.Errorf("%w: no space left on device", store.ErrWriteFailed)
	}
	return s.Store.PutPatient(ctx, rec)
}

func (s *failingStore) counts() (failed, patient int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed, s.patient
}

// The polling schedule starts when the provider accepts the order: the
// transient failures before that do not push the first poll to the end of
// the schedule.
func TestPollingStartsWhenAccepted(t *testing.T) {
	cfg := fast
	cfg.RetryBase, cfg.RetryMax = 5*time.Millisecond, 10*time.Millisecond
	cfg.PollSchedule = []time.Duration{50 * time.Millisecond, time.Hour}
	cfg.InlinePolls = -1
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 4},
	}}}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "POLL-LATE", nil), "")
	// Deliveries 1-4 fail, 5 submits and is accepted, and the first poll
	// (PollSchedule[0], not the hour of the schedule's second entry) issues.
	res := h.waitResult(nuonuoSeller, "POLL-LATE", 1, 20*time.Second)
	if res[0].Status != schemas.StatusIssued {
		t.Fatalf("POLL-LATE: %s %+v", res[0].Status, res[0].Error)
	}
	if st := h.orderStats(nuonuoSeller, "POLL-LATE"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox: %+v, want one submission and one issuance", st)
	}
	rec, ok, err := h.db.Get(t.Context(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "POLL-LATE"})
	if err != nil || !ok {
		t.Fatalf("stored record: %v (found %t)", err, ok)
	}
	if rec.Polls != 1 {
		t.Fatalf("record counts %d polls, want 1", rec.Polls)
	}
}

// The retry backoff counts the failures in a row, not the deliveries: an
// order that has been polled many times and then meets its first transient
// fault waits RetryBase, not RetryBase×2^deliveries (which here would be
// more than 30 s, and was how an order of the reliability suite's
// provider-faults scenario outlasted its three minutes).
func TestBackoffCountsFailuresInARow(t *testing.T) {
	cfg := fast
	cfg.RetryBase, cfg.RetryMax = time.Second, time.Hour
	cfg.PollSchedule = []time.Duration{30 * time.Millisecond}
	cfg.InlinePolls = -1
	cfg.MaxDeliver = 100
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 12}}})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BACKOFF-1", nil), "")
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "BACKOFF-1"}
	record := func() schemas.OrderRecord {
		rec, _, err := h.db.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("stored record: %v", err)
		}
		return rec
	}
	h.waitFor("six polls", 20*time.Second, func() bool { return record().Polls >= 6 })
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.queryInvoiceResult", HTTPStatus: 503},
	}})
	var failed schemas.OrderRecord
	h.waitFor("the scripted failure", 20*time.Second, func() bool {
		failed = record()
		return failed.Failures > 0 || failed.State == schemas.StateIssued
	})
	if failed.Failures != 1 || failed.LastError == nil {
		t.Fatalf("after the scripted 503: %d failures in a row, last error %+v; want 1", failed.Failures, failed.LastError)
	}
	// The failure was on delivery 7 or later; counting deliveries would wait
	// at least 32 s before the next one.
	res := h.waitResult(nuonuoSeller, "BACKOFF-1", 1, 15*time.Second)
	if res[0].Status != schemas.StatusIssued {
		t.Fatalf("BACKOFF-1: %s %+v", res[0].Status, res[0].Error)
	}
	if rec := record(); rec.Failures != 0 {
		t.Fatalf("issued record keeps %d failures in a row; the provider's answer ends a run of them", rec.Failures)
	}
}

// TestLoopBehind: the loop reports itself behind while more requests wait
// undelivered than it has workers, and not once they are all answered.
func TestLoopBehind(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast, workers: 2, sandbox: sandbox.Config{Latency: 20 * time.Millisecond}})
	h.start()
	for i := range 30 {
		h.publish(jumdataSeller, issueRequest(t, jumdataSeller, fmt.Sprintf("BEHIND-%02d", i), nil), "")
	}
	h.waitFor("the loop to report itself behind", 20*time.Second, h.loop.Behind)
	for i := range 30 {
		h.waitResult(jumdataSeller, fmt.Sprintf("BEHIND-%02d", i), 1, 30*time.Second)
	}
	h.waitFor("the loop to catch up", 10*time.Second, func() bool { return !h.loop.Behind() })
}

// A consumer restarted during a store outage has forgotten the put-backs of
// the pause, so the server's count of a request's deliveries is already
// past MaxDeliver at its first processed delivery. A provider answer of
// "later" does not give it up then: it gets MaxDeliver provider calls.
func TestForgottenPutBacksDoNotGiveUpAtTheFirstAnswer(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "FORGOT-1", nil))
	inflated := cfg.MaxDeliver + 40 // 40 put-backs while paused, before the restart
	out := deliverRaw(t, p, raw, inflated+1)
	if out.Action != pipeline.Nak {
		t.Fatalf("first processed delivery after the restart: %s %s %q; want put back", out.Action, out.Event, out.Reason)
	}
	for d := inflated + 2; d <= inflated+1+cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "FORGOT-1"})
	if out.Action != pipeline.Term || rec.State != schemas.StateFailed || rec.Attempts < cfg.MaxDeliver {
		t.Fatalf("after %d more deliveries: %s %s, the order %s after %d provider calls; want given up after %d calls",
			cfg.MaxDeliver, out.Action, out.Event, rec.State, rec.Attempts, cfg.MaxDeliver)
	}
}

// While the pipeline is paused (the order store's disk failing), requests
// are put back unprocessed every 5 s; those deliveries are not the
// request's: after the pause a request still has its MaxDeliver, and a
// transient answer is retried rather than given up.
func TestPausedDeliveriesDoNotCountAgainstMaxDeliver(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	var pauses atomic.Int32
	h := newHarness(t, harnessOptions{pipeline: cfg, paused: func() error {
		if pauses.Add(1) <= 2 { // the disk is full for two deliveries (about 10 s)
			return errors.New("disk full")
		}
		return nil
	}, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "501", Times: 1},
	}}}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "PAUSED-1", nil), "")
	res := h.waitResult(jumdataSeller, "PAUSED-1", 1, 40*time.Second)
	if res[0].Status != schemas.StatusIssued || res[0].Attempts < 2 {
		t.Fatalf("after a pause the request got %s after %d attempts (%+v); want issued after its retry", res[0].Status, res[0].Attempts, res[0].Error)
	}
	if pauses.Load() < 3 {
		t.Fatalf("the loop asked Paused %d times; the test needs the two paused deliveries", pauses.Load())
	}
}

// A request an earlier build took on its seller's subject in lower case,
// recorded and left unfinished (here: submitted, jumdata still answering
// 202) is finished under its seller when it comes again, not rejected
// while its order stays unfinished; but this build only looks at jumdata's
// issued invoices, so it waits (until the taskId's life ends) rather than
// repeat the task. A new request on that subject is rejected.
func TestLowerCaseSubjectInFlightAtUpgrade(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 2}}})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-UP-1", nil)
	// The record an earlier build left: the same request, submitted, its
	// answer pending (made here through the seller's own subject).
	if out := deliverRaw(t, p, publishRaw(t, h, jumdataSeller, data), 1); out.Action != pipeline.Nak {
		t.Fatalf("setup: %s %s", out.Action, out.Event)
	}
	before := h.orderStats(jumdataSeller, "LOWER-UP-1")
	lower := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	out := deliverRaw(t, p, lower, 2)
	if out.Action != pipeline.Nak || out.Delay < time.Hour {
		t.Fatalf("the in-flight request: %s %s %s after %s; want put back until the taskId's life ends", out.Action, out.Event, out.Status, out.Delay)
	}
	if st := h.orderStats(jumdataSeller, "LOWER-UP-1"); st.Submissions != before.Submissions || st.Issuances != before.Issuances {
		t.Fatalf("sandbox %+v, before %+v: the task was repeated", st, before)
	}
	fresh := deliverRaw(t, p, publishRaw(t, h, strings.ToLower(jumdataSeller), issueRequest(t, jumdataSeller, "LOWER-UP-2", nil)), 1)
	if fresh.Status != schemas.StatusRejected {
		t.Fatalf("a new request on the lower-case subject: %s %s", fresh.Action, fresh.Status)
	}
}

// A request on a lower-case seller subject whose order-store read fails
// (a corrupt record, a failing store) is put back only within MaxDeliver,
// and then rejected: the consumer's own delivery limit is unbounded, so it
// would otherwise go round without an answer for ever.
func TestLowerCaseFailedReadIsNotNakedForever(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	st := &failingGets{Store: h.db}
	st.fail.Store(true)
	p := firstRun(t, h, cfg, st, nil, false)
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), issueRequest(t, jumdataSeller, "LOWER-RF-1", nil))
	var out pipeline.Outcome
	for d := 1; d <= cfg.MaxDeliver+50; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			return
		}
	}
	t.Fatalf("still %s (%s: %v) after %d deliveries, MaxDeliver %d", out.Action, out.Event, out.Err, cfg.MaxDeliver+50, cfg.MaxDeliver)
}

// The exception for an earlier build's request covers unfinished orders
// only: the same request of a finished order on a lower-case seller
// subject is rejected (subject_spelling, answered on the subject it came
// on), not answered with the order's stored result.
func TestFinishedOrderOnLowerCaseSubjectIsRejected(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-DONE-1", nil)
	if out := deliverRaw(t, p, publishRaw(t, h, jumdataSeller, data), 1); out.Status != schemas.StatusIssued {
		t.Fatalf("setup: %s %s", out.Event, out.Status)
	}
	out := deliverRaw(t, p, publishRaw(t, h, strings.ToLower(jumdataSeller), data), 1)
	if out.Status != schemas.StatusRejected {
		t.Fatalf("the finished order's request on the lower-case subject: %s %s, answered under seller %q; want rejected (subject_spelling) under %q",
			out.Event, out.Status, out.Seller, strings.ToLower(jumdataSeller))
	}
}
