package jumdata_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// confirms counts the red-confirmation/confirm calls the client made since
// the calls were last read.
func (e *env) confirms() int {
	n := 0
	for _, c := range e.obs.Calls() {
		if strings.HasPrefix(c, "red-confirmation/confirm ") {
			n++
		}
	}
	return n
}

// pollRed queries the red form once, as the pipeline would, and keeps the
// references the answer adds.
func (e *env) pollRed(call *providers.Call) providers.Outcome {
	e.tb.Helper()
	out := e.client.Query(e.tb.Context(), call)
	if out.Refs.ConfirmedForm != "" {
		call.Refs.ConfirmedForm = out.Refs.ConfirmedForm
	}
	return out
}

// A form the tax bureau does not issue at once waits for the seller's
// confirmation (seed 004 §5: "如果未直接开具,则需要使用确认单uuid开具红票"):
// once it has waited RedConfirmAfter, the client sends
// red-confirmation/confirm, once, and the next poll finds the red invoice.
// Without it the form answered 202 until the pipeline gave it up.
func TestRedFormAwaitingTheSellerIsConfirmed(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller}}, nil)
	call := e.acceptedRedForm("ORD-SC1", "SC-1")
	uuid := call.Refs.BillNo

	// Before RedConfirmAfter: polled, not confirmed.
	out := e.pollRed(call)
	wantClass(t, "early poll", out, providers.Accepted, "202")
	if n := e.confirms(); !out.AwaitingParty || n != 0 {
		t.Fatalf("early poll: awaiting %v, %d confirmations", out.AwaitingParty, n)
	}

	e.clock.Advance(jumdata.DefaultRedConfirmAfter)
	out = e.pollRed(call)
	wantClass(t, "poll after RedConfirmAfter", out, providers.Accepted, "200")
	if out.Refs.ConfirmedForm != uuid || out.Refs.BillNo != uuid || out.AwaitingParty || out.RetryAfter <= 0 {
		t.Fatalf("confirmation's outcome: refs %+v awaiting %v retry after %v", out.Refs, out.AwaitingParty, out.RetryAfter)
	}
	if n := e.confirms(); n != 1 {
		t.Fatalf("%d confirmations, want 1", n)
	}

	out = e.pollRed(call)
	wantClass(t, "poll after the confirmation", out, providers.Issued, "200")
	if out.Invoices[0].TotalAmount.String() != "-1123.00" || out.Invoices[0].SerialNo != uuid {
		t.Fatalf("red invoice %+v", out.Invoices[0])
	}
	if n := e.confirms(); n != 0 {
		t.Fatalf("%d confirmations more after the confirmation, want none", n)
	}
	e.noDuplicates()
}

// A form that waits for the buyer has the seller's confirmation refused:
// the refusal is kept (never sent again for the form) and the form is
// polled as waiting for the buyer until the buyer agrees.
func TestRedFormAwaitingTheBuyerIsConfirmedOnce(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitBuyer, RedPendingPolls: 4}}, nil)
	call := e.acceptedRedForm("ORD-BC1", "BC-1")
	uuid := call.Refs.BillNo
	e.clock.Advance(2 * jumdata.DefaultRedConfirmAfter)

	out := e.pollRed(call)
	wantClass(t, "first poll", out, providers.Accepted, "202")
	if out.Refs.ConfirmedForm != uuid || !out.AwaitingParty || !strings.Contains(out.Message, "该红字确认单需购买方确认") ||
		out.RedConfirm == nil || out.RedConfirm.Message != out.Message {
		t.Fatalf("refused confirmation: refs %+v awaiting %v message %q state %+v", out.Refs, out.AwaitingParty, out.Message, out.RedConfirm)
	}
	confirmed := e.confirms()
	for i := range 5 {
		out = e.pollRed(call)
		if out.Class == providers.Issued {
			break
		}
		wantClass(t, "poll", out, providers.Accepted, "202")
		if i == 4 {
			t.Fatal("the buyer never agreed")
		}
	}
	wantClass(t, "last poll", out, providers.Issued, "200")
	if confirmed += e.confirms(); confirmed != 1 {
		t.Fatalf("%d confirmations, want 1", confirmed)
	}
}

