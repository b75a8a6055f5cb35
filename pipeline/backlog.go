package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlog bounds how long the requests still in the request stream have
// waited.
//
// It lets the pipeline skip the durable claim before submitting a new order
// to a provider whose submissions are repeatable for a while
// (providers.RepeatableSubmitter). Without the claim, a crash between the
// submission and the save of its answer leaves no record of it, so a later
// delivery submits again: harmless while the provider still answers the
// repeat from the first submission. Any such submission came from a request
// that is still in the request stream (it was never acknowledged: nothing
// is acknowledged before it is saved), so it happened no earlier than the
// oldest waiting request was published. While that is recent enough, a
// repeat is harmless; when it is not, the pipeline claims every order, and
// asks the provider before submitting an order it has no record of whose
// request was delivered before. (A request delivered for the first time
// cannot have been submitted by an earlier delivery. It could only meet an
// unrecorded submission made for an identical copy of it that is still
// waiting from before a crash and an outage longer than the window; such a
// copy is delivered again first unless both are taken at once.)
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
