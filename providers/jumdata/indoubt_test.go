package jumdata_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// TestInDoubtBlue: the submit takes effect and its answer is lost. The
// client reports Unknown, and a Query (as the pipeline makes before any new
// submit) finds the one task without making a second invoice.
func TestInDoubtBlue(t *testing.T) {
	tests := []struct {
		name    string
		pending int
		later   time.Duration
		want    providers.Class
	}{
		{"issued at once", 0, time.Second, providers.Issued},
		{"still in progress", 3, time.Second, providers.Accepted},
		{"queried after the taskId's life", 3, 9 * time.Hour, providers.Issued},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: tt.pending}}, nil)
			call := &providers.Call{Request: issueRequest(t, "ORD-D1")}
			call.SubmittedAt = e.clock.Now() // the pipeline records the attempt before the call
			e.sb.SetFaults(sandbox.Faults{Drop: 1})
			wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
			if o := e.orderStats("ORD-D1"); o.Submissions != 1 {
				t.Fatalf("the dropped submit did not take effect: %+v", o)
			}

			e.sb.SetFaults(sandbox.Faults{})
			e.clock.Advance(tt.later)
			out := e.client.Query(t.Context(), call)
			wantClass(t, "query", out, tt.want, "")
			for range 10 {
				if out.Class == providers.Issued {
					break
				}
				out = e.client.Query(t.Context(), call)
			}
			wantClass(t, "final query", out, providers.Issued, "")
			if o := e.orderStats("ORD-D1"); o.Submissions != 1 || o.Issuances != 1 || o.Invoices != 1 {
				t.Fatalf("sandbox stats %+v: want one submission and one issuance", o)
			}
			e.noDuplicates()
		})
	}
}

// TestInDoubtRed: the red submit takes effect and its answer is lost, so no
// uuid is known. Query finds the red invoice or the pending form; a second
// Submit that jumdata refuses with 399 reconciles the same way.
func TestInDoubtRed(t *testing.T) {
	tests := []struct {
		name     string
		pending  int
		resubmit bool // Submit again (in doubt) instead of Query
		want     providers.Class
	}{
		{"issued at once, queried", 0, false, providers.Issued},
		{"form pending, queried", 3, false, providers.Accepted},
		{"issued at once, submitted again", 0, true, providers.Issued},
		{"form pending, submitted again", 3, true, providers.Accepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: tt.pending}}, nil)
			blue := e.mustIssue("ORD-DR")
			e.clock.Advance(time.Hour)
			call := &providers.Call{Request: redRequest(t, "RC-D1", blue.InvoiceNo, blue.IssuedAt, "2", ""), SubmittedAt: e.clock.Now()}
			e.sb.SetFaults(sandbox.Faults{Drop: 1})
			wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
			e.sb.SetFaults(sandbox.Faults{})
			e.clock.Advance(time.Second)

			var out providers.Outcome
			if tt.resubmit {
				call.Resubmission = true // as the pipeline says after a Query's NotFound
				out = e.client.Submit(t.Context(), call)
			} else {
				out = e.client.Query(t.Context(), call)
			}
			wantClass(t, "after the doubt", out, tt.want, "")
			if tt.want == providers.Accepted && len(out.Refs.BillNo) != 32 {
				t.Fatalf("the pending form's uuid was not recovered: %+v", out.Refs)
			}
			call.Refs = out.Refs
			for range 10 {
				if out.Class == providers.Issued {
					break
				}
				out = e.client.Query(t.Context(), call)
			}
			wantClass(t, "final", out, providers.Issued, "")
			if red := out.Invoices[0]; red.TotalAmount.String() != "-1123.00" || red.InvoiceNo == blue.InvoiceNo {
				t.Fatalf("red invoice %+v", red)
			}
			if o := e.orderStats("red:" + blue.InvoiceNo); o.Issuances != 1 {
				t.Fatalf("red stats %+v", o)
			}
			e.noDuplicates()
		})
	}
	t.Run("somebody else's earlier reversal is not ours", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		blue := e.mustIssue("ORD-DR2")
		other := e.client.Submit(t.Context(), &providers.Call{Request: redRequest(t, "RC-OTHER", blue.InvoiceNo, blue.IssuedAt, "1", "")})
		wantClass(t, "the other reversal", other, providers.Issued, "200")

		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: redRequest(t, "RC-D2", blue.InvoiceNo, blue.IssuedAt, "2", ""), SubmittedAt: e.clock.Now()}
		wantClass(t, "query", e.client.Query(t.Context(), call), providers.NotFound, "not_found")
		out := e.client.Submit(t.Context(), call)
		wantClass(t, "submit", out, providers.Rejected, "399")
	})
	// A first submission carries SubmittedAt already (the pipeline dates it
	// before the call): its 399 is its own, whatever another order of the
	// same blue invoice did a few minutes before.
	for _, pending := range []int{0, 3} {
		t.Run(fmt.Sprintf("a first submission's 399 is its own, the other's form pending %d polls", pending), func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: pending}}, nil)
			blue := e.mustIssue("ORD-DR3")
			other := e.client.Submit(t.Context(), &providers.Call{Request: redRequest(t, "RC-OTHER", blue.InvoiceNo, blue.IssuedAt, "1", ""), SubmittedAt: e.clock.Now()})
			if other.Class != providers.Issued && other.Class != providers.Accepted {
				t.Fatalf("the other reversal: %s %q", other.Class, other.Message)
			}
			e.clock.Advance(5 * time.Minute)
			call := &providers.Call{Request: redRequest(t, "RC-D3", blue.InvoiceNo, blue.IssuedAt, "2", ""), SubmittedAt: e.clock.Now()}
			out := e.client.Submit(t.Context(), call)
			wantClass(t, "first submit", out, providers.Rejected, "399")
			if len(out.Invoices) != 0 || out.Refs.BillNo != "" {
				t.Fatalf("the first submission took the other order's reversal: %+v %+v", out.Invoices, out.Refs)
			}
		})
	}
}
