package jumdata

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// redTask is what a red-invoice/submit sends, computed once per call.
type redTask struct {
	rc      *schemas.RedConfirm
	lzfphm  string
	lzkprq  string
	partial bool
	je, se  decimal.Decimal // the partial lines' totals (negative)
	params  url.Values
}

// fullyDigitalLines are the blue invoice lines jumdata can reverse: fully
// digital invoices, whose 20-digit number is all red-invoice/submit takes.
var fullyDigitalLines = map[string]bool{"bs": true, "pc": true, "es": true, "ec": true}

// newRedTask maps a red_confirm request to red-invoice/submit's parameters.
func newRedTask(req *schemas.Request) (*redTask, error) {
	rc := req.RedConfirm
	switch {
	case rc == nil:
		return nil, invalidField("redConfirm", "is required for kind red_confirm")
	case !fullyDigitalLines[rc.BlueInvoiceLine]:
		return nil, unsupportedField("redConfirm.blueInvoiceLine", "%q: jumdata reverses fully digital invoices only (bs, pc, es, ec)", rc.BlueInvoiceLine)
	case rc.BlueNumber() == "":
		return nil, invalidField("redConfirm.blueElecInvoiceNumber", "is required: the number of the blue invoice being reversed (lzfphm)")
	case rc.BlueInvoiceTime == "":
		return nil, invalidField("redConfirm.blueInvoiceTime", "is required for jumdata (lzkprq): the blue invoice's issue time, yyyy-MM-dd HH:mm:ss")
	case parseTime(rc.BlueInvoiceTime).IsZero():
		return nil, invalidField("redConfirm.blueInvoiceTime", "%q is not yyyy-MM-dd HH:mm:ss", rc.BlueInvoiceTime)
	}
	chyydm, ok := RedReasonCode(rc.RedReason)
	if !ok {
		return nil, invalidField("redConfirm.redReason", "%q is not a red reason (1 销货退回, 2 开票有误, 3 服务中止, 4 销售折让)", rc.RedReason)
	}
	lines, je, se, err := RedLines(rc.Detail)
	if err != nil {
		return nil, err
	}
	hzmx, err := EncodeRedLines(lines)
	if err != nil {
		return nil, err
	}
	t := &redTask{rc: rc, lzfphm: rc.BlueNumber(), lzkprq: rc.BlueInvoiceTime, partial: hzmx != "", je: je, se: se}
	t.params = url.Values{"lzfphm": {t.lzfphm}, "lzkprq": {t.lzkprq}, "chyydm": {chyydm}}
	if t.partial {
		t.params.Set("hzmx", hzmx)
	}
	return t, nil
}

// state is the form's state for an outcome.
func (t *redTask) state(uuid, msg string) *schemas.RedConfirmState {
	return &schemas.RedConfirmState{BillID: t.rc.BillID, BillNo: uuid, Message: msg}
}

// refs are the outcome's references.
func (t *redTask) refs(uuid string) schemas.ProviderRefs {
	return schemas.ProviderRefs{BillID: t.rc.BillID, BillNo: uuid}
}

func (c *Client) submitRed(ctx context.Context, call *providers.Call) providers.Outcome {
	t, err := newRedTask(call.Request)
	if err != nil {
		return fieldOutcome(err, false)
	}
	r := c.post(ctx, epRedSubmit, t.params)
	switch {
	case r.is("200"):
		return c.redSubmitted(r, t)
	case r.is("202"):
		// In progress (seed 004's code table): the submission was taken.
		// A red submission has no key to repeat it by, and the Retry the
		// table gives a blue one (repeated under its taskId) would have
		// it submitted again once a search does not list it yet: a
		// partial reversal made twice. Accepted without a form uuid, as a
		// 200 with data {}: Query searches for it, and asks again while
		// it is not listed.
		return providers.Outcome{
			Class: providers.Accepted, Refs: t.refs(""), RedConfirm: t.state("", r.env.Msg),
			RetryAfter: c.cfg.PollAfter, Code: r.code,
			Message: strings.TrimSpace(r.env.Msg + " (red-invoice/submit in progress; the invoice will be found by red-invoice/query)"),
		}
	case r.is("399") && call.Resubmission:
		// A refusal after an earlier submission ("蓝票没有可红冲的金额,不可
		// 再次红冲!") may be our own earlier form or invoice: reconcile.
		// A first submission's refusal is the request's own: another
		// order's reversal of the same blue invoice is not ours to take.
		if out := c.searchRed(ctx, call, t); out.Class != providers.NotFound {
			return out
		}
	}
	out := c.fail(r, false)
	out.RedConfirm = t.state("", out.Message)
	return out
}

