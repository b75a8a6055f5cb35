package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// of an expiry goes unseen, and so do two clients that start at the same
// moment: WatchOwner catches those once they run.
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

// OwnerMetadataKey is the key of the durable request consumer's metadata
// that names the instance that took it last (Owner.String).
const OwnerMetadataKey = "invoicer-owner"

// ErrDurableTaken is reported by WatchOwner when another instance has
// taken the durable and this one is to stop.
var ErrDurableTaken = errors.New("another instance took the request consumer")

// Owner is an instance that takes the durable request consumer: when it
// started, and a name that says which it is (host, data directory,
// process).
type Owner struct {
	// Started is when the instance started.
	Started time.Time
	// Name says which instance it is; not empty (ParseOwner reads no
	// owner without one).
	Name string
}

// String renders the owner as the durable's metadata value: the start time
// (RFC 3339, nanoseconds, UTC), a space, the name.
func (o Owner) String() string {
	return o.Started.UTC().Format(time.RFC3339Nano) + " " + o.Name
}

// ParseOwner reads an owner record, the durable's metadata value under
// OwnerMetadataKey, as Owner.String writes it: the start time, a space,
// the name. ok is false for anything else: no record, or one edited by
// hand into another form (a time that does not parse, no name). It is the
// one reader of the record, for WatchOwner and for whatever names the
// owner to an operator.
func ParseOwner(s string) (o Owner, ok bool) {
	ts, name, found := strings.Cut(s, " ")
	if !found || name == "" {
		return Owner{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Owner{}, false
	}
	return Owner{Started: t, Name: name}, true
}

// is reports whether o and other are the same instance.
func (o Owner) is(other Owner) bool {
	return o.Started.Equal(other.Started) && o.Name == other.Name
}

// before reports whether o started before other (the name breaks a tie).
func (o Owner) before(other Owner) bool {
	if !o.Started.Equal(other.Started) {
		return o.Started.Before(other.Started)
	}
	return o.Name < other.Name
}

// ownerLookTimeout is the shortest time WatchOwner gives a look or a
// reclaim, however short its interval.
const ownerLookTimeout = 5 * time.Second

// OwnerWatch is WatchOwner's configuration.
type OwnerWatch struct {
	// Me is this instance, as EnsureConsumer wrote it.
	Me Owner
	// Interval between two looks; 0 means 5 seconds.
	Interval time.Duration
	// Away is how long without a look that could read the durable makes
	// this instance one that was away (cut off from the server, or
	// frozen); 0 means 6 intervals (30 seconds at the default interval).
	Away time.Duration
	// Reclaim writes Me into the durable again (Topology.EnsureConsumer
	// with this instance's settings).
	Reclaim func(ctx context.Context) error
	// OnError is told of a look or a reclaim that failed; nil ignores them.
	OnError func(error)
}

// WatchOwner closes the gap EnsureAlone leaves (two instances started at
// the same moment, or one whose workers showed nothing for a moment): every
// Interval it reads the durable's owner. When another instance has written
// itself there, the one that started first keeps the durable: if that is
// this one, it writes itself back (Reclaim); if it is the other, WatchOwner
// returns ErrDurableTaken, naming it, and this instance is to stop. Both
// compare the same two start times, so exactly one stops.
//
// Except after an absence: an instance that could not read the durable
// for longer than Away, and then finds a later one there, returns
// ErrDurableTaken too, instead of writing itself back. The other passed
// EnsureAlone while this one was gone (its pull requests had expired): it
// is this one's successor, started by an operator or a scheduler because
// this one was gone, and its order store holds the orders since. Only the
// earlier instance decides differently, and it writes nothing, so exactly
// one still stops.
//
// A durable without an owner (edited by hand, ParseOwner) is left as it is, and one
// the server does not have (deleted) is not reported to OnError: the
// consume loop reports it. WatchOwner returns nil when ctx ends.
func WatchOwner(ctx context.Context, c jetstream.Consumer, w OwnerWatch) error {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	if w.Away <= 0 {
		w.Away = 6 * w.Interval
	}
	fail := func(err error) {
		if w.OnError != nil {
			w.OnError(err)
		}
	}
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	// The last look that read the durable (the monotonic clock: a wall
	// clock set back must not hide an absence).
	lastRead := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, max(w.Interval, ownerLookTimeout))
		info, err := c.Info(lctx)
		cancel()
		if err != nil {
			// A durable the server does not have (deleted, with its
			// stream or alone) is the consume loop's to report and to
			// create again (LoopConfig.Recreate): said here too, it
			// would be said every Interval for as long as it lasts.
			gone := errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
			if ctx.Err() == nil && !gone {
				fail(fmt.Errorf("read the request consumer's owner: %w", err))
			}
			continue
		}
		away := time.Since(lastRead)
		lastRead = time.Now()
		other, ok := ParseOwner(info.Config.Metadata[OwnerMetadataKey])
		if !ok || other.is(w.Me) {
			continue
		}
		if other.before(w.Me) {
			return fmt.Errorf("%w (consumer %s on stream %s): %s, started %s, before this one (%s)",
				ErrDurableTaken, info.Name, info.Stream, other.Name, other.Started.Format(time.RFC3339), w.Me.Started.Format(time.RFC3339))
		}
		if away > w.Away {
			return fmt.Errorf("%w (consumer %s on stream %s): %s, started %s, while this one (started %s) could not read it for %s: that one is its successor",
				ErrDurableTaken, info.Name, info.Stream, other.Name, other.Started.Format(time.RFC3339), w.Me.Started.Format(time.RFC3339), away.Round(time.Second))
		}
		if w.Reclaim != nil {
			rctx, cancel := context.WithTimeout(ctx, max(w.Interval, ownerLookTimeout))
			if err := w.Reclaim(rctx); err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("write this instance back as the request consumer's owner: %w", err))
			}
			cancel()
		}
	}
}
