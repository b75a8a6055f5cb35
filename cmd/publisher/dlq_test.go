package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// dlqEntries lists the dead letters through the CLI's JSON output.
func dlqEntries(t *testing.T, c *consumer, args ...string) []entryJSON {
	t.Helper()
	out, errOut, code := c.cli(t, append([]string{"dlq", "list", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("dlq list: exit %d\n%s%s", code, out, errOut)
	}
	var es []entryJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e entryJSON
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		if err := schemas.CheckDeadLetterJSON(e.DeadLetter); err != nil {
			t.Errorf("dead letter #%d breaks the schema: %v", e.Seq, err)
		}
		es = append(es, e)
	}
	return es
}

func TestDLQ(t *testing.T) {
	t.Parallel()
	cfg := fast
	cfg.MaxDeliver = 3
	c := startConsumer(t, consumerOptions{pipeline: cfg, maxBytes: 2048, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "501", Times: 1000},
	}}}})
	subj := schemas.Subjects{}
	ctx := context.Background()

	// An order the provider keeps refusing with "later", a message that is
	// not JSON and one above the consumer's size limit.
	doomed := issueRequest(t, jumdataSeller, "DOOMED-1")
	if out, _, code := c.cli(t, "publish", writeFile(t, "d.json", doomed)); code != exitOK {
		t.Fatalf("publish: %s", out)
	}
	if _, err := c.js.Publish(ctx, subj.Request(nuonuoSeller), []byte("not json \x01\xff")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.js.Publish(ctx, subj.Request(nuonuoSeller), []byte(`{"pad":"`+strings.Repeat("x", 3000)+`"}`)); err != nil {
		t.Fatal(err)
	}
	failed := c.waitStatus(t, jumdataSeller, "DOOMED-1", schemas.StatusFailed, 20*time.Second)
	if failed.Error == nil || failed.Error.Code != schemas.CodeRetriesExhausted {
		t.Fatalf("failed result %+v", failed)
	}
	waitFor(t, "3 dead letters", 10*time.Second, func() bool { return c.streamState(pipeline.DefaultDeadLetterStream).Msgs == 3 })

	es := dlqEntries(t, c)
	if len(es) != 3 {
		t.Fatalf("%d dead letters listed, want 3", len(es))
	}
	var exhausted, malformed, truncated uint64
	for _, e := range es {
		var dl schemas.DeadLetter
		if err := json.Unmarshal(e.DeadLetter, &dl); err != nil {
			t.Fatal(err)
		}
		switch {
		case dl.Reason == schemas.ReasonExhausted:
			exhausted = e.Seq
		case dl.PayloadTruncated:
			truncated = e.Seq
		default:
			malformed = e.Seq
		}
		if e.Replay != nil {
			t.Errorf("#%d replayed before any replay", e.Seq)
		}
	}
	if exhausted == 0 || malformed == 0 || truncated == 0 {
		t.Fatalf("exhausted #%d, malformed #%d, truncated #%d", exhausted, malformed, truncated)
	}

	t.Run("list", func(t *testing.T) {
		out, errOut, code := c.cli(t, "dlq", "list")
		if code != exitOK || !strings.Contains(errOut, "3 dead letter(s) (INVOICE_DLQ on nats://127.0.0.1:") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") {
			t.Fatalf("want a header and 3 rows:\n%s", out)
		}
		row := func(seq uint64) string {
			for _, l := range lines[1:] {
				if strings.HasPrefix(l, strconv.FormatUint(seq, 10)+" ") {
					return l
				}
			}
			t.Fatalf("no row for #%d:\n%s", seq, out)
			return ""
		}
		for _, want := range []string{"exhausted", jumdataSeller, "DOOMED-1", "  3  ", "retries_exhausted 501: gave up after 3 deliveries"} {
			if !strings.Contains(row(exhausted), want) {
				t.Errorf("row lacks %q: %s", want, row(exhausted))
			}
		}
		if r := row(truncated); !strings.Contains(r, "truncated") || !strings.Contains(r, "malformed") {
			t.Errorf("truncated row: %s", r)
		}
		if n := len(dlqEntries(t, c, "--reason", "exhausted")); n != 1 {
			t.Errorf("--reason exhausted: %d", n)
		}
		if n := len(dlqEntries(t, c, "--seller", nuonuoSeller)); n != 2 {
			t.Errorf("--seller: %d", n)
		}
		if n := len(dlqEntries(t, c, "--reason", "malformed", "--seller", jumdataSeller)); n != 0 {
			t.Errorf("--reason malformed --seller jumdata: %d", n)
		}
		if n := len(dlqEntries(t, c, "--since", "1h")); n != 3 {
			t.Errorf("--since 1h: %d", n)
		}
		if _, _, code := c.cli(t, "dlq", "list", "--reason", "bored"); code != exitUsage {
			t.Errorf("bad reason: exit %d", code)
		}
	})

	t.Run("show", func(t *testing.T) {
		out, _, code := c.cli(t, "dlq", "show", strconv.FormatUint(exhausted, 10))
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{
			"Dead letter INVOICE_DLQ #" + strconv.FormatUint(exhausted, 10) + " on invoice.dlq.exhausted." + jumdataSeller,
			"reason", "exhausted", "deliveries  3", "INVOICE_REQUESTS #1 on invoice.request." + jumdataSeller,
			"code           retries_exhausted", "provider code  501",
			"Nats-Msg-Id: " + jumdataSeller + ":DOOMED-1",
			"Invoice-Dlq-Reason: exhausted",
			"Payload (" + strconv.Itoa(len(doomed)) + " bytes, complete, sha256 ",
			`    "orderNo": "DOOMED-1",`,
			"no (publisher dlq replay --seq " + strconv.FormatUint(exhausted, 10) + ")",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		out, _, code = c.cli(t, "dlq", "show", strconv.FormatUint(malformed, 10))
		if code != exitOK || !strings.Contains(out, `  "not json \x01\xff"`) || !strings.Contains(out, "malformed message: not valid UTF-8 (at byte 10)") {
			t.Errorf("malformed: exit %d\n%s", code, out)
		}
		out, _, code = c.cli(t, "dlq", "show", strconv.FormatUint(truncated, 10))
		if code != exitOK || !strings.Contains(out, "TRUNCATED: 2048 of 3010 bytes kept") || !strings.Contains(out, "not replayable: the payload is truncated") {
			t.Errorf("truncated: exit %d\n%s", code, out)
		}
		if _, errOut, code := c.cli(t, "dlq", "show", "999"); code != exitFailed || !strings.Contains(errOut, "no dead letter #999") {
			t.Errorf("unknown: exit %d %s", code, errOut)
		}
		if _, _, code := c.cli(t, "dlq", "show", "x"); code != exitUsage {
			t.Errorf("bad seq: exit %d", code)
		}
	})

	lastRequest := func() uint64 { return c.streamState(pipeline.DefaultRequestStream).LastSeq }

	t.Run("dry run lists without publishing", func(t *testing.T) {
		before := lastRequest()
		out, _, code := c.cli(t, "dlq", "replay", "--all", "--dry-run")
		if code != exitFailed { // the truncated one is not replayable
			t.Fatalf("exit %d\n%s", code, out)
		}
		if strings.Count(out, ": would replay to ") != 2 || strings.Count(out, "not replayable: the payload was truncated (2048 of 3010 bytes kept)") != 1 ||
			!strings.Contains(out, "would replay 2, already replayed 0, not replayable 1, failed 0") {
			t.Fatalf("output:\n%s", out)
		}
		if after := lastRequest(); after != before {
			t.Fatalf("a dry run published: request stream #%d → #%d", before, after)
		}
		if _, err := c.js.KeyValue(ctx, ReplayBucket); err == nil {
			t.Fatal("a dry run created the replay bucket")
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{}, {"--seq", "1", "--all"}, {"--all", "--reason", "exhausted"}, {"--reason", "later"}, {"--seq", "0"}, {"--seq", "1", "--since", "1h"},
		} {
			if _, _, code := c.cli(t, append([]string{"dlq", "replay"}, args...)...); code != exitUsage {
				t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
			}
		}
	})

	// The provider recovers; the replayed request is issued once.
	c.sb.SetFaults(sandbox.Faults{})
	sub, err := c.nc.SubscribeSync(subj.RequestFilter())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(exhausted, 10)
	before := lastRequest()
	out, _, code := c.cli(t, "dlq", "replay", "--seq", seq)
	if code != exitOK || !strings.Contains(out, "replayed to invoice.request."+jumdataSeller+" as INVOICE_REQUESTS #"+strconv.FormatUint(before+1, 10)) ||
		!strings.Contains(out, "replayed 1, already replayed 0, not replayable 0, failed 0") {
		t.Fatalf("replay: exit %d\n%s", code, out)
	}
	issued := c.waitStatus(t, jumdataSeller, "DOOMED-1", schemas.StatusIssued, 20*time.Second)
	if len(issued.Invoices) != 1 {
		t.Fatalf("issued %+v", issued)
	}
	if st := c.sb.Stats().Sellers[jumdataSeller]["DOOMED-1"]; st.Issuances != 1 {
		t.Fatalf("sandbox: %+v, want exactly one issuance", st)
	}

	t.Run("the replayed request", func(t *testing.T) {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != string(doomed) || m.Subject != subj.Request(jumdataSeller) ||
			!strings.HasPrefix(m.Header.Get(jetstream.MsgIDHeader), "replay:INVOICE_DLQ:"+seq+":") || m.Header.Get(pipeline.HeaderReplayOf) != seq {
			t.Fatalf("replayed %s %v %s", m.Subject, m.Header, m.Data)
		}
		kv, err := c.js.KeyValue(ctx, ReplayBucket)
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		var mark replayMark
		if err := json.Unmarshal(e.Value(), &mark); err != nil || mark.RequestSeq != before+1 || mark.By == "" || time.Since(mark.ReplayedAt) > time.Minute {
			t.Fatalf("mark %s: %v", e.Value(), err)
		}
	})

	t.Run("a second replay does nothing", func(t *testing.T) {
		before := lastRequest()
		out, _, code := c.cli(t, "dlq", "replay", "--seq", seq)
		if code != exitOK || !strings.Contains(out, "skipped: already replayed at ") || !strings.Contains(out, "replayed 0, already replayed 1") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if after := lastRequest(); after != before {
			t.Fatalf("request stream #%d → #%d", before, after)
		}
		es := dlqEntries(t, c, "--reason", "exhausted")
		if len(es) != 1 || es[0].Replay == nil || es[0].Replay.RequestSeq == 0 {
			t.Fatalf("list after the replay: %+v", es)
		}
	})

	t.Run("two replays at once mark it once", func(t *testing.T) {
		before := lastRequest()
		var wg sync.WaitGroup
		outs := make([]string, 2)
		for i := range outs {
			wg.Go(func() {
				outs[i], _, _ = c.cli(t, "dlq", "replay", "--seq", strconv.FormatUint(malformed, 10))
			})
		}
		wg.Wait()
		all := outs[0] + outs[1]
		if strings.Count(all, "replayed 1, already replayed 0") != 1 || strings.Count(all, "replayed 0, already replayed 1") != 1 {
			t.Fatalf("outputs:\n%s\n%s", outs[0], outs[1])
		}
		if after := lastRequest(); after != before+1 {
			t.Fatalf("request stream #%d → #%d, want one new request", before, after)
		}
	})

	t.Run("a truncated dead letter is not replayed", func(t *testing.T) {
		out, _, code := c.cli(t, "dlq", "replay", "--seq", strconv.FormatUint(truncated, 10), "--seq", "999")
		if code != exitFailed || !strings.Contains(out, "not replayable: the payload was truncated") || !strings.Contains(out, "#999: no dead letter #999") ||
			!strings.Contains(out, "replayed 0, already replayed 0, not replayable 1, failed 1") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}

// TestDLQSynthetic replays dead letters written by hand: a request that went
// through a partitioned request stream, one from another prefix, and a
// message on a dead-letter subject that is not a dead letter at all.
func TestDLQSynthetic(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	ctx := context.Background()
	subj := schemas.Subjects{}
	payload := issueRequest(t, nuonuoSeller, "PART-1")
	now := time.Now().UTC()
	put := func(dl schemas.DeadLetter) uint64 {
		t.Helper()
		b, err := json.Marshal(dl)
		if err != nil {
			t.Fatal(err)
		}
		ack, err := env.js.Publish(ctx, subj.DeadLetter(dl.Reason, dl.SellerTaxNum), b)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	base := schemas.DeadLetter{
		SchemaVersion: "1", Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OrderNo: "PART-1",
		Error: schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "gave up after 20 deliveries"}, Deliveries: 20,
		OriginalSubject: subj.Request(nuonuoSeller) + ".3", OriginalStream: "INVOICE_REQUESTS", OriginalSeq: 77,
		PublishedAt: now, FirstSeen: now, DeadAt: now, Payload: payload, PayloadSize: len(payload), PayloadSHA256: "00",
		Headers: map[string][]string{
			"Nats-Msg-Id": {nuonuoSeller + ":PART-1"}, "Nats-Expected-Last-Sequence": {"76"},
			"Traceparent": {"00-abc-def-01"}, pipeline.HeaderReplayOf: {"1"},
		},
	}
	partitioned := put(base)
	other := base
	other.OrderNo, other.OriginalSubject = "OTHER-1", "acme.request."+nuonuoSeller
	otherPrefix := put(other)
	if _, err := env.js.Publish(ctx, subj.DeadLetter(schemas.ReasonMalformed, nuonuoSeller), []byte("\x00garbage")); err != nil {
		t.Fatal(err)
	}
	garbage := otherPrefix + 1

	out, _, code := env.cli(t, "dlq", "replay", "--seller", nuonuoSeller)
	if code != exitFailed {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"#" + strconv.FormatUint(partitioned, 10) + " exhausted " + nuonuoSeller + ":PART-1: replayed to invoice.request." + nuonuoSeller + " as INVOICE_REQUESTS #1",
		"#" + strconv.FormatUint(otherPrefix, 10) + " exhausted " + nuonuoSeller + ":OTHER-1: not replayable: the original subject \"acme.request." + nuonuoSeller + "\" is not a request subject under --prefix invoice",
		"#" + strconv.FormatUint(garbage, 10) + ": not replayable: not a dead letter",
		"replayed 1, already replayed 0, not replayable 2, failed 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	msgs := env.requests()
	if len(msgs) != 1 {
		t.Fatalf("%d requests", len(msgs))
	}
	m := msgs[0]
	seq := strconv.FormatUint(partitioned, 10)
	if m.Subject != subj.Request(nuonuoSeller) || string(m.Data) != string(payload) ||
		!strings.HasPrefix(m.Header.Get("Nats-Msg-Id"), "replay:INVOICE_DLQ:"+seq+":") || m.Header.Get(pipeline.HeaderReplayOf) != seq ||
		m.Header.Get("Traceparent") != "00-abc-def-01" || m.Header.Get("Nats-Expected-Last-Sequence") != "" || len(m.Header.Values(pipeline.HeaderReplayOf)) != 1 {
		t.Fatalf("replayed request %s %v", m.Subject, m.Header)
	}

	out, errOut, code := env.cli(t, "dlq", "show", strconv.FormatUint(garbage, 10))
	if code != exitFailed || !strings.Contains(out, `"\x00garbage"`) || !strings.Contains(errOut, "is not a dead letter") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// --json shows it too, and exits as the text does.
	out, errOut, code = env.cli(t, "dlq", "show", "--json", strconv.FormatUint(garbage, 10))
	var shown entryJSON
	if code != exitFailed || json.Unmarshal([]byte(out), &shown) != nil || shown.Raw != "\x00garbage" || !strings.Contains(errOut, "is not a dead letter") {
		t.Fatalf("--json: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = env.cli(t, "dlq", "list", "--reason", "malformed")
	if code != exitOK || !strings.Contains(out, "not a dead letter") {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

// TestScanStopsAtTheEnd checks that a scan does not visit dead letters
// appended while it runs, as a replayed malformed message is.
func TestScanStopsAtTheEnd(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	ctx := context.Background()
	subject := schemas.Subjects{}.DeadLetter(schemas.ReasonMalformed, nuonuoSeller)
	_, s, stream := threeDeadLetters(t, env, subject)
	var seen []uint64
	err := s.scanDeadLetters(ctx, stream, dlqFilters(s.subjects, "", ""), orderedFrom{all: true}, func(e deadEntry) error {
		seen = append(seen, e.Seq)
		if len(seen) > 10 {
			return errors.New("the scan does not stop")
		}
		_, err := env.js.Publish(ctx, subject, []byte(`{}`)) // comes back as a new dead letter
		return err
	})
	if err != nil || !slices.Equal(seen, []uint64{1, 2, 3}) {
		t.Fatalf("visited %v, %v; want 1, 2, 3", seen, err)
	}
}

// A scan whose read times out while dead letters are left does not end as
// if it had read them all: it fails, naming where it stopped. (Whether the
// reads after the first time out depends on what the client has buffered
// by then: the scan either reads all three or fails; scanEnded's decisions
// are checked directly after.)
func TestDeadLetterScanTimeoutIsNotTheEnd(t *testing.T) {
	env := MustNATS(t)
	ctx := context.Background()
	subject := schemas.Subjects{}.DeadLetter(schemas.ReasonMalformed, nuonuoSeller)
	g, s, stream := threeDeadLetters(t, env, subject)
	var seen []uint64
	err := s.scanDeadLetters(ctx, stream, dlqFilters(s.subjects, "", ""), orderedFrom{all: true}, func(e deadEntry) error {
		seen = append(seen, e.Seq)
		g.timeout = time.Nanosecond // the next read times out
		return nil
	})
	if err == nil && !slices.Equal(seen, []uint64{1, 2, 3}) {
		t.Fatalf("visited %v and ended without an error; want all three, or an error", seen)
	}
	if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("after #%d", seen[len(seen)-1])) {
		t.Fatalf("visited %v, then %v; want an error naming #%d", seen, err, seen[len(seen)-1])
	}

	// Nothing left after the last one read: the end, without an error.
	g.timeout = 5 * time.Second
	if err := s.scanEnded(ctx, stream, dlqFilters(s.subjects, "", ""), 3, 3, time.Time{}); err != nil {
		t.Fatalf("nothing left after #3: %v", err)
	}
	if err := s.scanEnded(ctx, stream, dlqFilters(s.subjects, "", ""), 1, 3, time.Time{}); err == nil || !strings.Contains(err.Error(), "#2") {
		t.Fatalf("#2 and #3 left after #1: %v", err)
	}
	if err := s.scanEnded(ctx, stream, dlqFilters(s.subjects, "", ""), 1, 3, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("only dead letters older than the scan's start left: %v", err)
	}
}

// TestReplayMarkOfAnotherDeadLetter: when the dead-letter stream is
// deleted and created again (the consumer recreates it at its start), its
// sequences start over; the replay mark of the old dead letter #1 is not
// the new #1's, which is replayed (and its mark replaces the old one), and
// not again after that.
func TestReplayMarkOfAnotherDeadLetter(t *testing.T) {
	env := MustNATS(t)
	ctx := context.Background()
	putExhausted(t, env, "OLD-1")
	if out, _, code := env.cli(t, "dlq", "replay", "--seq", "1"); code != exitOK {
		t.Fatalf("first replay: exit %d\n%s", code, out)
	}
	// The dead-letter stream is deleted and recreated, as the consumer does
	// at its next start.
	if err := env.js.DeleteStream(ctx, pipeline.DefaultDeadLetterStream); err != nil {
		t.Fatal(err)
	}
	if err := (pipeline.Topology{}).Ensure(ctx, env.js); err != nil {
		t.Fatal(err)
	}
	putExhausted(t, env, "NEW-1") // #1 again
	out, _, code := env.cli(t, "dlq", "replay", "--seq", "1")
	if !strings.Contains(out, "NEW-1: replayed to") {
		t.Errorf("the new dead letter #1 (NEW-1) was not replayed (exit %d):\n%s", code, out)
	}
	var n int
	for _, m := range env.requests() {
		if strings.Contains(string(m.Data), "NEW-1") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the request stream holds NEW-1 %d times, want 1", n)
	}
	if out, _, _ := env.cli(t, "dlq", "replay", "--seq", "1"); !strings.Contains(out, "skipped: already replayed") {
		t.Errorf("the new #1 replayed a second time:\n%s", out)
	}
}

// putExhausted publishes a dead letter of a Nuonuo request for orderNo that
// was given up, as the consumer writes one.
func putExhausted(t *testing.T, env *natsEnv, orderNo string) {
	t.Helper()
	putExhaustedFor(t, env, nuonuoSeller, orderNo)
}

// putExhaustedFor is putExhausted for any seller.
func putExhaustedFor(t *testing.T, env *natsEnv, seller, orderNo string) {
	t.Helper()
	subj := schemas.Subjects{}
	payload := issueRequest(t, seller, orderNo)
	now := time.Now().UTC()
	b, err := json.Marshal(schemas.DeadLetter{
		SchemaVersion: "1", Reason: schemas.ReasonExhausted, SellerTaxNum: seller, OrderNo: orderNo,
		Error: schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "gave up"}, Deliveries: 20,
		OriginalSubject: subj.Request(seller), OriginalStream: "INVOICE_REQUESTS", OriginalSeq: 1,
		PublishedAt: now, FirstSeen: now, DeadAt: now, Payload: payload, PayloadSize: len(payload), PayloadSHA256: "00",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.js.Publish(context.Background(), subj.DeadLetter(schemas.ReasonExhausted, seller), b); err != nil {
		t.Fatal(err)
	}
}

// cancelAfter is an output that cancels the run after its n-th replayed
// dead letter, as a Ctrl-C at that moment would.
type cancelAfter struct {
	strings.Builder
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), ": replayed to ") {
		if w.n--; w.n == 0 {
			w.cancel()
		}
	}
	return w.Builder.Write(p)
}

// A replay cut short (here interrupted after its first dead letter) fails,
// and still prints what it did before that: the one replayed, marked, and
// the others left for the next run.
func TestReplayCutShortPrintsItsCounts(t *testing.T) {
	env := MustNATS(t)
	for _, orderNo := range []string{"CUT-1", "CUT-2", "CUT-3"} {
		putExhausted(t, env, orderNo)
	}
	g := &globals{server: env.url, prefix: "invoice", timeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &cancelAfter{n: 1, cancel: cancel}
	err := runReplay(ctx, g, replayOptions{all: true}, out)
	if err == nil {
		t.Fatalf("an interrupted replay succeeded:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(lines[len(lines)-1], "replayed 1, already replayed 0, not replayable 0, failed 0 (INVOICE_DLQ on ") {
		t.Fatalf("the last line is not the counts of the run so far (error %v):\n%s", err, out)
	}
	if n := len(env.requests()); n != 1 {
		t.Fatalf("the request stream holds %d requests, want the 1 replayed", n)
	}
	// The next run replays the two left, and skips the one marked.
	again, _, code := env.cli(t, "dlq", "replay", "--all")
	if code != exitOK || !strings.Contains(again, "replayed 2, already replayed 1, not replayable 0, failed 0") {
		t.Fatalf("the run after: exit %d\n%s", code, again)
	}
}

// A --since scan whose first read times out, with dead letters older than
// --since before those within it: it fails, naming the first one within it
// that was left, rather than ending as complete.
func TestDeadLetterScanSinceTimeoutBeforeTheFirstIsNotTheEnd(t *testing.T) {
	env := MustNATS(t)
	ctx := context.Background()
	subject := schemas.Subjects{}.DeadLetter(schemas.ReasonMalformed, nuonuoSeller)
	if _, err := env.js.Publish(ctx, subject, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now() // --since reaches back to here
	time.Sleep(50 * time.Millisecond)
	for range 2 {
		if _, err := env.js.Publish(ctx, subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	_, s, stream := dlqSession(t, env)
	if err := s.scanEnded(ctx, stream, dlqFilters(s.subjects, "", ""), 0, 3, start); err == nil || !strings.Contains(err.Error(), "#2") {
		t.Fatalf("#2 and #3 (within --since) left, none read: %v; want an error naming #2", err)
	}
}

// threeDeadLetters puts three dead letters on subject and returns a
// session on env (its globals, to change the timeout) and the dead-letter
// stream.
func threeDeadLetters(t *testing.T, env *natsEnv, subject string) (*globals, *session, jetstream.Stream) {
	t.Helper()
	ctx := context.Background()
	for range 3 {
		if _, err := env.js.Publish(ctx, subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	return dlqSession(t, env)
}

// dlqSession returns a session on env (its globals, to change the timeout)
// and the dead-letter stream.
func dlqSession(t *testing.T, env *natsEnv) (*globals, *session, jetstream.Stream) {
	t.Helper()
	g := &globals{server: env.url, prefix: "invoice", timeout: 5 * time.Second}
	s, err := g.connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	stream, err := s.dlqStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g, s, stream
}

// TestReplaySameSeqTwice: a dead letter named twice (--seq 1 --seq 1, or
// --seq 1,1) is one dead letter, replayed and counted once.
func TestReplaySameSeqTwice(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	putExhausted(t, env, "TWICE-1")
	out, errOut, code := env.cli(t, "dlq", "replay", "--dry-run", "--seq", "1", "--seq", "1,1")
	if code != exitOK || strings.Count(out, "#1 exhausted") != 1 || !strings.Contains(out, "would replay 1, already replayed 0,") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = env.cli(t, "dlq", "replay", "--seq", "1", "--seq", "1")
	if code != exitOK || !strings.Contains(out, "replayed 1, already replayed 0, not replayable 0, failed 0") || len(env.requests()) != 1 {
		t.Errorf("replay: exit %d\n%s%s", code, out, errOut)
	}
}

// TestReplayRefusedSaysWhy: a replay the request stream refuses (here a
// request larger than the stream takes) is reported with the server's
// reason, once, rather than the client's "nats: nats: API error: …".
func TestReplayRefusedSaysWhy(t *testing.T) {
	env := MustNATS(t)
	putExhausted(t, env, "REFUSED-1")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := env.js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgSize = 64
	if _, err := env.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	out, _, code := env.cli(t, "dlq", "replay", "--seq", "1")
	if code != exitFailed || strings.Contains(out, "nats: nats:") || !strings.Contains(out, "REFUSED-1: failed: publish to invoice.request."+nuonuoSeller+": the server refused it: message size exceeds maximum allowed") {
		t.Errorf("a replay the request stream refused: exit %d\n%s", code, out)
	}
}

// TestReplaySaysWhenItsRequestWasPublished: a replayed request carries when
// the request it republishes first entered the request stream
// (pipeline.HeaderReplayPublished), so that the order record it starts
// keeps that, not the replay's own publication: the dead letter's
// PublishedAt; for the dead letter of a replay, whose PublishedAt is the
// replay's, the time that replay carried; nothing for the dead letter of a
// replay that carried none (an earlier build's), as its original
// publication is not known.
func TestReplaySaysWhenItsRequestWasPublished(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	ctx := context.Background()
	subj := schemas.Subjects{}
	original := time.Date(2026, 12, 7, 9, 30, 15, 123456789, time.UTC)
	replayedAt := original.Add(time.Hour)
	cases := []struct {
		orderNo string
		headers map[string][]string
		want    string
	}{
		{"FIRST-1", nil, "2026-12-07T09:30:15.123456789Z"},
		{"AGAIN-1", map[string][]string{pipeline.HeaderReplayOf: {"1"}, pipeline.HeaderReplayPublished: {original.Format(time.RFC3339Nano)}},
			"2026-12-07T09:30:15.123456789Z"},
		{"EARLIER-1", map[string][]string{pipeline.HeaderReplayOf: {"1"}}, ""},
	}
	for _, tc := range cases {
		payload := issueRequest(t, nuonuoSeller, tc.orderNo)
		published := original
		if tc.headers != nil {
			published = replayedAt // the dead letter of a replay: the replay's publication
		}
		b, err := json.Marshal(schemas.DeadLetter{
			SchemaVersion: "1", Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OrderNo: tc.orderNo,
			Error: schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "gave up"}, Deliveries: 20,
			OriginalSubject: subj.Request(nuonuoSeller), OriginalStream: pipeline.DefaultRequestStream, OriginalSeq: 1,
			PublishedAt: published, FirstSeen: published, DeadAt: published, Payload: payload, PayloadSize: len(payload),
			PayloadSHA256: "00", Headers: tc.headers,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.js.Publish(ctx, subj.DeadLetter(schemas.ReasonExhausted, nuonuoSeller), b); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := env.cli(t, "dlq", "replay", "--all"); code != exitOK || !strings.Contains(out, "replayed 3,") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	msgs := env.requests()
	if len(msgs) != 3 {
		t.Fatalf("%d requests replayed, want 3", len(msgs))
	}
	for i, tc := range cases {
		m := msgs[i]
		if got := m.Header.Values(pipeline.HeaderReplayPublished); (tc.want == "" && len(got) != 0) || (tc.want != "" && (len(got) != 1 || got[0] != tc.want)) {
			t.Errorf("replay of dead letter #%d (%s): %s %q; want %q", i+1, tc.orderNo, pipeline.HeaderReplayPublished, got, tc.want)
		}
		if got := m.Header.Values(pipeline.HeaderReplayOf); len(got) != 1 || got[0] != strconv.Itoa(i+1) {
			t.Errorf("replay of dead letter #%d: %s %q", i+1, pipeline.HeaderReplayOf, got)
		}
	}
}

// TestReplaySaysWhereItsRequestWas: a replayed request carries where the
// request it republishes was in the request stream
// (pipeline.HeaderReplayPosition: its stream, its sequence and the creation
// of the durable that delivered it), so that the consumer orders it against
// the order's record by the stream sequences when the same durable
// delivered both: for a dead letter as the consumer publishes it, its
// original stream and sequence with the durable's creation from its header
// (pipeline.HeaderOriginalConsumerCreated); for the dead letter of a
// replay, the position that replay carried; nothing for a dead letter
// without the durable's creation (an earlier build's), nor for the dead
// letter of a replay that carried none.
func TestReplaySaysWhereItsRequestWas(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	ctx := context.Background()
	subj := schemas.Subjects{}
	published := time.Date(2026, 12, 7, 9, 30, 15, 0, time.UTC)
	created := time.Date(2026, 12, 7, 8, 0, 0, 123456789, time.UTC)
	const carried = "INVOICE_REQUESTS 5 2026-12-07T07:00:00Z"
	cases := []struct {
		orderNo string
		headers map[string][]string // the dead letter's original headers
		created time.Time           // the durable's creation, as the consumer's dead letter says it
		want    string
	}{
		{"FIRST-1", nil, created, "INVOICE_REQUESTS 42 2026-12-07T08:00:00.123456789Z"},
		{"AGAIN-1", map[string][]string{pipeline.HeaderReplayOf: {"1"}, pipeline.HeaderReplayPosition: {carried}}, created, carried},
		{"AGAIN-2", map[string][]string{pipeline.HeaderReplayOf: {"1"}}, created, ""},
		{"EARLIER-1", nil, time.Time{}, ""},
	}
	pub := pipeline.NewJetStreamPublisher(env.js, subj)
	for i, tc := range cases {
		payload := issueRequest(t, nuonuoSeller, tc.orderNo)
		dl := &schemas.DeadLetter{
			SchemaVersion: "1", Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OrderNo: tc.orderNo,
			Error: schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "gave up"}, Deliveries: 20,
			OriginalSubject: subj.Request(nuonuoSeller), OriginalStream: pipeline.DefaultRequestStream, OriginalSeq: 42,
			PublishedAt: published, FirstSeen: published, DeadAt: published, Payload: payload, PayloadSize: len(payload),
			PayloadSHA256: "00", Headers: tc.headers, OriginalConsumerCreated: tc.created,
		}
		if err := pub.PublishDeadLetter(ctx, dl, fmt.Sprintf("dlq:test:%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := env.cli(t, "dlq", "replay", "--all"); code != exitOK || !strings.Contains(out, "replayed 4,") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	msgs := env.requests()
	if len(msgs) != len(cases) {
		t.Fatalf("%d requests replayed, want %d", len(msgs), len(cases))
	}
	for i, tc := range cases {
		got := msgs[i].Header.Values(pipeline.HeaderReplayPosition)
		if (tc.want == "" && len(got) != 0) || (tc.want != "" && (len(got) != 1 || got[0] != tc.want)) {
			t.Errorf("replay of dead letter #%d (%s): %s %q; want %q", i+1, tc.orderNo, pipeline.HeaderReplayPosition, got, tc.want)
		}
	}
}

// TestReplayLeavesOutTheHeadersCutMark: a dead letter whose original
// headers did not all fit says so in pipeline.HeadersCutHeader, among the
// headers it keeps; a replay republishes those headers, but not that one.
// On the replayed request it means nothing (the consumer reads it nowhere),
// and it misleads: the replay's own dead letter keeps the request's headers
// as they are when they fit, the mark included, and would say that bytes
// of the replay's headers were left out when none were, counting those of
// the first cut. The other headers are republished as they are.
func TestReplayLeavesOutTheHeadersCutMark(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	ctx := context.Background()
	subj := schemas.Subjects{}
	published := time.Date(2026, 12, 7, 9, 30, 15, 0, time.UTC)
	payload := issueRequest(t, nuonuoSeller, "CUT-1")
	b, err := json.Marshal(schemas.DeadLetter{
		SchemaVersion: "1", Reason: schemas.ReasonExhausted, SellerTaxNum: nuonuoSeller, OrderNo: "CUT-1",
		Error: schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, Message: "gave up"}, Deliveries: 20,
		OriginalSubject: subj.Request(nuonuoSeller), OriginalStream: pipeline.DefaultRequestStream, OriginalSeq: 1,
		PublishedAt: published, FirstSeen: published, DeadAt: published, Payload: payload, PayloadSize: len(payload),
		PayloadSHA256: "00", Headers: map[string][]string{
			"Traceparent":             {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			pipeline.HeadersCutHeader: {"20480 bytes of headers left out of 36864"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.js.Publish(ctx, subj.DeadLetter(schemas.ReasonExhausted, nuonuoSeller), b); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := env.cli(t, "dlq", "replay", "--seq", "1"); code != exitOK || !strings.Contains(out, "replayed 1,") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	msgs := env.requests()
	if len(msgs) != 1 {
		t.Fatalf("%d requests replayed, want 1", len(msgs))
	}
	h := msgs[0].Header
	if got := h.Values(pipeline.HeadersCutHeader); len(got) != 0 {
		t.Errorf("the replayed request carries %s %q; want it left out", pipeline.HeadersCutHeader, got)
	}
	if got := h.Values("Traceparent"); len(got) != 1 || got[0] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("the replayed request's Traceparent %q; want the dead letter's", got)
	}
}
