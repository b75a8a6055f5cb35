package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

func TestPublish(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	golden := filepath.Join("..", "..", "schemas", "testdata", "requests")
	discount := filepath.Join(golden, "issue-discount.json") // jumdata seller, pretty-printed
	reissue := filepath.Join(golden, "reissue.json")         // Nuonuo seller
	ndjson := writeFile(t, "orders.ndjson",
		issueRequest(t, nuonuoSeller, "P-1"),
		[]byte(`{"schemaVersion":"1","kind":"reissue","sellerTaxNum":"339902999999789113","orderNo":"P-BAD","reissue":{}}`),
		issueRequest(t, jumdataSeller, "P-2"),
	)

	t.Run("valid files are published with subject and Nats-Msg-Id", func(t *testing.T) {
		out, errOut, code := env.cli(t, "publish", discount, reissue)
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"issue-discount.json:1: 91330106MA2AYNWD8M:ORD-2026-000001: published to invoice.request.91330106MA2AYNWD8M (INVOICE_REQUESTS #1)",
			"reissue.json:1: 339902999999789113:RE-20261120-0001: published to invoice.request.339902999999789113 (INVOICE_REQUESTS #2)",
			"published 2, duplicates 0, invalid 0, failed 0",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		msgs := env.requests()
		if len(msgs) != 2 {
			t.Fatalf("%d requests in the stream, want 2", len(msgs))
		}
		want := []struct{ subject, id string }{
			{"invoice.request.91330106MA2AYNWD8M", "91330106MA2AYNWD8M:ORD-2026-000001:"},
			{"invoice.request.339902999999789113", "339902999999789113:RE-20261120-0001:"},
		}
		for i, m := range msgs {
			fp, err := schemas.Fingerprint(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if want[i].id += fp[:16]; m.Subject != want[i].subject || m.Header.Get(jetstream.MsgIDHeader) != want[i].id {
				t.Errorf("message %d: subject %s, Nats-Msg-Id %q; want %s, %q", i, m.Subject, m.Header.Get(jetstream.MsgIDHeader), want[i].subject, want[i].id)
			}
			if !json.Valid(m.Data) {
				t.Errorf("message %d is not JSON: %s", i, m.Data)
			}
		}
	})

	t.Run("the same file twice reports duplicates", func(t *testing.T) {
		out, _, code := env.cli(t, "publish", discount, reissue)
		if code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
		if n := strings.Count(out, "duplicate: the same request is in the stream already"); n != 2 {
			t.Errorf("%d duplicates reported, want 2:\n%s", n, out)
		}
		if !strings.Contains(out, "published 0, duplicates 2, invalid 0, failed 0") {
			t.Errorf("summary:\n%s", out)
		}
		if n := len(env.requests()); n != 2 {
			t.Errorf("%d requests in the stream after the duplicates, want 2", n)
		}
	})

	t.Run("an invalid record is reported and not published", func(t *testing.T) {
		before := env.streamState("INVOICE_REQUESTS").LastSeq
		out, _, code := env.cli(t, "publish", ndjson)
		if code != exitFailed {
			t.Fatalf("exit %d, want %d\n%s", code, exitFailed, out)
		}
		for _, want := range []string{
			"orders.ndjson:2: reissue: needs fpqqlsh (the serial number) or orderno (E4000)",
			"orders.ndjson:1: 339902999999789113:P-1: published",
			"orders.ndjson:3: 91330106MA2AYNWD8M:P-2: published",
			"published 2, duplicates 0, invalid 1, failed 0",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if after := env.streamState("INVOICE_REQUESTS").LastSeq; after != before+2 {
			t.Errorf("the stream went from #%d to #%d; want the 2 valid records only", before, after)
		}
		for _, m := range env.requests() {
			if strings.Contains(string(m.Data), "P-BAD") {
				t.Errorf("the invalid record was published: %s", m.Data)
			}
		}
	})

	t.Run("quiet prints problems and the summary only", func(t *testing.T) {
		out, _, code := env.cli(t, "publish", "--quiet", writeFile(t, "q.ndjson", issueRequest(t, nuonuoSeller, "P-Q")))
		if code != exitOK || strings.TrimSpace(out) != "published 1, duplicates 0, invalid 0, failed 0" {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})

	t.Run("dry run publishes nothing and does not connect", func(t *testing.T) {
		out, _, code := runCLI(t, "", "--server", unreachableURL(t), "publish", "--dry-run", ndjson)
		if code != exitFailed || !strings.Contains(out, "dry run: 2 valid, 1 invalid; nothing published") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		out, _, code = runCLI(t, "", "--server", unreachableURL(t), "publish", "--dry-run", discount)
		if code != exitOK || !strings.Contains(out, "dry run: 1 valid, 0 invalid") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})

	t.Run("unreachable server", func(t *testing.T) {
		url := unreachableURL(t)
		out, errOut, code := runCLI(t, "", "--server", url, "--timeout", "2s", "publish", discount)
		if code != exitTrouble {
			t.Fatalf("exit %d, want %d\n%s", code, exitTrouble, out)
		}
		if !strings.Contains(errOut, "cannot reach NATS at "+url+": is the consumer running? (go run ./cmd/consumer)") {
			t.Fatalf("message %q", errOut)
		}
	})

	t.Run("no request stream", func(t *testing.T) {
		_, msg, code := runCLI(t, "", "--server", env.url, "--prefix", "other", "publish", discount)
		if code != exitTrouble || !strings.Contains(msg, "the consumer creates the streams") {
			t.Fatalf("exit %d, message %q", code, msg)
		}
	})

	t.Run("a password in the URL stays out of the message", func(t *testing.T) {
		u := strings.Replace(unreachableURL(t), "nats://", "nats://ops:s3cret@", 1)
		_, msg, code := runCLI(t, "", "--server", u, "--timeout", "1s", "status", nuonuoSeller, "X")
		if code != exitTrouble || strings.Contains(msg, "s3cret") || !strings.Contains(msg, "cannot reach NATS") {
			t.Fatalf("exit %d, message %q", code, msg)
		}
	})
}

func TestPublishWait(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	f := writeFile(t, "w.ndjson", issueRequest(t, nuonuoSeller, "W-1"), issueRequest(t, jumdataSeller, "W-2"))
	out, _, code := c.cli(t, "publish", "--wait", f)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	issued := regexp.MustCompile(`(?m)^\S+ \S+  issued +  (339902999999789113:W-1|91330106MA2AYNWD8M:W-2)  issue +  \d{20} total 106\.00$`)
	if n := len(issued.FindAllString(out, -1)); n != 2 {
		t.Errorf("%d issued result lines, want 2:\n%s", n, out)
	}
	if !strings.Contains(out, "results: issued 2") {
		t.Errorf("no result count:\n%s", out)
	}
	// Published again: duplicates of requests answered already, whose
	// results come from the status service.
	out, _, code = c.cli(t, "publish", "--wait", f)
	if code != exitOK || strings.Count(out, "not queued: the same request was published as INVOICE_REQUESTS #") != 2 || !strings.Contains(out, "results: issued 2") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	// Under new ids they are queued, and answered with the stored results
	// (the sandbox would report a second invoice).
	out, _, code = c.cli(t, "publish", "--wait", "--new-id", f)
	if code != exitOK || strings.Contains(out, "not queued") || !strings.Contains(out, "published 2, duplicates 0") || !strings.Contains(out, "results: issued 2") {
		t.Fatalf("--new-id: exit %d\n%s", code, out)
	}
	// A request that fails at the provider: --wait exits 1.
	bad := issueRequest(t, nuonuoSeller, "W-FAIL")
	bad = []byte(strings.Replace(string(bad), `"pushMode"`, `"remark":"SANDBOX:FAIL","pushMode"`, 1))
	out, _, code = c.cli(t, "publish", "--wait", writeFile(t, "f.json", bad))
	if code != exitFailed || !strings.Contains(out, "rejected") || !strings.Contains(out, "results: rejected 1") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if r := c.waitStatus(t, nuonuoSeller, "W-1", schemas.StatusIssued, time.Second); len(r.Invoices) != 1 {
		t.Fatalf("%+v", r)
	}
	// A request the provider refuses, then corrected and published again at
	// once, as the README says to: the stream must not drop the correction
	// as a duplicate of the first.
	c.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", Code: "399", Message: "购买方名称与税号不符", Times: 1}}})
	first := writeFile(t, "fix-1.json", issueRequest(t, jumdataSeller, "W-FIX"))
	if out, _, code = c.cli(t, "publish", "--wait", first); code != exitFailed || !strings.Contains(out, "results: rejected 1") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	fixed := []byte(strings.Replace(string(issueRequest(t, jumdataSeller, "W-FIX")), `"pushMode"`, `"remark":"corrected","pushMode"`, 1))
	out, _, code = c.cli(t, "publish", "--wait", writeFile(t, "fix-2.json", fixed))
	if code != exitOK || strings.Contains(out, "duplicate:") || !strings.Contains(out, "results: issued 1") {
		t.Fatalf("the corrected request: exit %d\n%s", code, out)
	}
}

// TestPublishAnsweredDuplicate republishes a request after the consumer
// answered it, as the README advises for seller_not_configured: the stream
// drops the same body within its duplicate window, and the work-queue
// stream no longer holds the first copy, so nothing would process it. The
// publisher says so and exits 1; --new-id publishes it.
func TestPublishAnsweredDuplicate(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	const other = "91440101MA5APD8X8J" // not configured
	f := writeFile(t, "o.json", issueRequest(t, other, "UNCONF-1"))
	if out, errOut, code := c.cli(t, "publish", f); code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	c.waitStatus(t, other, "UNCONF-1", schemas.StatusRejected, 10*time.Second)
	waitFor(t, "the request stream to be empty", 5*time.Second, func() bool { return c.streamState(pipeline.DefaultRequestStream).Msgs == 0 })

	t.Run("republished, it is reported not queued", func(t *testing.T) {
		out, errOut, code := c.cli(t, "publish", "--quiet", f)
		if code != exitFailed {
			t.Errorf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
		}
		for _, want := range []string{
			"o.json:1: 91440101MA5APD8X8J:UNCONF-1: not queued: the same request was published as INVOICE_REQUESTS #1 within the stream's duplicate window",
			"to have it processed again, publish it with --new-id",
			"published 0, duplicates 1, invalid 0, failed 0; 1 duplicate(s) answered already, not queued",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if n := c.streamState(pipeline.DefaultRequestStream).Msgs; n != 0 {
			t.Errorf("%d request(s) in the stream, want none", n)
		}
	})

	t.Run("with --wait, one without a stored result is not waited for", func(t *testing.T) {
		out, errOut, code := c.cli(t, "publish", "--wait", f)
		if code != exitFailed || !strings.Contains(out, "91440101MA5APD8X8J:UNCONF-1: answered already, and the status service has no result for it") || strings.Contains(out, "no result yet") {
			t.Errorf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
		}
	})

	t.Run("--new-id publishes it under an id of its own", func(t *testing.T) {
		before := len(c.resultsFor(other, "UNCONF-1"))
		seq := c.streamState(pipeline.DefaultRequestStream).LastSeq
		out, errOut, code := c.cli(t, "publish", "--new-id", f)
		if code != exitOK || !strings.Contains(out, fmt.Sprintf("published to invoice.request.%s (INVOICE_REQUESTS #%d)", other, seq+1)) {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		waitFor(t, "the republished request's answer", 10*time.Second, func() bool { return len(c.resultsFor(other, "UNCONF-1")) > before })
	})
}

// TestPublishNewIDMessageID checks the Nats-Msg-Id of --new-id: the usual
// id and a nonce, another at each publish.
func TestPublishNewIDMessageID(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	req := issueRequest(t, nuonuoSeller, "NEWID-1")
	fp, err := schemas.Fingerprint(req)
	if err != nil {
		t.Fatal(err)
	}
	f := writeFile(t, "n.json", req)
	for range 2 {
		if out, errOut, code := env.cli(t, "publish", "--new-id", f); code != exitOK || !strings.Contains(out, "published 1, duplicates 0") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
	}
	id := regexp.MustCompile("^" + regexp.QuoteMeta(nuonuoSeller+":NEWID-1:"+fp[:16]) + ":[0-9a-f]{12}$")
	msgs := env.requests()
	if len(msgs) != 2 {
		t.Fatalf("%d requests in the stream, want 2", len(msgs))
	}
	a, b := msgs[0].Header.Get(jetstream.MsgIDHeader), msgs[1].Header.Get(jetstream.MsgIDHeader)
	if !id.MatchString(a) || !id.MatchString(b) || a == b {
		t.Errorf("Nats-Msg-Id %q and %q; want %s:<12 hex digits>, two different", a, b, requestMsgID(schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "NEWID-1"}, fp))
	}
}

// TestPublishWaitActionRequired: an order whose last result within
// --timeout is action_required waits for a person; publish --wait says so
// rather than "no result yet".
func TestPublishWaitActionRequired(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast, sandbox: sandbox.Config{Faults: sandbox.Faults{FaceAuthSellers: []string{jumdataSeller}}}})
	out, errOut, code := c.cli(t, "publish", "--wait", "--timeout", "2s", writeFile(t, "h.json", issueRequest(t, jumdataSeller, "HELD-1")))
	want := "91330106MA2AYNWD8M:HELD-1: action_required (waiting for a person): action_required "
	if code != exitFailed || !strings.Contains(out, want) || !strings.Contains(out, "results: action_required 1") || strings.Contains(out, "no result yet") {
		t.Errorf("exit %d, want %d and %q\n%s%s", code, exitFailed, want, out, errOut)
	}
}

// TestPublishDuplicateAsOrders republishes requests as the orders role of
// deploy/accounts.conf, which may read the request stream's info but not its
// messages (reading them would show it every seller's waiting requests):
// publish tells a first copy still waiting from one answered and removed by
// the stream's state alone. The consumer's acknowledgements are simulated
// by deleting messages: #2 from the middle (the deleted list), then #1
// (below the first sequence), then #3 (an empty stream).
func TestPublishDuplicateAsOrders(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	a, b, c := issueRequest(t, nuonuoSeller, "ORD-A"), issueRequest(t, nuonuoSeller, "ORD-B"), issueRequest(t, nuonuoSeller, "ORD-C")
	all := writeFile(t, "abc.ndjson", a, b, c)
	if out, errOut, code := env.ordersCLI(t, "publish", all); code != exitOK || !strings.Contains(out, "published 3,") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	remove := func(seq uint64) {
		t.Helper()
		st, err := env.js.Stream(t.Context(), pipeline.DefaultRequestStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteMsg(t.Context(), seq); err != nil {
			t.Fatal(err)
		}
	}
	notQueued := func(order string, seq int) string {
		return fmt.Sprintf("%s:%s: not queued: the same request was published as INVOICE_REQUESTS #%d within the stream's duplicate window", nuonuoSeller, order, seq)
	}
	waiting := func(order string, seq int) string {
		return fmt.Sprintf("%s:%s: duplicate: the same request is in the stream already (INVOICE_REQUESTS #%d)", nuonuoSeller, order, seq)
	}
	for _, step := range []struct {
		remove          uint64
		answered, still []string
	}{
		{2, []string{notQueued("ORD-B", 2)}, []string{waiting("ORD-A", 1), waiting("ORD-C", 3)}},
		{1, []string{notQueued("ORD-A", 1), notQueued("ORD-B", 2)}, []string{waiting("ORD-C", 3)}},
		{3, []string{notQueued("ORD-A", 1), notQueued("ORD-B", 2), notQueued("ORD-C", 3)}, nil},
	} {
		remove(step.remove)
		out, errOut, code := env.ordersCLI(t, "publish", all)
		if code != exitFailed || strings.Contains(errOut, "ermission") || strings.Contains(out, "failed:") {
			t.Errorf("#%d removed: exit %d, want %d\n%s%s", step.remove, code, exitFailed, out, errOut)
		}
		for _, want := range append(step.answered, step.still...) {
			if !strings.Contains(out, want) {
				t.Errorf("#%d removed: output lacks %q:\n%s", step.remove, want, out)
			}
		}
		if want := fmt.Sprintf("published 0, duplicates 3, invalid 0, failed 0; %d duplicate(s) answered already", len(step.answered)); !strings.Contains(out, want) {
			t.Errorf("#%d removed: output lacks %q:\n%s", step.remove, want, out)
		}
	}
}

// TestFirstCopiesReadsTheStreamOnce: the request stream's info is fetched
// for the first duplicate of a run and again only for a sequence above the
// last one it gave; a copy answered after the fetch looks still waiting
// (the plain duplicate), never the reverse.
func TestFirstCopiesReadsTheStreamOnce(t *testing.T) {
	fetches := 0
	state := jetstream.StreamState{FirstSeq: 3, LastSeq: 10, Msgs: 6, Deleted: []uint64{7, 5}}
	f := &firstCopies{info: func(context.Context) (*jetstream.StreamInfo, error) {
		fetches++
		return &jetstream.StreamInfo{State: state}, nil
	}}
	check := func(seq uint64, want bool, wantFetches int) {
		t.Helper()
		got, err := f.answered(t.Context(), seq)
		if err != nil || got != want || fetches != wantFetches {
			t.Errorf("#%d: answered %v (%v) after %d fetch(es), want %v after %d", seq, got, err, fetches, want, wantFetches)
		}
	}
	check(2, true, 1)  // below the first sequence
	check(5, true, 1)  // deleted
	check(7, true, 1)  // deleted
	check(6, false, 1) // waiting
	check(10, false, 1)
	state = jetstream.StreamState{FirstSeq: 11, LastSeq: 12, Msgs: 0} // #6 and #10 answered since
	check(6, false, 1)                                                // the cached info: still waiting
	check(12, true, 2)                                                // above the last sequence: fetched again
	check(6, true, 2)
	state = jetstream.StreamState{FirstSeq: 13, LastSeq: 12}
	check(20, false, 3) // not stored as far as the server says: waiting
}

// TestPublishSameRequestTwiceInOneRun: a file that holds the same request
// twice. The second copy is a duplicate of the first, published by this
// run, which the consumer may have answered (and the work queue removed)
// by the time the second is acknowledged: it must not be reported "not
// queued ... publish it with --new-id" with exit 1, since nothing was
// lost. The 300 requests between the copies, published one at a time
// (--window 1), give the consumer the time to answer the first.
func TestPublishSameRequestTwiceInOneRun(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	a := issueRequest(t, nuonuoSeller, "TWICE-A")
	lines := [][]byte{a}
	for i := range 300 {
		lines = append(lines, issueRequest(t, nuonuoSeller, fmt.Sprintf("FILL-%d", i)))
	}
	lines = append(lines, a)
	f := writeFile(t, "twice.ndjson", lines...)
	out, errOut, code := c.cli(t, "publish", "--window", "1", f)
	want := []string{
		"twice.ndjson:302: 339902999999789113:TWICE-A: duplicate: the same request was published earlier in this run (INVOICE_REQUESTS #1)",
		"published 301, duplicates 1, invalid 0, failed 0\n",
	}
	if code != exitOK || strings.Contains(out, "not queued") || !strings.Contains(out, want[0]) || !strings.Contains(out, want[1]) {
		t.Errorf("exit %d, want %d and\n%s\n%s", code, exitOK, strings.Join(want, "\n"), out+errOut)
	}
}

// TestPublishLookupFailureIsNotRepeated: the request stream's state cannot
// be read (here a proxy drops the request, so it times out). The first
// duplicate's look-up fails after --timeout; it and the later duplicates
// are reported as duplicates that could not be checked, without another
// look-up each costing --timeout, and are not failures.
func TestPublishLookupFailureIsNotRepeated(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	f := writeFile(t, "abc.ndjson", issueRequest(t, nuonuoSeller, "LK-A"), issueRequest(t, nuonuoSeller, "LK-B"), issueRequest(t, nuonuoSeller, "LK-C"))
	if out, errOut, code := env.cli(t, "publish", f); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	proxy := dropStateRequests(t, env.url)
	out, errOut, code := runCLI(t, "", "--server", proxy.url, "--timeout", "1s", "publish", f)
	if code != exitOK || strings.Contains(out, "failed:") || !strings.Contains(out, "published 0, duplicates 3, invalid 0, failed 0\n") {
		t.Errorf("exit %d, want %d, 3 duplicates\n%s%s", code, exitOK, out, errOut)
	}
	for _, order := range []string{"LK-A", "LK-B", "LK-C"} {
		want := nuonuoSeller + ":" + order + ": duplicate (whether it is still waiting could not be checked: read the state of the request stream INVOICE_REQUESTS: NATS at "
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := proxy.dropped.Load(); n != 1 {
		t.Errorf("%d look-ups of the stream's state, want 1", n)
	}
}

// stateProxy is a TCP proxy to a NATS server that drops the client's
// requests for the request stream's state with its deleted sequences (the
// look-up of a duplicate's first copy), so that they time out.
type stateProxy struct {
	url     string
	dropped atomic.Int64
}

func dropStateRequests(t *testing.T, serverURL string) *stateProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stateProxy{url: "nats://" + l.Addr().String()}
	target := strings.TrimPrefix(serverURL, "nats://")
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			go func() { _, _ = io.Copy(c, s) }()
			go p.forward(s, c)
		}
	}()
	return p
}

// forward copies the client's protocol lines to the server, reading each
// PUB's or HPUB's payload by its size, and leaves out the dropped ones.
func (p *stateProxy) forward(server io.Writer, client io.Reader) {
	r := bufio.NewReader(client)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) < 3 || (!strings.EqualFold(f[0], "PUB") && !strings.EqualFold(f[0], "HPUB")) {
			if _, err := io.WriteString(server, line); err != nil {
				return
			}
			continue
		}
		size, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			return
		}
		payload := make([]byte, size+2) // and its CRLF
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		if f[1] == "$JS.API.STREAM.INFO."+pipeline.DefaultRequestStream && strings.Contains(string(payload), "deleted_details") {
			p.dropped.Add(1)
			continue
		}
		if _, err := io.WriteString(server, line); err != nil {
			return
		}
		if _, err := server.Write(payload); err != nil {
			return
		}
	}
}

