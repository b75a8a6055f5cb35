package store_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// A worker claims an order, records the provider's answer, and loses the race
// when another worker wrote first.
func ExampleDB_Put() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(store.Config{Path: filepath.Join(dir, "orders.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()

	claimed, err := db.Put(ctx, schemas.OrderRecord{
		Seller:      "91310000MA1FL0XX1X",
		OrderNo:     "ORD-1",
		Kind:        schemas.KindIssue,
		State:       schemas.StateSubmitting,
		Fingerprint: "5f1c0e",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claimed.State, claimed.Version)

	done := claimed
	done.State = schemas.StateIssued
	done, err = db.Put(ctx, done)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(done.State, done.Version)

	// A second worker still holding version 1 is refused.
	stale := claimed
	stale.State = schemas.StateFailed
	_, err = db.Put(ctx, stale)
	fmt.Println(errors.Is(err, store.ErrVersionConflict))

	counts, err := db.Counts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(counts[schemas.StateIssued], counts[schemas.StateSubmitting])
	// Output:
	// submitting 1
	// issued 2
	// true
	// 1 0
}
