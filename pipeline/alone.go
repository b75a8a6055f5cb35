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
// showed no sign of another client at the first look.
type AloneCheck struct {
	// Waited is how long EnsureAlone watched the consumer.
	Waited time.Duration
	// InFlight is the consumer's count of delivered, unacknowledged
	// messages at the first look (a predecessor's, after a crash).
	InFlight int
}

// EnsureAlone makes sure that no other client pulls from the request
// consumer c before this instance starts to: each instance keeps its own
// order store, so two instances on one consumer (one partition) would each
// take the other's redeliveries for new orders, and only the providers'
// own idempotency would stand between a requeued order and a second
// invoice.
//
// A consumer with no pull request waiting, no message in flight and no
// delivery over an eighth of an expiry is taken after that look.
// Otherwise (a predecessor's messages after a crash, its
// pull requests not yet expired, or another instance at work) it watches
// for two pull expiries: a pull request still waiting after the first
// (the requests of a client that is gone expire within one), or a delivery
// during the second, is another client's, and EnsureAlone returns
// ErrConsumerInUse. A client whose workers are all busy and whose buffer
// is full for the whole second expiry, with nothing waiting, goes unseen.
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
	if first.NumWaiting == 0 && first.NumAckPending == 0 {
		// A client that acknowledges as fast as it is delivered to can
		// show neither for an instant: a second look sees its deliveries.
		second, err := lookAfter(ctx, c, expiry/8)
		if err != nil {
			return check, err
		}
		if second.NumWaiting == 0 && second.NumAckPending == 0 && second.Delivered.Consumer == first.Delivered.Consumer {
			return check, nil
		}
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
	delivered := after.Delivered.Consumer - before.Delivered.Consumer
	if waiting > 0 || delivered > 0 {
		return check, fmt.Errorf("%w: consumer %s on stream %s had %d pull request(s) waiting and made %d deliveries in %s, none of them to this instance",
			ErrConsumerInUse, after.Name, after.Stream, waiting, delivered, settle.Round(100*time.Millisecond))
	}
	return check, nil
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
