package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/fapiaohub/invoicer/schemas"
)

// Errors returned by the store. Check them with errors.Is: they are always
// wrapped with the operation and the order key.
var (
	// ErrLocked is returned by Open when the store file stays locked for
	// Config.LockTimeout: another consumer instance, in another process or in
	// this one, is using the data directory.
	ErrLocked = errors.New("order store is locked")
	// ErrVersionConflict is returned by Put when the stored record is not the
	// one the write was based on: its Version differs from the record's
	// Version, a record exists although Version is 0, or none exists although
	// Version is not 0. Someone else wrote first; read the record again and
	// decide anew.
	ErrVersionConflict = errors.New("order version conflict")
	// ErrClosed is returned by every method of a DB after Close has been
	// called (and by Put calls that Close overtook).
	ErrClosed = errors.New("order store is closed")
	// ErrWriteFailed is returned by Put and Prune when the transaction that
	// carried the write could not be committed (disk full, file size limit,
	// I/O error). Nothing of that transaction is acknowledged; Healthy
	// reports the failure until a Probe succeeds. The writes were not made,
	// with one exception a caller must allow for: when only the last flush
	// failed, after bbolt had written the transaction's meta page, bbolt
	// counts the transaction and reads show its writes. The store then
	// commits again at once, so that the disk holds what reads show; when
	// that commit succeeds the writes are made (the error says so), and
	// until one succeeds a crash may take them back. So a write that failed
	// is in doubt: read the record again before acting on its absence.
	ErrWriteFailed = errors.New("order store write failed")
	// ErrInvalidKey is returned by Get and Put when the seller or the order
	// number is empty, contains a NUL byte, or the two are longer than a
	// bbolt key allows.
	ErrInvalidKey = errors.New("invalid order key")
)

// Defaults applied by Open to zero Config fields.
const (
	// DefaultLockTimeout is how long Open waits for the file lock.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatch is the most writes committed in one transaction.
	DefaultMaxBatch = 256
	// DefaultBusyBatchDelay is how long a busy store waits to fill a
	// commit (Config.BusyBatchDelay).
	DefaultBusyBatchDelay = 2 * time.Millisecond
	// DefaultPatientDelay is how long a PutPatient waits for another
	// write to start a commit it can join (Config.PatientDelay).
	DefaultPatientDelay = 2 * time.Millisecond
)

// Chunk sizes of Scan and Prune: how many keys one read transaction (and one
// prune write) handles.
const (
	scanChunk  = 256
	pruneChunk = 512
)

// formatVersion is the layout version recorded in the meta bucket. Version
// 2 stores records compressed (encodeRecord); a version 1 file (plain JSON
// records, which version 2 still reads) is marked version 2 when opened for
// writing, so that an older build refuses it instead of misreading it.
const formatVersion = "2"

// formatVersion1 is the layout with plain JSON records.
const formatVersion1 = "1"

var (
	bucketOrders = []byte("orders")
	bucketStates = []byte("states")
	bucketMeta   = []byte("meta")
	probeKey     = []byte("probe")
	keyFormat    = []byte("format")
	emptyValue   = []byte{}
)

// Config configures Open. The zero value of every field but Path is a usable
// default.
type Config struct {
	// Path is the bbolt file. Its directory must exist; the file is created
	// (mode 0600) when missing.
	Path string
	// LockTimeout is how long Open waits for the file lock before failing
	// with ErrLocked. 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// MaxBatch is the most writes committed in one transaction. 0 means
	// DefaultMaxBatch; 1 commits every write in its own transaction.
	MaxBatch int
	// MaxBatchDelay is how long the commit goroutine may wait for more
	// writes to fill a batch once it holds one. 0 means no waiting: whatever
	// queued while the previous transaction committed goes into the next.
	MaxBatchDelay time.Duration
	// BusyBatchDelay is how long the commit goroutine waits for more
	// writes, when MaxBatchDelay is 0, while the store is busy: over the
	// last 50 ms writes came from more than one writer at a time, fast
	// enough that at least two more are expected within the delay. The
	// wait ends early once the batch is as large as the largest of that
	// time (every writer is then in it). Fewer, larger commits mean fewer
	// fsyncs on a disk the store shares with others (JetStream's), at the
	// cost of up to this much latency per write under load; a store that
	// gets writes more slowly never waits. 0 means DefaultBusyBatchDelay; a
	// negative value never waits.
	BusyBatchDelay time.Duration
	// PatientDelay is how long a batch holding only PutPatient writes
	// waits before it commits: a write that is not a PutPatient ends the
	// wait (the batch then follows the rules above), so patient writes
	// mostly ride in commits other writes start. 0 means
	// DefaultPatientDelay; a negative value makes PutPatient a Put.
	PatientDelay time.Duration
	// NoSync skips fsync. For tests only: a write is then not durable when
	// Put returns.
	NoSync bool
	// ProbeHeadroom is how many bytes Probe must be able to write (and
	// fsync) to a scratch file beside the store before it clears a failure,
	// and by how much that file must be able to outgrow the store file:
	// room for bbolt's next growth of the file, on the disk and under a
	// limit on one file's size. 0 means the bbolt file's allocation step
	// (16 MiB); a negative value skips the check. Where the directory does
	// not let the probe create that file, it checks the disk's free space
	// and the process's file size limit (RLIMIT_FSIZE) against it instead.
	ProbeHeadroom int64
}

