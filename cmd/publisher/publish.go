package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// defaultWindow is how many publishes may await their acknowledgement at
// once.
const defaultWindow = 256

type publishOptions struct {
	cfg    schemas.ValidatorConfig
	dryRun bool
	wait   bool
	quiet  bool
	window int
	// newID gives each request a Nats-Msg-Id of its own (a nonce after
	// the usual id), so that the stream takes it even if the same request
	// was published within its duplicate window.
	newID bool
}

func newPublishCommand(g *globals) *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish FILE... (- for standard input)",
		Short: "Validate invoice requests and publish the valid ones",
		Long: `publish reads requests like validate does (a file holds one JSON request or
newline-delimited requests) and checks each with exactly the validator
validate uses. Records that fail are reported like validate reports them and
are NOT published; the others are published to <prefix>.request.<seller>
with Nats-Msg-Id <seller>:<orderNo>:<the first 16 hex digits of the
request's fingerprint>, and every acknowledgement is awaited.

The same request published again (the same body, however formatted) within
the stream's deduplication window, 10 minutes by default, is dropped by the
stream. publish then looks the first one up in the state of the request
stream, a work queue (its first, last and deleted sequences, read once per
run): if it is still waiting, the record is reported as "duplicate: the
same request is in the stream already", which is not an error; if it was
answered already (the consumer's acknowledgement removed it), the record is
reported "not queued: ... answered already" and counts as a failure, since
nothing will process it. If the look-up fails (a timeout), that duplicate
and the run's later ones are reported "duplicate (whether it is still
waiting could not be checked: REASON)", not errors, without looking up
again. A request given twice in one run is not looked up: the second copy
is "duplicate: the same request was published earlier in this run", not
an error. --new-id publishes it under a message id of its
own (<the usual id>:<a random nonce>), for when the same body must be
processed again, such as after configuring its seller; the consumer answers
a request for an issued order with the stored result, without a provider
call. A corrected request for the same order has another fingerprint and
is published: the consumer then starts a rejected order over with it, and
answers a changed body for an issued order with a conflict result.

It prints one line per record (--quiet: problems only), a summary line
"published N, duplicates N, invalid N, failed N" and, with --wait, each
request's result as it arrives, matched by fingerprint: a request and its
corrected copy published in one run are each answered, and counted, by
their own result. A progress bar is shown on standard error
when it is a terminal and there are many records.

Exit status: 0 all published (or duplicates still waiting in the stream, or
of a request published earlier in the run),
1 some record was invalid or could not be published, or was a duplicate of
a request answered already (with --wait, that one counts by its stored
result instead, when the order's stored result is that body's; and any
request that did not end issued within --timeout),
2 usage error, 3 NATS or the request stream unreachable.`,
		Example: `  publisher publish order.json
  publisher publish --wait --timeout 1m orders.ndjson
  publisher publish --new-id order.json    # the same body again, after configuring its seller
  publisher demo -n 100 --out demo.ndjson && publisher publish demo.ndjson
  cat orders.ndjson | publisher publish --dry-run -
  publisher -s nats://nats.internal:4222 --creds ops.creds publish order.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("publish needs at least one FILE (or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.window < 1 {
				return usageError("--window must be at least 1")
			}
			if err := checkMaxBytes(o.cfg.MaxBytes); err != nil {
				return err
			}
			return runPublish(cmd.Context(), g, o, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.cfg.StrictTaxNumbers, "strict", false, "reject 18-character tax numbers whose check character is wrong (default: warn)")
	f.Var(intflag.NewInt(&o.cfg.MaxBytes, schemas.DefaultMaxBytes), "max-bytes", maxBytesFlagHelp)
	f.StringToStringVar(&o.cfg.Providers, "provider", nil, providerFlagHelp)
	f.BoolVar(&o.dryRun, "dry-run", false, "validate only; publish nothing and do not connect")
	f.BoolVar(&o.wait, "wait", false, "also wait for each request's result event and print it (within --timeout)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only problems and the summary")
	f.Var(intflag.NewInt(&o.window, defaultWindow), "window", "most publishes awaiting their acknowledgement at once")
	f.BoolVar(&o.newID, "new-id", false, "publish under a message id of its own (a nonce added), so that the stream does not drop a request published within its duplicate window, one answered already")
	return cmd
}

// outgoing is one request to publish.
type outgoing struct {
	label       string // where it came from: FILE:RECORD, or the order number
	key         schemas.OrderKey
	data        []byte
	fingerprint string // schemas.Fingerprint of data
	nonce       string // publish --new-id: added to the message id
}

// msgID is the request's Nats-Msg-Id, <seller>:<orderNo>:<the first 16 hex
// digits of its fingerprint>: the stream drops the same request published
// again within its duplicate window, however it is formatted, and lets a
// corrected one (same order, another body) through to the consumer. With a
// nonce (--new-id) it is <that>:<nonce>, which the stream takes.
func (o outgoing) msgID() string {
	id := requestMsgID(o.key, o.fingerprint)
	if o.nonce != "" {
		id += ":" + o.nonce
	}
	return id
}

// request is the request as waited for.
func (o outgoing) request() request { return request{key: o.key, fp: o.fingerprint} }

// newNonce returns 12 random hex digits for a --new-id message id.
func newNonce() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// requestMsgID is the Nats-Msg-Id of a request for key with fingerprint fp.
func requestMsgID(key schemas.OrderKey, fp string) string {
	return key.Seller + ":" + key.OrderNo + ":" + fp[:min(16, len(fp))]
}

// tally counts what happened to the records of a run.
type tally struct {
	published, duplicates, invalid, failed int
	// answered counts the duplicates whose first copy had been answered
	// and removed from the request stream: nothing processes them.
	answered int
}

func (t tally) String() string {
	s := fmt.Sprintf("published %d, duplicates %d, invalid %d, failed %d", t.published, t.duplicates, t.invalid, t.failed)
	if t.answered > 0 {
		s += fmt.Sprintf("; %d duplicate(s) answered already, not queued (publish --new-id to have them processed again)", t.answered)
	}
	return s
}

func runPublish(ctx context.Context, g *globals, o publishOptions, files []string, out, errw io.Writer) error {
	v, err := schemas.NewValidator(o.cfg)
	if err != nil {
		return usageError("%v", err)
	}
	var t tally
	var reqs []outgoing
	warn := &onceWriter{w: errw}
	for _, name := range files {
		recs, err := readRecords(name)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		if len(recs) == 0 {
			fmt.Fprintf(out, "%s: no records\n", displayName(name))
			t.invalid++
		}
		for _, rec := range recs {
			d, ok := checkRecord(v, rec, out, warn)
			if !ok {
				t.invalid++
				continue
			}
			reqs = append(reqs, outgoing{
				label:       fmt.Sprintf("%s:%d", rec.file, rec.n),
				key:         schemas.OrderKey{Seller: d.SellerTaxNum, OrderNo: d.OrderNo},
				data:        rec.data,
				fingerprint: d.Fingerprint,
			})
			if o.newID {
				reqs[len(reqs)-1].nonce = newNonce()
			}
		}
	}
	if warn.repeated > 0 {
		fmt.Fprintf(errw, "(%d repeated warning(s) not shown)\n", warn.repeated)
	}
	if o.dryRun {
		fmt.Fprintf(out, "dry run: %d valid, %d invalid; nothing published\n", len(reqs), t.invalid)
		if t.invalid > 0 {
			return &exitError{code: exitFailed}
		}
		return nil
	}
	if len(reqs) == 0 {
		fmt.Fprintln(out, t)
		if t.invalid > 0 {
			return &exitError{code: exitFailed}
		}
		return nil
	}

	s, err := g.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	reqStream, err := s.stream(ctx, s.subjects.RequestFilter(), "requests")
	if err != nil {
		return err
	}
	var waiter *resultWaiter
	if o.wait {
		sellers := make([]string, len(reqs))
		for i, r := range reqs {
			sellers[i] = r.key.Seller
		}
		if waiter, err = s.newResultWaiter(ctx, sellers, func(res *schemas.Result, at time.Time) {
			fmt.Fprintln(out, resultLine(res, at))
		}); err != nil {
			return err
		}
		defer waiter.Stop()
	}

	bar := newProgress(errw, len(reqs), "publishing")
	showPublished := !o.quiet && !(bar.active() && isTerminal(out))
	copies := s.firstCopies(reqStream)
	var dups, answered, sent []request
	// ids are the message ids this run published: a duplicate of one of
	// them (the same request twice in the input) is no news, even if the
	// consumer answered the first copy meanwhile, and is not looked up.
	ids := map[string]bool{}
	s.publishRequests(ctx, reqs, o.window, func(i int, ack *jetstream.PubAck, err error) {
		r := reqs[i]
		bar.step()
		if err == nil && ack.Duplicate && ids[r.msgID()] {
			t.duplicates++ // its order is waited for as the one sent
			if !o.quiet {
				bar.clear()
				fmt.Fprintf(out, "%s: %s: duplicate: the same request was published earlier in this run (%s #%d)\n", r.label, r.key, ack.Stream, ack.Sequence)
			}
			return
		}
		if err == nil && ack.Duplicate {
			// The stream is a work queue: a duplicate of a request the
			// consumer answered is dropped all the same, and nothing
			// would process it.
			gone, lerr := copies.answered(ctx, ack.Sequence)
			switch {
			case lerr != nil:
				// Not a failure: the stream has the request, or had it.
				// After the first failed look-up there is no other.
				t.duplicates++
				dups = append(dups, r.request())
				bar.clear()
				fmt.Fprintf(out, "%s: %s: duplicate (whether it is still waiting could not be checked: %v): the same request was published as %s #%d within the stream's duplicate window; if it was answered already, publish it with --new-id to have it processed again\n",
					r.label, r.key, lerr, ack.Stream, ack.Sequence)
				return
			case gone:
				t.duplicates++
				t.answered++
				answered = append(answered, r.request())
				bar.clear()
				fmt.Fprintf(out, "%s: %s: not queued: the same request was published as %s #%d within the stream's duplicate window (10 minutes by default) and answered already, so the stream dropped this one; to have it processed again, publish it with --new-id (its answer: publisher status %s %s)\n",
					r.label, r.key, ack.Stream, ack.Sequence, r.key.Seller, r.key.OrderNo)
				return
			}
		}
		switch {
		case err != nil:
			t.failed++
			bar.clear()
			fmt.Fprintf(out, "%s: %s: failed: %v\n", r.label, r.key, err)
		case ack.Duplicate:
			t.duplicates++
			dups = append(dups, r.request())
			if !o.quiet {
				bar.clear()
				fmt.Fprintf(out, "%s: %s: duplicate: the same request is in the stream already (%s #%d)\n", r.label, r.key, ack.Stream, ack.Sequence)
			}
		default:
			t.published++
			ids[r.msgID()] = true
			sent = append(sent, r.request())
			if showPublished {
				fmt.Fprintf(out, "%s: %s: published to %s (%s #%d)\n", r.label, r.key, s.subjects.Request(r.key.Seller), ack.Stream, ack.Sequence)
			}
		}
	})
	bar.finish()
	fmt.Fprintln(out, t)

	failed := t.invalid > 0 || t.failed > 0
	if waiter != nil {
		for _, r := range append(slices.Clone(dups), answered...) {
			waiter.expect(r.key, r.fp)
		}
		if !waitAndCount(ctx, s, waiter, sent, dups, answered, out) {
			failed = true
		}
	} else if t.answered > 0 {
		failed = true
	}
	if failed {
		return &exitError{code: exitFailed}
	}
	return nil
}

// waitAndCount waits up to --timeout for the results of the requests sent
// and of dups, the duplicates still waiting in the request stream (asking
// the status service about them first), prints a count by status and
// reports whether every request ended issued. Each request counts by its
// own result: two for one order (a request and its corrected copy) by
// theirs. The answered duplicates are asked about, not waited for: no
// result of theirs is coming; one the status service has no final result
// for fails, reported as waiting for a person if its stored result is
// action_required.
func waitAndCount(ctx context.Context, s *session, w *resultWaiter, sent, dups, answered []request, out io.Writer) bool {
	wctx, cancel := context.WithTimeout(ctx, s.g.timeout)
	defer cancel()
	looked := make([]schemas.OrderKey, 0, len(dups)+len(answered))
	for _, r := range append(slices.Clone(dups), answered...) {
		looked = append(looked, r.key)
	}
	w.lookup(wctx, looked)
	reqs := append(slices.Clone(sent), dups...)
	var unanswered, answeredHeld []request
	for _, r := range answered {
		switch {
		case slices.Contains(reqs, r): // sent in this run too
		case w.answer(r) != nil:
			reqs = append(reqs, r)
		case w.heldFor(r) != nil:
			if !slices.Contains(answeredHeld, r) {
				answeredHeld = append(answeredHeld, r)
			}
		case !slices.Contains(unanswered, r):
			unanswered = append(unanswered, r)
		}
	}
	waiting := w.wait(wctx, reqs)
	counts := map[schemas.Status]int{}
	ok := len(waiting) == 0 && len(unanswered) == 0
	for _, r := range reqs {
		if res := w.answer(r); res != nil {
			counts[res.Status]++
			if res.Status != schemas.StatusIssued {
				ok = false
			}
		}
	}
	var missing, held []request
	for _, r := range answeredHeld {
		if res := w.answer(r); res != nil { // its final result came meanwhile
			counts[res.Status]++
			ok = ok && res.Status == schemas.StatusIssued
			continue
		}
		counts[schemas.StatusActionRequired]++
		held = append(held, r)
		ok = false
	}
	for _, r := range waiting {
		if w.heldFor(r) != nil {
			counts[schemas.StatusActionRequired]++
			held = append(held, r)
		} else {
			missing = append(missing, r)
		}
	}
	line := "results: " + countLine(counts, schemas.Statuses)
	if len(missing) > 0 {
		line += fmt.Sprintf("; %d without a result within %s", len(missing), s.g.timeout)
	}
	fmt.Fprintln(out, line)
	// One line per order: the advice is the same for each of its requests.
	for _, r := range onePerOrder(held) {
		k := r.key
		fmt.Fprintf(out, "%s (it resumes once fixed: publisher status %s %s)\n", heldLine(k, w.heldFor(r)), k.Seller, k.OrderNo)
	}
	for _, r := range onePerOrder(missing) {
		fmt.Fprintf(out, "%s: no result yet (ask later: publisher status %s %s)\n", r.key, r.key.Seller, r.key.OrderNo)
	}
	for _, r := range onePerOrder(unanswered) {
		fmt.Fprintf(out, "%s: answered already, and the status service has no result for it (publisher tail --all --seller %s); publish it with --new-id to have it processed again\n", r.key, r.key.Seller)
	}
	return ok
}

// onePerOrder returns the first of reqs for each order.
func onePerOrder(reqs []request) []request {
	var out []request
	seen := map[schemas.OrderKey]bool{}
	for _, r := range reqs {
		if !seen[r.key] {
			seen[r.key] = true
			out = append(out, r)
		}
	}
	return out
}

// publishRequests publishes each request to its seller's request subject
// with its Nats-Msg-Id (outgoing.msgID), keeping at most window publishes
// awaiting their acknowledgement, and calls done for each request in order
// with its acknowledgement or error.
func (s *session) publishRequests(ctx context.Context, reqs []outgoing, window int, done func(i int, ack *jetstream.PubAck, err error)) {
	msgs := make([]*nats.Msg, len(reqs))
	for i, r := range reqs {
		msgs[i] = &nats.Msg{Subject: s.subjects.Request(r.key.Seller), Data: r.data, Header: nats.Header{}}
		msgs[i].Header.Set(jetstream.MsgIDHeader, r.msgID())
	}
	s.publishWindow(ctx, msgs, window, done)
}

// publishWindow publishes msgs asynchronously, at most window awaiting
// their acknowledgement, and calls done for each in order. Each
// acknowledgement is awaited at most --timeout.
func (s *session) publishWindow(ctx context.Context, msgs []*nats.Msg, window int, done func(i int, ack *jetstream.PubAck, err error)) {
	type inflight struct {
		i int
		f jetstream.PubAckFuture
	}
	var queue []inflight
	settle := func(p inflight) {
		timer := time.NewTimer(s.g.timeout)
		defer timer.Stop()
		select {
		case ack := <-p.f.Ok():
			done(p.i, ack, nil)
		case err := <-p.f.Err():
			done(p.i, nil, s.pubError(err))
		case <-timer.C:
			done(p.i, nil, s.pubError(jetstream.ErrAsyncPublishTimeout))
		case <-ctx.Done():
			done(p.i, nil, fmt.Errorf("interrupted before the acknowledgement: %w", ctx.Err()))
		}
	}
	for i, m := range msgs {
		if len(queue) >= window {
			settle(queue[0])
			queue = queue[1:]
		}
		if ctx.Err() != nil {
			done(i, nil, fmt.Errorf("interrupted: %w", ctx.Err()))
			continue
		}
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			done(i, nil, s.pubError(err))
			continue
		}
		queue = append(queue, inflight{i, f})
	}
	for _, p := range queue {
		settle(p)
	}
}

// firstCopies tells whether the first copy of a duplicate (the message
// whose sequence the PubAck gives) is still waiting in the request stream, a
// work queue from which the consumer's acknowledgement removes a request
// once answered. It reads the stream's info with its deleted sequences,
// which an order system may read ($JS.API.STREAM.INFO.INVOICE_REQUESTS in
// deploy/accounts.conf), not the message: the right to get a message of the
// stream would let any order system read every seller's waiting requests.
//
// The info is fetched once per run, and again only for a sequence above its
// last one (a request stored after it was fetched). It may be stale, which
// can only make a copy answered since look still waiting: reported as the
// plain duplicate (exit 0), as before the look-up existed. Never the
// reverse: a sequence up to the info's last one that the info does not hold
// was removed, and a removed message does not come back.
//
// A look-up that fails (a timeout, a refusal) is not tried again in the
// run: each would cost --timeout, one duplicate after another.
type firstCopies struct {
	info   func(context.Context) (*jetstream.StreamInfo, error)
	state  *jetstream.StreamState // the last info's, its Deleted sorted
	failed error                  // the first look-up's failure
}

// firstCopies looks up first copies in st, the request stream.
func (s *session) firstCopies(st jetstream.Stream) *firstCopies {
	return &firstCopies{info: func(ctx context.Context) (*jetstream.StreamInfo, error) {
		ictx, cancel := s.ctx(ctx)
		defer cancel()
		info, err := st.Info(ictx, jetstream.WithDeletedDetails(true))
		if err != nil {
			return nil, s.jsError(err, "read the state of the request stream "+st.CachedInfo().Config.Name)
		}
		return info, nil
	}}
}

// answered reports whether message #seq was answered and removed from the
// stream: below its first sequence, in a stream that holds no message, or
// among its deleted sequences (the consumer acknowledges out of order).
func (f *firstCopies) answered(ctx context.Context, seq uint64) (bool, error) {
	if f.failed != nil {
		return false, f.failed
	}
	if f.state == nil || seq > f.state.LastSeq {
		info, err := f.info(ctx)
		if err != nil {
			f.failed = err
			return false, err
		}
		st := info.State
		slices.Sort(st.Deleted)
		f.state = &st
	}
	st := f.state
	if seq > st.LastSeq {
		return false, nil // not stored yet, as far as the server said: waiting
	}
	_, deleted := slices.BinarySearch(st.Deleted, seq)
	return seq < st.FirstSeq || st.Msgs == 0 || deleted, nil
}

// pubError explains a publish failure: one whose acknowledgement did not
// come after the server refused something (a permissions violation) is
// reported as that refusal.
func (s *session) pubError(err error) error {
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrAsyncPublishTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		if rerr := s.refused("publish"); rerr != nil {
			return rerr
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("no stream answered: %w (is the request stream there? the consumer creates it)", err)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("no acknowledgement within %s (it may still have been stored; publishing again is safe: the stream drops duplicates)", s.g.timeout)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, context.Canceled):
		// A synchronous publish (dlq replay) whose acknowledgement did not
		// come: the message may be in the stream all the same.
		return fmt.Errorf("no acknowledgement (%w): it may still have been stored; running the same command again within the stream's duplicate window (10 minutes by default) stores it at most once", err)
	}
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) {
		return fmt.Errorf("the server refused it: %w", refusal{apiErr})
	}
	return err
}

// refusal is an error the server answered a publish with. Its text is the
// server's description and error code, once: the client's own reads "nats:
// nats: API error: code=400 err_code=10054 description=…".
type refusal struct{ err *jetstream.APIError }

func (r refusal) Error() string {
	return fmt.Sprintf("%s (JetStream error %d)", r.err.Description, r.err.ErrorCode)
}

func (r refusal) Unwrap() error { return r.err }

// onceWriter passes on each warning line of checkRecord
// ("FILE:RECORD: warning: TEXT") the first time its TEXT is seen and counts
// the repeats, so that a file of many orders of one seller does not repeat
// the seller's warning for every record.
type onceWriter struct {
	w        io.Writer
	seen     map[string]bool
	repeated int
}

func (o *onceWriter) Write(p []byte) (int, error) {
	_, text, ok := strings.Cut(string(p), ": warning: ")
	if !ok {
		return o.w.Write(p)
	}
	if o.seen[text] {
		o.repeated++
		return len(p), nil
	}
	if o.seen == nil {
		o.seen = map[string]bool{}
	}
	o.seen[text] = true
	return o.w.Write(p)
}
