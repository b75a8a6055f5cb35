package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
)

// request is one write handed to the commit goroutine: a Put (rec set), a
// chunk of Prune deletes (prune set), a Probe's heartbeat (probe set), a
// DocumentsKept removal (kept set) or a RaiseMark (mark set). The commit goroutine fills in err and
// deleted, then closes done.
type request struct {
	// Put: the record's key, the record as it will be stored (Version and
	// UpdatedAt already set), its encoding, and the version it was based on.
	key    []byte
	rec    *schemas.OrderRecord
	data   []byte
	expect uint64
	// head is rec's head as data stores it, for heads once committed:
	// summed in the writer's goroutine, not the commit goroutine's.
	head head

	// Prune: the candidates and the cutoff they were chosen with.
	prune  []pruneItem
	cutoff time.Time

	// Probe: write the heartbeat key (Probe).
	probe time.Time

	// DocumentsKept: the keys to remove from the pending-documents index.
	kept [][]byte

	// RaiseMark, SetMark: the mark's key in the meta bucket and its new
	// lowest value (RaiseMark) or its new value (SetMark, markSet).
	mark      []byte
	markValue uint64
	markSet   bool

	// patient: a PutPatient, which does not make the store commit at once.
	patient bool

	err     error
	deleted int
	done    chan struct{}
}

// submit hands req to the commit goroutine and waits for its answer. It
// fails with ErrClosed after Close, and with ctx's error if ctx ends before
// the commit goroutine takes req; once taken, req is always answered.
func (db *DB) submit(ctx context.Context, req *request) error {
	db.mu.RLock()
	if db.closed.Load() {
		db.mu.RUnlock()
		return ErrClosed
	}
	select {
	case db.reqs <- req:
		db.mu.RUnlock()
	case <-ctx.Done():
		db.mu.RUnlock()
		return ctx.Err()
	}
	<-req.done
	return nil
}

// run is the commit goroutine. It takes a request, gathers the ones queued
// behind it into a batch, commits the batch in one transaction and answers
// it, until Close closes reqs; the requests handed over before that are
// committed first.
func (db *DB) run() {
	batch := make([]*request, 0, min(db.cfg.MaxBatch, 1024))
	for {
		req, ok := <-db.reqs
		if !ok {
			return
		}
		batch, ok = db.fill(append(batch[:0], req))
		db.pace.add(time.Now(), len(batch))
		db.commit(batch)
		clear(batch)
		if !ok {
			return
		}
	}
}

