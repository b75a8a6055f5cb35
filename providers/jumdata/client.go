package jumdata

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// ProviderName is the provider's name in results, metrics and the sandbox.
const ProviderName = "jumdata"

// pathPrefix is where jumdata's makeout endpoints live below BaseURL.
const pathPrefix = "/tax/v3/makeout/"

// The endpoints the client calls.
const (
	epBlueSubmit   = "blue-invoice/submit"
	epBlueQuery    = "blue-invoice/query"
	epRedSubmit    = "red-invoice/submit"
	epRedResult    = "red-invoice/result"
	epRedQuery     = "red-invoice/query"
	epRedConfirm   = "red-confirmation/confirm"
	epFormDetail   = "red-confirmation/detail"
	epAuthQRCode   = "auth/qrcode"
	epAuthResult   = "auth/result"
	epDownloadPage = "red-confirmation/page"
)

// Layouts of jumdata's dates, in China Standard Time.
const (
	timeLayout = "2006-01-02 15:04:05"
	dateLayout = "2006-01-02"
)

// cst is China Standard Time, the zone of every date jumdata shows.
var cst = time.FixedZone("CST", 8*60*60)

// Client is a jumdata client bound to one seller. It implements
// providers.Provider. Create it with New; it is safe for concurrent use.
type Client struct {
	cfg      Config
	http     *http.Client
	observer providers.Observer
	now      func() time.Time
	maxBody  int64
	endpoint string
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client for cfg, with its defaults applied. Its error wraps
// ErrConfig.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TaskIDLife == 0 {
		cfg.TaskIDLife = DefaultTaskIDLife
	}
	if cfg.PollAfter == 0 {
		cfg.PollAfter = DefaultPollAfter
	}
	if cfg.RedConfirmAfter == 0 {
		cfg.RedConfirmAfter = DefaultRedConfirmAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base := cfg.HTTPClient
	if base == nil {
		base = providers.NewHTTPClient(cfg.HTTP)
	}
	hc := *base
	// A redirect would turn the POST into a GET without its form: answer
	// the 3xx as it is instead.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		cfg:      cfg,
		http:     &hc,
		observer: providers.ObserverOrNop(cfg.Observer),
		now:      cfg.Now,
		maxBody:  cfg.HTTP.WithDefaults().MaxResponseBytes,
		endpoint: strings.TrimRight(cfg.BaseURL, "/") + pathPrefix,
	}, nil
}

// Name returns "jumdata".
func (c *Client) Name() string { return ProviderName }

// Submit sends a request to jumdata: an issue request to
// blue-invoice/submit, a red_confirm request to red-invoice/submit. A
// reissue is Rejected with Err wrapping providers.ErrUnsupported (jumdata
// has no reInvoice). See the package documentation for the classes.
//
// A blue submit is idempotent at jumdata for 8 hours through its taskId;
// a red submit is not (but the tax bureau refuses to reverse the same amount
// twice). Safe for concurrent use.
func (c *Client) Submit(ctx context.Context, call *providers.Call) providers.Outcome {
	if out, ok := c.check(call); !ok {
		return out
	}
	switch call.Request.Kind {
	case schemas.KindIssue:
		return c.submitBlue(ctx, call)
	case schemas.KindRedConfirm:
		return c.submitRed(ctx, call)
	}
	return unsupportedKind(call.Request.Kind)
}

// Query asks jumdata for the state of a request submitted before (or
// possibly submitted). For an issue it repeats the blue-invoice/submit with
// identical parameters within the taskId's life and searches
// blue-invoice/query after it; for a red_confirm it asks red-invoice/result
// by the form's uuid, or searches red-invoice/query without one. NotFound
// means nothing exists and submitting is safe. Safe for concurrent use.
func (c *Client) Query(ctx context.Context, call *providers.Call) providers.Outcome {
	if out, ok := c.check(call); !ok {
		return out
	}
	if call.Earlier && (call.Request.Kind == schemas.KindIssue || call.Refs.BillNo == "") {
		// A blue task is looked up by repeating it, or by searching for
		// its totals and buyer; a red one without its confirmation uuid
		// by its blue invoice and amounts. Both need the earlier
		// request's content, which a corrected request does not carry.
		return local(rowUnsupported, true, "orderNo",
			"jumdata finds an order's invoice by the request's content, and the earlier request for this order had other content",
			fmt.Errorf("jumdata query for an earlier request: %w", providers.ErrUnsupported))
	}
	switch call.Request.Kind {
	case schemas.KindIssue:
		return c.queryBlue(ctx, call)
	case schemas.KindRedConfirm:
		return c.queryRed(ctx, call)
	}
	return unsupportedKind(call.Request.Kind)
}

// RepeatableFor implements providers.RepeatableSubmitter: a blue invoice
// task submitted again with the same taskId (derived from seller and order
// number) and the same data within the taskId's life, less the clock
// margin, is answered from the first submission. Red confirmations are not.
func (c *Client) RepeatableFor(call *providers.Call) time.Duration {
	if call == nil || call.Request == nil || call.Request.Kind != schemas.KindIssue {
		return 0
	}
	return c.cfg.TaskIDLife - c.skewMargin()
}

