package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/fapiaohub/invoicer/store/storetest"
)

// countingDocuments records the Keep calls it gets: how many ran at once,
// which orders were kept, and fails an order's first failFirst calls.
type countingDocuments struct {
	failFirst int
	gate      chan struct{} // when set, every Keep waits for it (or its context)

	mu      sync.Mutex
	running int
	most    int
	calls   map[string]int
	kept    map[string]bool
}

func newCountingDocuments() *countingDocuments {
	return &countingDocuments{calls: map[string]int{}, kept: map[string]bool{}}
}

func (d *countingDocuments) Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	d.mu.Lock()
	d.running++
	d.most = max(d.most, d.running)
	d.calls[key.OrderNo]++
	n := d.calls[key.OrderNo]
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running--
		d.mu.Unlock()
	}()
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if n <= d.failFirst {
		return nil, fmt.Errorf("document server down (call %d)", n)
	}
	time.Sleep(time.Millisecond) // long enough for the workers to overlap
	d.mu.Lock()
	d.kept[key.OrderNo] = true
	d.mu.Unlock()
	return make([]string, len(invoices)), nil
}

func (d *countingDocuments) Get(context.Context, schemas.OrderKey, string) ([]byte, error) {
	return nil, errors.New("not stored")
}

// snapshot returns how many orders were kept and the most Keep calls that
// ran at once, and starts counting the latter again.
func (d *countingDocuments) snapshot() (kept, most int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept, most = len(d.kept), d.most
	d.most = d.running
	return kept, most
}

// issuedOrders opens an order store and saves n issued orders with a PDF
// each, which the store lists in its pending-documents index.
func issuedOrders(t *testing.T, n int) *store.DB {
	t.Helper()
	db := storetest.Open(t)
	for i := range n {
		issueOrder(t, db, fmt.Sprintf("DOC-%03d", i))
	}
	return db
}

