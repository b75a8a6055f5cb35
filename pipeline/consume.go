package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// LoopConfig configures the consume loop.
type LoopConfig struct {
	// Workers is the number of messages processed at once; 0 means 128. The
	// pull buffer holds as many messages as there are workers, so that no
	// message waits long in the client while its ack timer runs.
	Workers int
	// AckWait is the consumer's ack wait: slow messages send InProgress
	// every AckWait/3. 0 means 30 seconds.
	AckWait time.Duration
	// ProcessTimeout bounds the processing of one message, provider calls
	// included; 0 means 2 minutes. In-flight messages finish on a context
	// that cancelling Run's does not cancel, so this is also the longest a
	// shutdown waits for them, unless it abandons them (Loop.Abandon).
	ProcessTimeout time.Duration
	// Paused, when set, is asked before each message is processed; while it
	// returns an error (for example the store's disk failing) messages are
	// put back unprocessed and nothing is acknowledged. Those deliveries do
	// not count against the pipeline's MaxDeliver, nor do those of the
	// requests a stop put back while they waited for their order
	// (Loop.park). The loop keeps their count in memory; after a restart
	// the pipeline still gives a request that its provider answers "later"
	// MaxDeliver such answers (OrderRecord.Answers, order.exhausted). A
	// request that finds its order busy with another delivery is not put
	// back, but kept until the order is free (Loop.park): its waits are no
	// deliveries, for the server either.
	Paused func() error
	// Recreate, when set, is called when the server says that the
	// loop's request consumer does not exist (an operator deleted the
	// request stream, which takes its consumers with it, or the durable
	// alone): it creates them again with the instance's settings
	// (Topology.RecreateRequestConsumer), and the loop pulls from the new
	// consumer. It is first called RecreateSettle after the loop found
	// the consumer gone; until it succeeds (tried again after 1 s, the
	// wait doubling up to RecreateRetryMax) the loop takes nothing, Bound
	// is false and Missing says why. Its context ends with Run's, and with
	// Abandon: a stop gives up a try under way, which sends no request
	// to the server after it (one sent already is the server's to carry
	// out). Without it Run returns an error that wraps ErrConsumerMissing.
	Recreate func(ctx context.Context) (RecreatedConsumer, error)
}

// ErrConsumerMissing says that the server has no request consumer for the
// loop to pull from: its durable, or the request stream with it, was
// deleted.
var ErrConsumerMissing = errors.New("the request consumer does not exist (the request stream, or its durable, was deleted)")

// RecreateRetryMax is the longest wait between two tries to create a
// missing request consumer again (LoopConfig.Recreate).
const RecreateRetryMax = 30 * time.Second

// RecreateSettle is how long the loop waits, once it finds its request
// consumer gone, before its first try to create it again
// (LoopConfig.Recreate). The server tells the pulls waiting on a deleted
// durable, or on the durables of a deleted stream, before it removes the
// deleted one's files (nats-server v2.15.2 and v2.15.3), and gives no
// sign when it is done: a stream or durable created again before then is
// built on those files, or gets files of its own that the removal then
// takes, and the server stores nothing in it, answers no publish to it
// and refuses every update of it (ErrRecreatedBroken). The removal takes
// milliseconds; the wait leaves it a wide margin. A publisher that creates
// its missing results or dead-letter stream again
// (JetStreamPublisher.RecreateStreams) waits as long first, for the same
// reason.
const RecreateSettle = time.Second

// recreateTimeout bounds one try to create a missing request consumer
// again.
const recreateTimeout = 10 * time.Second

// PullExpiry is how long each of the loop's pull requests waits at the
// server. It is short so that shutdown is quick (Drain waits for the pull
// request in flight to expire) and so that the requests of a client that
// is gone expire soon (EnsureAlone).
const PullExpiry = 2 * time.Second

// Defaults of LoopConfig.
const (
	DefaultWorkers        = 128
	DefaultAckWait        = 30 * time.Second
	DefaultProcessTimeout = 2 * time.Minute
)

func (c LoopConfig) withDefaults() LoopConfig {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.ProcessTimeout <= 0 {
		c.ProcessTimeout = DefaultProcessTimeout
	}
	return c
}

// Loop pulls request messages from a JetStream consumer and feeds them to
// the pipeline with a fixed number of workers. It is the only place that
// acknowledges, naks, terminates and logs messages.
type Loop struct {
	cfg      LoopConfig
	pipeline *Pipeline
	consumer jetstream.Consumer
	log      zerolog.Logger
	metrics  *Metrics
	inFlight atomic.Int64
	bound    atomic.Bool
	// missing says why the loop has no request consumer to pull from
	// (Missing); nil while it has one.
	missing atomic.Pointer[error]

	// The stream's count of requests not yet delivered, as of the last
	// delivery, and that delivery's time (Behind).
	pending      atomic.Uint64
	lastDelivery atomic.Int64

	// putBack counts, by stream sequence, the deliveries of each request
	// put back unprocessed, while the pipeline was paused or, at a stop,
	// while it waited for its order (park): they are not counted against
	// MaxDeliver. Kept until the request is acknowledged or terminated; a
	// restart forgets them.
	putBackMu sync.Mutex
	putBack   map[uint64]int

	// deliverer is the durable that the loop's deliveries come from, as
	// far as Run knows (deliveredBy); only Run's goroutine uses it.
	deliverer deliverer

	// abandon is closed by Abandon.
	abandon     chan struct{}
	abandonOnce sync.Once
}