// check refuses calls the client cannot make at all.
func (c *Client) check(call *providers.Call) (providers.Outcome, bool) {
	switch {
	case call == nil || call.Request == nil:
		return local(rowInvalid, false, "", "no request", nil), false
	case call.Request.SellerTaxNum != c.cfg.SellerTaxNum:
		return local(rowSeller, false, "sellerTaxNum",
			fmt.Sprintf("the request is for seller %s but this jumdata client is configured for %s", call.Request.SellerTaxNum, c.cfg.SellerTaxNum), nil), false
	}
	return providers.Outcome{}, true
}

func unsupportedKind(k schemas.Kind) providers.Outcome {
	msg := fmt.Sprintf("jumdata cannot perform a %s request", k)
	if k == schemas.KindReissue {
		msg = "jumdata has no reInvoice: a blue-invoice task is resumed by querying, not reissued"
	}
	return local(rowUnsupported, false, "kind", msg, fmt.Errorf("jumdata %s: %w", k, providers.ErrUnsupported))
}

// local is the outcome of a decision made without (or after) calling
// jumdata, through the table.
func local(row string, query bool, field, msg string, err error) providers.Outcome {
	return providers.Outcome{Class: lookup(row).class(query), Code: row, Message: msg, Field: field, Err: err, Local: noCall(row)}
}

// fieldOutcome turns a mapping error into an outcome: unsupported or invalid.
func fieldOutcome(err error, query bool) providers.Outcome {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return local(rowInvalid, query, "", err.Error(), err)
	}
	if errors.Is(err, providers.ErrUnsupported) {
		return local(rowUnsupported, query, fe.Field, fe.Reason, err)
	}
	return local(rowInvalid, query, fe.Field, fe.Reason, nil)
}

// reply is what one HTTP call produced: an envelope, or the row of the
// failure.
type reply struct {
	method string
	env    *envelope // nil on failure
	row    string    // the failure's row, when env is nil
	code   string    // Outcome.Code: the envelope's code or the failure's
	err    error
	// retryAfter is the answer's Retry-After header
	// (providers.ParseRetryAfter), 0 without one.
	retryAfter time.Duration
}

// is reports whether the call was answered with code.
func (r reply) is(code string) bool { return r.env != nil && r.env.Code == code }

// post makes one call: it waits for the rate limit, signs, posts the form,
// reads and decodes the answer, reports to the Observer and feeds "too
// frequent" answers back to the Limiter, which pauses the seller's calls for
// the answer's Retry-After (a second without one). The seller's login
// parameters are added to params.
func (c *Client) post(ctx context.Context, method string, params url.Values) reply {
	if l := c.cfg.Limiter; l != nil {
		if err := l.Wait(ctx); err != nil {
			return reply{method: method, row: rowNotSent, code: rowNotSent, err: fmt.Errorf("jumdata %s: rate limit wait: %w", method, err)}
		}
	}
	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)
	form.Set("appId", c.cfg.AppID)
	form.Set("timestamp", ts)
	form.Set("sign", Sign(c.cfg.AppID, c.cfg.AppSecret, ts))
	form.Set("nsrsbh", c.cfg.SellerTaxNum)
	form.Set("dq", c.cfg.DQ)
	form.Set("gryhm", c.cfg.Gryhm)
	form.Set("token", c.cfg.Token)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+method, strings.NewReader(form.Encode()))
	if err != nil {
		return reply{method: method, row: rowNotSent, code: rowNotSent, err: fmt.Errorf("jumdata %s: %w", method, err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	start := time.Now()
	r := c.do(req, method)
	c.observer.ObserveCall(ProviderName, method, r.code, time.Since(start))
	if c.cfg.Limiter != nil && lookup(r.row).throttle {
		c.cfg.Limiter.Throttled(r.retryAfter)
	}
	return r
}

// do sends req and reads the answer.
func (c *Client) do(req *http.Request, method string) reply {
	resp, err := c.http.Do(req)
	if err != nil {
		row := rowTransport
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			row = rowTimeout
		}
		return reply{method: method, row: row, code: row, err: fmt.Errorf("jumdata %s: %w", method, err)}
	}
	r := c.read(resp, method)
	r.retryAfter = providers.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	return r
}

// read reads and decodes an answer.
func (c *Client) read(resp *http.Response, method string) reply {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = providers.ReadBody(resp, 4096) // drain for connection reuse; the status says it all
		row, code := statusRow(resp.StatusCode)
		return reply{method: method, row: row, code: code, err: fmt.Errorf("jumdata %s: HTTP status %d", method, resp.StatusCode)}
	}
	body, err := providers.ReadBody(resp, c.maxBody)
	if err != nil {
		row := rowTransport
		if errors.Is(err, providers.ErrResponseTooLarge) {
			row = rowUnreadable
		}
		return reply{method: method, row: row, code: row, err: fmt.Errorf("jumdata %s: %w", method, err)}
	}
	env, err := decodeEnvelope(body)
	if err != nil {
		return reply{method: method, row: rowUnreadable, code: rowUnreadable, err: fmt.Errorf("jumdata %s: %w", method, err)}
	}
	return reply{method: method, env: env, row: env.Code, code: env.Code}
}

