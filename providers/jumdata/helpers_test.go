package jumdata_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var cst = time.FixedZone("CST", 8*60*60)

// clock is a settable clock shared by a client and the sandbox.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// observed records the Observer's reports.
type observed struct {
	mu    sync.Mutex
	calls []string // "method code"
}

func (o *observed) ObserveCall(provider, method, code string, took time.Duration) {
	if provider != "jumdata" || took < 0 {
		panic("bad report " + provider)
	}
	o.mu.Lock()
	o.calls = append(o.calls, method+" "+code)
	o.mu.Unlock()
}

// Calls returns the reports so far and forgets them.
func (o *observed) Calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.calls
	o.calls = nil
	return c
}

// env is a client talking to a sandbox over real HTTP, both on one clock.
type env struct {
	tb     testing.TB
	sb     *sandbox.Server
	url    string
	clock  *clock
	obs    *observed
	client *jumdata.Client
	cfg    jumdata.Config
}

// newEnv starts a sandbox with sbcfg and a client for the default seller;
// edit, if not nil, changes the client's configuration.
func newEnv(tb testing.TB, sbcfg sandbox.Config, edit func(*jumdata.Config)) *env {
	tb.Helper()
	return newEnvWith(tb, sbcfg, nil, edit)
}

// newEnvWith is newEnv with the sandbox's handler wrapped by wrap (nil: not
// wrapped), for tests that watch the wire.
func newEnvWith(tb testing.TB, sbcfg sandbox.Config, wrap func(http.Handler) http.Handler, edit func(*jumdata.Config)) *env {
	tb.Helper()
	clk := &clock{t: clockStart()}
	sbcfg.Now = clk.Now
	sb := sandbox.New(sbcfg)
	h := sb.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	tb.Cleanup(ts.Close)
	sb.SetBaseURL(ts.URL)
	obs := &observed{}
	cfg := jumdata.Config{
		BaseURL:      ts.URL,
		AppID:        sandbox.DefaultJumdataAppID,
		AppSecret:    sandbox.DefaultJumdataSecret,
		Token:        sandbox.DefaultJumdataToken,
		SellerTaxNum: sandbox.DefaultJumdataSeller,
		DQ:           sandbox.DefaultJumdataDQ,
		Gryhm:        sandbox.DefaultJumdataGryhm,
		Observer:     obs,
		Now:          clk.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := jumdata.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &env{tb: tb, sb: sb, url: ts.URL, clock: clk, obs: obs, client: c, cfg: cfg}
}

// orderStats returns the sandbox's account of one order.
func (e *env) orderStats(orderNo string) sandbox.OrderStats {
	return e.sb.Stats().Sellers[sandbox.DefaultJumdataSeller][orderNo]
}

// noDuplicates fails when the sandbox issued any order twice.
func (e *env) noDuplicates() {
	e.tb.Helper()
	if d := e.sb.Stats().Duplicates; len(d) != 0 {
		e.tb.Fatalf("orders issued twice: %v", d)
	}
}

// MustRequest decodes and validates a request message, as the consumer does
// for a jumdata seller.
func MustRequest(tb testing.TB, msg string) *schemas.Request {
	tb.Helper()
	var env struct{ SellerTaxNum string }
	_ = json.Unmarshal([]byte(msg), &env)
	cfg := schemas.ValidatorConfig{}
	if env.SellerTaxNum != "" {
		cfg.Providers = map[string]string{env.SellerTaxNum: "jumdata"}
	}
	v, err := schemas.NewValidator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := v.Decode([]byte(msg), "")
	if err != nil {
		tb.Fatal(err)
	}
	if !d.Valid() {
		tb.Fatalf("invalid request: %v", d.Violations)
	}
	return d.Request
}

// issueRequest is testdata/issue-discount.json (a discounted chair and a
// service, 1123.00 in all) as order orderNo; replace edits the message.
func issueRequest(tb testing.TB, orderNo string, replace ...string) *schemas.Request {
	tb.Helper()
	return MustRequest(tb, issueMessage(tb, orderNo, replace...))
}

// issueMessage is issueRequest's message, not validated: a request the
// validator refuses (one the adapter refuses as unsupported, say) reaches
// the adapter only through it, as a defence in depth.
func issueMessage(tb testing.TB, orderNo string, replace ...string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "issue-discount.json"))
	if err != nil {
		tb.Fatal(err)
	}
	msg := strings.ReplaceAll(string(b), "ORD-2026-000001", orderNo)
	return strings.NewReplacer(replace...).Replace(msg)
}