// Validate reports a Config that Open cannot use.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path is required"))
	}
	if c.LockTimeout < 0 {
		errs = append(errs, fmt.Errorf("lock timeout %s is negative", c.LockTimeout))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("max batch %d is negative", c.MaxBatch))
	}
	if c.MaxBatchDelay < 0 {
		errs = append(errs, fmt.Errorf("max batch delay %s is negative", c.MaxBatchDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store config: %w", err)
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.BusyBatchDelay == 0 {
		c.BusyBatchDelay = DefaultBusyBatchDelay
	}
	if c.PatientDelay == 0 {
		c.PatientDelay = DefaultPatientDelay
	}
	return c
}

// DB is an open order store. Its methods are safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	cfg  Config

	// mu guards sends on reqs against Close: Put holds it for reading while
	// it hands a request over, Close takes it for writing to close reqs.
	mu     sync.RWMutex
	closed atomic.Bool
	reqs   chan *request
	wg     sync.WaitGroup
	// shut is closed when the first Close has closed the file; a later
	// Close waits for it.
	shut  chan struct{}
	pace  pace  // the write rate, for BusyBatchDelay
	heads heads // recently written records' heads, for the commit goroutine

	healthMu sync.Mutex
	lastErr  error
	// probeTurn makes Probes take turns (a buffer of one: holding it is
	// having the turn): they share the scratch file, and one's success must
	// not clear a failure another found after it began. A channel rather
	// than a mutex, so that a Probe waiting behind a stalled one gives up
	// at its own deadline.
	probeTurn chan struct{}

	commits         atomic.Int64
	failedCommits   atomic.Int64
	batched         atomic.Int64
	commitNanos     atomic.Int64
	puts            atomic.Int64
	putNanos        atomic.Int64
	patientPuts     atomic.Int64
	patientPutNanos atomic.Int64
}

// Open opens (creating if needed) the store file at cfg.Path, takes its
// lock, and starts the commit goroutine; Close stops it. When the file stays
// locked for cfg.LockTimeout, Open fails with an error wrapping ErrLocked.
func Open(cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open order store: %w", err)
	}
	cfg = cfg.withDefaults()
	_, statErr := os.Stat(cfg.Path)
	created := errors.Is(statErr, fs.ErrNotExist)
	bdb, err := bolt.Open(cfg.Path, 0o600, &bolt.Options{
		Timeout:      cfg.LockTimeout,
		NoSync:       cfg.NoSync,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open order store %s: %w: the data directory %s is in use by another consumer instance "+
			"(its file lock was not released within %s); stop that instance or give this one its own data directory",
			cfg.Path, ErrLocked, filepath.Dir(cfg.Path), cfg.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open order store %s: %w", cfg.Path, err)
	}
	if err := bdb.Update(initLayout); err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open order store %s: %w", cfg.Path, err)
	}
	if created && !cfg.NoSync {
		// bbolt fsyncs the file's contents, never the directory entry
		// that names it: after a crash a new file could be gone with
		// every write acknowledged in it.
		if err := syncDir(filepath.Dir(cfg.Path)); err != nil {
			_ = bdb.Close()
			return nil, fmt.Errorf("open order store %s: make its directory entry durable: %w", cfg.Path, err)
		}
	}
	db := &DB{
		bolt:      bdb,
		cfg:       cfg,
		reqs:      make(chan *request),
		shut:      make(chan struct{}),
		probeTurn: make(chan struct{}, 1),
	}
	db.wg.Go(db.run)
	return db, nil
}

