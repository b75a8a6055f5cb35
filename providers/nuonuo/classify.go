package nuonuo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fapiaohub/invoicer/providers"
)

// This file is the package's one classification table: every code of seeds
// 000, 001 and 002, the platform's public codes, the token endpoint's codes,
// HTTP statuses and transport failures map to a providers.Class here, and
// nowhere else. The status tables of queryInvoiceResult and
// queryInvoiceRedConfirm follow it.

// action is what the client does besides returning the class; the zero
// action is nothing.
type action int

const (
	// actInDoubt: the call may have taken effect. Submit answers Unknown
	// (the pipeline queries before anything else); Query answers Retry (a
	// query has no effect).
	actInDoubt action = iota + 1
	// actThrottle: "too frequent" (070201, or HTTP 429 with or without
	// the platform's envelope): Retry, and the seller's Limiter backs off,
	// pausing the seller's calls for the answer's Retry-After (a second
	// without one).
	actThrottle
	// actRefreshToken: the token does not match: with a TokenSource,
	// invalidate it, refresh once and repeat the call once; a refusal of the
	// replacement (or of a static token) is ActionRequired, and the
	// TokenSource fetches no more tokens for 070301 until a call is
	// accepted (TokenSourceConfig.MismatchHold).
	actRefreshToken
	// actReconcile: E9106 on requestBillingNew: an order exists under the
	// number; Query it and answer what the query says (on a first
	// submission, only when its amounts are the request's: submitIssue).
	actReconcile
	// actReconcileResubmission: E9103 on requestBillingNew: the blue
	// invoice is reversed already, which an earlier submission of the same
	// red order may have done. On a resubmission, Query the order by its
	// number and answer what the query says when Nuonuo holds it; else, and
	// on a first submission, Rejected (submitIssue).
	actReconcileResubmission
)

// rule is one row of the table.
type rule struct {
	class  providers.Class
	action action
	// field is the request field the code blames, for Rejected outcomes of
	// kind issue. "[]" marks a line field: the line index is taken from a
	// "第x行" in the provider's message, else the path names the whole
	// invoiceDetail array.
	field string
}

// Pseudo-codes for answers that carry no provider code.
const (
	codeTransport      = "transport"       // connection refused or reset, timeout, ctx ended mid-call
	codeUnreadable     = "unreadable"      // body too large, not JSON, no code
	codeTokenTransport = "token_transport" // the token endpoint could not be reached: the service call was not made
	codeCanceled       = "canceled"        // ctx ended before the call went out
	codeSuccess        = "E0000"
	codeReversed       = "E9103"
	codeDuplicate      = "E9106"
	codeNotFound       = "E9500"
	codeRetryLimit     = "E9613"
	codeTooFrequent    = "070201"
	codeTokenMismatch  = "070301"
	codeTokenLimit     = "070306"
)

