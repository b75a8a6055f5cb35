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