// redSubmitted reads a 200 red-invoice/submit. With the red invoice in data
// (fphm) it is Issued; with only a uuid (assumption: the form was made but
// the invoice is not issued yet) it is Accepted with Refs.BillNo = uuid;
// with neither (the document's example: data {}) it is Accepted without a
// reference, and Query finds the invoice by searching.
func (c *Client) redSubmitted(r reply, t *redTask) providers.Outcome {
	var d redResult
	if err := decodeData(r.env, &d); err != nil {
		return c.unreadable(r, false, err.Error())
	}
	uuid := string(d.UUID)
	if d.Fphm != "" {
		return c.redIssued(r.env.Msg, t, uuid, d)
	}
	msg := r.env.Msg
	if uuid == "" {
		msg = strings.TrimSpace(msg + " (no form uuid in the answer: the invoice will be found by red-invoice/query)")
	}
	return providers.Outcome{
		Class: providers.Accepted, Refs: t.refs(uuid), RedConfirm: t.state(uuid, r.env.Msg),
		RetryAfter: c.cfg.PollAfter, Code: r.code, Message: msg,
	}
}

// redIssued is the outcome of an issued red invoice described by d.
func (c *Client) redIssued(msg string, t *redTask, uuid string, d redResult) providers.Outcome {
	hjje, hjse := d.Hjje, d.Hjse
	if t.partial && !hjje.set && !hjse.set {
		hjje, hjse = amount{dec: t.je, set: true}, amount{dec: t.se, set: true}
	}
	jshj := d.Jshj
	if !jshj.set && hjje.set && hjse.set {
		jshj = amount{dec: hjje.dec.Add(hjse.dec), set: true}
	}
	inv := schemas.Invoice{
		SerialNo:         uuid,
		InvoiceNo:        string(d.Fphm),
		DigitalInvoiceNo: digital(string(d.Fphm)),
		IssuedAt:         parseTime(string(d.Kprq)),
		ExTaxAmount:      moneyAmount(hjje),
		TaxAmount:        moneyAmount(hjse),
		TotalAmount:      moneyAmount(jshj),
	}
	return providers.Outcome{
		Class: providers.Issued, Invoices: []schemas.Invoice{inv}, Refs: t.refs(uuid),
		RedConfirm: t.state(uuid, msg), Code: "200", Message: msg,
	}
}

// moneyAmount writes a listed amount with two decimals; unset stays unset.
func moneyAmount(a amount) schemas.Amount {
	if !a.set {
		return schemas.Amount{}
	}
	return schemas.AmountOf(a.dec, 2)
}

// queryRed asks red-invoice/result by the form's uuid, or searches when the
// uuid is not known (the submit's answer was lost, or carried none).
func (c *Client) queryRed(ctx context.Context, call *providers.Call) providers.Outcome {
	t, err := newRedTask(call.Request)
	if err != nil {
		return fieldOutcome(err, true)
	}
	if uuid := call.Refs.BillNo; uuid != "" {
		if call.Earlier {
			// The form is an earlier request's, whose content this
			// corrected request does not carry: its red invoice is
			// answered as jumdata gives it, without this request's hzmx
			// totals for the amounts jumdata leaves out, and under the
			// earlier request's billId. The pipeline saves the answer as
			// the earlier request's record.
			t = &redTask{rc: &schemas.RedConfirm{BillID: call.Refs.BillID}}
		}
		out := c.redResult(ctx, t, uuid)
		if c.mayConfirm(call, uuid, out) {
			return c.confirmRed(ctx, t, uuid, out)
		}
		return out
	}
	if call.SubmittedAt.IsZero() {
		return providers.Outcome{Class: providers.NotFound, Code: "not_submitted", Message: "the red confirmation was never submitted to jumdata"}
	}
	out := c.searchRed(ctx, call, t)
	if out.Class == providers.NotFound && call.Accepted {
		// jumdata accepted the submission without a form uuid (its
		// document's data {}), and its lists do not show the red invoice
		// yet, nor a form the search can tell is ours. A red submission
		// has no key to repeat it by: submitting again could reverse
		// twice. Ask again later.
		out.Class, out.Code, out.RetryAfter = providers.Retry, codeNotListed, c.cfg.PollAfter
		out.Message = "jumdata accepted the red invoice but does not list it yet: " + out.Message
	}
	return out
}

