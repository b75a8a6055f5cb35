package jumdata_test

import (
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// smallDetail reverses a fifth of the service line (line 3): −20.00 and
// −1.20, another return than partialDetail's.
const smallDetail = `[{"blueDetailIndex":"3","goodsName":"技术服务费","num":"-0.6","taxExcludedPrice":"33.33333333",
	"taxExcludedAmount":"-20.00","taxAmount":"-1.20","taxRate":"0.06","goodsCode":"3040201990000000000"}]`

// otherPartial submits another order's partial reversal (partialDetail) of
// the blue invoice, which jumdata takes as a pending form, and returns the
// form's uuid.
func (e *env) otherPartial(orderNo, blueNo string, issuedAt time.Time) string {
	e.tb.Helper()
	out := e.client.Submit(e.tb.Context(), &providers.Call{Request: redRequest(e.tb, orderNo, blueNo, issuedAt, "2", partialDetail), SubmittedAt: e.clock.Now()})
	wantClass(e.tb, "the other order's reversal", out, providers.Accepted, "200")
	if len(out.Refs.BillNo) != 32 {
		e.tb.Fatalf("the other order's form has no uuid: %+v", out.Refs)
	}
	return out.Refs.BillNo
}

// TestRedSearchOtherOrdersForm: two partial reversals of one blue invoice
// (two returns). The blue invoice names only its latest confirmation form,
// which may be the other order's; a search without our form's uuid must not
// take that form, or its red invoice, for ours.
func TestRedSearchOtherOrdersForm(t *testing.T) {
	t.Run("the other order's pending form, ours never sent", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RS1")
		theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)

		// Our submission never reached jumdata (its answer was lost on the
		// way there): the pipeline queries before anything else.
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		out := e.client.Query(t.Context(), call)
		if out.Refs.BillNo == theirs {
			t.Fatalf("the other order's form was taken for ours: %s %q", out.Class, out.Message)
		}
		wantClass(t, "query", out, providers.NotFound, "not_found")

		// So the pipeline submits, and our own form is made.
		call.Resubmission = true
		out = e.client.Submit(t.Context(), call)
		wantClass(t, "submit", out, providers.Accepted, "200")
		if out.Refs.BillNo == "" || out.Refs.BillNo == theirs {
			t.Fatalf("our form %q, theirs %q", out.Refs.BillNo, theirs)
		}
	})
	t.Run("the other order's form issues on our search", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RS2")
		theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)
		// The other order polls its form once: it is still pending, and
		// issues on the next red-invoice/result. (Its seller's
		// confirmation was sent before: the form waits for the buyer.)
		other := &providers.Call{Request: redRequest(t, "RC-THEIRS", blue.InvoiceNo, blue.IssuedAt, "2", partialDetail),
			Refs: schemas.ProviderRefs{BillNo: theirs, ConfirmedForm: theirs}, SubmittedAt: e.clock.Now().Add(-time.Hour), Accepted: true}
		wantClass(t, "the other order's poll", e.client.Query(t.Context(), other), providers.Accepted, "202")

		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		out := e.client.Query(t.Context(), call)
		if out.Class == providers.Issued {
			t.Fatalf("the other order's red invoice %s (%s) was taken for ours", out.Invoices[0].InvoiceNo, out.Invoices[0].TotalAmount)
		}
		wantClass(t, "query", out, providers.NotFound, "not_found")
	})
	t.Run("the other order's older form with our amounts", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RS3")
		theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)
		// The same return again, by another order, made an hour after the
		// other's form: the amounts cannot tell them apart, the time can.
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", partialDetail), SubmittedAt: e.clock.Now()}
		out := e.client.Query(t.Context(), call)
		if out.Refs.BillNo == theirs {
			t.Fatalf("the other order's older form was taken for ours: %s %q", out.Class, out.Message)
		}
		wantClass(t, "query", out, providers.NotFound, "not_found")
	})
	t.Run("our own form after the other's is still ours", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RS4")
		theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		e.sb.SetFaults(sandbox.Faults{Drop: 1})
		wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
		e.sb.SetFaults(sandbox.Faults{})
		e.clock.Advance(time.Second)
		out := e.client.Query(t.Context(), call)
		wantClass(t, "query", out, providers.Accepted, "202")
		if len(out.Refs.BillNo) != 32 || out.Refs.BillNo == theirs {
			t.Fatalf("our form %q, theirs %q", out.Refs.BillNo, theirs)
		}
	})
	t.Run("the other order's form made after our submission", func(t *testing.T) {
		for _, accepted := range []bool{false, true} {
			t.Run(map[bool]string{false: "in doubt", true: "accepted"}[accepted], func(t *testing.T) {
				e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
				blue := e.mustIssue("ORD-RS6")
				e.clock.Advance(time.Hour)
				// Our submission takes effect and its answer is lost; the
				// other order's form is made a minute later, so the blue
				// invoice names it and ours is hidden behind it. Accepted
				// stands for jumdata's data {}: taken, without a uuid.
				call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now(), Accepted: accepted}
				e.sb.SetFaults(sandbox.Faults{Drop: 1})
				wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
				e.sb.SetFaults(sandbox.Faults{})
				e.clock.Advance(time.Minute)
				theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)

				out := e.client.Query(t.Context(), call)
				if out.Refs.BillNo == theirs {
					t.Fatalf("the other order's form was taken for ours: %s %q", out.Class, out.Message)
				}
				if !accepted {
					// Ours may or may not have been made: neither taken
					// nor submitted again (a second reversal).
					wantClass(t, "query", out, providers.ActionRequired, "ambiguous")
					return
				}
				// Ours was taken: it waits, as the pending forms do, and
				// every Query searches again.
				wantClass(t, "query", out, providers.Accepted, "202")
				if out.Refs.BillNo != "" || !out.AwaitingParty {
					t.Fatalf("refs %+v, awaiting the buyer %v", out.Refs, out.AwaitingParty)
				}
				// Once the buyer confirms, our own red invoice is listed.
				e.clock.Advance(72 * time.Hour)
				out = e.client.Query(t.Context(), call)
				wantClass(t, "query after the buyer's confirmation", out, providers.Issued, "200")
				if red := out.Invoices[0]; red.TotalAmount.String() != "-21.20" {
					t.Fatalf("red invoice %+v, want ours (-21.20)", red)
				}
			})
		}
	})
	t.Run("our own form issues on our search, without its detail", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RS7")
		e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		e.sb.SetFaults(sandbox.Faults{Drop: 1})
		wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
		// red-confirmation/detail answers as the document's example, without
		// data; our form's first red-invoice/result answers 202.
		// Nothing ties the form to the request nor rules it out: it is
		// taken as ours, as before the detail was read, and it is.
		noDetail := sandbox.ScriptedAnswer{Provider: "jumdata", Method: "red-confirmation/detail", Code: "200", Message: "成功", Times: 2}
		e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{noDetail}})
		out := e.client.Query(t.Context(), call)
		wantClass(t, "query, pending", out, providers.Accepted, "202")
		if len(out.Refs.BillNo) != 32 {
			t.Fatalf("our form's uuid %+v", out.Refs)
		}
		// The next issues it: issued since our submission, with our jshj.
		call.Refs = out.Refs
		out = e.client.Query(t.Context(), call)
		wantClass(t, "query, issued", out, providers.Issued, "200")
		if red := out.Invoices[0]; red.TotalAmount.String() != "-21.20" {
			t.Fatalf("red invoice %+v, want ours (-21.20)", red)
		}
	})
	// red-confirmation/detail answers as the document's example does,
	// without data, or is not enabled for the account: nothing ties the
	// pending form to this request nor rules it out, and it is taken as
	// the request's, as before the detail was read. A passing failure is
	// asked again.
	for _, tt := range []struct {
		code        string
		class       providers.Class
		answer, msg string
	}{
		{"200", providers.Accepted, "202", "成功"},
		{"601", providers.Accepted, "202", ""},
		{"501", providers.Retry, "501", ""},
	} {
		t.Run("a form the search cannot tell, detail "+tt.code, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
			blue := e.mustIssue("ORD-RS5")
			e.clock.Advance(time.Hour)
			call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
			e.sb.SetFaults(sandbox.Faults{Drop: 1})
			wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
			e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-confirmation/detail", Code: tt.code, Message: tt.msg}}})
			out := e.client.Query(t.Context(), call)
			wantClass(t, "query", out, tt.class, tt.answer)
			if taken := out.Refs.BillNo != ""; taken != (tt.class == providers.Accepted) {
				t.Fatalf("refs %+v: want the form taken %v", out.Refs, !taken)
			}
		})
	}
}

