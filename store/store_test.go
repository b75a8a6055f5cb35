package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     store.Config
		wantErr string
	}{
		{name: "defaults", cfg: store.Config{Path: "orders.db"}},
		{name: "all set", cfg: store.Config{Path: "orders.db", LockTimeout: time.Second, MaxBatch: 1, MaxBatchDelay: time.Millisecond, NoSync: true}},
		{name: "no path", cfg: store.Config{}, wantErr: "path is required"},
		{name: "negative lock timeout", cfg: store.Config{Path: "x", LockTimeout: -1}, wantErr: "lock timeout"},
		{name: "negative max batch", cfg: store.Config{Path: "x", MaxBatch: -1}, wantErr: "max batch -1"},
		{name: "negative delay", cfg: store.Config{Path: "x", MaxBatchDelay: -1}, wantErr: "max batch delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				if _, err := store.Open(tt.cfg); err == nil {
					t.Fatal("Open accepted an invalid config")
				}
			}
		})
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := store.Open(store.Config{Path: filepath.Join(t.TempDir(), "missing", "orders.db")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	cfg := testConfig(t)
	first, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	MustPut(t, first, newRecord("1", schemas.StateSubmitting, fp("a")))

	second := cfg
	second.LockTimeout = 100 * time.Millisecond
	db, err := store.Open(second)
	if err == nil {
		_ = db.Close()
		t.Fatal("second Open succeeded while the first holds the file")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	t.Log(err)
	for _, want := range []string{cfg.Path, "in use by another consumer instance", filepath.Dir(cfg.Path)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, second)
	MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: "1"})
}

func TestInvalidKey(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	tests := []struct {
		name string
		key  schemas.OrderKey
	}{
		{"empty seller", schemas.OrderKey{OrderNo: "1"}},
		{"empty order number", schemas.OrderKey{Seller: testSeller}},
		{"NUL in seller", schemas.OrderKey{Seller: "a\x00b", OrderNo: "1"}},
		{"NUL in order number", schemas.OrderKey{Seller: testSeller, OrderNo: "1\x00"}},
		{"too long", schemas.OrderKey{Seller: testSeller, OrderNo: strings.Repeat("9", bolt.MaxKeySize)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord(tt.key.OrderNo, schemas.StateSubmitting, fp("a"))
			rec.Seller = tt.key.Seller
			if _, err := db.Put(t.Context(), rec); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Put = %v, want ErrInvalidKey", err)
			}
			if _, _, err := db.Get(t.Context(), tt.key); !errors.Is(err, store.ErrInvalidKey) {
				t.Errorf("Get = %v, want ErrInvalidKey", err)
			}
		})
	}
	checkCounts(t, db, nil)
}

func TestPutGetRoundTrip(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	key := schemas.OrderKey{Seller: testSeller, OrderNo: "ORD-1"}
	MustMissing(t, db, key)

	start := time.Now()
	rec := newRecord(key.OrderNo, schemas.StateSubmitting, fp("a"))
	rec.Warnings = []schemas.Violation{{Field: "order.buyerTaxNum", Message: "check character"}}
	rec.UpdatedAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // ignored
	got := MustPut(t, db, rec)
	if got.Version != 1 {
		t.Errorf("version = %d, want 1", got.Version)
	}
	if got.UpdatedAt.Location() != time.UTC || got.UpdatedAt.Before(start.Add(-time.Second)) {
		t.Errorf("UpdatedAt = %v, want now in UTC", got.UpdatedAt)
	}
	if stored := MustGet(t, db, key); !reflect.DeepEqual(stored, got) {
		t.Errorf("Get = %+v\nPut returned %+v", stored, got)
	}

	next := MustPut(t, db, issued(got, 1))
	if next.Version != 2 || next.UpdatedAt.Before(got.UpdatedAt) {
		t.Errorf("second write: version %d, UpdatedAt %v after %v", next.Version, next.UpdatedAt, got.UpdatedAt)
	}
	if stored := MustGet(t, db, key); !reflect.DeepEqual(stored, next) {
		t.Errorf("Get = %+v\nPut returned %+v", stored, next)
	}
}

// legalMoves is the state machine as the store's users rely on it, written
// out independently of schemas; "" is "no record".
var legalMoves = map[schemas.OrderState][]schemas.OrderState{
	"":                          schemas.OrderStates, // an order submitted without a claim is first saved with its answer
	schemas.StateSubmitting:     schemas.OrderStates,
	schemas.StateAccepted:       schemas.OrderStates,
	schemas.StateActionRequired: schemas.OrderStates,
	schemas.StateRejected:       {schemas.StateSubmitting, schemas.StateRejected}, // the same request written again
	schemas.StateFailed:         schemas.OrderStates,                              // a replayed dead letter resumes it
	schemas.StateIssued:         nil,                                              // final
}

// reach stores a record for orderNo in state from with fingerprint f, by
// legal moves, and returns it; from "" stores nothing.
func reach(t *testing.T, db *store.DB, orderNo string, from schemas.OrderState, f string) *schemas.OrderRecord {
	t.Helper()
	switch from {
	case "":
		return nil
	case schemas.StateRejected, schemas.StateFailed, schemas.StateSubmitting:
		rec := MustPut(t, db, newRecord(orderNo, from, f))
		return &rec
	default:
		rec := MustPut(t, db, newRecord(orderNo, schemas.StateSubmitting, f))
		rec.State = from
		rec = MustPut(t, db, rec)
		return &rec
	}
}

