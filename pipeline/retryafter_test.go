package pipeline_test

import (
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// A provider's Retry-After reaches the put-back: a request refused with a
// 429 (jumdata) or a 503 (Nuonuo, in doubt) asking for 7 s is put back for
// 7 s, the hint standing in for the first backoff step (Config.RetryBase,
// 1 s with jitter) it is longer than; one refused without the header is put
// back on the backoff alone, as before.
func TestRetryAfterSetsThePutBack(t *testing.T) {
	cfg := pipeline.Config{} // the defaults: RetryBase 1s, RetryMax 2m
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", HTTPStatus: 429, RetryAfter: "7"},
		{Provider: "jumdata", Method: "blue-invoice/submit", HTTPStatus: 429},
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, RetryAfter: "7"},
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503},
	}}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	for _, tt := range []struct {
		seller, orderNo string
		event           string
		atLeast, below  time.Duration
	}{
		{jumdataSeller, "RA-J-1", pipeline.EventRetry, 7 * time.Second, 7*time.Second + time.Millisecond},
		{jumdataSeller, "RA-J-2", pipeline.EventRetry, pipeline.DefaultRetryBase / 2, pipeline.DefaultRetryBase + time.Millisecond},
		{nuonuoSeller, "RA-N-1", pipeline.EventInDoubt, 7 * time.Second, 7*time.Second + time.Millisecond},
		{nuonuoSeller, "RA-N-2", pipeline.EventInDoubt, pipeline.DefaultRetryBase / 2, pipeline.DefaultRetryBase + time.Millisecond},
	} {
		out := deliverRaw(t, p, publishRaw(t, h, tt.seller, issueRequest(t, tt.seller, tt.orderNo, nil)), 1)
		if out.Action != pipeline.Nak || out.Event != tt.event || out.Delay < tt.atLeast || out.Delay >= tt.below {
			t.Errorf("%s: %s %s after %v (provider code %q); want %s put back for [%v, %v)",
				tt.orderNo, out.Action, out.Event, out.Delay, out.ProviderCode, tt.event, tt.atLeast, tt.below)
		}
	}
}

// A provider that answers a submission with a 503 asking to be left alone
// for 7 s (Retry-After) is not asked about the order at once within the
// same delivery: the request is put back for the 7 s, its record says that
// it may have been submitted (submitting, one submission), and the next
// delivery asks before anything else. So whether the 503 came before the
// call took effect or after it (the invoice made, the answer lost), the
// order is issued once, and no second submission goes out. Before, the
// query went out at once, against the provider's Retry-After (for jumdata
// the query repeats the submission itself).
func TestInDoubtSubmissionHonoursRetryAfterBeforeTheQuery(t *testing.T) {
	cfg := pipeline.Config{}
	h := newHarness(t, harnessOptions{pipeline: cfg})
	p := firstRun(t, h, cfg, h.db, nil, false)
	for _, tt := range []struct {
		name, seller, orderNo, provider, method string
		afterEffect                             bool
	}{
		{"nuonuo, 503 before the effect", nuonuoSeller, "RA-Q-N1", "nuonuo", "nuonuo.ElectronInvoice.requestBillingNew", false},
		{"nuonuo, 503 after the effect", nuonuoSeller, "RA-Q-N2", "nuonuo", "nuonuo.ElectronInvoice.requestBillingNew", true},
		{"jumdata, 503 before the effect", jumdataSeller, "RA-Q-J1", "jumdata", "blue-invoice/submit", false},
		{"jumdata, 503 after the effect", jumdataSeller, "RA-Q-J2", "jumdata", "blue-invoice/submit", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{
				{Provider: tt.provider, Method: tt.method, HTTPStatus: 503, RetryAfter: "7", AfterEffect: tt.afterEffect},
			}})
			raw := publishRaw(t, h, tt.seller, issueRequest(t, tt.seller, tt.orderNo, nil))
			calls := h.sb.Stats().Requests[tt.provider]
			out := deliverRaw(t, p, raw, 1)
			if n := h.sb.Stats().Requests[tt.provider] - calls; n != 1 {
				t.Errorf("the delivery made %d calls to %s after a 503 asking for 7 s; want the submission alone", n, tt.provider)
			}
			if out.Action != pipeline.Nak || out.Event != pipeline.EventInDoubt || out.Delay < 7*time.Second {
				t.Fatalf("%s %s after %v (provider code %q); want in_doubt, put back for at least 7 s", out.Action, out.Event, out.Delay, out.ProviderCode)
			}
			key := schemas.OrderKey{Seller: tt.seller, OrderNo: tt.orderNo}
			rec, found, err := h.db.Get(t.Context(), key)
			if err != nil || !found || rec.State != schemas.StateSubmitting || rec.Submissions != 1 {
				t.Fatalf("record %+v (found %v, err %v); want submitting with one submission, to be asked about first", rec, found, err)
			}
			// The next deliveries ask first, then carry on; a few at most.
			for d := 2; d <= 8 && out.Action != pipeline.Ack; d++ {
				out = deliverRaw(t, p, raw, d)
			}
			if out.Action != pipeline.Ack || out.Event != pipeline.EventIssued {
				t.Fatalf("last delivery: %s %s (provider code %q); want issued", out.Action, out.Event, out.ProviderCode)
			}
			st := h.orderStats(tt.seller, tt.orderNo)
			if st.Issuances != 1 || st.Submissions != 1 {
				t.Errorf("sandbox %+v: want one submission and one issuance", st)
			}
		})
	}
}

