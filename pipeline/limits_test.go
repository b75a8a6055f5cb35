package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
)

// A malformed request at the size limit with large headers full of
// characters JSON escapes six-fold is dead-lettered, its headers cut to fit,
// rather than put back forever because its dead letter breaks the server's
// payload limit.
func TestOversizedMalformedIsDeadLettered(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	msg := nats.NewMsg(schemas.Subjects{}.Request(nuonuoSeller))
	msg.Data = []byte("{" + strings.Repeat("<", 600<<10))
	for i := range 64 {
		msg.Header.Set(fmt.Sprintf("X-Big-%02d", i), strings.Repeat("<", 1000))
	}
	if _, err := h.obs.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(10 * time.Second) // a second dead letter would be collected by now
	dl := h.exactDeadLetters(1)[0]
	if dl.Reason != schemas.ReasonMalformed || !dl.PayloadTruncated || dl.PayloadSize != len(msg.Data) ||
		len(dl.Headers[pipeline.HeadersCutHeader]) != 1 || len(dl.Headers) < 2 {
		t.Fatalf("dead letter: reason %s truncated %v size %d, %d headers %v", dl.Reason, dl.PayloadTruncated, dl.PayloadSize, len(dl.Headers), dl.Headers[pipeline.HeadersCutHeader])
	}
}

// A malformed request whose syntax error names a long path (a member name
// of slashes, which a JSON pointer writes twice as long) is dead-lettered
// and terminated. Its error, over a megabyte, is the termination's reason
// too, which the server takes as a message of its own: past the payload
// limit, the termination fails, and the request is delivered again and
// again and never leaves the stream.
func TestMalformedWithALongPathIsTerminated(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	body := []byte(`{"` + strings.Repeat("/", schemas.DefaultMaxBytes-5) + `":}`)
	if len(body) != schemas.DefaultMaxBytes {
		t.Fatalf("a request of %d bytes, not at the size limit", len(body))
	}
	h.publish(nuonuoSeller, body, "")
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(10 * time.Second) // a second dead letter would be collected by now
	dl := h.exactDeadLetters(1)[0]
	if dl.Reason != schemas.ReasonMalformed || dl.PayloadTruncated || dl.PayloadSize != len(body) || len(dl.Error.Message) > 2<<10 {
		t.Fatalf("dead letter: reason %s truncated %v size %d, message of %d bytes", dl.Reason, dl.PayloadTruncated, dl.PayloadSize, len(dl.Error.Message))
	}
}

// A request with thousands of violations is rejected with a result that
// lists as many as fit and says how many more there are.
func TestThousandsOfViolationsAreRejected(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	req := issueRequest(t, nuonuoSeller, "MANY-BAD", func(o *schemas.Order) {
		line := o.InvoiceDetail[0]
		line.TaxIncludedAmount = schemas.ParseAmount("106.01")
		line.Tax = schemas.ParseAmount("9.99")
		o.InvoiceDetail = nil
		for range 2000 {
			o.InvoiceDetail = append(o.InvoiceDetail, line)
		}
	})
	if len(req) > 512<<10 {
		t.Fatalf("request of %d bytes: over the size limit, it would be malformed", len(req))
	}
	h.publish(nuonuoSeller, req, "")
	r := h.waitResult(nuonuoSeller, "MANY-BAD", 1, 20*time.Second)[0]
	if r.Status != schemas.StatusRejected || r.Error.Code != schemas.CodeInvalidRequest {
		t.Fatalf("result: %+v", r)
	}
	vs := r.Error.Violations
	last := vs[len(vs)-1]
	if len(vs) < 10 || last.Rule != pipeline.RuleMoreViolations || !strings.Contains(last.Message, "more not listed") {
		t.Fatalf("%d violations, last %+v", len(vs), last)
	}
	if !strings.HasPrefix(r.Error.Message, fmt.Sprint(len(vs)-1+mustAtoi(t, strings.Fields(last.Message)[0]))) {
		t.Errorf("message %q does not count every violation", r.Error.Message)
	}
	h.waitFor("request stream to empty", 5*time.Second, h.requestStreamEmpty)
}

