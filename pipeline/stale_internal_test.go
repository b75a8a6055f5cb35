package pipeline

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// requestAt.before orders two requests by their stream sequences when they
// were delivered through the same durable (the same stream, never one
// deleted and created again), whatever their timestamps say, and never
// puts a request before itself; by their timestamps otherwise, strictly,
// the same instant ordered by the sequences of a stream of the same name.
// What is not known orders nothing.
func TestRequestAtBefore(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	durable := t0.Add(-time.Hour)          // when the durable was created
	recreated := t0.Add(-30 * time.Minute) // the durable of the stream created again
	const stream = DefaultRequestStream
	at := func(seq uint64, created time.Time, published time.Time) requestAt {
		return requestAt{stream: stream, seq: seq, consumerCreated: created, publishedAt: published}
	}
	for _, tc := range []struct {
		name string
		a, b requestAt
		want bool
	}{
		{"same durable, earlier in the stream", at(3, durable, t0), at(4, durable, t0.Add(time.Second)), true},
		{"same durable, earlier in the stream, stamped later by a leader whose clock was ahead", at(3, durable, t0.Add(time.Second)), at(4, durable, t0), true},
		{"same durable, later in the stream, stamped earlier", at(4, durable, t0), at(3, durable, t0.Add(time.Second)), false},
		{"same durable, the same message", at(4, durable, t0), at(4, durable, t0), false},
		{"same durable, the same sequence stamped apart", at(4, durable, t0), at(4, durable, t0.Add(time.Second)), false},
		{"same durable, the same instant, earlier in the stream", at(3, durable, t0), at(4, durable, t0), true},
		{"same durable, the same instant, later in the stream", at(4, durable, t0), at(3, durable, t0), false},
		{"stream created again: lower sequence, later", at(1, recreated, t0.Add(time.Minute)), at(4, durable, t0), false},
		{"stream created again: lower sequence, earlier", at(1, recreated, t0.Add(-time.Minute)), at(4, durable, t0), true},
		{"stream created again: the same instant, lower sequence", at(1, recreated, t0), at(4, durable, t0), true},
		{"stream created again: the same instant, higher sequence", at(5, recreated, t0), at(4, durable, t0), false},
		{"another stream: the same instant", requestAt{stream: "OTHER", seq: 1, consumerCreated: durable, publishedAt: t0}, at(4, durable, t0), false},
		{"durable not known: lower sequence, later", at(1, time.Time{}, t0.Add(time.Second)), at(4, durable, t0), false},
		{"durable not known: higher sequence, earlier", at(5, time.Time{}, t0), at(4, time.Time{}, t0.Add(time.Second)), true},
		{"a replay: its request's first publication only, earlier", requestAt{publishedAt: t0}, at(4, durable, t0.Add(time.Second)), true},
		{"a replay: its request's first publication only, the same instant", requestAt{publishedAt: t0}, at(4, durable, t0), false},
		{"a replay that did not say", requestAt{}, at(4, durable, t0), false},
		{"a record that does not know", at(3, durable, t0), requestAt{}, false},
		{"a record that knows only when", at(3, durable, t0), requestAt{publishedAt: t0.Add(time.Second)}, true},
		{"a record that knows only when: the same instant", at(3, durable, t0), requestAt{publishedAt: t0}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.before(tc.b); got != tc.want {
				t.Fatalf("%s before %s = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// A record written before the stream sequence was kept reads without it:
// the record of a build that kept only requestPublishedAt is judged by its
// timestamp, and one of a build before that by nothing.
func TestRecordedAtOfEarlierBuilds(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	copyAt := requestAt{stream: DefaultRequestStream, seq: 3, consumerCreated: t0.Add(-time.Hour), publishedAt: t0}
	for _, tc := range []struct {
		name, record string
		want         bool
	}{
		{"requestPublishedAt only, later", `{"seller":"S","orderNo":"O","state":"rejected","fingerprint":"f","requestPublishedAt":"2026-12-07T10:00:01Z","version":2}`, true},
		{"requestPublishedAt only, earlier", `{"seller":"S","orderNo":"O","state":"rejected","fingerprint":"f","requestPublishedAt":"2026-12-07T09:59:59Z","version":2}`, false},
		{"requestPublishedAt only, the same instant", `{"seller":"S","orderNo":"O","state":"rejected","fingerprint":"f","requestPublishedAt":"2026-12-07T10:00:00Z","version":2}`, false},
		{"none", `{"seller":"S","orderNo":"O","state":"rejected","fingerprint":"f","version":2}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec schemas.OrderRecord
			if err := json.Unmarshal([]byte(tc.record), &rec); err != nil {
				t.Fatal(err)
			}
			at := recordedAt(&rec)
			if at.stream != "" || at.seq != 0 || !at.consumerCreated.IsZero() {
				t.Fatalf("an earlier build's record reads as %s in the stream", at)
			}
			if got := copyAt.before(at); got != tc.want {
				t.Fatalf("a copy %s before the record's request %s = %v, want %v", copyAt, at, got, tc.want)
			}
		})
	}
}

// A replay's HeaderReplayPosition is taken only as the place of a request
// the replay could have republished: one value of three readable fields, a
// durable created before the replay's publication, and, in the replay's
// own stream, a sequence below the replay's. Anything else (a
// forged or garbled value) says nothing, and the replay is judged by
// when its request was published, as before the position was carried.
func TestReplayPosition(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	durable := t0.Add(-time.Hour)
	const stream = DefaultRequestStream
	replay := func(vs ...string) *Message {
		m := &Message{Stream: stream, StreamSeq: 40, PublishedAt: t0, ConsumerCreated: durable, Header: map[string][]string{HeaderReplayOf: {"7"}}}
		if len(vs) > 0 {
			m.Header[HeaderReplayPosition] = vs
		}
		return m
	}
	pos := func(seq uint64, created time.Time) string { return formatReplayPosition(stream, seq, created) }
	for _, tc := range []struct {
		name string
		m    *Message
		want requestAt
	}{
		{"through the replay's durable, earlier", replay(pos(12, durable)), requestAt{stream: stream, seq: 12, consumerCreated: durable}},
		{"through a durable created again since", replay(pos(12, durable.Add(-time.Hour))), requestAt{stream: stream, seq: 12, consumerCreated: durable.Add(-time.Hour)}},
		{"through a durable created again since, not earlier", replay(pos(80, durable.Add(-time.Hour))), requestAt{}},
		{"another stream", replay(formatReplayPosition("OTHER", 12, durable)), requestAt{}},
		{"through the replay's durable, not earlier", replay(pos(40, durable)), requestAt{}},
		{"a durable created after the replay", replay(pos(12, t0.Add(time.Second))), requestAt{}},
		{"none", replay(), requestAt{}},
		{"two", replay(pos(12, durable), pos(13, durable)), requestAt{}},
		{"no durable", replay(stream + " 12"), requestAt{}},
		{"sequence 0", replay(pos(0, durable)), requestAt{}},
		{"not a number", replay(stream + " x " + durable.Format(time.RFC3339Nano)), requestAt{}},
		{"not a time", replay(stream + " 12 yesterday"), requestAt{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := replayPosition(tc.m)
			if got.stream != tc.want.stream || got.seq != tc.want.seq || !got.consumerCreated.Equal(tc.want.consumerCreated) || !got.publishedAt.IsZero() {
				t.Fatalf("replayPosition = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// ReplayPosition says where a dead letter's request was in the request
// stream: its original stream and sequence with the durable's creation
// from its header; for the dead letter of a replay, what the replay
// carried; nothing when a part is not known.
func TestReplayPositionOfADeadLetter(t *testing.T) {
	created := time.Date(2026, 12, 7, 9, 0, 0, 5, time.UTC)
	h := map[string][]string{HeaderOriginalConsumerCreated: {created.Format(time.RFC3339Nano)}}
	const carried = "INVOICE_REQUESTS 3 2026-12-07T08:00:00Z"
	for _, tc := range []struct {
		name string
		dl   schemas.DeadLetter
		h    map[string][]string
		want string
	}{
		{"a request", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 9}, h, "INVOICE_REQUESTS 9 2026-12-07T09:00:00.000000005Z"},
		{"a request, the durable not known", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 9}, nil, ""},
		{"a replay", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 40,
			Headers: map[string][]string{HeaderReplayOf: {"2"}, HeaderReplayPosition: {carried}}}, h, carried},
		{"a replay that carried none", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 40,
			Headers: map[string][]string{HeaderReplayOf: {"2"}}}, h, ""},
		{"a replay that carried garbage", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 40,
			Headers: map[string][]string{HeaderReplayOf: {"2"}, HeaderReplayPosition: {"INVOICE_REQUESTS 3"}}}, h, ""},
		{"a replay that carried its own durable, not earlier", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 40,
			Headers: map[string][]string{HeaderReplayOf: {"2"}, HeaderReplayPosition: {"INVOICE_REQUESTS 40 2026-12-07T09:00:00.000000005Z"}}}, h, ""},
		{"a replay that carried a durable created after it", schemas.DeadLetter{OriginalStream: DefaultRequestStream, OriginalSeq: 40,
			PublishedAt: created.Add(time.Hour),
			Headers:     map[string][]string{HeaderReplayOf: {"2"}, HeaderReplayPosition: {"INVOICE_REQUESTS 3 2026-12-07T10:00:01Z"}}}, h, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplayPosition(&tc.dl, tc.h); got != tc.want {
				t.Fatalf("ReplayPosition = %q, want %q", got, tc.want)
			}
		})
	}
}

// ReplayPublished says when a dead letter's request first entered the
// request stream: its PublishedAt; for the dead letter of a replay, whose
// PublishedAt is the replay's, the time the replay carried, unless that is
// later than the replay's publication, which no request the replay
// republished can be (a header forged by whoever published the "replay":
// any request publisher may set it). Nothing when not known.
func TestReplayPublishedOfADeadLetter(t *testing.T) {
	replayedAt := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	carrying := func(vs ...string) schemas.DeadLetter {
		h := map[string][]string{HeaderReplayOf: {"2"}}
		if len(vs) > 0 {
			h[HeaderReplayPublished] = vs
		}
		return schemas.DeadLetter{PublishedAt: replayedAt, Headers: h}
	}
	for _, tc := range []struct {
		name string
		dl   schemas.DeadLetter
		want string
	}{
		{"a request", schemas.DeadLetter{PublishedAt: replayedAt}, "2026-12-07T10:00:00Z"},
		{"a request, its publication not known", schemas.DeadLetter{}, ""},
		{"a replay, earlier", carrying("2026-12-07T09:00:00.5+08:00"), "2026-12-07T01:00:00.5Z"},
		{"a replay, the same instant", carrying("2026-12-07T10:00:00Z"), "2026-12-07T10:00:00Z"},
		{"a replay, later than itself", carrying("2026-12-07T10:00:00.000000001Z"), ""},
		{"a replay that carried none", carrying(), ""},
		{"a replay that carried garbage", carrying("yesterday"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ReplayPublished(&tc.dl); got != tc.want {
				t.Fatalf("ReplayPublished = %q, want %q", got, tc.want)
			}
		})
	}
}

// A replay's position never makes its request look newer than the replay's
// own publication, whatever the header says (anyone allowed to publish
// requests can set it). Here the later request Y of an order was delivered
// by the durable before the one that delivers the replay (created again
// since, over the same stream: its sequences go on), and published after
// the replay: the replay of an older request is a stale copy next to it,
// as the replay itself is. A position naming Y's durable with a sequence
// past the replay's own (no request the replay republished, which came
// before it in its stream, can have one) ordered the replay after Y by
// sequence, and its older request was submitted over Y.
func TestAForgedReplayPositionNeverMakesARequestNewer(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	before := t0.Add(-time.Hour) // the durable that delivered Y, deleted since
	again := t0.Add(-time.Minute)
	const stream = DefaultRequestStream
	rec := &schemas.OrderRecord{State: schemas.StateRejected, Fingerprint: "y",
		RequestStream: stream, RequestStreamSeq: 45, RequestConsumerCreated: before, RequestPublishedAt: t0.Add(time.Second)}
	m := &Message{Stream: stream, StreamSeq: 40, PublishedAt: t0, ConsumerCreated: again,
		Header: map[string][]string{HeaderReplayOf: {"7"}, HeaderReplayPublished: {t0.Add(-time.Minute).Format(time.RFC3339Nano)}}}
	o := &order{m: m}
	if !o.staleCopy(rec) {
		t.Fatal("the replay without a position is not a stale copy of the later request")
	}
	for _, seq := range []uint64{40, 46, 1 << 40} {
		m.Header[HeaderReplayPosition] = []string{formatReplayPosition(stream, seq, before)}
		if !o.staleCopy(rec) {
			t.Errorf("with the position %q (past the replay's own #40): not a stale copy; the replay looks newer than its publication", m.Header[HeaderReplayPosition][0])
		}
	}
	dl := &schemas.DeadLetter{OriginalStream: stream, OriginalSeq: 40, PublishedAt: t0,
		Headers: map[string][]string{HeaderReplayOf: {"7"}, HeaderReplayPosition: {formatReplayPosition(stream, 46, before)}}}
	h := map[string][]string{HeaderOriginalConsumerCreated: {again.Format(time.RFC3339Nano)}}
	if got := ReplayPosition(dl, h); got != "" {
		t.Errorf("the dead letter of such a replay passes %q on to its replay; want nothing", got)
	}
}
