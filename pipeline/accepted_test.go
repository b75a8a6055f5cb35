package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// unlistedRed is a provider that behaves as jumdata does with a red
// submission it took without a form uuid (red-invoice/submit answering 202,
// or 200 with data {}): Submit is Accepted with no reference, and Query
// searches its lists, which do not show the red invoice yet. Such a search
// answers NotFound ("submitting is safe") unless the call says the
// submission was accepted (providers.Call.Accepted), and then Retry: a red
// submission has no key to repeat it by (jumdata's queryRed). The first
// order's query numbered faceAuth answers ActionRequired (jumdata's 311).
type unlistedRed struct {
	mu       sync.Mutex
	submits  map[string]int
	queries  map[string]int
	faceAuth map[string]int
}

func (*unlistedRed) Name() string { return "jumdata" }

func (p *unlistedRed) Submit(_ context.Context, c *providers.Call) providers.Outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.submits[c.Request.OrderNo]++
	return providers.Outcome{Class: providers.Accepted, Code: "202", Message: "任务正在进行中", RetryAfter: time.Millisecond}
}

func (p *unlistedRed) Query(_ context.Context, c *providers.Call) providers.Outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.SubmittedAt.IsZero() {
		return providers.Outcome{Class: providers.NotFound, Code: "not_submitted"}
	}
	p.queries[c.Request.OrderNo]++
	if p.queries[c.Request.OrderNo] == p.faceAuth[c.Request.OrderNo] {
		return providers.Outcome{Class: providers.ActionRequired, Code: "311", Message: "face authentication required"}
	}
	if c.Accepted {
		return providers.Outcome{Class: providers.Retry, Code: "not_listed", RetryAfter: time.Millisecond}
	}
	return providers.Outcome{Class: providers.NotFound, Code: "not_found"}
}

func (p *unlistedRed) submitted(orderNo string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.submits[orderNo]
}

// A red submission the provider accepted without a reference is never
// submitted again while the provider may still be reversing the invoice:
// not when a later query meets a person's action (the order is saved
// action_required, the seller held, then probed), and not when the request
// is given up after MaxDeliver "later" answers and its dead letter is
// replayed. Both used to lose "the provider accepted it" with the accepted
// state, so the next query was made as for an order in doubt, the provider
// answered NotFound, and the red confirmation was submitted a second time:
// the invoice reversed twice.
func TestAnAcceptedSubmissionStaysAcceptedAfterItsState(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	clock := time.Now()
	var clockMu sync.Mutex
	cfg.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	advance := func(d time.Duration) { clockMu.Lock(); clock = clock.Add(d); clockMu.Unlock() }
	h := newHarness(t, harnessOptions{pipeline: cfg})
	// The first delivery's inline poll is the first query; the second
	// delivery's query meets the face authentication.
	prov := &unlistedRed{submits: map[string]int{}, queries: map[string]int{}, faceAuth: map[string]int{"RC-AR-J": 2}}
	h.provs[jumdataSeller] = prov
	p := firstRun(t, h, cfg, h.db, nil, false)
	blue := schemas.Invoice{InvoiceNo: "26332000000000000001", DigitalInvoiceNo: "26332000000000000001", IssuedAt: clock.Add(-24 * time.Hour)}

	// A query meets a person's action; the probe after it is fixed.
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-AR-J", blue))
	for d, want := range []string{pipeline.EventAccepted, pipeline.EventActionRequired} {
		if out := deliverRaw(t, p, raw, d+1); out.Action != pipeline.Nak || out.Event != want {
			t.Fatalf("RC-AR-J delivery %d: %s %s %v; want put back, %s", d+1, out.Action, out.Event, out.Err, want)
		}
	}
	advance(2 * cfg.HoldProbe) // the person acted; the next delivery probes
	out := deliverRaw(t, p, raw, 3)
	if n := prov.submitted("RC-AR-J"); n != 1 {
		t.Fatalf("RC-AR-J after the hold: submitted %d times (probe: %s %s); want once", n, out.Action, out.Event)
	}

	// Given up after MaxDeliver "later" answers, then replayed.
	body := redConfirmRequest(t, jumdataSeller, "RC-GU-J", blue)
	raw = publishRaw(t, h, jumdataSeller, body)
	for d := 1; d <= 2*cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Term || out.Status != schemas.StatusFailed {
		t.Fatalf("RC-GU-J: %s %s %s; want given up as failed", out.Action, out.Event, out.Status)
	}
	replay := publishRaw(t, h, jumdataSeller, body) // the dead letter replayed
	out = deliverRaw(t, p, replay, 1)
	if n := prov.submitted("RC-GU-J"); n != 1 {
		t.Fatalf("RC-GU-J after the replay: submitted %d times (replay: %s %s); want once", n, out.Action, out.Event)
	}
}
