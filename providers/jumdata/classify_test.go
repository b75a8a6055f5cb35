package jumdata_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// TestClassification reaches every row of the classification table over
// real HTTP, through the sandbox's scripted answers and faults, once on
// Submit and once on Query (which, within the taskId's life, repeats the
// blue-invoice/submit).
func TestClassification(t *testing.T) {
	script := func(code string) sandbox.Faults {
		return sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", Code: code}}}
	}
	status := func(s int) sandbox.Faults {
		return sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", HTTPStatus: s}}}
	}
	const (
		issued   = providers.Issued
		accepted = providers.Accepted
		retry    = providers.Retry
		rejected = providers.Rejected
		action   = providers.ActionRequired
		unknown  = providers.Unknown
	)
	tests := []struct {
		name          string
		row           string // the table row reached
		faults        sandbox.Faults
		edit          func(*jumdata.Config)
		cancel        bool // call with a cancelled context
		submit, query providers.Class
		code          string // Outcome.Code
		throttle      bool   // the Limiter must have been throttled
	}{
		{name: "200 issued", row: "200", submit: issued, query: issued, code: "200"},
		{name: "202 in progress", row: "202", faults: script("202"), submit: retry, query: accepted, code: "202"},
		{name: "301 user unknown", row: "301", faults: script("301"), submit: action, query: action, code: "301"},
		{name: "302 not logged in", row: "302", faults: script("302"), submit: action, query: action, code: "302"},
		{name: "303 token expired", row: "303", faults: script("303"), submit: action, query: action, code: "303"},
		{name: "311 face scan", row: "311", faults: script("311"), submit: action, query: action, code: "311"},
		{name: "312 face auth expired", row: "312", faults: script("312"), submit: action, query: action, code: "312"},
		{name: "399 tax bureau refused", row: "399", faults: script("399"), submit: rejected, query: rejected, code: "399"},
		// A refused repetition of the task says nothing of the task, which
		// may still be under way (Retry; the search found no invoice).
		{name: "400 bad parameters", row: "400", faults: script("400"), submit: rejected, query: retry, code: "400"},
		{name: "400 for a wrong appSecret (configuration: the seller is held)", row: "credentials",
			edit: func(c *jumdata.Config) { c.AppSecret = "not-the-secret" }, submit: action, query: action, code: "400"},
		{name: "404 no such endpoint (configuration: the seller is held)", row: "404", faults: script("404"), submit: action, query: action, code: "404"},
		{name: "500 maintenance", row: "500", faults: script("500"), submit: retry, query: retry, code: "500"},
		{name: "501 tax bureau down", row: "501", faults: script("501"), submit: retry, query: retry, code: "501"},
		{name: "601 not enabled", row: "601", faults: script("601"), submit: action, query: action, code: "601"},
		{name: "602 account disabled", row: "602", faults: script("602"), submit: action, query: action, code: "602"},
		{name: "604 API disabled", row: "604", faults: script("604"), submit: action, query: action, code: "604"},
		{name: "606 quota exceeded", row: "606", faults: script("606"), submit: retry, query: retry, code: "606", throttle: true},
		{name: "607 IP not allowed", row: "607", faults: script("607"), submit: action, query: action, code: "607"},
		{name: "609 too frequent", row: "609", faults: script("609"), submit: retry, query: retry, code: "609", throttle: true},
		{name: "unknown code", row: "(unknown)", faults: script("777"), submit: rejected, query: retry, code: "777"},
		{name: "HTTP 500", row: "http_5xx", faults: status(500), submit: unknown, query: retry, code: "http_500"},
		{name: "HTTP 502", row: "http_5xx", faults: status(502), submit: unknown, query: retry, code: "http_502"},
		{name: "HTTP 503 fault", row: "http_5xx", faults: sandbox.Faults{Error5xx: 1}, submit: unknown, query: retry, code: "http_503"},
		{name: "HTTP 408", row: "timeout", faults: status(408), submit: unknown, query: retry, code: "http_408"},
		{name: "HTTP 429", row: "http_429", faults: status(429), submit: retry, query: retry, code: "http_429", throttle: true},
		{name: "HTTP 403", row: "http_other", faults: status(403), submit: action, query: action, code: "http_403"},
		{name: "HTTP 404", row: "http_other", faults: status(404), submit: action, query: action, code: "http_404"},
		{name: "connection reset", row: "transport", faults: sandbox.Faults{Reset: 1}, submit: unknown, query: retry, code: "transport"},
		{name: "answer dropped", row: "transport", faults: sandbox.Faults{Drop: 1}, submit: unknown, query: retry, code: "transport"},
		{name: "timeout", row: "timeout", faults: sandbox.Faults{SpikeRate: 1, SpikeLatency: time.Minute},
			edit: func(c *jumdata.Config) { c.HTTP.Timeout = 100 * time.Millisecond }, submit: unknown, query: retry, code: "timeout"},
		{name: "garbage answer", row: "unreadable", faults: sandbox.Faults{Garbage: 1}, submit: unknown, query: retry, code: "unreadable"},
		{name: "oversized answer", row: "unreadable", edit: func(c *jumdata.Config) { c.HTTP.MaxResponseBytes = 16 },
			submit: unknown, query: retry, code: "unreadable"},
		{name: "rate limit wait cancelled", row: "not_sent", cancel: true, submit: retry, query: retry, code: "not_sent"},
	}
	reached := map[string]bool{}
	for _, tt := range tests {
		reached[tt.row] = true
		t.Run(tt.name, func(t *testing.T) {
			limiter := providers.NewLimiter(providers.LimiterConfig{Rate: 1000})
			e := newEnv(t, sandbox.Config{}, func(c *jumdata.Config) {
				c.Limiter = limiter
				if tt.edit != nil {
					tt.edit(c)
				}
			})
			ctx := t.Context()
			if tt.cancel {
				cctx, cancel := context.WithCancel(ctx)
				cancel()
				ctx = cctx
			}
			call := &providers.Call{Request: issueRequest(t, "CL-1")}
			e.sb.SetFaults(tt.faults)
			// Only the tax bureau's refusal of the task itself ends it for
			// good (a corrected request then gets a taskId of its own), and
			// only an answer made without a call is Local.
			marks := func(what string, out providers.Outcome) {
				t.Helper()
				if refused := errors.Is(out.Err, providers.ErrSubmissionRefused); refused != (tt.row == "399") {
					t.Errorf("%s: refused for good %v (err %v)", what, refused, out.Err)
				}
				if out.Local != (tt.row == "not_sent") {
					t.Errorf("%s: Local %v", what, out.Local)
				}
			}
			out := e.client.Submit(ctx, call)
			wantClass(t, "submit", out, tt.submit, tt.code)
			marks("submit", out)
			if out.Message == "" {
				t.Error("submit outcome without a message")
			}

			call.SubmittedAt = e.clock.Now()
			e.sb.SetFaults(tt.faults) // the script again, for the query
			out = e.client.Query(ctx, call)
			wantClass(t, "query", out, tt.query, tt.code)
			marks("query", out)
			if out.Refs.TaskID != jumdata.TaskID(sandbox.DefaultJumdataSeller, "CL-1", 0) {
				t.Errorf("query refs %+v", out.Refs)
			}

			if throttled := limiter.Throttles() > 0; throttled != tt.throttle {
				t.Errorf("limiter throttled %d times; want throttling %v", limiter.Throttles(), tt.throttle)
			}
			if tt.throttle && limiter.Limit() >= 1000 {
				t.Errorf("limit %v did not come down", limiter.Limit())
			}
		})
	}
	// Rows reached by other tests: the client's own decisions.
	elsewhere := map[string]string{
		"unsupported":     "TestUnsupported",
		"invalid":         "TestRed/blueInvoiceTime_is_required",
		"ambiguous":       "TestQueryPastTaskIDLife/two_candidates",
		"incomplete":      "TestIncompleteList",
		"seller_mismatch": "TestSellerMismatch",
	}
	for _, row := range jumdata.TableRows() {
		if !reached[row] && elsewhere[row] == "" {
			t.Errorf("no test reaches classification row %q", row)
		}
	}
}