// errAbandoned is the cause of the cancellation of the messages in flight
// when Abandon is called, and the error logged for each.
var errAbandoned = errors.New("abandoned by a shutdown that could not wait any longer; delivered again")

// unprocessedPutBack records that the request at seq was put back
// unprocessed.
func (l *Loop) unprocessedPutBack(seq uint64) {
	l.putBackMu.Lock()
	defer l.putBackMu.Unlock()
	if l.putBack == nil {
		l.putBack = map[uint64]int{}
	}
	l.putBack[seq]++
}

// deliveries is the request's delivery count less the times it was put
// back unprocessed, at least 1.
func (l *Loop) deliveries(seq uint64, delivered int) int {
	l.putBackMu.Lock()
	defer l.putBackMu.Unlock()
	return max(delivered-l.putBack[seq], 1)
}

// settled forgets the put-backs of a request acknowledged or terminated.
func (l *Loop) settled(seq uint64) {
	l.putBackMu.Lock()
	defer l.putBackMu.Unlock()
	delete(l.putBack, seq)
}

// NewLoop returns a loop over consumer; metrics may be nil. With metrics,
// p's request streams report from now on whether their unclaimed marks are
// unknown (Metrics.UnclaimedMarkUnknown).
func NewLoop(cfg LoopConfig, p *Pipeline, consumer jetstream.Consumer, log zerolog.Logger, metrics *Metrics) *Loop {
	if metrics != nil {
		p.unclaimed.report(metrics.UnclaimedMarkUnknown)
	}
	return &Loop{cfg: cfg.withDefaults(), pipeline: p, consumer: consumer, log: log, metrics: metrics, abandon: make(chan struct{})}
}

// Abandon cuts short the messages in flight, for a shutdown that cannot
// wait for them any longer: Run stops taking messages, cancels the context
// of each message's processing and of the wait for its result's
// acknowledgement, acts on the outcomes and returns. The messages cut
// short are put back (each logged with "abandoned"), or, when that fails,
// delivered again after the ack wait: nothing is acknowledged that was not
// done. Run then returns once every provider call, store write and publish
// in flight has returned to its cancelled context. Abandon may be called
// more than once, before or during Run, from any goroutine.
func (l *Loop) Abandon() { l.abandonOnce.Do(func() { close(l.abandon) }) }

// Bound reports whether the loop is pulling from its consumer (for
// readiness).
func (l *Loop) Bound() bool { return l.bound.Load() }

// Missing returns why the loop takes no requests because its request
// consumer does not exist (ErrConsumerMissing, with the server's answer
// and, while LoopConfig.Recreate fails, its error), nil while it has one
// and once Run has returned.
func (l *Loop) Missing() error {
	if err := l.missing.Load(); err != nil {
		return *err
	}
	return nil
}

// setMissing records why the request consumer is missing (nil: it is
// not), for Missing and the metrics.
func (l *Loop) setMissing(err error) {
	if err == nil {
		l.missing.Store(nil)
	} else {
		l.missing.Store(&err)
	}
	if l.metrics != nil {
		v := 0.0
		if err != nil {
			v = 1
		}
		l.metrics.ConsumerMissing.Set(v)
	}
}

// behindFor is how long Behind trusts the last delivery's count of waiting
// requests: with no delivery for that long, the loop is not behind.
const behindFor = 2 * time.Second

// Behind reports whether requests are waiting in the stream beyond what
// the workers hold: more undelivered requests than there are workers, as
// of a delivery less than two seconds ago. Background work (the
// DocumentKeeper) yields to the requests while it does.
func (l *Loop) Behind() bool {
	return l.pending.Load() > uint64(l.cfg.Workers) && time.Since(time.Unix(0, l.lastDelivery.Load())) < behindFor
}

// InFlight returns the number of messages being processed.
func (l *Loop) InFlight() int64 { return l.inFlight.Load() }

