package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats.go"
)

// Store is what the pipeline needs of the order store.
type Store interface {
	// Get returns the record of an order, and false when there is none.
	Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error)
	// Put writes rec if the stored record's version is still rec.Version
	// (0: none) and schemas.CheckTransition allows the move. It returns the
	// stored record (version incremented); when it returns without error
	// the write is on disk. Safe for concurrent use.
	Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error)
	// PutPatient is Put for a write the caller can wait a little longer
	// for: as durable when it returns, but it may wait to share a commit
	// (store.DB.PutPatient).
	PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error)
}

// Publisher publishes result events and dead letters. Each call returns
// once the stream has acknowledged the message; msgID is its Nats-Msg-Id, so
// that publishing the same event again (after a crash) is deduplicated by
// the stream within its duplicate window (Topology.Duplicates); after it,
// the stream keeps the event twice. Safe for concurrent use.
type Publisher interface {
	PublishResult(ctx context.Context, res *schemas.Result, msgID string) error
	PublishDeadLetter(ctx context.Context, dl *schemas.DeadLetter, msgID string) error
	// PublishResultAsync starts publishing res and returns at once; the
	// function it returns waits until the stream has acknowledged it (or
	// ctx ends). It may be called once, or not at all by a caller that no
	// longer needs to know.
	PublishResultAsync(res *schemas.Result, msgID string) (wait func(ctx context.Context) error)
}

// Providers finds the provider configured for a seller.
type Providers interface {
	// Provider returns the seller's provider, and false when the seller is
	// not configured.
	Provider(seller string) (providers.Provider, bool)
}

// ProviderMap is a fixed set of providers by seller tax number.
type ProviderMap map[string]providers.Provider

// Provider implements Providers.
func (m ProviderMap) Provider(seller string) (providers.Provider, bool) {
	p, ok := m[seller]
	return p, ok
}

// Pipeline turns one delivery of a request into its effects: decode and
// validate, look the order up, talk to the provider, save, publish. It never
// acknowledges anything itself: Process returns an Outcome and the consume
// loop acts on it. It is safe for concurrent use by many workers.
type Pipeline struct {
	cfg        Config
	validator  *schemas.Validator
	store      Store
	pub        Publisher
	providers  Providers
	docs       *DocumentKeeper
	backlog    Backlog
	unclaimed  horizons
	unrecorded unrecorded
	locks      keyLocks
	holds      holds
	saving     saving
}

// New returns a Pipeline.
func New(cfg Config, v *schemas.Validator, st Store, pub Publisher, ps Providers) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline config: %w", err)
	}
	if v == nil || st == nil || pub == nil || ps == nil {
		return nil, errors.New("pipeline needs a validator, a store, a publisher and providers")
	}
	return &Pipeline{cfg: cfg.withDefaults(), validator: v, store: st, pub: pub, providers: ps}, nil
}

// KeepDocuments makes the pipeline wake k whenever it saves an order as
// issued with invoices (the order store lists such an order in its
// pending-documents index in the same write), so that their documents are
// kept in the background. Call it before Process is first used.
func (p *Pipeline) KeepDocuments(k *DocumentKeeper) { p.docs = k }

// WatchBacklog lets the pipeline submit a new order to a provider whose
// submissions are repeatable without claiming it durably first, for as long
// as b shows that no waiting request is older than the provider's repeat
// window (see Backlog). Before such a submission the request stream's
// unclaimed mark in marks is raised past the request, so that
// RecoverUnclaimed finds it after a crash. Without it every submission is
// claimed first. Call it before Process is first used.
func (p *Pipeline) WatchBacklog(b Backlog, marks Marks) {
	p.backlog, p.unclaimed.marks = b, marks
}

// MaxDeliver returns the delivery limit in force.
func (p *Pipeline) MaxDeliver() int { return p.cfg.MaxDeliver }

// HeldSellers returns the sellers currently held because a person must act,
// with the provider's reason.
func (p *Pipeline) HeldSellers() map[string]string { return p.holds.list() }

// Process handles one delivery of a request and returns what the consume
// loop must do with it. Nothing is acked before its outcome is saved and
// published, and the outcome is saved before it is published, except an
// issued invoice, whose result is published while it is saved: a crash at
// any point is repaired by redelivery, which queries the provider for a
// claimed order or answers from the store, and publishes again under the
// same message id, which the result stream deduplicates. Process never
// panics; a bug shows as an "error" event and a Nak, and at the delivery
// limit as a given-up request (panicked).
func (p *Pipeline) Process(ctx context.Context, m *Message) (out Outcome) {
	var fingerprint string // the request's, once decoded: panicked tells its order's record from another request's
	defer func() {
		if r := recover(); r != nil {
			out = p.panicked(ctx, m, out, fingerprint, fmt.Errorf("panic while processing: %v\n%s", r, debug.Stack()))
		}
	}()
	subjectSeller := p.cfg.Subjects.SellerOf(m.Subject)
	d, err := p.validator.Decode(m.Data, subjectSeller)
	if err != nil {
		return p.malformed(ctx, m, subjectSeller, err)
	}
	fingerprint = d.Fingerprint
	out.Seller, out.OrderNo, out.Kind = d.SellerTaxNum, d.OrderNo, d.Kind
	if subjectSeller != "" {
		out.Seller = subjectSeller
	}
	d.Warnings = listWithin(d.Warnings, 0, maxListedBytes, restOfWarnings)
	o := &order{p: p, m: m, d: d, out: &out, now: p.cfg.Now()}
	if !d.Valid() {
		switch recorded, err := p.recordedUnderItsSeller(ctx, d); {
		case err != nil && m.Deliveries < p.cfg.MaxDeliver:
			out.Action, out.Delay, out.Event, out.Err = Nak, p.cfg.retryDelay(m.Deliveries, 0), EventError, err
			return out
		case recorded:
			// An earlier build's request in flight: finish it, but
			// never submit it (order.withhold).
			o.refused, o.refusedSeller = violationError(d), out.Seller
			d.Violations = nil
		}
	}
	if !d.Valid() {
		o.answerUnstored(ctx, schemas.StatusRejected, violationError(d), EventRejected)
		return out
	}
	o.req = d.Request
	o.key = schemas.OrderKey{Seller: o.req.SellerTaxNum, OrderNo: o.req.OrderNo}
	out.Seller, out.OrderNo = o.key.Seller, o.key.OrderNo
	o.run(ctx)
	return out
}

// violationError is the error a request with violations is rejected with.
func violationError(d *schemas.Decoded) *schemas.ErrorInfo {
	e := d.Error()
	e.Message, e.Field = clip(e.Message, maxTextBytes), clip(e.Field, maxTextBytes)
	e.Violations = listWithin(e.Violations, d.NotListed, maxListedBytes, restOfViolations)
	return e
}

// recordedUnderItsSeller reports whether the order store holds the same
// invalid request d, unfinished, under its seller: one that an earlier
// build took as valid and recorded, in flight when this one started, and
// that a rule of this build refuses (its subject's spelling of the seller,
// schemas.RuleSubjectSpelling, or an amount rule made stricter). It is
// finished as it was begun rather than answered rejected while its order
// may be under way at the provider, but never submitted (order.withhold).
// The read is made outside the order's lock: what run then reads under it
// decides the answer, and nothing of this one is submitted either way.
func (p *Pipeline) recordedUnderItsSeller(ctx context.Context, d *schemas.Decoded) (bool, error) {
	if d.Request == nil || d.Request.SellerTaxNum == "" || d.Request.OrderNo == "" {
		return false, nil
	}
	key := schemas.OrderKey{Seller: d.Request.SellerTaxNum, OrderNo: d.Request.OrderNo}
	rec, found, err := p.lookup(ctx, key)
	switch {
	case errors.Is(err, store.ErrInvalidKey):
		return false, nil // a key no build could have recorded (an order number of a megabyte)
	case err != nil:
		return false, fmt.Errorf("read order %s: %w", key, err)
	}
	return found && rec.Fingerprint == d.Fingerprint && !rec.State.Finished(), nil
}

// order is the work on one delivery of a valid request.
type order struct {
	p    *Pipeline
	m    *Message
	d    *schemas.Decoded
	req  *schemas.Request
	key  schemas.OrderKey
	out  *Outcome
	now  time.Time
	prov providers.Provider
	rec  schemas.OrderRecord
	// prior is the order's stored record when it is this request's (the
	// same fingerprint), before rec is set from it.
	prior *schemas.OrderRecord
	// awaiting says that this delivery's answer was the provider waiting
	// for someone outside it (providers.Outcome.AwaitingParty).
	awaiting bool
	// refused is the rejection of a request that a rule of this build
	// refuses (a lower-case seller subject, an amount rule made stricter)
	// let through only because an earlier build recorded its order
	// (Pipeline.recordedUnderItsSeller), answered under refusedSeller if
	// the provider turns out not to have the order: such a request is
	// finished, never submitted (withheld says converse held it back).
	refused       *schemas.ErrorInfo
	refusedSeller string
	withheld      bool
}