// A request of 2,000 lines each warned of (a computed_amount warning a
// line: over half a megabyte of warnings, which with a second warning a
// line would pass the 1 MiB max_payload) is issued with a result that lists
// the warnings that fit and ends with an entry counting the rest and all
// of them. That entry does not tell to correct and send the request again:
// it was issued, and a copy would get the stored result.
func TestThousandsOfWarningsAreCounted(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	// 1.06 with tax at 6% is 1.00 + 0.06 to Nuonuo, which sets the 1.01
	// given without tax aside: a warning.
	req := issueRequest(t, nuonuoSeller, "MANY-WARNED", func(o *schemas.Order) {
		l := o.InvoiceDetail[0]
		l.Price, l.TaxIncludedAmount, l.TaxExcludedAmount, l.Tax = schemas.ParseAmount("1.06"), schemas.Amount{}, schemas.ParseAmount("1.01"), schemas.ParseAmount("0.06")
		o.InvoiceDetail = slices.Repeat([]schemas.InvoiceLine{l}, 2000)
	})
	if len(req) > 512<<10 {
		t.Fatalf("request of %d bytes: over the size limit, it would be malformed", len(req))
	}
	h.publish(nuonuoSeller, req, "")
	r := h.waitResult(nuonuoSeller, "MANY-WARNED", 1, 30*time.Second)[0]
	if r.Status != schemas.StatusIssued || len(r.Invoices) != 1 || r.Invoices[0].TotalAmount.String() != "2120.00" {
		t.Fatalf("result %s %+v %+v", r.Status, r.Error, r.Invoices)
	}
	ws := r.Warnings
	last := ws[len(ws)-1]
	// The seller's tax number fails its check character, twice: 2,002.
	const all = 2002
	if len(ws) < 10 || last.Rule != pipeline.RuleMoreViolations {
		t.Fatalf("%d warnings, the last %+v; want a list cut short by an entry counting the rest", len(ws), last)
	}
	if want := fmt.Sprintf("%d more not listed (%d in all)", all-(len(ws)-1), all); !strings.HasPrefix(last.Message, want) {
		t.Errorf("last entry %q, want it to start %q", last.Message, want)
	}
	if strings.Contains(last.Message, "send the request again") {
		t.Errorf("last entry %q tells to send an issued request again", last.Message)
	}
	h.waitFor("request stream to empty", 5*time.Second, h.requestStreamEmpty)
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// bodylessOnly refuses to publish a dead letter that carries the original
// body, as a server with a small max_payload would.
type bodylessOnly struct {
	pipeline.Publisher
	refused atomic.Int32
}

func (b *bodylessOnly) PublishDeadLetter(ctx context.Context, dl *schemas.DeadLetter, msgID string) error {
	if len(dl.Payload) > 0 {
		b.refused.Add(1)
		return errors.New("refused by the test: a dead letter with its body")
	}
	return b.Publisher.PublishDeadLetter(ctx, dl, msgID)
}

// A malformed request whose dead letter cannot be published delivery after
// delivery is dead-lettered without its body on its last delivery.
func TestMalformedDeadLetterFallsBackToItsBarePlace(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	bp := &bodylessOnly{}
	h := newHarness(t, harnessOptions{pipeline: cfg, wrapPub: func(p pipeline.Publisher) pipeline.Publisher {
		bp.Publisher = p
		return bp
	}})
	h.start()
	h.publish(nuonuoSeller, []byte("not json"), "")
	h.waitFor("the dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) >= 1 })
	h.settled(10 * time.Second) // a second dead letter would be collected by now
	dl := h.exactDeadLetters(1)[0]
	if dl.Reason != schemas.ReasonMalformed || len(dl.Payload) != 0 || !dl.PayloadTruncated || dl.PayloadSize != 8 || dl.Deliveries != 3 {
		t.Fatalf("dead letter %+v", dl)
	}
	if n := bp.refused.Load(); n != 3 {
		t.Errorf("%d refused publishes, want one per delivery", n)
	}
}

// A provider's refusal whose message is over a megabyte (the provider's
// answers are read up to 4 MiB) is answered with the message clipped: the
// result and the record must fit the server's payload limit, or the
// request would never end.
func TestAHugeProviderMessageIsClipped(t *testing.T) {
	huge := strings.Repeat("税局开票异常", 1<<20/len("税局开票异常")+1)
	h := newHarness(t, harnessOptions{pipeline: fast, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "399", Message: huge}}}}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "HUGE-MSG-1", nil), "")
	r := h.waitResult(jumdataSeller, "HUGE-MSG-1", 1, 20*time.Second)[0]
	if r.Status != schemas.StatusRejected || r.Error == nil || r.Error.ProviderCode != "399" {
		t.Fatalf("result %s %+v; want rejected with jumdata's 399", r.Status, r.Error)
	}
	if n := len(r.Error.Message); n > 8<<10 || !strings.HasPrefix(r.Error.Message, "税局开票异常") {
		t.Fatalf("the result's message has %d bytes: %.60q", n, r.Error.Message)
	}
	h.waitFor("request stream to empty", 10*time.Second, h.requestStreamEmpty)
}