// mayConfirm reports whether the seller's confirmation is due for the form
// uuid, which red-invoice/result has just answered waiting: it was not sent
// for this form yet, the form was submitted Config.RedConfirmAfter ago or
// longer, and the call is the request's own (not a corrected request's look
// at an earlier one's form, Call.Earlier, which must not be issued, nor a
// request the pipeline only finishes without submitting, Call.LookOnly).
func (c *Client) mayConfirm(call *providers.Call, uuid string, waiting providers.Outcome) bool {
	return waiting.Class == providers.Accepted && waiting.AwaitingParty &&
		call.Refs.ConfirmedForm != uuid && !call.Earlier && !call.LookOnly &&
		c.cfg.RedConfirmAfter > 0 && !call.SubmittedAt.IsZero() &&
		c.cfg.Now().Sub(call.SubmittedAt) >= c.cfg.RedConfirmAfter
}

// confirmRed sends the seller's confirmation of the form uuid
// (red-confirmation/confirm, seed 004 §5.6: a form the tax bureau did not
// issue at once is issued with its uuid), once the form has waited
// Config.RedConfirmAfter; waiting is red-invoice/result's answer just
// before. A confirmation cannot issue a second red invoice: a form makes
// one, and confirming an issued form is refused.
//
//   - 200 or 202: the confirmation was taken. Accepted, polled again after
//     PollAfter; red-invoice/result answers the invoice once it is issued.
//   - A refusal (399, 400, an unknown code) or no such endpoint (404):
//     the form waits for the buyer (or is issued or void, which the next
//     red-invoice/result says). waiting, with jumdata's reason added. The
//     document gives §5.6 to 5.9 one URL, so a refusal may also be this
//     client calling the wrong endpoint: the form is polled as it was
//     before the confirmation existed, never held for it.
//
// Either way Refs.ConfirmedForm records the form, so that the
// confirmation is not sent again. An answer that says nothing of the form
// (a transient failure, a lost answer, a login or face scan a person must
// renew) is returned as it is, and the next poll sends it again.
func (c *Client) confirmRed(ctx context.Context, t *redTask, uuid string, waiting providers.Outcome) providers.Outcome {
	r := c.post(ctx, epRedConfirm, url.Values{"uuid": {uuid}, "xsfnsrsbh": {c.cfg.SellerTaxNum}})
	if r.is("200") || r.is("202") {
		refs := t.refs(uuid)
		refs.ConfirmedForm = uuid
		msg := strings.TrimSpace(r.env.Msg + " (the seller's confirmation of red confirmation form " + uuid + " was sent: waiting for the red invoice)")
		return providers.Outcome{
			Class: providers.Accepted, Refs: refs, RedConfirm: t.state(uuid, msg),
			RetryAfter: c.cfg.PollAfter, Code: r.code, Message: msg,
		}
	}
	out := c.fail(r, true)
	// A code the table does not list is Retry on a Query, so that a poll
	// never refuses an order on it; to the confirmation it is jumdata's
	// answer about the form, a refusal like 399, and sending it again at
	// every poll, each a Retry counted against the delivery limit, would
	// give up a form that waits for the buyer.
	//
	// 601 and 604 (the endpoint not enabled, or disabled, for the
	// account) say the same of every form, and nothing of the seller's
	// other calls: holding the seller for them would stop its blue
	// invoices too. The form waits, confirmed by a person in the tax
	// bureau's own system or by the buyer, and the confirmation is not
	// sent again.
	_, listed := table[r.row]
	notEnabled := r.row == "601" || r.row == "604"
	switch {
	case out.Class == providers.Retry && listed,
		out.Class == providers.ActionRequired && r.row != "404" && r.row != rowHTTPOther && !notEnabled:
		out.Refs, out.RedConfirm = t.refs(uuid), t.state(uuid, out.Message)
		out.Message = "red-confirmation/confirm: " + out.Message
		return out
	}
	waiting.Refs.ConfirmedForm = uuid
	why := fmt.Sprintf("the seller's confirmation was refused (%s %s): the form waits for the buyer", r.code, out.Message)
	if notEnabled {
		why = fmt.Sprintf("the seller's confirmation could not be sent (%s %s: red-confirmation/confirm is not enabled for the account): the form waits for the seller's confirmation in the tax bureau's system, or for the buyer", r.code, out.Message)
	}
	restate(&waiting, waiting.Message+"; "+why)
	return waiting
}

