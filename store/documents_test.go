package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// pendingKeys reads the whole pending-documents index n keys at a time.
func pendingKeys(t *testing.T, db *store.DB, n int, skip func(schemas.OrderKey) bool) []string {
	t.Helper()
	var keys []string
	var after schemas.OrderKey
	for range 1000 {
		docs, next, err := db.PendingDocuments(context.Background(), after, n, skip)
		if err != nil {
			t.Fatalf("PendingDocuments after %v: %v", after, err)
		}
		if len(docs) > n {
			t.Fatalf("PendingDocuments(%d) returned %d orders", n, len(docs))
		}
		for _, d := range docs {
			want := issued(newRecord(d.Key.OrderNo, schemas.StateIssued, ""), 1).Invoices[0].PdfURL
			if d.Key.Seller != testSeller || !slices.Equal(d.PdfURLs, []string{want}) {
				t.Fatalf("pending %s with PDF links %q, want %q", d.Key, d.PdfURLs, want)
			}
			keys = append(keys, d.Key.OrderNo)
		}
		if next == (schemas.OrderKey{}) {
			return keys
		}
		after = next
	}
	t.Fatal("PendingDocuments never reached the end of the index")
	return nil
}

func TestPendingDocuments(t *testing.T) {
	cfg := testConfig(t)
	db := MustOpen(t, cfg)
	ctx := context.Background()

	// Issued with a PDF: listed. Issued without one, submitting, rejected:
	// not listed.
	for _, no := range []string{"D-3", "D-1", "D-4", "D-2"} {
		MustPut(t, db, issued(MustPut(t, db, newRecord(no, schemas.StateSubmitting, fp(no))), 1))
	}
	noPDF := issued(MustPut(t, db, newRecord("N-1", schemas.StateSubmitting, fp("n"))), 1)
	noPDF.Invoices[0].PdfURL = ""
	MustPut(t, db, noPDF)
	MustPut(t, db, newRecord("S-1", schemas.StateSubmitting, fp("s")))
	MustPut(t, db, newRecord("R-1", schemas.StateRejected, fp("r")))

	want := []string{"D-1", "D-2", "D-3", "D-4"}
	for _, n := range []int{1, 3, 100} {
		if got := pendingKeys(t, db, n, nil); !slices.Equal(got, want) {
			t.Errorf("pending, %d at a time: %v, want %v", n, got, want)
		}
	}
	if n, err := db.CountPendingDocuments(ctx); err != nil || n != 4 {
		t.Errorf("CountPendingDocuments = %d, %v; want 4", n, err)
	}
	// skip passes keys over without reading them, and they still count
	// towards n: one call with n=2 that skips D-1 returns only D-2.
	skipD1 := func(k schemas.OrderKey) bool { return k.OrderNo == "D-1" }
	docs, next, err := db.PendingDocuments(ctx, schemas.OrderKey{}, 2, skipD1)
	if err != nil || len(docs) != 1 || docs[0].Key.OrderNo != "D-2" || next.OrderNo != "D-2" {
		t.Fatalf("PendingDocuments(2, skip D-1) = %d orders, next %v, %v; want D-2 only, next D-2", len(docs), next, err)
	}
	if got := pendingKeys(t, db, 2, skipD1); !slices.Equal(got, want[1:]) {
		t.Errorf("pending, skipping D-1: %v, want %v", got, want[1:])
	}

	// Kept documents leave the index; unknown keys are ignored; the index
	// survives a restart.
	kept := []schemas.OrderKey{{Seller: testSeller, OrderNo: "D-1"}, {Seller: testSeller, OrderNo: "D-3"}, {Seller: testSeller, OrderNo: "X-9"}}
	if err := db.DocumentsKept(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, cfg)
	if got := pendingKeys(t, db, 10, nil); !slices.Equal(got, []string{"D-2", "D-4"}) {
		t.Errorf("pending after DocumentsKept and a restart: %v, want [D-2 D-4]", got)
	}
	if n, err := db.CountPendingDocuments(ctx); err != nil || n != 2 {
		t.Errorf("CountPendingDocuments = %d, %v; want 2", n, err)
	}
	if err := db.DocumentsKept(ctx, []schemas.OrderKey{{Seller: testSeller}}); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("DocumentsKept with an empty order number = %v, want ErrInvalidKey", err)
	}
}