func TestTransitionTable(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	froms := append([]schemas.OrderState{""}, schemas.OrderStates...)
	for _, from := range froms {
		for _, to := range schemas.OrderStates {
			name := fmt.Sprintf("%s→%s", cmpOr(from, "none"), to)
			t.Run(name, func(t *testing.T) {
				orderNo := "T-" + name
				old := reach(t, db, orderNo, from, fp("first"))
				next := newRecord(orderNo, to, fp("first"))
				if old != nil {
					next = *old
					next.State = to
				}
				restart := (from == schemas.StateRejected || from == schemas.StateFailed) && to == schemas.StateSubmitting
				if restart {
					next.Fingerprint = fp("second")
				}
				legal := slices.Contains(legalMoves[from], to)
				if err := schemas.CheckTransition(old, &next); (err == nil) != legal {
					t.Fatalf("table says legal=%t, schemas.CheckTransition says %v", legal, err)
				}

				got, err := db.Put(t.Context(), next)
				key := next.Key()
				if legal {
					if err != nil {
						t.Fatalf("legal move refused: %v", err)
					}
					if stored := MustGet(t, db, key); stored.State != to || stored.Version != got.Version || got.Version != next.Version+1 {
						t.Fatalf("stored %s v%d, returned v%d; want %s v%d", stored.State, stored.Version, got.Version, to, next.Version+1)
					}
					return
				}
				if !errors.Is(err, schemas.ErrIllegalTransition) {
					t.Fatalf("illegal move: err = %v, want ErrIllegalTransition", err)
				}
				if old == nil {
					MustMissing(t, db, key)
				} else if stored := MustGet(t, db, key); !reflect.DeepEqual(stored, *old) {
					t.Fatalf("refused move changed the record: %+v", stored)
				}
			})
		}
	}
	t.Run("unknown state", func(t *testing.T) {
		_, err := db.Put(t.Context(), newRecord("T-unknown", "done", fp("first")))
		if !errors.Is(err, schemas.ErrIllegalTransition) {
			t.Fatalf("err = %v, want ErrIllegalTransition", err)
		}
	})
	t.Run("issued is final", func(t *testing.T) {
		rec := *reach(t, db, "T-final", schemas.StateIssued, fp("first"))
		for _, to := range schemas.OrderStates {
			for _, f := range []string{fp("first"), fp("second")} {
				next := rec
				next.State, next.Fingerprint = to, f
				if _, err := db.Put(t.Context(), next); !errors.Is(err, schemas.ErrIllegalTransition) {
					t.Errorf("issued → %s: err = %v, want ErrIllegalTransition", to, err)
				}
			}
		}
		if got := MustGet(t, db, rec.Key()); got.Version != rec.Version || got.State != schemas.StateIssued {
			t.Fatalf("issued record changed: %s v%d", got.State, got.Version)
		}
	})
}

func cmpOr(s schemas.OrderState, or string) string {
	if s == "" {
		return or
	}
	return string(s)
}

func TestFingerprintRules(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	tests := []struct {
		name     string
		from, to schemas.OrderState
		sameFP   bool
		wantErr  error // nil: allowed
	}{
		{"rejected same request cannot restart", schemas.StateRejected, schemas.StateSubmitting, true, schemas.ErrFingerprintMismatch},
		{"failed same request resumes", schemas.StateFailed, schemas.StateSubmitting, true, nil},
		{"failed resumes with its fingerprint", schemas.StateFailed, schemas.StateAccepted, true, nil},
		{"failed cannot resume with another fingerprint", schemas.StateFailed, schemas.StateAccepted, false, schemas.ErrFingerprintMismatch},
		{"rejected different request restarts", schemas.StateRejected, schemas.StateSubmitting, false, nil},
		{"failed different request restarts", schemas.StateFailed, schemas.StateSubmitting, false, nil},
		{"issued different request refused", schemas.StateIssued, schemas.StateSubmitting, false, schemas.ErrIllegalTransition},
		{"issued same request refused", schemas.StateIssued, schemas.StateSubmitting, true, schemas.ErrIllegalTransition},
		{"submitting keeps fingerprint", schemas.StateSubmitting, schemas.StateAccepted, false, schemas.ErrFingerprintMismatch},
		{"accepted keeps fingerprint", schemas.StateAccepted, schemas.StateIssued, false, schemas.ErrFingerprintMismatch},
		{"action_required keeps fingerprint", schemas.StateActionRequired, schemas.StateSubmitting, false, schemas.ErrFingerprintMismatch},
		{"submitting same fingerprint moves", schemas.StateSubmitting, schemas.StateAccepted, true, nil},
		{"action_required same fingerprint moves", schemas.StateActionRequired, schemas.StateIssued, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := *reach(t, db, "F-"+tt.name, tt.from, fp("first"))
			next := old
			next.State = tt.to
			if !tt.sameFP {
				next.Fingerprint = fp("second")
			}
			got, err := db.Put(t.Context(), next)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				if stored := MustGet(t, db, old.Key()); stored.Fingerprint != next.Fingerprint || stored.Version != got.Version {
					t.Fatalf("stored fingerprint %.8s v%d, want %.8s v%d", stored.Fingerprint, stored.Version, next.Fingerprint, got.Version)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if stored := MustGet(t, db, old.Key()); !reflect.DeepEqual(stored, old) {
				t.Fatalf("refused write changed the record: %+v", stored)
			}
		})
	}
}

