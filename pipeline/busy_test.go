package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// heldProvider is a provider whose calls for one order wait, once made,
// until the test releases them (or the call's context ends). It counts the
// order's calls in progress at once.
type heldProvider struct {
	providers.Provider
	orderNo string
	entered chan struct{} // receives once per call for the order, as it starts to wait
	release chan struct{} // closed to let the order's calls through

	mu        sync.Mutex
	now, most int
}

func newHeldProvider(p providers.Provider, orderNo string) *heldProvider {
	return &heldProvider{Provider: p, orderNo: orderNo, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (p *heldProvider) Submit(ctx context.Context, c *providers.Call) providers.Outcome {
	return p.held(ctx, c, p.Provider.Submit)
}

func (p *heldProvider) Query(ctx context.Context, c *providers.Call) providers.Outcome {
	return p.held(ctx, c, p.Provider.Query)
}

func (p *heldProvider) held(ctx context.Context, c *providers.Call, f func(context.Context, *providers.Call) providers.Outcome) providers.Outcome {
	if c.Request.OrderNo != p.orderNo {
		return f(ctx, c)
	}
	p.mu.Lock()
	p.now++
	p.most = max(p.most, p.now)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.now--
		p.mu.Unlock()
	}()
	select {
	case p.entered <- struct{}{}:
	default:
	}
	select {
	case <-p.release:
	case <-ctx.Done():
		return providers.Outcome{Class: providers.Unknown, Code: "transport", Message: "held call abandoned"}
	}
	return f(ctx, c)
}

// mostAtOnce is the most calls for the order that were in progress at once.
func (p *heldProvider) mostAtOnce() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.most
}

