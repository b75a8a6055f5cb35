package nuonuo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/shopspring/decimal"
)

const providerName = "nuonuo"

// Short method names, as reported to the Observer.
const (
	mRequestBilling  = "requestBillingNew"
	mQueryInvoice    = "queryInvoiceResult"
	mReInvoice       = "reInvoice"
	mSaveRedConfirm  = "saveInvoiceRedConfirm"
	mQueryRedConfirm = "queryInvoiceRedConfirm"
)

// throttlePause is how long calls pause after 070201 or an HTTP 429 when
// the answer has no Retry-After asking for longer; the platform documents
// no hint.
const throttlePause = time.Second

// Client is a Nuonuo open platform client bound to one seller. It implements
// providers.Provider and is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
	obs      providers.Observer
	now      func() time.Time
	maxBytes int64
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client for cfg, or cfg's validation error.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Family == "" {
		cfg.Family = FamilyElectronInvoice
	}
	if cfg.PollAfter == 0 {
		cfg.PollAfter = DefaultPollAfter
	}
	cfg.HTTP = cfg.HTTP.WithDefaults()
	c := &Client{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + servicesPath,
		http:     cfg.HTTPClient,
		obs:      providers.ObserverOrNop(cfg.Observer),
		now:      cfg.Now,
		maxBytes: cfg.HTTP.MaxResponseBytes,
	}
	if c.http == nil {
		c.http = providers.NewHTTPClient(cfg.HTTP)
	}
	c.http = noRedirects(c.http)
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// noRedirects returns a copy of hc that answers a 3xx as it is instead of
// following it: a redirect would turn a POST into a GET without its body,
// and carry the accessToken header (or, for 307 and 308, the token
// request's client_secret) to wherever it points.
func noRedirects(hc *http.Client) *http.Client {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Name returns "nuonuo".
func (c *Client) Name() string { return providerName }

// Submit sends the request: requestBillingNew (issue), saveInvoiceRedConfirm
// (red_confirm) or reInvoice (reissue). See the package documentation for
// what each answer means.
func (c *Client) Submit(ctx context.Context, call *providers.Call) providers.Outcome {
	if o, ok := checkCall(call); !ok {
		return o
	}
	switch call.Request.Kind {
	case schemas.KindIssue:
		return c.submitIssue(ctx, call)
	case schemas.KindRedConfirm:
		return c.submitRedConfirm(ctx, call)
	default:
		return c.submitReissue(ctx, call)
	}
}

// Query asks for the state of a request: queryInvoiceResult (issue,
// reissue) or queryInvoiceRedConfirm (red_confirm). It never creates
// anything; a failed call is Retry, never Unknown.
func (c *Client) Query(ctx context.Context, call *providers.Call) providers.Outcome {
	if o, ok := checkCall(call); !ok {
		return o
	}
	if call.Earlier && (call.Request.Kind == schemas.KindReissue || call.Request.Kind == schemas.KindRedConfirm && call.Refs.BillID == "") {
		// An order is looked up by serial or order number, which do not
		// depend on its content; but a reissue is found by the invoice it
		// names, and a red confirmation form by its billId, which the
		// earlier request may have named otherwise.
		return providers.Outcome{
			Class: providers.Rejected, Code: "unsupported", Field: "orderNo", Local: true,
			Message: "the earlier " + string(call.Request.Kind) + " request for this order is found by its own content, which this request does not carry",
			Err:     fmt.Errorf("nuonuo query for an earlier request: %w", providers.ErrUnsupported),
		}
	}
	switch call.Request.Kind {
	case schemas.KindIssue:
		return c.queryIssue(ctx, call)
	case schemas.KindRedConfirm:
		return c.queryRedConfirm(ctx, call)
	default:
		return c.queryReissue(ctx, call)
	}
}

// checkCall refuses a call whose request lacks the body of its kind. The
// validator never lets one through; this guards against a wiring mistake.
func checkCall(call *providers.Call) (providers.Outcome, bool) {
	r := call.Request
	var ok bool
	if r != nil {
		switch r.Kind {
		case schemas.KindIssue:
			ok = r.Order != nil
		case schemas.KindRedConfirm:
			ok = r.RedConfirm != nil
		case schemas.KindReissue:
			ok = r.Reissue != nil
		}
	}
	if ok {
		return providers.Outcome{}, true
	}
	return providers.Outcome{
		Class:   providers.Rejected,
		Code:    "invalid_request",
		Local:   true,
		Message: "the request has no body of its kind",
		Err:     fmt.Errorf("nuonuo: %w: request without its body", providers.ErrUnsupported),
	}, false
}

// plainRate writes a tax rate as its shortest decimal ("0.0600" as
// "0.06"): the validator compares rates by value, and Nuonuo's documents
// only show them so.
func plainRate(r schemas.Amount) schemas.Amount {
	if !r.IsSet() || !r.Valid() {
		return r
	}
	return schemas.ParseAmount(r.Decimal().String())
}

// ---- issue ----

// orderTotals returns the amount with tax of the order Nuonuo holds (the
// sum of its entries' orderAmount, each invoice's) and of order (the sum
// of its lines' taxIncludedAmount), and whether both are known. Seed 001:
// when any of a line's three amounts is not given, Nuonuo computes the
// line from price and num, which may differ from what was given; such a
// line, or an entry without orderAmount, leaves the totals unknown.
func orderTotals(entries []invoiceEntry, order *schemas.Order) (held, want decimal.Decimal, known bool) {
	for _, e := range entries {
		d, err := decimal.NewFromString(strings.TrimSpace(string(e.OrderAmount)))
		if err != nil {
			return held, want, false
		}
		held = held.Add(d)
	}
	for i := range order.InvoiceDetail {
		l := &order.InvoiceDetail[i]
		for _, a := range []schemas.Amount{l.TaxIncludedAmount, l.TaxExcludedAmount, l.Tax} {
			if !a.IsSet() || !a.Valid() {
				return held, want, false
			}
		}
		want = want.Add(l.TaxIncludedAmount.Decimal())
	}
	return held, want, len(entries) > 0 && len(order.InvoiceDetail) > 0
}

// otherBuyer reports whether an entry names a buyer other than order's
// (payerName, when Nuonuo gives it).
func otherBuyer(entries []invoiceEntry, order *schemas.Order) bool {
	for _, e := range entries {
		if name := strings.TrimSpace(string(e.PayerName)); name != "" && name != strings.TrimSpace(order.BuyerName) {
			return true
		}
	}
	return false
}

func (c *Client) submitIssue(ctx context.Context, call *providers.Call) providers.Outcome {
	order := *call.Request.Order
	order.InvoiceDetail = append([]schemas.InvoiceLine(nil), order.InvoiceDetail...)
	for i := range order.InvoiceDetail {
		order.InvoiceDetail[i].TaxRate = plainRate(order.InvoiceDetail[i].TaxRate)
	}
	if order.OrderNo == "" {
		order.OrderNo = call.Request.OrderNo
	}
	if order.SalerTaxNum == "" {
		order.SalerTaxNum = c.cfg.SellerTaxNum
	}
	body := struct {
		Order *schemas.Order `json:"order"`
	}{&order}
	a := c.call(ctx, c.family(mRequestBilling), mRequestBilling, body)
	if !a.ok() {
		if a.code == codeDuplicate {
			// The order number is taken: by our own earlier submission,
			// whether or not the record counts it (a store restored from
			// a backup, a lost volume), or by an order this request did
			// not create (another system's, the console's).
			entries, _, q, ok := c.queryInvoices(ctx, "", call.Request.OrderNo)
			switch {
			case !ok && q.Class != providers.NotFound:
				return q
			case !ok || len(entries) == 0:
				return providers.Outcome{Class: providers.Retry, Code: a.code, Message: a.msg,
					RetryAfter: c.cfg.PollAfter}
			}
			if !call.Resubmission {
				// Nothing recorded says that this request was submitted:
				// follow the order unless its amounts with tax or its
				// buyer show it to be another's, so that another order's
				// invoice is not reported as this one's. When neither can
				// tell (a line Nuonuo computes from price and num, no
				// buyer in the answer), it is followed, as it always was.
				held, want, known := orderTotals(entries, &order)
				var why string
				switch {
				case known && !held.Equal(want):
					why = fmt.Sprintf("of %s in all, where this request comes to %s", held.StringFixed(2), want.StringFixed(2))
				case otherBuyer(entries, &order):
					why = fmt.Sprintf("for the buyer %q, where this request's is %q", strings.TrimSpace(string(entries[0].PayerName)), order.BuyerName)
				}
				if why != "" {
					o := c.failure(a, phaseSubmit, call.Request.Kind)
					o.Message = fmt.Sprintf("%s: Nuonuo holds an order under this order number %s: "+
						"look the order up at Nuonuo; if it is not this sale's, send the request under another order number",
						strings.TrimSuffix(cmp.Or(a.msg, "the order number is taken"), "。"), why)
					return o
				}
			}
			return c.invoiceOutcome(entries, schemas.ProviderRefs{}, false)
		}
		if a.code == codeReversed && call.Resubmission {
			// The blue invoice is reversed already: by this red order's
			// earlier submission, whose answer was lost, if Nuonuo holds
			// an order under its number (unique per seller); else by
			// another order, and the refusal stands. A first submission's
			// E9103 is never taken for its own: another order's reversal
			// of the same blue invoice is not this one's.
			entries, _, q, ok := c.queryInvoices(ctx, "", call.Request.OrderNo)
			switch {
			case ok && len(entries) > 0:
				return c.invoiceOutcome(entries, schemas.ProviderRefs{}, false)
			case !ok && q.Class != providers.NotFound:
				return q
			}
		}
		return c.failure(a, phaseSubmit, call.Request.Kind)
	}
	var res billingResult
	if len(a.env.Result) > 0 {
		if err := json.Unmarshal(a.env.Result, &res); err != nil {
			// The order was taken but its serial is unreadable: in doubt
			// only as to the serial; Query by orderNo finds it.
			return providers.Outcome{Class: providers.Accepted, Code: a.code, Message: a.msg,
				RetryAfter: c.cfg.PollAfter, Err: fmt.Errorf("nuonuo %s: %w", mRequestBilling, err)}
		}
	}
	return providers.Outcome{
		Class:      providers.Accepted,
		Refs:       schemas.ProviderRefs{SerialNo: string(res.InvoiceSerialNum)},
		RetryAfter: c.cfg.PollAfter,
		Code:       a.code,
		Message:    a.msg,
	}
}

func (c *Client) queryIssue(ctx context.Context, call *providers.Call) providers.Outcome {
	entries, a, o, ok := c.queryInvoices(ctx, call.Refs.SerialNo, call.Request.OrderNo)
	if !ok {
		return o
	}
	if len(entries) == 0 {
		return providers.Outcome{Class: providers.NotFound, Code: a.code, Message: a.msg}
	}
	return c.invoiceOutcome(entries, call.Refs, false)
}

// queryInvoices calls queryInvoiceResult by serial number when known, else
// by order number. ok is false when o is the final answer: a failure
// (Retry, ActionRequired, Rejected) or NotFound (E9500).
func (c *Client) queryInvoices(ctx context.Context, serial, orderNo string) ([]invoiceEntry, answer, providers.Outcome, bool) {
	body := map[string][]string{"orderNos": {orderNo}}
	if serial != "" {
		body = map[string][]string{"serialNos": {serial}}
	}
	a := c.call(ctx, c.family(mQueryInvoice), mQueryInvoice, body)
	if !a.ok() {
		if a.code == codeNotFound {
			return nil, a, providers.Outcome{Class: providers.NotFound, Code: a.code, Message: a.msg}, false
		}
		return nil, a, c.failure(a, phaseQuery, schemas.KindIssue), false
	}
	entries, err := decodeInvoiceEntries(a.env.Result)
	if err != nil {
		a = answer{code: codeUnreadable, msg: "queryInvoiceResult result unreadable", err: err}
		return nil, a, c.failure(a, phaseQuery, schemas.KindIssue), false
	}
	for i := range entries {
		// An entry without a status says nothing of the order's state:
		// taken for one being issued, the order would be polled until its
		// request is given up with nothing to say why. The answer cannot
		// be read, as one that is not JSON cannot, and the message names
		// what is missing. The documents do not say that an entry may come
		// without one; an unknown status is another matter (invPending).
		if e := &entries[i]; strings.TrimSpace(string(e.Status)) == "" {
			a = answer{code: codeUnreadable, err: errNoStatus,
				msg: fmt.Sprintf("queryInvoiceResult answered an invoice without a status (serial %q, order %q): the order's state cannot be read from it",
					string(e.SerialNo), string(e.OrderNo))}
			return nil, a, c.failure(a, phaseQuery, schemas.KindIssue), false
		}
	}
	return entries, a, providers.Outcome{}, true
}

// invoiceOutcome reads queryInvoiceResult's entries (one order may be split
// into up to 10 invoices): any entry still in progress → Accepted; else any
// failed → Rejected ("22") with the invoices that were issued (a split order
// may fail in part), or NotFound for a reissue (the reissue did not take
// effect: submitting again is right); else Issued with every invoice.
func (c *Client) invoiceOutcome(entries []invoiceEntry, refs schemas.ProviderRefs, reissue bool) providers.Outcome {
	if refs.SerialNo == "" {
		refs.SerialNo = string(entries[0].SerialNo)
	}
	var failed, pending *invoiceEntry
	invoices := make([]schemas.Invoice, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		switch invoiceStateOf(string(e.Status)) {
		case invPending:
			if pending == nil {
				pending = e
			}
		case invFailed:
			if failed == nil {
				failed = e
			}
		default:
			invoices = append(invoices, e.invoice())
		}
	}
	switch {
	case pending != nil:
		return providers.Outcome{Class: providers.Accepted, Refs: refs, RetryAfter: c.cfg.PollAfter,
			Code: string(pending.Status), Message: string(pending.StatusMsg)}
	case failed != nil:
		msg := string(failed.FailCause)
		if msg == "" {
			msg = string(failed.StatusMsg)
		}
		if len(invoices) > 0 {
			msg = fmt.Sprintf("%d of the order's %d invoices were issued, the others failed: %s", len(invoices), len(entries), msg)
		}
		if reissue {
			return providers.Outcome{Class: providers.NotFound, Refs: refs, Code: statusFailed, Message: msg, Err: providers.ErrIssuanceFailed}
		}
		if len(invoices) == 0 {
			invoices = nil
		}
		return providers.Outcome{Class: providers.Rejected, Invoices: invoices, Refs: refs, Code: statusFailed, Message: msg, Err: providers.ErrIssuanceFailed}
	}
	return providers.Outcome{Class: providers.Issued, Invoices: invoices, Refs: refs,
		Code: string(entries[0].Status), Message: string(entries[0].StatusMsg)}
}

// ---- reissue ----

func (c *Client) submitReissue(ctx context.Context, call *providers.Call) providers.Outcome {
	ri := *call.Request.Reissue
	if ri.Fpqqlsh == "" && ri.OrderNo == "" {
		ri.OrderNo = call.Request.OrderNo
	}
	a := c.call(ctx, "nuonuo."+FamilyOpeMplatform+"."+mReInvoice, mReInvoice, &ri)
	if a.ok() {
		return providers.Outcome{Class: providers.Accepted, Refs: schemas.ProviderRefs{SerialNo: ri.Fpqqlsh},
			RetryAfter: c.cfg.PollAfter, Code: a.code, Message: a.msg}
	}
	o := c.failure(a, phaseSubmit, call.Request.Kind)
	if o.Class == providers.Rejected {
		// A refusal may mean "already issued" or "already retrying" in a
		// code this table does not know: the query tells.
		if q := c.queryReissue(ctx, call); q.Class == providers.Issued || q.Class == providers.Accepted {
			return q
		}
	}
	return o
}

func (c *Client) queryReissue(ctx context.Context, call *providers.Call) providers.Outcome {
	ri := call.Request.Reissue
	serial, orderNo := ri.Fpqqlsh, ri.OrderNo
	if serial == "" && orderNo == "" {
		serial, orderNo = call.Refs.SerialNo, call.Request.OrderNo
	}
	entries, _, o, ok := c.queryInvoices(ctx, serial, orderNo)
	if !ok {
		if o.Class == providers.NotFound {
			return providers.Outcome{Class: providers.Rejected, Code: o.Code,
				Message: "nothing to reissue: the provider knows no such invoice (" + o.Message + ")"}
		}
		return o
	}
	if len(entries) == 0 {
		return providers.Outcome{Class: providers.Rejected, Code: codeNotFound,
			Message: "nothing to reissue: the provider knows no such invoice"}
	}
	return c.invoiceOutcome(entries, call.Refs, true)
}

// ---- red confirmation ----

// BillID returns the red confirmation application number (billId) used
// when a request carries none: 32 hex characters derived from seller and
// order number, so that a repeated submission names the same application.
func BillID(seller, orderNo string) string {
	sum := sha256.Sum256([]byte(seller + "\x00" + orderNo))
	return hex.EncodeToString(sum[:16])
}

func (c *Client) billID(call *providers.Call) string {
	switch {
	case call.Refs.BillID != "":
		return call.Refs.BillID
	case call.Request.RedConfirm.BillID != "":
		return call.Request.RedConfirm.BillID
	}
	return BillID(call.Request.SellerTaxNum, call.Request.OrderNo)
}

func (c *Client) submitRedConfirm(ctx context.Context, call *providers.Call) providers.Outcome {
	rc := *call.Request.RedConfirm
	rc.BlueInvoiceTime = "" // this project's extension; Nuonuo does not know it
	rc.Detail = append([]schemas.RedConfirmLine(nil), rc.Detail...)
	for i := range rc.Detail {
		rc.Detail[i].TaxRate = plainRate(rc.Detail[i].TaxRate)
	}
	rc.BillID = c.billID(call)
	a := c.call(ctx, "nuonuo."+FamilyOpeMplatform+"."+mSaveRedConfirm, mSaveRedConfirm, &rc)
	if !a.ok() {
		o := c.failure(a, phaseSubmit, call.Request.Kind)
		if o.Class == providers.Rejected {
			// The billId may be taken by our own earlier application (a
			// duplicate refused in a code this table does not know).
			// One found without a billStatus exists all the same: its
			// unreadable answer is the submission's, not the refusal.
			q := c.queryRedConfirm(ctx, &providers.Call{Request: call.Request, Refs: schemas.ProviderRefs{BillID: rc.BillID}})
			if q.Class == providers.Issued || q.Class == providers.Accepted || errors.Is(q.Err, errNoBillStatus) {
				return q
			}
		}
		return o
	}
	formID, err := decodeString(a.env.Result)
	if err != nil {
		formID = ""
	}
	refs := schemas.ProviderRefs{BillID: rc.BillID, BillNo: formID}
	return providers.Outcome{
		Class:      providers.Accepted,
		Refs:       refs,
		RedConfirm: &schemas.RedConfirmState{BillID: rc.BillID, BillNo: formID},
		RetryAfter: c.cfg.PollAfter,
		Code:       a.code,
		Message:    a.msg,
	}
}

func (c *Client) queryRedConfirm(ctx context.Context, call *providers.Call) providers.Outcome {
	billID := c.billID(call)
	identity := call.Request.RedConfirm.ApplySource
	if identity == "" {
		identity = "0"
	}
	body := map[string]string{"identity": identity, "billId": billID}
	a := c.call(ctx, "nuonuo."+FamilyOpeMplatform+"."+mQueryRedConfirm, mQueryRedConfirm, body)
	if !a.ok() {
		if a.code == codeNotFound {
			return providers.Outcome{Class: providers.NotFound, Code: a.code, Message: a.msg}
		}
		return c.failure(a, phaseQuery, call.Request.Kind)
	}
	forms, err := decodeRedForms(a.env.Result)
	if err != nil {
		return c.failure(answer{code: codeUnreadable, msg: "queryInvoiceRedConfirm result unreadable", err: err}, phaseQuery, call.Request.Kind)
	}
	var form *redForm
	for i := range forms {
		if string(forms[i].BillID) == billID {
			form = &forms[i]
			break
		}
	}
	if form == nil {
		return providers.Outcome{Class: providers.NotFound, Code: a.code, Message: "no red confirmation form with this billId"}
	}
	billNo := string(form.BillNo)
	if billNo == "" {
		billNo = call.Refs.BillNo
	}
	// A form without a billStatus says nothing of its state: taken for an
	// unknown status, the order would be polled until its request is given
	// up with nothing to say why. The answer cannot be read, as an invoice
	// entry without a status cannot (queryInvoices), and the message names
	// what is missing. The form's references are kept: it exists.
	if strings.TrimSpace(string(form.BillStatus)) == "" {
		o := c.failure(answer{code: codeUnreadable, err: errNoBillStatus,
			msg: fmt.Sprintf("queryInvoiceRedConfirm answered a red confirmation form without a billStatus (billId %q, billNo %q): the form's state cannot be read from it",
				billID, string(form.BillNo))}, phaseQuery, call.Request.Kind)
		o.Refs = schemas.ProviderRefs{BillID: billID, BillNo: billNo}
		return o
	}
	status := billStatusOf(string(form.BillStatus))
	o := providers.Outcome{
		Class:      billClass(status),
		Refs:       schemas.ProviderRefs{BillID: billID, BillNo: billNo},
		RedConfirm: &schemas.RedConfirmState{BillID: billID, BillNo: billNo, BillStatus: status, Message: string(form.BillMessage)},
		Code:       status,
		Message:    string(form.BillMessage),
	}
	switch o.Class {
	case providers.Accepted:
		o.RetryAfter = c.cfg.PollAfter
		// 02 and 03 wait for the other party, for up to 72 h; 15 and
		// unknown statuses are the platform's own work.
		o.AwaitingParty = status == "02" || status == "03"
	case providers.Issued:
		switch {
		case form.InvoiceSerialNum != "":
			return c.redInvoice(ctx, o, string(form.InvoiceSerialNum))
		case issuedAutomatically(call.Request.RedConfirm.BlueInvoiceLine):
			// Confirmed, and the platform issues the red invoice of an
			// electronic form itself afterwards: until the form names it,
			// it is being issued, and "issued" would be premature.
			o.Class, o.RetryAfter = providers.Accepted, c.cfg.PollAfter
			o.Message = "red confirmation confirmed (" + o.Message + "); its red invoice is being issued"
		}
	}
	return o
}

// issuedAutomatically reports whether the platform issues the red invoice
// of a confirmed form for a blue invoice of this line by itself: seed 002,
// "电票都自动开，纸票都不自动" (every electronic invoice, bs pc p b; no paper
// one, es ec c s).
func issuedAutomatically(blueInvoiceLine string) bool {
	switch blueInvoiceLine {
	case "bs", "pc", "p", "b":
		return true
	}
	return false
}

// redInvoice completes a confirmed red form's outcome with the red invoice
// the platform issued for it (fully digital forms are issued automatically,
// under the form's invoiceSerialNum): its numbers, amounts and documents
// come from queryInvoiceResult. While that invoice is still being issued
// the form is Accepted. A paper form confirmed has no invoice issued for
// it and stays Issued with none; an electronic one confirmed without an
// invoice named yet is Accepted (queryRedConfirm).
func (c *Client) redInvoice(ctx context.Context, form providers.Outcome, serial string) providers.Outcome {
	entries, _, failed, ok := c.queryInvoices(ctx, serial, "")
	if !ok {
		if failed.Class == providers.NotFound {
			form.Class, form.RetryAfter = providers.Accepted, c.cfg.PollAfter
			form.Message = "red confirmation confirmed; its red invoice is not visible yet"
			return form
		}
		failed.Refs, failed.RedConfirm = form.Refs, form.RedConfirm
		return failed
	}
	if len(entries) == 0 {
		form.Class, form.RetryAfter = providers.Accepted, c.cfg.PollAfter
		return form
	}
	inv := c.invoiceOutcome(entries, schemas.ProviderRefs{SerialNo: serial}, false)
	inv.Refs.BillID, inv.Refs.BillNo = form.Refs.BillID, form.Refs.BillNo
	inv.RedConfirm = form.RedConfirm
	if inv.Class == providers.Issued {
		inv.Code, inv.Message = form.Code, form.Message // the form's status decided
	}
	return inv
}

// ---- transport ----

// answer is the result of one logical call (token retry included).
type answer struct {
	env  envelope
	code string // the envelope's code, or a pseudo-code (transport, unreadable, http_503, ...)
	msg  string
	err  error
	// retryAfter is the answer's Retry-After header
	// (providers.ParseRetryAfter), 0 without one.
	retryAfter time.Duration
}

func (a answer) ok() bool { return a.code == codeSuccess }

func (c *Client) family(method string) string {
	return "nuonuo." + c.cfg.Family + "." + method
}

// call marshals body once and posts it as method. With a TokenSource, the
// first 070301 of an incident invalidates the token and the call is repeated
// once with a fresh one; when the fresh token is refused too, the answer is
// final (ActionRequired, wrapping ErrTokenMismatch) and the TokenSource stops
// fetching tokens for 070301 until a call is accepted again.
func (c *Client) call(ctx context.Context, method, short string, body any) answer {
	raw, err := json.Marshal(body)
	if err != nil {
		return answer{code: "invalid_request", msg: "the request cannot be encoded", err: fmt.Errorf("encode %s: %w", short, err)}
	}
	ts := c.cfg.Tokens
	refused := "" // the token refused with 070301 on the first attempt
	for attempt := 0; ; attempt++ {
		tok, a, ok := c.token(ctx, refused)
		if !ok {
			return a
		}
		a = c.post(ctx, method, short, tok, raw)
		switch {
		case lookup(a.code).action == actThrottle && c.cfg.Limiter != nil:
			// 070201, or a 429 whose body does not say 070201 (a bare
			// one, a proxy's page): the classification table says which.
			c.cfg.Limiter.Throttled(max(throttlePause, a.retryAfter))
		case a.code == codeTokenMismatch && ts != nil:
			if ts.mismatched(ctx, tok) && attempt == 0 {
				refused = tok
				continue
			}
			a.msg = c.mismatchMessage(a.msg)
			a.err = fmt.Errorf("%s: %w", short, ErrTokenMismatch)
		case ts != nil && tokenAccepted(string(a.env.Code)):
			ts.accepted(tok)
		}
		return a
	}
}

// mismatchMessage tells the operator what a 070301 incident needs. describe
// is the platform's own text, when there was an answer.
func (c *Client) mismatchMessage(describe string) string {
	if describe != "" {
		describe = " (" + describe + ")"
	}
	return "070301: the Nuonuo platform refused a freshly fetched access token" + describe +
		". An operator must act: in the Nuonuo open platform console check that the app key and secret configured for seller " +
		c.cfg.SellerTaxNum + " are this app's, that the app is authorized for the seller, and that BaseURL and the token URL " +
		"are the same environment (production or sandbox). No new token is fetched for 070301 until a call is accepted " +
		"again or the consumer restarts: the token endpoint allows only 50 calls per 30 days."
}

// token returns the token to send, other than refused (see
// TokenSource.replacement) when a call is repeated after a 070301; ok is
// false when a is the final answer.
func (c *Client) token(ctx context.Context, refused string) (string, answer, bool) {
	if c.cfg.Tokens == nil {
		return c.cfg.AccessToken, answer{}, true
	}
	tok, err := c.cfg.Tokens.replacement(ctx, refused)
	if err == nil {
		return tok, answer{}, true
	}
	var te *TokenError
	switch {
	case errors.Is(err, ErrTokenMismatch):
		// A 070301 incident holds: fail fast, no call goes out.
		return "", answer{code: codeTokenMismatch, msg: c.mismatchMessage(""), err: err}, false
	case errors.As(err, &te) && strings.HasPrefix(te.Code, "07"):
		return "", answer{code: te.Code, msg: te.Message, err: err}, false
	case ctx.Err() != nil:
		return "", answer{code: codeCanceled, msg: "no token before the context ended", err: err}, false
	}
	return "", answer{code: codeTokenTransport, msg: "the token endpoint is unavailable", err: err}, false
}

// post makes one HTTP call and reports it to the Observer.
func (c *Client) post(ctx context.Context, method, short, tok string, body []byte) answer {
	if err := ctx.Err(); err != nil {
		return answer{code: codeCanceled, msg: "the call did not go out", err: err}
	}
	if l := c.cfg.Limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			return answer{code: codeCanceled, msg: "the call did not go out", err: err}
		}
	}
	senid, nonce := newSenid(), newNonce()
	ts := strconv.FormatInt(c.now().Unix(), 10)
	q := url.Values{"senid": {senid}, "nonce": {nonce}, "timestamp": {ts}, "appkey": {c.cfg.AppKey}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return answer{code: codeTransport, msg: "the request cannot be built", err: fmt.Errorf("%s: %w", short, err)}
	}
	// Set directly: Header.Set would canonicalise accessToken and userTax.
	req.Header["Content-Type"] = []string{"application/json;charset=UTF-8"}
	req.Header["X-Nuonuo-Sign"] = []string{Sign(c.cfg.AppSecret, c.cfg.AppKey, senid, nonce, ts, body)}
	req.Header["accessToken"] = []string{tok}
	req.Header["userTax"] = []string{c.cfg.SellerTaxNum}
	req.Header["method"] = []string{method}

	start := time.Now()
	a := c.do(req, short)
	c.obs.ObserveCall(providerName, short, a.code, time.Since(start))
	return a
}

