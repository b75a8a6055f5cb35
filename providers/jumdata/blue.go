package jumdata

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// blueTask is what a blue-invoice/submit sends, computed once per call.
type blueTask struct {
	doc    *InvoiceData
	taskID string
	params url.Values
}

// newBlueTask maps the call's request; the same request in the same start
// (providers.Call.Restarts) always gives the same parameters.
func (c *Client) newBlueTask(call *providers.Call) (*blueTask, error) {
	req := call.Request
	doc, err := NewInvoiceData(req, c.cfg.SellerName)
	if err != nil {
		return nil, err
	}
	data, err := doc.Encode()
	if err != nil {
		return nil, err
	}
	id := TaskID(req.SellerTaxNum, req.OrderNo, call.Restarts)
	return &blueTask{doc: doc, taskID: id, params: url.Values{"taskId": {id}, "invoiceData": {data}}}, nil
}

func (c *Client) submitBlue(ctx context.Context, call *providers.Call) providers.Outcome {
	t, err := c.newBlueTask(call)
	if err != nil {
		return fieldOutcome(err, false)
	}
	return c.blueAnswer(c.post(ctx, epBlueSubmit, t.params), t, false)
}

// blueAnswer reads a blue-invoice/submit answer: 200 is Issued, anything
// else goes through the table (202: Retry on Submit, Accepted on Query).
func (c *Client) blueAnswer(r reply, t *blueTask, query bool) providers.Outcome {
	refs := schemas.ProviderRefs{TaskID: t.taskID}
	if !r.is("200") {
		out := c.fail(r, query)
		out.Refs = refs
		if r.is("399") {
			// The tax bureau refused the task itself, on a first call
			// or a repetition: it ends without an invoice, and jumdata
			// keeps its taskId bound to this data.
			out.Class = providers.Rejected
			out.Err = fmt.Errorf("jumdata blue task %s: %w", t.taskID, providers.ErrSubmissionRefused)
		}
		return out
	}
	var d blueResult
	if err := decodeData(r.env, &d); err != nil {
		out := c.unreadable(r, query, err.Error())
		out.Refs = refs
		return out
	}
	if d.Fphm == "" {
		out := c.unreadable(r, query, "200 without an invoice number (fphm)")
		out.Refs = refs
		return out
	}
	inv := schemas.Invoice{
		SerialNo:         t.taskID,
		InvoiceNo:        string(d.Fphm),
		DigitalInvoiceNo: digital(string(d.Fphm)),
		IssuedAt:         parseTime(string(d.Kprq)),
		ExTaxAmount:      schemas.ParseAmount(t.doc.Amount.String()),
		TaxAmount:        schemas.ParseAmount(t.doc.Tax.String()),
		TotalAmount:      schemas.ParseAmount(t.doc.Total.String()),
	}
	return providers.Outcome{Class: providers.Issued, Invoices: []schemas.Invoice{inv}, Refs: refs, Code: r.code, Message: r.env.Msg}
}

// queryBlue: within the taskId's life, repeat the submit with identical
// parameters (jumdata answers the task's state and never makes a second
// invoice); after it, search the issued invoices. Never a fresh submission
// of a forgotten taskId.
func (c *Client) queryBlue(ctx context.Context, call *providers.Call) providers.Outcome {
	if call.SubmittedAt.IsZero() {
		return providers.Outcome{Class: providers.NotFound, Code: "not_submitted", Message: "the order was never submitted to jumdata"}
	}
	t, err := c.newBlueTask(call)
	if err != nil {
		return fieldOutcome(err, true)
	}
	left := c.cfg.TaskIDLife - c.skewMargin() - c.now().Sub(call.SubmittedAt)
	if left > 0 && call.LookOnly {
		// Repeating the task would submit it if jumdata never had it:
		// search, and tell nothing for sure before the taskId's life ends.
		out := c.searchBlue(ctx, call, t)
		if out.Class == providers.NotFound {
			out = providers.Outcome{Class: providers.Retry, RetryAfter: left, Refs: out.Refs, Code: providers.CodeLookOnly,
				Message: "no invoice of the order is issued yet, and jumdata may still be working on a task submitted earlier; asking it would submit the task"}
		}
		return out
	}
	if left > 0 {
		r := c.post(ctx, epBlueSubmit, t.params)
		if r.is("400") {
			// jumdata refused the repetition (a task with other data under
			// this taskId, or data it no longer accepts): the invoice may
			// exist, so look; none listed is Retry, since the task may
			// still be under way. Rejected would publish a "rejected" for
			// an order that may yet be issued; the delivery limit ends the
			// retries with "failed", whose dead letter carries jumdata's
			// message.
			if out := c.searchBlue(ctx, call, t); out.Class != providers.NotFound {
				return out
			}
			return refusedLookup(c.blueAnswer(r, t, true),
				"jumdata refused a repetition of the order's task and lists no invoice of it (the task may still be under way, or its data was never accepted)")
		}
		return c.blueAnswer(r, t, true)
	}
	return c.searchBlue(ctx, call, t)
}

