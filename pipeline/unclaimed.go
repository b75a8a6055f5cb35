package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Marks keeps durable counters (store.DB implements it). The pipeline keeps
// one per request stream: the stream sequence below which every request it
// has submitted without a claim lies (the unclaimed mark).
type Marks interface {
	// RaiseMark durably raises the mark called name to v; a mark never
	// goes down. When it returns nil the mark is on disk.
	RaiseMark(ctx context.Context, name string, v uint64) error
	// SetMark durably sets the mark called name to v, lower or higher.
	SetMark(ctx context.Context, name string, v uint64) error
	// Mark returns the mark called name, 0 when it was never set.
	Mark(name string) (uint64, error)
}

// markLead is how far past a request's stream sequence the unclaimed mark
// is raised: once per markLead/2 sequences of the stream, in the background
// while the requests below it are taken. RecoverUnclaimed reads no further
// than the consumer's delivered pointer, unless the consumer is not the one
// that delivered them: then up to the mark, and the lead bounds the stream
// sequences of requests never taken that it may record.
const markLead = 1 << 12

// unclaimedMarkName is the name of the unclaimed mark of a request stream:
// its name and its creation time, so that a stream deleted and created
// again (its sequences starting over) does not inherit the old one's mark.
func unclaimedMarkName(info *jetstream.StreamInfo) string {
	return "unclaimed:" + info.Config.Name + ":" + strconv.FormatInt(info.Created.UnixNano(), 10)
}

// errUnidentified: a request of a stream RecoverUnclaimed has not read,
// or of one replaced unseen since (horizons.forget), which therefore has
// no known mark, cannot go without a claim.
var errUnidentified = errors.New("the request stream's unclaimed mark is unknown: RecoverUnclaimed has not read it, or the stream may have been replaced since")

// horizons holds the unclaimed marks of the request streams (one, in
// practice) as far as they are known to be on disk.
type horizons struct {
	mu    sync.Mutex
	marks Marks
	// names maps a stream name to its mark's name, set by
	// RecoverUnclaimed; "" for a stream identified so, whose mark is
	// unknown since (forget).
	names map[string]string
	by    map[string]*horizon
	// raises are the background raises started (raise), which the
	// consume loop waits for before it returns (wait).
	raises sync.WaitGroup
	// unknown is Metrics.UnclaimedMarkUnknown (report), nil when none:
	// whether a stream's mark is unknown is otherwise told by one log
	// line, and an instance that nobody restarts would claim every order
	// for days with nothing on a dashboard to say so.
	unknown *prometheus.GaugeVec
}

// report makes g show, by stream, whether the stream's mark is unknown
// while orders may go without a claim (show), for the streams identified
// now and from now on.
func (h *horizons) report(g *prometheus.GaugeVec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unknown = g
	for stream := range h.names {
		h.show(stream)
	}
}

// show sets the gauge of the stream called stream (report): 1 when it was
// identified, its mark is unknown (forget) and orders may go without a
// claim (marks set), 0 otherwise. h.mu is held. Every change of h.names
// calls it.
func (h *horizons) show(stream string) {
	if h.unknown == nil {
		return
	}
	v := 0.0
	if name, ok := h.names[stream]; ok && name == "" && h.marks != nil {
		v = 1
	}
	h.unknown.WithLabelValues(stream).Set(v)
}

// identify gives the stream called stream the mark called name.
func (h *horizons) identify(stream, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.names == nil {
		h.names = map[string]string{}
	}
	h.names[stream] = name
	h.show(stream)
}

// rename gives the stream called stream the mark called name when the
// stream was identified before (RecoverUnclaimed read it), forgotten since
// or not: it was created again, and its requests are numbered afresh,
// under a mark of their own. A stream never identified stays so: its
// orders are all claimed.
func (h *horizons) rename(stream, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.names[stream]; ok {
		h.names[stream] = name
		h.show(stream)
	}
}