// A query's Retry-After is not lost when the pipeline keeps the answer it
// had: an order accepted and then asked about at once (InlinePolls) whose
// query is refused with a 429 asking for 7 s, or a submission in doubt
// whose query is refused so, is put back for the 7 s, not on the polling
// schedule or the backoff alone. Before, the accepted order was asked
// about again a second later, and the order in doubt within a second.
func TestRefusedQueryRetryAfterSetsThePutBack(t *testing.T) {
	cfg := pipeline.Config{}
	h := newHarness(t, harnessOptions{pipeline: cfg})
	p := firstRun(t, h, cfg, h.db, nil, false)
	const billing, query = "nuonuo.ElectronInvoice.requestBillingNew", "nuonuo.ElectronInvoice.queryInvoiceResult"
	for _, tt := range []struct {
		name, orderNo string
		script        []sandbox.ScriptedAnswer
		event         string
	}{
		{"accepted, its poll refused", "RA-P-1", []sandbox.ScriptedAnswer{
			{Provider: "nuonuo", Method: query, HTTPStatus: 429, RetryAfter: "7"},
		}, pipeline.EventAccepted},
		{"in doubt, its query refused", "RA-P-2", []sandbox.ScriptedAnswer{
			{Provider: "nuonuo", Method: billing, HTTPStatus: 502},
			{Provider: "nuonuo", Method: query, HTTPStatus: 429, RetryAfter: "7"},
		}, pipeline.EventInDoubt},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.sb.SetFaults(sandbox.Faults{Script: tt.script})
			out := deliverRaw(t, p, publishRaw(t, h, nuonuoSeller2, issueRequest(t, nuonuoSeller2, tt.orderNo, nil)), 1)
			if out.Action != pipeline.Nak || out.Event != tt.event || out.Delay < 7*time.Second {
				t.Errorf("%s %s after %v (provider code %q); want %s put back for at least 7 s", out.Action, out.Event, out.Delay, out.ProviderCode, tt.event)
			}
		})
	}
}

// On a request's last allowed delivery there is no next delivery to ask
// about a submission left in doubt: the provider is asked at once, its
// Retry-After notwithstanding, before the request is given up. Here the
// first delivery's submission is refused by a 503 asking for 7 s before it
// took effect; the second and last delivery finds nothing at the provider,
// submits again, and gets a 503 asking for 7 s after the invoice was made.
// Asked at once, the provider says issued, and the request is answered so.
// Before, the last delivery put the order "back" for the 7 s, which on the
// last delivery gave it up: saved failed, a failed result and a dead letter
// for an order whose invoice exists.
func TestLastDeliveryAsksAboutAnInDoubtSubmissionDespiteRetryAfter(t *testing.T) {
	cfg := pipeline.Config{MaxDeliver: 2}
	const billing = "nuonuo.ElectronInvoice.requestBillingNew"
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: billing, HTTPStatus: 503, RetryAfter: "7"},
		{Provider: "nuonuo", Method: billing, HTTPStatus: 503, RetryAfter: "7", AfterEffect: true},
	}}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "RA-LAST-N", nil))
	if out := deliverRaw(t, p, raw, 1); out.Action != pipeline.Nak || out.Event != pipeline.EventInDoubt {
		t.Fatalf("delivery 1: %s %s (provider code %q); want in_doubt, put back", out.Action, out.Event, out.ProviderCode)
	}
	out := deliverRaw(t, p, raw, 2)
	if out.Action != pipeline.Ack || out.Event != pipeline.EventIssued || out.Status != schemas.StatusIssued {
		t.Errorf("the last delivery: %s %s %s (provider code %q, %v); want issued: the provider made the invoice",
			out.Action, out.Event, out.Status, out.ProviderCode, out.Err)
	}
	if st := h.orderStats(nuonuoSeller, "RA-LAST-N"); st.Issuances != 1 {
		t.Errorf("sandbox %+v: want one issuance", st)
	}
}