// initLayout creates the buckets of a new file and checks the layout
// version of an existing one.
func initLayout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch v := meta.Get(keyFormat); {
	case v == nil, string(v) == formatVersion1:
		if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
			return err
		}
	case string(v) != formatVersion:
		return fmt.Errorf("store file has layout version %q, this build reads %q", v, formatVersion)
	}
	if _, err := tx.CreateBucketIfNotExists(bucketOrders); err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketDocuments); err != nil {
		return err
	}
	states, err := tx.CreateBucketIfNotExists(bucketStates)
	if err != nil {
		return err
	}
	for _, s := range schemas.OrderStates {
		if _, err := states.CreateBucketIfNotExists([]byte(s)); err != nil {
			return err
		}
	}
	return nil
}

// Close stops accepting writes, commits the writes already handed to the
// commit goroutine, waits for it to end, and closes the file (releasing the
// lock). Put calls that had not been handed over get ErrClosed. Calling
// Close again, or at the same time, returns nil once the file is closed.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed.Load() {
		db.mu.Unlock()
		<-db.shut
		return nil
	}
	db.closed.Store(true)
	close(db.reqs)
	db.mu.Unlock()
	defer close(db.shut)

	db.wg.Wait()
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close order store %s: %w", db.cfg.Path, err)
	}
	return nil
}

// Healthy returns nil while the store can commit: after a commit fails it
// returns that failure (wrapping ErrWriteFailed) until a Probe succeeds, and
// ErrClosed after Close. While it returns an error the consumer should
// report unready and take no new work.
//
// A commit that succeeds after a failure does not clear it: a full disk
// still lets a transaction through when it fits in pages bbolt freed
// earlier, and a consumer resuming on such luck would flap between taking
// work and failing it. What such a commit wrote is durable all the same.
func (db *DB) Healthy() error {
	if db.closed.Load() {
		return ErrClosed
	}
	db.healthMu.Lock()
	defer db.healthMu.Unlock()
	return db.lastErr
}

// Probe finds out whether the store can write again: it writes and fsyncs
// Config.ProbeHeadroom bytes to a scratch file beside the store, extended
// (sparsely) to the store file's size plus those bytes and removed again,
// so that the file has room to grow, on the disk and under a limit on a
// file's size (where the data directory does not let it create that file,
// it looks up the disk's free space and the limit instead: the store file
// itself may well be writable); then it commits a tiny write (a heartbeat
// in the meta bucket) through the commit goroutine. It returns the first error, which
// Healthy then reports too; success clears Healthy.
// A consumer that stopped taking work because Healthy reported a failed
// commit probes until it succeeds. Concurrent Probes take turns; one
// still waiting for its turn when ctx ends returns ctx's error and leaves
// Healthy as it was.
func (db *DB) Probe(ctx context.Context) error {
	select {
	case db.probeTurn <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("probe: waiting for another probe: %w", context.Cause(ctx))
	}
	defer func() { <-db.probeTurn }()
	if db.closed.Load() {
		return ErrClosed
	}
	if err := db.headroom(); err != nil {
		err = fmt.Errorf("%w: probe: %w", ErrWriteFailed, err)
		db.setHealth(err)
		return err
	}
	req := &request{probe: time.Now(), done: make(chan struct{})}
	if err := db.submit(ctx, req); err != nil {
		return err
	}
	return req.err // the commit goroutine cleared Healthy if it committed
}

