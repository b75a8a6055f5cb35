package pipeline_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// keptDocuments records which orders' documents the keeper kept.
type keptDocuments struct {
	mu   sync.Mutex
	kept map[string]int // order number → invoices kept
}

func (d *keptDocuments) Keep(_ context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.kept[key.OrderNo] = len(invoices)
	names := make([]string, len(invoices))
	for i, inv := range invoices {
		names[i] = "doc-" + inv.DigitalInvoiceNo
	}
	return names, nil
}

func (d *keptDocuments) Get(context.Context, schemas.OrderKey, string) ([]byte, error) {
	return []byte("%PDF-1.4"), nil
}

func (d *keptDocuments) invoicesKept(orderNo string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kept[orderNo]
}

// splitting is a sandbox whose Nuonuo splits the test requests (106.00) into
// three invoices.
var splitting = sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.NewFromInt(50)}}

func failInPart(o *schemas.Order) { o.Remark = "SANDBOX:FAIL-PART" }

// TestASplitOrderFailedInPartKeepsItsIssuedInvoices: Nuonuo splits an order
// into three invoices and the last fails. The two issued ones exist: the
// rejected result lists them, the order store keeps them, their documents
// are kept, and a reissue issues the third only.
func TestASplitOrderFailedInPartKeepsItsIssuedInvoices(t *testing.T) {
	docs := &keptDocuments{kept: map[string]int{}}
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: splitting, docs: docs})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "PART-1", failInPart), "")
	r := h.waitResult(nuonuoSeller, "PART-1", 1, 10*time.Second)[0]
	if r.Status != schemas.StatusRejected || r.Error == nil || r.Error.Code != schemas.CodeProviderFailed || r.Error.ProviderCode != "22" ||
		len(r.Invoices) != 2 || !strings.Contains(r.Error.Message, "2 of the order's 3 invoices were issued") {
		t.Fatalf("result %+v %+v", r, r.Error)
	}
	rec, found, err := h.db.Get(t.Context(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "PART-1"})
	if err != nil || !found || rec.State != schemas.StateRejected || len(rec.Invoices) != 2 {
		t.Fatalf("stored %+v %v %v", rec, found, err)
	}
	h.waitFor("the issued invoices' documents to be kept", 10*time.Second, func() bool { return docs.invoicesKept("PART-1") == 2 })

	// A different request for the order cannot start it over: its number
	// has invoices at the provider.
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "PART-1", func(o *schemas.Order) { o.Remark = "corrected" }), "")
	res := h.waitResult(nuonuoSeller, "PART-1", 2, 10*time.Second)
	if c := res[1]; c.Status != schemas.StatusConflict || c.Error == nil || !strings.Contains(c.Error.Message, "failed in part") ||
		!strings.Contains(c.Error.Message, r.Invoices[0].DigitalInvoiceNo) {
		t.Fatalf("corrected request over an order failed in part: %+v %+v", c, c.Error)
	}
	if st := h.orderStats(nuonuoSeller, "PART-1"); st.Submissions != 1 {
		t.Fatalf("sandbox %+v: the corrected request reached the provider", st)
	}

	h.publish(nuonuoSeller, reissueRequest(t, nuonuoSeller, "RE-PART-1", "PART-1"), "")
	re := h.waitResult(nuonuoSeller, "RE-PART-1", 1, 10*time.Second)[0]
	if re.Status != schemas.StatusIssued || len(re.Invoices) != 3 ||
		re.Invoices[0].DigitalInvoiceNo != r.Invoices[0].DigitalInvoiceNo || re.Invoices[1].DigitalInvoiceNo != r.Invoices[1].DigitalInvoiceNo {
		t.Fatalf("reissue %+v, want the two invoices issued before and a third", re)
	}
	if st := h.orderStats(nuonuoSeller, "PART-1"); st.Issuances != 1 || st.Invoices != 3 {
		t.Fatalf("sandbox %+v, want one issuance of 3 invoices", st)
	}
}

// TestCorrectedRequestAfterAGiveUpOfAnOrderFailedInPart: the earlier request
// was submitted and given up; the provider then split it and issued all but
// its last invoice. A corrected request is not sent: its order's record
// becomes rejected with the invoices issued, and the corrected request gets
// a conflict naming them.
func TestCorrectedRequestAfterAGiveUpOfAnOrderFailedInPart(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: splitting})
	h.start()
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 11})
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-PART", failInPart), "")
	earlier := h.waitResult(nuonuoSeller, "CORR-PART", 1, 30*time.Second)[0]
	if earlier.Status != schemas.StatusFailed {
		t.Fatalf("earlier request: %+v", earlier)
	}
	h.sb.SetFaults(sandbox.Faults{})

	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "CORR-PART", func(o *schemas.Order) { o.BuyerName = "更正后的买方" }), "")
	res := h.waitResult(nuonuoSeller, "CORR-PART", 2, 15*time.Second)
	if c := res[1]; c.Status != schemas.StatusConflict || c.Error == nil || !strings.Contains(c.Error.Message, "issued part of it") {
		t.Fatalf("corrected request: %+v %+v", c, c.Error)
	}
	if st := h.orderStats(nuonuoSeller, "CORR-PART"); st.Submissions != 1 || st.Issuances != 1 || st.Invoices != 2 {
		t.Fatalf("sandbox %+v: the corrected request reached the provider", st)
	}
	rec, found, err := h.db.Get(t.Context(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "CORR-PART"})
	if err != nil || !found || rec.State != schemas.StateRejected || len(rec.Invoices) != 2 || rec.Fingerprint != earlier.Fingerprint ||
		rec.LastError == nil || rec.LastError.Code != schemas.CodeProviderFailed {
		t.Fatalf("stored %+v %v %v", rec, found, err)
	}
}

var _ pipeline.Documents = (*keptDocuments)(nil)