// TestPendingDocumentsClosed: the index methods fail with ErrClosed after
// Close, like every other method.
func TestPendingDocumentsClosed(t *testing.T) {
	db, err := store.Open(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := db.PendingDocuments(ctx, schemas.OrderKey{}, 10, nil); !errors.Is(err, store.ErrClosed) {
		t.Errorf("PendingDocuments after Close = %v, want ErrClosed", err)
	}
	if err := db.DocumentsKept(ctx, []schemas.OrderKey{{Seller: testSeller, OrderNo: "D-1"}}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("DocumentsKept after Close = %v, want ErrClosed", err)
	}
	if _, err := db.CountPendingDocuments(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("CountPendingDocuments after Close = %v, want ErrClosed", err)
	}
}

// TestPendingDocumentsKeepsInvoicePositions: an order split into several
// invoices lists each one's PDF link at its invoice's position, "" where an
// invoice has none; an order without any is not listed.
func TestPendingDocumentsKeepsInvoicePositions(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	rec := issued(MustPut(t, db, newRecord("M-1", schemas.StateSubmitting, fp("m"))), 1)
	rec.Invoices = append([]schemas.Invoice{{SerialNo: "S0"}}, rec.Invoices[0], schemas.Invoice{SerialNo: "S2", PdfURL: "https://invoice.example.com/3.pdf"})
	MustPut(t, db, rec)
	docs, next, err := db.PendingDocuments(context.Background(), schemas.OrderKey{}, 10, nil)
	want := []string{"", "https://invoice.example.com/24312000000012345678.pdf", "https://invoice.example.com/3.pdf"}
	if err != nil || len(docs) != 1 || !slices.Equal(docs[0].PdfURLs, want) || next != (schemas.OrderKey{}) {
		t.Fatalf("PendingDocuments = %+v, next %v, %v; want M-1 with %q", docs, next, err, want)
	}
}

// TestPendingDocumentsDamagedEntry: an index entry that cannot be decoded
// does not stop the read at it. Its links are read from the order's record,
// and when the record is damaged too the order is returned marked Damaged;
// the orders after it are returned as usual.
func TestPendingDocumentsDamagedEntry(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []string{"D-1", "D-2", "D-3", "D-4"} {
		MustPut(t, db, issued(MustPut(t, db, newRecord(no, schemas.StateSubmitting, fp(no))), 1))
	}
	key := func(no string) []byte { return []byte(testSeller + "\x00" + no) }
	db = rawUpdate(t, cfg, db, func(tx *bolt.Tx) error {
		docs := tx.Bucket([]byte("documents"))
		for _, no := range []string{"D-2", "D-3"} {
			if docs.Get(key(no)) == nil {
				return errors.New("no documents index entry for " + no)
			}
			if err := docs.Put(key(no), []byte("{not a list")); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("orders")).Put(key("D-3"), []byte("{not a record"))
	})
	docs, next, err := db.PendingDocuments(context.Background(), schemas.OrderKey{}, 10, nil)
	if err != nil || next != (schemas.OrderKey{}) || len(docs) != 4 {
		t.Fatalf("PendingDocuments = %d orders, next %v, %v; want all 4 and the end", len(docs), next, err)
	}
	link := []string{issued(newRecord("D-1", schemas.StateIssued, ""), 1).Invoices[0].PdfURL}
	for _, d := range docs {
		switch d.Key.OrderNo {
		case "D-3":
			if d.Damaged == nil || len(d.PdfURLs) != 0 {
				t.Errorf("D-3 (entry and record damaged) = links %q, Damaged %v; want no links and Damaged", d.PdfURLs, d.Damaged)
			}
		default: // D-2's links come from its record
			if d.Damaged != nil || !slices.Equal(d.PdfURLs, link) {
				t.Errorf("%s = links %q, Damaged %v; want %q", d.Key.OrderNo, d.PdfURLs, d.Damaged, link)
			}
		}
	}
}

// TestPendingDocumentsOfAnOrderFailedInPart: a split order rejected with the
// invoices that were issued before the rest failed has documents to keep too.
func TestPendingDocumentsOfAnOrderFailedInPart(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	part := issued(MustPut(t, db, newRecord("P-1", schemas.StateSubmitting, fp("p"))), 1)
	part.State = schemas.StateRejected
	part.LastError = &schemas.ErrorInfo{Code: schemas.CodeProviderFailed, Message: "1 of the order's 2 invoices were issued, the others failed"}
	MustPut(t, db, part)
	MustPut(t, db, newRecord("R-1", schemas.StateRejected, fp("r"))) // failed as a whole: nothing to keep
	if got := pendingKeys(t, db, 10, nil); !slices.Equal(got, []string{"P-1"}) {
		t.Fatalf("pending %v, want [P-1]", got)
	}
}

// A damaged key in the index (a NUL too many, as a bit flip could leave
// it) is returned marked Damaged, the read goes on after it even when it
// ends a chunk, and DocumentsKept removes the valid keys given beside an
// invalid one.
func TestPendingDocumentsDamagedKey(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []string{"K-1", "K-2", "K-3"} {
		MustPut(t, db, issued(MustPut(t, db, newRecord(no, schemas.StateSubmitting, fp(no))), 1))
	}
	db = rawUpdate(t, cfg, db, func(tx *bolt.Tx) error { // sorts between K-1 and K-2
		return tx.Bucket([]byte("documents")).Put([]byte(testSeller+"\x00K-1\x00x"), []byte(`["http://127.0.0.1:1/x.pdf"]`))
	})
	ctx := context.Background()

	var seen []string
	var damaged []schemas.OrderKey
	after := schemas.OrderKey{}
	for range 10 { // two keys a call: the damaged key ends the first chunk
		docs, next, err := db.PendingDocuments(ctx, after, 2, nil)
		if err != nil {
			t.Fatalf("PendingDocuments after %v: %v", after, err)
		}
		for _, d := range docs {
			seen = append(seen, d.Key.OrderNo)
			if d.Damaged != nil {
				damaged = append(damaged, d.Key)
			}
		}
		if next == (schemas.OrderKey{}) {
			break
		}
		after = next
	}
	if want := []string{"K-1", "K-1\x00x", "K-2", "K-3"}; !slices.Equal(seen, want) {
		t.Fatalf("read %q, want %q", seen, want)
	}
	if len(damaged) != 1 || damaged[0].OrderNo != "K-1\x00x" {
		t.Fatalf("damaged %v, want the one damaged key", damaged)
	}
	err = db.DocumentsKept(ctx, []schemas.OrderKey{{Seller: testSeller, OrderNo: "K-1"}, damaged[0], {Seller: testSeller, OrderNo: "K-2"}})
	if !errors.Is(err, store.ErrInvalidKey) {
		t.Fatalf("DocumentsKept with an invalid key = %v, want ErrInvalidKey named", err)
	}
	if n, err := db.CountPendingDocuments(ctx); err != nil || n != 2 {
		t.Fatalf("%d pending, %v; want K-3 and the damaged key left", n, err)
	}
}