// fakeJumdata answers every call with status and body: a hand-written
// stand-in for answers the sandbox never gives.
func fakeJumdata(t *testing.T, status int, body string) *jumdata.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(ts.Close)
	c, err := jumdata.New(jumdata.Config{
		BaseURL: ts.URL, AppID: "a", AppSecret: "s", Token: "t",
		SellerTaxNum: sandbox.DefaultJumdataSeller, DQ: "330000", Gryhm: "u",
		Now: clockStart,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLenientEnvelope(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		class  providers.Class
		code   string
	}{
		{"code as a string", 200, `{"code":"302","msg":"未登录或登录已失效,请重新登录"}`, providers.ActionRequired, "302"},
		{"code as a padded string", 200, `{"code":" 200 ","msg":"开具成功","taskNo":526782409178028997165459,"data":{"fphm":"25332000000456135731","kprq":"2025-10-15 10:37:23"}}`, providers.Issued, "200"},
		{"202 with null data", 200, `{"code":202,"msg":"任务正在进行中,请稍后再试","data":null}`, providers.Retry, "202"},
		{"200 without fphm", 200, `{"code":200,"msg":"开具成功","data":{}}`, providers.Unknown, "unreadable"},
		{"200 with unreadable data", 200, `{"code":200,"data":[1,2]}`, providers.Unknown, "unreadable"},
		{"no code", 200, `{"msg":"成功"}`, providers.Unknown, "unreadable"},
		{"fractional code", 200, `{"code":200.5}`, providers.Unknown, "unreadable"},
		{"HTML", 200, `<html><body>gateway</body></html>`, providers.Unknown, "unreadable"},
		{"redirect is not followed", http.StatusFound, "", providers.ActionRequired, "http_302"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fakeJumdata(t, tt.status, tt.body)
			out := c.Submit(t.Context(), &providers.Call{Request: issueRequest(t, "LE-1")})
			wantClass(t, "submit", out, tt.class, tt.code)
			if tt.class == providers.Issued && (out.Invoices[0].InvoiceNo != "25332000000456135731" || out.Invoices[0].IssuedAt.IsZero()) {
				t.Fatalf("invoice %+v", out.Invoices[0])
			}
		})
	}
}

