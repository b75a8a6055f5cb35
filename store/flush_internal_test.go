package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/fapiaohub/invoicer/schemas"
	bolt "go.etcd.io/bbolt"
)

// metaPage is a meta page as it was on disk before a write whose flush
// failed: a crash may leave it so.
type metaPage struct {
	off  int64
	data []byte
}

// failMetaFlushes makes the next n writes of a meta page to db's file reach
// the file and then report failure, as an fdatasync failing after the
// page's write does, and returns the pages as they were before each.
//
// bbolt has no hook for its writes or flushes, and a disk failing only its
// flushes cannot be had in a test: the test sets bbolt's unexported
// writeAt, and fails when bbolt no longer has one.
func failMetaFlushes(t *testing.T, db *DB, n int) *[]metaPage {
	t.Helper()
	f := reflect.ValueOf(db.bolt).Elem().FieldByName("ops").FieldByName("writeAt")
	if !f.IsValid() {
		t.Fatal("bbolt's DB has no ops.writeAt any more: find another way to fail a flush")
	}
	writeAt := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
	write := writeAt.Interface().(func([]byte, int64) (int, error))
	metaEnd := 2 * int64(db.bolt.Info().PageSize)
	file, err := os.Open(db.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = file.Close() })
	var before []metaPage
	writeAt.Set(reflect.ValueOf(func(b []byte, off int64) (int, error) {
		if len(before) == n || off >= metaEnd {
			return write(b, off)
		}
		old := make([]byte, len(b))
		if _, err := file.ReadAt(old, off); err != nil {
			return 0, err
		}
		before = append(before, metaPage{off, old})
		if _, err := write(b, off); err != nil {
			return 0, err
		}
		return len(b), errors.New("injected: the flush of the meta page failed")
	}))
	return &before
}

// TestReadAfterAFailedLastFlush: when a commit's last flush fails, after
// bbolt has written its meta page, bbolt counts the transaction and reads
// show its writes, although the disk may have lost that page. What a read
// shows must be on disk: the store commits again at once. The writes are
// still answered as failed (in doubt), saying which happened, and Healthy
// reports the failure until a probe.
func TestReadAfterAFailedLastFlush(t *testing.T) {
	const seller = "91310000MA1FL0XX1X"
	tests := []struct {
		name     string
		failures int  // meta page flushes that fail
		durable  bool // the write is on disk once Put returns
		says     string
	}{
		{name: "the next commit succeeds", failures: 1, durable: true, says: "a commit made at once has put its writes on disk"},
		{name: "the next commit fails too", failures: 2, says: "a crash may take back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "orders.db")
			db, err := Open(Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			ctx := t.Context()
			rec := func(no string) schemas.OrderRecord {
				return schemas.OrderRecord{Seller: seller, OrderNo: no, Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f1"}
			}
			if _, err := db.Put(ctx, rec("A")); err != nil {
				t.Fatal(err)
			}
			lost := failMetaFlushes(t, db, tt.failures)
			_, putErr := db.Put(ctx, rec("B"))
			if !errors.Is(putErr, ErrWriteFailed) {
				t.Fatalf("Put whose last flush failed = %v, want ErrWriteFailed", putErr)
			}
			if err := db.Healthy(); !errors.Is(err, ErrWriteFailed) {
				t.Fatalf("Healthy after the failed commit = %v, want ErrWriteFailed", err)
			}
			key := schemas.OrderKey{Seller: seller, OrderNo: "B"}
			_, shown, err := db.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if !shown {
				t.Fatal("bbolt no longer counts a transaction whose last flush failed: the store's handling of it, and this test, need another look")
			}

			// What a crash now leaves when the disk lost the meta pages
			// whose flush failed: the file as it is, but those pages as
			// they were.
			crashed, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range *lost {
				copy(crashed[p.off:], p.data)
			}
			cpath := filepath.Join(t.TempDir(), "crashed.db")
			if err := os.WriteFile(cpath, crashed, 0o600); err != nil {
				t.Fatal(err)
			}
			cdb, err := bolt.Open(cpath, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer cdb.Close()
			onDisk := false
			_ = cdb.View(func(tx *bolt.Tx) error {
				onDisk = tx.Bucket(bucketOrders).Get(rawKey(key)) != nil
				return nil
			})
			if tt.durable && !onDisk {
				t.Fatal("a read after the failed flush shows the write, and a crash then takes it back")
			}
			if !strings.Contains(putErr.Error(), tt.says) {
				t.Fatalf("Put whose last flush failed = %v, want it to say %q", putErr, tt.says)
			}

			if err := db.Probe(ctx); err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if _, ok, err := db.Get(ctx, key); err != nil || !ok {
				t.Fatalf("after the probe: found %v, %v; want the write", ok, err)
			}
		})
	}
}