// issueOrder saves an order as submitting, then as issued with a PDF.
func issueOrder(t *testing.T, db *store.DB, orderNo string) {
	t.Helper()
	rec, err := db.Put(t.Context(), schemas.OrderRecord{Seller: nuonuoSeller, OrderNo: orderNo,
		Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", Provider: "nuonuo", ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	rec.State = schemas.StateIssued
	rec.Invoices = []schemas.Invoice{{SerialNo: "S", PdfURL: "http://127.0.0.1:1/" + orderNo + ".pdf"}}
	if _, err := db.Put(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
}

func pendingDocuments(t *testing.T, db *store.DB) int {
	t.Helper()
	n, err := db.CountPendingDocuments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDocumentKeeperKeepsWhatTheIndexLists: the keeper keeps every order
// the order store lists, those listed before it started (a restart) and
// those it is woken for, several at a time, and empties the index.
func TestDocumentKeeperKeepsWhatTheIndexLists(t *testing.T) {
	db := issuedOrders(t, 150)
	docs := newCountingDocuments()
	k := pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{Workers: 4, Rescan: time.Hour}, zerolog.Nop(), nil)
	t.Cleanup(func() { k.Stop(context.Background()) })
	waitUntil(t, "the listed documents kept", 10*time.Second, func() bool { return pendingDocuments(t, db) == 0 })
	kept, most := docs.snapshot()
	if kept != 150 || most < 2 || most > 4 {
		t.Fatalf("kept %d orders' documents, at most %d at once; want 150, 2 to 4 at once", kept, most)
	}

	issueOrder(t, db, "LATE-1")
	k.Wake()
	waitUntil(t, "the woken order's documents kept", 10*time.Second, func() bool { return pendingDocuments(t, db) == 0 })
	docs.mu.Lock()
	defer docs.mu.Unlock()
	if docs.calls["LATE-1"] != 1 || len(docs.kept) != 151 {
		t.Fatalf("LATE-1 kept with %d calls, %d orders kept in all; want 1 call, 151 orders", docs.calls["LATE-1"], len(docs.kept))
	}
}

// TestDocumentKeeperRetriesFailures: an order whose documents fail stays
// listed and is tried again after the retry delay, until kept.
func TestDocumentKeeperRetriesFailures(t *testing.T) {
	db := issuedOrders(t, 3)
	docs := newCountingDocuments()
	docs.failFirst = 2
	k := pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{Rescan: 20 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}, zerolog.Nop(), nil)
	t.Cleanup(func() { k.Stop(context.Background()) })
	waitUntil(t, "the documents kept after two failures each", 10*time.Second, func() bool { return pendingDocuments(t, db) == 0 })
	docs.mu.Lock()
	defer docs.mu.Unlock()
	for no, n := range docs.calls {
		if n != 3 {
			t.Errorf("%s: %d calls, want 3 (two failures, then kept)", no, n)
		}
	}
}

// TestDocumentKeeperYieldsWhileBusy: while the requests are behind the
// keeper keeps one order at a time, one every BusyEvery; once they have
// caught up it keeps the rest at full speed.
func TestDocumentKeeperYieldsWhileBusy(t *testing.T) {
	db := issuedOrders(t, 40)
	docs := newCountingDocuments()
	var busy atomic.Bool
	busy.Store(true)
	k := pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{Workers: 4, Busy: busy.Load, BusyEvery: 50 * time.Millisecond,
		Rescan: time.Hour}, zerolog.Nop(), nil)
	t.Cleanup(func() { k.Stop(context.Background()) })
	waitUntil(t, "the first document kept", 10*time.Second, func() bool { kept, _ := docs.snapshot(); return kept > 0 })
	time.Sleep(200 * time.Millisecond)
	kept, most := docs.snapshot()
	if most != 1 {
		t.Fatalf("%d keeps ran at once while busy, want 1", most)
	}
	if kept >= 40 {
		t.Fatalf("kept all %d orders' documents while busy, at one every 50 ms", kept)
	}
	busy.Store(false)
	waitUntil(t, "the rest kept", 10*time.Second, func() bool { return pendingDocuments(t, db) == 0 })
	if _, most := docs.snapshot(); most < 2 {
		t.Fatalf("at most %d keeps at once after the backlog, want several", most)
	}
}

// TestDocumentKeeperStopGivesUp: Stop does not wait past its context for a
// document server that does not answer, and the order stays listed for the
// next start; a Wake after Stop is harmless.
func TestDocumentKeeperStopGivesUp(t *testing.T) {
	db := issuedOrders(t, 1)
	docs := newCountingDocuments()
	docs.gate = make(chan struct{})
	k := pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{Workers: 1, Timeout: time.Hour}, zerolog.Nop(), nil)
	waitUntil(t, "the keeper to call the document server", 10*time.Second, func() bool {
		docs.mu.Lock()
		defer docs.mu.Unlock()
		return docs.running == 1
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { k.Stop(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for a hung document server")
	}
	if kept, _ := docs.snapshot(); kept != 0 {
		t.Fatal("a document was kept through a closed gate")
	}
	if n := pendingDocuments(t, db); n != 1 {
		t.Fatalf("%d orders listed after Stop, want the one not kept", n)
	}
	k.Wake()
	k.Stop(t.Context()) // twice is fine
}

// damagingIndex is the order store's index with one order's entry reported
// damaged, as the store reports an entry and record it cannot decode; it
// counts the passes that start from the first key.
type damagingIndex struct {
	*store.DB
	damaged string
	passes  atomic.Int64
}

func (x *damagingIndex) PendingDocuments(ctx context.Context, after schemas.OrderKey, n int, skip func(schemas.OrderKey) bool) ([]store.PendingDocument, schemas.OrderKey, error) {
	if after == (schemas.OrderKey{}) {
		x.passes.Add(1)
	}
	docs, next, err := x.DB.PendingDocuments(ctx, after, n, skip)
	for i := range docs {
		if docs[i].Key.OrderNo == x.damaged {
			docs[i].PdfURLs, docs[i].Damaged = nil, errors.New("documents index entry: invalid character")
		}
	}
	return docs, next, err
}

// TestDocumentKeeperPassesOverDamagedEntry: an order whose entry the store
// reports damaged is not sent to the document server and stays listed; the
// orders after it are kept.
func TestDocumentKeeperPassesOverDamagedEntry(t *testing.T) {
	db := issuedOrders(t, 5)
	index := &damagingIndex{DB: db, damaged: "DOC-001"}
	docs := newCountingDocuments()
	k := pipeline.NewDocumentKeeper(docs, index, pipeline.KeeperConfig{Rescan: 10 * time.Millisecond,
		RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}, zerolog.Nop(), nil)
	t.Cleanup(func() { k.Stop(context.Background()) })
	waitUntil(t, "the undamaged orders kept", 10*time.Second, func() bool { return pendingDocuments(t, db) == 1 })
	waitUntil(t, "the damaged order passed over again", 10*time.Second, func() bool { return index.passes.Load() >= 5 })
	docs.mu.Lock()
	defer docs.mu.Unlock()
	if len(docs.kept) != 4 || docs.calls["DOC-001"] != 0 {
		t.Fatalf("kept %d orders, DOC-001 sent %d times; want 4 kept and DOC-001 never sent", len(docs.kept), docs.calls["DOC-001"])
	}
}

// TestDocumentKeeperCoalescesWakes: wakes that come within PassEvery of a
// pass's start are served by one later pass, not one pass each, and Stop
// does not wait for the gap.
func TestDocumentKeeperCoalescesWakes(t *testing.T) {
	db := issuedOrders(t, 0)
	index := &damagingIndex{DB: db}
	docs := newCountingDocuments()
	const every = 300 * time.Millisecond
	k := pipeline.NewDocumentKeeper(docs, index, pipeline.KeeperConfig{PassEvery: every, Rescan: time.Hour}, zerolog.Nop(), nil)
	t.Cleanup(func() { k.Stop(context.Background()) })
	waitUntil(t, "the first pass", 10*time.Second, func() bool { return index.passes.Load() == 1 })
	start := time.Now()
	for i := range 20 {
		issueOrder(t, db, fmt.Sprintf("W-%02d", i))
		k.Wake()
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	waitUntil(t, "the woken orders kept", 10*time.Second, func() bool { return pendingDocuments(t, db) == 0 })
	// One pass at the start, then at most one a PassEvery while the wakes
	// came, and one for the last of them.
	if n, most := index.passes.Load(), 2+int64(took/every)+1; n > most {
		t.Errorf("%d passes through the index for 20 wakes in %s; want at most %d, one a PassEvery (%s)", n, took, most, every)
	}

	idle := &damagingIndex{DB: issuedOrders(t, 0)}
	slow := pipeline.NewDocumentKeeper(docs, idle, pipeline.KeeperConfig{PassEvery: time.Hour, Rescan: time.Hour}, zerolog.Nop(), nil)
	waitUntil(t, "the idle keeper's first pass", 10*time.Second, func() bool { return idle.passes.Load() == 1 })
	slow.Wake() // the keeper now waits out the hour
	stopped := make(chan struct{})
	go func() { slow.Stop(context.Background()); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for the gap between passes")
	}
	if n := idle.passes.Load(); n != 1 {
		t.Errorf("%d passes within PassEvery of the first, want 1", n)
	}
}
