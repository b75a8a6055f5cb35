package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fapiaohub/invoicer/schemas"
)

// bucketDocuments is the pending-documents index: the keys of orders with
// issued invoices (issued, or rejected after a part of a split order was
// issued) whose invoice documents (PDFs) have yet to be kept, each with the
// JSON array of its invoices' PDF links (documentsValue). A Put that moves
// an order to issued, or to rejected with invoices, with at least one PDF
// link adds it in the same transaction; DocumentsKept removes keys. The links are copied so that
// reading the index never reads the records themselves: after a backlog
// the keeper goes through tens of thousands of entries, and reading each
// record would map most of the file into the consumer's memory.
var bucketDocuments = []byte("documents")

// PendingDocument is an order with issued invoices whose documents are still
// to be kept.
type PendingDocument struct {
	// Key is the order.
	Key schemas.OrderKey
	// PdfURLs are the PDF links of the order's invoices, in invoice order
	// ("" for an invoice without one).
	PdfURLs []string
	// Damaged is set when neither the index entry nor the order's record
	// could be read (a damaged file): PdfURLs is empty and the order's
	// documents cannot be kept until the file is repaired. The entry stays
	// in the index.
	Damaged error
}

// documentsValue returns the index value of a record with issued invoices:
// its invoices' PDF links as a JSON array, or nil when it has none.
func documentsValue(rec *schemas.OrderRecord) []byte {
	urls := make([]string, len(rec.Invoices))
	has := false
	for i, inv := range rec.Invoices {
		urls[i] = inv.PdfURL
		has = has || inv.PdfURL != ""
	}
	if !has {
		return nil
	}
	v, _ := json.Marshal(urls) // a []string always marshals
	return v
}

// PendingDocuments returns orders with issued invoices whose documents have
// yet to be kept (see DocumentsKept), in key order, starting after the key
// after (the zero OrderKey: from the first). It looks at up to n keys; a key for which
// skip returns true is passed over. next is the last key looked at, to pass
// as after for the following call, and the zero OrderKey once the index has
// no more. It reads the index only, not the orders' records, unless an
// entry cannot be decoded: its links are then read from the order's record,
// and when that fails too the order is returned with Damaged set, so that one
// damaged entry never hides the orders after it. Orders issued by builds
// older than this index are not in it. Errors: ErrClosed, ctx's error.
func (db *DB) PendingDocuments(ctx context.Context, after schemas.OrderKey, n int, skip func(schemas.OrderKey) bool) (docs []PendingDocument, next schemas.OrderKey, err error) {
	if err := ctx.Err(); err != nil {
		return nil, schemas.OrderKey{}, fmt.Errorf("pending documents: %w", err)
	}
	var from []byte
	if after != (schemas.OrderKey{}) {
		// As given, unchecked: after may be a damaged key this method
		// returned as next, and the read goes on after it.
		from = rawKey(after)
	}
	n = max(n, 1)
	err = db.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDocuments).Cursor()
		orders := tx.Bucket(bucketOrders)
		looked := 0
		k, v := seekAfter(c, from)
		for ; k != nil && looked < n; k, v = c.Next() {
			looked++
			key := decodeKey(k)
			next = key
			if skip != nil && skip(key) {
				continue
			}
			if _, err := encodeKey(key); err != nil {
				// A damaged key (a NUL too many, a part missing): no
				// order has it, and it is passed over with the error.
				docs = append(docs, PendingDocument{Key: key, Damaged: fmt.Errorf("documents index key %q: %w", k, err)})
				continue
			}
			docs = append(docs, pendingDocument(key, v, func() []byte { return orders.Get(k) }))
		}
		if k == nil {
			next = schemas.OrderKey{} // the index has no more
		}
		return nil
	})
	if err != nil {
		return nil, schemas.OrderKey{}, fmt.Errorf("pending documents: %w", err)
	}
	return docs, next, nil
}

// pendingDocument reads one index entry, falling back to the order's record
// (record returns it, nil when there is none) only when the entry cannot be
// decoded: reading every record would map most of the file into memory.
func pendingDocument(key schemas.OrderKey, entry []byte, record func() []byte) PendingDocument {
	d := PendingDocument{Key: key}
	entryErr := json.Unmarshal(entry, &d.PdfURLs)
	if entryErr == nil {
		return d
	}
	d.PdfURLs = nil
	stored := record()
	if stored == nil {
		d.Damaged = fmt.Errorf("documents index entry of %s: %w; no order record to read the links from", key, entryErr)
		return d
	}
	var rec schemas.OrderRecord
	if err := decodeRecord(stored, &rec); err != nil {
		d.Damaged = fmt.Errorf("documents index entry of %s: %w; its record: %w", key, entryErr, err)
		return d
	}
	for _, inv := range rec.Invoices {
		d.PdfURLs = append(d.PdfURLs, inv.PdfURL)
	}
	return d
}

// DocumentsKept removes orders from the pending-documents index once their
// documents are kept. Keys not in the index are ignored, and so are keys no
// order can have (ErrInvalidKey), which do not hold up the others: the
// error names them once the others are removed. The removal is one write
// of the commit goroutine, committed with the writes around it.
// Errors: ErrInvalidKey, ErrClosed, ErrWriteFailed, ctx's error.
func (db *DB) DocumentsKept(ctx context.Context, keys []schemas.OrderKey) error {
	kept := make([][]byte, 0, len(keys))
	var invalid []error
	for _, key := range keys {
		k, err := encodeKey(key)
		if err != nil {
			invalid = append(invalid, fmt.Errorf("documents kept: %s: %w", key, err))
			continue
		}
		kept = append(kept, k)
	}
	if len(kept) == 0 {
		return errors.Join(invalid...)
	}
	req := &request{kept: kept, done: make(chan struct{})}
	if err := db.submit(ctx, req); err != nil {
		return fmt.Errorf("documents kept: %w", err)
	}
	if req.err != nil {
		return fmt.Errorf("documents kept: %w", req.err)
	}
	return errors.Join(invalid...)
}

// CountPendingDocuments returns how many issued orders have documents yet
// to be kept. Errors: ErrClosed, ctx's error.
func (db *DB) CountPendingDocuments(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("count pending documents: %w", err)
	}
	n := 0
	err := db.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketDocuments).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count pending documents: %w", err)
	}
	return n, nil
}

// documentsKept deletes keys from the pending-documents index.
func (t *txn) documentsKept(keys [][]byte) error {
	for _, k := range keys {
		if t.documents.Get(k) == nil {
			continue
		}
		if err := t.documents.Delete(k); err != nil {
			return err
		}
		t.changed = true
	}
	return nil
}

// rawKey is encodeKey without its checks: a key's bytes, also those of a
// key decodeKey returned from a damaged one, for seeking past it.
func rawKey(key schemas.OrderKey) []byte {
	k := make([]byte, 0, len(key.Seller)+1+len(key.OrderNo))
	k = append(k, key.Seller...)
	k = append(k, 0)
	return append(k, key.OrderNo...)
}

// decodeKey is the inverse of encodeKey.
func decodeKey(k []byte) schemas.OrderKey {
	seller, orderNo, _ := bytes.Cut(k, []byte{0})
	return schemas.OrderKey{Seller: string(seller), OrderNo: string(orderNo)}
}
