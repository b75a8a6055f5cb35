package storetest

import (
	"path/filepath"
	"testing"

	"github.com/fapiaohub/invoicer/store"
)

// Open opens a new order store in tb's temporary directory, without fsync,
// and closes it when the test ends; a failure to open or to close fails tb.
func Open(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(store.Config{Path: filepath.Join(tb.TempDir(), "orders.db"), NoSync: true})
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
