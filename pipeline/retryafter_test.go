package pipeline_test

import (
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
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
