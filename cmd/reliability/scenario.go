package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// sizes are the scale of a run.
type sizes struct {
	orders   int           // valid orders per scenario
	kills    int           // SIGKILLs in the kill scenario
	restarts int           // NATS server restarts
	sameN    int           // copies of each repeated order
	sameKeys int           // repeated orders
	timeout  time.Duration // per scenario
	// rateLimit and rateBurst are the sandbox's per-seller rate limit in
	// provider-faults: lower in the short suite, whose few orders (and a
	// consumer built with -race) would otherwise seldom pass it, and the
	// scenario fails unless it did (rate_limited injected).
	rateLimit, rateBurst int
}

var (
	shortSizes = sizes{orders: 300, kills: 3, restarts: 1, sameN: 100, sameKeys: 3, timeout: 6 * time.Minute, rateLimit: 20, rateBurst: 5}
	fullSizes  = sizes{orders: 5000, kills: 5, restarts: 2, sameN: 100, sameKeys: 10, timeout: 15 * time.Minute, rateLimit: 60, rateBurst: 20}
)

// ledger is what a scenario published and what each message must get.
type ledger struct {
	mu       sync.Mutex
	valid    map[schemas.OrderKey][]uint64 // copies of each valid order, by stream sequence
	conflict map[schemas.OrderKey][]uint64 // copies with a different body, published after the order was issued
	hostile  map[uint64]hostileMessage
	messages int
}

func newLedger() *ledger {
	return &ledger{valid: map[schemas.OrderKey][]uint64{}, conflict: map[schemas.OrderKey][]uint64{}, hostile: map[uint64]hostileMessage{}}
}

// addValid records one publish of a valid order that the stream holds as
// message seq. Each message is checked once, however many publishes it
// answered: copies published with the same id while the stream holds the
// first (a duplicate's ack carries the kept message's sequence), and this
// publish's own retries, after an attempt whose message was stored but
// whose ack was lost (the NATS server stopped, the timeout): the order's
// only message then, which a check of non-duplicate acks alone would skip.
func (l *ledger) addValid(k schemas.OrderKey, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages++
	if !slices.Contains(l.valid[k], seq) {
		l.valid[k] = append(l.valid[k], seq)
	}
}

// run is one scenario in progress.
type run struct {
	name  string
	w     *world
	l     *ledger
	rng   *rand.Rand
	sizes sizes
	start time.Time
	log   func(format string, args ...any)
	notes []string
}

// publishValid publishes one valid order with <seller>:<orderNo> as its
// Nats-Msg-Id. The publisher adds the body's fingerprint to the id, so that
// a corrected request is not dropped; each order here has one body, so the
// stream drops the same copies either way.
func (r *run) publishValid(ctx context.Context, seller, orderNo string, rng *rand.Rand) error {
	data := validRequest(rng, seller, orderNo, "可靠性测试买方")
	seq, err := r.w.publish(ctx, schemas.Subjects{}.Request(seller), data, seller+":"+orderNo)
	if err != nil {
		return err
	}
	r.l.addValid(schemas.OrderKey{Seller: seller, OrderNo: orderNo}, seq)
	return nil
}