// Run pulls and processes messages until ctx is cancelled, then shuts down in
// order: stop pulling, put the messages still in the pull buffer back
// (Nak, for immediate redelivery elsewhere) with those waiting for their
// order (park), let in-flight messages finish
// (each within ProcessTimeout, or until Abandon), wait for the raise of the
// unclaimed mark their processing started in the background (a store
// write, which Abandon does not cut short), return. Nothing is
// acknowledged that was not done.
func (l *Loop) Run(ctx context.Context) error {
	iter, err := l.consumer.Messages(jetstream.PullMaxMessages(l.cfg.Workers), jetstream.PullExpiry(PullExpiry))
	if err != nil {
		return fmt.Errorf("pull from consumer: %w", err)
	}
	l.bound.Store(true)
	defer l.bound.Store(false)
	l.deliverer = delivererOf(l.consumer)
	// A loop that no longer runs no longer tries to create a missing
	// consumer again: an instance that stopped, or stood down because
	// another took its durable, is not the one to act on it.
	defer l.setMissing(nil)

	// The messages taken are processed on work, which outlives ctx and
	// ends only with Abandon.
	work, abandon := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abandon(nil)

	// Results are published asynchronously: a worker hands the message to
	// an acker, which acknowledges it once the stream has acknowledged the
	// result, and takes the next message meanwhile.
	acks := make(chan *pendingAck, 2*l.cfg.Workers)
	var ackers sync.WaitGroup
	for range max(2, l.cfg.Workers/8) {
		ackers.Go(func() {
			for a := range acks {
				l.finish(work, a)
			}
		})
	}
	jobs := make(chan delivery)
	lot := &parking{stopped: ctx, again: make(chan *job), closing: make(chan struct{})}
	var workers sync.WaitGroup
	for range l.cfg.Workers {
		workers.Go(func() {
			for {
				select {
				case d, ok := <-jobs:
					if !ok {
						return
					}
					l.handle(work, d, acks, lot)
				case j := <-lot.again:
					l.process(work, j, acks, lot)
				}
			}
		})
	}
	// iter is replaced when the request consumer is created again
	// (rebind); pulling, the stopper drains the one in use.
	var iterMu sync.Mutex
	draining := false
	var stopper sync.WaitGroup
	finished := make(chan struct{})
	stopper.Go(func() {
		select {
		case <-ctx.Done():
			iterMu.Lock()
			draining = true
			iter.Drain() // stop pulling; what is buffered still comes out of Next
			iterMu.Unlock()
		case <-finished:
		}
	})
	stopper.Go(func() {
		select {
		case <-l.abandon:
			abandon(errAbandoned)
		case <-finished:
		}
	})

	var runErr error
	for {
		// Once abandoned, the loop no longer waits for the drained
		// iterator's buffer, which an outage may keep from ending.
		m, err := iter.Next(jetstream.NextContext(work))
		if work.Err() != nil {
			if err == nil {
				_ = m.Nak()
			}
			break
		}
		// A closed connection ends the iterator too, with both errors:
		// that is a failure, not a stop.
		if errors.Is(err, jetstream.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionClosed) {
			runErr = fmt.Errorf("pull from the request consumer: %w", err)
			break
		}
		if gone := l.consumerGone(work, err); gone != nil {
			if ctx.Err() != nil {
				break // shutting down: nothing more to take from it
			}
			// Not a stop: the iterator ended, or pulls nothing, because
			// the server has no consumer for it any more.
			next, err := l.rebind(ctx, work, iter, gone)
			if err != nil {
				runErr = err
				break
			}
			iterMu.Lock()
			if next != nil && draining {
				next.Stop()
				next = nil
			}
			if next != nil {
				iter = next
			}
			iterMu.Unlock()
			if next == nil {
				break // shutting down, or abandoned
			}
			continue
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			break
		}
		if err != nil {
			l.log.Warn().Err(err).Msg("pull from the request consumer")
			continue
		}
		if ctx.Err() != nil {
			_ = m.Nak() // shutting down: hand it back at once rather than after AckWait
			continue
		}
		// The consumer iter pulls from is l.consumer: rebind replaces
		// both here, before the next message is taken.
		select {
		case jobs <- l.deliveredBy(work, m):
		case <-work.Done():
			_ = m.Nak() // abandoned before a worker was free
		}
	}
	// The deliveries waiting for their order are put back (a stop or
	// Abandon has done so already); so is one that a worker's processing
	// parks from now on.
	close(lot.closing)
	close(jobs)
	workers.Wait()
	lot.wg.Wait()
	// The processing of the messages may have started raising the
	// unclaimed mark in the background: the raise is waited for here, as
	// the store writes of the messages are, so that it never meets a
	// closed store after the shutdown.
	l.pipeline.unclaimed.wait()
	close(acks)
	ackers.Wait()
	if runErr != nil || work.Err() != nil {
		iter.Stop() // a no-op after Drain
	}
	close(finished)
	stopper.Wait()
	return runErr
}

// consumerGone returns the server's answer that the request consumer does
// not exist, when err, Next's error, comes of that: the server said that
// the consumer was deleted (the iterator has stopped), or no pull was
// answered for two heartbeats (one sent when nothing answers for the
// consumer any more) and the consumer's info says it is not found. nil
// otherwise: a pull that failed for another reason (a lost connection)
// is the iterator's to retry.
func (l *Loop) consumerGone(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		return err
	case !errors.Is(err, jetstream.ErrNoHeartbeat):
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, recreateTimeout)
	defer cancel()
	_, ierr := l.consumer.Info(ictx)
	if errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(ierr, jetstream.ErrStreamNotFound) {
		return ierr
	}
	return nil
}