func TestVersionConflict(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	stored := MustPut(t, db, newRecord("V-1", schemas.StateSubmitting, fp("a")))
	stored.State = schemas.StateAccepted
	stored = MustPut(t, db, stored) // version 2
	tests := []struct {
		name    string
		key     string
		version uint64
		wantMsg string
	}{
		{"create over a stored record", "V-1", 0, "stored version is 2 (accepted)"},
		{"stale version", "V-1", 1, "stored version is 2 (accepted)"},
		{"version from the future", "V-1", 7, "stored version is 2 (accepted)"},
		{"update of a missing record", "V-2", 3, "no record is stored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord(tt.key, schemas.StateAccepted, fp("a"))
			rec.Version = tt.version
			_, err := db.Put(t.Context(), rec)
			if !errors.Is(err, store.ErrVersionConflict) {
				t.Fatalf("err = %v, want ErrVersionConflict", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantMsg)
			}
		})
	}
	if got := MustGet(t, db, stored.Key()); !reflect.DeepEqual(got, stored) {
		t.Fatalf("conflicting writes changed the record: %+v", got)
	}
	MustMissing(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: "V-2"})
}

func TestTwoWritersSameVersion(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	base := MustPut(t, db, newRecord("W-1", schemas.StateSubmitting, fp("a")))
	for round := range 20 {
		var (
			start = make(chan struct{})
			wg    sync.WaitGroup
			errs  [2]error
		)
		for i := range 2 {
			next := base
			next.Attempts = 100*round + i // marks the writer
			wg.Go(func() {
				<-start
				_, errs[i] = db.Put(context.Background(), next)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner == -1:
				winner = i
			case err == nil:
				t.Fatalf("round %d: both writers won", round)
			case !errors.Is(err, store.ErrVersionConflict):
				t.Fatalf("round %d: loser err = %v, want ErrVersionConflict", round, err)
			}
		}
		if winner == -1 {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		got := MustGet(t, db, base.Key())
		if got.Version != base.Version+1 || got.Attempts != 100*round+winner {
			t.Fatalf("round %d: stored v%d attempts %d, want v%d attempts %d", round, got.Version, got.Attempts, base.Version+1, 100*round+winner)
		}
		base = got
	}
}

func TestCreateRace(t *testing.T) {
	for _, cfg := range []struct {
		name     string
		maxBatch int
		delay    time.Duration
	}{
		{"grouped", 0, 0},
		{"one batch", 64, time.Second},
		{"per transaction", 1, 0},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			c := testConfig(t)
			c.MaxBatch, c.MaxBatchDelay = cfg.maxBatch, cfg.delay
			db := MustOpen(t, c)
			const racers = 64
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				wins      []int
				conflicts int
			)
			for i := range racers {
				wg.Go(func() {
					rec := newRecord("RACE", schemas.StateSubmitting, fp("a"))
					rec.Attempts = i
					_, err := db.Put(context.Background(), rec)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins = append(wins, i)
					case errors.Is(err, store.ErrVersionConflict):
						conflicts++
					default:
						t.Errorf("racer %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if len(wins) != 1 || conflicts != racers-1 {
				t.Fatalf("%d wins %v, %d conflicts; want 1 and %d", len(wins), wins, conflicts, racers-1)
			}
			got := MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: "RACE"})
			if got.Version != 1 || got.Attempts != wins[0] {
				t.Fatalf("stored v%d attempts %d, want v1 attempts %d", got.Version, got.Attempts, wins[0])
			}
		})
	}
}

func TestGroupCommit(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBatch = 64
	cfg.MaxBatchDelay = time.Second // a batch closes as soon as 64 writes are in it
	db := MustOpen(t, cfg)
	if ct := db.Stats().CommitTime; ct != 0 {
		t.Fatalf("commit time %v before any write, want 0", ct)
	}
	const writers = 64
	start := time.Now()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if _, err := db.Put(context.Background(), newRecord(fmt.Sprintf("G-%02d", i), schemas.StateSubmitting, fp("a"))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := db.Stats()
	if st.Requests != writers || st.Commits > writers/4 {
		t.Fatalf("stats %+v: want %d writes in a few commits", st, writers)
	}
	if took := time.Since(start); st.CommitTime <= 0 || st.CommitTime > took {
		t.Fatalf("commit time %v, want more than 0 and at most the %v the writes took", st.CommitTime, took)
	}
	// Every write waited for the commit that carried it, so the writers'
	// time adds up to at least the commits' time.
	if took := time.Since(start); st.Puts != writers || st.PutTime < st.CommitTime || st.PutTime > writers*took {
		t.Fatalf("puts %d taking %v (commits took %v, the run %v): want %d puts, at least the commit time and at most %d × the run",
			st.Puts, st.PutTime, st.CommitTime, took, writers, writers)
	}
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateSubmitting: writers})
}

