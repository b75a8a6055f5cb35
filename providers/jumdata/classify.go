package jumdata

import (
	"fmt"
	"strings"

	"github.com/fapiaohub/invoicer/providers"
)

// The classification table: what every jumdata code, HTTP status and
// transport failure means for the pipeline. It is the only place where an
// answer becomes a providers.Class.
//
// A row has two classes. Submit is used on Provider.Submit, whose call may
// create an invoice or a red confirmation form; query on Provider.Query,
// whose calls only ask (or repeat a submit with identical parameters, which
// jumdata treats as the same task). The difference is the doubt: a Submit
// whose answer was lost may have taken effect (Unknown: query before
// anything else), a Query whose answer was lost has changed nothing (Retry).

// rule is one row of the table.
type rule struct {
	submit, query providers.Class
	// throttle: the provider said "too frequent"; the Limiter slows down.
	throttle bool
	// poll: the answer means "in progress"; RetryAfter is Config.PollAfter.
	poll bool
	// meaning is the document's description, the Message when the answer
	// carried none.
	meaning string
}

// classOK marks the success row: the endpoint's data decides the class.
const classOK providers.Class = 0

// Keys of the rows that are not jumdata codes.
const (
	rowTransport   = "transport"       // connection refused, reset, closed before the answer
	rowTimeout     = "timeout"         // HTTP timeout or context deadline, or HTTP 408
	rowHTTP5xx     = "http_5xx"        // HTTP status 500..599 (Outcome.Code "http_<status>")
	rowHTTP429     = "http_429"        // HTTP 429 Too Many Requests
	rowHTTPOther   = "http_other"      // any other non-2xx HTTP status (3xx, 4xx)
	rowUnreadable  = "unreadable"      // an answer that is not the envelope, or oversized, or a 200 without its data
	rowNotSent     = "not_sent"        // the call never left: the rate limit wait ended with the context
	rowUnsupported = "unsupported"     // jumdata cannot do this kind of request (reissue, a red order, ...)
	rowInvalid     = "invalid"         // the request cannot be mapped to jumdata's parameters; Field says where
	rowAmbiguous   = "ambiguous"       // a search found several invoices that could be the order's
	rowIncomplete  = "incomplete"      // a search could not read every page
	rowSeller      = "seller_mismatch" // the request is for another seller than the client's
	rowCredentials = "credentials"     // a 400 that names the signature or the common parameters
)

// table is the classification table.
var table = map[string]rule{
	// jumdata codes (seed 004).
	"200": {submit: classOK, query: classOK, meaning: "成功"},
	"202": {submit: providers.Retry, query: providers.Accepted, poll: true, meaning: "任务正在进行中,请稍后再试 (ask again with identical parameters)"},
	"301": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "用户名或手机号在电局不存在 (user unknown at the tax bureau)"},
	"302": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "未登录或登录已失效,请重新登录 (not logged in or login expired)"},
	"303": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "token已失效,请重新获取token (token expired)"},
	"311": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "未完成扫脸 (face scan not done)"},
	"312": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "实名认证过期,重新获取二维码进行人脸识别 (face authentication expired)"},
	"399": {submit: providers.Rejected, query: providers.Rejected, meaning: "税局开票异常 (the tax bureau refused; the message says why)"},
	"400": {submit: providers.Rejected, query: providers.Rejected, meaning: "参数错误 (bad parameters)"},
	"404": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "接口地址不正确 (no such endpoint: check BaseURL; no order can fix it)"},
	"500": {submit: providers.Retry, query: providers.Retry, meaning: "系统维护,请稍候再试 (maintenance)"},
	"501": {submit: providers.Retry, query: providers.Retry, meaning: "税局系统异常,请稍后再试 (tax bureau down)"},
	"601": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "接口未开通 (API not enabled)"},
	"602": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "账号停用 (account disabled)"},
	"604": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "接口停用 (API disabled)"},
	"606": {submit: providers.Retry, query: providers.Retry, throttle: true, meaning: "调用超限,请稍候再试 (quota exceeded)"},
	"607": {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "ip不在白名单 (IP not allowed)"},
	"609": {submit: providers.Retry, query: providers.Retry, throttle: true, meaning: "请求过于频繁,请稍候再试 (too frequent)"},

	// HTTP and transport: for Submit the call is in doubt.
	rowTransport:  {submit: providers.Unknown, query: providers.Retry, meaning: "transport error: the call may or may not have taken effect"},
	rowTimeout:    {submit: providers.Unknown, query: providers.Retry, meaning: "timeout: the call may or may not have taken effect"},
	rowHTTP5xx:    {submit: providers.Unknown, query: providers.Retry, meaning: "HTTP server error: the call may or may not have taken effect"},
	rowUnreadable: {submit: providers.Unknown, query: providers.Retry, meaning: "unreadable answer: the call may or may not have taken effect"},
	rowHTTP429:    {submit: providers.Retry, query: providers.Retry, throttle: true, meaning: "HTTP 429 too many requests"},
	rowHTTPOther:  {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "unexpected HTTP status: check BaseURL and the network path to jumdata"},
	rowNotSent:    {submit: providers.Retry, query: providers.Retry, meaning: "not sent: the rate limit wait ended"},

	// Decisions of this client, no call made or the calls inconclusive.
	rowUnsupported: {submit: providers.Rejected, query: providers.Rejected, meaning: "not supported by jumdata"},
	rowInvalid:     {submit: providers.Rejected, query: providers.Rejected, meaning: "the request cannot be expressed in jumdata's parameters"},
	rowAmbiguous:   {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "several invoices match the order: a person must decide which is its own"},
	rowIncomplete:  {submit: providers.Retry, query: providers.Retry, meaning: "the invoice list could not be read to the end"},
	rowSeller:      {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "the request's seller is not the seller this client is configured for"},
	// A 400 whose message names the signature, the timestamp or appId
	// refuses this client's configuration (appSecret, appId) or its clock,
	// not the order: every order would get it, so the seller is held for
	// a person instead of each order being rejected. Seed 004 gives no code
	// of its own for it.
	rowCredentials: {submit: providers.ActionRequired, query: providers.ActionRequired, meaning: "the signature or the common parameters were refused: check appId, appSecret and the server's clock"},
}