// headroom writes Config.ProbeHeadroom bytes to the scratch file
// Path+".probe", extends it to the store file's size plus those bytes,
// fsyncs it and removes it.
//
// The bytes written find room on the disk; the extension, which allocates
// nothing, finds room under a limit on the size of one file (RLIMIT_FSIZE,
// the file system's largest file). bbolt grows the store file the same way,
// by truncating it longer, and under such a limit above the headroom the
// scratch bytes alone fit while the store file cannot grow: the probe
// would succeed on a heartbeat that fits in freed pages, and the consumer
// would resume only to fail its next commit.
//
// A data directory that does not let the process create the scratch file
// (a permission error) gets roomWithoutScratch instead: the free space of
// the disk and the file size limit, looked up rather than tried.
func (db *DB) headroom() (err error) {
	n := db.cfg.ProbeHeadroom
	if n == 0 {
		n = int64(db.bolt.AllocSize)
	}
	if n < 0 {
		return nil
	}
	st, err := os.Stat(db.cfg.Path)
	if err != nil {
		return fmt.Errorf("room for the store to grow: %w", err)
	}
	path := db.cfg.Path + ".probe"
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrPermission) {
		// The data directory does not let this process create a file
		// (its mode, its owner). That says nothing of the store file,
		// which bbolt has had open for writing since Open and whose
		// commits go on succeeding: failing here would keep a consumer
		// paused for good after one failed commit. The room is looked
		// up instead.
		return db.roomWithoutScratch(st.Size(), n, err)
	}
	if err != nil {
		return fmt.Errorf("room for the store to grow: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("room for the store to grow: %w", cerr)
		}
		if rerr := os.Remove(path); err == nil && rerr != nil {
			err = fmt.Errorf("room for the store to grow: %w", rerr)
		}
	}()
	chunk := make([]byte, min(n, 1<<20))
	for left := n; left > 0; left -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
			return fmt.Errorf("room for the store to grow (%d bytes): %w", n, err)
		}
	}
	if err := f.Truncate(st.Size() + n); err != nil {
		return fmt.Errorf("room for the store file to grow to %d bytes: %w", st.Size()+n, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("room for the store to grow (%d bytes): %w", n, err)
	}
	return nil
}

// setHealth records the outcome of a commit.
func (db *DB) setHealth(err error) {
	db.healthMu.Lock()
	db.lastErr = err
	db.healthMu.Unlock()
}

// Stats are counters of the commit goroutine since Open.
type Stats struct {
	// Commits counts batches answered without a commit failure: committed
	// transactions, and those rolled back because every write in them failed
	// its checks.
	Commits int64
	// FailedCommits counts transactions that failed to commit.
	FailedCommits int64
	// Requests counts the writes (Put calls, Prune chunks, DocumentsKept
	// calls and probes) carried by committed transactions, including those
	// answered with their own check error. Requests/Commits is the mean
	// batch size.
	Requests int64
	// CommitTime is the time the commit goroutine has spent in write
	// transactions, fsyncs included, failed ones too. Its rate is how busy
	// that one goroutine is: near one second a second, the store is the
	// bottleneck and writers queue for it.
	CommitTime time.Duration
	// Puts counts the Put calls the commit goroutine answered: committed,
	// refused by their own checks, or failed with their transaction.
	Puts int64
	// PutTime is the time those Put calls took, from the call to the
	// answer: encoding the record, waiting for the commit in progress and
	// for the one that carries the write, fsyncs included. PutTime/Puts is
	// the mean latency a writer sees, which CommitTime/Commits alone does
	// not show: under load a write also waits for the commit before its
	// own.
	PutTime time.Duration
	// PatientPuts and PatientPutTime are the part of Puts and PutTime
	// that were PutPatient calls: writes that may wait for a commit
	// another write starts, so their latency is not one anybody waits on
	// alone.
	PatientPuts    int64
	PatientPutTime time.Duration
}

// Stats returns the commit counters. It is cheap and safe to call at any
// time, including after Close.
func (db *DB) Stats() Stats {
	return Stats{
		Commits:        db.commits.Load(),
		FailedCommits:  db.failedCommits.Load(),
		Requests:       db.batched.Load(),
		CommitTime:     time.Duration(db.commitNanos.Load()),
		Puts:           db.puts.Load(),
		PutTime:        time.Duration(db.putNanos.Load()),
		PatientPuts:    db.patientPuts.Load(),
		PatientPutTime: time.Duration(db.patientPutNanos.Load()),
	}
}

// Get returns the record stored under key, and whether there is one.
// Errors: ErrInvalidKey, ErrClosed, ctx's error, and decoding errors of a
// damaged record.
func (db *DB) Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	var rec schemas.OrderRecord
	k, err := encodeKey(key)
	if err != nil {
		return rec, false, fmt.Errorf("get order %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return rec, false, fmt.Errorf("get order %s: %w", key, err)
	}
	found := false
	err = db.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketOrders).Get(k)
		if v == nil {
			return nil
		}
		found = true
		return decodeRecord(v, &rec)
	})
	if err != nil {
		return schemas.OrderRecord{}, false, fmt.Errorf("get order %s: %w", key, err)
	}
	return rec, found, nil
}