func (o *order) run(ctx context.Context) {
	unlock, ok := o.p.locks.tryLock(o.key.String())
	if !ok {
		o.busy()
		return
	}
	defer unlock()

	stored, found, err := o.p.lookup(ctx, o.key)
	if err != nil {
		err = fmt.Errorf("read order %s: %w", o.key, err)
		if o.m.Deliveries >= o.p.cfg.MaxDeliver && o.mayBeWaiting() {
			// Only a request whose polls did not count (an order waiting
			// for the buyer) gets past MaxDeliver, and on its MaxDeliver-th
			// delivery only the record says whether it is one: without
			// the record, whether it may be given up cannot be told
			// (mayBeWaiting).
			o.out.Action, o.out.Delay, o.out.Event, o.out.Err = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError, err
			return
		}
		o.later(ctx, EventError, 0, &schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "the order store could not be read"}, err)
		return
	}
	var old *schemas.OrderRecord
	if found {
		old = &stored
		o.p.saving.count(&stored) // the calls of an issued record whose save failed
		o.out.Attempts = stored.Attempts
		if stored.Fingerprint == o.d.Fingerprint {
			if !o.keepLatest(ctx, &stored) {
				return
			}
			o.restartReplayed(&stored)
			o.prior = &stored
			o.out.waitPolls = stored.WaitPolls
		}
	}
	decision := schemas.Decide(old, o.d.Fingerprint)
	o.out.Decision = decision.String()
	if decision == schemas.DecideSubmit && (o.supersededReplay(old) || o.staleCopy(old)) {
		// Nothing is sent, as for any conflict; the order's provider is
		// named as its other results name it.
		o.out.Decision = schemas.DecideConflict.String()
		o.out.Provider = old.Provider
		msg := fmt.Sprintf("order %s of seller %s was started over by a later, different request (fingerprint %.12s…, %s now): this replayed request was superseded by it, and nothing was sent to the provider. Replay the later request's dead letter; to have this request invoiced instead, publish it again as a new request (publisher publish --new-id)",
			o.key.OrderNo, o.key.Seller, old.Fingerprint, old.State)
		if !o.supersededReplay(old) { // a stale copy, or the replay of one
			msg = fmt.Sprintf("order %s of seller %s is %s for a later, different request (fingerprint %.12s…), published after this one (that one %s, this one %s): this request was superseded by it, and nothing was sent to the provider. To have this request invoiced instead, publish it again as a new request (publisher publish --new-id)",
				o.key.OrderNo, o.key.Seller, old.State, old.Fingerprint, recordedAt(old), o.requestAt())
		}
		o.answerUnstored(ctx, schemas.StatusConflict, &schemas.ErrorInfo{Code: schemas.CodeConflict, Field: "orderNo", Message: msg}, EventConflict)
		return
	}
	switch decision {
	case schemas.DecideReplay:
		o.publishResult(old.Result(), EventReplayed)
		return
	case schemas.DecideConflict:
		msg := fmt.Sprintf("order %s of seller %s is %s for a different request (fingerprint %.12s…); nothing was sent to the provider",
			o.key.OrderNo, o.key.Seller, old.State, old.Fingerprint)
		if old.State == schemas.StateRejected && len(old.Invoices) > 0 { // schemas.Decide: a split order that failed in part
			msg = fmt.Sprintf("order %s of seller %s failed in part for a different request (fingerprint %.12s…): invoice %v was issued and the rest failed; nothing was sent to the provider. A reissue request issues the rest; to change the invoices, red-confirm them and use a new order number",
				o.key.OrderNo, o.key.Seller, old.Fingerprint, invoiceNumbers(old.Invoices))
		}
		// Nothing is sent, but the order is at the provider its record
		// names: the result says which, as the order's other results do
		// (and as its attempts, the record's, are counted there).
		o.out.Provider = old.Provider
		o.answerUnstored(ctx, schemas.StatusConflict, &schemas.ErrorInfo{Code: schemas.CodeConflict, Message: msg, Field: "orderNo"}, EventConflict)
		return
	}

	prov, ok := o.p.providers.Provider(o.key.Seller)
	if !ok {
		o.answerUnstored(ctx, schemas.StatusRejected, &schemas.ErrorInfo{
			Code:    schemas.CodeSellerNotConfigured,
			Message: fmt.Sprintf("seller %s is not configured: no provider credentials for it", o.key.Seller),
			Field:   "sellerTaxNum",
		}, EventRejected)
		return
	}
	o.prov = prov
	o.out.Provider = prov.Name()

	hs := o.p.holds.check(o.key.Seller, o.now, o.p.cfg.HoldProbe)
	if hs.held && !hs.probe {
		wait := hs.nextProbe.Sub(o.now) + rand.N(o.p.cfg.HoldProbe/10+1)
		o.later(ctx, EventHeld, wait, &schemas.ErrorInfo{Code: schemas.CodeActionRequired,
			Message: fmt.Sprintf("seller %s is held until a person acts: %s", o.key.Seller, hs.reason)}, nil)
		return
	}

	if decision == schemas.DecideSubmit && old != nil && old.State == schemas.StateFailed && old.Submissions > 0 {
		// A corrected request for an order whose earlier request was
		// submitted and then given up: that one may have been issued
		// after all. Find out before sending anything.
		settled, class := o.settleEarlier(ctx, old)
		if hs.probe && class != 0 && class != providers.ActionRequired {
			o.p.holds.release(o.key.Seller) // the provider answered the probe
		}
		if !settled {
			return
		}
	}

	if decision == schemas.DecideSubmit {
		o.rec = schemas.OrderRecord{
			Seller: o.key.Seller, OrderNo: o.key.OrderNo, Kind: o.req.Kind, Fingerprint: o.d.Fingerprint,
			Provider: prov.Name(), ReceivedAt: o.now, Warnings: o.d.Warnings,
		}
		o.requestAt().keepIn(&o.rec)
		if old != nil {
			o.rec.Version = old.Version // a corrected request starts over
			o.rec.Supersede(old)
			o.rec.Restarts = old.Restarts
			if old.State == schemas.StateRejected && old.Refused {
				// The provider refused the earlier request's task for
				// good, and may keep it under the order's key (jumdata's
				// taskId): this one is submitted under a key of its own.
				// Any other rejection keeps the key, which the provider
				// may still hold a task under.
				o.rec.Restarts++
			}
		}
	} else {
		o.rec = stored
		o.rec.Provider = prov.Name()
	}

	answer, err := o.converse(ctx)
	if err != nil {
		o.later(ctx, EventError, 0, &schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "the order store could not record the claim"}, err)
		return
	}
	if o.withheld {
		if hs.probe && o.rec.Submissions > 0 {
			o.p.holds.release(o.key.Seller) // the provider answered the probe's query
		}
		o.withhold(ctx)
		return
	}
	if hs.probe && answer.Class != providers.ActionRequired && !answer.Local {
		o.p.holds.release(o.key.Seller) // the provider answered the probe
	}
	o.apply(ctx, answer)
}

// restartReplayed starts the counts of rec, this request's unfinished
// order, afresh (OrderRecord.RestartCounts) at the first delivery of a
// replayed dead letter (HeaderReplayOf): when the counts are neither this
// replay's nor those of a replay published after it
// (OrderRecord.ReplayPublishedAt, saved with the next write). The counts are
// then those of the request given up, which giveUp restarts when it saves
// the order as failed, but which a give-up that could not write the record
// left as they were: the order store could not be read (a waiting form's
// request is given up so twice RedConfirmWait after its publication), or a
// delivery panicked (panicked leaves the order as the store has it).
// Without this, the replay of such a form would be given up at its first
// answer, its old wait being over, and a replay of any other order would
// keep the backoff and polling schedule where the request given up left
// them. Once a delivery of the replay has written the record, its counts are
// the replay's own and are kept (a delivery that ends before writing, a held
// seller's, restarts the same old counts again).
//
// Both times compared are the NATS server's, the request stream's
// timestamps of this replay and of the one that restarted the counts last.
// The record's UpdatedAt is the consumer's clock: with the two hosts' clocks
// a few minutes apart, a replay published soon after the give-up looked
// older than the record and kept the old counts (the consumer's clock
// ahead), or the replay's own writes looked older than the replay and every
// delivery restarted its counts, its backoff and delivery budget never
// advancing (the consumer's clock behind).
func (o *order) restartReplayed(rec *schemas.OrderRecord) {
	if rec.State.Finished() || len(o.m.Header[HeaderReplayOf]) == 0 || !o.m.PublishedAt.After(rec.ReplayPublishedAt) {
		return
	}
	rec.RestartCounts()
	rec.ReplayPublishedAt = o.m.PublishedAt
}