// TestPublishWaitAnsweredActionRequired: with --wait, a duplicate of a
// request answered already (its first copy gone from the stream, as when
// it ran out of deliveries while its seller was held) whose stored result
// is action_required waits for a person, and is reported so, not as an
// order "the status service has no result for". The help text words the
// line as publish prints it.
func TestPublishWaitAnsweredActionRequired(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast, sandbox: sandbox.Config{Faults: sandbox.Faults{FaceAuthSellers: []string{jumdataSeller}}}})
	f := writeFile(t, "h.json", issueRequest(t, jumdataSeller, "HELD-2"))
	if out, errOut, code := c.cli(t, "publish", f); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	c.waitStatus(t, jumdataSeller, "HELD-2", schemas.StatusActionRequired, 10*time.Second)
	st, err := c.js.Stream(t.Context(), pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context()); err != nil { // the held request leaves the stream
		t.Fatal(err)
	}
	out, errOut, code := c.cli(t, "publish", "--wait", "--timeout", "2s", f)
	for _, want := range []string{
		"91330106MA2AYNWD8M:HELD-2: not queued: the same request was published as INVOICE_REQUESTS #1",
		"results: action_required 1",
		"91330106MA2AYNWD8M:HELD-2: action_required (waiting for a person): action_required ",
		"(it resumes once fixed: publisher status 91330106MA2AYNWD8M HELD-2)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if code != exitFailed || strings.Contains(out, "the status service has no result") {
		t.Errorf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	help, _, _ := runCLI(t, "", "publish", "--help")
	if !strings.Contains(help, `"not queued: ... answered already"`) {
		t.Errorf("the help text does not quote the line as publish prints it (answered already):\n%s", help)
	}
}
