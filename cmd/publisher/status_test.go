package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	if _, _, code := c.cli(t, "publish", writeFile(t, "s.json", issueRequest(t, jumdataSeller, "S-1"))); code != exitOK {
		t.Fatalf("publish: exit %d", code)
	}
	res := c.waitStatus(t, jumdataSeller, "S-1", schemas.StatusIssued, 15*time.Second)

	t.Run("found", func(t *testing.T) {
		out, errOut, code := c.cli(t, "status", strings.ToLower(jumdataSeller), "S-1")
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"order", jumdataSeller + ":S-1",
			"state", "issued (final)",
			"provider", "jumdata",
			"provider refs", "taskId=",
			"invoices", "1, total 106.00",
			res.Invoices[0].DigitalInvoiceNo,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("found as JSON", func(t *testing.T) {
		out, _, code := c.cli(t, "status", "--json", jumdataSeller, "S-1")
		var reply pipeline.StatusReply
		if code != exitOK || json.Unmarshal([]byte(out), &reply) != nil {
			t.Fatalf("exit %d: %s", code, out)
		}
		if !reply.Found || reply.Order.State != schemas.StateIssued || reply.Result == nil || reply.Result.Status != schemas.StatusIssued {
			t.Fatalf("%+v", reply)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		out, errOut, code := c.cli(t, "status", jumdataSeller, "NO-SUCH")
		if code != exitFailed || !strings.Contains(errOut, "order 91330106MA2AYNWD8M:NO-SUCH is unknown to the consumer") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		out, _, code = c.cli(t, "status", "--json", jumdataSeller, "NO-SUCH")
		if code != exitFailed || strings.TrimSpace(out) != `{"found":false}` {
			t.Fatalf("exit %d: %s", code, out)
		}
	})

	t.Run("usage", func(t *testing.T) {
		if _, _, code := c.cli(t, "status", jumdataSeller); code != exitUsage {
			t.Fatalf("exit %d", code)
		}
		// A question no order can answer is the caller's mistake (exit 2),
		// not NATS trouble (exit 3) that a script would retry: an order
		// number no request may carry, checked here; a seller the service
		// refuses, checked there.
		if out, errOut, code := c.cli(t, "status", jumdataSeller, "WITH SPACE"); code != exitUsage || !strings.Contains(errOut, "not an order number") {
			t.Fatalf("order number with a space: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := c.cli(t, "status", strings.Repeat("9", 30), "S-1"); code != exitUsage || !strings.Contains(errOut, "status service error 400") {
			t.Fatalf("seller of 30 characters: exit %d\n%s%s", code, out, errOut)
		}
	})
}

func TestStatusWithoutConsumer(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	out, errOut, code := runCLI(t, "", "--server", env.url, "--timeout", "500ms", "status", nuonuoSeller, "X-1")
	if code != exitTrouble || !strings.Contains(errOut, "no consumer answered the status request") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
}