// fill adds queued requests to batch until it holds MaxBatch, no request is
// waiting (no delay applies) or the delay has passed: MaxBatchDelay when set,
// else BusyBatchDelay when the store is busy (pace.busy), in which case the
// batch also closes once it is as large as the largest lately
// (pace.concurrency), except for one wait every probeEvery. A batch of
// patient writes only (PutPatient) waits at least PatientDelay, until a
// write that is not patient joins it; the delay above then applies, counted
// from the start of the wait. It reports false when reqs was closed.
func (db *DB) fill(batch []*request) ([]*request, bool) {
	limit := db.cfg.MaxBatch
	for len(batch) < limit {
		select {
		case r, ok := <-db.reqs:
			if !ok {
				return batch, false
			}
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	delay := db.cfg.MaxBatchDelay
	if now := time.Now(); delay <= 0 && db.pace.busy(now, db.cfg.BusyBatchDelay) {
		delay = db.cfg.BusyBatchDelay
		if now.Sub(db.pace.probed) < probeEvery {
			// Waiting for writers that are all in the batch already
			// gains nothing: a busy wait ends at the largest batch
			// seen lately.
			limit = min(limit, db.pace.concurrency())
		} else {
			// Now and then a wait runs its full length, so that the
			// largest batch can grow past what the early ends let
			// through: without it, the writers a batch closed on once
			// would be all it ever waited for.
			db.pace.probed = now
		}
	}
	patient := true
	for _, r := range batch {
		patient = patient && r.patient
	}
	wait := delay
	if patient {
		wait = max(delay, db.cfg.PatientDelay)
	}
	if len(batch) >= limit || wait <= 0 {
		return batch, true
	}
	start := time.Now()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(batch) < limit {
		select {
		case r, ok := <-db.reqs:
			if !ok {
				return batch, false
			}
			batch = append(batch, r)
			if patient && !r.patient {
				// A write that cannot wait: the patient ones go with it.
				patient = false
				left := delay - time.Since(start)
				if left <= 0 {
					return batch, true
				}
				timer.Reset(left)
			}
		case <-timer.C:
			return batch, true
		}
	}
	return batch, true
}

// paceWindow is the span over which pace measures the write rate.
const paceWindow = 50 * time.Millisecond

// probeEvery is how often a busy wait runs its full length instead of
// ending once the batch is as large as the largest lately.
const probeEvery = time.Second

// busyWrites is how many further writes BusyBatchDelay must be expected to
// bring before the commit goroutine waits for them.
const busyWrites = 2

// pace measures, over whole windows of paceWindow, the rate at which writes
// reach the commit goroutine and the largest batch they made. Only the
// commit goroutine uses it.
type pace struct {
	start   time.Time
	writes  int
	largest int       // the largest batch in the current window
	rate    float64   // writes a second in the last whole window
	peak    int       // the largest batch in the last whole window
	probed  time.Time // the last busy wait that ran its full length
}

// add counts a batch of n writes taken at now.
func (p *pace) add(now time.Time, n int) {
	p.writes += n
	p.largest = max(p.largest, n)
	if el := now.Sub(p.start); el >= paceWindow {
		p.rate, p.peak = float64(p.writes)/el.Seconds(), p.largest
		p.start, p.writes, p.largest = now, 0, 0
	}
}

// concurrency is the largest batch of the last whole window and the current
// one: about how many writers the store has.
func (p *pace) concurrency() int {
	return max(p.peak, p.largest)
}

// busy reports whether the last window had concurrent writers (a batch of
// more than one write: a single writer waiting for each of its writes never
// makes the store wait) and, at its rate, at least busyWrites more writes
// are expected within d. A window more than two windows old is stale: the
// writes stopped meanwhile.
func (p *pace) busy(now time.Time, d time.Duration) bool {
	if d <= 0 || p.peak < 2 || now.Sub(p.start) > 2*paceWindow {
		return false
	}
	return p.rate*d.Seconds() >= busyWrites
}

// errUnchanged rolls back a transaction in which every request failed its
// checks: there is nothing to commit, and no fsync to pay.
var errUnchanged = errors.New("no changes")

// commit applies batch in one write transaction, in order, and answers every
// request. A request failing its own checks gets its error and changes
// nothing; if the transaction fails, every request gets the failure.
func (db *DB) commit(batch []*request) {
	start := time.Now()
	var written []writtenHead
	var txid int
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		txid = tx.ID()
		t := newTxn(tx, &db.heads)
		for _, r := range batch {
			var err error
			switch {
			case !r.probe.IsZero():
				err = t.heartbeat(tx, r.probe)
			case r.prune != nil:
				r.deleted, err = t.prune(r.prune, r.cutoff)
			case r.kept != nil:
				err = t.documentsKept(r.kept)
			case r.mark != nil:
				r.err, err = t.raiseMark(tx, r.mark, r.markValue, r.markSet)
			default:
				r.err, err = t.put(r)
			}
			if err != nil {
				return err
			}
		}
		if !t.changed {
			return errUnchanged
		}
		written = t.written
		return nil
	})
	db.commitNanos.Add(int64(time.Since(start)))
	switch {
	case errors.Is(err, errUnchanged):
		// Rolled back with nothing to write: says nothing of the disk's health.
		db.commits.Add(1)
		db.batched.Add(int64(len(batch)))
	case err != nil:
		err = fmt.Errorf("%w: commit of %d writes: %w", ErrWriteFailed, len(batch), err)
		if db.counted(txid) {
			err = db.settle(err)
		}
		db.failedCommits.Add(1)
		db.setHealth(err)
		for _, r := range batch {
			r.err, r.deleted = err, 0
		}
	default:
		db.commits.Add(1)
		db.batched.Add(int64(len(batch)))
		db.heads.add(written)
		// Only a probe, whose headroom write succeeded before it was
		// queued, clears a failure; it does so here, in commit order, so
		// that a later failed commit is never hidden by an earlier probe.
		for _, r := range batch {
			if !r.probe.IsZero() {
				db.setHealth(nil)
				break
			}
		}
	}
	for _, r := range batch {
		close(r.done)
	}
}

