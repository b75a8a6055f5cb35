package store

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	bolt "go.etcd.io/bbolt"
)

// The tests in this file hand batches straight to DB.commit, so that the
// order of the writes inside one transaction is chosen by the test instead
// of by the scheduler. Everything else is tested through the exported API.

// step is one write of a batch: a Put of rec, or a Prune chunk of the
// records of keys at their current version.
type step struct {
	rec       schemas.OrderRecord
	prune     []string // order numbers
	wantErr   error    // nil: succeeds
	wantPrune int
}

func TestCommitBatchIsSequential(t *testing.T) {
	const seller = "91310000MA1FL0XX1X"
	rec := func(orderNo string, state schemas.OrderState, fingerprint string, version uint64) schemas.OrderRecord {
		return schemas.OrderRecord{Seller: seller, OrderNo: orderNo, Kind: schemas.KindIssue, State: state, Fingerprint: fingerprint, Version: version}
	}
	type final struct {
		orderNo string
		state   schemas.OrderState // "": no record
		version uint64
	}
	tests := []struct {
		name   string
		before []schemas.OrderRecord // committed first, one by one
		batch  []step
		want   []final
		counts map[schemas.OrderState]int
		// unchanged: every write fails its checks, so the transaction is
		// rolled back and nothing is written to the file.
		unchanged bool
	}{
		{
			name: "create, update and an illegal move of one key",
			batch: []step{
				{rec: rec("A", schemas.StateSubmitting, "f1", 0)},
				{rec: rec("A", schemas.StateIssued, "f1", 1)},
				{rec: rec("A", schemas.StateSubmitting, "f1", 2), wantErr: schemas.ErrIllegalTransition},
			},
			want:   []final{{"A", schemas.StateIssued, 2}},
			counts: map[schemas.OrderState]int{schemas.StateIssued: 1},
		},
		{
			name: "two creates of one key",
			batch: []step{
				{rec: rec("A", schemas.StateSubmitting, "f1", 0)},
				{rec: rec("A", schemas.StateSubmitting, "f2", 0), wantErr: ErrVersionConflict},
			},
			want:   []final{{"A", schemas.StateSubmitting, 1}},
			counts: map[schemas.OrderState]int{schemas.StateSubmitting: 1},
		},
		{
			name:   "failed checks do not affect neighbours",
			before: []schemas.OrderRecord{rec("B", schemas.StateSubmitting, "f1", 0)},
			batch: []step{
				{rec: rec("A", schemas.StateSubmitting, "f1", 0)},
				{rec: rec("B", schemas.StateAccepted, "f1", 5), wantErr: ErrVersionConflict},
				{rec: rec("B", schemas.StateAccepted, "f2", 1), wantErr: schemas.ErrFingerprintMismatch},
				{rec: rec("C", "no-such-state", "f1", 0), wantErr: schemas.ErrIllegalTransition},
				{rec: rec("B", schemas.StateAccepted, "f1", 1)},
				{rec: rec("D", schemas.StateFailed, "f1", 0)},
			},
			want: []final{
				{"A", schemas.StateSubmitting, 1},
				{"B", schemas.StateAccepted, 2},
				{"C", "", 0},
				{"D", schemas.StateFailed, 1},
			},
			counts: map[schemas.OrderState]int{schemas.StateSubmitting: 1, schemas.StateAccepted: 1, schemas.StateFailed: 1},
		},
		{
			name:   "a batch of refused writes writes nothing",
			before: []schemas.OrderRecord{rec("B", schemas.StateSubmitting, "f1", 0)},
			batch: []step{
				{rec: rec("B", schemas.StateAccepted, "f1", 5), wantErr: ErrVersionConflict},
				{rec: rec("C", "no-such-state", "f1", 0), wantErr: schemas.ErrIllegalTransition},
				{prune: []string{"B"}},
			},
			want:      []final{{"B", schemas.StateSubmitting, 1}, {"C", "", 0}},
			counts:    map[schemas.OrderState]int{schemas.StateSubmitting: 1},
			unchanged: true,
		},
		{
			name:   "restart within the batch needs a new fingerprint",
			before: []schemas.OrderRecord{rec("A", schemas.StateSubmitting, "f1", 0)},
			batch: []step{
				{rec: rec("A", schemas.StateRejected, "f1", 1)},
				{rec: rec("A", schemas.StateSubmitting, "f1", 2), wantErr: schemas.ErrFingerprintMismatch},
				{rec: rec("A", schemas.StateSubmitting, "f2", 2)},
				{rec: rec("A", schemas.StateAccepted, "f2", 3)},
			},
			want:   []final{{"A", schemas.StateAccepted, 4}},
			counts: map[schemas.OrderState]int{schemas.StateAccepted: 1},
		},
		{
			name:   "prune sees earlier writes and later writes see the delete",
			before: []schemas.OrderRecord{rec("A", schemas.StateRejected, "f1", 0), rec("B", schemas.StateFailed, "f1", 0)},
			batch: []step{
				{rec: rec("B", schemas.StateSubmitting, "f2", 1)},
				{prune: []string{"A", "B"}, wantPrune: 1},
				{rec: rec("A", schemas.StateSubmitting, "f1", 1), wantErr: ErrVersionConflict},
				{rec: rec("A", schemas.StateSubmitting, "f1", 0)},
			},
			want:   []final{{"A", schemas.StateSubmitting, 1}, {"B", schemas.StateSubmitting, 2}},
			counts: map[schemas.OrderState]int{schemas.StateSubmitting: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			ctx := t.Context()
			for _, r := range tt.before {
				if _, err := db.Put(ctx, r); err != nil {
					t.Fatalf("before: %v", err)
				}
			}
			now := time.Now()
			cutoff := now.Add(time.Hour)
			var batch []*request
			for _, s := range tt.batch {
				if s.prune != nil {
					var items []pruneItem
					for _, no := range s.prune {
						k := schemas.OrderKey{Seller: seller, OrderNo: no}
						got, _, err := db.Get(ctx, k)
						if err != nil {
							t.Fatal(err)
						}
						key, _ := encodeKey(k)
						items = append(items, pruneItem{key: key, version: got.Version})
					}
					batch = append(batch, &request{prune: items, cutoff: cutoff, done: make(chan struct{})})
					continue
				}
				req, err := newPutRequest(s.rec, now)
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, req)
			}
			before, boltBefore := db.Stats(), fileWrites(db)
			db.commit(batch) // the commit goroutine is idle: nothing else writes
			if got := db.Stats().Commits - before.Commits; got != 1 {
				t.Fatalf("commits = %d, want 1", got)
			}
			if wrote := fileWrites(db) > boltBefore; wrote == tt.unchanged {
				t.Errorf("transaction wrote to the file: %t, want %t", wrote, !tt.unchanged)
			}
			for i, s := range tt.batch {
				r := batch[i]
				select {
				case <-r.done:
				default:
					t.Fatalf("write %d not answered", i)
				}
				if s.wantErr == nil && r.err != nil || s.wantErr != nil && !errors.Is(r.err, s.wantErr) {
					t.Errorf("write %d: err = %v, want %v", i, r.err, s.wantErr)
				}
				if r.deleted != s.wantPrune {
					t.Errorf("write %d: deleted %d, want %d", i, r.deleted, s.wantPrune)
				}
			}
			for _, f := range tt.want {
				got, ok, err := db.Get(ctx, schemas.OrderKey{Seller: seller, OrderNo: f.orderNo})
				switch {
				case err != nil:
					t.Fatal(err)
				case f.state == "" && ok:
					t.Errorf("%s: found %s v%d, want none", f.orderNo, got.State, got.Version)
				case f.state != "" && (!ok || got.State != f.state || got.Version != f.version):
					t.Errorf("%s: got %s v%d (found %t), want %s v%d", f.orderNo, got.State, got.Version, ok, f.state, f.version)
				}
			}
			counts, err := db.Counts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range schemas.OrderStates {
				if counts[s] != tt.counts[s] {
					t.Errorf("counts = %v, want %v", counts, tt.counts)
					break
				}
			}
		})
	}
}