// rebind replaces iter, the iterator of a request consumer that the
// server says is gone (why), by one on the consumer created again
// (LoopConfig.Recreate), trying until it succeeds, ctx ends (nil: a
// shutdown) or work does (abandoned), either of which gives up the try
// under way too. The first try waits RecreateSettle, for the server to
// finish removing what was deleted. Meanwhile the loop is not bound and
// Missing says why. The log says that the consumer is gone (an error:
// its requests are gone when its stream was deleted); a first failure to
// create it again as a warning that the loop tries again (the server
// sometimes refuses once a file-storage stream created a moment after its
// deletion, "error creating store for stream", or breaks it, which
// Recreate finds and undoes: ErrRecreatedBroken), which the next try's
// success ends; a second failure in a row as an error, whatever its
// words, then each failure that differs from the one it said last, and
// at least once a minute while it lasts, as errors. Without Recreate it
// returns an error wrapping ErrConsumerMissing.
//
// Nothing is lost or taken twice by it: the requests in flight finish
// (their acknowledgements go nowhere when the stream was deleted, which
// took its requests with it), a stream created again is empty, and a
// durable created again over a stream that kept its requests delivers
// them again from the oldest, as after any redelivery: the order store
// answers those already answered.
func (l *Loop) rebind(ctx, work context.Context, iter jetstream.MessagesContext, why error) (jetstream.MessagesContext, error) {
	iter.Stop()
	l.bound.Store(false)
	missing := fmt.Errorf("%w: %w", ErrConsumerMissing, why)
	l.setMissing(missing)
	if l.cfg.Recreate == nil {
		return nil, missing
	}
	l.log.Error().Err(missing).Msg("the request consumer is gone: taking no requests; creating it again, with its stream if that is gone too, with this instance's settings")
	if !pause(ctx, work, RecreateSettle) {
		return nil, nil
	}
	logged, loggedAt := "", time.Now()
	for try, wait := 1, time.Second; ; try, wait = try+1, min(2*wait, RecreateRetryMax) {
		// A stop gives up the try under way, as Abandon does: an
		// instance stopping, or standing down because another took the
		// durable, must not create it again afterwards, writing itself
		// back into its owner record.
		rctx, cancel := context.WithTimeout(ctx, recreateTimeout)
		unhook := context.AfterFunc(work, cancel)
		rc, err := l.cfg.Recreate(rctx)
		unhook()
		cancel()
		var next jetstream.MessagesContext
		if err == nil {
			next, err = rc.Consumer.Messages(jetstream.PullMaxMessages(l.cfg.Workers), jetstream.PullExpiry(PullExpiry))
		}
		if err == nil {
			l.rebound(ctx, rc)
			return next, nil
		}
		if ctx.Err() != nil || work.Err() != nil {
			return nil, nil
		}
		failed := fmt.Errorf("%w; creating it again failed: %w", missing, err)
		l.setMissing(failed)
		switch {
		case try == 1:
			l.log.Warn().Err(failed).Dur("retry_in", wait).Msg("the request consumer is still missing: creating it again failed, trying again (the server may refuse, or break, a stream or durable created a moment after its deletion)")
			logged, loggedAt = err.Error(), time.Now()
		case try == 2 || err.Error() != logged || time.Since(loggedAt) >= time.Minute:
			l.log.Error().Err(failed).Dur("retry_in", wait).Msg("the request consumer is still missing: taking no requests")
			logged, loggedAt = err.Error(), time.Now()
		}
		if !pause(ctx, work, wait) {
			return nil, nil
		}
	}
}

// pause waits for d, and reports whether it did: false when ctx (a stop)
// or work (Abandon) ended first.
func pause(ctx, work context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-work.Done():
	}
	return ctx.Err() == nil && work.Err() == nil
}

// rebound takes rc, the request consumer created again, for the loop's
// own. The put-backs counted by stream sequence are forgotten: a stream
// created again numbers its requests afresh, and a durable created again
// counts its deliveries afresh. A stream created again gets its own
// unclaimed mark (named after its creation), with what RecoverUnclaimed
// keeps beside it at a start (horizons.adopt), before any of its requests
// reaches a worker; when that cannot be kept, its orders are all claimed. The log says truly what happened: this instance created
// the stream again (with this try, or an earlier one whose answer was
// lost: a stream newer than the durable that was deleted, bearing this
// instance's mark); or it found the stream there, created again by
// another party (newer than the durable, with another mark or none); or
// the durable alone was deleted, and the stream kept its requests. And
// whether this instance created the durable again, or found it there,
// created again by another party first, and updated it to its settings or
// left it as it was, with them already.
func (l *Loop) rebound(ctx context.Context, rc RecreatedConsumer) {
	old := l.consumer.CachedInfo()
	renewed := rc.StreamCreated || (old != nil && rc.Stream != nil && rc.Stream.Created.After(old.Created))
	mine := rc.StreamCreated || (renewed && rc.StreamMine)
	l.consumer = rc.Consumer
	l.deliverer = delivererOf(rc.Consumer)
	l.putBackMu.Lock()
	l.putBack = nil
	l.putBackMu.Unlock()
	// The durable on a stream created again: created by this instance,
	// or found there, created by another party first.
	durable := "created this instance's consumer on it with its settings"
	switch {
	case !rc.ConsumerCreated && rc.ConsumerUpdated:
		durable = "found this instance's consumer on it, created by another party before this instance could, and updated it to this instance's settings"
	case !rc.ConsumerCreated:
		durable = "found this instance's consumer on it, created by another party before this instance could, with this instance's settings already, and left it as it was"
	}
	const gone = "; the requests the deleted stream held are gone, and order systems must publish those not answered again"
	const answered = ", and those already answered are answered from the order store"
	var what string
	switch {
	case mine && rc.ConsumerCreated:
		what = "the request stream was missing (deleted?): created again, empty, by this instance, with its settings, and its consumer" + gone
	case mine:
		what = "the request stream was missing (deleted?): created again, empty, by this instance, with its settings; " + durable + gone
	case renewed:
		what = "the request stream was missing (deleted?), and another party created it again, empty, before this instance could (another partition's instance, named by created_by, an instance's start or an operator): found it there, left it as it is and " + durable + gone
	case rc.ConsumerCreated:
		what = "the request consumer was missing (deleted?): created again with this instance's settings; the requests its stream holds are delivered again from the oldest" + answered
	case rc.ConsumerUpdated:
		what = "the request consumer was missing (deleted?), and another party created it again before this instance could (an instance's start or an operator): found it there and updated it to this instance's settings; the requests its stream holds are delivered from where that consumer stands (the oldest, less those it took meanwhile)" + answered
	default:
		what = "the request consumer was missing (deleted?), and another party created it again before this instance could (an instance's start or an operator): found it there with this instance's settings already, and left it as it was; the requests its stream holds are delivered from where that consumer stands (the oldest, less those it took meanwhile)" + answered
	}
	if rc.Stream != nil {
		actx, cancel := context.WithTimeout(ctx, recreateTimeout)
		if err := l.pipeline.unclaimed.adopt(actx, rc.Stream, rc.Consumer.CachedInfo()); err != nil {
			l.log.Warn().Err(err).Msg("every new order is claimed before it is submitted until this instance starts again or creates its request consumer again: the request stream's unclaimed mark could not be set up")
		}
		cancel()
	}
	l.setMissing(nil)
	l.bound.Store(true)
	ev := l.log.Warn().Str("stream", rc.Consumer.CachedInfo().Stream).Str("consumer", rc.Consumer.CachedInfo().Name)
	if renewed && !mine && rc.StreamCreatedBy != "" {
		ev = ev.Str("created_by", rc.StreamCreatedBy)
	}
	ev.Msg(what)
}