// redRequest reverses the blue invoice fphm issued at kprq; detail is the
// JSON of redConfirm.detail ("" for a full reversal).
func redRequest(tb testing.TB, orderNo, fphm string, issuedAt time.Time, redReason, detail string) *schemas.Request {
	tb.Helper()
	return MustRequest(tb, redMessage(orderNo, fphm, issuedAt, redReason, detail))
}

// redMessage is redRequest's message, not validated.
func redMessage(orderNo, fphm string, issuedAt time.Time, redReason, detail string) string {
	d := ""
	if detail != "" {
		d = `,"detail":` + detail
	}
	return `{"schemaVersion":"1","kind":"red_confirm","sellerTaxNum":"` + sandbox.DefaultJumdataSeller + `","orderNo":"` + orderNo + `",
	  "redConfirm":{"billId":"` + orderNo + `","blueInvoiceLine":"pc","applySource":"0","blueElecInvoiceNumber":"` + fphm + `",
	  "blueInvoiceTime":"` + issuedAt.In(cst).Format("2006-01-02 15:04:05") + `","sellerTaxNo":"` + sandbox.DefaultJumdataSeller + `",
	  "buyerName":"杭州示例科技有限公司","buyerTaxNo":"91440101MA5APD8X8J","redReason":"` + redReason + `","orderNo":"` + orderNo + `"` + d + `}}`
}

// partialDetail reverses half of the service line (line 3): −50.00 and −3.00.
const partialDetail = `[{"blueDetailIndex":"3","goodsName":"技术服务费","num":"-1.5","taxExcludedPrice":"33.33333333",
	"taxExcludedAmount":"-50.00","taxAmount":"-3.00","taxRate":"0.06","goodsCode":"3040201990000000000"}]`

// acceptedRedForm issues blue order blueNo and submits red confirmation
// form redNo for it, which jumdata accepts; it returns the call as the
// pipeline would poll it.
func (e *env) acceptedRedForm(blueNo, redNo string) *providers.Call {
	e.tb.Helper()
	blue := e.mustIssue(blueNo)
	call := &providers.Call{Request: redRequest(e.tb, redNo, blue.InvoiceNo, blue.IssuedAt, "2", "")}
	out := e.client.Submit(e.tb.Context(), call)
	wantClass(e.tb, "submit", out, providers.Accepted, "200")
	call.Refs, call.SubmittedAt, call.Accepted = out.Refs, e.clock.Now(), true
	return call
}

// mustIssue issues a blue invoice for orderNo and returns it.
func (e *env) mustIssue(orderNo string) schemas.Invoice {
	e.tb.Helper()
	return e.mustIssueRequest(issueRequest(e.tb, orderNo))
}

// mustIssueRequest issues the blue invoice req asks for and returns it,
// asking at most 10 times.
func (e *env) mustIssueRequest(req *schemas.Request) schemas.Invoice {
	e.tb.Helper()
	call := &providers.Call{Request: req}
	out := e.client.Submit(e.tb.Context(), call)
	for range 10 {
		if out.Class == providers.Issued {
			return out.Invoices[0]
		}
		if out.Class != providers.Retry && out.Class != providers.Accepted {
			e.tb.Fatalf("issue %s: %+v", req.OrderNo, out)
		}
		call.SubmittedAt = e.clock.Now()
		out = e.client.Query(e.tb.Context(), call)
	}
	e.tb.Fatalf("issue %s: never issued: %+v", req.OrderNo, out)
	return schemas.Invoice{}
}

// wantClass fails unless out has the class (and, when code is not empty,
// the code).
func wantClass(tb testing.TB, what string, out providers.Outcome, class providers.Class, code string) {
	tb.Helper()
	if out.Class != class || (code != "" && out.Code != code) {
		tb.Fatalf("%s: %s code %q message %q err %v; want %s code %q", what, out.Class, out.Code, out.Message, out.Err, class, code)
	}
}

// clockStart is the time every env's clock starts at.
func clockStart() time.Time { return time.Date(2026, 11, 20, 10, 0, 0, 0, cst) }