// restate gives out, and the form's state it carries, the message msg.
func restate(out *providers.Outcome, msg string) {
	out.Message = msg
	if out.RedConfirm != nil {
		rc := *out.RedConfirm
		rc.Message = msg
		out.RedConfirm = &rc
	}
}

// codeNotListed is the code of the Retry a Query answers for an accepted
// red submission that jumdata's lists do not show yet.
const codeNotListed = "not_listed"

// redResult asks red-invoice/result: 200 is Issued, 202 Accepted, the rest
// goes through the table.
func (c *Client) redResult(ctx context.Context, t *redTask, uuid string) providers.Outcome {
	out, _ := c.readForm(ctx, t, uuid)
	return out
}

// readForm is redResult, with the data of a 200 as jumdata gave it (the
// outcome's amounts may be the request's, where jumdata lists none).
func (c *Client) readForm(ctx context.Context, t *redTask, uuid string) (providers.Outcome, redResult) {
	r := c.post(ctx, epRedResult, url.Values{"uuid": {uuid}, "xsfnsrsbh": {c.cfg.SellerTaxNum}})
	if !r.is("200") {
		out := c.fail(r, true)
		out.Refs, out.RedConfirm = t.refs(uuid), t.state(uuid, out.Message)
		// A form still in progress waits for the buyer's confirmation,
		// as long as the tax bureau gives it.
		out.AwaitingParty = r.is("202")
		return out, redResult{}
	}
	var d redResult
	if err := decodeData(r.env, &d); err != nil || d.Fphm == "" {
		out := c.unreadable(r, true, "200 without the red invoice's number (fphm)")
		out.Refs = t.refs(uuid)
		return out, redResult{}
	}
	return c.redIssued(r.env.Msg, t, uuid, d), d
}