// A confirmation whose answer says nothing of the form (HTTP 503 here) is
// a Retry that does not mark the form: the next poll sends it again.
func TestRedConfirmationTransientFailureIsSentAgain(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller}}, nil)
	call := e.acceptedRedForm("ORD-TC1", "TC-1")
	e.clock.Advance(jumdata.DefaultRedConfirmAfter)
	e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-confirmation/confirm", HTTPStatus: 503}}})

	out := e.pollRed(call)
	wantClass(t, "confirmation refused with 503", out, providers.Retry, "http_503")
	if out.Refs.ConfirmedForm != "" || out.Refs.BillNo != call.Refs.BillNo || !strings.HasPrefix(out.Message, "red-confirmation/confirm: ") {
		t.Fatalf("transient failure: refs %+v message %q", out.Refs, out.Message)
	}
	confirmed := e.confirms()
	out = e.pollRed(call)
	wantClass(t, "confirmation sent again", out, providers.Accepted, "200")
	out = e.pollRed(call)
	wantClass(t, "after the confirmation", out, providers.Issued, "200")
	if confirmed += e.confirms(); confirmed != 2 {
		t.Fatalf("%d confirmations, want 2", confirmed)
	}
}

// A corrected request's look at its earlier request's form (Call.Earlier),
// a request the pipeline only finishes (Call.LookOnly) and a client
// configured never to confirm leave the form unconfirmed.
func TestRedFormNotConfirmed(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(*jumdata.Config)
		setup func(*providers.Call)
	}{
		{name: "earlier request's form", setup: func(c *providers.Call) { c.Earlier = true }},
		{name: "look only", setup: func(c *providers.Call) { c.LookOnly = true }},
		{name: "RedConfirmAfter negative", edit: func(c *jumdata.Config) { c.RedConfirmAfter = -1 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller}}, tt.edit)
			call := e.acceptedRedForm("ORD-NC1", "NC-1")
			if tt.setup != nil {
				tt.setup(call)
			}
			e.clock.Advance(time.Hour)
			for range 3 {
				out := e.pollRed(call)
				wantClass(t, "poll", out, providers.Accepted, "202")
			}
			if got := e.obs.Calls(); slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, "red-confirmation/confirm") }) {
				t.Fatalf("confirmed: %v", got)
			}
		})
	}
}

// A confirmation answered with a code the table does not list is a
// refusal, as confirmRed documents: the form is marked and polled as
// waiting, not answered Retry (which counts against the delivery limit
// while the form may wait for the buyer for days) with the confirmation
// sent again at every poll.
func TestRedConfirmationUnknownCodeIsARefusal(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitBuyer, RedPendingPolls: 4}}, nil)
	call := e.acceptedRedForm("ORD-UC1", "UC-1")
	uuid := call.Refs.BillNo
	e.clock.Advance(jumdata.DefaultRedConfirmAfter)
	e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-confirmation/confirm", Code: "410", Message: "确认单状态不允许确认", Times: 10}}})

	out := e.pollRed(call)
	wantClass(t, "poll with the confirmation refused", out, providers.Accepted, "202")
	if out.Refs.ConfirmedForm != uuid || out.Refs.BillNo != uuid || !out.AwaitingParty || !strings.Contains(out.Message, "确认单状态不允许确认") {
		t.Fatalf("refused confirmation: refs %+v awaiting %v message %q", out.Refs, out.AwaitingParty, out.Message)
	}
	confirmed := e.confirms()
	for range 3 {
		out = e.pollRed(call)
		wantClass(t, "later poll", out, providers.Accepted, "202")
	}
	if confirmed += e.confirms(); confirmed != 1 {
		t.Fatalf("%d confirmations, want 1", confirmed)
	}
}