// counted reports whether bbolt counts the transaction txid, which failed
// to commit: only its last flush failed, after its meta page was written,
// and bbolt's view of the file, which every read transaction starts from,
// is that page's.
func (db *DB) counted(txid int) bool {
	now := 0
	_ = db.bolt.View(func(tx *bolt.Tx) error {
		now = tx.ID()
		return nil
	})
	return now == txid
}

// settle follows a failed transaction that bbolt counts (counted), failed
// being its error. Reads show its writes, while the meta page that names
// them may not be on disk: a crash would take back what they showed, for
// as long as no later commit succeeds, and a failed commit pauses the
// consumer (Healthy) until the next probe, seconds away. An empty commit
// writes and flushes the other meta page, which names the same pages (their
// own flush had succeeded): once it succeeds the writes are on disk. The
// writes are still answered with failed, so that every caller of a failed
// write reads again, but its text says which happened.
func (db *DB) settle(failed error) error {
	if err := db.bolt.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return fmt.Errorf("%w; only its last flush failed, so reads show its writes, which a crash may take back "+
			"until a commit succeeds (the one made at once failed too: %w)", failed, err)
	}
	return fmt.Errorf("%w; only its last flush failed, and a commit made at once has put its writes on disk: they are made", failed)
}

// txn applies writes inside one write transaction. Reads through it see the
// writes made before in the same transaction.
type txn struct {
	changed   bool // a request has written or deleted something
	heads     *heads
	written   []writtenHead // the records put, for heads once committed
	orders    *bolt.Bucket
	index     *bolt.Bucket
	documents *bolt.Bucket
	states    map[schemas.OrderState]*bolt.Bucket
}

func newTxn(tx *bolt.Tx, h *heads) *txn {
	t := &txn{
		heads:     h,
		orders:    tx.Bucket(bucketOrders),
		index:     tx.Bucket(bucketStates),
		documents: tx.Bucket(bucketDocuments),
		states:    make(map[schemas.OrderState]*bolt.Bucket, len(schemas.OrderStates)),
	}
	t.orders.FillPercent = fillPercent
	t.documents.FillPercent = fillPercent
	return t
}

// fillPercent is how full bbolt fills a page before it splits one. Order
// numbers mostly grow within a seller, so new records are appended to the
// last pages of their seller's range: bbolt's default of one half would
// leave most pages half empty, and the file (and the pages the consumer
// maps into memory) twice the size it needs to be. Not fuller than 0.8:
// the records on the page a split leaves behind are the newest, still
// being claimed, and each grows by about half when saved as issued; at 0.9
// those pages split again and the leaf pages of a 20,000-order run were
// only 66% used, against 85% at 0.8 (0.7: 80%), and the 200,000-order
// file 252 MB against 201 MB.
const fillPercent = 0.8

// state returns the index bucket of s.
func (t *txn) state(s schemas.OrderState) (*bolt.Bucket, error) {
	if b, ok := t.states[s]; ok {
		return b, nil
	}
	b := t.index.Bucket([]byte(s))
	if b == nil {
		return nil, fmt.Errorf("no state index bucket for %q", s)
	}
	b.FillPercent = fillPercent
	t.states[s] = b
	return b, nil
}