// TestIncompleteList: a list that ignores pageNumber cannot be read to the
// end, so the search proves nothing: Retry, never NotFound.
func TestIncompleteList(t *testing.T) {
	items := make([]string, 50)
	for i := range items {
		items[i] = fmt.Sprintf(`{"fphm":"2633200000%010d","kprq":"2026-11-20 10:00:00","gmfnsrsbh":"91110000000000000X","hjje":1,"hjse":0,"jshj":1}`, i)
	}
	c := fakeJumdata(t, 200, `{"code":200,"msg":"成功","data":{"pagenumber":1,"pagesize":50,"total":120,"list":[`+strings.Join(items, ",")+`]}}`)
	call := &providers.Call{Request: issueRequest(t, "INC-1"), SubmittedAt: clockStart().Add(-9 * time.Hour)}
	out := c.Query(t.Context(), call)
	wantClass(t, "query", out, providers.Retry, "incomplete")
}

// TestListlessAnswer: a 200 whose data has no list (no data, null data, a
// data without list, a null list) says nothing about the invoices: Retry,
// never NotFound, which would let the order be submitted again after its
// taskId's 8 hours.
func TestListlessAnswer(t *testing.T) {
	for _, body := range []string{
		`{"code":200,"msg":"成功"}`,
		`{"code":200,"msg":"成功","data":null}`,
		`{"code":200,"msg":"成功","data":{"pagenumber":1,"pagesize":50,"total":0}}`,
		`{"code":200,"msg":"成功","data":{"pagenumber":1,"pagesize":50,"total":0,"list":null}}`,
	} {
		c := fakeJumdata(t, 200, body)
		call := &providers.Call{Request: issueRequest(t, "NOLIST-1"), SubmittedAt: clockStart().Add(-9 * time.Hour)}
		wantClass(t, body, c.Query(t.Context(), call), providers.Retry, "unreadable")
	}
	// An empty list does say "none".
	c := fakeJumdata(t, 200, `{"code":200,"msg":"成功","data":{"pagenumber":1,"pagesize":50,"total":0,"list":[]}}`)
	call := &providers.Call{Request: issueRequest(t, "NOLIST-2"), SubmittedAt: clockStart().Add(-9 * time.Hour)}
	if out := c.Query(t.Context(), call); out.Class != providers.NotFound {
		t.Fatalf("an empty list: %s %v; want not found", out.Class, out.Err)
	}
}