// TestPutStats checks that Stats counts every Put the commit goroutine
// answered, a refused one too, and none it never took.
func TestPutStats(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	ctx := context.Background()
	rec := newRecord("PS-1", schemas.StateSubmitting, fp("a"))
	if _, err := db.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put(ctx, rec); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("second create: %v, want ErrVersionConflict", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Put(cancelled, newRecord("PS-2", schemas.StateSubmitting, fp("a"))); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Put(ctx, newRecord("PS-3", schemas.StateSubmitting, fp("a"))); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
	if st := db.Stats(); st.Puts != 2 || st.PutTime <= 0 {
		t.Fatalf("stats %+v: want 2 puts (one stored, one refused) taking more than 0", st)
	}
}

// TestPutPatient: a patient write is checked like a Put, commits on its own
// when no other write comes, and is on disk when it returns.
func TestPutPatient(t *testing.T) {
	cfg := store.Config{Path: filepath.Join(t.TempDir(), "orders.db")} // fsync on
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	claim := MustPut(t, db, newRecord("PP-1", schemas.StateSubmitting, fp("a")))
	before := db.Stats()
	stored, err := db.PutPatient(ctx, issued(claim, 1))
	if err != nil {
		t.Fatal(err)
	}
	if stored.Version != claim.Version+1 || stored.State != schemas.StateIssued {
		t.Fatalf("stored v%d %s, want v%d issued", stored.Version, stored.State, claim.Version+1)
	}
	if _, err := db.PutPatient(ctx, issued(claim, 2)); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("patient write of a stale version: %v, want ErrVersionConflict", err)
	}
	after := db.Stats()
	if after.Commits != before.Commits+2 || after.Requests != before.Requests+2 || after.Puts != before.Puts+2 ||
		after.PatientPuts != before.PatientPuts+2 || after.PatientPutTime <= before.PatientPutTime {
		t.Fatalf("stats %+v after %+v: want two more commits of one request each (alone, each committed after its wait) and two more puts, both patient", after, before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, cfg)
	if got := MustGet(t, db, claim.Key()); got.State != schemas.StateIssued || got.Version != stored.Version {
		t.Fatalf("after reopening: %s v%d, want issued v%d", got.State, got.Version, stored.Version)
	}
}

// TestConcurrentWriters runs many goroutines over many keys with mixed
// transitions, and read-modify-write loops on shared keys that must lose no
// update.
func TestConcurrentWriters(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	const (
		workers    = 32
		ownKeys    = 12
		sharedKeys = 4
		increments = 10
	)
	paths := [][]schemas.OrderState{
		{schemas.StateSubmitting, schemas.StateAccepted, schemas.StateIssued},
		{schemas.StateSubmitting, schemas.StateRejected, schemas.StateSubmitting, schemas.StateFailed},
		{schemas.StateSubmitting, schemas.StateActionRequired, schemas.StateAccepted},
		{schemas.StateFailed},
		{schemas.StateSubmitting, schemas.StateActionRequired, schemas.StateIssued},
		{schemas.StateRejected, schemas.StateSubmitting},
	}
	for i := range sharedKeys {
		MustPut(t, db, newRecord(fmt.Sprintf("S-%d", i), schemas.StateSubmitting, fp("shared")))
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range ownKeys {
				path := paths[(w+k)%len(paths)]
				rec := newRecord(fmt.Sprintf("O-%02d-%02d", w, k), path[0], fp("first"))
				var err error
				for i, state := range path {
					if i > 0 {
						if rec.State == schemas.StateRejected || rec.State == schemas.StateFailed {
							rec.Fingerprint = fp(fmt.Sprintf("retry-%d", i))
						}
						rec.State = state
					}
					if rec, err = db.Put(ctx, rec); err != nil {
						t.Errorf("worker %d: %v", w, err)
						return
					}
				}
				// Shared keys: one increment per own key, retried on conflict.
				shared := schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("S-%d", (w+k)%sharedKeys)}
				for {
					cur, _, err := db.Get(ctx, shared)
					if err != nil {
						t.Error(err)
						return
					}
					cur.Attempts++
					if _, err = db.Put(ctx, cur); err == nil {
						break
					} else if !errors.Is(err, store.ErrVersionConflict) {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	want := map[schemas.OrderState]int{schemas.StateSubmitting: sharedKeys}
	for w := range workers {
		for k := range ownKeys {
			path := paths[(w+k)%len(paths)]
			final := path[len(path)-1]
			want[final]++
			got := MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("O-%02d-%02d", w, k)})
			if got.State != final || got.Version != uint64(len(path)) {
				t.Errorf("O-%02d-%02d: %s v%d, want %s v%d", w, k, got.State, got.Version, final, len(path))
			}
		}
	}
	totalIncrements := 0
	for i := range sharedKeys {
		got := MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("S-%d", i)})
		totalIncrements += got.Attempts - 1
		if got.Version != uint64(got.Attempts) {
			t.Errorf("S-%d: version %d after %d attempts: an update was lost", i, got.Version, got.Attempts)
		}
	}
	if totalIncrements != workers*ownKeys {
		t.Errorf("shared keys got %d increments, want %d", totalIncrements, workers*ownKeys)
	}
	checkCounts(t, db, want)
	for _, s := range schemas.OrderStates {
		recs := MustScan(t, db, s)
		if len(recs) != want[s] {
			t.Errorf("scan %s: %d records, want %d", s, len(recs), want[s])
		}
		for _, r := range recs {
			if r.State != s {
				t.Errorf("scan %s returned %s in state %s", s, r.Key(), r.State)
			}
		}
	}
}

