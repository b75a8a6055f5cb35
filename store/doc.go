// Package store is the consumer's durable order store: its memory of every
// order it has seen, kept in one bbolt file in the consumer's data
// directory. Each order is one schemas.OrderRecord, keyed by
// schemas.OrderKey (seller tax number, order number).
//
// # Single instance
//
// Open takes bbolt's exclusive file lock (flock). It is the single-instance
// guard of the whole service: a second consumer pointed at the same data
// directory, in this process or another, fails to open the store with
// ErrLocked after Config.LockTimeout instead of issuing invoices twice.
//
// # Layout
//
// The file holds four top-level buckets:
//
//	orders     key → schemas.OrderRecord: a 0 byte, then its JSON compressed with S2
//	states     one sub-bucket per schemas.OrderState: key → empty value
//	documents  key → JSON array of PDF links: orders with issued invoices whose PDFs are still to be kept
//	meta       "format" → "2", the layout version; "probe" → the last Probe's time;
//	           "mark:<name>" → an 8-byte big-endian counter (RaiseMark)
//
// Layout version 1 stored the records as plain JSON; version 2 reads such
// records (they start with '{') and marks the file version 2 when it opens
// it, so that an older build refuses the file instead of misreading it.
// Pages are filled to 80% before they split: order numbers mostly grow
// within a seller, so new records land on the last pages of their seller's
// range, and the room left lets the newest records grow when they are
// saved as issued without splitting their page again (fillPercent).
//
// A key is the seller tax number, one NUL byte and the order number:
//
//	seller + "\x00" + orderNo
//
// Neither part may be empty or contain NUL (ErrInvalidKey), so keys sort by
// seller and then by order number, which is the order Scan returns. The
// states sub-buckets are a secondary index: a key is in exactly the
// sub-bucket named by its record's State, maintained in the same
// transaction as the record, so Scan and Counts read one state without
// touching the others.
//
// The documents bucket is the pending-documents index of the consumer's
// document keeper (pipeline.DocumentKeeper). The Put that moves an order to
// issued with at least one invoice that has a PDF URL adds its key, in the
// same transaction, as does the Put of a split order rejected with the
// invoices that were issued before the rest failed; DocumentsKept removes keys once the PDFs are kept, and
// PendingDocuments and CountPendingDocuments read it. Each entry carries
// its invoices' PDF links, so that the keeper never reads the records
// themselves: going through them after a 200,000-request backlog mapped the
// rest of the file into the consumer's memory (its peak RSS rose from 230
// to 257 MiB). Because the listing is
// part of the issued write, no order's documents are forgotten by a crash,
// a restart or a keeper that yields to a backlog. Files written before this
// bucket existed get it, empty, when opened: the orders they issued are not
// listed (their documents are fetched when first asked for, as before). An
// entry that cannot be decoded (a damaged file) is read from the order's
// record instead; when that fails too, PendingDocuments returns the order
// marked Damaged rather than an error, so that the orders after it are
// still kept.
//
// # State machine
//
// Every Put is checked, against the record stored when its transaction
// runs, by the optimistic version rule (the record must be the one the
// writer read: same Version, or none for Version 0) and by
// schemas.CheckTransition, which owns the state machine and the
// fingerprint rules (issued is final, rejected may only start over with a
// different request, failed may also resume with the same one, every other
// move keeps the fingerprint). The store does not re-implement those rules;
// it applies them to every write.
//
// # Durability and group commit
//
// A Put that returns nil is on disk: its transaction was committed and
// fsynced (unless Config.NoSync, which is for tests), and a file Open
// created has its directory entry fsynced too. One transaction per
// write costs one fsync per write, a few hundred to a few thousand writes
// per second; the consumer runs dozens of workers, so the store commits
// writes in groups.
//
// Put encodes the record in the caller's goroutine and hands it to a single
// commit goroutine. That goroutine takes every write queued while the
// previous transaction was committing (at most Config.MaxBatch; waiting
// Config.MaxBatchDelay for more when set, and otherwise, while concurrent
// writers keep it busy, Config.BusyBatchDelay), applies them in one bbolt write
// transaction, in arrival order, and answers each waiting Put once the
// transaction has committed. Each write is checked against the committed
// state plus the writes before it in the same transaction, so two writes to
// one key in one batch behave exactly as if they were made one after the
// other. A write that fails its own checks (ErrVersionConflict,
// schemas.ErrIllegalTransition, schemas.ErrFingerprintMismatch) changes
// nothing and is answered with its error; the others in its batch go on. If
// the transaction fails to commit, every write in it is answered with an
// error wrapping ErrWriteFailed (in doubt only if bbolt's last flush alone
// failed, after the meta page was written: bbolt then counts the
// transaction, and the store commits again at once so that the disk holds
// what reads show; see ErrWriteFailed), none is
// acknowledged, and Healthy reports the failure until a Probe succeeds: a
// scratch write of the file's next growth beside it, in a scratch file as
// long as the store file will be after that growth (a limit on one file's
// size stops it too), and a heartbeat commit. A data directory that does
// not let the probe create its scratch file, while the store file in it
// stays writable, gets the disk's free space and the file size limit
// looked up instead: refusing there would keep the store unhealthy for
// good although its commits succeed.
//
// Taking only what is queued groups poorly when commits are quick: under the
// consumer's full load the store averaged under two writes a commit, and
// each commit's two fdatasyncs competed with JetStream's on the same disk.
// So while writes come from several writers at once and fast enough that
// at least two more are expected within BusyBatchDelay (2 ms by default,
// judged over the last 50 ms), the commit goroutine waits that long for
// them, or until the batch is as large as the largest of those 50 ms (all
// the writers are in it then). Once a second the wait runs its full length
// instead, so that the estimate of the writers can grow: ending every wait
// at the largest batch so far kept it at whatever the first batches held
// (with 32 writers under the race detector, 16–23 a commit where a full
// wait gathers all 32). In default-mode 50,000-request runs that
// cut the commits from 34,000–61,000 to 12,000–14,000 for 100,000 writes
// and halved the store's commit time; a request pays up to two such waits.
// A lone writer, or a trickle of writes, never waits.
//
// PutPatient is a Put that does not make the store commit at once: a batch
// of patient writes only waits up to Config.PatientDelay (2 ms by default)
// for a write that is not patient, and commits with it. The pipeline saves
// an issued order this way while it publishes the order's result, so the
// save costs no latency of its own, and the claims that a request waits for
// before its provider call queue behind fewer commits: at 1,000 requests/s
// (`--store-busy-delay 0`) the store went from 1.1–1.2 to 2.0–2.1 writes a
// commit, and from 80–82% of the time committing to 43–51%.
//
// The checks need only the stored record's version, state and fingerprint.
// The commit goroutine remembers those of the records it committed
// recently (heads: the last 2,048 to 4,096, with each written value's
// length and 64-bit sum), and a write replacing one of them, such as an
// issued order's save after its claim, is checked from them instead of
// decompressing and decoding the stored value, which had been a fifth of
// the store's CPU. A stored value that differs from the remembered one is
// decoded as before.
//
// bbolt's own DB.Batch is not used: it may run a function twice, and it
// cannot answer a failed check without failing or retrying its neighbours.
//
// Prune deletes old records in a finished state other than issued
// (schemas.OrderState.Finished: rejected) through the same commit
// goroutine, a chunk at a time, re-checking each record in the transaction
// so that an order restarted meanwhile is kept. Issued records are tax
// records and are kept forever; failed ones are kept because a replayed
// dead letter resumes them. Reads (Get, Scan, Counts, WriteTo) use
// bbolt read transactions and never wait for the commit goroutine.
package store