// RaiseMark durably raises the mark called name to v: a counter of the
// store's meta bucket, for a caller that must find after a crash how far
// it had gone (the pipeline's highest request taken without a claim). A
// mark never goes down: raising it to a value at or below the stored one
// changes nothing. When RaiseMark returns nil the mark is on disk. It is
// committed by the commit goroutine, with the Puts. Errors: ErrWriteFailed,
// ErrClosed, ctx's error if ctx ends before the write is taken.
func (db *DB) RaiseMark(ctx context.Context, name string, v uint64) error {
	if name == "" {
		return errors.New("raise mark: no name")
	}
	req := &request{mark: markKey(name), markValue: v, done: make(chan struct{})}
	if err := db.submit(ctx, req); err != nil {
		return fmt.Errorf("raise mark %s: %w", name, err)
	}
	if req.err != nil {
		return fmt.Errorf("raise mark %s: %w", name, req.err)
	}
	return nil
}

// SetMark durably sets the mark called name to v, lower or higher than it
// was (a flag, a value that may go back). Otherwise as RaiseMark.
func (db *DB) SetMark(ctx context.Context, name string, v uint64) error {
	if name == "" {
		return errors.New("set mark: no name")
	}
	req := &request{mark: markKey(name), markValue: v, markSet: true, done: make(chan struct{})}
	if err := db.submit(ctx, req); err != nil {
		return fmt.Errorf("set mark %s: %w", name, err)
	}
	if req.err != nil {
		return fmt.Errorf("set mark %s: %w", name, req.err)
	}
	return nil
}

// Mark returns the value of the mark called name (RaiseMark, SetMark), 0
// when it was never set.
func (db *DB) Mark(name string) (uint64, error) {
	var v uint64
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		v, err = markValue(tx.Bucket(bucketMeta).Get(markKey(name)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read mark %s: %w", name, err)
	}
	return v, nil
}

// markKey is the meta bucket key of the mark called name, apart from the
// bucket's other keys.
func markKey(name string) []byte { return []byte("mark:" + name) }

// Put stores rec if the stored record is the one rec was based on (its
// Version equals rec.Version; 0 means there must be none) and
// schemas.CheckTransition allows the move from it to rec. The stored and
// returned record has Version rec.Version+1 and UpdatedAt the time of the
// call in UTC. When Put returns nil the write is committed and on disk.
//
// Errors, all wrapped with the order key: ErrInvalidKey; ErrVersionConflict
// (saying what was found); errors wrapping schemas.ErrIllegalTransition or
// schemas.ErrFingerprintMismatch; ErrWriteFailed when the transaction failed
// to commit (the write was not made, except after a failure of the last flush
// alone: see ErrWriteFailed); ErrClosed; ctx's error if ctx ends
// before the commit goroutine has taken the write (it is then not made).
// Once taken, Put waits for the commit, which takes two fdatasyncs (the
// pages, then the meta page).
//
// Put is safe for concurrent use; concurrent Puts share transactions.
func (db *DB) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	return db.put(ctx, rec, false)
}

// PutPatient is Put for a write whose caller can wait a little longer: it
// is as durable when it returns, and checked the same way, but it does not
// make the store commit at once. It joins the next commit another write
// starts, or commits after Config.PatientDelay when none does. A caller
// that has another effect to wait for meanwhile (the pipeline publishes
// an issued order's result while its record is saved) loses nothing, and
// the store makes fewer commits, so the writes that cannot wait (a claim
// before a provider call) queue behind fewer of them.
func (db *DB) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	return db.put(ctx, rec, true)
}

