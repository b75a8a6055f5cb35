package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestHeadsAreUsedOnlyForTheBytesTheyWereWrittenWith: a record the store
// committed is checked from its remembered head when it is replaced, and a
// record changed behind the store's back (here written straight into the
// file) is decoded, so that its version and state are the ones that count.
func TestHeadsAreUsedOnlyForTheBytesTheyWereWrittenWith(t *testing.T) {
	db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := t.Context()
	rec := schemas.OrderRecord{Seller: "91310000MA1FL0XX1X", OrderNo: "A", Kind: schemas.KindIssue,
		State: schemas.StateSubmitting, Fingerprint: "f1"}
	key, err := encodeKey(rec.Key())
	if err != nil {
		t.Fatal(err)
	}
	stored := func() []byte {
		var v []byte
		if err := db.bolt.View(func(tx *bolt.Tx) error {
			v = append(v, tx.Bucket(bucketOrders).Get(key)...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}

	claimed, err := db.Put(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	// The commit goroutine is idle once Put has returned: reading heads
	// here does not race with it.
	h, ok := db.heads.get(key, stored())
	if !ok || h.version != claimed.Version || h.state != schemas.StateSubmitting || h.fingerprint != "f1" {
		t.Fatalf("head after the claim: %+v (found %t), want v%d submitting f1", h, ok, claimed.Version)
	}
	done := claimed
	done.State = schemas.StateAccepted
	if done, err = db.Put(ctx, done); err != nil {
		t.Fatalf("replace checked from its head: %v", err)
	}
	stale := claimed // based on the claim's version, replaced since
	stale.State = schemas.StateFailed
	if _, err := db.Put(ctx, stale); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("write based on a replaced version: %v, want %v", err, ErrVersionConflict)
	}

	// Behind the store's back: the same order issued, at version 7.
	behind := done
	behind.Version, behind.State = 7, schemas.StateIssued
	data, err := encodeRecord(&behind)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketOrders).Put(key, data) }); err != nil {
		t.Fatal(err)
	}
	if _, ok := db.heads.get(key, stored()); ok {
		t.Fatal("heads answered for bytes the store did not write")
	}
	if _, err := db.Put(ctx, done); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("write based on version %d over a stored version 7: %v, want %v", done.Version, err, ErrVersionConflict)
	}
	// Based on the stored version, the write meets the stored state: issued
	// is final.
	after := behind
	after.State = schemas.StateFailed
	if _, err := db.Put(ctx, after); !errors.Is(err, schemas.ErrIllegalTransition) {
		t.Fatalf("write over the stored issued record: %v, want %v", err, schemas.ErrIllegalTransition)
	}
}

// TestHeadsGenerations: a head is remembered for at least headsGeneration
// writes after its own, and forgotten after two generations.
func TestHeadsGenerations(t *testing.T) {
	var h heads
	put := func(i int) {
		k := fmt.Appendf(nil, "k%d", i)
		h.add([]writtenHead{{key: k, head: newHead(k, &schemas.OrderRecord{Version: uint64(i)})}})
	}
	has := func(i int) bool {
		k := fmt.Appendf(nil, "k%d", i)
		got, ok := h.get(k, k)
		return ok && got.version == uint64(i)
	}
	put(0)
	for i := 1; i <= headsGeneration; i++ {
		put(i)
	}
	if !has(0) || !has(headsGeneration) {
		t.Fatalf("heads forgot a record within %d writes", headsGeneration)
	}
	for i := headsGeneration + 1; i <= 3*headsGeneration; i++ {
		put(i)
	}
	if has(0) {
		t.Fatal("heads kept a record for more than two generations")
	}
	if n := len(h.cur) + len(h.prev); n > 2*headsGeneration {
		t.Fatalf("heads holds %d records, more than two generations of %d", n, headsGeneration)
	}
}