// table maps exact codes. Codes not listed fall to prefixes and ranges
// below, and finally to Rejected with the code kept in Outcome.Code.
var table = map[string]rule{
	// Seed 001: requestBillingNew. Permanent: the request must change.
	"E4000": {class: providers.Rejected},
	"E9101": {class: providers.Rejected, field: "order.invoiceType"},
	"E9102": {class: providers.Rejected, field: "order.invoiceCode"},
	"E9103": {class: providers.Rejected, action: actReconcileResubmission, field: "order.invoiceNum"},
	"E9104": {class: providers.Rejected, field: "order.email"},
	"E9105": {class: providers.Rejected, field: "order.invoiceDetail[].goodsName"},
	"E9106": {class: providers.Rejected, action: actReconcile, field: "order.orderNo"},
	"E9107": {class: providers.Rejected, field: "order.proxyInvoiceFlag"},
	"E9108": {class: providers.Rejected, field: "order.invoiceDetail[].taxIncludedAmount"},
	"E9110": {class: providers.Rejected, field: "order.invoiceDetail[].invoiceLineProperty"},
	"E9111": {class: providers.Rejected, field: "order.invoiceDetail[].num"},
	"E9112": {class: providers.Rejected, field: "order.invoiceDetail[].taxRate"},
	"E9113": {class: providers.Rejected, field: "order.buyerAddress"},
	"E9114": {class: providers.Rejected, field: "order.invoiceDetail[].num"},
	"E9115": {class: providers.Rejected, field: "order.buyerTel"},
	"E9116": {class: providers.Rejected, field: "order.invoiceDetail[].num"},
	"E9117": {class: providers.Rejected, field: "order.buyerName"},
	"E9118": {class: providers.Rejected, field: "order.buyerTaxNum"},
	"E9119": {class: providers.Rejected, field: "order.invoiceDetail[].num"},
	"E9120": {class: providers.Rejected, field: "order.buyerAccount"},
	"E9121": {class: providers.Rejected, field: "order.invoiceDetail[].goodsCode"},
	"E9122": {class: providers.Rejected, field: "order.invoiceDetail"},
	"E9123": {class: providers.Rejected, field: "order.invoiceDetail[].price"},
	"E9124": {class: providers.Rejected, field: "order.invoiceDetail[].taxIncludedAmount"},
	"E9125": {class: providers.Rejected, field: "order.invoiceDetail[].taxIncludedAmount"},
	"E9126": {class: providers.Rejected, field: "order.invoiceDetail[].taxExcludedAmount"},
	"E9127": {class: providers.Rejected, field: "order.invoiceDetail[].taxExcludedAmount"},
	"E9128": {class: providers.Rejected, field: "order.invoiceDetail[].tax"},
	"E9129": {class: providers.Rejected, field: "order.invoiceDetail[].tax"},
	"E9130": {class: providers.Rejected, field: "order.invoiceDetail[].taxIncludedAmount"},
	"E9131": {class: providers.Rejected, field: "order.invoiceDetail[].tax"},
	"E9138": {class: providers.Rejected, field: "order.invoiceDetail[].goodsCode"},
	"E9154": {class: providers.Rejected, field: "order.invoiceDetail"},
	"E9301": {class: providers.Rejected, field: "order.salerTaxNum"},
	"E9302": {class: providers.Rejected, field: "order.salerTaxNum"},
	"E9338": {class: providers.Rejected},
	// queryInvoiceResult: nothing there. On a Submit (reInvoice of an
	// unknown order) it is Rejected: there is nothing to act on.
	"E9500": {class: providers.NotFound},
	// Seed 000: reInvoice retry limit. The design requeues it; the
	// consumer's delivery limit bounds it.
	"E9613": {class: providers.Retry},

	// Platform codes (公共异常码).
	"0200":          {class: providers.Retry},    // API签名异常: a service fault, not our signature (that is 070601)
	"0201":          {class: providers.Rejected}, // required input empty or malformed
	"0202":          {class: providers.Retry},    // API计费异常: service fault
	"0203":          {class: providers.Retry},    // API处理异常
	"040102":        {class: providers.Retry},    // API服务异常，请稍后重试
	codeTooFrequent: {class: providers.Retry, action: actThrottle},
	"070204":        {class: providers.ActionRequired}, // no calls left on a paid API: someone must buy more
	"070301":        {class: providers.ActionRequired, action: actRefreshToken},
	"070401":        {class: providers.ActionRequired}, // userTax does not match the token
	"070501":        {class: providers.ActionRequired}, // the API (method family) does not exist for this app
	"070601":        {class: providers.ActionRequired}, // signature mismatch: wrong secret, or clock skew

	// HTTP statuses and transport failures.
	"http_408": {class: providers.Retry},
	// HTTP's own "too many requests", whatever the body under it (a
	// proxy's page, nothing, an envelope without 070201): as 070201.
	"http_429":         {class: providers.Retry, action: actThrottle},
	"http_401":         {class: providers.ActionRequired},
	"http_403":         {class: providers.ActionRequired},
	"http_404":         {class: providers.ActionRequired}, // BaseURL is wrong
	"http_405":         {class: providers.ActionRequired},
	"http_5xx":         {class: providers.Unknown, action: actInDoubt},
	codeTransport:      {class: providers.Unknown, action: actInDoubt},
	codeUnreadable:     {class: providers.Unknown, action: actInDoubt},
	codeTokenTransport: {class: providers.Retry},
	codeCanceled:       {class: providers.Retry},
}

// prefixes map code families: every 0701xx (app key and secret) and 0703xx
// (token: 070301 is in table, 070304/070305 bad credentials, 070306 token
// call limit, 070307 wrong app type, 070315 content type) needs an operator.
var prefixes = []struct {
	prefix string
	rule   rule
}{
	{"0701", rule{class: providers.ActionRequired}},
	{"0703", rule{class: providers.ActionRequired}},
}

// lookup returns the rule for code: exact, then prefix, then the E9101–E9131
// range, then the default (Rejected, code kept).
func lookup(code string) rule {
	if r, ok := table[code]; ok {
		return r
	}
	if n, ok := httpStatusOf(code); ok {
		switch {
		case n >= 500:
			return table["http_5xx"]
		case n >= 400:
			return rule{class: providers.Rejected}
		case n >= 300:
			// A redirect, not followed: BaseURL (or the path to it) is
			// wrong, as for a 404, and nothing was done.
			return rule{class: providers.ActionRequired}
		}
	}
	for _, p := range prefixes {
		if strings.HasPrefix(code, p.prefix) {
			return p.rule
		}
	}
	if n, ok := e9Number(code); ok && n >= 9101 && n <= 9131 {
		return rule{class: providers.Rejected}
	}
	return rule{class: providers.Rejected}
}

