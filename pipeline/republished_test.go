package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// deliverThrough processes raw as its deliveries-th delivery through p, as
// the durable created at created delivers it (zero: a durable not known),
// and waits for its result's acknowledgement.
func deliverThrough(t *testing.T, p *pipeline.Pipeline, raw *jetstream.RawStreamMsg, deliveries int, created time.Time) pipeline.Outcome {
	t.Helper()
	return deliverMsg(t, p, &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: pipeline.DefaultRequestStream,
		StreamSeq: raw.Sequence, Deliveries: deliveries, PublishedAt: raw.Time, ConsumerCreated: created})
}

// An order system sends a request, then a different one for the same order,
// then the first again (under a new message id: it means it). The first
// request's record was rejected; the second is delivered only after the
// first's new publication was answered from the store (it was put back, or
// its acknowledgement lost, and the later message went first). The order
// system's latest request is the first one's republication, so the second
// was superseded by it: it gets a conflict, and nothing is submitted. The
// record keeps the latest publication of its own request, and a redelivery
// of the first publication, older, does not set it back. Before, the
// record kept the first publication only, and the second request started
// the order over and was invoiced over the request the order system sent
// after it.
func TestARequestPublishedBeforeTheRecordsRequestWasPublishedAgainIsStale(t *testing.T) {
	for _, tc := range []struct {
		name    string
		created time.Time // the durable's creation, zero when not known
	}{
		{"one durable: judged by the sequences", time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)},
		{"durable not known: judged by the timestamps", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, harnessOptions{pipeline: fast, sandbox: nuonuoRejects(1)})
			p := firstRun(t, h, fast, h.db, nil, false)
			key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "PUBLISHED-AGAIN"}
			body := issueRequest(t, nuonuoSeller, key.OrderNo, nil)
			first := publishRaw(t, h, nuonuoSeller, body)
			if out := deliverThrough(t, p, first, 1, tc.created); out.Status != schemas.StatusRejected {
				t.Fatalf("the first request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
			}
			other := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }))
			again := publishRaw(t, h, nuonuoSeller, body) // no message id: a new message, as publish --new-id sends it
			if again.Sequence <= other.Sequence {
				t.Fatalf("the first request published again as #%d, the other one #%d: want it later", again.Sequence, other.Sequence)
			}
			if out := deliverThrough(t, p, again, 1, tc.created); out.Event != pipeline.EventReplayed || out.Status != schemas.StatusRejected {
				t.Fatalf("the first request published again: %s %s %s; want its stored result", out.Action, out.Event, out.Status)
			}
			if out := deliverThrough(t, p, first, 2, tc.created); out.Event != pipeline.EventReplayed || out.Status != schemas.StatusRejected {
				t.Fatalf("the first publication delivered again: %s %s %s; want its stored result", out.Action, out.Event, out.Status)
			}
			before := h.orderStats(nuonuoSeller, key.OrderNo)

			out := deliverThrough(t, p, other, 1, tc.created)
			if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Submissions != before.Submissions || st.Issuances != 0 {
				t.Fatalf("sandbox %+v, before %+v: the request published before the first one's republication was submitted (%s %s)",
					st, before, out.Event, out.Status)
			}
			if out.Action != pipeline.Ack || out.Status != schemas.StatusConflict {
				t.Fatalf("the other request: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
			}
			// The first publication's result again has its first result's
			// id, and the result stream dropped it: three results.
			res := h.waitResult(nuonuoSeller, key.OrderNo, 3, 10*time.Second)
			if c := res[2]; c.Error == nil || !strings.Contains(c.Error.Message, "superseded") || c.Fingerprint == res[0].Fingerprint {
				t.Fatalf("the other request's result: %s %+v; want a conflict saying that the republished request superseded it", c.Status, c.Error)
			}
			rec, _, err := h.db.Get(ctx, key)
			if err != nil || rec.RequestStreamSeq != again.Sequence || !rec.RequestPublishedAt.Equal(again.Time) {
				t.Fatalf("stored: request #%d published %s (%v); want the latest publication of its request, #%d at %s",
					rec.RequestStreamSeq, rec.RequestPublishedAt, err, again.Sequence, again.Time)
			}
		})
	}
}

