package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrConsumerInUse is returned by EnsureAlone when another client is
// pulling from the request consumer.
var ErrConsumerInUse = errors.New("another client is pulling from the request consumer")

// AloneCheck is what EnsureAlone saw; Waited is zero when the consumer
// showed no sign of another client in its first two looks.
type AloneCheck struct {
	// Waited is how long EnsureAlone watched the consumer.
	Waited time.Duration
	// InFlight is the consumer's count of delivered, unacknowledged
	// messages at the first look (a predecessor's, after a crash or a
	// stop that did not finish).
	InFlight int
}

// EnsureAlone makes sure that no other client pulls from the request
// consumer c before this instance starts to: each instance keeps its own
// order store, so two instances on one consumer (one partition) would each
// take the other's redeliveries for new orders, and only the providers'
// own idempotency would stand between a requeued order and a second
// invoice.
//
// A consumer with no pull request waiting, no delivery and no
// acknowledgement over an eighth of an expiry is taken after that look,
// messages in flight or not (a predecessor's after a crash: the server
// drops the pull requests of a connection it has seen close, and a client
// that is gone acknowledges nothing). Otherwise (another instance at work,
// or the pull requests of a predecessor whose connection the server still
// believes open) it watches for two pull expiries: a pull request still
// waiting after the first (those of a client that is gone expire within
// one), or a delivery or an acknowledgement during the second, is another
// client's, and EnsureAlone returns ErrConsumerInUse. Acknowledgements
// are what show a client whose workers are all busy and whose pull buffer
// is full (a backlog and a slow provider): it has no pull request waiting
// and takes no delivery for seconds, but acknowledges each request it
// finishes. One none of whose workers finishes anything for that eighth
// of an expiry goes unseen; so do two clients that start at the same
// moment.
// expiry is the pull expiry of the clients (PullExpiry); 0 means
// PullExpiry.
func EnsureAlone(ctx context.Context, c jetstream.Consumer, expiry time.Duration) (AloneCheck, error) {
	if expiry <= 0 {
		expiry = PullExpiry
	}
	first, err := c.Info(ctx)
	if err != nil {
		return AloneCheck{}, fmt.Errorf("request consumer info: %w", err)
	}
	check := AloneCheck{InFlight: first.NumAckPending}
	// A client that acknowledges as fast as it is delivered to shows
	// neither a waiting pull request nor a message in flight for an
	// instant: a second look sees its deliveries and acknowledgements.
	// Messages in flight with nothing waiting, delivered or acknowledged
	// are a predecessor's, whose connection the server has closed (a
	// crash).
	second, err := lookAfter(ctx, c, expiry/8)
	if err != nil {
		return check, err
	}
	if first.NumWaiting == 0 && second.NumWaiting == 0 && second.Delivered.Consumer == first.Delivered.Consumer && !ackedSince(first, second) {
		return check, nil
	}
	settle := expiry + expiry/4
	start := time.Now()
	before, err := lookAfter(ctx, c, settle)
	if err != nil {
		return check, err
	}
	after, err := lookAfter(ctx, c, settle)
	check.Waited = time.Since(start)
	if err != nil {
		return check, err
	}
	waiting := max(before.NumWaiting, after.NumWaiting)
	var delivered uint64
	if after.Delivered.Consumer > before.Delivered.Consumer {
		// Not the other way round: a durable recreated, or a new leader
		// behind the old one, is no delivery (and no uint64 wrap).
		delivered = after.Delivered.Consumer - before.Delivered.Consumer
	}
	acked := ackedSince(before, after)
	if waiting > 0 || delivered > 0 || acked {
		acks := ""
		if acked {
			acks = ", and took acknowledgements meanwhile"
		}
		return check, fmt.Errorf("%w: consumer %s on stream %s had %d pull request(s) waiting and made %d deliveries in %s, none of them to this instance%s",
			ErrConsumerInUse, after.Name, after.Stream, waiting, delivered, settle.Round(100*time.Millisecond), acks)
	}
	return check, nil
}

// ackedSince reports whether the consumer was acknowledged to between two
// looks: the server's time of its last acknowledgement (AckFloor.Last,
// set by every ack it takes) moved. A new consumer leader starts without
// one, which is no acknowledgement.
func ackedSince(a, b *jetstream.ConsumerInfo) bool {
	if b.AckFloor.Last == nil {
		return false
	}
	return a.AckFloor.Last == nil || b.AckFloor.Last.After(*a.AckFloor.Last)
}

// lookAfter reads the consumer's info after d.
func lookAfter(ctx context.Context, c jetstream.Consumer, d time.Duration) (*jetstream.ConsumerInfo, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("request consumer info: %w", err)
	}
	return ci, nil
}