// keepLatest moves rec, the record of this request's order and of this
// same request, to where and when this delivery's request entered the
// request stream (requestAt), when that is later than what rec keeps
// (requestAt.before) or rec does not know (a record written before it was
// kept, or started by a replay that did not say), and saves it at once. It
// reports false when the save failed: the outcome is set then (put back).
//
// The order system published the request again (under a new message id:
// it means it), and a different request published before this
// publication is superseded by it, as by any later request (staleCopy):
// the order system's last word is this one. Were rec to keep the first
// publication only, a different request published between the two and
// delivered after this one (put back, its acknowledgement lost, the later
// message going first) would start an order that is rejected or failed
// over and be invoiced over the request sent after it. The save is made
// now, not with the delivery's next write: a request answered from the
// store (DecideReplay) writes nothing, and one that resumes its order may
// end before writing (a held seller), while the other request may come
// next. An issued order needs none of it: it answers any other request a
// conflict, and its record is final. A delivery of an earlier publication
// of the request (a redelivery
// of the first message) is not later and leaves rec as it is: it never
// sets rec back. A replay is judged by when its request first entered the
// stream, as it says, and one that does not say moves nothing.
func (o *order) keepLatest(ctx context.Context, rec *schemas.OrderRecord) bool {
	if rec.State.Finished() && schemas.Decide(rec, "") == schemas.DecideConflict {
		return true // issued, or issued in part: any other request is a conflict for good
	}
	at, kept := o.requestAt(), recordedAt(rec)
	if at.publishedAt.IsZero() || (!kept.publishedAt.IsZero() && !kept.before(at)) {
		return true
	}
	at.keepIn(rec)
	o.rec = *rec
	saved := o.save(ctx)
	// o.rec stays empty until run sets it: a delivery that ends before
	// then is told apart by it (exhausted, giveUp).
	*rec, o.rec = o.rec, schemas.OrderRecord{}
	return saved
}

// supersededReplay reports whether the request is a replayed dead letter
// (HeaderReplayOf) of a request that a different one replaced since: old,
// the order's record that this request would start over, lists it among
// the requests the order was started over from (OrderRecord.Superseded).
// The order system sent the other request after this one, a correction.
// Were it submitted, replaying the dead letters of both (publisher dlq
// replay takes them in the order they were given up, the older request
// first) would have the older request invoiced, and the correction's
// replay answered a conflict. The same request published again without
// the mark (the order system sending it anew) starts the order over: it is
// the latest request then, unless it was published before the request the
// record holds (staleCopy, which judges a replay of a request the list
// does not name too). A record written before the list was kept does not
// tell, and such a replay starts the order over as before unless staleCopy
// tells.
func (o *order) supersededReplay(old *schemas.OrderRecord) bool {
	return old != nil && len(o.m.Header[HeaderReplayOf]) > 0 && slices.Contains(old.Superseded, o.d.Fingerprint)
}

// staleCopy reports whether the request was published before the
// different request that old, the order's record that this request would
// start over, holds (requestAt.before): a copy of an older request
// delivered after its correction was answered (JetStream delivering it
// again once its acknowledgement was lost, or after a delay that let the
// correction through first), or the replayed dead letter of an older
// request that old does not list as superseded (given up without a record
// of its own, another request's record there). The order system sent the
// other request after this one; were this one submitted, the outdated
// request would be invoiced over its correction. The same request
// published again (the order system sending it anew, publisher publish
// --new-id) is published after the other and starts the order over: it is
// the latest request then. A replayed dead letter's publication is the
// replay's, not the request's: a replay is judged by when the request it
// republishes first entered the stream, as it says (requestAt), and a
// record started by a replay keeps that. A request or a record that does
// not know when its request was published (a record written before it was
// kept; a replay that did not say, an earlier build's, or a record it
// started) does not tell, and such a request starts the order over as
// before.
func (o *order) staleCopy(old *schemas.OrderRecord) bool {
	return old != nil && o.requestAt().before(recordedAt(old))
}

// requestAt is where and when a request entered the request stream: the
// stream and the request's sequence there, when the durable consumer that
// delivered it was created (Message.ConsumerCreated), and the stream's
// timestamp. A field not known is zero.
type requestAt struct {
	stream          string
	seq             uint64
	consumerCreated time.Time
	publishedAt     time.Time
}

// requestAt is where and when this request entered the request stream, as
// the record it starts keeps it (keepIn): the message's own; for a
// replayed dead letter where and when the request it republishes first
// did, as the replay says (replayPosition, replayPublished), zero what it
// does not say: the replay's place in the stream is the replay's, not the
// request's.
func (o *order) requestAt() requestAt {
	if len(o.m.Header[HeaderReplayOf]) > 0 {
		at := replayPosition(o.m)
		at.publishedAt = replayPublished(o.m)
		return at
	}
	return requestAt{stream: o.m.Stream, seq: o.m.StreamSeq, consumerCreated: o.m.ConsumerCreated, publishedAt: o.m.PublishedAt}
}

// recordedAt is where and when the request of rec entered the request
// stream, as rec keeps it: zero fields for a record written before they
// were kept.
func recordedAt(rec *schemas.OrderRecord) requestAt {
	return requestAt{stream: rec.RequestStream, seq: rec.RequestStreamSeq, consumerCreated: rec.RequestConsumerCreated,
		publishedAt: rec.RequestPublishedAt}
}

// keepIn sets the record rec, which a's request starts, to keep a.
func (a requestAt) keepIn(rec *schemas.OrderRecord) {
	rec.RequestStream, rec.RequestStreamSeq, rec.RequestConsumerCreated, rec.RequestPublishedAt = a.stream, a.seq, a.consumerCreated, a.publishedAt
}

// sameStream reports whether a and b are known to be in the same request
// stream, never one deleted and created again between them: both delivered
// through one durable consumer (the same stream name and consumer
// creation), which the server deletes with its stream.
func (a requestAt) sameStream(b requestAt) bool {
	return a.stream != "" && a.stream == b.stream && a.seq != 0 && b.seq != 0 &&
		!a.consumerCreated.IsZero() && a.consumerCreated.Equal(b.consumerCreated)
}

// before reports whether a entered the request stream before b. In the same
// stream (sameStream) the stream sequences say, and nothing else: a
// request is never before itself (the same sequence), and the timestamps,
// which the stream leaders' clocks set, do not count (after a leader change
// in a cluster the new leader's clock may be behind the old one's, while
// the sequence goes on). Otherwise, as for a stream deleted and created
// again (its sequences start over), the timestamps say, strictly: the same
// instant is not before, unless both are of a stream of the same name with
// sequences known, whose order then breaks the tie. Not before when either
// timestamp is not known.
func (a requestAt) before(b requestAt) bool {
	if a.sameStream(b) {
		return a.seq < b.seq
	}
	if a.publishedAt.IsZero() || b.publishedAt.IsZero() {
		return false
	}
	if a.publishedAt.Equal(b.publishedAt) {
		return a.stream != "" && a.stream == b.stream && a.seq != 0 && b.seq != 0 && a.seq < b.seq
	}
	return a.publishedAt.Before(b.publishedAt)
}

// String says where and when the request entered the stream, for a
// conflict's message: "#12 of INVOICE_REQUESTS at <RFC 3339>", or what of
// it is known.
func (a requestAt) String() string {
	var s string
	if a.seq != 0 && a.stream != "" {
		s = fmt.Sprintf("#%d of %s", a.seq, a.stream)
	}
	if !a.publishedAt.IsZero() {
		if s != "" {
			s += " "
		}
		s += "at " + a.publishedAt.UTC().Format(time.RFC3339Nano)
	}
	if s == "" {
		return "unknown"
	}
	return s
}

// replayPublished is when the request that m, a replayed dead letter,
// republishes first entered the request stream: its HeaderReplayPublished,
// which publisher dlq replay sets from the dead letter. Zero when m does
// not carry one that can be read (a replay by an earlier build), or when
// it is later than m's own publication, which no replay's original can
// be.
func replayPublished(m *Message) time.Time {
	vs := m.Header[HeaderReplayPublished]
	if len(vs) != 1 {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, vs[0])
	if err != nil || t.IsZero() || (!m.PublishedAt.IsZero() && t.After(m.PublishedAt)) {
		return time.Time{}
	}
	return t
}

// replayPosition is where the request that m, a replayed dead letter,
// republishes was in the request stream: its HeaderReplayPosition, which
// publisher dlq replay sets from the dead letter (the request's stream and
// sequence, and the creation of the durable that delivered it), with
// publishedAt left zero. Zero when m does not carry one that can be read
// (a replay by an earlier build, or of a dead letter written by one), or
// when it cannot be honoured as the position of a request m republished
// (requestAt.mayPrecede): a durable created after m's own publication,
// another stream, or a sequence not below m's, as the request came before
// its dead letter and the dead letter before the replay.
//
// With it, a replay and the order's record whose requests the same durable
// delivered are ordered by their stream sequences (requestAt.before), as
// two copies are, not by the stream leaders' clocks, which a leader change
// in a cluster may set back: before, a replay said only when, and the
// replay of an older request stamped by a leader whose clock was ahead was
// invoiced over the later request, or the later request's replay refused
// as superseded by the older one. The durable is the one that delivered
// the original request, never the replay's: one created again since
// delivers the replay, and what it numbers is the replay.
func replayPosition(m *Message) requestAt {
	vs := m.Header[HeaderReplayPosition]
	if len(vs) != 1 {
		return requestAt{}
	}
	at, ok := parseReplayPosition(vs[0])
	if !ok || !at.mayPrecede(requestAt{stream: m.Stream, seq: m.StreamSeq, consumerCreated: m.ConsumerCreated, publishedAt: m.PublishedAt}) {
		return requestAt{}
	}
	return at
}