// deadLetterAt reads dead letter #seq as the dead-letter stream holds it:
// the dead letter, and the message with its headers.
func deadLetterAt(t *testing.T, h *harness, seq uint64) (schemas.DeadLetter, *jetstream.RawStreamMsg) {
	t.Helper()
	ctx := context.Background()
	stream, err := h.obs.Stream(ctx, pipeline.DefaultDeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(raw.Data, &dl); err != nil {
		t.Fatal(err)
	}
	return dl, raw
}

// A replayed dead letter is judged against the order's record by where its
// request was in the request stream, as a copy of the request would be:
// the two requests were delivered through the same durable, so their
// stream sequences order them, whatever the stream leaders' clocks
// stamped. Here the leader that stored the first request had its clock a
// minute ahead of the one that stored the second (a leader change in a
// cluster), and one of the two was given up without a record of its own
// (the order store refused its claim) while the other holds the order,
// rejected. The first request's replay gets a conflict, nothing submitted;
// the second request's replay, the later one, is submitted and issued.
// Before, a replay said only when its request was published, and the
// timestamps decided: the first request's replay was invoiced over the
// second, and the second's was refused as superseded by the first.
func TestAReplayIsJudgedByItsRequestsStreamSequence(t *testing.T) {
	const ahead = time.Minute // the first leader's clock against the second's
	created := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		firstLost  bool // the first request given up without a record (else the second)
		want       schemas.Status
		wantIssued int
	}{
		{"the first request's replay", true, schemas.StatusConflict, 0},
		{"the second request's replay", false, schemas.StatusIssued, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fast
			cfg.MaxDeliver = 3
			h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: nuonuoRejects(1)})
			puts := &failingPuts{Store: h.db}
			p := firstRun(t, h, cfg, puts, nil, false)
			key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "SKEWED-REPLAY"}
			deliver := func(raw *jetstream.RawStreamMsg, deliveries int, skew time.Duration) pipeline.Outcome {
				t.Helper()
				return deliverMsg(t, p, &pipeline.Message{Subject: raw.Subject, Data: raw.Data, Header: raw.Header, Stream: pipeline.DefaultRequestStream,
					StreamSeq: raw.Sequence, Deliveries: deliveries, PublishedAt: raw.Time.Add(skew), ConsumerCreated: created})
			}
			giveUp := func(raw *jetstream.RawStreamMsg, skew time.Duration) {
				t.Helper()
				puts.fail.Store(true)
				out := deliver(raw, cfg.MaxDeliver, skew)
				puts.fail.Store(false)
				if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
					t.Fatalf("request #%d's last delivery, its claim refused: %s %s %q; want given up", raw.Sequence, out.Action, out.Event, out.DeadLetter)
				}
			}
			first := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil))
			if tc.firstLost {
				giveUp(first, ahead)
			} else if out := deliver(first, 1, ahead); out.Status != schemas.StatusRejected {
				t.Fatalf("the first request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
			}
			second := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" }))
			if !second.Time.Before(first.Time.Add(ahead)) {
				t.Fatalf("the second request stamped %s, the first %s: want it stamped earlier", second.Time, first.Time.Add(ahead))
			}
			if !tc.firstLost {
				giveUp(second, 0)
			} else if out := deliver(second, 1, 0); out.Status != schemas.StatusRejected {
				t.Fatalf("the second request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
			}
			if _, found, err := h.db.Get(context.Background(), key); !found || err != nil {
				t.Fatalf("the order has no record (%v)", err)
			}
			before := h.orderStats(nuonuoSeller, key.OrderNo)

			dl, dlMsg := deadLetterAt(t, h, 1)
			replay := publishReplayOf(t, h, dl, dlMsg.Header, 1)
			// Replayed later than the skewed stamp, as an SRE's replay
			// minutes after the give-up would be.
			out := deliver(replay, 1, 2*ahead)
			if out.Status != tc.want {
				t.Fatalf("%s: %s %s %s; want %s", tc.name, out.Action, out.Event, out.Status, tc.want)
			}
			if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Issuances != tc.wantIssued || (tc.wantIssued == 0 && st.Submissions != before.Submissions) {
				t.Fatalf("sandbox %+v, before the replay %+v; want %d issued", st, before, tc.wantIssued)
			}
		})
	}
}