// pendingAck is a processed message whose result the stream has yet to
// acknowledge.
type pendingAck struct {
	jm    jetstream.Msg
	m     *Message
	out   Outcome
	start time.Time
	stop  func() // stops the message's InProgress keep-alive
}

// delivery is a message taken from the request consumer, with its
// JetStream metadata (nil, and metaErr, when it has none: handle
// terminates it), read once by Run, and when that durable was created
// (Message.ConsumerCreated).
type delivery struct {
	jm              jetstream.Msg
	meta            *jetstream.MsgMetadata
	metaErr         error
	consumerCreated time.Time
}

// deliverer is the durable request consumer that delivers the loop's
// messages: when it was created (zero: not known) and the highest consumer
// sequence of its deliveries seen.
type deliverer struct {
	created time.Time
	seq     uint64
	// unchecked is set while the check of the first delivery after a
	// bind could not read the durable's info (Loop.recheck).
	unchecked *unchecked
}

// unchecked is a first delivery's check that could not read the
// durable's info, tried again at a later delivery (Loop.recheck).
type unchecked struct {
	// bound is the creation of the durable the loop was bound to, and
	// mark the name of the stream's unclaimed mark that the failure made
	// unknown ("" when none was known).
	bound time.Time
	mark  string
	// next is when a delivery may try the read again, and wait how long
	// after that a failure puts off the next try.
	next time.Time
	wait time.Duration
}

// Backoff of the reads of a durable's info tried again after a first
// delivery's check could not read it (Loop.recheck): the next delivery
// tries at once, then at most one delivery every recheckFirst, the wait
// doubling up to recheckMax after each failure. A read that does not
// answer holds up the loop's next delivery for up to recreateTimeout: the
// backoff bounds what a server that keeps failing such reads costs.
const (
	recheckFirst = time.Second
	recheckMax   = time.Minute
)

// delivererOf is c, a durable consumer, as its info last read says: none
// known when it has none.
func delivererOf(c jetstream.Consumer) deliverer {
	if info := c.CachedInfo(); info != nil {
		return deliverer{created: info.Created, seq: info.Delivered.Consumer}
	}
	return deliverer{}
}

// deliveredBy returns jm as a delivery for a worker: its metadata, read
// here once, and when the durable that delivered it was created
// (Message.ConsumerCreated), zero when that is not known. A durable's
// deliveries carry rising consumer sequences, and the loop, its only
// client, takes them in order: a sequence not above the last one seen
// comes from another durable of the same name, created since. The server
// tells the pull requests waiting on a durable when it deletes it, and the
// loop then creates it again (rebind), but with none waiting (every worker
// busy and the loop holding the next request for one, the connection lost
// meanwhile, or the loop not pulling yet) nothing tells the loop, and its
// next pull request is answered by a durable of the same name that another
// party created (an operator applying the definitions again), maybe over a
// request stream created again too, numbering its requests from 1 again.
// Labelled with the deleted durable's creation, its requests' sequences
// would be compared with the deleted stream's as one stream's
// (requestAt.before), and a later correction refused as a stale copy of an
// older request; and the new stream's requests would go without a claim
// under the deleted stream's unclaimed mark, which no later start reads.
// So at such a sequence it reads the durable's info again: its requests
// are labelled with its creation, or with none (ordered by their
// timestamps) when the info cannot be read or the durable it describes has
// not delivered this one yet; and the put-backs counted by stream sequence
// are forgotten, as when the loop creates the durable again (rebound).
//
// A durable bound that has delivered nothing yet (a new one: at a first
// start, or created again by rebind) cannot be told from its replacement
// by sequences: any first delivery's is above 0. So the loop reads the
// info at the first delivery after it binds too, and compares the creation
// it finds with the one bound; it costs one request to the server per
// start or rebind. When that read fails, its deliveries are labelled with
// none and their orders claimed until a later delivery's read succeeds
// (recheck).
func (l *Loop) deliveredBy(ctx context.Context, jm jetstream.Msg) delivery {
	meta, err := jm.Metadata()
	d := delivery{jm: jm, meta: meta, metaErr: err}
	if err != nil {
		return d // handle terminates it
	}
	d.consumerCreated = l.consumerCreated(ctx, meta.Stream, meta.Sequence.Consumer)
	return d
}