// tokenAccepted reports whether an answer with code shows that the platform
// took the access token: any code of the platform's envelope except its
// 07xxxx gateway codes, some of which (070101, 070601) are checked before
// the token and so say nothing about it. Pseudo-codes (transport, HTTP
// statuses) have no envelope and say nothing either.
func tokenAccepted(envelopeCode string) bool {
	return envelopeCode != "" && !gatewayCode(envelopeCode)
}

// gatewayCode reports whether code is one of the platform gateway's 07xxxx
// codes (app key, throttling, token, user, API, signature), which it
// answers before any service sees the call.
func gatewayCode(code string) bool {
	return strings.HasPrefix(code, "07")
}

// phase says whether a call was a Submit (may have had an effect) or a Query.
type phase int

const (
	phaseSubmit phase = iota
	phaseQuery
)

// classify returns the class of code in phase, and the rule for its action.
// A query refused (a code that would reject a submission, an unlisted code,
// a gateway's HTTP 4xx) says nothing of the order it asked about, which
// the platform may have accepted and be issuing: Retry, never Rejected.
// The order's own failure comes in a query's answer, as a status.
func classify(code string, ph phase) (providers.Class, rule) {
	r := lookup(code)
	c := r.class
	switch {
	case r.action == actInDoubt && ph == phaseQuery:
		c = providers.Retry
	case c == providers.Rejected && ph == phaseQuery:
		c = providers.Retry
	case c == providers.NotFound && ph == phaseSubmit:
		c = providers.Rejected
	}
	return c, r
}

// lineRe finds the 1-based line number in messages such as
// "金额*税率-税额大于0.06,明细行名称:xxx,第3行".
var lineRe = regexp.MustCompile(`第\s*(\d+)\s*行`)

// fieldFor returns the field path the rule blames for message.
func fieldFor(r rule, message string) string {
	if !strings.Contains(r.field, "[]") {
		return r.field
	}
	if m := lineRe.FindStringSubmatch(message); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 {
			return strings.Replace(r.field, "[]", fmt.Sprintf("[%d]", n-1), 1)
		}
	}
	return "order.invoiceDetail"
}

func httpStatusOf(code string) (int, bool) {
	s, ok := strings.CutPrefix(code, "http_")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func e9Number(code string) (int, bool) {
	s, ok := strings.CutPrefix(code, "E")
	if !ok || len(s) != 4 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Invoice statuses of queryInvoiceResult.
const (
	statusIssued      = "2"  // 开票完成 (final)
	statusIssuing     = "20" // 开票中
	statusSealPending = "21" // 开票成功签章中
	statusFailed      = "22" // 开票失败 (final)
	statusSealFailed  = "24" // 开票成功签章失败 (final: the invoice exists)
	statusVoided      = "3"  // 已作废: the invoice existed
	statusVoiding     = "31" // 作废中
)

// invoiceState is what one queryInvoiceResult entry means.
type invoiceState int

const (
	invPending invoiceState = iota // 20, 21 and unknown statuses: ask again
	invIssued                      // 2, 24, 3, 31: the invoice exists
	invFailed                      // 22
)

var invoiceStatuses = map[string]invoiceState{
	statusIssued:      invIssued,
	statusSealFailed:  invIssued,
	statusVoided:      invIssued,
	statusVoiding:     invIssued,
	statusIssuing:     invPending,
	statusSealPending: invPending,
	statusFailed:      invFailed,
}

func invoiceStateOf(status string) invoiceState {
	if s, ok := invoiceStatuses[status]; ok {
		return s
	}
	return invPending
}

// billStatuses maps queryInvoiceRedConfirm billStatus to a class: 01 no
// confirmation needed and 04 confirmed by both are done; 02/03 await the
// other party and 15 is applying; 05–10 are void and 16 the application
// failed. 10, void because the blue invoice became an abnormal voucher
// (作废（异常凭证）), is not in the seeds: it is the tax bureau's status,
// whose list 01 to 09 follow, and a form voided so must not be polled
// until its request is given up. Unknown statuses are Accepted (ask again);
// a form without one is an answer that cannot be read (queryRedConfirm).
var billStatuses = map[string]providers.Class{
	"01": providers.Issued,
	"04": providers.Issued,
	"02": providers.Accepted,
	"03": providers.Accepted,
	"15": providers.Accepted,
	"05": providers.Rejected,
	"06": providers.Rejected,
	"07": providers.Rejected,
	"08": providers.Rejected,
	"09": providers.Rejected,
	"10": providers.Rejected,
	"16": providers.Rejected,
}

// billStatusOf returns a billStatus as the table writes it, two digits: a
// status sent as a JSON number (4 for "04") has lost its leading zero.
func billStatusOf(s string) string {
	if len(s) == 1 && s[0] >= '0' && s[0] <= '9' {
		return "0" + s
	}
	return s
}

func billClass(status string) providers.Class {
	if c, ok := billStatuses[status]; ok {
		return c
	}
	return providers.Accepted
}