// fail turns an answer that is not a success into an outcome through the
// table.
func (c *Client) fail(r reply, query bool) providers.Outcome {
	key := r.row
	if key == "400" && r.env != nil && refusesCredentials(r.env.Msg) {
		key = rowCredentials
	}
	row := lookup(key)
	out := providers.Outcome{Class: row.class(query), Code: r.code, Err: r.err, Local: noCall(r.row)}
	switch {
	case r.env != nil && r.env.Msg != "":
		out.Message = r.env.Msg
	case r.err != nil:
		out.Message = r.err.Error()
	default:
		out.Message = row.meaning
	}
	if row.poll {
		out.RetryAfter = c.cfg.PollAfter
	}
	// The provider's own word on when to ask again (a 429's or a 503's
	// Retry-After), where it asks for longer.
	out.RetryAfter = max(out.RetryAfter, r.retryAfter)
	if out.Class == classOK { // a success the caller could not use: never here by design
		out.Class = lookup(rowUnreadable).class(query)
	}
	return out
}

// unreadable is the outcome of a 200 answer whose data the client cannot
// use: as doubtful as a lost answer.
func (c *Client) unreadable(r reply, query bool, why string) providers.Outcome {
	return c.fail(reply{method: r.method, row: rowUnreadable, code: rowUnreadable,
		err: fmt.Errorf("jumdata %s: %s", r.method, why)}, query)
}

// parseTime reads a jumdata date and time (China time); zero when it
// cannot.
func parseTime(s string) time.Time {
	t, err := time.ParseInLocation(timeLayout, s, cst)
	if err != nil {
		return time.Time{}
	}
	return t
}

// digital returns n when it is a 20-digit fully digital invoice number.
func digital(n string) string {
	if len(n) != 20 {
		return ""
	}
	for i := 0; i < len(n); i++ {
		if n[i] < '0' || n[i] > '9' {
			return ""
		}
	}
	return n
}

// skewMargin is how much the clocks of this service and jumdata may differ:
// the taskId life is shortened by it, and a search accepts invoices issued
// this much before the first submission.
func (c *Client) skewMargin() time.Duration {
	return min(10*time.Minute, c.cfg.TaskIDLife/10)
}

// dateRange returns kprqq and kprqz from since to now, in China time.
func (c *Client) dateRange(since time.Time) (string, string) {
	from, to := since.Add(-c.skewMargin()).In(cst), c.now().In(cst)
	if to.Before(from) {
		to = from
	}
	return from.Format(dateLayout), to.Format(dateLayout)
}

// maxPages bounds a search; a list longer than maxPages × pageSize is not
// read to the end (rowIncomplete).
const (
	maxPages = 200
	pageSize = 50
)

// listAll reads every page of a list endpoint. On failure it returns the
// outcome (as a Query) and false.
func listAll[T any](ctx context.Context, c *Client, method string, params url.Values) ([]T, providers.Outcome, bool) {
	var all []T
	for n := 1; n <= maxPages; n++ {
		p := url.Values{}
		for k, v := range params {
			p[k] = v
		}
		p.Set("pageNumber", strconv.Itoa(n))
		p.Set("pageSize", strconv.Itoa(pageSize))
		r := c.post(ctx, method, p)
		if !r.is("200") {
			return nil, refusedLookup(c.fail(r, true), "a look-up was refused, which says nothing of the order"), false
		}
		var pg page[T]
		if err := decodeData(r.env, &pg); err != nil {
			return nil, c.unreadable(r, true, err.Error()), false
		}
		if pg.List == nil {
			// A 200 without its list says nothing: read as "none", it
			// would let an order be submitted again (a search answering
			// NotFound).
			return nil, c.unreadable(r, true, "a 200 answer without its list"), false
		}
		list := *pg.List
		if pg.PageNumber.set && pg.PageNumber.n != n {
			return nil, local(rowIncomplete, true, "",
				fmt.Sprintf("%s answered page %d when asked for page %d: the list cannot be read to the end", method, pg.PageNumber.n, n), nil), false
		}
		all = append(all, list...)
		size := pageSize
		if pg.PageSize.set && pg.PageSize.n > 0 {
			size = pg.PageSize.n
		}
		if len(list) == 0 || (pg.Total.set && len(all) >= pg.Total.n) || (!pg.Total.set && len(list) < size) {
			return all, providers.Outcome{}, true
		}
	}
	return nil, local(rowIncomplete, true, "", fmt.Sprintf("%s has more than %d pages", method, maxPages), nil), false
}
