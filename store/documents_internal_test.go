package store

import (
	"slices"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestPendingDocumentReadsRecordOnlyForDamagedEntry: the order's record is
// read only when its index entry cannot be decoded, so that going through a
// large index does not map the records' pages into memory.
func TestPendingDocumentReadsRecordOnlyForDamagedEntry(t *testing.T) {
	key := schemas.OrderKey{Seller: "91310000MA1FL0XX1X", OrderNo: "D-1"}
	reads := 0
	record := func() []byte { reads++; return nil }
	d := pendingDocument(key, []byte(`["https://invoice.example.com/1.pdf",""]`), record)
	if reads != 0 || d.Damaged != nil || !slices.Equal(d.PdfURLs, []string{"https://invoice.example.com/1.pdf", ""}) {
		t.Fatalf("good entry: %d record reads, %+v; want none and its two links", reads, d)
	}
	d = pendingDocument(key, []byte(`{"not":"a list"}`), record)
	if reads != 1 || d.Damaged == nil || d.PdfURLs != nil {
		t.Fatalf("damaged entry without a record: %d record reads, %+v; want one read and Damaged", reads, d)
	}
}