// consumerCreated is deliveredBy's reading of the durable that delivered
// the consumer sequence seq from the request stream called stream: when
// it was created, zero when not known. A durable found replaced makes the
// stream's unclaimed mark unknown (horizons.forget): the stream may have
// been created again with it, and the loop cannot read the stream's
// creation, which names its mark; its orders are claimed until a rebind
// or the next start names the mark again. So does a first delivery whose
// durable's info cannot be read: it cannot be told from a replacement,
// until a later delivery reads the info (recheck).
func (l *Loop) consumerCreated(ctx context.Context, stream string, seq uint64) time.Time {
	// The first delivery from a durable bound that had delivered nothing
	// is checked, unless its creation is not known, which nothing can be
	// compared with (its deliveries are labelled with none).
	first := l.deliverer.seq == 0 && !l.deliverer.created.IsZero()
	if seq > l.deliverer.seq && !first {
		if u := l.deliverer.unchecked; u != nil && !time.Now().Before(u.next) {
			return l.recheck(ctx, stream, seq)
		}
		l.deliverer.seq = seq
		return l.deliverer.created
	}
	was := l.deliverer
	l.deliverer = deliverer{seq: seq}
	ictx, cancel := context.WithTimeout(ctx, recreateTimeout)
	info, err := l.consumer.Info(ictx)
	cancel()
	if err == nil && info.Delivered.Consumer >= seq {
		l.deliverer.created = info.Created
	}
	if l.deliverer.created.IsZero() || !l.deliverer.created.Equal(was.created) {
		// Before this delivery reaches a worker, which may submit it.
		mark := l.replaced(stream)
		ev := l.log.Warn().Uint64("consumer_seq", seq).Uint64("last_consumer_seq", was.seq)
		what := replacedUnseen
		if err != nil {
			ev = ev.Err(err)
			if first {
				// Most likely a passing failure (the server's API not
				// answering for a moment, at a start): tried again at the
				// next delivery, which finds the durable bound, unless
				// it was replaced indeed, and gives the stream its mark
				// back. Without it one failure would leave every order
				// claimed, and labelled with no creation, until the
				// instance is restarted, with this one line to say so.
				what = "the request consumer's first delivery could not be checked against the durable this instance was bound to (its info could not be read): it may be another one, created again by another party after a deletion that nothing told this instance of; it takes the requests from it, and orders them after earlier ones by their timestamps, until a later delivery's check can read the durable's info (tried again at the next delivery, then after waits that double up to a minute)"
				l.deliverer.unchecked = &unchecked{bound: was.created, mark: mark, next: time.Now(), wait: recheckFirst}
			}
		}
		if l.pipeline.unclaimed.marks != nil {
			what += "; every new order is claimed before it is submitted until this instance starts again or creates its request consumer again (the stream's unclaimed mark is unknown)"
			if l.deliverer.unchecked != nil {
				what += ", or a later check finds the durable it was bound to"
			}
		}
		ev.Msg(what)
	}
	return l.deliverer.created
}

// replacedUnseen is the warning of a durable found replaced unseen.
const replacedUnseen = "the request consumer delivering now is not the one this instance was bound to: it was deleted (with its stream?) and another party created it again, and nothing told this instance; it takes the requests from the new one, and orders them after the deleted one's by their timestamps"

// replaced forgets what the loop kept of the durable it was bound to, now
// that it finds it replaced, or cannot tell: the put-backs counted by
// stream sequence, and the unclaimed mark of stream (horizons.forget),
// whose name it returns ("" when none was known).
func (l *Loop) replaced(stream string) string {
	l.putBackMu.Lock()
	l.putBack = nil
	l.putBackMu.Unlock()
	return l.pipeline.unclaimed.forget(stream)
}

// recheck tries again, at the delivery of consumer sequence seq from the
// request stream called stream, the read of the durable's info that the
// check of the first delivery after the loop bound could not make
// (deliverer.unchecked), and returns the creation to label the delivery
// with. The deliveries since were labelled with none, and their orders
// claimed. When it finds the durable the loop was bound to (its creation,
// having delivered seq), every delivery since came from it: a durable
// replaced has another creation. The deliveries are labelled with its
// creation again, and the stream gets its unclaimed mark back
// (horizons.recall): the stream is the one a start read, as its durable
// is, and no order went without a claim meanwhile. When it finds another
// durable, that one replaced the one bound, as when the sequences fall
// (consumerCreated), and is said so. When it cannot read the info again,
// the next try waits, twice as long after each failure (recheckMax).
func (l *Loop) recheck(ctx context.Context, stream string, seq uint64) time.Time {
	u := l.deliverer.unchecked
	last := l.deliverer.seq
	l.deliverer.seq = seq
	ictx, cancel := context.WithTimeout(ctx, recreateTimeout)
	info, err := l.consumer.Info(ictx)
	cancel()
	switch {
	case err != nil:
		u.next, u.wait = time.Now().Add(u.wait), min(2*u.wait, recheckMax)
		return time.Time{}
	case info.Created.Equal(u.bound) && info.Delivered.Consumer >= seq:
		l.deliverer = deliverer{created: u.bound, seq: seq}
		l.pipeline.unclaimed.recall(stream, u.mark)
		what := "the request consumer's deliveries were checked now against the durable this instance was bound to, whose info the first delivery's check could not read: it is the same; it takes its requests, and orders them by its sequences, as before"
		if l.pipeline.unclaimed.marks != nil && u.mark != "" {
			what += "; new orders may go without a claim again"
		}
		l.log.Info().Uint64("consumer_seq", seq).Uint64("last_consumer_seq", last).Msg(what)
		return u.bound
	}
	l.deliverer = deliverer{seq: seq}
	if info.Delivered.Consumer >= seq {
		l.deliverer.created = info.Created
	}
	l.replaced(stream)
	what := replacedUnseen
	if l.pipeline.unclaimed.marks != nil {
		what += "; every new order is claimed before it is submitted until this instance starts again or creates its request consumer again (the stream's unclaimed mark is unknown)"
	}
	l.log.Warn().Uint64("consumer_seq", seq).Uint64("last_consumer_seq", last).Msg(what)
	return l.deliverer.created
}