// searchRed looks for our red invoice or form without its uuid:
//
//  1. red-invoice/query since the first submission: a red invoice reversing
//     lzfphm (kjhzfpdydlzfphm), of this seller, issued no earlier than the
//     first submission (less the clock margin) and, for a partial
//     reversal, with hjje and hjse equal to the hzmx totals; for a full
//     reversal, with hjje and hjse the blue invoice's negated, when both
//     lists give them (blue-invoice/query, read then). The list dates a red
//     invoice by its issue, not by when its form was made: another order's
//     partial reversal, made before our submission and issued after it, is
//     listed too, and only its amounts tell it from a full reversal. One is
//     Issued, several ActionRequired ("ambiguous").
//  2. Else blue-invoice/query for lzfphm on lzkprq's day: the blue invoice's
//     hzqrxxuuid names its latest confirmation form, which may be another
//     order's (a blue invoice reversed in parts has a form per reversal).
//     red-invoice/result on it says the form's state and nothing of whose
//     it is (a 202 or a refusal carries no data), so the search reads the
//     form's red-confirmation/detail too, and latestForm decides.
//  3. Else NotFound.
func (c *Client) searchRed(ctx context.Context, call *providers.Call, t *redTask) providers.Outcome {
	from, to := c.dateRange(call.SubmittedAt)
	reds, out, done := listAll[redItem](ctx, c, epRedQuery, url.Values{"kprqq": {from}, "kprqz": {to}})
	if !done {
		out.RedConfirm = t.state("", out.Message)
		return out
	}
	since := call.SubmittedAt.Add(-c.skewMargin())
	var matches []redItem
	for _, it := range reds {
		if string(it.Kjhzfpdydlzfphm) != t.lzfphm || (it.Xsfnsrsbh != "" && string(it.Xsfnsrsbh) != c.cfg.SellerTaxNum) {
			continue
		}
		if issued := parseTime(string(it.Kprq)); !issued.IsZero() && issued.Before(since) {
			continue
		}
		if t.partial && (!it.Hjje.set || !it.Hjje.dec.Equal(t.je) || !it.Hjse.set || !it.Hjse.dec.Equal(t.se)) {
			continue
		}
		matches = append(matches, it)
	}
	var blues []blueItem
	listed := false
	if !t.partial && slices.ContainsFunc(matches, func(it redItem) bool { return it.Hjje.set && it.Hjse.set }) {
		if blues, out, done = c.listBlue(ctx, t); !done {
			out.RedConfirm = t.state("", out.Message)
			return out
		}
		listed = true
		matches = slices.DeleteFunc(matches, func(it redItem) bool { return !reversesWhole(it, blues, t.lzfphm) })
	}
	switch len(matches) {
	case 1:
		it := matches[0]
		d := redResult{Fphm: it.Fphm, Kprq: it.Kprq, Hjje: it.Hjje, Hjse: it.Hjse}
		return c.redIssued("found by red-invoice/query", t, "", d)
	case 0:
	default:
		numbers := make([]string, len(matches))
		for i, m := range matches {
			numbers[i] = string(m.Fphm)
		}
		out := local(rowAmbiguous, true, "", fmt.Sprintf("%d red invoices could be the request's: %s", len(matches), strings.Join(numbers, ", ")), nil)
		out.RedConfirm = t.state("", out.Message)
		return out
	}

	notFound := providers.Outcome{Class: providers.NotFound, Code: "not_found", RedConfirm: t.state("", ""),
		Message: fmt.Sprintf("no red invoice or pending form reverses %s since %s", t.lzfphm, from)}
	if !listed {
		if blues, out, done = c.listBlue(ctx, t); !done {
			out.RedConfirm = t.state("", out.Message)
			return out
		}
	}
	var blue *blueItem
	for i, it := range blues {
		if string(it.Fphm) == t.lzfphm && it.Hzqrxxuuid != "" {
			blue = &blues[i]
		}
	}
	if blue == nil {
		return notFound
	}
	return c.latestForm(ctx, call, t, *blue, since, notFound)
}

// listBlue lists the blue invoice being reversed: blue-invoice/query for
// lzfphm on lzkprq's day.
func (c *Client) listBlue(ctx context.Context, t *redTask) ([]blueItem, providers.Outcome, bool) {
	day := parseTime(t.lzkprq).Format(dateLayout)
	return listAll[blueItem](ctx, c, epBlueQuery, url.Values{"kprqq": {day}, "kprqz": {day}, "fphm": {t.lzfphm}})
}

// reversesWhole reports whether red could be a full reversal of the blue
// invoice lzfphm: its hjje and hjse are the blue invoice's negated, or
// either list leaves them out (nothing then rules it out).
func reversesWhole(red redItem, blues []blueItem, lzfphm string) bool {
	if !red.Hjje.set || !red.Hjse.set {
		return true
	}
	for _, b := range blues {
		if string(b.Fphm) == lzfphm && b.Hjje.set && b.Hjse.set {
			return red.Hjje.dec.Equal(b.Hjje.dec.Neg()) && red.Hjse.dec.Equal(b.Hjse.dec.Neg())
		}
	}
	return true
}