// credentialWords are what a 400's message names when it refuses the
// signature or the common parameters rather than the order.
var credentialWords = []string{"签名", "时间戳", "appid", "appsecret", "timestamp", "sign"}

// refusesCredentials reports whether a 400's message is about the
// signature or the common parameters (rowCredentials).
func refusesCredentials(msg string) bool {
	msg = strings.ToLower(msg)
	for _, w := range credentialWords {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

// refusedLookup turns a look-up's refusal (a list endpoint answering 399
// or 400, a repetition of a task refused for its data) into Retry, saying
// why before jumdata's message: it says nothing of an order jumdata may
// have issued or be working on, and a Rejected would publish a false
// "rejected" for it. The delivery limit bounds the retries.
func refusedLookup(out providers.Outcome, why string) providers.Outcome {
	if out.Class == providers.Rejected {
		out.Class = providers.Retry
		out.Message = why + ": " + out.Message
	}
	return out
}

// noCall reports whether the row is an answer of this client's own, made
// without any call reaching jumdata (providers.Outcome.Local).
func noCall(row string) bool {
	switch row {
	case rowUnsupported, rowInvalid, rowSeller, rowNotSent:
		return true
	}
	return false
}

// unknownCode is the row of a code the table does not list, with the code
// kept in Outcome.Code: a permanent refusal of a Submit, and Retry on a
// Query, which must not call an order the provider may have accepted
// rejected on an answer it cannot read (the pipeline's delivery limit
// bounds the retries).
var unknownCode = rule{submit: providers.Rejected, query: providers.Retry, meaning: "unknown jumdata code"}

// lookup returns the row of key.
func lookup(key string) rule {
	if r, found := table[key]; found {
		return r
	}
	return unknownCode
}

// class returns the row's class for a Submit or a Query.
func (r rule) class(query bool) providers.Class {
	if query {
		return r.query
	}
	return r.submit
}

// statusRow returns the row key and Outcome.Code of a non-2xx HTTP status.
func statusRow(status int) (row, code string) {
	code = fmt.Sprintf("http_%d", status)
	switch {
	case status >= 500:
		return rowHTTP5xx, code
	case status == 429:
		return rowHTTP429, code
	case status == 408:
		// Request Timeout: passing, not configuration, and a gateway may
		// answer it after forwarding the call: in doubt, as a timeout.
		return rowTimeout, code
	}
	return rowHTTPOther, code
}