// handle processes one message and acts on the outcome, or hands it to an
// acker when its result is still being published, or keeps it waiting for
// its order (park). work is Run's work context: it ends only when the loop
// is abandoned.
func (l *Loop) handle(work context.Context, d delivery, acks chan<- *pendingAck, lot *parking) {
	jm, meta, err := d.jm, d.meta, d.metaErr
	start := time.Now()
	l.begin()
	if err != nil {
		l.log.Error().Err(err).Str("subject", jm.Subject()).Msg("message without JetStream metadata; terminated")
		_ = jm.Term()
		l.end()
		return
	}
	l.pending.Store(meta.NumPending)
	l.lastDelivery.Store(start.UnixNano())
	m := &Message{
		Subject:         jm.Subject(),
		Data:            jm.Data(),
		Header:          jm.Headers(),
		Stream:          meta.Stream,
		StreamSeq:       meta.Sequence.Stream,
		Deliveries:      l.deliveries(meta.Sequence.Stream, int(meta.NumDelivered)),
		PublishedAt:     meta.Timestamp,
		ConsumerCreated: d.consumerCreated,
	}
	l.process(work, &job{jm: jm, m: m, start: start}, acks, lot)
}

// job is a delivery being processed, from its first processing until it
// is acknowledged, terminated or put back: processed again, as the same
// delivery, after it waited for its order (park).
type job struct {
	jm    jetstream.Msg
	m     *Message
	start time.Time
	// stop stops the delivery's InProgress keep-alive, which runs from its
	// first processing, through its waits, to its acknowledgement; nil
	// before.
	stop func()
	// busy counts the delivery's waits for its order.
	busy int
}

// process processes j (again, after a wait for its order) and acts on the
// outcome, hands it to an acker, or parks it.
func (l *Loop) process(work context.Context, j *job, acks chan<- *pendingAck, lot *parking) {
	if l.cfg.Paused != nil {
		if err := l.cfg.Paused(); err != nil {
			// Put back unprocessed: not a delivery the request spent.
			out := Outcome{Action: Nak, Delay: 5 * time.Second, Event: EventError, Err: fmt.Errorf("paused: %w", err), busyWaits: j.busy}
			if j.stop != nil {
				j.stop()
			}
			l.unprocessedPutBack(j.m.StreamSeq)
			_ = j.jm.NakWithDelay(out.Delay)
			l.logOutcome(j.m, &out, time.Since(j.start))
			l.end()
			return
		}
	}

	pctx, cancel := context.WithTimeout(work, l.cfg.ProcessTimeout)
	if j.stop == nil {
		j.stop = keepAlive(j.jm, l.cfg.AckWait/3)
	}
	out := l.pipeline.Process(pctx, j.m)
	if out.Action == Nak && context.Cause(pctx) == errAbandoned {
		out.Err = abandoned(out.Err)
	}
	cancel()
	if out.busyKey != "" && out.Action == Nak {
		j.busy++
		l.park(work, j, out, lot)
		return
	}
	out.busyWaits = j.busy
	if out.Published != nil && out.Action == Ack {
		acks <- &pendingAck{jm: j.jm, m: j.m, out: out, start: j.start, stop: j.stop}
		return
	}
	j.stop()
	l.act(j.jm, j.m, &out, j.start)
}

// parking is where Run keeps the deliveries that wait for their order
// (park), and how they get back to a worker.
type parking struct {
	// stopped is Run's context: its end (a stop) puts them back, as it
	// does the messages in the pull buffer.
	stopped context.Context
	// again takes a waiting delivery whose order was let go to a worker.
	again chan *job
	// closing is closed when Run takes no more messages: a delivery
	// still waiting then is put back.
	closing chan struct{}
	wg      sync.WaitGroup
}

// wait waits until freed is closed, or a check finds that held is false,
// and reports true then; false when a stop, Abandon (work) or the end of
// Run came first, or had come already.
func (lot *parking) wait(work context.Context, freed <-chan struct{}, check <-chan time.Time, held func() bool) bool {
	for {
		select {
		case <-freed:
			return lot.stopped.Err() == nil && work.Err() == nil
		case <-check:
			if !held() {
				return lot.stopped.Err() == nil && work.Err() == nil
			}
		case <-lot.stopped.Done():
			return false
		case <-work.Done():
			return false
		case <-lot.closing:
			return false
		}
	}
}

// park keeps j, a delivery whose order another delivery was working on
// (out, event busy, Outcome.busyKey), until that delivery lets go of the
// order, and then hands it to a worker, which processes it again: it is
// not put back. A put-back would be a delivery of the request to the
// server, which counts it: the loop used to take such deliveries off its
// count in memory, and after a restart a copy that had waited behind a
// long provider call was given up at its first real delivery, as if it
// had failed every time it waited. It would also be decoded again at every
// put-back, and come back to the server every second. A waiting delivery
// holds no worker, keeps its InProgress keep-alive (the server does not
// deliver it again) and its place in the request consumer's unacknowledged
// messages, as a put-back does; the deliveries waiting for one order are
// processed again one at a time, woken in the order they began to wait
// (keyLocks.await; a new delivery may take the order first, and the one
// woken then waits again, at the back: nothing depends on the order).
// Every AckWait/3 it checks that someone still holds the order, and tries
// again at once if not (a delivery told that did not try again, because
// the store paused the loop or its processing failed before the lock).
// A stop, Abandon, or the end of Run puts it back unprocessed (event
// busy), counted as a put-back of the loop's.
func (l *Loop) park(work context.Context, j *job, out Outcome, lot *parking) {
	out.busyWaits = j.busy
	putBack := func() {
		j.stop()
		l.act(j.jm, j.m, &out, j.start)
	}
	select {
	case <-lot.closing:
		putBack()
		return
	default:
	}
	freed, cancel := l.pipeline.locks.await(out.busyKey)
	lot.wg.Go(func() {
		check := time.NewTicker(max(l.cfg.AckWait/3, time.Second))
		defer check.Stop()
		ok := lot.wait(work, freed, check.C, func() bool { return l.pipeline.locks.held(out.busyKey) })
		cancel() // out of the line at once: an unlock meanwhile tells the next
		if !ok {
			putBack()
			return
		}
		select {
		case lot.again <- j:
		case <-lot.stopped.Done():
			putBack()
		case <-work.Done():
			putBack()
		case <-lot.closing:
			putBack()
		}
	})
}

