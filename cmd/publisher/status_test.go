package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
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

// TestStatusPrintsTheFirstWarningsOfARecord: status prints an order's
// warnings as validate and publish print a record's, the first
// maxPrintedWarnings of them, then one line counting the rest: the record
// keeps up to 24 KiB of them (a request of 2,000 lines has a warning or
// more a line), which printed whole buried the order's state under a
// hundred lines. The record's own count of those it left out is passed on.
func TestStatusPrintsTheFirstWarningsOfARecord(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	// 1.06 with tax at 6% is 1.00 + 0.06 to Nuonuo, which sets the 1.01
	// given without tax aside: a computed_amount warning a line.
	req := schematest.IssueRequest(nuonuoSeller, "WARNED-1", func(o *schemas.Order) {
		l := o.InvoiceDetail[0]
		l.Price, l.TaxIncludedAmount, l.TaxExcludedAmount, l.Tax = schemas.ParseAmount("1.06"), schemas.Amount{}, schemas.ParseAmount("1.01"), schemas.ParseAmount("0.06")
		o.InvoiceDetail = slices.Repeat([]schemas.InvoiceLine{l}, 2000)
	})
	if _, errOut, code := c.cli(t, "publish", writeFile(t, "w.json", req)); code != exitOK {
		t.Fatalf("publish: exit %d\n%s", code, errOut)
	}
	res := c.waitStatus(t, nuonuoSeller, "WARNED-1", schemas.StatusIssued, 60*time.Second)
	listed := len(res.Warnings) - 1 // the record's list ends with the entry counting the rest
	if listed <= maxPrintedWarnings || res.Warnings[listed].Rule != pipeline.RuleMoreViolations {
		t.Fatalf("the result lists %d warnings, the last %+v: want more than %d, cut short", len(res.Warnings), res.Warnings[len(res.Warnings)-1], maxPrintedWarnings)
	}
	out, errOut, code := c.cli(t, "status", nuonuoSeller, "WARNED-1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var warned []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "warning ") {
			warned = append(warned, line)
		}
	}
	if len(warned) != maxPrintedWarnings {
		t.Fatalf("%d warning lines, want %d:\n%.3000s", len(warned), maxPrintedWarnings, out)
	}
	want := fmt.Sprintf("%d more warnings not shown (%d listed in the record; it says: %s)", listed-maxPrintedWarnings, listed, res.Warnings[listed].Message)
	if !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%.3000s", want, out)
	}
}
