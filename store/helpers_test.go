package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// testSeller is a seller tax number used throughout the tests.
const testSeller = "91310000MA1FL0XX1X"

// receivedAt is a fixed time, so that records compare equal after a round
// trip through the store.
var receivedAt = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// testConfig returns a Config for a new store file in a temporary
// directory, without fsync.
func testConfig(tb testing.TB) store.Config {
	tb.Helper()
	return store.Config{Path: filepath.Join(tb.TempDir(), "orders.db"), NoSync: true}
}

// MustOpen opens a store and closes it when the test ends.
func MustOpen(tb testing.TB, cfg store.Config) *store.DB {
	tb.Helper()
	db, err := store.Open(cfg)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return db
}

// MustPut stores rec and returns the stored record.
func MustPut(tb testing.TB, db *store.DB, rec schemas.OrderRecord) schemas.OrderRecord {
	tb.Helper()
	got, err := db.Put(context.Background(), rec)
	if err != nil {
		tb.Fatalf("put %s %s v%d: %v", rec.Key(), rec.State, rec.Version, err)
	}
	if got.Version != rec.Version+1 {
		tb.Fatalf("put %s: version %d, want %d", rec.Key(), got.Version, rec.Version+1)
	}
	return got
}

// MustGet returns the record stored under key, failing when there is none.
func MustGet(tb testing.TB, db *store.DB, key schemas.OrderKey) schemas.OrderRecord {
	tb.Helper()
	rec, ok, err := db.Get(context.Background(), key)
	if err != nil {
		tb.Fatalf("get %s: %v", key, err)
	}
	if !ok {
		tb.Fatalf("get %s: not found", key)
	}
	return rec
}

// MustMissing fails when a record is stored under key.
func MustMissing(tb testing.TB, db *store.DB, key schemas.OrderKey) {
	tb.Helper()
	rec, ok, err := db.Get(context.Background(), key)
	if err != nil {
		tb.Fatalf("get %s: %v", key, err)
	}
	if ok {
		tb.Fatalf("get %s: found %s v%d, want none", key, rec.State, rec.Version)
	}
}

// MustCounts returns the per-state counts.
func MustCounts(tb testing.TB, db *store.DB) map[schemas.OrderState]int {
	tb.Helper()
	c, err := db.Counts(context.Background())
	if err != nil {
		tb.Fatalf("counts: %v", err)
	}
	return c
}

// MustScan returns the records in state, in Scan order.
func MustScan(tb testing.TB, db *store.DB, state schemas.OrderState) []schemas.OrderRecord {
	tb.Helper()
	var recs []schemas.OrderRecord
	err := db.Scan(context.Background(), state, func(r schemas.OrderRecord) bool {
		recs = append(recs, r)
		return true
	})
	if err != nil {
		tb.Fatalf("scan %s: %v", state, err)
	}
	return recs
}

// wantCounts returns a counts map with every state, zero unless given.
func wantCounts(nonZero map[schemas.OrderState]int) map[schemas.OrderState]int {
	m := make(map[schemas.OrderState]int, len(schemas.OrderStates))
	for _, s := range schemas.OrderStates {
		m[s] = nonZero[s]
	}
	return m
}

// checkCounts compares the store's counts with want (missing states are 0).
func checkCounts(tb testing.TB, db *store.DB, want map[schemas.OrderState]int) {
	tb.Helper()
	if got, w := MustCounts(tb, db), wantCounts(want); !reflect.DeepEqual(got, w) {
		tb.Fatalf("counts = %v, want %v", got, w)
	}
}

// fp returns a fingerprint-shaped string for a name.
func fp(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// newRecord returns a first write (Version 0) of an order.
func newRecord(orderNo string, state schemas.OrderState, fingerprint string) schemas.OrderRecord {
	return schemas.OrderRecord{
		Seller:      testSeller,
		OrderNo:     orderNo,
		Kind:        schemas.KindIssue,
		State:       state,
		Fingerprint: fingerprint,
		Provider:    "nuonuo",
		Attempts:    1,
		Submissions: 1,
		ReceivedAt:  receivedAt,
	}
}

// issued returns rec moved to issued with one invoice, as the pipeline
// writes it after a successful provider call.
func issued(rec schemas.OrderRecord, n int) schemas.OrderRecord {
	rec.State = schemas.StateIssued
	rec.Refs = schemas.ProviderRefs{SerialNo: "24031409265300001234"}
	rec.Attempts++
	rec.Invoices = []schemas.Invoice{{
		SerialNo:         "24031409265300001234",
		DigitalInvoiceNo: "24312000000012345678",
		IssuedAt:         receivedAt.Add(time.Duration(n) * time.Second),
		ExTaxAmount:      schemas.ParseAmount("100.00"),
		TaxAmount:        schemas.ParseAmount("13.00"),
		TotalAmount:      schemas.ParseAmount("113.00"),
		PdfURL:           "https://invoice.example.com/24312000000012345678.pdf",
	}}
	rec.CompletedAt = receivedAt.Add(time.Duration(n) * time.Second)
	return rec
}
