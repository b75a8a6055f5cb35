package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog bounds how long the requests still in the request stream have
// waited. Watching one (Pipeline.WatchBacklog) is an opt-in that takes a
// durable write off a request's way to its result, at the costs below.
//
// It lets the pipeline skip the durable claim before submitting a new order
// to a provider whose submissions are repeatable for a while
// (providers.RepeatableSubmitter), while no waiting request is older than
// that window. Without the claim, a crash between the submission and the
// save of its answer leaves no record of it. Such a submission came from a
// request that was delivered and never acknowledged, so it still waits in
// the request stream, below the consumer's delivered pointer and the
// stream's unclaimed mark, which the pipeline raises durably before it
// submits (Marks); RecoverUnclaimed records its order at the next start as
// a claim would have. Until the answer is saved, the order is claimed in
// memory (a save that fails leaves it so), and Pipeline.Orders reads it as
// submitting.
//
// What it costs, against the claim, after a stop not recorded as clean (a
// crash, a shutdown that timed out, an order left claimed only in memory;
// a clean stop leaves nothing to read: Pipeline.StoppedCleanly):
//   - RecoverUnclaimed cannot tell a request that was submitted from one
//     that was only delivered: it records every unrecorded order with a
//     request delivered and not acknowledged (in flight, held, waiting to
//     be delivered again) as possibly submitted. Each then asks the
//     provider first: harmless within the window; after it (a long outage,
//     a request held overnight) it is searched for by its content, as a
//     claimed order whose answer was lost is, and an identical invoice to
//     the same buyer issued since could be taken for it (two hold the
//     seller for a person). Given up later, such an order is failed after a
//     submission, and a corrected request for it gets a conflict (jumdata
//     cannot look up the earlier request).
//   - When an order has different requests there, it cannot tell which was
//     submitted: the order is saved as action_required without a
//     fingerprint, and every request for it gets a conflict (the order
//     number stays taken): a person must find out at the provider whether
//     one was invoiced. Past the result stream's duplicate window, a
//     request whose issued result went out before the stop then gets a
//     conflict too. Read up to the mark (a consumer created again), the
//     same may befall requests never delivered.
//   - It trusts the server's delivered pointer: a server that stops with
//     the consumer (the embedded one, a power loss) can forget its last
//     deliveries, and a request delivered then, submitted without a claim
//     and delivered again after the window, is submitted again. A request
//     that the validator refuses at the start (a stricter setting since)
//     is not recorded.
type Backlog interface {
	// OldestWaiting returns a time no later than the publication of every
	// request waiting in the request stream, and false when it has no
	// reading yet.
	OldestWaiting() (time.Time, bool)
}

// StreamBacklog is the Backlog of a work-queue request stream, read from
// the stream's state (the first message's time; acknowledged requests leave
// a work queue, so every message in it is waiting). Readings only get more
// conservative with age: a request waiting now was either in the stream at
// the reading, or published after it.
type StreamBacklog struct {
	stream jetstream.Stream

	mu    sync.Mutex
	bound time.Time
	ok    bool
}

// NewStreamBacklog returns the Backlog of stream; call Refresh once before
// the pipeline starts, and Run to keep it current.
func NewStreamBacklog(stream jetstream.Stream) *StreamBacklog {
	return &StreamBacklog{stream: stream}
}

// Refresh reads the stream's state once.
func (b *StreamBacklog) Refresh(ctx context.Context) error {
	before := time.Now()
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("read the request stream's oldest message: %w", err)
	}
	bound := before
	if info.State.Msgs > 0 && !info.State.FirstTime.IsZero() && info.State.FirstTime.Before(bound) {
		bound = info.State.FirstTime
	}
	b.mu.Lock()
	b.bound, b.ok = bound, true
	b.mu.Unlock()
	return nil
}

// Run refreshes the reading every interval until ctx ends, passing each
// failure to onError (which may be nil).
func (b *StreamBacklog) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Refresh(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// OldestWaiting implements Backlog.
func (b *StreamBacklog) OldestWaiting() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bound, b.ok
}
