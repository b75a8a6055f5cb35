package pipeline

import (
	"context"
	"sync"

	"github.com/fapiaohub/invoicer/schemas"
)

// saving tracks the issued records being saved while their result is
// already published, so that a read of the order store through Orders
// never answers older than a result the pipeline has published, and the
// provider calls that such a record counted when its save failed, so that
// the record saved at last counts them too.
type saving struct {
	mu   sync.Mutex
	busy map[schemas.OrderKey]schemas.OrderRecord
	// uncounted holds, by order, the calls of an issued record whose save
	// failed, until a save of the order lands.
	uncounted map[schemas.OrderKey]calls
}

// calls are the provider calls counted for an order's request.
type calls struct {
	fingerprint string
	attempts    int
}

// failed notes that the save of rec, an issued record whose result went
// out counting rec.Attempts calls, failed: the stored record counts only
// the calls before its claim, and the delivery that saves the order at last
// asks the provider once more. Its result, a repetition of the first, would
// count fewer calls than the first did.
func (s *saving) failed(rec schemas.OrderRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uncounted == nil {
		s.uncounted = map[schemas.OrderKey]calls{}
	}
	s.uncounted[rec.Key()] = calls{fingerprint: rec.Fingerprint, attempts: rec.Attempts}
}

// count raises the Attempts of rec, an order's record as stored, to the
// calls of the same request that a failed save could not record (failed).
func (s *saving) count(rec *schemas.OrderRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.uncounted[rec.Key()]; ok && c.fingerprint == rec.Fingerprint && c.attempts > rec.Attempts {
		rec.Attempts = c.attempts
	}
}

// saved forgets the uncounted calls of key once a record of the order is
// saved: the delivery that saved it counted them (count).
func (s *saving) saved(key schemas.OrderKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.uncounted, key)
}

// begin marks rec, the record of key, as being saved; the returned
// function ends it. The per-order lock means at most one save of an order
// at a time.
func (s *saving) begin(key schemas.OrderKey, rec schemas.OrderRecord) (end func()) {
	s.mu.Lock()
	if s.busy == nil {
		s.busy = map[schemas.OrderKey]schemas.OrderRecord{}
	}
	s.busy[key] = rec
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.busy, key)
		s.mu.Unlock()
	}
}

// record returns the record of key being saved, if one is.
func (s *saving) record(key schemas.OrderKey) (schemas.OrderRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.busy[key]
	return rec, ok
}

// Orders returns the order store as the pipeline's readers (the status
// service, the partner API) should use it: a Get of an order whose issued
// result is published while its record is being saved answers the record
// being saved, at once, so that a subscriber that asks about an order as
// soon as its result arrives finds it issued, and a save that takes long
// (a failing disk) holds up no reader. Should that save fail, the next
// delivery of the request finds the order claimed, asks the provider, and
// saves the same invoice. An order being submitted without a claim
// (Pipeline.WatchBacklog) reads as the record its claim would have left.
// Writes pass through.
func (p *Pipeline) Orders() Store { return consistentStore{Store: p.store, p: p} }

type consistentStore struct {
	Store
	p *Pipeline
}

func (c consistentStore) Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	if rec, ok := c.p.saving.record(key); ok {
		return rec, true, nil
	}
	return c.p.lookup(ctx, key)
}