// fileWrites returns how many page writes bbolt has made.
func fileWrites(db *DB) int64 {
	st := db.bolt.Stats()
	return st.TxStats.GetWrite()
}

func TestPaceBusy(t *testing.T) {
	const delay = 2 * time.Millisecond
	t0 := time.Unix(1_700_000_000, 0)
	// feed adds batches of size n every gap for a little over a window and
	// returns the time of the last one.
	feed := func(p *pace, from time.Time, n int, gap time.Duration) time.Time {
		now := from
		for now.Sub(from) <= paceWindow {
			now = now.Add(gap)
			p.add(now, n)
		}
		return now
	}
	tests := []struct {
		name  string
		batch int
		gap   time.Duration
		later time.Duration // how long after the last batch busy is asked
		want  bool
	}{
		{"concurrent writers, fast", 4, 500 * time.Microsecond, 0, true},
		{"one writer at a time, fast", 1, 10 * time.Microsecond, 0, false},
		{"concurrent writers, slow", 2, 5 * time.Millisecond, 0, false},
		{"concurrent writers, at the threshold", 2, 2 * time.Millisecond, 0, true},
		{"concurrent writers, then quiet", 4, 500 * time.Microsecond, 3 * paceWindow, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pace{start: t0}
			last := feed(&p, t0, tt.batch, tt.gap)
			if got := p.busy(last.Add(tt.later), delay); got != tt.want {
				t.Fatalf("busy = %v, want %v (rate %.0f/s, peak %d)", got, tt.want, p.rate, p.peak)
			}
			if c := p.concurrency(); c != tt.batch {
				t.Fatalf("concurrency %d, want the batches' %d", c, tt.batch)
			}
			if p.busy(last.Add(tt.later), 0) {
				t.Fatal("busy with no delay to wait")
			}
		})
	}
	var fresh pace
	if fresh.busy(time.Now(), delay) {
		t.Fatal("a store that has had no writes is busy")
	}
}

