package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

// resultFilters returns the filter subjects of the result stream for the
// statuses and sellers given, "*" standing for any; the filters never
// overlap (the server refuses overlapping filters).
func resultFilters(subj schemas.Subjects, statuses []schemas.Status, sellers []string) []string {
	if len(statuses) == 0 {
		statuses = []schemas.Status{"*"}
	}
	if len(sellers) == 0 {
		sellers = []string{"*"}
	}
	var out []string
	for _, st := range statuses {
		for _, s := range sellers {
			f := subj.Result(st, s)
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// sellerToken is a seller as a subject token: normalized like the consumer
// does, then made safe.
func sellerToken(s string) string {
	return schemas.SubjectToken(schemas.NormalizeTaxNumber(s))
}

// sellerTokens are the subject tokens a seller's results and dead letters
// may be filed under: its tax number normalized (where the consumer files
// them), and the lower-case and as-typed spellings, under which it answers
// a request published on that spelling of the subject (a subject_spelling
// rejection, a malformed message's dead letter).
func sellerTokens(s string) []string {
	toks := []string{sellerToken(s)}
	for _, t := range []string{strings.ToLower(toks[0]), schemas.SubjectToken(strings.TrimSpace(s))} {
		if t != "" && !slices.Contains(toks, t) {
			toks = append(toks, t)
		}
	}
	return toks
}

// checkSellerFilter refuses a --seller flag of fs given empty (or blank, or
// with an empty element of a list): a script's unset "$SELLER" would
// otherwise widen the selection to every seller, and a replay or a tail
// of every seller is not what was asked for.
func checkSellerFilter(fs *pflag.FlagSet) error {
	f := fs.Lookup("seller")
	if f == nil || !f.Changed {
		return nil
	}
	values := []string{f.Value.String()}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		values = sv.GetSlice()
	}
	if len(values) == 0 {
		values = []string{""}
	}
	for _, v := range values {
		if strings.TrimSpace(v) == "" {
			return usageError("--seller %q is empty, which would select every seller (an unset variable?): name a seller, or leave --seller out to mean all of them", v)
		}
	}
	return nil
}

// orderedFrom is where an ordered consumer starts: new messages only, the
// whole stream, or a start time.
type orderedFrom struct {
	all   bool
	since time.Duration // > 0: from now - since
}

// config is the ordered consumer's configuration on a stream whose last
// sequence is lastSeq. New messages are those after lastSeq, not the
// server's "new" policy: that one is taken afresh whenever the ordered
// consumer is recreated before it has delivered anything (a reconnection),
// and what was published meanwhile would be skipped.
func (f orderedFrom) config(filters []string, lastSeq uint64) jetstream.OrderedConsumerConfig {
	// A short inactive threshold lets the server remove the consumer soon
	// after the command exits (the ordered consumer recreates it should a
	// long pause outlast it).
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, InactiveThreshold: time.Minute,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lastSeq + 1}
	switch {
	case f.all:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverAllPolicy, 0
	case f.since > 0:
		start := time.Now().Add(-f.since)
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartTimePolicy, 0
		cfg.OptStartTime = &start
	}
	return cfg
}

// follow opens an ordered consumer on stream and returns its message
// iterator and the number of matching messages already waiting; stop the
// iterator when done.
func (s *session) follow(parent context.Context, stream jetstream.Stream, filters []string, from orderedFrom) (jetstream.MessagesContext, uint64, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	c, err := stream.OrderedConsumer(ctx, from.config(filters, stream.CachedInfo().State.LastSeq))
	if err != nil {
		return nil, 0, s.jsError(err, "create an ordered consumer on "+stream.CachedInfo().Config.Name)
	}
	pending := c.CachedInfo().NumPending
	iter, err := c.Messages()
	if err != nil {
		return nil, 0, s.jsError(err, "read "+stream.CachedInfo().Config.Name)
	}
	return iter, pending, nil
}

// finalStatus reports whether a result is an order's last word: every
// status but action_required (a later result follows it).
func finalStatus(st schemas.Status) bool { return st != schemas.StatusActionRequired }

// request is a request waited for: its order and its fingerprint. Two
// records of the same body are one request; two bodies for one order (a
// request and its corrected copy) are two, each answered by its own result.
type request struct {
	key schemas.OrderKey
	fp  string
}

// answeredBy reports whether res, a result for r's order, is r's: it has r's
// fingerprint, or has none (the consumer could not read the request it
// answers), which stands for any request of the order.
func (r request) answeredBy(res *schemas.Result) bool {
	return res.Fingerprint == "" || r.fp == "" || res.Fingerprint == r.fp
}

// resultWaiter collects result events from an ordered consumer opened before
// the requests were published, so that none is missed.
type resultWaiter struct {
	s    *session
	iter jetstream.MessagesContext
	// final is the first final result of each order; answers is the first
	// of each request, under the result's fingerprint (empty: a result
	// without one).
	final   map[schemas.OrderKey]*schemas.Result
	answers map[request]*schemas.Result
	// held is the last action_required result of an order without a
	// final one: it waits for a person, not for the consumer.
	held map[schemas.OrderKey]*schemas.Result
	// show is called once for each result of an order being waited for
	// (action_required ones too).
	show func(res *schemas.Result, stored time.Time)
	// fingerprints are those of the requests looked up for each order
	// (expect): the status service's result for the order stands for one
	// of them only if it has one of their fingerprints. An order without
	// any takes whatever result the service has.
	fingerprints map[schemas.OrderKey][]string
}

// expect notes that the request for k looked up has fingerprint fp.
func (w *resultWaiter) expect(k schemas.OrderKey, fp string) {
	if fp == "" {
		return
	}
	if w.fingerprints == nil {
		w.fingerprints = map[schemas.OrderKey][]string{}
	}
	if !slices.Contains(w.fingerprints[k], fp) {
		w.fingerprints[k] = append(w.fingerprints[k], fp)
	}
}

// newResultWaiter follows new results of the sellers.
func (s *session) newResultWaiter(ctx context.Context, sellers []string, show func(*schemas.Result, time.Time)) (*resultWaiter, error) {
	stream, err := s.stream(ctx, s.subjects.ResultFilter(), "results")
	if err != nil {
		return nil, err
	}
	toks := make([]string, 0, len(sellers))
	for _, seller := range sellers {
		if t := sellerToken(seller); !slices.Contains(toks, t) {
			toks = append(toks, t)
		}
	}
	if len(toks) > 64 {
		toks = nil // one filter for all rather than hundreds
	}
	iter, _, err := s.follow(ctx, stream, resultFilters(s.subjects, nil, toks), orderedFrom{})
	if err != nil {
		return nil, err
	}
	return &resultWaiter{s: s, iter: iter, final: map[schemas.OrderKey]*schemas.Result{}, answers: map[request]*schemas.Result{},
		held: map[schemas.OrderKey]*schemas.Result{}, show: show}, nil
}

// keep records res, a final result for order k, unless one came before for
// the order or for the same request.
func (w *resultWaiter) keep(k schemas.OrderKey, res *schemas.Result) {
	if _, seen := w.final[k]; !seen {
		w.final[k] = res
	}
	if r := (request{key: k, fp: res.Fingerprint}); w.answers[r] == nil {
		w.answers[r] = res
	}
}

// answer returns r's final result, nil if none came: the one with r's
// fingerprint, else one without a fingerprint for r's order.
func (w *resultWaiter) answer(r request) *schemas.Result {
	if res := w.answers[r]; res != nil {
		return res
	}
	return w.answers[request{key: r.key}]
}

// Stop stops following.
func (w *resultWaiter) Stop() { w.iter.Stop() }

// lookup asks the status service for the final results of orders whose
// requests were duplicates: their result events were published before the
// waiter started. Orders it cannot answer for are waited for as usual.
func (w *resultWaiter) lookup(ctx context.Context, keys []schemas.OrderKey) {
	for _, k := range keys {
		if _, ok := w.final[k]; ok {
			continue
		}
		rctx, cancel := w.s.ctx(ctx)
		reply, err := pipeline.RequestStatus(rctx, w.s.nc, w.s.subjects, pipeline.StatusRequest{Seller: k.Seller, OrderNo: k.OrderNo})
		cancel()
		if err != nil {
			if errors.Is(err, pipeline.ErrStatusTimeout) {
				return // no status service: do not ask again for every order
			}
			continue
		}
		fps := w.fingerprints[k]
		switch {
		case !reply.Found || reply.Result == nil:
		case reply.Result.Fingerprint != "" && len(fps) > 0 && !slices.Contains(fps, reply.Result.Fingerprint):
			// The order's result stands for another request (an earlier
			// body, since corrected): not the answer of this one.
		case finalStatus(reply.Result.Status):
			w.keep(k, reply.Result)
		default:
			w.held[k] = reply.Result
		}
	}
}

// waitingForAPerson returns the action_required result of an order without
// a final result, nil if it has none.
func (w *resultWaiter) waitingForAPerson(k schemas.OrderKey) *schemas.Result {
	if _, ok := w.final[k]; ok {
		return nil
	}
	if res := w.held[k]; res != nil && res.Status == schemas.StatusActionRequired {
		return res
	}
	return nil
}

// heldFor is waitingForAPerson for request r: the action_required result of
// its order, if it is r's and r has no final result.
func (w *resultWaiter) heldFor(r request) *schemas.Result {
	if w.answer(r) != nil {
		return nil
	}
	if res := w.held[r.key]; res != nil && res.Status == schemas.StatusActionRequired && r.answeredBy(res) {
		return res
	}
	return nil
}

// heldLine says that order k waits for a person, with its error.
func heldLine(k schemas.OrderKey, res *schemas.Result) string {
	line := fmt.Sprintf("%s: action_required (waiting for a person)", k)
	if res.Error != nil {
		line += ": " + errorText(res.Error)
	}
	return line
}

// wait reads results until every request has a final one or ctx ends,
// showing the results of the requests as they arrive, each once, and
// returns the requests left without a final result. A result answers the
// request of its order with its fingerprint: two requests for one order
// published in the same run each wait for their own.
func (w *resultWaiter) wait(ctx context.Context, reqs []request) []request {
	pending := map[request]bool{}
	byOrder := map[schemas.OrderKey][]request{}
	shown := map[*schemas.Result]bool{}
	for _, r := range reqs {
		if res := w.answer(r); res != nil {
			if !shown[res] {
				shown[res] = true
				w.show(res, res.CompletedAt)
			}
			continue
		}
		if !pending[r] {
			pending[r] = true
			byOrder[r.key] = append(byOrder[r.key], r)
		}
	}
	for len(pending) > 0 && ctx.Err() == nil {
		m, err := w.iter.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			continue // a context error ends the loop; others are retried
		}
		var res schemas.Result
		if json.Unmarshal(m.Data(), &res) != nil {
			continue
		}
		var stored time.Time
		if meta, err := m.Metadata(); err == nil {
			stored = meta.Timestamp
		}
		k := schemas.OrderKey{Seller: res.SellerTaxNum, OrderNo: res.OrderNo}
		final := finalStatus(res.Status)
		if final {
			w.keep(k, &res)
		} else {
			w.held[k] = &res
		}
		answered := false
		for _, r := range byOrder[k] {
			if pending[r] && r.answeredBy(&res) {
				answered = true
				if final {
					delete(pending, r)
				}
			}
		}
		if answered {
			w.show(&res, stored)
		}
	}
	var missing []request
	for _, r := range reqs {
		if pending[r] {
			missing = append(missing, r)
			delete(pending, r) // once
		}
	}
	return missing
}