// do sends req and reads the answer, with its Retry-After.
func (c *Client) do(req *http.Request, short string) answer {
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{code: codeTransport, msg: "no answer: " + transportCause(err), err: fmt.Errorf("%s: %w", short, err)}
	}
	a := c.read(resp, short)
	a.retryAfter = providers.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	return a
}

// read reads and decodes an answer.
func (c *Client) read(resp *http.Response, short string) answer {
	b, err := providers.ReadBody(resp, c.maxBytes)
	if err != nil {
		return answer{code: codeUnreadable, msg: "the answer could not be read", err: fmt.Errorf("%s: %w", short, err)}
	}
	if resp.StatusCode != http.StatusOK {
		// Nuonuo's documents do not say under which HTTP status the
		// gateway sends its own codes. A 4xx that carries one in the
		// platform's envelope is answered by that code, as under 200: a
		// token refused (070301) under a 401 is refreshed once instead of
		// being taken for a configuration fault. Any other 4xx, and every
		// 5xx (which may come after the call was made), keeps its status:
		// a 429 without 070201 is http_429, which backs the seller's
		// Limiter off as 070201 does (the table's actThrottle).
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			if env, err := decodeEnvelope(b); err == nil && gatewayCode(string(env.Code)) {
				return answer{env: env, code: string(env.Code), msg: string(env.Describe)}
			}
		}
		return answer{code: "http_" + strconv.Itoa(resp.StatusCode), msg: snippet(b),
			err: fmt.Errorf("%s: HTTP %d", short, resp.StatusCode)}
	}
	env, err := decodeEnvelope(b)
	if err != nil {
		return answer{code: codeUnreadable, msg: "the answer is not the platform's JSON envelope", err: fmt.Errorf("%s: %w", short, err)}
	}
	return answer{env: env, code: string(env.Code), msg: string(env.Describe)}
}

// failure builds the outcome of an answer that is not a success, through
// the classification table.
func (c *Client) failure(a answer, ph phase, kind schemas.Kind) providers.Outcome {
	class, r := classify(a.code, ph)
	o := providers.Outcome{Class: class, Code: a.code, Message: a.msg, Err: a.err, Local: a.code == codeCanceled}
	switch {
	case class == providers.Rejected && kind == schemas.KindIssue:
		o.Field = fieldFor(r, a.msg)
	case r.action == actThrottle:
		o.RetryAfter = throttlePause
	}
	// The platform's own word on when to ask again (a 429's or a 503's
	// Retry-After), where it asks for longer.
	o.RetryAfter = max(o.RetryAfter, a.retryAfter)
	return o
}

// transportCause names a transport failure without the URL.
func transportCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	return err.Error()
}

// snippet is the start of a non-JSON answer, for Outcome.Message.
func snippet(b []byte) string {
	const n = 120
	if len(b) > n {
		b = b[:n]
	}
	for !utf8.Valid(b) && len(b) > 0 {
		b = b[:len(b)-1]
	}
	return strings.TrimSpace(string(b))
}
