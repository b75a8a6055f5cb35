package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// Marks keeps durable counters (store.DB implements it). The pipeline keeps
// one per request stream: the stream sequence below which every request it
// has submitted without a claim lies (the unclaimed mark).
type Marks interface {
	// RaiseMark durably raises the mark called name to v; a mark never
	// goes down. When it returns nil the mark is on disk.
	RaiseMark(ctx context.Context, name string, v uint64) error
	// Mark returns the mark called name, 0 when it was never raised.
	Mark(name string) (uint64, error)
}

// markLead is how far past a request's stream sequence the unclaimed mark
// is raised, so that it is raised once per markLead requests, in the
// background while the requests below it are taken. It is also the most
// requests never taken that RecoverUnclaimed may record as possibly
// submitted after a crash.
const markLead = 256

// unclaimedMarkName is the name of the unclaimed mark of a request stream.
func unclaimedMarkName(stream string) string { return "unclaimed:" + stream }

// horizons holds the unclaimed marks of the request streams (one, in
// practice) as far as they are known to be on disk.
type horizons struct {
	mu    sync.Mutex
	marks Marks
	by    map[string]*horizon
}

// horizon is the unclaimed mark of one stream.
type horizon struct {
	durable uint64        // on disk
	raising chan struct{} // closed when the raise in progress ends; nil when none
	err     error         // the last raise's failure
}

// cover returns once the unclaimed mark of stream is above seq on disk,
// raising it first if it is not, and starts raising it in the background
// when seq comes within half the lead of it. An error means the mark
// could not be raised: the request must then be claimed.
func (h *horizons) cover(ctx context.Context, stream string, seq uint64) error {
	for {
		h.mu.Lock()
		z := h.by[stream]
		if z == nil {
			v, err := h.marks.Mark(unclaimedMarkName(stream))
			if err != nil {
				h.mu.Unlock()
				return err
			}
			z = &horizon{durable: v}
			if h.by == nil {
				h.by = map[string]*horizon{}
			}
			h.by[stream] = z
		}
		if seq < z.durable {
			if z.raising == nil && seq+markLead/2 >= z.durable {
				h.raise(stream, z, seq+markLead)
			}
			h.mu.Unlock()
			return nil
		}
		if z.raising == nil {
			if z.err != nil {
				err := z.err
				z.err = nil // the next request tries again
				h.mu.Unlock()
				return err
			}
			h.raise(stream, z, seq+markLead)
		}
		wait := z.raising
		h.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// raise raises z to v in the background; h.mu is held.
func (h *horizons) raise(stream string, z *horizon, v uint64) {
	done := make(chan struct{})
	z.raising = done
	go func() {
		err := h.marks.RaiseMark(context.Background(), unclaimedMarkName(stream), v)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil {
			z.durable = max(z.durable, v)
		}
		z.err = err
		z.raising = nil
		close(done)
	}()
}

// RecoverUnclaimed must run when a consumer starts, before it takes any
// request. A request submitted without a claim (Pipeline.WatchBacklog)
// leaves no record of its order until its answer is saved; a crash in
// between leaves the order unrecorded, and another request for it (an
// identical copy, or a corrected one) taken before the first is delivered
// again would be submitted too: after an outage longer than the provider's
// repeat window, a second invoice. Such a request was not acknowledged, so
// it is still in the request stream, below the stream's unclaimed mark
// (which the pipeline raises durably before it submits without a claim).
//
// RecoverUnclaimed reads every request of filter (the consumer's subjects)
// below that mark still in stream. For each valid one whose order has no
// record, and whose seller's provider could have taken it without a claim,
// it saves the record a claim would have left: possibly submitted since the
// request's publication. That request's next delivery then asks the
// provider first, and another request for the order waits for it (a
// copy) or conflicts with it (a corrected one), as after a crash with a
// claim. A request that was never taken gets such a record too; asking
// first costs it nothing within the provider's repeat window.
//
// It returns how many orders it recorded. It runs whether or not the
// pipeline watches a backlog now, since an earlier run may have: with no
// mark there is nothing to read. An error means the state of some request
// is unknown: the consumer must not start.
func (p *Pipeline) RecoverUnclaimed(ctx context.Context, stream jetstream.Stream, filter string, marks Marks) (int, error) {
	name := stream.CachedInfo().Config.Name
	mark, err := marks.Mark(unclaimedMarkName(name))
	if err != nil || mark == 0 {
		return 0, err
	}
	recorded := 0
	for seq := uint64(1); seq < mark; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return recorded, fmt.Errorf("recover unclaimed requests: read request stream from #%d: %w", seq, err)
		}
		if m.Sequence >= mark {
			break
		}
		seq = m.Sequence + 1
		ok, err := p.recordUnclaimed(ctx, m)
		if err != nil {
			return recorded, fmt.Errorf("recover unclaimed requests: request #%d: %w", m.Sequence, err)
		}
		if ok {
			recorded++
		}
	}
	return recorded, nil
}

// recordUnclaimed saves the possibly-submitted record of the request m
// carries, if it may have been submitted without a claim and its order has
// no record; it reports whether it saved one.
func (p *Pipeline) recordUnclaimed(ctx context.Context, m *jetstream.RawStreamMsg) (bool, error) {
	d, err := p.validator.Decode(m.Data, p.cfg.Subjects.SellerOf(m.Subject))
	if err != nil || !d.Valid() {
		return false, nil // answered without a record, never submitted
	}
	req := d.Request
	prov, ok := p.providers.Provider(req.SellerTaxNum)
	if !ok {
		return false, nil
	}
	rs, ok := prov.(providers.RepeatableSubmitter)
	if !ok || rs.RepeatableFor(&providers.Call{Request: req}) <= 0 {
		return false, nil // always claimed
	}
	key := schemas.OrderKey{Seller: req.SellerTaxNum, OrderNo: req.OrderNo}
	if _, found, err := p.store.Get(ctx, key); err != nil || found {
		return false, err
	}
	rec := schemas.OrderRecord{
		Seller: key.Seller, OrderNo: key.OrderNo, Kind: req.Kind, Fingerprint: d.Fingerprint,
		Provider: prov.Name(), ReceivedAt: p.cfg.Now(), Warnings: listWithin(d.Warnings, maxListedBytes),
		State: schemas.StateSubmitting, Submissions: 1, SubmittedAt: m.Time,
	}
	if _, err := p.store.Put(ctx, rec); err != nil {
		return false, err
	}
	return true, nil
}

// unrecorded holds the orders submitted without a claim whose answer has
// not been saved since (the save failed): their next request looks for
// them first. Only this process's: after a restart RecoverUnclaimed has
// recorded them.
type unrecorded struct {
	n  atomic.Int64 // len(by), read without the lock
	mu sync.Mutex
	by map[schemas.OrderKey]struct{}
}

func (u *unrecorded) add(key schemas.OrderKey) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.by == nil {
		u.by = map[schemas.OrderKey]struct{}{}
	}
	u.by[key] = struct{}{}
	u.n.Store(int64(len(u.by)))
}

func (u *unrecorded) remove(key schemas.OrderKey) {
	if u.n.Load() == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.by, key)
	u.n.Store(int64(len(u.by)))
}

func (u *unrecorded) has(key schemas.OrderKey) bool {
	if u.n.Load() == 0 {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.by[key]
	return ok
}
