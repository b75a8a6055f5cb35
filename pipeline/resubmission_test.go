package pipeline_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/schemas"
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