func TestRateLimitFeedback(t *testing.T) {
	limiter := providers.NewLimiter(providers.LimiterConfig{Rate: 50})
	// The sandbox's clock stands still: after its one-call burst, every call
	// is too frequent.
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{RateLimit: 1, RateBurst: 1}}, func(c *jumdata.Config) { c.Limiter = limiter })
	before := limiter.Limit()
	wantClass(t, "first", e.client.Submit(t.Context(), &providers.Call{Request: issueRequest(t, "RL-1")}), providers.Issued, "200")
	out := e.client.Submit(t.Context(), &providers.Call{Request: issueRequest(t, "RL-2")})
	wantClass(t, "second", out, providers.Retry, "609")
	if limiter.Throttles() != 1 || limiter.Limit() >= before {
		t.Fatalf("throttles %d, limit %v (was %v)", limiter.Throttles(), limiter.Limit(), before)
	}
	if o := e.orderStats("RL-2"); o.Submissions != 0 || o.Issuances != 0 {
		t.Fatalf("the refused call took effect: %+v", o)
	}
}

// TestAcceptedRedNotListedYet: a red submission jumdata accepted without a
// form uuid (its document's data {}) is looked for in its lists; while they
// do not show it, the Query answers Retry, not NotFound, which would have
// the request submitted again and the invoice reversed twice. A red that
// was never accepted (in doubt) is still NotFound, to be submitted.
func TestAcceptedRedNotListedYet(t *testing.T) {
	c := fakeJumdata(t, 200, `{"code":200,"msg":"成功","data":{"pagenumber":1,"pagesize":50,"total":0,"list":[]}}`)
	req := redRequest(t, "RC-NL", "26332000000000000001", clockStart().Add(-24*time.Hour), "2", "")
	call := &providers.Call{Request: req, SubmittedAt: clockStart().Add(-time.Minute), Accepted: true}
	wantClass(t, "accepted", c.Query(t.Context(), call), providers.Retry, "not_listed")
	call.Accepted = false
	wantClass(t, "in doubt", c.Query(t.Context(), call), providers.NotFound, "not_found")
}

// TestRedSubmitInProgress: a red submission answered 202 (in progress) was
// taken: it is Accepted, without a form uuid, so that the next Query
// searches for it and answers Retry while jumdata does not list it, rather
// than Retry at once, which would have it submitted again (a partial
// reversal made twice; a red submission has no taskId to repeat it by).
func TestRedSubmitInProgress(t *testing.T) {
	c := fakeJumdata(t, 200, `{"code":202,"msg":"任务正在进行中,请稍后再试","taskNo":"518091345199211978770098"}`)
	req := redRequest(t, "RC-IP", "26332000000000000001", clockStart().Add(-24*time.Hour), "2", partialDetail)
	out := c.Submit(t.Context(), &providers.Call{Request: req})
	wantClass(t, "submit", out, providers.Accepted, "202")
	if out.RetryAfter <= 0 || out.Refs.BillNo != "" || out.RedConfirm == nil {
		t.Fatalf("retry after %s, form uuid %q, red state %+v: want a poll, no uuid, the form's state", out.RetryAfter, out.Refs.BillNo, out.RedConfirm)
	}
}