// TestFillPatient hands requests to fill on a channel the test controls,
// so that the order in which they reach the commit goroutine is the test's.
func TestFillPatient(t *testing.T) {
	patient := func() *request { return &request{patient: true} }
	urgent := func() *request { return &request{} }
	// fillWith runs fill on first and sends more one at a time while it
	// runs, each once fill has taken the one before, and stops sending when
	// fill returns. It returns the batch fill made and how many of the
	// requests it did not take.
	fillWith := func(t *testing.T, cfg Config, first *request, more ...*request) (batch []*request, left int) {
		t.Helper()
		db := &DB{cfg: cfg.withDefaults(), reqs: make(chan *request, len(more)+1)}
		done := make(chan []*request, 1)
		go func() {
			b, ok := db.fill([]*request{first})
			if !ok {
				t.Error("fill reported the channel closed")
			}
			done <- b
		}()
		deadline := time.After(time.Minute)
	send:
		for _, r := range more {
			db.reqs <- r
			for len(db.reqs) > 0 {
				select {
				case batch = <-done:
					break send
				case <-deadline:
					t.Fatal("fill neither took a request nor returned")
				case <-time.After(time.Millisecond):
				}
			}
		}
		if batch == nil {
			select {
			case batch = <-done:
			case <-deadline:
				t.Fatal("fill did not return")
			}
		}
		return batch, len(more) + 1 - len(batch)
	}

	t.Run("patient writes wait for a write that cannot", func(t *testing.T) {
		// An hour's patience: only the urgent write can end this wait.
		cfg := Config{PatientDelay: time.Hour, BusyBatchDelay: -1}
		p1, p2, u := patient(), patient(), urgent()
		batch, left := fillWith(t, cfg, p1, p2, u)
		if len(batch) != 3 || batch[0] != p1 || batch[1] != p2 || batch[2] != u || left != 0 {
			t.Fatalf("batch of %d (%d left), want the two patient writes and the urgent one", len(batch), left)
		}
	})
	t.Run("a patient write alone still commits", func(t *testing.T) {
		cfg := Config{PatientDelay: time.Millisecond, BusyBatchDelay: -1}
		p := patient()
		if batch, _ := fillWith(t, cfg, p); len(batch) != 1 || batch[0] != p {
			t.Fatalf("batch %v, want the patient write alone", batch)
		}
	})
	t.Run("an urgent write does not wait for patience", func(t *testing.T) {
		// With no busy delay an urgent batch closes at once, whatever
		// PatientDelay is: an hour here would time the test out.
		cfg := Config{PatientDelay: time.Hour, BusyBatchDelay: -1}
		u := urgent()
		if batch, _ := fillWith(t, cfg, u); len(batch) != 1 || batch[0] != u {
			t.Fatalf("batch %v, want the urgent write alone", batch)
		}
	})
	t.Run("MaxBatchDelay still applies to an urgent write that joins", func(t *testing.T) {
		// The urgent write joins a patient wait; MaxBatchDelay (an hour
		// here) then keeps the batch open until it is full.
		cfg := Config{PatientDelay: time.Hour, MaxBatchDelay: time.Hour, MaxBatch: 3}
		p, u, last := patient(), urgent(), urgent()
		batch, left := fillWith(t, cfg, p, u, last)
		if len(batch) != 3 || left != 0 {
			t.Fatalf("batch of %d (%d left), want 3: the batch stays open for MaxBatchDelay", len(batch), left)
		}
	})
}