// searchBlue looks for the order's invoice among the blue invoices issued
// since the first submission (blue-invoice/query, every page).
//
// The rule: if the list carries an order number field (ddh; the document's
// example has none), only it decides. Otherwise an invoice is the order's
// when it is a blue invoice (sflzfp not N) of this seller, for the same
// buyer tax number, with the same buyer name where the list shows one,
// with hjje, hjse and jshj equal to the order's totals, issued no earlier
// than the first submission (less the clock margin). One match is Issued,
// none NotFound, several ActionRequired ("ambiguous": a person must tell
// which is the order's, since guessing would either lose or duplicate an
// invoice).
//
// A buyer with a tax number is looked for first among its own invoices
// (dfnsrsbh, the counterparty): a busy seller's whole list can run past
// maxPages, and every page is a call. Only the whole list can tell that
// nothing matches, though: NotFound has the order submitted again, and a
// filter read wrong must not make a second invoice.
func (c *Client) searchBlue(ctx context.Context, call *providers.Call, t *blueTask) providers.Outcome {
	from, to := c.dateRange(call.SubmittedAt)
	searches := []url.Values{{"kprqq": {from}, "kprqz": {to}}}
	if t.doc.BuyerTaxNum != "" {
		searches = append([]url.Values{{"kprqq": {from}, "kprqz": {to}, "dfnsrsbh": {t.doc.BuyerTaxNum}}}, searches...)
	}
	var matches []blueItem
	for i, params := range searches {
		items, out, done := listAll[blueItem](ctx, c, epBlueQuery, params)
		if !done {
			if i < len(searches)-1 && refusedOrUnread(out) {
				continue // the buyer's list is a short cut: refused or unreadable, the whole list decides
			}
			out.Refs = schemas.ProviderRefs{TaskID: t.taskID}
			return out
		}
		if matches = c.matchBlue(items, call, t); len(matches) > 0 {
			break
		}
	}
	refs := schemas.ProviderRefs{TaskID: t.taskID}
	switch len(matches) {
	case 0:
		return providers.Outcome{Class: providers.NotFound, Refs: refs, Code: "not_found",
			Message: fmt.Sprintf("no invoice issued between %s and %s matches the order", from, to)}
	case 1:
		it := matches[0]
		inv := schemas.Invoice{
			SerialNo:         t.taskID,
			InvoiceNo:        string(it.Fphm),
			DigitalInvoiceNo: digital(string(it.Fphm)),
			IssuedAt:         parseTime(string(it.Kprq)),
			ExTaxAmount:      schemas.ParseAmount(t.doc.Amount.String()),
			TaxAmount:        schemas.ParseAmount(t.doc.Tax.String()),
			TotalAmount:      schemas.ParseAmount(t.doc.Total.String()),
		}
		return providers.Outcome{Class: providers.Issued, Invoices: []schemas.Invoice{inv}, Refs: refs, Code: "200",
			Message: "found by blue-invoice/query"}
	}
	numbers := make([]string, len(matches))
	for i, m := range matches {
		numbers[i] = string(m.Fphm)
	}
	out := local(rowAmbiguous, true, "", fmt.Sprintf("%d invoices could be the order's: %s", len(matches), strings.Join(numbers, ", ")), nil)
	out.Refs = refs
	return out
}

// refusedOrUnread reports whether a list's failure is jumdata refusing the
// list's parameters (399, 400) or an answer the client cannot read to the
// end: another list may fare better. A throttle, an outage or a login
// problem would fail the next list too, at the cost of its calls.
func refusedOrUnread(out providers.Outcome) bool {
	if out.Class == providers.ActionRequired {
		return false // the credentials (a 400 naming the signature): every list alike
	}
	switch out.Code {
	case "399", "400", rowUnreadable, rowIncomplete:
		return true
	}
	return false
}

// matchBlue returns the listed invoices that searchBlue's rule takes for
// the order's.
func (c *Client) matchBlue(items []blueItem, call *providers.Call, t *blueTask) []blueItem {
	since := call.SubmittedAt.Add(-c.skewMargin())
	byOrderNo := false
	for _, it := range items {
		if it.Ddh != nil {
			byOrderNo = true
			break
		}
	}
	var matches []blueItem
	for _, it := range items {
		if byOrderNo {
			if it.Ddh != nil && string(*it.Ddh) == call.Request.OrderNo {
				matches = append(matches, it)
			}
			continue
		}
		if c.sameBlue(it, t.doc, since) {
			matches = append(matches, it)
		}
	}
	return matches
}

// sameBlue applies the matching rule of searchBlue to one listed invoice.
func (c *Client) sameBlue(it blueItem, doc *InvoiceData, since time.Time) bool {
	if it.Sflzfp == "N" || (it.Xsfnsrsbh != "" && string(it.Xsfnsrsbh) != c.cfg.SellerTaxNum) {
		return false
	}
	// The listed text fields are read trimmed (text), and the buyer name is
	// sent as the request gives it: compare it trimmed too, or a name with a
	// space at either end never matches its own invoice.
	if strings.ToUpper(string(it.Gmfnsrsbh)) != doc.BuyerTaxNum || (it.Gmfmc != "" && string(it.Gmfmc) != strings.TrimSpace(doc.BuyerName)) {
		return false
	}
	jshj := it.Jshj
	if !jshj.set && it.Hjje.set && it.Hjse.set {
		jshj = amount{dec: it.Hjje.dec.Add(it.Hjse.dec), set: true}
	}
	if !equalAmount(it.Hjje, doc.Amount.String()) || !equalAmount(it.Hjse, doc.Tax.String()) || !equalAmount(jshj, doc.Total.String()) {
		return false
	}
	// An unreadable date cannot rule the invoice out: it stays a candidate,
	// and a second candidate makes the search ambiguous rather than wrong.
	issued := parseTime(string(it.Kprq))
	return issued.IsZero() || !issued.Before(since)
}

// equalAmount reports whether a listed amount equals ours.
func equalAmount(a amount, ours string) bool {
	d, err := decimal.NewFromString(ours)
	return err == nil && a.set && a.dec.Equal(d)
}