// latestForm decides what the blue invoice's latest confirmation form
// (hzqrxxuuid) says of this request, given its state (red-invoice/result)
// and its red-confirmation/detail (whose):
//
//   - made, or its red invoice issued, before the first submission (less
//     the clock margin): had our submission taken effect, its form would be
//     the latest. Ours was never made: notFound, whatever the form's state
//     (somebody else's earlier reversal, pending, issued, or refused,
//     revoked or expired).
//   - ours (made or issued since the submission, with the request's
//     amounts): its state is ours: Issued, Accepted with Refs.BillNo = its
//     uuid, or its refusal.
//   - a form nothing ties to the request nor rules out (without detail, as
//     the document's example shows it, or without its time or amounts):
//     taken as ours, as it was before the detail was read. It is the form
//     our submission made unless another reversal of the same blue invoice
//     came after it or ours never took effect; holding the seller for
//     every such form, while the detail's fields are an assumption, would
//     stop every in-doubt or data {} reversal for a person, and without
//     the form's uuid a form waiting for the seller is never confirmed.
//   - another order's (the detail names another blue invoice, reason or
//     amounts): ours may be an earlier form hidden behind it, or may never
//     have been made. When
//     jumdata accepted our submission (Call.Accepted), ours was made: with
//     the form pending, Accepted without its uuid (the blue invoice waits
//     for the buyer, and every Query searches again); else notFound, which
//     queryRed answers as Retry (not listed yet). Otherwise ActionRequired
//     ("ambiguous"): taking the form would have two orders share one
//     reversal, and submitting again could reverse twice.
//
// A state that cannot be read (Retry, ActionRequired) is answered as is,
// without the form's uuid: nothing tied the form to the request.
func (c *Client) latestForm(ctx context.Context, call *providers.Call, t *redTask, blue blueItem, since time.Time, notFound providers.Outcome) providers.Outcome {
	uuid := string(blue.Hzqrxxuuid)
	out, data := c.readForm(ctx, t, uuid)
	var issued *redResult
	state := "pending"
	switch out.Class {
	case providers.Issued:
		issued, state = &data, "issued"
	case providers.Accepted:
	case providers.Rejected:
		state = "refused: " + out.Message
	default:
		// Nothing was told of the form, so it is not taken: the pipeline
		// keeps an answer's references, and with the uuid the next Query
		// would poll (and confirm) the form as the request's without the
		// search that tells whose it is.
		out.Refs, out.RedConfirm = t.refs(""), t.state("", out.Message)
		return out
	}
	d, dout, ok := c.formDetail(ctx, uuid)
	if !ok {
		dout.RedConfirm = t.state("", dout.Message)
		return dout
	}
	whose, why := t.whose(since, blue, issued, d)
	switch {
	case whose == formOurs:
		if issued != nil {
			out.Message = "found through the blue invoice's confirmation form"
		}
		return out
	case whose == formUntold:
		restate(&out, fmt.Sprintf("%s (the blue invoice's latest confirmation form %s, taken as this request's: %s)", out.Message, uuid, why))
		return out
	case whose == formOlder:
		notFound.Message = fmt.Sprintf("%s; the blue invoice's latest confirmation form %s (%s) is not this request's: %s", notFound.Message, uuid, state, why)
		return notFound
	case call.Accepted && out.Class == providers.Accepted:
		msg := fmt.Sprintf("jumdata accepted the red invoice; the blue invoice's latest confirmation form %s is pending and cannot be told to be this request's (%s): the search goes on", uuid, why)
		return providers.Outcome{Class: providers.Accepted, Code: out.Code, RetryAfter: out.RetryAfter, AwaitingParty: out.AwaitingParty,
			Refs: t.refs(""), RedConfirm: t.state("", msg), Message: msg}
	case call.Accepted:
		notFound.Message = fmt.Sprintf("%s; the blue invoice's latest confirmation form %s (%s) cannot be told to be this request's: %s", notFound.Message, uuid, state, why)
		return notFound
	}
	msg := fmt.Sprintf("the blue invoice's latest confirmation form %s (%s) cannot be told to be this request's (%s), and a form of this request may or may not exist behind it", uuid, state, why)
	amb := local(rowAmbiguous, true, "", msg, nil)
	amb.RedConfirm = t.state("", msg)
	return amb
}

// formDetail reads a form's red-confirmation/detail. A passing failure (a
// timeout, 5xx, 500, 501, "too frequent", 202) is the Retry to answer, ok
// false. Any other answer that is not a readable 200 describes nothing (a
// zero formDetail, ok): a refusal, or an endpoint the account has not
// enabled (601, 604), must not hold a seller whose search can decide
// without it, and a login that expired shows in the next call anyway.
func (c *Client) formDetail(ctx context.Context, uuid string) (formDetail, providers.Outcome, bool) {
	r := c.post(ctx, epFormDetail, url.Values{"uuid": {uuid}, "xsfnsrsbh": {c.cfg.SellerTaxNum}})
	if !r.is("200") {
		out := c.fail(r, true)
		if out.Class == providers.Retry || r.is("202") {
			out.Class = providers.Retry
			return formDetail{}, out, false
		}
		return formDetail{}, providers.Outcome{}, true
	}
	var d formDetail
	if err := decodeData(r.env, &d); err != nil {
		return formDetail{}, providers.Outcome{}, true
	}
	return d, providers.Outcome{}, true
}