func (db *DB) put(ctx context.Context, rec schemas.OrderRecord, patient bool) (schemas.OrderRecord, error) {
	key := rec.Key()
	if err := ctx.Err(); err != nil {
		return schemas.OrderRecord{}, fmt.Errorf("put order %s: %w", key, err)
	}
	start := time.Now()
	req, err := newPutRequest(rec, start)
	if err != nil {
		return schemas.OrderRecord{}, fmt.Errorf("put order %s: %w", key, err)
	}
	req.patient = patient && db.cfg.PatientDelay > 0
	if err := db.submit(ctx, req); err != nil {
		return schemas.OrderRecord{}, fmt.Errorf("put order %s: %w", key, err)
	}
	took := int64(time.Since(start))
	db.putNanos.Add(took)
	db.puts.Add(1)
	if patient {
		db.patientPutNanos.Add(took)
		db.patientPuts.Add(1)
	}
	if req.err != nil {
		return schemas.OrderRecord{}, fmt.Errorf("put order %s: %w", key, req.err)
	}
	return *req.rec, nil
}

// newPutRequest prepares the write of rec made at now: the record as it
// will be stored (next Version, UpdatedAt now in UTC) and its encoding,
// done in the caller's goroutine to keep the commit goroutine short.
func newPutRequest(rec schemas.OrderRecord, now time.Time) (*request, error) {
	k, err := encodeKey(rec.Key())
	if err != nil {
		return nil, err
	}
	if rec.Version == math.MaxUint64 {
		// Only a damaged record reaches it; the next version would be 0,
		// which means "no record".
		return nil, fmt.Errorf("version %d is the last a record can have", rec.Version)
	}
	req := &request{key: k, expect: rec.Version, done: make(chan struct{})}
	rec.Version++
	rec.UpdatedAt = now.UTC()
	req.rec = &rec
	if req.data, err = encodeRecord(&rec); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	req.head = newHead(req.data, req.rec)
	return req, nil
}

// Scan calls fn with every record in state, ordered by seller and then by
// order number, until fn returns false or the records run out. It reads the
// state index a chunk at a time and calls fn outside any transaction, so fn
// may call Put (for example to move the record it is given); records moved
// into or out of state meanwhile may or may not be seen. Errors: ErrClosed,
// ctx's error (checked between records), an unknown state, and decoding
// errors.
func (db *DB) Scan(ctx context.Context, state schemas.OrderState, fn func(schemas.OrderRecord) bool) error {
	if !state.Valid() {
		return fmt.Errorf("scan orders: unknown state %q", state)
	}
	var after []byte
	for {
		recs, next, err := db.scanChunk(state, after)
		if err != nil {
			return fmt.Errorf("scan %s orders: %w", state, err)
		}
		for _, r := range recs {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("scan %s orders: %w", state, err)
			}
			if !fn(r) {
				return nil
			}
		}
		if next == nil {
			return nil
		}
		after = next
	}
}

// scanChunk reads up to scanChunk records of state whose keys sort after
// after (from the first when nil). next is the last key read, or nil when
// the index has no more.
func (db *DB) scanChunk(state schemas.OrderState, after []byte) (recs []schemas.OrderRecord, next []byte, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		orders := tx.Bucket(bucketOrders)
		c := tx.Bucket(bucketStates).Bucket([]byte(state)).Cursor()
		var last []byte
		k, _ := seekAfter(c, after)
		for ; k != nil; k, _ = c.Next() {
			if len(recs) == scanChunk {
				next = bytes.Clone(last)
				return nil
			}
			last = k
			v := orders.Get(k)
			if v == nil {
				return fmt.Errorf("state index lists %s but no record is stored", keyString(k))
			}
			var rec schemas.OrderRecord
			if err := decodeRecord(v, &rec); err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, next, err
}

// Counts returns how many records are in each state; every state is in the
// map, with 0 when it has none. The counts are one consistent snapshot.
// Errors: ErrClosed, ctx's error.
func (db *DB) Counts(ctx context.Context) (map[schemas.OrderState]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("count orders: %w", err)
	}
	counts := make(map[schemas.OrderState]int, len(schemas.OrderStates))
	err := db.view(func(tx *bolt.Tx) error {
		states := tx.Bucket(bucketStates)
		for _, s := range schemas.OrderStates {
			counts[s] = states.Bucket([]byte(s)).Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count orders: %w", err)
	}
	return counts, nil
}

// WriteTo writes a consistent copy of the whole store file to w (a hot
// backup: it runs in one read transaction while writes go on). The copy
// opens with Open. It returns the number of bytes written. A commit that has
// to grow the file's memory map waits until the copy ends.
func (db *DB) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("back up order store: %w", err)
	}
	return n, nil
}

