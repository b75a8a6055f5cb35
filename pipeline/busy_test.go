package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
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
// seller's request is answered while the call is held. The copies are put
// back meanwhile, more often than MaxDeliver, and those put-backs are not
// counted against it: once the call ends, the order stays accepted for a
// few more deliveries (more than MaxDeliver answers), the copies taking
// turns to ask after it, and none is given up as failed meanwhile. Every
// copy is answered with the same issued result, and a corrected request
// for the order gets its conflict. The provider never has two calls for
// the order at once, and issues once.
func TestCopiesOfABusyOrderDoNotStallTheConsumer(t *testing.T) {
	const workers, copies = 4, 8
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, workers: workers, sandbox: sandbox.Config{
		Nuonuo: sandbox.NuonuoConfig{PendingQueries: 2 * (cfg.MaxDeliver + 1)}, // two queries a delivery
	}})
	logs := &logLines{}
	h.log = zerolog.New(logs)
	held := newHeldProvider(h.provs[nuonuoSeller], "BUSY-1")
	h.provs[nuonuoSeller] = held
	h.start()
	t.Cleanup(func() {
		select {
		case <-held.release:
		default:
			close(held.release) // before the loop's stop, which waits for the held call
		}
	})

	req := issueRequest(t, nuonuoSeller, "BUSY-1", nil)
	h.publish(nuonuoSeller, req, "busy-copy-0")
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first copy's provider call was not made within 10s")
	}
	for i := 1; i < copies; i++ {
		h.publish(nuonuoSeller, req, fmt.Sprintf("busy-copy-%d", i))
	}
	corrected := issueRequest(t, nuonuoSeller, "BUSY-1", func(o *schemas.Order) { o.Remark = "corrected" })
	h.publish(nuonuoSeller, corrected, "busy-corrected")
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "OTHER-1", nil), "other-1")

	if r := h.waitResult(jumdataSeller, "OTHER-1", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the other seller's order: %s %+v", r.Status, r.Error)
	}
	// Every copy but the one whose call is held is put back, more often
	// than MaxDeliver, while the call is held.
	h.waitFor("every waiting copy to be put back more than MaxDeliver times", 20*time.Second, func() bool {
		spent := 0
		for _, n := range logs.busyPutBacks(t) {
			if n > cfg.MaxDeliver {
				spent++
			}
		}
		return spent >= copies // the other copies and the corrected request
	})
	if got := h.resultsFor(nuonuoSeller, "BUSY-1"); len(got) != 0 {
		t.Fatalf("results while the order's call is held: %+v", got)
	}

	close(held.release)
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