// TestRedSearchRefusedForm: the blue invoice's latest form was refused (or
// revoked, or expired). Somebody else's, or one made before our
// submission, says nothing of ours: NotFound, so that the pipeline submits;
// only our own form's refusal is our failure.
func TestRedSearchRefusedForm(t *testing.T) {
	refused := sandbox.ScriptedAnswer{Provider: "jumdata", Method: "red-invoice/result", Code: "399", Message: "红字确认单已作废,不能开具红字发票"}
	t.Run("an older form of another order", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RF1")
		e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{refused}})
		wantClass(t, "query", e.client.Query(t.Context(), call), providers.NotFound, "not_found")
	})
	for _, accepted := range []bool{false, true} {
		t.Run(map[bool]string{false: "a form the search cannot tell, in doubt", true: "a form the search cannot tell, accepted"}[accepted], func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
			blue := e.mustIssue("ORD-RF3")
			e.clock.Advance(time.Hour)
			call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now(), Accepted: accepted}
			e.sb.SetFaults(sandbox.Faults{Drop: 1})
			wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
			e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{refused,
				{Provider: "jumdata", Method: "red-confirmation/detail", Code: "200", Message: "成功"}}})
			// Nothing ties the refused form to the request nor rules it
			// out: its refusal is taken as ours, as before the detail was
			// read.
			out := e.client.Query(t.Context(), call)
			wantClass(t, "query", out, providers.Rejected, "399")
		})
	}
	t.Run("our own form", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
		blue := e.mustIssue("ORD-RF2")
		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
		e.sb.SetFaults(sandbox.Faults{Drop: 1})
		wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Unknown, "transport")
		e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{refused}})
		out := e.client.Query(t.Context(), call)
		wantClass(t, "query", out, providers.Rejected, "399")
		if len(out.Refs.BillNo) != 32 {
			t.Fatalf("our refused form's uuid %+v", out.Refs)
		}
	})
}

