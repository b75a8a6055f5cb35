package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// queryFails makes a provider's queries fail transiently while fail is set.
type queryFails struct {
	providers.Provider
	fail atomic.Bool
}

func (q *queryFails) Query(ctx context.Context, c *providers.Call) providers.Outcome {
	if q.fail.Load() {
		return providers.Outcome{Class: providers.Retry, Code: "http_503", Message: "service unavailable"}
	}
	return q.Provider.Query(ctx, c)
}

// A red confirmation form that an earlier build kept waiting past
// MaxDeliver left its wait in "polls" and "acceptedAt". This build reads
// them as its own wait, so one transient failure of the form puts it back
// instead of giving it up.
func TestWaitingFormFromEarlierBuildSurvivesOneFailure(t *testing.T) {
	ctx := context.Background()
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	qf := &queryFails{Provider: h.provs[jumdataSeller]}
	h.provs[jumdataSeller] = qf
	p := firstRun(t, h, cfg, h.db, nil, false)
	blue := issuedBlue(t, h, p, "BLUE-LEG-J")
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-LEG-J", blue))
	for d := 1; d <= 6; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-LEG-J"}
	rec, _, _ := h.db.Get(ctx, key)

	// The record as the earlier build wrote it.
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, rec), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "waitPolls")
	delete(m, "waitingSince")
	m["acceptedAt"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	var legacy schemas.OrderRecord
	if err := json.Unmarshal(mustJSON(t, m), &legacy); err != nil {
		t.Fatal(err)
	}
	if legacy.WaitPolls != 0 || !legacy.WaitingSince.IsZero() || legacy.Polls < 6 {
		t.Fatalf("legacy record read as %+v", legacy)
	}
	if _, err := h.db.Put(ctx, legacy); err != nil {
		t.Fatal(err)
	}

	qf.fail.Store(true)
	if out := deliverRaw(t, p, raw, 7); out.Action != pipeline.Nak {
		t.Fatalf("one transient failure of a form waiting %d polls (an earlier build's record): %s %s %q; want put back",
			legacy.Polls, out.Action, out.Event, out.Reason)
	}
	qf.fail.Store(false)
	got, _, _ := h.db.Get(ctx, key)
	if got.WaitPolls < 6 || got.WaitingSince.IsZero() {
		t.Fatalf("the wait was not carried over: waitPolls %d, waitingSince %s", got.WaitPolls, got.WaitingSince)
	}
	if b, _ := json.Marshal(got); strings.Contains(string(b), `"acceptedAt"`) {
		t.Fatalf("the legacy field is written back: %s", b)
	}
}
