package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// benchWriters is the number of concurrent writers, as many as the
// consumer's workers.
const benchWriters = 64

// BenchmarkPutGrouped measures Put throughput with group commit (the
// defaults), fsync on.
func BenchmarkPutGrouped(b *testing.B) {
	benchmarkPut(b, store.Config{})
}

// BenchmarkPutPerTx is the baseline: one transaction, one fsync, per write.
func BenchmarkPutPerTx(b *testing.B) {
	benchmarkPut(b, store.Config{MaxBatch: 1})
}

// benchmarkPut runs b.N Puts from benchWriters goroutines, fsync on. Each
// writer creates an order as submitting and then moves it to issued with an
// invoice, as the pipeline does, so half the writes create a record and
// half replace one and move it between state indexes.
func benchmarkPut(b *testing.B, cfg store.Config) {
	cfg.Path = filepath.Join(b.TempDir(), "orders.db")
	db := MustOpen(b, cfg)
	ctx := context.Background()
	fingerprint := fp("bench")
	var (
		ops  atomic.Int64
		next atomic.Int64
		wg   sync.WaitGroup
	)
	ops.Store(int64(b.N))
	before := db.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range benchWriters {
		wg.Go(func() {
			var cur schemas.OrderRecord
			created := false
			for ops.Add(-1) >= 0 {
				var err error
				if !created {
					rec := newRecord(fmt.Sprintf("B%010d", next.Add(1)), schemas.StateSubmitting, fingerprint)
					cur, err = db.Put(ctx, rec)
				} else {
					cur, err = db.Put(ctx, issued(cur, int(cur.Version)))
				}
				if err != nil {
					b.Error(err)
					return
				}
				created = !created
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	after := db.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	if c := after.Commits - before.Commits; c > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(c), "writes/commit")
	}
}