// formWhose is what a search can tell of a confirmation form it found
// without its uuid.
type formWhose int

const (
	// formUntold: nothing ties the form to the request, nothing rules it out.
	formUntold formWhose = iota
	// formOurs: made or issued since the submission, with the request's
	// amounts.
	formOurs
	// formOthers: the form's blue invoice, reason or amounts differ from
	// the request's.
	formOthers
	// formOlder: made or issued before the submission.
	formOlder
)

// whose tells whether the blue invoice's form is this request's, from its
// detail d and, when red-invoice/result issued it, its red invoice. since is
// the first submission less the clock margin. The amounts are the hzmx
// totals for a partial reversal, and the whole blue invoice for a full one
// (which reverses what is left: after partial reversals, less than the
// whole, and then it cannot be told from another order's partial form). An
// issued full reversal needs no amounts, as in red-invoice/query. Amounts
// are compared without their sign, which the document does not give for a
// form.
func (t *redTask) whose(since time.Time, blue blueItem, issued *redResult, d formDetail) (formWhose, string) {
	made := parseTime(string(d.Lrrq))
	var kprq time.Time
	if issued != nil {
		kprq = parseTime(string(issued.Kprq))
	}
	switch {
	case !made.IsZero() && made.Before(since):
		return formOlder, "made " + string(d.Lrrq) + ", before the first submission"
	case !kprq.IsZero() && kprq.Before(since):
		return formOlder, "its red invoice " + string(issued.Fphm) + " was issued " + string(issued.Kprq) + ", before the first submission"
	case d.Lzfphm != "" && string(d.Lzfphm) != t.lzfphm:
		return formOthers, "it reverses " + string(d.Lzfphm)
	case d.Chyydm != "" && string(d.Chyydm) != t.params.Get("chyydm"):
		return formOthers, "its reason is " + string(d.Chyydm) + ", the request's " + t.params.Get("chyydm")
	}
	je, se, known := t.je, t.se, t.partial
	if !t.partial {
		je, se, known = blue.Hjje.dec, blue.Hjse.dec, blue.Hjje.set && blue.Hjse.set
	}
	amounts := issued != nil && !t.partial
	if known && d.Hzcxje.set && d.Hzcxse.set {
		if !sameAmount(d.Hzcxje.dec, je) || !sameAmount(d.Hzcxse.dec, se) {
			why := fmt.Sprintf("it reverses %s and %s, the request %s and %s", d.Hzcxje.dec.Abs(), d.Hzcxse.dec.Abs(), je.Abs(), se.Abs())
			if t.partial {
				return formOthers, why
			}
			return formUntold, why + " (the whole blue invoice; a full reversal after partial ones reverses less)"
		}
		amounts = true
	}
	if issued != nil && t.partial {
		for _, a := range []struct {
			got  amount
			want decimal.Decimal
			name string
		}{{issued.Hjje, t.je, "hjje"}, {issued.Hjse, t.se, "hjse"}, {issued.Jshj, t.je.Add(t.se), "jshj"}} {
			if !a.got.set {
				continue
			}
			if !sameAmount(a.got.dec, a.want) {
				return formOthers, fmt.Sprintf("its red invoice %s has %s %s, the request %s", issued.Fphm, a.name, a.got.dec.Abs(), a.want.Abs())
			}
			amounts = true
		}
	}
	switch {
	case made.IsZero() && kprq.IsZero():
		return formUntold, "jumdata gives neither when it was made nor a red invoice"
	case !amounts:
		return formUntold, "jumdata gives none of its amounts"
	}
	return formOurs, ""
}

// sameAmount reports whether a and b are the same amount, whatever their
// signs.
func sameAmount(a, b decimal.Decimal) bool { return a.Abs().Equal(b.Abs()) }
