package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog bounds how long the requests still in the request stream have
// waited. Watching one (Pipeline.WatchBacklog) is an opt-in that trades a
// guarantee for latency.
//
// It lets the pipeline skip the durable claim before submitting a new order
// to a provider whose submissions are repeatable for a while
// (providers.RepeatableSubmitter). Without the claim, a crash between the
// submission and the save of its answer leaves no record of it, so a later
// delivery submits again: harmless while the provider still answers the
// repeat from the first submission. Such a submission came from a request
// that was never acknowledged and so still waits in the request stream; it
// happened no earlier than the oldest waiting request was published. The
// claim is skipped only while that is recent enough, and a redelivered
// request with no record is looked for at the provider first, from its
// publication on.
//
// What it does not cover: after such a crash, an outage longer than the
// window, and another request for the same order (an identical copy, or a
// corrected one) taken before the first is redelivered, the other request
// is submitted after the provider has forgotten the first: a second
// invoice. A claim would have made it wait for, or conflict with, the
// first. And a redelivered request older than the window that was never
// submitted (a held seller's, overnight) is searched for by its content
// (jumdata's list has no order number), so an identical invoice issued to
// the same buyer since its publication would be taken for its own.
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
