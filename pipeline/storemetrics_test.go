package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// TestStoreCollector writes to a real store file with fsync and reads the
// counters back through a registry, as a scrape of /metrics does.
func TestStoreCollector(t *testing.T) {
	t.Parallel()
	db := openSyncedStore(t)
	reg := prometheus.NewRegistry()
	reg.MustRegister(pipeline.NewStoreCollector(db))

	// Opening commits its own setup; count from here.
	base := db.Stats()
	const writes = 3
	start := time.Now()
	for i := range writes {
		rec := schemas.OrderRecord{Seller: "91310000MA1FL0XX1X", OrderNo: fmt.Sprintf("M-%d", i), Kind: schemas.KindIssue,
			State: schemas.StateSubmitting, Fingerprint: "f", Provider: "nuonuo", Submissions: 1, ReceivedAt: start}
		if _, err := db.Put(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)

	for name, want := range map[string]float64{
		"invoice_store_writes_total":         float64(base.Requests + writes),
		"invoice_store_commits_total":        float64(base.Commits + writes), // one writer at a time: a commit each
		"invoice_store_failed_commits_total": 0,
		"invoice_store_puts_total":           float64(writes),
	} {
		if got, err := gatherValue(reg, name); err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, err, want)
		}
	}
	secs, err := gatherValue(reg, "invoice_store_commit_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	if spent := secs - base.CommitTime.Seconds(); spent <= 0 || spent > took.Seconds() {
		t.Fatalf("commit seconds grew by %v over %d writes that took %v: want more than 0 and at most that", spent, writes, took)
	}
	// One writer at a time: each write waited for its own commit only.
	putSecs, err := gatherValue(reg, "invoice_store_put_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	if putSecs < secs-base.CommitTime.Seconds() || putSecs > took.Seconds() {
		t.Fatalf("put seconds %v over %d writes that took %v and committed in %v: want between the two",
			putSecs, writes, took, secs-base.CommitTime.Seconds())
	}
	if n, err := gatherValue(reg, "invoice_store_patient_puts_total"); err != nil || n != 0 {
		t.Fatalf("patient puts %v (%v) before any, want 0", n, err)
	}

	// A patient write counts in both.
	rec := schemas.OrderRecord{Seller: "91310000MA1FL0XX1X", OrderNo: "M-P", Kind: schemas.KindIssue,
		State: schemas.StateSubmitting, Fingerprint: "f", Provider: "nuonuo", Submissions: 1, ReceivedAt: start}
	if _, err := db.PutPatient(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"invoice_store_puts_total": writes + 1, "invoice_store_patient_puts_total": 1} {
		if got, err := gatherValue(reg, name); err != nil || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, err, want)
		}
	}
	patientSecs, err := gatherValue(reg, "invoice_store_patient_put_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	allSecs, err := gatherValue(reg, "invoice_store_put_seconds_total")
	if err != nil {
		t.Fatal(err)
	}
	// The same duration is added to both counters (seconds as float64:
	// compared to the microsecond).
	if patientSecs <= 0 || math.Abs(allSecs-putSecs-patientSecs) > 1e-6 {
		t.Fatalf("patient put seconds %v, put seconds %v then %v: want the patient write's time in both", patientSecs, putSecs, allSecs)
	}

	// The store's state and the file system under it.
	if w, err := gatherValue(reg, "invoice_store_writable"); err != nil || w != 1 {
		t.Fatalf("invoice_store_writable %v (%v) on a store that writes", w, err)
	}
	free, ferr := gatherValue(reg, "invoice_store_disk_free_bytes")
	size, serr := gatherValue(reg, "invoice_store_disk_size_bytes")
	if ferr != nil || serr != nil || free <= 0 || size < free {
		t.Fatalf("disk free %v (%v), size %v (%v)", free, ferr, size, serr)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if w, err := gatherValue(reg, "invoice_store_writable"); err != nil || w != 0 {
		t.Fatalf("invoice_store_writable %v (%v) on a closed store", w, err)
	}
}

// gatherValue returns the value of the single sample of the metric name.
func gatherValue(g prometheus.Gatherer, name string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			if g := mf.GetMetric()[0].GetGauge(); g != nil {
				return g.GetValue(), nil
			}
			return mf.GetMetric()[0].GetCounter().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("no single sample of %s", name)
}

// TestTimedStore times a real store's writes through Metrics.TimedStore: a
// save a request waits for and a patient one each land in their own series,
// a refused save counts too, and each series' sum holds the store's own
// timing of the same writes (taken inside the call) and fits in the wall
// time they took.
func TestTimedStore(t *testing.T) {
	t.Parallel()
	db := openSyncedStore(t)
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	st := m.TimedStore(db)
	if (*pipeline.Metrics)(nil).TimedStore(db) != pipeline.Store(db) {
		t.Fatal("a nil *Metrics wraps the store")
	}

	start := time.Now()
	rec := schemas.OrderRecord{Seller: "91310000MA1FL0XX1X", OrderNo: "T-1", Kind: schemas.KindIssue,
		State: schemas.StateSubmitting, Fingerprint: "f", Provider: "nuonuo", Submissions: 1, ReceivedAt: start}
	claimed, err := st.Put(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(t.Context(), rec); !errors.Is(err, store.ErrVersionConflict) { // the claim again, from version 0
		t.Fatalf("second claim: %v, want a version conflict", err)
	}
	claimed.State = schemas.StateIssued
	claimed.Attempts++
	claimed.CompletedAt = time.Now()
	claimed.Invoices = []schemas.Invoice{{DigitalInvoiceNo: "26332000000000000001", IssuedAt: start,
		ExTaxAmount: schemas.ParseAmount("100.00"), TaxAmount: schemas.ParseAmount("13.00"), TotalAmount: schemas.ParseAmount("113.00")}}
	if _, err := st.PutPatient(t.Context(), claimed); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)

	stats := db.Stats()
	inside := map[string]float64{
		"false": (stats.PutTime - stats.PatientPutTime).Seconds(),
		"true":  stats.PatientPutTime.Seconds(),
	}
	want := map[string]uint64{"false": 2, "true": 1}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		if mf.GetName() != "invoice_order_save_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			patient := s.GetLabel()[0].GetValue()
			h := s.GetHistogram()
			seen++
			if h.GetSampleCount() != want[patient] {
				t.Errorf("patient=%s: %d saves, want %d", patient, h.GetSampleCount(), want[patient])
			}
			if sum := h.GetSampleSum(); sum < inside[patient] || sum > took.Seconds() {
				t.Errorf("patient=%s: %v s, want at least the store's own %v s and at most the %v s the saves took", patient, sum, inside[patient], took.Seconds())
			}
			if len(h.GetPositiveSpan()) == 0 {
				t.Errorf("patient=%s: no native buckets", patient)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("%d series of invoice_order_save_seconds, want 2", seen)
	}
}

// openSyncedStore opens an order store in a temporary directory with fsync
// on, as the consumer runs it, and closes it when the test ends.
func openSyncedStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(store.Config{Path: filepath.Join(t.TempDir(), "orders.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