// Prune deletes the records that may be forgotten: those in a finished
// state other than issued (schemas.OrderState.Finished; today that is
// rejected only) last written before cutoff, and holding no invoice. Issued
// records are tax records and are never deleted, nor is a rejected record
// with invoices (a split order that failed in part: the invoices issued
// exist, and its order number is taken); nor are in-flight or resumable ones (submitting,
// accepted, action_required, and failed, which a replayed dead letter
// resumes by querying the provider with the references the record keeps).
// It reads candidates a chunk at a time and deletes each chunk in a
// transaction of the commit goroutine, re-checking every record there, so
// writers wait for at most one chunk and a record moved meanwhile is kept.
// It returns how many records it deleted, also when it fails part way.
// Errors: ErrClosed, ErrWriteFailed, ctx's error (checked between chunks).
func (db *DB) Prune(ctx context.Context, cutoff time.Time) (int, error) {
	deleted := 0
	for _, state := range prunableStates() {
		var after []byte
		for {
			if err := ctx.Err(); err != nil {
				return deleted, fmt.Errorf("prune orders: %w", err)
			}
			items, next, err := db.pruneCandidates(state, after, cutoff)
			if err != nil {
				return deleted, fmt.Errorf("prune %s orders: %w", state, err)
			}
			if len(items) > 0 {
				req := &request{prune: items, cutoff: cutoff, done: make(chan struct{})}
				if err := db.submit(ctx, req); err != nil {
					return deleted, fmt.Errorf("prune %s orders: %w", state, err)
				}
				if req.err != nil {
					return deleted, fmt.Errorf("prune %s orders: %w", state, req.err)
				}
				deleted += req.deleted
			}
			if next == nil {
				break
			}
			after = next
		}
	}
	return deleted, nil
}

// pruneItem is a record Prune found deletable, at the version it was found.
type pruneItem struct {
	key     []byte
	version uint64
}

// pruneHeader is the part of a record Prune needs.
type pruneHeader struct {
	State     schemas.OrderState `json:"state"`
	UpdatedAt time.Time          `json:"updatedAt"`
	Version   uint64             `json:"version"`
	Invoices  []struct{}         `json:"invoices"` // counted, not read
}

// prunableStates lists the states Prune deletes from: finished, not issued.
func prunableStates() []schemas.OrderState {
	var states []schemas.OrderState
	for _, s := range schemas.OrderStates {
		if prunableState(s) {
			states = append(states, s)
		}
	}
	return states
}

// prunableState reports whether Prune may delete a record in state s.
func prunableState(s schemas.OrderState) bool {
	return s.Finished() && s != schemas.StateIssued
}

// prunable reports whether a record may be deleted by Prune with cutoff.
func (h *pruneHeader) prunable(cutoff time.Time) bool {
	return prunableState(h.State) && h.UpdatedAt.Before(cutoff) && len(h.Invoices) == 0
}

// pruneCandidates looks at up to pruneChunk keys of state after after and
// returns the deletable ones; next is the last key looked at, or nil when
// the index has no more.
func (db *DB) pruneCandidates(state schemas.OrderState, after []byte, cutoff time.Time) (items []pruneItem, next []byte, err error) {
	err = db.view(func(tx *bolt.Tx) error {
		orders := tx.Bucket(bucketOrders)
		c := tx.Bucket(bucketStates).Bucket([]byte(state)).Cursor()
		n := 0
		var last []byte
		k, _ := seekAfter(c, after)
		for ; k != nil; k, _ = c.Next() {
			if n == pruneChunk {
				next = bytes.Clone(last)
				return nil
			}
			n++
			last = k
			v := orders.Get(k)
			if v == nil {
				continue
			}
			var h pruneHeader
			if err := decodeValue(v, &h); err != nil {
				continue // damaged: passed over, as the commit's prune passes it over
			}
			if h.prunable(cutoff) {
				items = append(items, pruneItem{key: bytes.Clone(k), version: h.Version})
			}
		}
		return nil
	})
	return items, next, err
}

// seekAfter positions c on the first key after after, or on the first key
// when after is nil.
func seekAfter(c *bolt.Cursor, after []byte) (k, v []byte) {
	if after == nil {
		return c.First()
	}
	k, v = c.Seek(after)
	if k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	return k, v
}

