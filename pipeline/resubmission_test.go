package pipeline_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store/storetest"
)

// doubtfulJumdata is jumdata whose first Submit is lost in transit (Unknown,
// nothing sent) and whose first Query finds nothing; it records what each
// Submit was told.
type doubtfulJumdata struct {
	*jumdata.Client
	mu      sync.Mutex
	submits []bool // each Submit's Resubmission
	queries int
}

func (d *doubtfulJumdata) Submit(ctx context.Context, c *providers.Call) providers.Outcome {
	d.mu.Lock()
	d.submits = append(d.submits, c.Resubmission)
	first := len(d.submits) == 1
	d.mu.Unlock()
	if first {
		return providers.Outcome{Class: providers.Unknown, Code: "transport", Message: "connection reset"}
	}
	return d.Client.Submit(ctx, c)
}

func (d *doubtfulJumdata) Query(ctx context.Context, c *providers.Call) providers.Outcome {
	d.mu.Lock()
	d.queries++
	d.mu.Unlock()
	return providers.Outcome{Class: providers.NotFound, Code: "not_found"}
}

// A provider can tell a first submission from a repeated one by
// Call.Resubmission, not by SubmittedAt (already set on the first): the
// first Submit of an order is told false, the one after a lost answer and
// a Query that found nothing true. The jumdata adapter reconciles a red
// confirmation's 399 only on a resubmission.
func TestSubmitToldWhetherItRepeats(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	d := &doubtfulJumdata{Client: directJumdata(t, h, nil)}
	h.provs[jumdataSeller] = d
	p := firstRun(t, h, fast, h.db, nil, false)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "RESUB-J", nil))
	if out := deliverRaw(t, p, raw, 1); out.Action == pipeline.Ack {
		t.Fatalf("a submission in doubt was settled: %s %s", out.Event, out.Status)
	}
	if out := deliverRaw(t, p, raw, 2); out.Action != pipeline.Ack || out.Status != schemas.StatusIssued {
		t.Fatalf("second delivery: %s %s %s", out.Action, out.Event, out.Status)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.submits) != 2 || d.submits[0] || !d.submits[1] {
		t.Fatalf("Submit calls told Resubmission %v, want [false true]", d.submits)
	}
	if d.queries < 2 {
		t.Fatalf("%d queries, want one after the lost answer and one before submitting again", d.queries)
	}
}

// An issued Nuonuo order whose record is gone (orders.db restored from a
// backup taken before it) is delivered again: its first Submit in the new
// store meets E9106 with Resubmission false, and the order Nuonuo holds
// has this request's amounts, so it is followed and answered issued, not
// rejected, and nothing more is issued.
func TestOwnOrderAfterItsRecordWasLost(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	raw := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "LOST-1", nil))
	// Delivered until acknowledged, as the sandbox issues after a few
	// queries.
	untilAcked := func(p *pipeline.Pipeline) (out pipeline.Outcome) {
		for i := 1; i <= 20; i++ {
			if out = deliverRaw(t, p, raw, i); out.Action == pipeline.Ack {
				return out
			}
			time.Sleep(60 * time.Millisecond)
		}
		return out
	}
	if out := untilAcked(p); out.Status != schemas.StatusIssued {
		t.Fatalf("first store: %s %s %s", out.Action, out.Event, out.Status)
	}
	p2 := firstRun(t, h, fast, storetest.Open(t), nil, false) // the record is gone
	if out := untilAcked(p2); out.Status != schemas.StatusIssued {
		t.Fatalf("our own issued order, delivered again without its record: %s %s %s (provider code %s)", out.Action, out.Event, out.Status, out.ProviderCode)
	}
	if st := h.orderStats(nuonuoSeller, "LOST-1"); st.Issuances != 1 {
		t.Fatalf("stats %+v, want 1 issuance", st)
	}
}