func TestScanAndCounts(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	checkCounts(t, db, nil)

	// Keys sort by seller, then order number, byte-wise: seller "A" comes
	// before "AB" whatever the order numbers.
	keys := []schemas.OrderKey{
		{Seller: "AB", OrderNo: "1"},
		{Seller: "A", OrderNo: "2"},
		{Seller: "B", OrderNo: "0"},
		{Seller: "A", OrderNo: "10"},
		{Seller: "A", OrderNo: "1"},
	}
	recs := make(map[schemas.OrderKey]schemas.OrderRecord)
	for _, k := range keys {
		rec := newRecord(k.OrderNo, schemas.StateSubmitting, fp("a"))
		rec.Seller = k.Seller
		recs[k] = MustPut(t, db, rec)
	}
	rejected := MustPut(t, db, newRecord("R-1", schemas.StateRejected, fp("a")))
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateSubmitting: 5, schemas.StateRejected: 1})

	wantOrder := []string{"A:1", "A:10", "A:2", "AB:1", "B:0"}
	var gotOrder []string
	for _, r := range MustScan(t, db, schemas.StateSubmitting) {
		gotOrder = append(gotOrder, r.Key().String())
		if !reflect.DeepEqual(r, recs[r.Key()]) {
			t.Errorf("scan returned %+v, stored %+v", r, recs[r.Key()])
		}
	}
	if !slices.Equal(gotOrder, wantOrder) {
		t.Fatalf("scan order %v, want %v", gotOrder, wantOrder)
	}

	// Move one to issued, restart the rejected one.
	moved := MustPut(t, db, issued(recs[keys[2]], 1))
	rejected.State, rejected.Fingerprint = schemas.StateSubmitting, fp("b")
	MustPut(t, db, rejected)
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateSubmitting: 5, schemas.StateIssued: 1})
	if got := MustScan(t, db, schemas.StateIssued); len(got) != 1 || !reflect.DeepEqual(got[0], moved) {
		t.Fatalf("scan issued = %+v, want [%+v]", got, moved)
	}
	if got := MustScan(t, db, schemas.StateRejected); len(got) != 0 {
		t.Fatalf("scan rejected = %+v, want none", got)
	}

	t.Run("stops when fn returns false", func(t *testing.T) {
		calls := 0
		err := db.Scan(t.Context(), schemas.StateSubmitting, func(schemas.OrderRecord) bool {
			calls++
			return false
		})
		if err != nil || calls != 1 {
			t.Fatalf("Scan = %v after %d calls, want nil after 1", err, calls)
		}
	})
	t.Run("unknown state", func(t *testing.T) {
		if err := db.Scan(t.Context(), "done", func(schemas.OrderRecord) bool { return true }); err == nil {
			t.Fatal("Scan of an unknown state succeeded")
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := db.Scan(ctx, schemas.StateSubmitting, func(schemas.OrderRecord) bool { return true })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan = %v, want context.Canceled", err)
		}
		if _, err := db.Counts(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Counts = %v, want context.Canceled", err)
		}
	})
}