// adopt gives the request stream described by info, which the consume
// loop created again while it ran (or found created again) and whose
// requests the durable ci delivers, its own mark (rename), once what a
// start keeps of a stream it reads (RecoverUnclaimed) is on disk: the
// creation of the durable that delivers the stream's requests
// (consumerMarkName) and that the stream's consumers are kept
// (consumersSuffix). Without them a start after a crash takes the mark
// for one a build before consumer creations raised, and reads only up to
// the durable's delivered pointer; a durable replaced or reset after the
// crash has delivered nothing, and a request submitted without a claim
// under the new mark was not recorded, and submitted again (after
// jumdata's repeat window, a second invoice). With them, a start that
// finds another durable, or one reset, reads up to the mark, as for the
// stream it found at a start.
//
// A mark whose consumers are kept already (the stream is the one a start
// read, only the durable created again) is left as it is: the creation
// kept is the durable's that may have delivered requests submitted
// without a claim, and this one has not delivered them yet (it delivers
// them again from the oldest); a start that finds another creation reads
// up to the mark. A stream never identified stays so. When the marks
// cannot be written, the stream's mark is unknown (forget): every order
// of it is claimed, and the error says why.
func (h *horizons) adopt(ctx context.Context, info *jetstream.StreamInfo, ci *jetstream.ConsumerInfo) error {
	stream, name := info.Config.Name, unclaimedMarkName(info)
	h.mu.Lock()
	_, identified := h.names[stream]
	marks := h.marks
	h.mu.Unlock()
	if !identified {
		return nil
	}
	if marks != nil {
		kept, err := marks.Mark(name + consumersSuffix)
		if err == nil && kept == 0 {
			err = marks.SetMark(ctx, consumerMarkName(name, ci.Name), uint64(ci.Created.UnixNano()))
		}
		if err == nil && kept == 0 {
			err = marks.SetMark(ctx, name+consumersSuffix, 1)
		}
		if err != nil {
			h.forget(stream)
			return fmt.Errorf("keep the creation of consumer %s with the unclaimed mark of stream %s: %w", ci.Name, stream, err)
		}
	}
	h.rename(stream, name)
	return nil
}

// forget makes the mark of the stream called stream unknown, when it was
// identified, until rename names it again: the consume loop found its
// durable replaced by another party, unseen (Loop.deliveredBy), maybe with
// the stream, which it cannot read. The mark is named after the stream's
// creation, and a start reads only the mark of the stream as it is then: a
// request of a stream created again, submitted without a claim under the
// deleted one's mark (its sequence, counted afresh, below that mark raises
// nothing), would be found by no start that does not read up to the
// delivered pointer anyway (one without the opt-in reads nothing when the
// new stream's mark is 0), and after a crash it would be submitted again.
// Until then every order of the stream is claimed: what the opt-in saves
// is lost for a while, and nothing is at risk. It returns the name of the
// mark it made unknown, "" when it made none so (recall).
func (h *horizons) forget(stream string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	name, ok := h.names[stream]
	if ok {
		h.names[stream] = ""
		h.show(stream)
	}
	return name
}

