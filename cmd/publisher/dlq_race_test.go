package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// racedKV is the replay bucket as a replay sees it while another replay of
// the same dead letter runs: the other one creates its mark (by other)
// just before this one's.
type racedKV struct {
	jetstream.KeyValue
	other string
}

func (k racedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	var m replayMark
	if err := json.Unmarshal(value, &m); err != nil {
		return 0, err
	}
	m.By = k.other
	theirs, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	if _, err := k.KeyValue.Create(ctx, key, theirs); err != nil {
		return 0, err
	}
	return k.KeyValue.Create(ctx, key, value, opts...)
}

// Two replays of one dead letter at once (two SREs): the request stream
// keeps one request, the first published (the other's publish is a
// duplicate of its Nats-Msg-Id), and either may mark the dead letter
// first. Each says what happened: the one whose request the stream kept
// replayed it, the other found it replayed already. Before, the one whose
// publish was the duplicate said that it had replayed it, blaming "an
// earlier replay [that] was not marked", and the one that had published it
// said that it was skipped.
func TestTwoReplaysAtOnceSayWhatHappened(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("the duplicate publish marks it first", func(t *testing.T) {
		env := MustNATS(t)
		putExhausted(t, env, "RACE-1")
		_, s, stream := dlqSession(t, env)
		e, err := s.getDeadLetter(ctx, stream, 1)
		if err != nil {
			t.Fatal(err)
		}
		// The other replay has published the request, and not marked the
		// dead letter yet.
		theirs := &nats.Msg{Subject: schemas.Subjects{}.Request(nuonuoSeller), Data: e.DL.Payload, Header: nats.Header{}}
		theirs.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay:%s:%d:%d", pipeline.DefaultDeadLetterStream, e.Seq, e.Stored.UnixNano()))
		theirs.Header.Set(pipeline.HeaderReplayOf, "1")
		ack, err := env.js.PublishMsg(ctx, theirs)
		if err != nil {
			t.Fatal(err)
		}
		out, _, code := env.cli(t, "dlq", "replay", "--seq", "1")
		if code != exitOK || !strings.Contains(out, "replayed 0, already replayed 1, not replayable 0, failed 0") ||
			!strings.Contains(out, fmt.Sprintf("skipped: already republished as %s #%d by another replay of it", pipeline.DefaultRequestStream, ack.Sequence)) ||
			strings.Contains(out, "an earlier replay was not marked") {
			t.Errorf("exit %d\n%s", code, out)
		}
		if n := len(env.requests()); n != 1 {
			t.Errorf("the request stream holds %d requests, want 1", n)
		}
		kv, err := s.replayBook(ctx, stream, false)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.getMark(ctx, kv, e.Seq, e.Stored); err != nil || m == nil || m.RequestSeq != ack.Sequence {
			t.Errorf("the dead letter is not marked replayed as request #%d: %+v %v", ack.Sequence, m, err)
		}
	})

	t.Run("the stored publish is marked by the other", func(t *testing.T) {
		env := MustNATS(t)
		putExhausted(t, env, "RACE-2")
		_, s, stream := dlqSession(t, env)
		e, err := s.getDeadLetter(ctx, stream, 1)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.replayBook(ctx, stream, true)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		r := &replayer{s: s, kv: racedKV{KeyValue: kv, other: "sre2@host2"}, dlqName: pipeline.DefaultDeadLetterStream, out: &out, by: "sre1@host1"}
		if err := r.replay(ctx, e); err != nil {
			t.Fatal(err)
		}
		reqs := env.requests()
		if len(reqs) != 1 {
			t.Fatalf("the request stream holds %d requests, want 1", len(reqs))
		}
		want := fmt.Sprintf("replayed to %s as %s #%d (marked replayed by a replay running at the same time, by sre2@host2)",
			schemas.Subjects{}.Request(nuonuoSeller), pipeline.DefaultRequestStream, reqs[0].Sequence)
		if r.t != (replayTally{replayed: 1}) || !strings.Contains(out.String(), want) {
			t.Errorf("%+v, output:\n%s\nwant %q", r.t, out.String(), want)
		}
	})
}