// TestScanManyWhileWriting scans more records than one read chunk and
// moves each one from inside fn, which must neither deadlock nor skip or
// repeat records.
func TestScanManyWhileWriting(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	const n = 700
	for i := range n {
		// accepted cannot be created: create as submitting, then move.
		rec := MustPut(t, db, newRecord(fmt.Sprintf("M-%04d", i), schemas.StateSubmitting, fp("a")))
		rec.State = schemas.StateAccepted
		MustPut(t, db, rec)
	}
	var seen []string
	err := db.Scan(t.Context(), schemas.StateAccepted, func(r schemas.OrderRecord) bool {
		seen = append(seen, r.OrderNo)
		if _, err := db.Put(t.Context(), issued(r, 1)); err != nil {
			t.Errorf("put from scan: %v", err)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n || !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != n {
		t.Fatalf("scan saw %d records (sorted %t), want %d distinct in order", len(seen), slices.IsSorted(seen), n)
	}
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateIssued: n})
}

func TestPrune(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	ctx := t.Context()
	move := func(orderNo string, states ...schemas.OrderState) schemas.OrderRecord {
		rec := MustPut(t, db, newRecord(orderNo, states[0], fp("a")))
		for _, s := range states[1:] {
			rec.State = s
			rec = MustPut(t, db, rec)
		}
		return rec
	}
	const oldRejected = 1100 // more than one prune chunk
	for i := range oldRejected {
		move(fmt.Sprintf("OLD-R-%04d", i), schemas.StateRejected)
	}
	old := map[string]bool{ // order number → pruned
		"OLD-F-1": false, "OLD-F-2": false, // failed is resumable, not finished
		"OLD-I": false, "OLD-S": false, "OLD-A": false, "OLD-AR": false, "OLD-RESTARTED": false,
	}
	move("OLD-F-1", schemas.StateFailed)
	move("OLD-F-2", schemas.StateSubmitting, schemas.StateFailed)
	move("OLD-I", schemas.StateSubmitting, schemas.StateIssued)
	move("OLD-S", schemas.StateSubmitting)
	move("OLD-A", schemas.StateSubmitting, schemas.StateAccepted)
	move("OLD-AR", schemas.StateSubmitting, schemas.StateActionRequired)
	restarted := move("OLD-RESTARTED", schemas.StateFailed)
	// A split order that failed in part: rejected, with the invoices that
	// were issued. Its record is kept like an issued one.
	part := issued(MustPut(t, db, newRecord("OLD-PART", schemas.StateSubmitting, fp("a"))), 1)
	part.State = schemas.StateRejected
	MustPut(t, db, part)
	old["OLD-PART"] = false

	cutoff := time.Now()
	for !time.Now().After(cutoff) {
		// Everything written from here on is after cutoff.
	}
	restarted.State, restarted.Fingerprint = schemas.StateSubmitting, fp("b")
	restarted = MustPut(t, db, restarted)
	restarted.State = schemas.StateRejected
	MustPut(t, db, restarted) // rejected again, but recently
	for _, no := range []string{"NEW-R", "NEW-F"} {
		old[no] = false
	}
	move("NEW-R", schemas.StateRejected)
	move("NEW-F", schemas.StateFailed)

	n, err := db.Prune(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if want := oldRejected; n != want {
		t.Fatalf("Prune deleted %d, want %d", n, want)
	}
	for no, pruned := range old {
		key := schemas.OrderKey{Seller: testSeller, OrderNo: no}
		if pruned {
			MustMissing(t, db, key)
		} else {
			MustGet(t, db, key)
		}
	}
	MustMissing(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: "OLD-R-0000"})
	checkCounts(t, db, map[schemas.OrderState]int{
		schemas.StateIssued: 1, schemas.StateSubmitting: 1, schemas.StateAccepted: 1, schemas.StateActionRequired: 1,
		schemas.StateRejected: 3, schemas.StateFailed: 3,
	})
	if n, err := db.Prune(ctx, cutoff); n != 0 || err != nil {
		t.Fatalf("second Prune = %d, %v; want 0, nil", n, err)
	}
	// A pruned order can be created again.
	MustPut(t, db, newRecord("OLD-R-0000", schemas.StateSubmitting, fp("a")))
}

// TestPruneRacesRestart prunes while another goroutine restarts the same
// records: a restart that succeeded must never be pruned, and a record
// pruned first must make the restart fail with a version conflict.
func TestPruneRacesRestart(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	ctx := t.Context()
	const n = 1500
	for i := range n {
		MustPut(t, db, newRecord(fmt.Sprintf("PR-%04d", i), schemas.StateRejected, fp("a")))
	}
	cutoff := time.Now().Add(time.Hour)

	restartedOK := make(map[string]bool)
	var (
		wg     sync.WaitGroup
		pruned int
	)
	wg.Go(func() {
		var err error
		if pruned, err = db.Prune(ctx, cutoff); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		for i := n - 1; i >= 0; i-- { // from the end, to meet Prune half way
			key := schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("PR-%04d", i)}
			rec, ok, err := db.Get(ctx, key)
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				continue
			}
			rec.State, rec.Fingerprint = schemas.StateSubmitting, fp("b")
			_, err = db.Put(ctx, rec)
			switch {
			case err == nil:
				restartedOK[key.OrderNo] = true
			case !errors.Is(err, store.ErrVersionConflict):
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	missing := 0
	for i := range n {
		key := schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("PR-%04d", i)}
		rec, ok, err := db.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case restartedOK[key.OrderNo] && (!ok || rec.State != schemas.StateSubmitting):
			t.Errorf("%s: restart succeeded but record is %v (found %t)", key, rec.State, ok)
		case !restartedOK[key.OrderNo] && ok:
			t.Errorf("%s: neither restarted nor pruned: %s", key, rec.State)
		case !ok:
			missing++
		}
	}
	if missing != pruned {
		t.Errorf("Prune reported %d, %d records are gone", pruned, missing)
	}
	t.Logf("pruned %d, restarted %d", pruned, len(restartedOK))
}

func TestReopenKeepsEverything(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoSync = false
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	want := make(map[schemas.OrderKey]schemas.OrderRecord, n)
	counts := make(map[schemas.OrderState]int)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				rec := MustPut(t, db, newRecord(fmt.Sprintf("D-%04d", i), schemas.StateSubmitting, fp("a")))
				switch i % 3 {
				case 1:
					rec = MustPut(t, db, issued(rec, i))
				case 2:
					rec.State = schemas.StateRejected
					rec = MustPut(t, db, rec)
				}
				mu.Lock()
				want[rec.Key()] = rec
				counts[rec.State]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = MustOpen(t, cfg)
	for key, rec := range want {
		if got := MustGet(t, db, key); !reflect.DeepEqual(got, rec) {
			t.Fatalf("after reopen %s = %+v\nwant %+v", key, got, rec)
		}
	}
	checkCounts(t, db, counts)
}

func TestWriteToIsAConsistentBackup(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	ctx := t.Context()
	const n = 200
	want := make(map[schemas.OrderKey]schemas.OrderRecord, n)
	for i := range n {
		rec := MustPut(t, db, newRecord(fmt.Sprintf("BK-%04d", i), schemas.StateSubmitting, fp("a")))
		if i%2 == 0 {
			rec = MustPut(t, db, issued(rec, i))
		}
		want[rec.Key()] = rec
	}

	// Writers keep going during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rec, err := db.Put(ctx, newRecord(fmt.Sprintf("LIVE-%d-%06d", w, i), schemas.StateSubmitting, fp("a")))
				if err == nil {
					_, err = db.Put(ctx, issued(rec, i))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	written, err := db.WriteTo(f)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != written {
		t.Fatalf("backup is %v bytes (%v), WriteTo said %d", fi.Size(), err, written)
	}

	// It is a sound bbolt file...
	raw, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("backup fails bbolt's check: %v", err)
	}

	// ...that opens as a store with the same records and a consistent index.
	backup := MustOpen(t, store.Config{Path: path, NoSync: true})
	for key, rec := range want {
		if got := MustGet(t, backup, key); !reflect.DeepEqual(got, rec) {
			t.Fatalf("backup %s = %+v\nwant %+v", key, got, rec)
		}
	}
	counts := MustCounts(t, backup)
	for _, s := range schemas.OrderStates {
		recs := MustScan(t, backup, s)
		if len(recs) != counts[s] {
			t.Errorf("backup: scan %s found %d, counts say %d", s, len(recs), counts[s])
		}
		for _, r := range recs {
			if r.State != s {
				t.Errorf("backup: %s indexed as %s but is %s", r.Key(), s, r.State)
			}
		}
	}
	if counts[schemas.StateIssued] < n/2 {
		t.Errorf("backup counts %v, want at least %d issued", counts, n/2)
	}
}

func TestContextCancelled(t *testing.T) {
	db := MustOpen(t, testConfig(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rec := newRecord("C-1", schemas.StateSubmitting, fp("a"))
	if _, err := db.Put(ctx, rec); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put = %v, want context.Canceled", err)
	}
	if _, _, err := db.Get(ctx, rec.Key()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	if _, err := db.Prune(ctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune = %v, want context.Canceled", err)
	}
	MustMissing(t, db, rec.Key())
}

func TestClosed(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := MustPut(t, db, newRecord("X-1", schemas.StateSubmitting, fp("a")))
	if err := db.Healthy(); err != nil {
		t.Fatalf("Healthy = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	ctx := t.Context()
	checks := []struct {
		name string
		err  error
	}{
		{"Put", func() error { _, err := db.Put(ctx, issued(rec, 1)); return err }()},
		{"Get", func() error { _, _, err := db.Get(ctx, rec.Key()); return err }()},
		{"Scan", db.Scan(ctx, schemas.StateSubmitting, func(schemas.OrderRecord) bool { return true })},
		{"Counts", func() error { _, err := db.Counts(ctx); return err }()},
		{"WriteTo", func() error { _, err := db.WriteTo(new(strings.Builder)); return err }()},
		{"Prune", func() error { _, err := db.Prune(ctx, time.Now()); return err }()},
		{"Healthy", db.Healthy()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, c.err)
		}
	}
}

// TestCloseDrainsWrites closes the store while 64 writers are busy: every
// Put either succeeds, and is then in the file, or fails with ErrClosed.
func TestCloseDrainsWrites(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []schemas.OrderRecord
	)
	started := make(chan struct{}, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec, err := db.Put(context.Background(), newRecord(fmt.Sprintf("CD-%02d-%05d", w, i), schemas.StateSubmitting, fp("a")))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				mu.Lock()
				done = append(done, rec)
				mu.Unlock()
				if i == 3 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 64 {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	db = MustOpen(t, cfg)
	for _, rec := range done {
		if got := MustGet(t, db, rec.Key()); got.Version != rec.Version {
			t.Fatalf("%s: v%d after reopen, want v%d", rec.Key(), got.Version, rec.Version)
		}
	}
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateSubmitting: len(done)})
}

// TestConcurrentCloseWaitsForTheFirst: a Close made while another is still
// committing the last writes returns only once the file is closed, so that
// what its caller does next (open the file again, remove the directory)
// finds the store shut.
func TestConcurrentCloseWaitsForTheFirst(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoSync = false // commits that take a while, for the second Close to overtake
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := range 10_000 {
				if _, err := db.Put(context.Background(), newRecord(fmt.Sprintf("CC-%02d-%05d", w, i), schemas.StateSubmitting, fp("a"))); err != nil {
					return
				}
				if i == 3 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 64 {
		<-started
	}
	first := make(chan error, 1)
	go func() { first <- db.Close() }()
	for !errors.Is(db.Healthy(), store.ErrClosed) {
		runtime.Gosched()
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	again := cfg
	again.LockTimeout = time.Millisecond
	reopened, err := store.Open(again)
	if err != nil {
		t.Fatalf("open after the second Close returned: %v", err)
	}
	if err := reopened.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("first Close = %v", err)
	}
	wg.Wait()
}

func TestCloseStopsCommitGoroutine(t *testing.T) {
	// The commit goroutine is found by its stack rather than by counting
	// goroutines: one left by an earlier test may end at any moment.
	running := func() bool {
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "store.(*DB).run(")
	}
	if running() {
		t.Fatal("a commit goroutine is running before Open")
	}
	db, err := store.Open(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	MustPut(t, db, newRecord("L-1", schemas.StateSubmitting, fp("a")))
	if !running() {
		t.Fatal("no commit goroutine with the store open")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if running() {
		t.Fatal("the commit goroutine is still running after Close")
	}
}

func TestProbeCommits(t *testing.T) {
	db := MustOpen(t, store.Config{Path: filepath.Join(t.TempDir(), "orders.db")})
	before := db.Stats().Commits
	if err := db.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	if db.Stats().Commits != before+1 {
		t.Fatalf("probe did not commit: %+v", db.Stats())
	}
	if err := db.Healthy(); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	if err := db.Probe(t.Context()); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("probe after close: %v", err)
	}
}

// TestBusyBatchDelay checks who waits for BusyBatchDelay: concurrent writers
// arriving fast are grouped into few commits, and a single writer, which has
// nobody to wait for, never waits (with an hour's delay its writes would not
// finish).
func TestBusyBatchDelay(t *testing.T) {
	t.Run("one writer", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.BusyBatchDelay = time.Hour
		db := MustOpen(t, cfg)
		const writes = 500
		for i := range writes {
			if _, err := db.Put(context.Background(), newRecord(fmt.Sprintf("S-%04d", i), schemas.StateSubmitting, fp("a"))); err != nil {
				t.Fatal(err)
			}
		}
		if st := db.Stats(); st.Commits != writes {
			t.Fatalf("stats %+v: want one commit for each of %d writes", st, writes)
		}
	})
	t.Run("concurrent writers", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.BusyBatchDelay = 20 * time.Millisecond
		db := MustOpen(t, cfg)
		writes, commits := busyWriters(t, db, 32)
		// Waiting 20 ms a commit, each one carries every writer; without
		// the wait they average 10 to 20 here.
		if commits == 0 || writes < 24*commits {
			t.Fatalf("%d writes in %d commits after the warm-up: want at least 24 a commit", writes, commits)
		}
	})
	t.Run("every writer in the batch", func(t *testing.T) {
		// With 8 writers a batch never holds more than 8 writes: once it
		// does, waiting 100 ms more for writers who cannot come is wasted,
		// and the commit goes ahead.
		cfg := testConfig(t)
		cfg.BusyBatchDelay = 100 * time.Millisecond
		db := MustOpen(t, cfg)
		writes, commits := busyWriters(t, db, 8)
		if commits < 30 {
			t.Fatalf("%d writes in %d commits in 300 ms: the batches waited out the 100 ms delay with every writer in them", writes, commits)
		}
	})
}

// busyWriters runs writers goroutines that write to db until stopped, and
// returns the writes and commits of 300 ms of it after a warm-up: the
// store's pace needs a first window of writes before it counts as busy.
func busyWriters(t *testing.T, db *store.DB, writers int) (writes, commits int64) {
	t.Helper()
	const most = 10000 // writes per writer at most
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; i < most && !stop.Load(); i++ {
				if _, err := db.Put(context.Background(), newRecord(fmt.Sprintf("C-%02d-%05d", w, i), schemas.StateSubmitting, fp("a"))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(150 * time.Millisecond)
	before := db.Stats()
	time.Sleep(300 * time.Millisecond)
	after := db.Stats()
	stop.Store(true)
	wg.Wait()
	return after.Requests - before.Requests, after.Commits - before.Commits
}

// TestMarks checks that a mark starts at 0, only goes up when raised, goes
// anywhere when set, is kept apart from other marks and survives a reopen.
func TestMarks(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.NoSync = false
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mustMark := func(db *store.DB, name string, want uint64) {
		t.Helper()
		got, err := db.Mark(name)
		if err != nil || got != want {
			t.Fatalf("Mark(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	mustMark(db, "a", 0)
	for _, v := range []uint64{5, 300, 7, 300} {
		if err := db.RaiseMark(ctx, "a", v); err != nil {
			t.Fatalf("RaiseMark(a, %d): %v", v, err)
		}
	}
	mustMark(db, "a", 300)
	mustMark(db, "b", 0)
	if err := db.RaiseMark(ctx, "b", 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := db.RaiseMark(ctx, "", 1); err == nil {
		t.Fatal("RaiseMark with no name: want an error")
	}
	if err := db.SetMark(ctx, "b", 3); err != nil {
		t.Fatal(err)
	}
	mustMark(db, "b", 3)
	if err := db.SetMark(ctx, "b", 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.RaiseMark(ctx, "a", 400); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("RaiseMark after Close = %v, want ErrClosed", err)
	}
	db = MustOpen(t, cfg)
	mustMark(db, "a", 300)
	mustMark(db, "b", 1<<40)
}

// TestConcurrentProbesTakeTurns: Probes made at the same time (a readiness
// check beside the consumer's probe loop) share the scratch file; each must
// find the room it wrote, not another's truncation or removal of it.
func TestConcurrentProbesTakeTurns(t *testing.T) {
	cfg := testConfig(t)
	cfg.ProbeHeadroom = 256 << 10
	db := MustOpen(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 8*20)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if err := db.Probe(t.Context()); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := db.Healthy(); err != nil {
		t.Fatalf("Healthy after the probes: %v", err)
	}
}

// rawUpdate closes db, changes its file with update as damage on disk
// would (bbolt under the store), and opens the store again.
func rawUpdate(t *testing.T, cfg store.Config, db *store.DB, update func(*bolt.Tx) error) *store.DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(update)
	if cerr := raw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return MustOpen(t, cfg)
}

// damage overwrites the stored values of the orders named in values.
func damage(t *testing.T, cfg store.Config, db *store.DB, values map[string][]byte) *store.DB {
	t.Helper()
	return rawUpdate(t, cfg, db, func(tx *bolt.Tx) error {
		for no, v := range values {
			if err := tx.Bucket([]byte("orders")).Put([]byte(testSeller+"\x00"+no), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// A damaged compressed record whose length header claims 4 GiB fails its
// read without allocating what it claims.
func TestDamagedRecordLengthIsNotAllocated(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	MustPut(t, db, newRecord("BIG-1", schemas.StateSubmitting, fp("a")))
	// The compressed marker, then the varint 0xffffffff.
	db = damage(t, cfg, db, map[string][]byte{"BIG-1": {0, 0xff, 0xff, 0xff, 0xff, 0x0f}})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, gerr := db.Get(context.Background(), schemas.OrderKey{Seller: testSeller, OrderNo: "BIG-1"})
	runtime.ReadMemStats(&after)
	if gerr == nil {
		t.Fatal("Get of a damaged record succeeded")
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 64<<20 {
		t.Fatalf("reading a 6-byte damaged record allocated %d MiB", a>>20)
	}
}

// A damaged rejected record is passed over by Prune, which deletes the
// prunable records after it.
func TestPrunePassesOverADamagedRecord(t *testing.T) {
	cfg := testConfig(t)
	db, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, no := range []string{"R-1", "R-2"} {
		MustPut(t, db, newRecord(no, schemas.StateRejected, fp(no)))
	}
	db = damage(t, cfg, db, map[string][]byte{"R-1": []byte("{not a record")})
	n, err := db.Prune(context.Background(), time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want R-2 deleted", n, err)
	}
	if _, found, _ := db.Get(context.Background(), schemas.OrderKey{Seller: testSeller, OrderNo: "R-2"}); found {
		t.Fatal("R-2 is still there")
	}
}