// finish waits for the acknowledgement of a message's result, then
// acknowledges the message; a result that could not be published puts the
// message back instead.
func (l *Loop) finish(ctx context.Context, a *pendingAck) {
	wctx, cancel := context.WithTimeout(ctx, l.cfg.ProcessTimeout)
	err := a.out.Published(wctx)
	if err != nil && context.Cause(wctx) == errAbandoned {
		err = abandoned(err)
	}
	cancel()
	a.stop()
	if err != nil {
		a.out.Action, a.out.Delay, a.out.Event = Nak, l.pipeline.cfg.retryDelay(a.m.Deliveries, 0), EventError
		a.out.Err = err
		a.out.Status = ""
	}
	l.act(a.jm, a.m, &a.out, a.start)
}

// abandoned marks err, the error of a message put back because Abandon cut
// its processing short (nil when the outcome carries none), as such.
func abandoned(err error) error {
	if err == nil {
		return errAbandoned
	}
	return fmt.Errorf("%w: %w", errAbandoned, err)
}

// act acknowledges, terminates or puts back a processed message, counts and
// logs it.
func (l *Loop) act(jm jetstream.Msg, m *Message, out *Outcome, start time.Time) {
	var err error
	switch out.Action {
	case Ack:
		err = jm.Ack()
		l.settled(m.StreamSeq)
	case Term:
		// The server takes the reason as a message of its own: one past
		// its payload limit would fail the termination, and the request
		// would come back for ever.
		err = jm.TermWithReason(clip(out.Reason, maxTextBytes))
		l.settled(m.StreamSeq)
	default:
		if out.Unprocessed {
			l.unprocessedPutBack(m.StreamSeq) // before the Nak, which may bring it back at once
		}
		err = jm.NakWithDelay(out.Delay)
	}
	if err != nil {
		// Said beside the outcome's own error, if any: a failed ack,
		// term or nak brings the request back, and hiding it behind
		// the error that decided the action hides why.
		out.Err = errors.Join(out.Err, fmt.Errorf("%s: %w", out.Action, err))
	}
	took := time.Since(start)
	l.metrics.observe(out, took)
	l.logOutcome(m, out, took)
	l.end()
}

// begin and end count a message in flight, from its delivery to its
// acknowledgement.
func (l *Loop) begin() {
	l.inFlight.Add(1)
	if l.metrics != nil {
		l.metrics.InFlight.Inc()
	}
}

func (l *Loop) end() {
	l.inFlight.Add(-1)
	if l.metrics != nil {
		l.metrics.InFlight.Dec()
	}
}

// logOutcome writes the one log line of a processed message.
func (l *Loop) logOutcome(m *Message, out *Outcome, took time.Duration) {
	ev := l.log.Info()
	if out.Event == EventError {
		ev = l.log.Warn()
	}
	ev = ev.Str("seller", out.Seller).
		Str("order_no", out.OrderNo).
		Uint64("stream_seq", m.StreamSeq).
		Int("attempt", m.Deliveries).
		Str("action", out.Action.String()).
		Str("event", out.Event)
	if out.Kind != "" {
		ev = ev.Str("kind", string(out.Kind))
	}
	if out.Decision != "" {
		ev = ev.Str("decision", out.Decision)
	}
	if out.Status != "" {
		ev = ev.Str("status", string(out.Status))
	}
	if out.DeadLetter != "" {
		ev = ev.Str("dead_letter", string(out.DeadLetter))
	}
	if out.Provider != "" {
		ev = ev.Str("provider", out.Provider).Int("provider_calls", out.Attempts)
	}
	if out.ProviderCode != "" {
		ev = ev.Str("provider_code", out.ProviderCode)
	}
	if out.Action == Nak {
		ev = ev.Dur("delay", out.Delay)
	}
	if out.busyWaits > 0 {
		ev = ev.Int("busy_waits", out.busyWaits)
	}
	if out.Err != nil {
		// Clipped: an error may quote a request at any length (a syntax
		// error names the JSON path it is in); a panic's stack fits.
		ev = ev.Str("error", clip(out.Err.Error(), maxLoggedErrorBytes))
	}
	if errors.Is(out.Err, errAbandoned) {
		ev = ev.Bool("abandoned", true)
	}
	ev.Dur("took", took).Msg("processed")
}

// keepAlive sends InProgress for m every interval until stop is called, so
// that a slow provider call does not trigger a redelivery.
func keepAlive(m jetstream.Msg, every time.Duration) (stop func()) {
	if every <= 0 {
		return func() {}
	}
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = m.InProgress()
		t.Reset(every)
	})
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