// mayPrecede reports whether a, the position a replay carries
// (HeaderReplayPosition), can be that of a request the replay republished,
// the replay being at own, and whether it can be honoured: a durable
// created no later than the replay's publication, in the replay's own
// stream, at a sequence below the replay's, through whichever durable.
//
// The request came before the replay in the stream, so in a stream that
// was never created again its sequence is below the replay's whatever
// durable delivered it (a durable created again over the same stream
// goes on with the stream's sequences). A place past the replay's own can
// only be a stream created again since (its sequences start over), or a
// forged header: anyone allowed to publish requests can set it, and the
// two cannot be told apart. Honoured, such a place, through the durable
// that delivered the order's record, would order the replay after a
// request the record holds by sequence where the replay's own
// publication comes before it: a replay of an older request invoiced over
// a later one. So it is not honoured, nor a place in another stream,
// whose sequences bound nothing, and the replay is judged by the time its
// request was published, as before the place was carried: never later
// than the replay itself.
func (a requestAt) mayPrecede(own requestAt) bool {
	if !own.publishedAt.IsZero() && a.consumerCreated.After(own.publishedAt) {
		return false
	}
	return a.stream == own.stream && a.seq < own.seq
}

// parseReplayPosition reads a HeaderReplayPosition value, "<stream> <seq>
// <durable's creation, RFC 3339>" (ReplayPosition), into a requestAt
// without publishedAt.
func parseReplayPosition(v string) (requestAt, bool) {
	f := strings.Fields(v)
	if len(f) != 3 {
		return requestAt{}, false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || seq == 0 {
		return requestAt{}, false
	}
	created, err := time.Parse(time.RFC3339Nano, f[2])
	if err != nil || created.IsZero() {
		return requestAt{}, false
	}
	return requestAt{stream: f[0], seq: seq, consumerCreated: created}, true
}

// busy ends a delivery whose order another delivery in this process is
// working on (a copy of the request published again, a corrected request,
// a redelivery racing a slow worker), without doing anything for it.
// Waiting for the lock here would hold a worker for as long as the other
// delivery talks to the provider (an answer in doubt, the inline polls: up
// to LoopConfig.ProcessTimeout), and a burst of copies of one order would
// hold every worker, every other seller's requests waiting behind them.
// The consume loop keeps the delivery instead, without a worker, until the
// other one lets go of the order (Loop.park, Outcome.busyKey), and
// processes it again then: it is answered as it would have been after the
// wait, from the store, with a conflict, or by the provider. The outcome
// is the put-back of a delivery with nothing done (Outcome.Unprocessed),
// for Process's other callers and for a stop, which puts it back.
func (o *order) busy() {
	o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(1, 0), EventBusy
	o.out.Unprocessed = true
	o.out.busyKey = o.key.String()
}

// mayBeWaiting reports, for a delivery at or past MaxDeliver that cannot read
// its order's record, whether the order may still be within its wait of
// RedConfirmWait from WaitingSince, which the record holds. The wait began
// after the request's publication, and by the time it began the request
// had spent its MaxDeliver deliveries' backoff at most, or waited in a
// backlog: twice RedConfirmWait after the publication (six days by
// default) is past any wait but one that began after a backlog or outage
// of more than RedConfirmWait. A permanently unreadable record then ends
// its request (dead-lettered, replayable) instead of putting it back for
// ever.
func (o *order) mayBeWaiting() bool {
	return o.m.PublishedAt.IsZero() || o.now.Sub(o.m.PublishedAt) < 2*o.p.cfg.RedConfirmWait
}

// settleEarlier asks the provider after the earlier request for an order
// stored as failed after a submission (earlier), before a corrected request
// for it may be submitted, and reports whether it may. When it may not, the
// outcome is set: the earlier request was issued after all (its record is
// saved as issued, and the corrected request gets a conflict naming the
// invoices) or in part, a split order some of whose invoices failed (saved
// as rejected with the invoices issued, and a conflict naming them), the
// provider cannot tell (a conflict saying how to settle it),
// or the earlier request is still under way or the provider did not answer
// (the message is put back; an answer a person must act on holds the seller
// as apply does). class is the class of the provider's answer, 0 when it was
// not asked or the client answered by itself (providers.Outcome.Local).
func (o *order) settleEarlier(ctx context.Context, earlier *schemas.OrderRecord) (ok bool, class providers.Class) {
	conflict := func(format string, args ...any) {
		o.answerUnstored(ctx, schemas.StatusConflict, &schemas.ErrorInfo{
			Code: schemas.CodeConflict,
			Message: fmt.Sprintf("order %s of seller %s: an earlier, different request for it (fingerprint %.12s…) was submitted to %s and given up as failed; ",
				o.key.OrderNo, o.key.Seller, earlier.Fingerprint, o.prov.Name()) + fmt.Sprintf(format, args...),
			Field: "orderNo",
		}, EventConflict)
	}
	if earlier.Kind != o.req.Kind {
		conflict("it was a %s request, so what it left at the provider cannot be looked up for this %s request; nothing was sent. Replay the earlier request's dead letter to settle it, or use a new order number",
			earlier.Kind, o.req.Kind)
		return false, 0
	}
	o.out.Attempts = earlier.Attempts + 1
	a := o.prov.Query(ctx, &providers.Call{Request: o.req, Refs: earlier.Refs, SubmittedAt: earlier.SubmittedAt, Earlier: true, Accepted: earlier.Accepted, Restarts: earlier.Restarts})
	o.out.ProviderCode = a.Code
	answered := a.Class // what a held seller's probe learnt of the provider: nothing from a local answer
	if a.Local {
		answered = 0
	}
	failedInPart := a.Class == providers.Rejected && errors.Is(a.Err, providers.ErrIssuanceFailed) && len(a.Invoices) > 0
	switch {
	case a.Class == providers.NotFound,
		a.Class == providers.Rejected && errors.Is(a.Err, providers.ErrIssuanceFailed) && !failedInPart:
		return true, answered // nothing was issued for it: the corrected request may go
	case a.Class == providers.Issued, failedInPart:
		// The earlier request's invoices exist: its record says so, and
		// the corrected request is not sent.
		rec := *earlier
		rec.Attempts++
		mergeRefs(&rec.Refs, a.Refs)
		if a.RedConfirm != nil {
			rec.RedConfirm = formState(a.RedConfirm) // the form as the provider shows it now, as call keeps it
		}
		rec.State, rec.Invoices, rec.LastError, rec.CompletedAt = schemas.StateIssued, a.Invoices, nil, o.now
		if failedInPart {
			rec.State, rec.LastError = schemas.StateRejected, rejection(a)
		}
		if _, err := o.p.store.Put(ctx, rec); err != nil {
			o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError
			o.out.Err = fmt.Errorf("save order %s as %s for its earlier request: %w", o.key, rec.State, err)
			return false, answered
		}
		if o.p.docs != nil && len(a.Invoices) > 0 {
			o.p.docs.Wake()
		}
		nums := invoiceNumbers(a.Invoices)
		if failedInPart {
			conflict("the provider issued part of it (invoice %v) and failed the rest (%s), so this request was not sent. Replaying the earlier request's dead letter publishes its rejected result with those invoices; a reissue request issues the rest; to change the invoices, red-confirm them and use a new order number",
				nums, describe(a))
			return false, answered
		}
		conflict("the provider has issued it after all (invoice %v), so this request was not sent. Replaying the earlier request's dead letter publishes its issued result; to change the invoice, red-confirm it and use a new order number",
			nums)
		return false, answered
	case a.Class == providers.Rejected:
		conflict("whether it was issued cannot be established (%s), so this request was not sent. Replay the earlier request's dead letter to settle it, or use a new order number",
			describe(a))
		return false, answered
	case a.Class == providers.ActionRequired:
		why := providerError(schemas.CodeActionRequired, a)
		o.holdSeller(ctx, a, why, func() *schemas.Result { return o.unstoredResult(schemas.StatusActionRequired, why) })
		return false, answered
	}
	event := EventRetry
	if a.Class == providers.Unknown || a.Class == providers.Accepted {
		event = EventInDoubt
	}
	o.later(ctx, event, o.p.cfg.retryDelay(o.m.Deliveries, a.RetryAfter), &schemas.ErrorInfo{
		Code: schemas.CodeRetriesExhausted, ProviderCode: a.Code,
		Message: fmt.Sprintf("an earlier, different request for the order was submitted and its outcome at the provider is not known yet (%s); this request waits until it is", describe(a)),
	}, nil)
	return false, answered
}

// converse talks to the provider: an order that may already be there is
// queried first and submitted only when the provider has no record of it; a
// submission is claimed durably first; an answer lost in transit is
// reconciled by a query at once, unless the provider asked to be left alone
// for a while; an accepted order is polled InlinePolls times before the
// message is put back. A query that tells nothing new leaves the answer as
// it was, with the query's Retry-After where it asks for longer.
func (o *order) converse(ctx context.Context) (providers.Outcome, error) {
	var a providers.Outcome
	claim := true
	if o.rec.Version == 0 && o.rec.Submissions == 0 { // no record of the order at all
		claim = o.claimNeeded()
	} else if o.rec.Submissions > 0 {
		a = o.call(ctx, o.prov.Query)
		if a.Class == providers.NotFound {
			a = providers.Outcome{}
		}
	}
	if a.Class == 0 && o.refused != nil {
		o.withheld = true // the provider does not have it: it is not sent
		return a, nil
	}
	if a.Class == 0 {
		o.rec.State = schemas.StateSubmitting
		o.rec.Submissions++
		if o.rec.SubmittedAt.IsZero() {
			o.rec.SubmittedAt = o.now
			if !claim && !o.m.PublishedAt.IsZero() && o.m.PublishedAt.Before(o.now) {
				// Without a claim, another copy of the request may have
				// been submitted unrecorded before this one: date the
				// submission no later than the request's publication, so
				// that later look-ups never assume it younger than it is.
				o.rec.SubmittedAt = o.m.PublishedAt
			}
		}
		if !claim {
			// RecoverUnclaimed must find this request after a crash, and
			// until its order is saved the order is claimed in memory.
			if err := o.p.unclaimed.cover(ctx, o.m.Stream, o.m.StreamSeq); err != nil {
				claim = true
			} else {
				o.p.unrecorded.add(o.rec)
			}
		}
		if claim && !o.save(ctx) {
			return a, o.out.Err
		}
		a = o.call(ctx, o.prov.Submit)
		// A submission in doubt is asked about at once, unless its answer
		// (a 503, a 429 in front of a gateway) asked for time with
		// Retry-After: the query would go out against the provider's
		// word, most likely to be refused the same way (and jumdata's
		// query repeats the submission itself). Nothing is lost by
		// waiting: the record stays submitting with the submission
		// counted, so the next delivery, put back for at least that long
		// (apply), asks before it submits anything again. Unless there is
		// no next delivery (lastInDoubt): the request would be given up
		// as failed unasked, a 503 that came after the invoice was made
		// ending in a failed result and a dead letter. The query is its
		// last chance, and a refusal costs no more than the give-up.
		if a.Class == providers.Unknown && (a.RetryAfter <= 0 || o.lastInDoubt()) {
			switch q := o.call(ctx, o.prov.Query); q.Class {
			case providers.NotFound, providers.Retry, providers.Unknown:
				// Still in doubt: the next delivery asks again, not
				// before the query's hint.
				a.RetryAfter = max(a.RetryAfter, q.RetryAfter)
			default:
				a = q
			}
		}
	}
	for i := 0; a.Class == providers.Accepted && i < o.p.cfg.InlinePolls; i++ {
		q := o.call(ctx, o.prov.Query)
		if q.Class == providers.NotFound || q.Class == providers.Retry || q.Class == providers.Unknown {
			// Still accepted: polled again on the schedule, not before
			// a refused query's Retry-After.
			a.RetryAfter = max(a.RetryAfter, q.RetryAfter)
			break
		}
		a = q
	}
	return a, nil
}

// lastInDoubt reports whether an answer that leaves the order in doubt
// ends the request now: apply counts it among the order's answers
// (OrderRecord.Answers) and gives the request up on it when it is
// exhausted (order.exhausted, as later judges it).
func (o *order) lastInDoubt() bool {
	o.rec.Answers++
	defer func() { o.rec.Answers-- }()
	return o.exhausted(EventInDoubt)
}

// claimNeeded decides, for an order with no record, whether it must be
// claimed durably before it is submitted.
//
// The claim may go only when the pipeline watches a Backlog (an opt-in), the
// provider answers a repeated submission from the first one for a while
// (providers.RepeatableSubmitter), and no waiting request is older than
// that window: a submission a crash left unrecorded then came from a
// request published within the window, RecoverUnclaimed records its order
// at the next start, and asking the provider about it repeats it
// harmlessly. Until its answer is saved, the order is claimed in memory
// instead (Pipeline.lookup).
func (o *order) claimNeeded() bool {
	rs, ok := o.prov.(providers.RepeatableSubmitter)
	if !ok || o.p.backlog == nil { // WatchBacklog sets the backlog and the marks together
		return true
	}
	window := rs.RepeatableFor(&providers.Call{Request: o.req})
	if window <= 0 {
		return true
	}
	oldest, known := o.p.backlog.OldestWaiting()
	return !known || o.now.Sub(oldest) >= window
}

// call makes one provider call, counting it and keeping the references it
// returns.
func (o *order) call(ctx context.Context, f func(context.Context, *providers.Call) providers.Outcome) providers.Outcome {
	o.rec.Attempts++
	// Counted before the call, so that a call that panics is counted in
	// the failed result of a request given up after the panic.
	o.out.Attempts = o.rec.Attempts
	// Every call for a request let through as an earlier build's
	// (o.refused) only looks: a call the record counts (an earlier
	// build's Submit refused before it took effect, a look-up that failed)
	// does not show that the provider has the task, and repeating a task it
	// does not have submits it.
	a := f(ctx, &providers.Call{Request: o.req, Refs: o.rec.Refs, SubmittedAt: o.rec.SubmittedAt, Resubmission: o.rec.Submissions > 1,
		Accepted: o.rec.Accepted || o.rec.State == schemas.StateAccepted, LookOnly: o.refused != nil, Restarts: o.rec.Restarts})
	mergeRefs(&o.rec.Refs, a.Refs)
	if a.Class == providers.Accepted {
		// Kept through action_required and failed (OrderRecord.Accepted).
		o.rec.Accepted = true
	}
	if a.RedConfirm != nil {
		o.rec.RedConfirm = formState(a.RedConfirm)
	}
	o.out.ProviderCode = a.Code
	return a
}

// formState is a copy of a red confirmation form's state as a record
// keeps it, its provider's message clipped (describe).
func formState(rc *schemas.RedConfirmState) *schemas.RedConfirmState {
	c := *rc
	c.Message = clip(c.Message, maxProviderTextBytes)
	return &c
}

func mergeRefs(dst *schemas.ProviderRefs, src schemas.ProviderRefs) {
	if src.SerialNo != "" {
		dst.SerialNo = src.SerialNo
	}
	if src.TaskID != "" {
		dst.TaskID = src.TaskID
	}
	if src.BillID != "" {
		dst.BillID = src.BillID
	}
	if src.BillNo != "" {
		dst.BillNo = src.BillNo
	}
	if src.ConfirmedForm != "" {
		dst.ConfirmedForm = src.ConfirmedForm
	}
}

// apply records the provider's answer and decides what happens to the
// message.
func (o *order) apply(ctx context.Context, a providers.Outcome) {
	failures := o.rec.Failures
	o.rec.Failures = 0 // any answer but a transient failure ends a run of them
	switch a.Class {
	case providers.Issued:
		o.rec.State = schemas.StateIssued
		o.rec.Invoices = a.Invoices
		o.rec.LastError = nil
		o.rec.CompletedAt = o.now
		// The invoice exists at the provider, and the stored claim makes
		// any later delivery query it there before anything else: the
		// result is true whether or not this save lands. So it is
		// published while the record is saved, and the request is acked
		// once both are done.
		res := o.rec.Result()
		if published, ok := o.publishWhileSaving(ctx, res); ok {
			if o.p.docs != nil && len(a.Invoices) > 0 {
				o.p.docs.Wake() // the store listed the order for its documents
			}
			o.out.Published = published
			o.out.Action, o.out.Event, o.out.Status = Ack, EventIssued, res.Status
		} else {
			o.out.Err = fmt.Errorf("%w (its result is published; the next delivery finds it issued at the provider and saves it)", o.out.Err)
		}
	case providers.Rejected:
		o.rec.State = schemas.StateRejected
		o.rec.Invoices = a.Invoices // those issued of a split order that failed in part
		o.rec.LastError = rejection(a)
		o.rec.Refused = errors.Is(a.Err, providers.ErrSubmissionRefused)
		o.rec.CompletedAt = o.now
		if o.save(ctx) {
			if o.p.docs != nil && len(a.Invoices) > 0 {
				o.p.docs.Wake() // the store listed the order for its documents
			}
			o.publishResult(o.rec.Result(), EventRejected)
		}
	case providers.Accepted:
		o.rec.State = schemas.StateAccepted
		o.rec.Polls++
		delay := o.p.cfg.pollDelay(o.rec.Polls, a.RetryAfter)
		if a.AwaitingParty {
			o.awaiting = true
			o.rec.WaitPolls++
			if o.rec.WaitingSince.IsZero() {
				o.rec.WaitingSince = o.now
			}
			if o.now.Sub(o.rec.WaitingSince) >= RedConfirmSlowAfter {
				delay = max(delay, RedConfirmSlowPoll)
			}
		} else {
			o.rec.Answers++
		}
		if o.save(ctx) {
			o.later(ctx, EventAccepted, delay, providerError(schemas.CodeRetriesExhausted, a), nil)
		}
	case providers.ActionRequired:
		if o.rec.State != schemas.StateActionRequired {
			o.rec.ActionEpisode++
		}
		o.rec.State = schemas.StateActionRequired
		o.rec.LastError = providerError(schemas.CodeActionRequired, a)
		if !o.save(ctx) {
			return
		}
		o.holdSeller(ctx, a, o.rec.LastError, func() *schemas.Result {
			res := o.rec.Result()
			res.CompletedAt = o.now
			return res
		})
	default: // Retry, Unknown (still in doubt), NotFound
		event := EventRetry
		if a.Class == providers.Unknown {
			event = EventInDoubt
		}
		o.rec.LastError = providerError(schemas.CodeRetriesExhausted, a)
		o.rec.Failures = failures + 1
		o.rec.Answers++
		if o.save(ctx) {
			o.later(ctx, event, o.p.cfg.retryDelay(o.rec.Failures, a.RetryAfter), o.rec.LastError, nil)
		}
	}
}

// holdSeller holds the seller on an answer a person must act on: the first
// order to meet it starts an episode and publishes its action_required
// result (result builds it), and the message is put back until the next
// probe.
func (o *order) holdSeller(ctx context.Context, a providers.Outcome, why *schemas.ErrorInfo, result func() *schemas.Result) {
	if episode, started := o.p.holds.enter(o.key.Seller, describe(a), o.now, o.p.cfg.HoldProbe); started {
		if err := o.p.pub.PublishResult(ctx, result(), fmt.Sprintf("action:%s:%d", o.key.Seller, episode)); err != nil {
			o.out.Err = fmt.Errorf("publish action_required result: %w", err)
			o.p.holds.release(o.key.Seller) // the next delivery starts the episode again and publishes
		} else {
			o.out.Status = schemas.StatusActionRequired
		}
	}
	o.later(ctx, EventActionRequired, o.p.cfg.HoldProbe+rand.N(o.p.cfg.HoldProbe/10+1), why, nil)
}

// rejection describes a permanent refusal.
func rejection(a providers.Outcome) *schemas.ErrorInfo {
	code := schemas.CodeProviderRejected
	switch {
	case errors.Is(a.Err, providers.ErrUnsupported):
		code = schemas.CodeUnsupported
	case errors.Is(a.Err, providers.ErrIssuanceFailed):
		code = schemas.CodeProviderFailed
	}
	e := providerError(code, a)
	e.Field = a.Field
	return e
}

func providerError(code schemas.ErrorCode, a providers.Outcome) *schemas.ErrorInfo {
	return &schemas.ErrorInfo{Code: code, Message: describe(a), ProviderCode: a.Code}
}

// describe says what the provider answered, clipped: its answers are read
// up to 4 MiB, and a message of a megabyte would take the result, the
// order's record and the dead letter past the server's payload limit, and
// the request would never end.
func describe(a providers.Outcome) string {
	switch {
	case a.Message != "":
		return clip(a.Message, maxProviderTextBytes)
	case a.Err != nil:
		return clip(a.Err.Error(), maxProviderTextBytes)
	case a.Code != "":
		return "provider answered " + a.Code
	}
	return "provider answered " + a.Class.String()
}

// save writes the record. On failure it sets a Nak outcome and returns
// false: nothing is acknowledged that was not recorded.
func (o *order) save(ctx context.Context) bool { return o.saveWith(ctx, o.p.store.Put) }

// publishWhileSaving starts publishing res, then saves the record with
// PutPatient (the publish is the effect it waits for meanwhile, so the
// store may fit the write into a commit another write starts). Readers
// through Pipeline.Orders read the record being saved from before the
// publish until the save ends. It returns the publish's wait and whether
// the save succeeded (save). The outcome holds the wait and the status
// from the start of the publish (Outcome.Published; the loop uses it for
// an Ack only), so that a panic during the save is known to have come
// after the result went out (panicked). A save that fails leaves the calls
// the record counted to the next delivery of the order in this process
// (saving.failed), which asks the provider again and publishes the result
// again: the repetition counts them too, not fewer calls than the first.
func (o *order) publishWhileSaving(ctx context.Context, res *schemas.Result) (published func(context.Context) error, saved bool) {
	defer o.p.saving.begin(o.key, o.rec)()
	published = o.p.pub.PublishResultAsync(res, o.resultID(res.Status))
	o.out.Published, o.out.Status = published, res.Status
	saved = o.saveWith(ctx, o.p.store.PutPatient)
	if !saved {
		o.p.saving.failed(o.rec)
	}
	return published, saved
}

func (o *order) saveWith(ctx context.Context, put func(context.Context, schemas.OrderRecord) (schemas.OrderRecord, error)) bool {
	stored, err := put(ctx, o.rec)
	if err != nil {
		o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError
		o.out.Err = fmt.Errorf("save order %s as %s: %w", o.key, o.rec.State, err)
		return false
	}
	o.rec = stored
	o.out.Attempts = stored.Attempts
	o.p.unrecorded.settle(stored)
	o.p.saving.saved(o.key)
	return true
}

// lookup returns the stored record of an order or, when there is none, the
// record its claim would have left for an order submitted without a claim
// whose answer has not been saved (version 0: saving it creates it).
func (p *Pipeline) lookup(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	rec, found, err := p.store.Get(ctx, key)
	if err != nil {
		return rec, found, err
	}
	if found {
		rec.CarryOverLegacyWait()
		return rec, true, nil
	}
	rec, found = p.unrecorded.standIn(key)
	return rec, found, nil
}

// withhold ends a request let through only as an earlier build's
// (o.refused) whose order the provider does not have: this build refuses
// it (its subject, or its amounts), so it is not submitted. Its record is
// saved as failed, nothing sent, so that the same request on the seller's
// subject in capitals, or a corrected one, resumes or starts the order
// over; the request is answered rejected, as this build answers any such
// request. A record that another request replaced meanwhile is left as it
// is.
func (o *order) withhold(ctx context.Context) {
	why := o.refused
	if o.prior != nil {
		o.rec.State = schemas.StateFailed
		o.rec.LastError = &schemas.ErrorInfo{Code: why.Code, Field: why.Field, Violations: why.Violations,
			Message: clip(why.Message+"; the provider has no record of the order and nothing was sent to it", maxTextBytes)}
		o.rec.RestartCounts()
		// The provider answered NotFound (submitting is safe): nothing of
		// an earlier submission is left to settle, and no dead letter
		// exists to settle it with, so another request starts over.
		o.rec.Submissions, o.rec.SubmittedAt = 0, time.Time{}
		o.rec.CompletedAt = o.now
		if !o.save(ctx) {
			return
		}
		why = o.rec.LastError
	}
	o.out.Seller = o.refusedSeller
	o.answerUnstored(ctx, schemas.StatusRejected, why, EventRejected)
}

// later puts the message back for another delivery after delay, or gives up
// when this was the last allowed delivery.
func (o *order) later(ctx context.Context, event string, delay time.Duration, why *schemas.ErrorInfo, err error) {
	if o.exhausted(event) {
		o.giveUp(ctx, event, why)
		return
	}
	if delay <= 0 {
		delay = o.p.cfg.retryDelay(o.m.Deliveries, 0)
	}
	o.out.Action, o.out.Delay, o.out.Event = Nak, delay, event
	if err != nil {
		o.out.Err = err
	}
}

// exhausted reports whether the request has run out of deliveries, and
// ends with event now. Every delivery counts against MaxDeliver, except
// those that ended with the provider waiting for someone outside it
// (OrderRecord.WaitPolls: a red confirmation form the buyer has to
// confirm): such an order is polled for RedConfirmWait from WaitingSince,
// and its other deliveries (failures, holds, the provider still working)
// keep the budget of MaxDeliver.
//
// A delivery that ended with the provider's answer (retry, in doubt, still
// working) also needs the order to have had MaxDeliver such answers
// (OrderRecord.Answers, which starts again when the order is given up),
// which it has by then unless the server's count of deliveries includes
// some that never reached the pipeline: put-backs while the store was
// failing (LoopConfig.Paused) that a restart of the consumer made the loop
// forget. Such a request gets its MaxDeliver answers instead of being given
// up at its first. (Not Attempts: a delivery may make several calls, the
// inline polls of a form waiting for the buyer among them, and a replay
// keeps the calls of the request given up.)
func (o *order) exhausted(event string) bool {
	rec := o.rec
	if rec.Seller == "" && o.prior != nil {
		rec = *o.prior // a delivery that ends before rec is set (a held seller)
	}
	if event == EventAccepted && o.awaiting {
		return o.now.Sub(rec.WaitingSince) >= o.p.cfg.RedConfirmWait
	}
	spent := o.m.Deliveries-rec.WaitPolls >= o.p.cfg.MaxDeliver
	if answered := event == EventRetry || event == EventInDoubt || event == EventAccepted; answered && rec.Seller != "" {
		return spent && rec.Answers >= o.p.cfg.MaxDeliver
	}
	return spent
}

// giveUp ends a request that ran out of deliveries: the order is saved as
// failed (a replay of the dead letter resumes it), a "failed" result and a
// full dead letter are published and acknowledged, and the message is
// terminated.
func (o *order) giveUp(ctx context.Context, event string, why *schemas.ErrorInfo) {
	reason := schemas.ReasonExhausted
	code := schemas.CodeRetriesExhausted
	if event == EventHeld || event == EventActionRequired {
		reason, code = schemas.ReasonActionRequired, schemas.CodeActionRequired
	}
	msg := fmt.Sprintf("gave up after %d deliveries", o.m.Deliveries)
	if why != nil && why.Message != "" {
		msg += ": " + why.Message
	}
	info := &schemas.ErrorInfo{Code: code, Message: msg}
	if why != nil {
		info.ProviderCode = why.ProviderCode
	}

	var res *schemas.Result
	if event != EventError && o.prov != nil {
		if o.rec.Seller == "" { // never claimed (a held seller, an earlier request in doubt): start the record here
			o.rec = schemas.OrderRecord{Seller: o.key.Seller, OrderNo: o.key.OrderNo, Kind: o.req.Kind,
				Fingerprint: o.d.Fingerprint, Provider: o.prov.Name(), ReceivedAt: o.now, Warnings: o.d.Warnings}
			o.requestAt().keepIn(&o.rec)
			stored, found, err := o.p.lookup(ctx, o.key)
			switch {
			case err != nil:
				o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError
				o.out.Err = fmt.Errorf("read order %s to give it up: %w", o.key, err)
				return
			case found && stored.Fingerprint == o.d.Fingerprint:
				o.rec = stored
			case found:
				// The stored record is another request's (rejected, or
				// failed after a submission): it stays as it is, and
				// this request fails without a record of its own.
				o.rec = schemas.OrderRecord{}
			}
		}
		if o.rec.Seller != "" {
			o.rec.State = schemas.StateFailed
			o.rec.LastError = info
			o.rec.RestartCounts() // a replay starts afresh
			o.rec.CompletedAt = o.now
			if !o.save(ctx) {
				return
			}
			res = o.rec.Result()
		} else {
			res = o.unstoredResult(schemas.StatusFailed, info)
		}
	} else {
		if _, listed := o.p.unrecorded.standIn(o.key); listed {
			// The order was submitted without a claim, and only memory
			// says so: terminated, the request would leave the stream,
			// and after a restart nothing would. It waits for the store.
			o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError
			o.out.Err = fmt.Errorf("order %s, submitted without a claim, is kept until the store can record it: %s", o.key, msg)
			return
		}
		// The store is failing: publish what we know without it. When
		// the order's record could not be read, its provider was not
		// chosen yet; the seller's configured one is known all the same
		// (no store read, which could keep the request from ending), and
		// the result names it, as the order's other results do.
		if o.out.Provider == "" {
			o.out.Provider = o.p.providerName(o.key.Seller)
		}
		res = o.unstoredResult(schemas.StatusFailed, info)
	}
	if err := o.p.pub.PublishResult(ctx, res, o.resultID(res.Status)); err != nil {
		o.publishFailed(err)
		return
	}
	o.out.Status = schemas.StatusFailed
	dl := o.deadLetter(reason, *info)
	if err := o.p.pub.PublishDeadLetter(ctx, dl, o.deadLetterID()); err != nil {
		o.publishFailed(err)
		return
	}
	o.out.DeadLetter = reason
	o.out.Action, o.out.Event, o.out.Reason = Term, EventFailed, string(reason)+": "+msg
}

// answerUnstored publishes a result that is not kept in the order store
// (validation rejections, conflicts, unknown sellers: all deterministic, so a
// redelivery answers the same) and acknowledges.
func (o *order) answerUnstored(ctx context.Context, status schemas.Status, e *schemas.ErrorInfo, event string) {
	o.publishResult(o.unstoredResult(status, e), event)
}

func (o *order) unstoredResult(status schemas.Status, e *schemas.ErrorInfo) *schemas.Result {
	orderNo := o.out.OrderNo
	if r := []rune(orderNo); len(r) > 100 {
		orderNo = string(r[:100])
	}
	return &schemas.Result{
		SchemaVersion: schemas.SchemaVersion,
		SellerTaxNum:  o.out.Seller,
		OrderNo:       orderNo,
		Kind:          o.out.Kind,
		Status:        status,
		Provider:      o.out.Provider,
		Attempts:      o.out.Attempts,
		ReceivedAt:    o.now,
		CompletedAt:   o.now,
		Fingerprint:   o.d.Fingerprint,
		Invoices:      []schemas.Invoice{},
		Error:         e,
		Warnings:      o.d.Warnings,
	}
}

// publishResult publishes res and acknowledges the message. The publish is
// asynchronous: the consume loop acknowledges once the stream has
// acknowledged the result (Outcome.Published), so the worker is free for
// the next message meanwhile and the order save → publish → ack holds.
// (An issued result is published before its save ends: see apply.)
func (o *order) publishResult(res *schemas.Result, event string) {
	o.out.Published = o.p.pub.PublishResultAsync(res, o.resultID(res.Status))
	o.out.Action, o.out.Event, o.out.Status = Ack, event, res.Status
}

func (o *order) publishFailed(err error) {
	o.out.Action, o.out.Delay, o.out.Event = Nak, o.p.cfg.retryDelay(o.m.Deliveries, 0), EventError
	o.out.Err = fmt.Errorf("publish: %w", err)
}

// resultID is the Nats-Msg-Id of this message's result with status st:
// one result per request message and status, so a redelivery after a
// crash republishes the same outcome under the same id and the stream
// keeps one copy, while an outcome that changed between deliveries (given
// up as failed, the termination lost, then found issued) is published
// too instead of being dropped as a duplicate of the first.
func (o *order) resultID(st schemas.Status) string {
	return ResultMsgID(o.m.Stream, o.m.StreamSeq, o.m.PublishedAt, st)
}

// ResultMsgID is the Nats-Msg-Id of the result with status st for the
// request at seq in stream, which entered it at publishedAt (the stream's
// timestamp, the same at every delivery): "result:<stream>:<seq>:<status>:<t>",
// t being publishedAt in Unix nanoseconds (left out, with its colon, when
// publishedAt is zero). The time tells apart the requests of a stream
// deleted and created again, which numbers them from 1 again: without it,
// the result of the new stream's request #1 had the id of the old one's,
// and the result stream dropped it as a duplicate within its duplicate
// window while the request was acknowledged.
func ResultMsgID(stream string, seq uint64, publishedAt time.Time, st schemas.Status) string {
	return "result:" + stream + ":" + strconv.FormatUint(seq, 10) + ":" + string(st) + incarnation(publishedAt)
}

// incarnation is the suffix of a result's or a dead letter's message id that
// tells apart two requests of the same stream name and sequence: ":" and the
// request's publication in Unix nanoseconds, or nothing when it is not known.
func incarnation(publishedAt time.Time) string {
	if publishedAt.IsZero() {
		return ""
	}
	return ":" + strconv.FormatInt(publishedAt.UnixNano(), 10)
}

func (o *order) deadLetterID() string { return deadLetterID(o.m) }

// deadLetterID is the Nats-Msg-Id of the dead letter of m:
// "dlq:<stream>:<seq>:<t>", t as in ResultMsgID.
func deadLetterID(m *Message) string {
	return fmt.Sprintf("dlq:%s:%d%s", m.Stream, m.StreamSeq, incarnation(m.PublishedAt))
}

func (o *order) deadLetter(reason schemas.DeadLetterReason, e schemas.ErrorInfo) *schemas.DeadLetter {
	dl := newDeadLetter(o.m, reason, o.out.Seller, e, o.now, o.p.validator.MaxBytes())
	dl.OrderNo = o.key.OrderNo
	if !o.rec.ReceivedAt.IsZero() {
		dl.FirstSeen = o.rec.ReceivedAt
	}
	return dl
}

// malformed dead-letters a message that is not a readable request and
// terminates it: no result can be addressed for it. The cause may quote
// the message itself at any length (a syntax error names the JSON path it
// is in, a member name of half a megabyte written twice as long): the dead
// letter and the termination's reason carry it clipped, as the server
// takes the reason as a message of its own, and a termination past its
// payload limit would fail, the request coming back delivery after
// delivery and never leaving the stream.
func (p *Pipeline) malformed(ctx context.Context, m *Message, seller string, cause error) Outcome {
	out := Outcome{Seller: seller, Event: EventMalformed}
	now := p.cfg.Now()
	why := clip(cause.Error(), maxTextBytes)
	dl := newDeadLetter(m, schemas.ReasonMalformed, seller, schemas.ErrorInfo{Code: schemas.CodeMalformed, Message: why}, now, p.validator.MaxBytes())
	err := p.pub.PublishDeadLetter(ctx, dl, deadLetterID(m))
	if err != nil && (m.Deliveries >= p.cfg.MaxDeliver || errors.Is(err, nats.ErrMaxPayload)) {
		// Too large for the server after all (a max_payload set below the
		// default), or failing delivery after delivery: keep what locates
		// the message and why, without its body and headers.
		dl.Headers, dl.Payload, dl.PayloadTruncated = nil, []byte{}, len(m.Data) > 0
		if err2 := p.pub.PublishDeadLetter(ctx, dl, deadLetterID(m)); err2 == nil {
			err = nil
		}
	}
	if err != nil {
		out.Action, out.Delay, out.Event = Nak, p.cfg.retryDelay(m.Deliveries, 0), EventError
		out.Err = fmt.Errorf("publish dead letter: %w", err)
		return out
	}
	out.Action, out.DeadLetter, out.Reason = Term, schemas.ReasonMalformed, "malformed: "+why
	out.Err = cause
	return out
}

// panicked answers a delivery whose processing panicked (a bug; cause
// holds the stack). Like any error it is put back, until the delivery
// limit (the deliveries that polled a form waiting for the buyer left
// out, as far as the delivery read its record): then the request is given
// up as retries_exhausted with a dead letter, and terminated, so that a
// request that panics every time does not come back for ever. Its order
// stays as the store has it (an order submitted without a claim and known
// only to memory is recorded first, or the request put back while the
// store refuses), and a replay of the dead letter resumes it.
//
// A request that panicked before any final result went out gets a "failed"
// result too, when it was read far enough to name its order; it names the
// order's provider (the delivery's, or the seller's configured one) as the
// order's other results do. One whose final result was already on its way
// (issued, rejected, a conflict, or the failed result of giving it up;
// fingerprint is the request's) gets none: a second result would
// contradict the first. That result stands
// only if it is durable: the request is put back, as before the limit,
// while the result's publication is not acknowledged, or while the order
// store holds this request's order under way at the provider (submitting,
// accepted, action_required), or failed when the result says issued: the
// store would then keep the order short of the invoice the result names
// once the request is gone, and the next delivery asks the provider again
// and records it. A stored record that is final, failed under a result
// that is not issued (order.giveUp's, order.withhold's), or another
// request's (a conflict), and no record at all (a rejection nothing was
// sent for), let it end.
func (p *Pipeline) panicked(ctx context.Context, m *Message, before Outcome, fingerprint string, cause error) (out Outcome) {
	out = Outcome{Seller: before.Seller, OrderNo: before.OrderNo, Kind: before.Kind,
		Action: Nak, Delay: p.cfg.retryDelay(m.Deliveries, 0), Event: EventError, Err: cause}
	// A form waiting for the buyer is past MaxDeliver deliveries (its
	// polls do not count: order.exhausted); as read before the panic, they
	// do not count here either, or its first panic would give it up.
	if m.Deliveries-before.waitPolls < p.cfg.MaxDeliver {
		return out
	}
	// An action_required result is not final: giving up follows it with a
	// failed one, as order.giveUp does.
	answered := before.Published != nil || (before.Status != "" && before.Status != schemas.StatusActionRequired)
	result := "its result"
	if before.Status != "" {
		result = "its " + string(before.Status) + " result"
	}
	defer func() {
		if r := recover(); r != nil {
			out.Action, out.DeadLetter, out.Status, out.Reason = Nak, "", "", ""
			out.Err = fmt.Errorf("%w\nand again while giving the request up: %v", cause, r)
		}
	}()
	if before.Published != nil {
		if err := before.Published(ctx); err != nil {
			out.Err = fmt.Errorf("%w\n%s, on its way, was not acknowledged: %w", cause, result, err)
			return out
		}
	}
	if key := (schemas.OrderKey{Seller: out.Seller, OrderNo: out.OrderNo}); key.Seller != "" && key.OrderNo != "" {
		// An order submitted without a claim whose answer was never saved
		// is known only to memory: terminated, its request would leave the
		// stream, and after a restart nothing would say it was submitted.
		// Its record goes on disk first, as its claim would have, or the
		// request waits for the store (as order.giveUp keeps it).
		if err := p.recordUnrecorded(ctx, key); err != nil {
			out.Err = fmt.Errorf("%w\norder %s, submitted without a claim, is kept until the store can record it: %w", cause, key, err)
			return out
		}
		if answered {
			rec, found, err := p.store.Get(ctx, key)
			if err != nil {
				out.Err = fmt.Errorf("%w\n%s was published; kept until the order store can be read: read order %s: %w", cause, result, key, err)
				return out
			}
			holds := rec.State.Finished() || rec.State == schemas.StateFailed && before.Status != schemas.StatusIssued
			if found && (fingerprint == "" || rec.Fingerprint == fingerprint) && !holds {
				out.Err = fmt.Errorf("%w\n%s was published, but the order store holds order %s as %s: kept until it records the outcome", cause, result, key, rec.State)
				return out
			}
		}
	}
	now := p.cfg.Now()
	msg, _, _ := strings.Cut(cause.Error(), "\n") // the stack is in the log, not in the answer
	info := schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted,
		Message: clip(fmt.Sprintf("gave up after %d deliveries: an internal error, %s", m.Deliveries, msg), maxTextBytes)}
	if answered {
		info.Message = clip(fmt.Sprintf("gave up after %d deliveries: an internal error after %s was published, which stands: %s", m.Deliveries, result, msg), maxTextBytes)
		out.Status = before.Status
	} else if out.Seller != "" && out.OrderNo != "" && out.Kind.Valid() {
		orderNo := out.OrderNo
		if r := []rune(orderNo); len(r) > 100 {
			orderNo = string(r[:100])
		}
		// The result names the order's provider, as its other results do:
		// the one the delivery chose, or, when it panicked before
		// choosing one (reading the order), the seller's configured one.
		provider := before.Provider
		if provider == "" {
			provider = p.providerName(out.Seller)
		}
		// Its attempts are the calls counted before the panic: the
		// record's, and this delivery's, the one that panicked included.
		res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: out.Seller, OrderNo: orderNo,
			Kind: out.Kind, Status: schemas.StatusFailed, Provider: provider, Fingerprint: fingerprint, Attempts: before.Attempts,
			ReceivedAt: now, CompletedAt: now, Invoices: []schemas.Invoice{}, Error: &info}
		if err := p.pub.PublishResult(ctx, res, ResultMsgID(m.Stream, m.StreamSeq, m.PublishedAt, res.Status)); err != nil {
			out.Err = fmt.Errorf("%w\npublish its failed result: %w", cause, err)
			return out
		}
		out.Status = schemas.StatusFailed
	}
	dl := newDeadLetter(m, schemas.ReasonExhausted, out.Seller, info, now, p.validator.MaxBytes())
	dl.OrderNo = out.OrderNo
	if err := p.pub.PublishDeadLetter(ctx, dl, deadLetterID(m)); err != nil {
		out.Err = fmt.Errorf("%w\npublish its dead letter: %w", cause, err)
		return out
	}
	out.Action, out.DeadLetter, out.Event = Term, schemas.ReasonExhausted, EventFailed
	out.Reason = string(schemas.ReasonExhausted) + ": " + info.Message
	return out
}

