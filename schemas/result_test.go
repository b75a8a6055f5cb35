package schemas_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestGoldenResults fixes the wire form of every result status and of a dead
// letter, and holds each to its JSON Schema.
func TestGoldenResults(t *testing.T) {
	recv := time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC)
	done := recv.Add(3 * time.Second)
	issued := schemas.Result{
		SchemaVersion: "1", SellerTaxNum: "339902999999789113", OrderNo: "20230113333207931231", Kind: schemas.KindIssue,
		Status: schemas.StatusIssued, Provider: "nuonuo", Attempts: 2, ReceivedAt: recv, CompletedAt: done,
		Fingerprint: strings.Repeat("ab", 32),
		Invoices: []schemas.Invoice{{
			SerialNo: "20160108165823395151", InvoiceCode: "033002600111", InvoiceNo: "00000001", DigitalInvoiceNo: "26332000000000000001",
			IssuedAt: done, ExTaxAmount: schemas.ParseAmount("5.00"), TaxAmount: schemas.ParseAmount("0.65"), TotalAmount: schemas.ParseAmount("5.65"),
			PdfURL: "http://127.0.0.1:9100/_sandbox/documents/20160108165823395151-1.pdf",
		}},
	}
	v := MustValidator(t, schemas.ValidatorConfig{})
	d, err := v.Decode(MustRead(t, "seed001-example.json"), "")
	if err != nil {
		t.Fatal(err)
	}
	rejected := schemas.Result{
		SchemaVersion: "1", SellerTaxNum: "150301199811285326", OrderNo: "202301133332079312314", Kind: schemas.KindIssue,
		Status: schemas.StatusRejected, ReceivedAt: recv, CompletedAt: recv, Fingerprint: d.Fingerprint,
		Invoices: []schemas.Invoice{}, Error: d.Error(), Warnings: d.Warnings,
	}
	conflict := schemas.Result{
		SchemaVersion: "1", SellerTaxNum: "339902999999789113", OrderNo: "A1", Kind: schemas.KindIssue, Status: schemas.StatusConflict,
		ReceivedAt: recv, CompletedAt: recv, Invoices: []schemas.Invoice{}, Fingerprint: strings.Repeat("cd", 32),
		Error: &schemas.ErrorInfo{Code: schemas.CodeConflict, Message: "order A1 was issued for a different request; nothing was sent to the provider"},
	}
	dl := schemas.DeadLetter{
		SchemaVersion: "1", Reason: schemas.ReasonMalformed, SellerTaxNum: "339902999999789113",
		Error:      schemas.ErrorInfo{Code: schemas.CodeMalformed, Message: "malformed message: not JSON: invalid character 'o' looking for beginning of value (at byte 1)"},
		Deliveries: 1, OriginalSubject: "invoice.request.339902999999789113", OriginalStream: "INVOICE_REQUESTS", OriginalSeq: 42,
		PublishedAt: recv, FirstSeen: recv, DeadAt: done, Headers: map[string][]string{"Nats-Msg-Id": {"x"}},
		Payload: []byte("orderNo=1"), PayloadSize: 9, PayloadSHA256: strings.Repeat("0", 64),
	}
	for name, v := range map[string]any{
		"results/issued.json": issued, "results/rejected-seed001.json": rejected, "results/conflict.json": conflict,
	} {
		out, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.CheckResultJSON(out); err != nil {
			t.Errorf("%s breaks invoice-result.schema.json: %v", name, err)
		}
		golden(t, name, append(out, '\n'))
	}
	out, _ := json.MarshalIndent(dl, "", "  ")
	if err := schemas.CheckDeadLetterJSON(out); err != nil {
		t.Errorf("dead letter breaks its schema: %v", err)
	}
	golden(t, "results/deadletter-malformed.json", append(out, '\n'))

	// The result schema refuses what the contract forbids.
	bad := issued
	bad.Error = &schemas.ErrorInfo{Code: schemas.CodeConflict, Message: "x"}
	b, _ := json.Marshal(bad)
	if schemas.CheckResultJSON(b) == nil {
		t.Error("an issued result with an error passed the schema")
	}
	bad = conflict
	bad.Error = nil
	b, _ = json.Marshal(bad)
	if schemas.CheckResultJSON(b) == nil {
		t.Error("a conflict result without an error passed the schema")
	}
}

func TestInvoiceNumber(t *testing.T) {
	for _, tc := range []struct {
		inv  schemas.Invoice
		want string
	}{
		{schemas.Invoice{DigitalInvoiceNo: "26332000000000000001", InvoiceCode: "033002600111", InvoiceNo: "00000001"}, "26332000000000000001"},
		{schemas.Invoice{InvoiceCode: "033002600111", InvoiceNo: "00000001"}, "033002600111/00000001"},
		{schemas.Invoice{InvoiceNo: "00000001"}, "00000001"},
		{schemas.Invoice{SerialNo: "S-1"}, "(serial S-1)"},
		{schemas.Invoice{}, "(serial -)"},
	} {
		if got := tc.inv.Number(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.inv, got, tc.want)
		}
	}
}