// put applies one Put. check is the request's own failure (version,
// transition, a damaged stored record), which leaves the transaction as it
// was; fatal fails the whole transaction.
func (t *txn) put(r *request) (check, fatal error) {
	// old is read for its Version, State and Fingerprint only (what
	// heads keeps): the checks below must not need more.
	var old *schemas.OrderRecord
	if v := t.orders.Get(r.key); v != nil {
		if h, ok := t.heads.get(r.key, v); ok {
			old = &schemas.OrderRecord{Version: h.version, State: h.state, Fingerprint: h.fingerprint}
		} else {
			old = new(schemas.OrderRecord)
			if err := decodeRecord(v, old); err != nil {
				return fmt.Errorf("stored record: %w", err), nil
			}
			if old.State == "" {
				// Damaged: CheckTransition would take it for no record,
				// and its state index would be missing, which fails the
				// whole transaction. It fails this write alone.
				return errors.New("stored record: it has no state"), nil
			}
		}
	}
	switch {
	case old == nil && r.expect != 0:
		return fmt.Errorf("%w: write based on version %d, but no record is stored", ErrVersionConflict, r.expect), nil
	case old != nil && old.Version != r.expect:
		return fmt.Errorf("%w: write based on version %d, stored version is %d (%s)", ErrVersionConflict, r.expect, old.Version, old.State), nil
	}
	if err := schemas.CheckTransition(old, r.rec); err != nil {
		return err, nil
	}
	if err := t.orders.Put(r.key, r.data); err != nil {
		return err, nil
	}
	t.changed = true
	t.written = append(t.written, writtenHead{key: r.key, head: r.head})
	if old != nil && old.State == r.rec.State {
		return nil, nil
	}
	if old != nil {
		b, err := t.state(old.State)
		if err != nil {
			return nil, err
		}
		if err := b.Delete(r.key); err != nil {
			return nil, err
		}
	}
	b, err := t.state(r.rec.State)
	if err != nil {
		return nil, err
	}
	if err := b.Put(r.key, emptyValue); err != nil {
		return nil, err
	}
	if r.rec.State == schemas.StateIssued || r.rec.State == schemas.StateRejected && len(r.rec.Invoices) > 0 {
		// Issued is final: an order enters the index once, here. A split
		// order that failed in part (rejected, with the invoices that
		// were issued) enters it too; should it be issued in full later,
		// it enters again, and the keeper keeps its documents again.
		if v := documentsValue(r.rec); v != nil {
			if err := t.documents.Put(r.key, v); err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// heartbeat writes the probe key of the meta bucket.
func (t *txn) heartbeat(tx *bolt.Tx, at time.Time) error {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return errors.New("no meta bucket")
	}
	t.changed = true
	return b.Put(probeKey, []byte(at.UTC().Format(time.RFC3339Nano)))
}

// raiseMark stores v under key in the meta bucket unless the value stored
// there is v or more (set: unless it is v).
//
// A damaged stored value fails a raise alone (check), not the transaction
// and the writes batched with it; a set replaces it.
func (t *txn) raiseMark(tx *bolt.Tx, key []byte, v uint64, set bool) (check, fatal error) {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return nil, errors.New("no meta bucket")
	}
	if old, err := markValue(b.Get(key)); err != nil && !set {
		return fmt.Errorf("stored %s: %w (a set replaces it)", key, err), nil
	} else if err == nil && (old == v || (old > v && !set)) {
		return nil, nil
	}
	t.changed = true
	return nil, b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// markValue decodes a stored mark (nil: 0).
func markValue(v []byte) (uint64, error) {
	switch len(v) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(v), nil
	}
	return 0, fmt.Errorf("a mark of %d bytes, want 8", len(v))
}

// prune deletes the items that are still at the version Prune saw and still
// prunable with cutoff, and returns how many it deleted.
func (t *txn) prune(items []pruneItem, cutoff time.Time) (int, error) {
	n := 0
	for _, it := range items {
		v := t.orders.Get(it.key)
		if v == nil {
			continue
		}
		var h pruneHeader
		if err := decodeValue(v, &h); err != nil || h.Version != it.version || !h.prunable(cutoff) {
			continue
		}
		b, err := t.state(h.State)
		if err != nil {
			return 0, err
		}
		if err := t.orders.Delete(it.key); err != nil {
			return 0, err
		}
		t.changed = true
		if err := b.Delete(it.key); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}