// providerName names the provider configured for seller, "" when none is.
// It reads no store, so that a request given up because the store fails
// still ends, and a lookup that panics names none rather than keep a
// request that panicked from ending.
func (p *Pipeline) providerName(seller string) (name string) {
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	if prov, ok := p.providers.Provider(seller); ok {
		return prov.Name()
	}
	return ""
}

// recordUnrecorded saves the record of an order submitted without a claim
// whose answer was never saved (Pipeline.lookup's stand-in), so that the
// order store says it was submitted; nothing when the order is not listed,
// or when the store has a record of it already.
func (p *Pipeline) recordUnrecorded(ctx context.Context, key schemas.OrderKey) error {
	if _, listed := p.unrecorded.standIn(key); !listed {
		return nil
	}
	unlock := p.locks.lock(key.String())
	defer unlock()
	rec, listed := p.unrecorded.standIn(key)
	if !listed {
		return nil
	}
	if _, found, err := p.store.Get(ctx, key); err != nil {
		return fmt.Errorf("read order %s: %w", key, err)
	} else if found {
		// A record was saved for the order meanwhile: the store speaks
		// of it, and the stand-in (version 0) could not be written over
		// it; a request that panics every time must still end.
		return nil
	}
	stored, err := p.store.Put(ctx, rec)
	if err != nil {
		return fmt.Errorf("save order %s as %s: %w", key, rec.State, err)
	}
	p.unrecorded.settle(stored)
	return nil
}