// view runs fn in a read transaction, reporting ErrClosed after Close.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	if db.closed.Load() {
		return ErrClosed
	}
	err := db.bolt.View(fn)
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// encodeKey returns the bbolt key of an order: seller, NUL, order number.
func encodeKey(key schemas.OrderKey) ([]byte, error) {
	switch {
	case key.Seller == "":
		return nil, fmt.Errorf("%w: empty seller", ErrInvalidKey)
	case key.OrderNo == "":
		return nil, fmt.Errorf("%w: empty order number", ErrInvalidKey)
	case bytes.IndexByte([]byte(key.Seller), 0) >= 0 || bytes.IndexByte([]byte(key.OrderNo), 0) >= 0:
		return nil, fmt.Errorf("%w: NUL byte in seller or order number", ErrInvalidKey)
	case len(key.Seller)+1+len(key.OrderNo) > bolt.MaxKeySize:
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, bolt.MaxKeySize)
	}
	return rawKey(key), nil
}

// keyString renders a bbolt key as schemas.OrderKey.String does.
func keyString(k []byte) string { return decodeKey(k).String() }

// compressedRecord starts a record stored as an S2 block of its JSON. A
// plain JSON record (layout version 1) starts with '{'.
const compressedRecord = 0

// encodeRecord encodes a record for storing: its JSON, compressed with S2
// (github.com/klauspost/compress/s2), behind one marker byte. Records are
// mostly field names, order numbers and repeated text: compression makes the
// file, the pages of it the consumer maps, and the bytes written per commit
// about a third of plain JSON's.
//
// The JSON and the block are built in pooled buffers, and only the result
// is allocated, at its own size: a 50,000-order run had allocated about
// three times a record's stored size for each write.
func encodeRecord(rec *schemas.OrderRecord) ([]byte, error) {
	b := recordBuffers.Get().(*recordBuffer)
	defer b.put()
	b.js.Reset()
	if err := json.NewEncoder(&b.js).Encode(rec); err != nil {
		return nil, err
	}
	js := b.js.Bytes()
	js = js[:len(js)-1] // Encode's newline: the bytes are json.Marshal's
	if need := s2.MaxEncodedLen(len(js)); cap(b.block) < need {
		b.block = make([]byte, need)
	}
	block := s2.EncodeBetter(b.block[:cap(b.block)], js)
	out := make([]byte, 1+len(block))
	out[0] = compressedRecord
	copy(out[1:], block)
	return out, nil
}

// recordBuffer is encodeRecord's scratch space: a record's JSON and its S2
// block.
type recordBuffer struct {
	js    bytes.Buffer
	block []byte
}

// maxPooledRecord is the largest scratch space kept for reuse: a record
// with hundreds of invoices is rare, and its buffers are left to the
// garbage collector.
const maxPooledRecord = 64 << 10

// recordBuffers holds recordBuffers for reuse.
var recordBuffers = sync.Pool{New: func() any { return new(recordBuffer) }}

// put returns b to recordBuffers unless it has grown past maxPooledRecord.
func (b *recordBuffer) put() {
	if b.js.Cap() > maxPooledRecord || cap(b.block) > maxPooledRecord {
		return
	}
	recordBuffers.Put(b)
}

// maxDecodedRecord bounds what a compressed stored value may decode to: far
// above any record, and it keeps a damaged length header from making each
// read of it allocate up to 4 GiB before the damage shows.
const maxDecodedRecord = 16 << 20

// decodeValue decodes a stored record, compressed or plain JSON, into v.
func decodeValue(data []byte, v any) error {
	if len(data) > 0 && data[0] == compressedRecord {
		n, err := s2.DecodedLen(data[1:])
		if err != nil {
			return err
		}
		if n > maxDecodedRecord {
			return fmt.Errorf("damaged record: it claims to decode to %d bytes", n)
		}
		js, err := s2.Decode(nil, data[1:])
		if err != nil {
			return err
		}
		data = js
	}
	return json.Unmarshal(data, v)
}

// decodeRecord decodes a stored record.
func decodeRecord(v []byte, rec *schemas.OrderRecord) error {
	if err := decodeValue(v, rec); err != nil {
		return fmt.Errorf("decode order: %w", err)
	}
	return nil
}

// syncDir fsyncs the directory dir, so that the entries created in it are
// durable. A variable, so that a test can see it called.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return err
	}
	return d.Close()
}