// logLines collects the loop's log lines, safe for concurrent use.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// busyPutBacks counts, by stream sequence, the log lines of deliveries put
// back because their order was busy.
func (l *logLines) busyPutBacks(t *testing.T) map[uint64]int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[uint64]int{}
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e struct {
			Event     string `json:"event"`
			Action    string `json:"action"`
			StreamSeq uint64 `json:"stream_seq"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.Event == "busy" && e.Action == "nak" {
			counts[e.StreamSeq]++
		}
	}
	return counts
}

// Many copies of one order, published under distinct message ids while the
// provider holds the first copy's call, do not occupy the workers: another
// seller's request is answered while the call is held. The copies wait
// meanwhile without being delivered again (a put-back would count against
// MaxDeliver at the server) for longer than MaxDeliver put-backs took:
// once the call ends, the order stays accepted for a few more deliveries
// (more than MaxDeliver answers), the copies taking turns to ask after it,
// and none is given up as failed meanwhile. Every copy is answered with
// the same issued result, and a corrected request for the order gets its
// conflict. The provider never has two calls for the order at once, and
// issues once.
func TestCopiesOfABusyOrderDoNotStallTheConsumer(t *testing.T) {
	const workers, copies = 4, 8
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, workers: workers, sandbox: sandbox.Config{
		Nuonuo: sandbox.NuonuoConfig{PendingQueries: 2 * (cfg.MaxDeliver + 1)}, // two queries a delivery
	}})
	logs := &logLines{}
	h.log = zerolog.New(logs)
	req, held, release := holdFirstCopy(t, h, "BUSY-1", "busy-copy")
	for i := 1; i < copies; i++ {
		h.publish(nuonuoSeller, req, fmt.Sprintf("busy-copy-%d", i))
	}
	corrected := issueRequest(t, nuonuoSeller, "BUSY-1", func(o *schemas.Order) { o.Remark = "corrected" })
	h.publish(nuonuoSeller, corrected, "busy-corrected")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "OTHER-1", nil), "other-1")

	if r := h.waitResult(jumdataSeller, "OTHER-1", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the other seller's order: %s %+v", r.Status, r.Error)
	}
	// Every copy but the one whose call is held waits, with the
	// corrected request, for longer than MaxDeliver put-backs took,
	// without being delivered again.
	h.waitFor("every copy and the corrected request to wait", 20*time.Second, func() bool {
		return h.loop.InFlight() == copies+1
	})
	time.Sleep(2 * time.Duration(cfg.MaxDeliver) * cfg.RetryBase)
	if n := h.loop.InFlight(); n != copies+1 {
		t.Fatalf("%d requests in flight while the call is held, want %d", n, copies+1)
	}
	if info, err := h.cons.Info(context.Background()); err != nil || info.NumRedelivered != 0 {
		t.Fatalf("consumer while the copies wait: %+v %v; want none delivered again", info, err)
	}
	if n := logs.busyPutBacks(t); len(n) != 0 {
		t.Fatalf("copies put back while they wait: %v", n)
	}
	// A result of a delivery logged so far was published before its log
	// line: once the collectors hold all the streams do, none is missed.
	h.caughtUp(10 * time.Second)
	if got := h.resultsFor(nuonuoSeller, "BUSY-1"); len(got) != 0 {
		t.Fatalf("results while the order's call is held: %+v", got)
	}

	release()
	res := h.waitResult(nuonuoSeller, "BUSY-1", copies+1, 20*time.Second)
	issued, conflicts := 0, 0
	var first []byte // the first issued result
	for _, r := range res {
		switch r.Status {
		case schemas.StatusIssued:
			issued++
			if a := mustJSON(t, r); first == nil {
				first = a
			} else if !bytes.Equal(a, first) {
				t.Errorf("copies answered differently:\n%s\n%s", a, first)
			}
		case schemas.StatusConflict:
			conflicts++
		default:
			t.Errorf("result %s %+v", r.Status, r.Error)
		}
	}
	if issued != copies || conflicts != 1 {
		t.Fatalf("%d issued results and %d conflicts, want %d and 1", issued, conflicts, copies)
	}
	h.waitFor("request stream to empty", 10*time.Second, h.requestStreamEmpty)
	// Every request was acknowledged or terminated, after its result's
	// or dead letter's publish: the collectors then hold all there is.
	h.caughtUp(10 * time.Second)
	if n := len(h.resultsFor(nuonuoSeller, "BUSY-1")); n != copies+1 {
		t.Fatalf("%d results, want %d", n, copies+1)
	}
	if dl := h.deadLetters(); len(dl) != 0 {
		t.Fatalf("dead letters: %+v", dl)
	}
	if st := h.orderStats(nuonuoSeller, "BUSY-1"); st.Submissions != 1 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v, want one submission and one issuance", st)
	}
	if n := held.mostAtOnce(); n != 1 {
		t.Fatalf("%d provider calls for the order at once, want 1", n)
	}
}

// processedLine is one of the loop's "processed" log lines, as far as the
// busy tests read them.
type processedLine struct {
	Event      string `json:"event"`
	Action     string `json:"action"`
	StreamSeq  uint64 `json:"stream_seq"`
	Attempt    int    `json:"attempt"`
	DeadLetter string `json:"dead_letter"`
}

// lines returns the loop's log lines of one request (by stream sequence),
// in order.
func (l *logLines) lines(t *testing.T, seq uint64) []processedLine {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []processedLine
	for _, line := range bytes.Split(l.buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e processedLine
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if e.StreamSeq == seq && e.Event != "" {
			out = append(out, e)
		}
	}
	return out
}

// A copy of a request that waited behind its own order (put back as busy
// while the first copy's provider call lasted, many more times than
// MaxDeliver) is not given up after a restart of the consumer, which
// forgets what the loop counted in memory, at its first real delivery: it
// gets MaxDeliver deliveries that did something, less the one it was in at
// the stop (counted, like every request in flight at a stop), as the first
// copy does. The provider keeps answering that a person must act (the
// seller held), so both copies are given up in the end: the guarantee that
// a request that keeps failing ends stays.
func TestBusyCopyIsNotGivenUpAfterARestart(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 6
	const orderNo = "BUSY-RESTART-1"
	h := newHarness(t, harnessOptions{pipeline: cfg, workers: 4, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		// userTax does not match the token: a person must act.
		{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", Code: "070401", Times: 1000},
	}}}})
	logs := &logLines{}
	h.log = zerolog.New(logs)
	// The first copy at stream sequence 1, its call held; the second at 2.
	req, _, release := holdFirstCopy(t, h, orderNo, "busy-restart")
	h.publish(nuonuoSeller, req, "busy-restart-1")
	const copySeq = 2
	delivered := func() uint64 { // the deliveries of both copies so far
		info, err := h.cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.Delivered.Consumer
	}
	h.waitFor("the copy delivered", 10*time.Second, func() bool { return delivered() >= 2 })
	since := time.Now()
	h.waitFor("the copy to wait behind the first one's call", 20*time.Second, func() bool {
		// Put back whenever it found the order busy (every half to
		// whole RetryBase), it was delivered more than 2×MaxDeliver
		// times by now; kept waiting, it has waited at least as long.
		return delivered() > 2*uint64(cfg.MaxDeliver)+1 || time.Since(since) > 50*cfg.RetryBase
	})
	// The consumer stops (a deploy), and the first copy's call ends as it
	// stops, the provider answering that a person must act.
	h.stopLoop()
	release()
	h.stop()
	before := len(logs.lines(t, copySeq))
	h.start()

	h.waitFor("both copies given up", 30*time.Second, func() bool {
		return len(h.deadLetters()) >= 2
	})
	h.settled(10 * time.Second) // a third dead letter would be collected by now

	real := 0 // the copy's deliveries after the restart
	for _, e := range logs.lines(t, copySeq)[before:] {
		if e.Event != "busy" {
			real++
		}
	}
	if real < cfg.MaxDeliver-1 {
		t.Errorf("the copy was given up at its delivery %d after the restart, having waited behind its order; want at least %d",
			real, cfg.MaxDeliver-1)
		for _, e := range logs.lines(t, copySeq) {
			t.Logf("copy: %+v", e)
		}
	}
	for _, dl := range h.exactDeadLetters(2) {
		if dl.Reason != schemas.ReasonActionRequired {
			t.Errorf("dead letter of %d: %s %+v", dl.OriginalSeq, dl.Reason, dl.Error)
		}
	}
}

// A flood of copies of one order, more than the request consumer lets be
// unacknowledged at once (twice the workers plus Waiting), while the
// provider holds the first copy's call: each copy is delivered once and
// waits for its turn, none is delivered again or given up, and once the
// call ends every copy is answered from the store, one after another, and
// the other orders published behind them are answered. (While the call
// lasts those other orders are not delivered at all: the copies fill the
// consumer's MaxAckPending, and a request waiting, kept or put back,
// keeps its place there. README, "Operations".)
func TestFloodOfCopiesIsAnsweredWithOneDeliveryEach(t *testing.T) {
	const workers, waiting, copies, orderNo = 4, 8, 300, "FLOOD-1"
	h := newHarness(t, harnessOptions{pipeline: fast, workers: workers, waiting: waiting})
	logs := &logLines{}
	h.log = zerolog.New(logs)
	req, _, release := holdFirstCopy(t, h, orderNo, "flood")
	for i := 1; i < copies; i++ {
		h.publish(nuonuoSeller, req, fmt.Sprintf("flood-%d", i))
	}
	others := []schemas.OrderKey{{Seller: jumdataSeller, OrderNo: "FLOOD-OTHER-1"}, {Seller: nuonuoSeller2, OrderNo: "FLOOD-OTHER-2"}, {Seller: nuonuoSeller, OrderNo: "FLOOD-OTHER-3"}}
	for _, k := range others {
		h.publish(k.Seller, issueRequest(t, k.Seller, k.OrderNo, nil), "")
	}
	h.waitFor("the consumer's room for unacknowledged requests to fill", 20*time.Second, func() bool {
		return h.loop.InFlight() == 2*workers+waiting
	})
	release()

	for _, k := range others {
		if r := h.waitResult(k.Seller, k.OrderNo, 1, 60*time.Second)[0]; r.Status != schemas.StatusIssued {
			t.Errorf("%s: %s %+v", k, r.Status, r.Error)
		}
	}
	for _, r := range h.waitResult(nuonuoSeller, orderNo, copies, 60*time.Second) {
		if r.Status != schemas.StatusIssued {
			t.Fatalf("a copy: %s %+v", r.Status, r.Error)
		}
	}
	h.settled(10 * time.Second) // a dead letter would be collected by now
	if dl := h.deadLetters(); len(dl) != 0 {
		t.Fatalf("dead letters: %+v", dl)
	}
	if st := h.orderStats(nuonuoSeller, orderNo); st.Submissions != 1 || st.Issuances != 1 {
		t.Fatalf("sandbox %+v, want one submission and one issuance", st)
	}
	// Each copy after the first is delivered once and answered from the
	// store: never put back.
	for seq := uint64(2); seq <= copies; seq++ {
		lines := logs.lines(t, seq)
		if len(lines) != 1 || lines[0].Event != "replayed" || lines[0].Attempt != 1 {
			t.Fatalf("copy at %d: %+v; want one delivery, answered from the store", seq, lines)
		}
	}
}

// Copies waiting for their order are not stranded when the one told that
// the order was let go does not take it: the loop was paused (the order
// store unable to write) when the first copy's call ended, so the copy told
// was put back unprocessed. The others are answered once the pause ends:
// told by that copy when it comes back and lets go of the order, or by
// their own check that someone still holds it, whichever comes first.
func TestWaitingCopiesAreNotStrandedByAPause(t *testing.T) {
	const copies, orderNo = 4, "BUSY-PAUSE-1"
	var paused atomic.Pointer[error]
	h := newHarness(t, harnessOptions{pipeline: fast, workers: 4, paused: func() error {
		if err := paused.Load(); err != nil {
			return *err
		}
		return nil
	}})
	req, _, release := holdFirstCopy(t, h, orderNo, "pause")
	for i := 1; i < copies; i++ {
		h.publish(nuonuoSeller, req, fmt.Sprintf("pause-%d", i))
	}
	h.waitFor("every copy to wait", 20*time.Second, func() bool { return h.loop.InFlight() == copies })
	disk := errors.New("disk full")
	paused.Store(&disk)
	release()
	h.waitFor("the first copy answered, and the copy told put back", 20*time.Second, func() bool {
		return len(h.resultsFor(nuonuoSeller, orderNo)) == 1 && h.loop.InFlight() == copies-2
	})
	paused.Store(nil)
	for _, r := range h.waitResult(nuonuoSeller, orderNo, copies, 30*time.Second) {
		if r.Status != schemas.StatusIssued {
			t.Fatalf("a copy: %s %+v", r.Status, r.Error)
		}
	}
}

// holdFirstCopy starts h with the Nuonuo seller's provider calls for
// orderNo held, publishes the order's request (message id prefix-0) and
// waits until its provider call is made. release lets the held calls go,
// once however often it is called; it is also the test's cleanup,
// registered to run before the loop's stop, which waits for the held call.
func holdFirstCopy(t *testing.T, h *harness, orderNo, prefix string) (req []byte, held *heldProvider, release func()) {
	t.Helper()
	held = newHeldProvider(h.provs[nuonuoSeller], orderNo)
	h.provs[nuonuoSeller] = held
	release = sync.OnceFunc(func() { close(held.release) })
	t.Cleanup(release)
	h.start()

	req = issueRequest(t, nuonuoSeller, orderNo, nil)
	h.publish(nuonuoSeller, req, prefix+"-0")
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first copy's provider call was not made within 10s")
	}
	return req, held, release
}