// newDeadLetter copies a message into a dead letter; a body above maxBytes
// is cut (its size and hash are kept) so that the dead letter fits the
// server's payload limit.
func newDeadLetter(m *Message, reason schemas.DeadLetterReason, seller string, e schemas.ErrorInfo, now time.Time, maxBytes int) *schemas.DeadLetter {
	sum := sha256.Sum256(m.Data)
	payload := m.Data
	truncated := false
	if len(payload) > maxBytes {
		payload, truncated = payload[:maxBytes], true
	}
	return &schemas.DeadLetter{
		SchemaVersion:           schemas.SchemaVersion,
		Reason:                  reason,
		SellerTaxNum:            schemas.SubjectToken(seller),
		Error:                   e,
		Deliveries:              m.Deliveries,
		OriginalSubject:         m.Subject,
		OriginalStream:          m.Stream,
		OriginalSeq:             m.StreamSeq,
		PublishedAt:             m.PublishedAt,
		OriginalConsumerCreated: m.ConsumerCreated,
		FirstSeen:               m.PublishedAt,
		DeadAt:                  now,
		Headers:                 headersWithin(m.Header, maxHeaderBytes),
		Payload:                 payload,
		PayloadSize:             len(m.Data),
		PayloadTruncated:        truncated,
		PayloadSHA256:           hex.EncodeToString(sum[:]),
	}
}

// invoiceNumbers names invoices as people quote them (Invoice.Number).
func invoiceNumbers(invoices []schemas.Invoice) []string {
	nums := make([]string, len(invoices))
	for i, inv := range invoices {
		nums[i] = inv.Number()
	}
	return nums
}