// A damaged stored value fails its own write only: the writes batched with
// it are committed and the store stays healthy. A mark that is not 8 bytes
// fails a raise (a set replaces it); a record that decodes without a state
// fails a write to it (its state index would be missing).
func TestDamageFailsItsOwnWriteOnly(t *testing.T) {
	const seller = "91310000MA1FL0XX1X"
	db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	damagedKey, _ := encodeKey(schemas.OrderKey{Seller: seller, OrderNo: "DAMAGED"})
	stateless, err := encodeRecord(&schemas.OrderRecord{Seller: seller, OrderNo: "DAMAGED", Kind: schemas.KindIssue, Fingerprint: "f1", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Put(markKey("m"), []byte{1, 2, 3}); err != nil {
			return err
		}
		return tx.Bucket(bucketOrders).Put(damagedKey, stateless)
	})
	if err != nil {
		t.Fatal(err)
	}
	put := func(orderNo string, version uint64) *request {
		r, err := newPutRequest(schemas.OrderRecord{Seller: seller, OrderNo: orderNo, Kind: schemas.KindIssue,
			State: schemas.StateSubmitting, Fingerprint: "f1", Version: version}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	raise := &request{mark: markKey("m"), markValue: 7, done: make(chan struct{})}
	batch := []*request{put("A", 0), raise, put("DAMAGED", 1), put("B", 0)}
	db.commit(batch)
	if batch[0].err != nil || batch[3].err != nil {
		t.Fatalf("the neighbours failed: %v, %v", batch[0].err, batch[3].err)
	}
	if raise.err == nil || batch[2].err == nil {
		t.Fatalf("the damaged values' writes succeeded: %v, %v", raise.err, batch[2].err)
	}
	for _, no := range []string{"A", "B"} {
		if _, ok, err := db.Get(ctx, schemas.OrderKey{Seller: seller, OrderNo: no}); err != nil || !ok {
			t.Fatalf("%s not stored: %v", no, err)
		}
	}
	if err := db.Healthy(); err != nil {
		t.Fatalf("unhealthy after a damaged value: %v", err)
	}
	if err := db.SetMark(ctx, "m", 9); err != nil {
		t.Fatalf("SetMark over a damaged mark: %v", err)
	}
	if v, err := db.Mark("m"); err != nil || v != 9 {
		t.Fatalf("Mark = %d, %v; want 9", v, err)
	}
}

// TestTheLastVersionIsNotWrapped: a record stored at the largest version (only
// damage puts one there) is not replaced by a version 0, which would read as
// "no record" to the next write; the write fails alone.
func TestTheLastVersionIsNotWrapped(t *testing.T) {
	const seller = "91310000MA1FL0XX1X"
	db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	key := schemas.OrderKey{Seller: seller, OrderNo: "LAST"}
	rec := schemas.OrderRecord{Seller: seller, OrderNo: "LAST", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f1", Version: math.MaxUint64}
	raw, err := encodeRecord(&rec)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := encodeKey(key)
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOrders).Put(k, raw) }); err != nil {
		t.Fatal(err)
	}
	next := rec
	next.State = schemas.StateIssued
	if got, err := db.Put(t.Context(), next); err == nil {
		t.Fatalf("Put over version %d succeeded, stored version %d", rec.Version, got.Version)
	}
	got, ok, err := db.Get(t.Context(), key)
	if err != nil || !ok || got.Version != math.MaxUint64 || got.State != schemas.StateSubmitting {
		t.Fatalf("after the refused Put: %+v, found %v, %v", got, ok, err)
	}
	if err := db.Healthy(); err != nil {
		t.Fatalf("unhealthy after a refused write: %v", err)
	}
}

// A Probe that waits behind a stalled one gives up at its own deadline and
// leaves Healthy as it was.
func TestProbeWaitingItsTurnHonoursItsContext(t *testing.T) {
	db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	db.probeTurn <- struct{}{} // a Probe that never finishes holds the turn
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- db.Probe(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Probe behind a stalled one = %v, want its deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		<-db.probeTurn // let the waiting Probe through, so the test can end
		<-done
		t.Fatal("Probe behind a stalled one waited past its deadline")
	}
	if err := db.Healthy(); err != nil {
		t.Fatalf("Healthy after a Probe that never had its turn: %v", err)
	}
	<-db.probeTurn
	if err := db.Probe(t.Context()); err != nil {
		t.Fatalf("Probe once the turn is free: %v", err)
	}
}
