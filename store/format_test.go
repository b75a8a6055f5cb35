package store_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// writeVersion1 writes a store file as layout version 1 wrote it: plain
// JSON records, the state index, and format "1".
func writeVersion1(t *testing.T, path string, recs ...schemas.OrderRecord) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		if err := meta.Put([]byte("format"), []byte("1")); err != nil {
			return err
		}
		orders, _ := tx.CreateBucket([]byte("orders"))
		states, _ := tx.CreateBucket([]byte("states"))
		for _, s := range schemas.OrderStates {
			if _, err := states.CreateBucket([]byte(s)); err != nil {
				return err
			}
		}
		for _, rec := range recs {
			v, err := json.Marshal(rec)
			if err != nil {
				return err
			}
			k := []byte(rec.Seller + "\x00" + rec.OrderNo)
			if err := orders.Put(k, v); err != nil {
				return err
			}
			if err := states.Bucket([]byte(rec.State)).Put(k, []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readFormat returns the layout version and the first bytes of the record
// stored under key.
func readFormat(t *testing.T, path string, key schemas.OrderKey) (format string, first byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket([]byte("meta")).Get([]byte("format")))
		if v := tx.Bucket([]byte("orders")).Get([]byte(key.Seller + "\x00" + key.OrderNo)); len(v) > 0 {
			first = v[0]
		}
		return nil
	})
	return format, first
}

// TestVersion1FileIsReadAndUpgraded: a file of plain JSON records (layout
// version 1) opens, its records read and move on as before, new writes are
// compressed, and the file is marked version 2 so that an older build
// refuses it rather than misreading it.
func TestVersion1FileIsReadAndUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	old := newRecord("V1-1", schemas.StateSubmitting, fp("v1"))
	old.Version = 3
	writeVersion1(t, path, old)

	db := MustOpen(t, store.Config{Path: path})
	got, found, err := db.Get(t.Context(), old.Key())
	if err != nil || !found || got.Version != 3 || got.State != schemas.StateSubmitting || got.Fingerprint != old.Fingerprint {
		t.Fatalf("version 1 record read as %+v, %v, %v", got, found, err)
	}
	if _, err := db.Put(t.Context(), issued(got, 1)); err != nil {
		t.Fatalf("move a version 1 record on: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	format, first := readFormat(t, path, old.Key())
	if format != "2" || first == '{' {
		t.Fatalf("after a write: format %q, record starts with %q; want format 2 and a compressed record", format, first)
	}
	db = MustOpen(t, store.Config{Path: path})
	got, found, err = db.Get(t.Context(), old.Key())
	if err != nil || !found || got.State != schemas.StateIssued || len(got.Invoices) != 1 || got.Invoices[0].TotalAmount.String() != "113.00" {
		t.Fatalf("compressed record read back as %+v, %v, %v", got, found, err)
	}
}

// TestUnknownFormatIsRefused: a file from a newer build is not opened.
func TestUnknownFormatIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.db")
	writeVersion1(t, path)
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte("3")) })
	_ = b.Close()
	if db, err := store.Open(store.Config{Path: path}); err == nil {
		_ = db.Close()
		t.Fatal("a layout version 3 file was opened")
	}
}
