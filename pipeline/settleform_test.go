package pipeline_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// slowForm is a provider whose red confirmation form is applied for
// (Accepted, its billId known), stays so until confirmed is set, and is
// then issued: the form confirmed, its id known, the red invoice named.
type slowForm struct{ confirmed atomic.Bool }

func (*slowForm) Name() string { return "nuonuo" }

func (*slowForm) Submit(context.Context, *providers.Call) providers.Outcome {
	return providers.Outcome{Class: providers.Accepted, Refs: schemas.ProviderRefs{BillID: "B-1"}, Code: "01",
		RedConfirm: &schemas.RedConfirmState{BillID: "B-1", BillStatus: "01", Message: "applying"}, RetryAfter: time.Millisecond}
}

func (f *slowForm) Query(context.Context, *providers.Call) providers.Outcome {
	if !f.confirmed.Load() {
		return providers.Outcome{Class: providers.Retry, Code: "E9613", RetryAfter: time.Millisecond}
	}
	return providers.Outcome{Class: providers.Issued, Refs: schemas.ProviderRefs{BillID: "B-1", BillNo: "F-1"},
		RedConfirm: &schemas.RedConfirmState{BillID: "B-1", BillNo: "F-1", BillStatus: "04", Message: "confirmed"},
		Invoices:   []schemas.Invoice{{DigitalInvoiceNo: "26332000000000000009", InvoiceNo: "26332000000000000009", IssuedAt: time.Now()}}}
}

// An earlier red confirmation given up as failed, then found issued when a
// corrected request for its order asks after it: its record, whose result
// a replay of its dead letter publishes, holds the form as the provider
// answered then (confirmed, its form id), not as it was when the request
// was given up.
func TestAnEarlierFormFoundIssuedKeepsItsState(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	form := &slowForm{}
	h.provs[nuonuoSeller] = form
	p := firstRun(t, h, cfg, h.db, nil, false)
	blue := schemas.Invoice{InvoiceNo: "26332000000000000001", DigitalInvoiceNo: "26332000000000000001", IssuedAt: time.Now().Add(-24 * time.Hour)}
	body := redConfirmRequest(t, nuonuoSeller, "RC-SETTLE", blue)
	raw := publishRaw(t, h, nuonuoSeller, body)
	var out pipeline.Outcome
	for d := 1; d <= 2*cfg.MaxDeliver; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Status != schemas.StatusFailed {
		t.Fatalf("earlier request: %s %s %s; want given up", out.Action, out.Event, out.Status)
	}
	form.confirmed.Store(true)
	var req schemas.Request
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	req.RedConfirm.RedReason = "1" // a corrected request for the order
	out = deliverRaw(t, p, publishRaw(t, h, nuonuoSeller, mustJSON(t, req)), 1)
	if out.Status != schemas.StatusConflict {
		t.Fatalf("corrected request: %s %s %s %v; want conflict", out.Action, out.Event, out.Status, out.Err)
	}
	rec, _, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "RC-SETTLE"})
	if err != nil || rec.State != schemas.StateIssued || rec.RedConfirm == nil || rec.RedConfirm.BillStatus != "04" || rec.RedConfirm.BillNo != "F-1" {
		t.Fatalf("earlier request's record: %s, form %+v (%v); want issued with the confirmed form", rec.State, rec.RedConfirm, err)
	}
}
