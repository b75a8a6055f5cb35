package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// ackLosingPublisher lets the first result of each order reach the stream,
// then reports its acknowledgement lost once after has passed, as a
// connection that broke before the acknowledgement came would.
type ackLosingPublisher struct {
	pipeline.Publisher
	after time.Duration
	mu    sync.Mutex
	lost  map[string]bool
}

func (p *ackLosingPublisher) PublishResultAsync(res *schemas.Result, msgID string) func(context.Context) error {
	wait := p.Publisher.PublishResultAsync(res, msgID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lost[res.OrderNo] {
		return wait
	}
	p.lost[res.OrderNo] = true
	return func(ctx context.Context) error {
		if err := wait(ctx); err != nil {
			return err
		}
		time.Sleep(p.after)
		return fmt.Errorf("acknowledgement of %s lost", msgID)
	}
}

// storedResult is a result as the result stream holds it.
type storedResult struct {
	msgID string
	res   schemas.Result
}

// storedResults returns the results the result stream holds, in order.
func storedResults(t *testing.T, js jetstream.JetStream) []storedResult {
	t.Helper()
	ctx := t.Context()
	s, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedResult
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var res schemas.Result
		if err := json.Unmarshal(m.Data, &res); err != nil {
			t.Fatal(err)
		}
		out = append(out, storedResult{msgID: m.Header.Get(jetstream.MsgIDHeader), res: res})
	}
	return out
}

// TestResultAgainPastTheDuplicateWindow: the result stream drops a result
// published again under its Nats-Msg-Id only within its duplicate window. A
// request whose result went out and which comes back after the window (its
// acknowledgement lost, or its issued save failed and repaired later) gets
// its result again, under the same Nats-Msg-Id, with the same status,
// fingerprint and invoices: what README tells the subscribers. Answered from
// the order store it is the same result; asked again at the provider, its
// completedAt is the new answer's, and its attempts count the calls of the
// delivery whose save failed too: not fewer than the first result's, which
// counted them (before, the repetition counted only the calls up to the
// claim and the new query's).
func TestResultAgainPastTheDuplicateWindow(t *testing.T) {
	const window = time.Second
	cases := []struct {
		name      string
		opts      func(*harnessOptions)
		identical bool
	}{
		{"acknowledgement lost", func(o *harnessOptions) {
			lp := &ackLosingPublisher{after: 3 * window, lost: map[string]bool{}}
			o.wrapPub = func(p pipeline.Publisher) pipeline.Publisher {
				lp.Publisher = p
				return lp
			}
		}, true},
		{"issued save failed", func(o *harnessOptions) {
			fs := &failingStore{beforeFail: func() { time.Sleep(3 * window) }}
			o.wrapDB = func(s pipeline.Store) pipeline.Store {
				fs.Store = s
				return fs
			}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := harnessOptions{pipeline: fast}
			tc.opts(&o)
			h := newHarness(t, o)
			h.topo.Duplicates = window
			if err := h.topo.Ensure(t.Context(), h.obs); err != nil {
				t.Fatal(err)
			}
			h.start()
			h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "WINDOW-1", nil), "")
			// The request is acknowledged once the stream holds its result.
			h.waitFor("request stream to empty", 20*time.Second, h.requestStreamEmpty)
			got := storedResults(t, h.obs)
			if len(got) != 2 {
				t.Fatalf("%d results in the stream, want the first and its repetition past the window", len(got))
			}
			a, b := got[0], got[1]
			if want := pipeline.ResultMsgID(pipeline.DefaultRequestStream, 1, time.Time{}, schemas.StatusIssued) + ":"; a.msgID != b.msgID || !strings.HasPrefix(a.msgID, want) {
				t.Errorf("Nats-Msg-Ids %q and %q, want both %q and the request's publication", a.msgID, b.msgID, want)
			}
			sameInvoices := string(mustJSON(t, a.res.Invoices)) == string(mustJSON(t, b.res.Invoices))
			if a.res.Status != schemas.StatusIssued || b.res.Status != a.res.Status || b.res.Fingerprint != a.res.Fingerprint ||
				len(a.res.Invoices) != 1 || !sameInvoices {
				t.Errorf("the repetition is another result:\n%s\n%s", mustJSON(t, a.res), mustJSON(t, b.res))
			}
			if b.res.Attempts < a.res.Attempts {
				t.Errorf("the repetition counts %d provider calls, the first result %d: a count of the calls made for the order went down", b.res.Attempts, a.res.Attempts)
			}
			if tc.identical && string(mustJSON(t, a.res)) != string(mustJSON(t, b.res)) {
				t.Errorf("results answered from the order store differ:\n%s\n%s", mustJSON(t, a.res), mustJSON(t, b.res))
			}
			if st := h.orderStats(nuonuoSeller, "WINDOW-1"); st.Submissions != 1 || st.Issuances != 1 {
				t.Errorf("sandbox %+v, want one submission and one issuance", st)
			}
		})
	}
}