// The dead letter of a replayed request whose other headers fill the dead
// letter's 16 KiB of headers keeps what a replay of it needs: the replay's
// mark (HeaderReplayOf) and when and where the request it republished first
// entered the request stream (HeaderReplayPublished, HeaderReplayPosition).
// The rest is cut, the cut said (HeadersCutHeader). Before, the headers were
// kept in the order of their names until the budget ran out, so a large
// Baggage header pushed the replay's out: the dead letter no longer said
// it was a replay's, and its own replay said that the request was published
// when the first replay was, later than it was.
func TestADeadLetterOfAReplayKeepsTheReplaysHeaders(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg})
	puts := &failingPuts{Store: h.db}
	p := firstRun(t, h, cfg, puts, nil, false)
	original := time.Date(2026, 12, 7, 9, 30, 15, 123456789, time.UTC)
	const position = "INVOICE_REQUESTS 17 2026-12-07T08:00:00Z"
	m := &nats.Msg{Subject: schemas.Subjects{}.Request(nuonuoSeller), Data: issueRequest(t, nuonuoSeller, "BIG-HEADERS", nil), Header: nats.Header{}}
	m.Header.Set(pipeline.HeaderReplayOf, "3")
	m.Header.Set(pipeline.HeaderReplayPublished, original.Format(time.RFC3339Nano))
	m.Header.Set(pipeline.HeaderReplayPosition, position)
	// Sorted before them, and within the budget by a few bytes.
	m.Header.Set("Baggage", strings.Repeat("b", 16<<10-len("Baggage")-10))
	m.Header.Set("Traceparent", "00-abc-def-01")
	// The replay comes after its request (#17) in the stream.
	for range 17 {
		h.publish(nuonuoSeller2, []byte("{}"), "")
	}
	requests, err := h.obs.Stream(t.Context(), pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := requests.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	replay := publishRawMsg(t, h, m)
	puts.fail.Store(true)
	out := deliverRaw(t, p, replay, cfg.MaxDeliver)
	puts.fail.Store(false)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("the replay's last delivery, its claim refused: %s %s %q; want given up", out.Action, out.Event, out.DeadLetter)
	}
	dl, dlMsg := deadLetterAt(t, h, 1)
	size := 0
	for k, vs := range dl.Headers {
		if k == pipeline.HeadersCutHeader {
			continue
		}
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if size > 16<<10 || len(dl.Headers[pipeline.HeadersCutHeader]) != 1 {
		t.Errorf("dead letter headers: %d bytes, cut %q; want at most 16 KiB, the cut said", size, dl.Headers[pipeline.HeadersCutHeader])
	}
	for k, want := range map[string]string{pipeline.HeaderReplayOf: "3", pipeline.HeaderReplayPublished: original.Format(time.RFC3339Nano),
		pipeline.HeaderReplayPosition: position} {
		if got := dl.Headers[k]; len(got) != 1 || got[0] != want {
			t.Errorf("dead letter header %s: %q; want %q", k, got, want)
		}
	}
	if got := pipeline.ReplayPublished(&dl); got != original.Format(time.RFC3339Nano) {
		t.Errorf("its replay would say the request was published %s; want %s", got, original.Format(time.RFC3339Nano))
	}
	if got := pipeline.ReplayPosition(&dl, dlMsg.Header); got != position {
		t.Errorf("its replay would say the request was at %q; want %q", got, position)
	}
}
