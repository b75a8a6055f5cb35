package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// savingWait bounds how long a read waits for an issued record being
// saved: a save that takes longer is failing (a full disk), and the read
// then answers with what is stored.
const savingWait = 5 * time.Second

// saving tracks the issued records being saved while their result is
// already published, so that a read of the order store through Orders
// never answers older than a result the pipeline has published.
type saving struct {
	mu   sync.Mutex
	busy map[schemas.OrderKey]chan struct{}
}

// begin marks key as being saved; the returned function ends it. The
// per-order lock means at most one save of a key at a time.
func (s *saving) begin(key schemas.OrderKey) (end func()) {
	done := make(chan struct{})
	s.mu.Lock()
	if s.busy == nil {
		s.busy = map[schemas.OrderKey]chan struct{}{}
	}
	s.busy[key] = done
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.busy, key)
		s.mu.Unlock()
		close(done)
	}
}

// wait returns once key is not being saved, ctx ends or savingWait passes.
func (s *saving) wait(ctx context.Context, key schemas.OrderKey) {
	s.mu.Lock()
	done := s.busy[key]
	s.mu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(savingWait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
	}
}

// Orders returns the order store as the pipeline's readers (the status
// service, the partner API) should use it: a Get of an order whose issued
// result is published while its record is being saved waits for the save
// (at most 5 seconds), so that a subscriber that asks about an order as
// soon as its result arrives finds it issued. An order being submitted
// without a claim (Pipeline.WatchBacklog) reads as the record its claim
// would have left. Writes pass through.
func (p *Pipeline) Orders() Store { return consistentStore{Store: p.store, p: p} }

type consistentStore struct {
	Store
	p *Pipeline
}

func (c consistentStore) Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	c.p.saving.wait(ctx, key)
	return c.p.lookup(ctx, key)
}
