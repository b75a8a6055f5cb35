package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestEncodeRecordIsMarshalCompressed: a stored record is the marker byte
// and an S2 block of exactly json.Marshal's bytes, whatever the record's
// size (past the pooled buffers' limit too), and a result is never
// overwritten by the encodings after it.
func TestEncodeRecordIsMarshalCompressed(t *testing.T) {
	rec := func(orderNo string, invoices int) *schemas.OrderRecord {
		r := &schemas.OrderRecord{Seller: "91310000MA1FL0XX1X", OrderNo: orderNo, Kind: schemas.KindIssue,
			State: schemas.StateIssued, Fingerprint: strings.Repeat("ab", 32), Version: 3,
			LastError: &schemas.ErrorInfo{Code: "E9106", Message: "金额 <不符> & \\ \"引号\" \u2028"}}
		for i := range invoices {
			r.Invoices = append(r.Invoices, schemas.Invoice{
				SerialNo: fmt.Sprintf("2403140926530000%04d", i), TotalAmount: schemas.ParseAmount("113.00"),
				PdfURL: fmt.Sprintf("https://invoice.example.com/%d.pdf?a=1&b=2", i)})
		}
		return r
	}
	recs := []*schemas.OrderRecord{rec("A", 0), rec("B", 1), rec("C", 3000), rec("D", 2)}
	var outs [][]byte
	for _, r := range recs {
		out, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	for i, r := range recs {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out := outs[i]
		if len(out) == 0 || out[0] != compressedRecord {
			t.Fatalf("%s: does not start with the marker byte", r.OrderNo)
		}
		got, err := s2.Decode(nil, out[1:])
		if err != nil {
			t.Fatalf("%s: %v", r.OrderNo, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: stored JSON differs from json.Marshal's:\n%s\n%s", r.OrderNo, got, want)
		}
		if len(want) > maxPooledRecord && r.OrderNo != "C" {
			t.Errorf("%s: %d bytes of JSON", r.OrderNo, len(want))
		}
		if r.OrderNo == "C" && len(want) <= maxPooledRecord {
			t.Errorf("record C is %d bytes of JSON, not past the pool's limit of %d", len(want), maxPooledRecord)
		}
		var back schemas.OrderRecord
		if err := decodeRecord(out, &back); err != nil || back.OrderNo != r.OrderNo || len(back.Invoices) != len(r.Invoices) {
			t.Errorf("%s: decoded back as %s with %d invoices (%v)", r.OrderNo, back.OrderNo, len(back.Invoices), err)
		}
	}
}

// BenchmarkEncodeRecord encodes an issued order's record with one invoice,
// as the pipeline saves it.
func BenchmarkEncodeRecord(b *testing.B) {
	rec := &schemas.OrderRecord{Seller: "339902999999789113", OrderNo: "BXBOHZKD-0049993", Kind: schemas.KindIssue,
		State: schemas.StateIssued, Fingerprint: strings.Repeat("3f", 32), Provider: "nuonuo", Version: 2,
		Refs: schemas.ProviderRefs{SerialNo: "24031409265300001234"}, Attempts: 2, Submissions: 1,
		Warnings: []schemas.Violation{{Field: "buyerTaxNum", Rule: "tax_number_check", Message: "the tax number's check character does not match"}},
		Invoices: []schemas.Invoice{{SerialNo: "24031409265300001234", DigitalInvoiceNo: "24312000000012345678",
			ExTaxAmount: schemas.ParseAmount("100.00"), TaxAmount: schemas.ParseAmount("13.00"), TotalAmount: schemas.ParseAmount("113.00"),
			PdfURL: "https://invoice.example.com/24312000000012345678.pdf"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
}