// publishOrders publishes n valid orders spread over the sellers, with
// workers publishers at once, pausing between messages to keep the load
// flowing while faults are injected.
func (r *run) publishOrders(ctx context.Context, prefix string, n, workers int, pause time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), uint64(n)))
		wg.Go(func() {
			for i := range next {
				seller := allSellers[i%len(allSellers)]
				if err := r.publishValid(ctx, seller, fmt.Sprintf("%s-%05d", prefix, i), rng); err != nil {
					errs <- err
					return
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		})
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

// outcome is a scenario's row of the table.
type outcome struct {
	name                                                   string
	requests, issued, duplicates, lost, rejected, dlq, bad int
	seconds                                                float64
	violations                                             []string
}

// settled reports whether every message has its answer and the request
// stream is empty.
func (r *run) settled(ctx context.Context) (bool, error) {
	results, bySeq, dead, _ := r.w.col.snapshot()
	deadBySeq := map[uint64]bool{}
	for _, d := range dead {
		deadBySeq[d.dead.OriginalSeq] = true
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	for k, seqs := range r.l.valid {
		if !hasStatus(results[k], schemas.StatusIssued) {
			return false, nil
		}
		for _, s := range seqs {
			if len(bySeq[s]) == 0 {
				return false, nil
			}
		}
	}
	for _, seqs := range r.l.conflict {
		for _, s := range seqs {
			if len(bySeq[s]) == 0 {
				return false, nil
			}
		}
	}
	for seq := range r.l.hostile {
		if len(bySeq[seq]) == 0 && !deadBySeq[seq] {
			return false, nil
		}
	}
	pending, err := r.w.requestsPending(ctx)
	if err != nil {
		return false, nil // the server may be restarting
	}
	return pending == 0, nil
}

func hasStatus(evs []event, s schemas.Status) bool {
	for _, e := range evs {
		if e.result.Status == s {
			return true
		}
	}
	return false
}

// waitSettled waits until the scenario settles or its time is up.
func (r *run) waitSettled(ctx context.Context) error {
	deadline := time.Now().Add(r.sizes.timeout)
	for {
		ok, err := r.settled(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not settled after %s", r.sizes.timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// check evaluates the invariants and fills the scenario's row.
func (r *run) check(ctx context.Context, settleErr error) outcome {
	o := outcome{name: r.name, seconds: time.Since(r.start).Seconds()}
	violate := func(format string, args ...any) { o.violations = append(o.violations, fmt.Sprintf(format, args...)) }
	if settleErr != nil {
		violate("%v", settleErr)
	}
	results, bySeq, dead, bad := r.w.col.snapshot()
	o.dlq = len(dead)
	o.bad = len(bad)
	for _, b := range bad {
		violate("%.300s", b)
	}
	st, err := r.w.sandboxStats(ctx)
	haveStats := err == nil
	if err != nil {
		violate("sandbox stats unavailable, issuances not checked: %v", err)
	}
	for _, d := range st.Duplicates {
		violate("the sandbox issued %s more than once", d)
	}
	// A fault the scenario configured and the sandbox never injected (its
	// settings lost on the way, a rate it never reached) leaves a plain run
	// that proves nothing of that fault.
	if haveStats && len(r.w.faults) > 0 {
		injected := make([]string, 0, len(r.w.faults))
		for _, kind := range r.w.faults {
			if st.Faults[kind] == 0 {
				violate("the scenario configured %s faults and the sandbox injected none", kind)
			}
			injected = append(injected, fmt.Sprintf("%d %s", st.Faults[kind], kind))
		}
		r.notes = append(r.notes, "injected "+strings.Join(injected, ", "))
	}
	deadBySeq := map[uint64]*schemas.DeadLetter{}
	for _, d := range dead {
		deadBySeq[d.dead.OriginalSeq] = d.dead
	}
	for seq, evs := range bySeq {
		if len(evs) > 1 {
			o.duplicates++
			violate("request #%d got %d results", seq, len(evs))
		}
	}

	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	o.requests = r.l.messages
	keys := make([]schemas.OrderKey, 0, len(r.l.valid))
	for k := range r.l.valid {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		evs := results[k]
		os := st.Sellers[k.Seller][k.OrderNo]
		var issued []event
		for _, e := range evs {
			switch e.result.Status {
			case schemas.StatusIssued:
				issued = append(issued, e)
			case schemas.StatusConflict:
			default:
				violate("%s: a %s result (%s): %s", k, e.result.Status, e.msgID, errText(e.result.Error))
			}
		}
		switch {
		case len(issued) == 0:
			o.lost++
			violate("%s: never issued (sandbox: %+v)", k, os)
		case !haveStats:
		case os.Issuances > 1:
			o.duplicates++
			violate("%s: issued %d times at the sandbox", k, os.Issuances)
		case os.Issuances == 0:
			violate("%s: an issued result, but the sandbox never issued it", k)
		default:
			o.issued++
		}
		for _, e := range issued[min(1, len(issued)):] {
			if !sameInvoices(issued[0].result, e.result) {
				o.duplicates++
				violate("%s: two different issued results", k)
				break
			}
		}
		for _, s := range r.l.valid[k] {
			if len(bySeq[s]) == 0 {
				o.lost++
				violate("%s: request #%d has no result", k, s)
			}
			// A copy with the order's own body must be answered issued: a
			// conflict is only right for the different bodies (conflict
			// below), and the key-wide loop above lets conflicts through.
			for _, e := range bySeq[s] {
				if e.result.Status == schemas.StatusConflict {
					violate("%s: request #%d, the order's own body, got a conflict result: %s", k, s, errText(e.result.Error))
				}
			}
		}
		for _, s := range r.l.conflict[k] {
			got := bySeq[s]
			if len(got) != 1 || got[0].result.Status != schemas.StatusConflict {
				violate("%s: the different body #%d did not get exactly one conflict result: %d results", k, s, len(got))
			}
		}
	}
	for seq, h := range r.l.hostile {
		res := bySeq[seq]
		dl := deadBySeq[seq]
		switch {
		case h.expect == expectMalformed && dl != nil && dl.Reason == schemas.ReasonMalformed && len(res) == 0:
		case h.expect == expectRejected && len(res) == 1 && res[0].result.Status == schemas.StatusRejected && res[0].result.Error != nil && dl == nil:
			o.rejected++
			if e := res[0].result.Error; e.Message == "" || (e.Code == schemas.CodeInvalidRequest && len(e.Violations) == 0) {
				violate("hostile %q: rejected without a clear reason: %+v", h.name, e)
			}
		case h.expect == expectIssued && len(res) == 1 && res[0].result.Status == schemas.StatusIssued:
			o.issued++
		default:
			got := "nothing"
			if dl != nil {
				got = "a " + string(dl.Reason) + " dead letter"
			}
			if len(res) > 0 {
				got = fmt.Sprintf("%d result(s), first %s %s", len(res), res[0].result.Status, errText(res[0].result.Error))
			}
			violate("hostile %q (#%d) expected %s, got %s", h.name, seq, h.expect, got)
		}
		if haveStats {
			hostileAtSandbox(h, seq, st, violate)
		}
	}
	if pending, err := r.w.requestsPending(ctx); err != nil || pending != 0 {
		violate("%d requests still in the stream (%v)", pending, err)
	}
	if err := panicked(r.w.consumer.logText()); err != nil {
		violate("the consumer crashed: %.1500s", err)
	}
	if !r.w.consumer.running() {
		violate("the consumer is not running at the end:\n%s", tail(r.w.consumer.logText(), 2000))
	}
	return o
}

// hostileAtSandbox checks what the sandbox saw of the orders a hostile
// message names. The message at the size limit must have been issued there,
// once: its issued result alone could be the consumer's invention. Any
// other must never have reached a provider, not even as a query, whatever
// its answer: a request rejected or dead-lettered as malformed is refused
// before any call. The corpus's order numbers are its own, so a call
// naming one under any seller is the message's.
func hostileAtSandbox(h hostileMessage, seq uint64, st sandbox.Stats, violate func(string, ...any)) {
	if h.expect == expectIssued {
		if len(h.orderNos) == 0 {
			violate("hostile %q (#%d) names no order: its issuance cannot be checked", h.name, seq)
		}
		for _, no := range h.orderNos {
			if n := st.Sellers[h.seller][no].Issuances; n != 1 {
				violate("hostile %q (#%d): the sandbox issued %s:%s %d times, want once", h.name, seq, h.seller, no, n)
			}
		}
		return
	}
	for _, no := range h.orderNos {
		for seller, orders := range st.Sellers {
			if at, ok := orders[no]; ok && at.Submissions+at.Queries+at.Issuances > 0 {
				violate("hostile %q (#%d), expected %s, reached the provider: the sandbox saw %s:%.40s submitted %d times, queried %d, issued %d",
					h.name, seq, h.expect, seller, no, at.Submissions, at.Queries, at.Issuances)
			}
		}
	}
}

func errText(e *schemas.ErrorInfo) string {
	if e == nil {
		return ""
	}
	return string(e.Code) + " " + e.Field + " " + e.Message
}

func sameInvoices(a, b *schemas.Result) bool {
	if len(a.Invoices) != len(b.Invoices) {
		return false
	}
	for i := range a.Invoices {
		if a.Invoices[i].InvoiceNo != b.Invoices[i].InvoiceNo || a.Invoices[i].DigitalInvoiceNo != b.Invoices[i].DigitalInvoiceNo {
			return false
		}
	}
	return true
}

// scenario is one named experiment.
type scenario struct {
	name string
	what string
	cfg  func(s sizes) worldConfig
	play func(ctx context.Context, r *run) error
	// minOrders is the fewest valid orders (--orders) with which the
	// scenario tests what it says at the run's sizes: it divides the
	// number among its parts or spreads it over its faults.
	minOrders func(s sizes) int
}

func joinNotes(n []string) string { return strings.Join(n, "; ") }