// TestRedSearchFailedReadTakesNoForm: the search's red-invoice/result on
// the blue invoice's latest form fails (a passing 501, a login that
// expired, a 200 without the red invoice). The answer must not carry the form's uuid, which the pipeline
// keeps as the request's: the next Query would then poll, and confirm,
// another order's form as this request's, without the search that tells
// whose it is.
func TestRedSearchFailedReadTakesNoForm(t *testing.T) {
	for _, tt := range []struct {
		code, answer string
		class        providers.Class
	}{
		{"501", "501", providers.Retry},
		{"302", "302", providers.ActionRequired},
		{"200", "unreadable", providers.Retry},
	} {
		t.Run(tt.code, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}}, nil)
			blue := e.mustIssue("ORD-RS8")
			theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
			e.clock.Advance(time.Hour)
			// Our submission never reached jumdata.
			call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", smallDetail), SubmittedAt: e.clock.Now()}
			e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-invoice/result", Code: tt.code}}})
			out := e.client.Query(t.Context(), call)
			wantClass(t, "query", out, tt.class, tt.answer)
			if out.Refs.BillNo != "" || (out.RedConfirm != nil && out.RedConfirm.BillNo != "") {
				t.Fatalf("the failed read of the blue invoice's latest form (theirs %s) answered refs %+v, form %+v", theirs, out.Refs, out.RedConfirm)
			}

			// The pipeline keeps the answer's references; the next Query
			// still searches, and finds the other order's older form not
			// ours.
			call.Refs = out.Refs
			e.clock.Advance(jumdata.DefaultRedConfirmAfter)
			out = e.client.Query(t.Context(), call)
			wantClass(t, "next query", out, providers.NotFound, "not_found")
			if n := e.confirms(); n != 0 {
				t.Fatalf("%d confirmations of the other order's form", n)
			}
		})
	}
}

// TestRedSearchFullReversalTakesNoPartialRedInvoice: a full reversal whose
// submission never reached jumdata searches red-invoice/query, which dates
// a red invoice by its issue, not by when its form was made. Another
// order's partial reversal, its form made before our submission and issued
// after it, is listed there; its amounts are not the blue invoice's, so it
// is not a full reversal, and never ours.
func TestRedSearchFullReversalTakesNoPartialRedInvoice(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1, RedSettleAfter: 72 * time.Hour}}, nil)
	blue := e.mustIssue("ORD-RSF")
	theirs := e.otherPartial("RC-THEIRS", blue.InvoiceNo, blue.IssuedAt)
	e.clock.Advance(time.Hour)
	call := &providers.Call{Request: redRequest(t, "RC-OURS", blue.InvoiceNo, blue.IssuedAt, "2", ""), SubmittedAt: e.clock.Now()}
	e.clock.Advance(time.Minute)
	// The other order's form issues now, after our submission: its polls.
	other := &providers.Call{Request: redRequest(t, "RC-THEIRS", blue.InvoiceNo, blue.IssuedAt, "2", partialDetail),
		Refs: schemas.ProviderRefs{BillNo: theirs, ConfirmedForm: theirs}, SubmittedAt: e.clock.Now().Add(-time.Hour), Accepted: true}
	wantClass(t, "the other order's poll", e.client.Query(t.Context(), other), providers.Accepted, "202")
	wantClass(t, "the other order's poll", e.client.Query(t.Context(), other), providers.Issued, "200")
	e.clock.Advance(time.Minute)

	out := e.client.Query(t.Context(), call)
	if out.Class == providers.Issued {
		t.Fatalf("the other order's partial red invoice %s (%s) was taken for our full reversal", out.Invoices[0].InvoiceNo, out.Invoices[0].TotalAmount)
	}
	wantClass(t, "query", out, providers.NotFound, "not_found")

	// Our own full reversal, once made and issued, is still found.
	out = e.client.Submit(t.Context(), call)
	if out.Class == providers.Accepted {
		call.Refs = out.Refs
		for i := 0; i < 3 && out.Class == providers.Accepted; i++ {
			e.clock.Advance(time.Minute)
			out = e.client.Query(t.Context(), call)
		}
	}
	wantClass(t, "our reversal", out, providers.Issued, "200")
	full := out.Invoices[0]
	call.Refs = schemas.ProviderRefs{} // lost: searched again
	e.clock.Advance(time.Minute)
	out = e.client.Query(t.Context(), call)
	wantClass(t, "the search for our issued reversal", out, providers.Issued, "200")
	if got := out.Invoices[0]; got.InvoiceNo != full.InvoiceNo {
		t.Fatalf("found %s (%s), want ours %s (%s)", got.InvoiceNo, got.TotalAmount, full.InvoiceNo, full.TotalAmount)
	}
}