// A corrected request's look at its earlier request's form
// (Call.Earlier) answers the earlier request's red invoice as jumdata
// gives it: the amounts jumdata leaves out are not filled in from the
// corrected request's reversal lines, nor is the form given the corrected
// request's billId. The pipeline saves the answer as the earlier
// request's record, whose replayed result the downstream team reads.
func TestRedQueryEarlierFormIsNotTheCorrectedRequests(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1}}, nil)
	// The earlier request reversed the whole blue invoice (1123.00).
	earlier := e.acceptedRedForm("ORD-EF1", "EF-1")
	uuid := earlier.Refs.BillNo
	// The corrected request reverses half of one line, under a billId of
	// its own.
	issuedAt, err := time.ParseInLocation("2006-01-02 15:04:05", earlier.Request.RedConfirm.BlueInvoiceTime, cst)
	if err != nil {
		t.Fatal(err)
	}
	corrected := redRequest(t, "EF-1", earlier.Request.RedConfirm.BlueNumber(), issuedAt, "2", partialDetail)
	corrected.RedConfirm.BillID = "EF-1-CORRECTED"
	call := &providers.Call{Request: corrected, Refs: earlier.Refs, SubmittedAt: earlier.SubmittedAt, Earlier: true, Accepted: true}

	var out providers.Outcome
	for range 3 {
		if out = e.client.Query(t.Context(), call); out.Class != providers.Accepted {
			break
		}
	}
	wantClass(t, "the earlier request's form", out, providers.Issued, "200")
	red := out.Invoices[0]
	if red.TotalAmount.String() != "-1123.00" || red.TaxAmount.String() == "-3.00" || red.ExTaxAmount.String() == "-50.00" {
		t.Errorf("the earlier request's red invoice has the corrected request's amounts: ex tax %q tax %q total %q",
			red.ExTaxAmount.String(), red.TaxAmount.String(), red.TotalAmount.String())
	}
	if out.Refs.BillID != "EF-1" || out.Refs.BillNo != uuid || out.RedConfirm == nil || out.RedConfirm.BillID != "EF-1" {
		t.Errorf("the earlier request's form is named refs %+v, state %+v; want billId EF-1", out.Refs, out.RedConfirm)
	}
	if n := e.confirms(); n != 0 {
		t.Fatalf("%d confirmations of the earlier request's form", n)
	}
}

// The confirmation endpoint not enabled (601) or disabled (604) for the
// account says nothing of the seller's other calls: the seller is not held
// (its blue invoices go on), and the form waits, the confirmation never
// sent again, with a message that says what a person has to do.
func TestRedConfirmationNotEnabledDoesNotHoldTheSeller(t *testing.T) {
	for _, code := range []string{"601", "604"} {
		t.Run(code, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller, RedPendingPolls: 4}}, nil)
			call := e.acceptedRedForm("ORD-NE"+code, "NE-"+code)
			uuid := call.Refs.BillNo
			e.clock.Advance(jumdata.DefaultRedConfirmAfter)
			e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-confirmation/confirm", Code: code, Message: "接口未开通", Times: 10}}})

			out := e.pollRed(call)
			wantClass(t, "poll with the confirmation not enabled", out, providers.Accepted, "202")
			if out.Refs.ConfirmedForm != uuid || !strings.Contains(out.Message, "not enabled for the account") {
				t.Fatalf("refs %+v message %q", out.Refs, out.Message)
			}
			confirmed := e.confirms()
			for range 3 {
				wantClass(t, "later poll", e.pollRed(call), providers.Accepted, "202")
			}
			if confirmed += e.confirms(); confirmed != 1 {
				t.Fatalf("%d confirmations, want 1", confirmed)
			}
		})
	}
}