// recall gives the stream called stream back its mark called name, which
// forget made unknown, when it is still unknown: the consume loop made it
// unknown because it could not read the durable's info at its first
// delivery (Loop.recheck), and has read since that the durable delivering
// is the one it was bound to, so the stream is the one whose mark a start
// read (a stream deleted takes its durables with it, and a durable created
// again has another creation). Every order was claimed meanwhile: none
// went without a claim under another mark. Nothing for name "".
func (h *horizons) recall(stream, name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.names[stream]; name != "" && ok && cur == "" {
		h.names[stream] = name
		h.show(stream)
	}
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
		name, ok := h.names[stream]
		if !ok || name == "" || h.marks == nil {
			h.mu.Unlock()
			return errUnidentified
		}
		z := h.by[name]
		if z == nil {
			v, err := h.marks.Mark(name)
			if err != nil {
				h.mu.Unlock()
				return err
			}
			z = &horizon{durable: v}
			if h.by == nil {
				h.by = map[string]*horizon{}
			}
			h.by[name] = z
		}
		if seq < z.durable {
			if z.raising == nil && seq+markLead/2 >= z.durable {
				h.raise(ctx, name, z, seq+markLead)
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
			h.raise(ctx, name, z, seq+markLead)
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

// settle waits for the raises in progress to end, so that the marks on
// disk are the last ones.
func (h *horizons) settle(ctx context.Context) error {
	for {
		h.mu.Lock()
		var wait chan struct{}
		for _, z := range h.by {
			if z.raising != nil {
				wait = z.raising
				break
			}
		}
		h.mu.Unlock()
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// raise raises z, the mark called name, to v in the background; h.mu is
// held. The raise is off the way of the request that starts it (cover
// waits for it only when the request is not below the mark yet), and it
// outlives that request: it runs on ctx without its cancellation, and the
// consume loop waits for it (wait) before it returns, so that no raise
// outlives the consumer's shutdown and reaches the order store after it
// is closed.
func (h *horizons) raise(ctx context.Context, name string, z *horizon, v uint64) {
	done := make(chan struct{})
	z.raising = done
	ctx = context.WithoutCancel(ctx)
	h.raises.Go(func() {
		err := h.marks.RaiseMark(ctx, name, v)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err == nil {
			z.durable = max(z.durable, v)
		}
		z.err = err
		z.raising = nil
		close(done)
	})
}

// wait waits for the raises started to end. Call it once no request is
// being processed: a raise started meanwhile may be missed.
func (h *horizons) wait() { h.raises.Wait() }

// RecoverUnclaimed must run when a consumer starts, before it takes any
// request; until it has run, every order is claimed. A request submitted
// without a claim (Pipeline.WatchBacklog) leaves no record of its order
// until its answer is saved; a crash in between leaves the order
// unrecorded, and another request for it (an identical copy, or a
// corrected one) would be submitted too: after an outage longer than the
// provider's repeat window, a second invoice. Such a request was delivered
// and not acknowledged, so it is still in the request stream, between the
// consumer's ack floor and its delivered pointer, and below the stream's
// unclaimed mark (which the pipeline raises durably before it submits
// without a claim).
//
// RecoverUnclaimed reads every request of the consumer's subjects in that
// range. For each order with no record that could have been submitted
// without a claim (a valid issue request of a seller not configured now
// with a provider that always claims; on a lower-case seller subject too,
// when a build before schemas.RuleSubjectSpelling may have taken it), it
// saves
// the record a claim would have left: possibly submitted since the
// earliest of its requests' publications, and keeping where and when the
// first of them entered the stream (OrderRecord.RequestPublishedAt and
// RequestStreamSeq, from which a different request published before it is
// refused as a stale copy). The
// order's requests then ask
// the provider first (a different one conflicts), as after a crash with a
// claim. When the order's requests there are not all the same request (a
// corrected one behind the first), it cannot tell which was submitted: the
// order is saved as action_required, without a fingerprint, so that every
// request for it gets a conflict (the order number stays taken), and its
// error tells a person what to find at the provider. A request delivered
// and never submitted (in flight, held) is recorded too; asking first costs
// it nothing within the provider's repeat window.
//
// It reads nothing when the last run stopped cleanly (StoppedCleanly),
// nor when nothing was ever submitted without a claim: no mark, unless the
// pipeline watches a backlog now (a store from a build without marks: the
// first start reads up to the delivered pointer all the same, and leaves a
// mark), nor once a start without the opt-in has read it (every submission
// since was claimed; a start with the opt-in reads nothing then either,
// and clears the flag). When the consumer is not the one that delivered
// the requests (deleted and created again), or its delivered pointer went
// back (a consumer reset), the pointer says nothing of them: it reads up
// to the mark.
//
// It returns how many orders it recorded. An error means the state of some
// request is unknown: the consumer must not start.
//
// It relies on the server's delivered pointer surviving the crash: an
// external server, replicated or syncing every write, and not the same
// process's embedded one (which can forget its last 100 ms of deliveries).
func (p *Pipeline) RecoverUnclaimed(ctx context.Context, stream jetstream.Stream, consumer jetstream.Consumer, marks Marks) (int, error) {
	info := stream.CachedInfo()
	name := unclaimedMarkName(info)
	p.unclaimed.identify(info.Config.Name, name)
	optIn := p.unclaimed.marks != nil
	mark, err := marks.Mark(name)
	if err != nil {
		return 0, err
	}
	spelledFrom, err := spellingRuleFrom(ctx, info, name, marks)
	if mark == 0 && !optIn {
		// Never without a claim: nothing is read, so a start on a full
		// disk goes on (the mark is set at a later start; set later it
		// only counts more lower-case requests as an earlier build's,
		// which are then withheld, not sent).
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	clean, err := marks.Mark(name + cleanSuffix)
	if err != nil {
		return 0, err
	}
	retired, err := marks.Mark(name + retiredSuffix)
	if err != nil {
		return 0, err
	}
	if clean != 0 {
		// This run's stop is clean only if it says so.
		if err := marks.SetMark(ctx, name+cleanSuffix, 0); err != nil {
			return 0, fmt.Errorf("recover unclaimed requests: %w", err)
		}
	}
	if optIn && retired != 0 {
		if err := marks.SetMark(ctx, name+retiredSuffix, 0); err != nil {
			return 0, fmt.Errorf("recover unclaimed requests: %w", err)
		}
	}
	ci, err := consumer.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("recover unclaimed requests: consumer info: %w", err)
	}
	consumerKey := consumerMarkName(name, ci.Name)
	created := uint64(ci.Created.UnixNano())
	knownConsumer, err := marks.Mark(consumerKey)
	if err != nil {
		return 0, err
	}
	consumersKept, err := marks.Mark(name + consumersSuffix)
	if err != nil {
		return 0, err
	}
	recorded := 0
	if (mark == 0 || clean != mark) && retired == 0 {
		bound := ci.Delivered.Stream + 1
		// The mark is raised to markLead past a request the consumer
		// delivered, so its delivered pointer is at least mark-markLead,
		// unless it went back (a consumer reset) or is another consumer
		// (deleted and created again): then it says nothing of what was
		// delivered, and everything up to the mark is read. A reset to the
		// ack floor can leave the pointer within the lead (requests after
		// the mark's last raise acknowledged before the crash), but it
		// starts the consumer's own delivery count again: a consumer that
		// has delivered nothing, while the mark says that requests were
		// delivered, was reset.
		rewound := mark > markLead && (ci.Delivered.Stream+markLead < mark || ci.Delivered.Consumer == 0)
		if mark > 0 && consumersKept != 0 && (knownConsumer != created || rewound) {
			bound = mark
		} else if mark > 0 {
			bound = min(bound, mark)
		}
		if recorded, err = p.recordUnclaimed(ctx, stream, ci, bound, spelledFrom); err != nil {
			return recorded, err
		}
	}
	switch {
	case optIn:
		if knownConsumer != created {
			if err := marks.SetMark(ctx, consumerKey, created); err != nil {
				return recorded, fmt.Errorf("recover unclaimed requests: %w", err)
			}
		}
		if consumersKept == 0 {
			if err := marks.SetMark(ctx, name+consumersSuffix, 1); err != nil {
				return recorded, fmt.Errorf("recover unclaimed requests: %w", err)
			}
		}
		if mark == 0 {
			if err := marks.RaiseMark(ctx, name, 1); err != nil {
				return recorded, fmt.Errorf("recover unclaimed requests: %w", err)
			}
		}
	case retired == 0:
		// Every submission is claimed from now on: later starts need not
		// read, until the opt-in is back.
		if err := marks.SetMark(ctx, name+retiredSuffix, 1); err != nil {
			return recorded, fmt.Errorf("recover unclaimed requests: %w", err)
		}
	}
	return recorded, nil
}

// The marks beside a stream's unclaimed mark: the mark's value when the
// last run stopped cleanly (0: it did not); 1 once a start without the
// opt-in has read what an earlier run with it left (every submission since
// was claimed, until a start with the opt-in clears it); 1 once the
// creation times of the stream's consumers are kept (":consumer:<name>"),
// which a build before them did not.
const (
	cleanSuffix     = ":clean"
	retiredSuffix   = ":retired"
	consumersSuffix = ":consumers"
	spellingSuffix  = ":spelling"
)

// consumerMarkName is the name of the mark beside the unclaimed mark called
// name that keeps the creation of the stream's durable called durable
// (Unix nanoseconds): a start that finds the durable created since reads
// up to the unclaimed mark (RecoverUnclaimed).
func consumerMarkName(name, durable string) string { return name + ":consumer:" + durable }

// spellingRuleFrom returns the first sequence of the stream (described by
// info, its unclaimed mark called name) that was published after a build
// with schemas.RuleSubjectSpelling first started on it, and sets it at that
// first start. A request on a lower-case seller subject below it may have
// been taken, and submitted without a claim, by a build before the rule;
// one from it on was only ever rejected.
func spellingRuleFrom(ctx context.Context, info *jetstream.StreamInfo, name string, marks Marks) (uint64, error) {
	from, err := marks.Mark(name + spellingSuffix)
	if err != nil || from != 0 {
		return from, err
	}
	from = info.State.LastSeq + 1
	if err := marks.SetMark(ctx, name+spellingSuffix, from); err != nil {
		return 0, fmt.Errorf("recover unclaimed requests: %w", err)
	}
	return from, nil
}

// StoppedCleanly records that the consume loop has stopped with nothing in
// flight: every request submitted without a claim has its answer saved, so
// the next start need not read the request stream (RecoverUnclaimed). It
// records nothing while an order is claimed in memory only. Call it after
// the loop has stopped and before the store closes.
//
// It records the stop for the request stream as the server has it now,
// read through stream, not as stream was read: a handle read at the start
// describes the stream of then, and one that the loop created again since
// (LoopConfig.Recreate) has a mark of its own, the one the run raised and
// the next start reads.
func (p *Pipeline) StoppedCleanly(ctx context.Context, stream jetstream.Stream, marks Marks) error {
	if p.unrecorded.n.Load() != 0 {
		return nil
	}
	if err := p.unclaimed.settle(ctx); err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("request stream info: %w", err)
	}
	name := unclaimedMarkName(info)
	mark, err := marks.Mark(name)
	if err != nil || mark == 0 {
		return err
	}
	return marks.SetMark(ctx, name+cleanSuffix, mark)
}

// recordUnclaimed records the orders of the requests of ci's subjects in
// (ack floor, bound) that may have been submitted without a claim, and
// returns how many it recorded. spelledFrom is spellingRuleFrom's sequence.
func (p *Pipeline) recordUnclaimed(ctx context.Context, stream jetstream.Stream, ci *jetstream.ConsumerInfo, bound, spelledFrom uint64) (int, error) {
	filter := ci.Config.FilterSubject
	if filter == "" {
		filter = p.cfg.Subjects.RequestFilter()
	}
	orders := map[schemas.OrderKey]*unclaimedOrder{}
	var keys []schemas.OrderKey // in stream order
	for seq := ci.AckFloor.Stream + 1; seq < bound; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("recover unclaimed requests: read request stream from #%d: %w", seq, err)
		}
		if m.Sequence >= bound {
			break
		}
		seq = m.Sequence + 1
		d, key, prov, ok := p.unclaimable(m, spelledFrom)
		if !ok {
			continue
		}
		u := orders[key]
		if u == nil {
			_, found, err := p.store.Get(ctx, key)
			if err != nil {
				return 0, fmt.Errorf("recover unclaimed requests: request #%d: %w", m.Sequence, err)
			}
			u = &unclaimedOrder{recorded: found, stream: ci.Stream, consumerCreated: ci.Created}
			orders[key] = u
			keys = append(keys, key)
		}
		u.add(m, d, prov)
	}
	recorded := 0
	for _, key := range keys {
		u := orders[key]
		if u.recorded {
			continue
		}
		if _, err := p.store.Put(ctx, u.record(key, p.cfg.Now())); err != nil {
			return recorded, fmt.Errorf("recover unclaimed requests: record order %s: %w", key, err)
		}
		recorded++
	}
	return recorded, nil
}

// unclaimable decodes the request m carries and reports whether a run of
// the pipeline may have submitted it without a claim: a valid issue
// request (an invalid one is answered at once, and recording it would take
// its order number for good; one whose only fault is a lower-case seller
// subject counts as valid below spelledFrom, where a build before that rule
// may have taken it) of a seller that is not configured now with a
// provider that always claims (an earlier run may have had it as a jumdata
// seller).
func (p *Pipeline) unclaimable(m *jetstream.RawStreamMsg, spelledFrom uint64) (*schemas.Decoded, schemas.OrderKey, providers.Provider, bool) {
	d, err := p.validator.Decode(m.Data, p.cfg.Subjects.SellerOf(m.Subject))
	earlier := m.Sequence < spelledFrom && d != nil && d.OnlySubjectSpelling()
	if err != nil || (!d.Valid() && !earlier) || d.Request == nil || d.Request.Kind != schemas.KindIssue {
		return nil, schemas.OrderKey{}, nil, false
	}
	key := schemas.OrderKey{Seller: d.Request.SellerTaxNum, OrderNo: d.Request.OrderNo}
	prov, ok := p.providers.Provider(key.Seller)
	if !ok {
		return d, key, nil, true
	}
	if rs, ok := prov.(providers.RepeatableSubmitter); !ok || rs.RepeatableFor(&providers.Call{Request: d.Request}) <= 0 {
		return nil, schemas.OrderKey{}, nil, false // always claimed
	}
	return d, key, prov, true
}

// unclaimedOrder gathers the requests RecoverUnclaimed found for one order.
type unclaimedOrder struct {
	recorded bool // the order has a record: nothing to do
	first    *schemas.Decoded
	prov     providers.Provider
	since    time.Time      // the earliest publication
	firstAt  time.Time      // first's publication (its stream timestamp)
	seqs     []uint64       // the requests' stream sequences, first's first
	prints   map[string]int // fingerprint → requests
	// stream and consumerCreated are the request stream's name and the
	// creation of its durable consumer, which delivers the requests.
	stream          string
	consumerCreated time.Time
}

func (u *unclaimedOrder) add(m *jetstream.RawStreamMsg, d *schemas.Decoded, prov providers.Provider) {
	if u.recorded {
		return
	}
	if u.first == nil {
		u.first, u.prov, u.since, u.firstAt, u.prints = d, prov, m.Time, m.Time, map[string]int{}
	}
	if m.Time.Before(u.since) {
		u.since = m.Time
	}
	u.seqs = append(u.seqs, m.Sequence)
	u.prints[d.Fingerprint]++
}

// record is the record RecoverUnclaimed saves for the order. The record of
// one request (every request found for the order the same) keeps where and
// when the first of them entered the request stream, as the claim of the
// delivery that started it would have (OrderRecord.RequestPublishedAt,
// RequestStream, RequestStreamSeq, RequestConsumerCreated): a different
// request for the order published before it is not submitted over it. The
// record of several different requests names none of them, and keeps none.
func (u *unclaimedOrder) record(key schemas.OrderKey, now time.Time) schemas.OrderRecord {
	provider := "the provider"
	rec := schemas.OrderRecord{
		Seller: key.Seller, OrderNo: key.OrderNo, Kind: u.first.Kind, ReceivedAt: now,
		State: schemas.StateSubmitting, Submissions: 1, SubmittedAt: u.since,
	}
	if u.prov != nil {
		rec.Provider, provider = u.prov.Name(), u.prov.Name()
	}
	if len(u.prints) == 1 {
		rec.Fingerprint = u.first.Fingerprint
		rec.Warnings = listWithin(u.first.Warnings, 0, maxListedBytes, restOfWarnings)
		requestAt{stream: u.stream, seq: u.seqs[0], consumerCreated: u.consumerCreated, publishedAt: u.firstAt}.keepIn(&rec)
		return rec
	}
	prints := make([]string, 0, len(u.prints))
	for f := range u.prints {
		prints = append(prints, fmt.Sprintf("%.12s…", f))
	}
	slices.Sort(prints)
	seqs := make([]string, len(u.seqs))
	for i, s := range u.seqs {
		seqs[i] = "#" + strconv.FormatUint(s, 10)
	}
	rec.State = schemas.StateActionRequired
	rec.ActionEpisode = 1
	rec.LastError = &schemas.ErrorInfo{Code: schemas.CodeActionRequired, Message: clip(fmt.Sprintf(
		"%d different requests for this order (fingerprints %s; request stream %s) were waiting when the consumer started, "+
			"and one of them may have been submitted to %s without a claim before it stopped: find the order's invoice at %s "+
			"(issued since %s), then answer the order system; every request for this order gets a conflict meanwhile",
		len(u.prints), strings.Join(prints, ", "), strings.Join(seqs, " "), provider, provider, u.since.UTC().Format(time.RFC3339)), maxTextBytes)}
	return rec
}

// unrecorded holds the orders submitted without a claim whose submission no
// saved record speaks of yet (their save failed, or is under way), each as
// the record a claim would have left. Pipeline.lookup answers with it for
// an order with no record, so that the order is claimed in memory: the
// same request asks the provider first, another conflicts with it, and a
// give-up keeps the submission. Only this process's: after a restart
// RecoverUnclaimed has recorded them.
type unrecorded struct {
	n  atomic.Int64 // len(by), read without the lock
	mu sync.Mutex
	by map[schemas.OrderKey]schemas.OrderRecord
}

// add lists the order of rec, a submission without a claim (version 0).
func (u *unrecorded) add(rec schemas.OrderRecord) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.by == nil {
		u.by = map[schemas.OrderKey]schemas.OrderRecord{}
	}
	u.by[rec.Key()] = rec
	u.n.Store(int64(len(u.by)))
}

// settle takes the order of stored, a record just saved, off the list once
// that record carries the listed submission.
func (u *unrecorded) settle(stored schemas.OrderRecord) {
	if u.n.Load() == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	key := stored.Key()
	if rec, ok := u.by[key]; ok && rec.Fingerprint == stored.Fingerprint && stored.Submissions > 0 {
		delete(u.by, key)
		u.n.Store(int64(len(u.by)))
	}
}

// standIn returns the listed record of an order.
func (u *unrecorded) standIn(key schemas.OrderKey) (schemas.OrderRecord, bool) {
	if u.n.Load() == 0 {
		return schemas.OrderRecord{}, false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	rec, ok := u.by[key]
	return rec, ok
}
