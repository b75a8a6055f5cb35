package nuonuo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

const seller = sandbox.DefaultNuonuoSeller

// sandboxEnv is a sandbox served over real HTTP.
type sandboxEnv struct {
	sb  *sandbox.Server
	url string
}

// newSandbox starts a sandbox for cfg and stops it with the test.
func newSandbox(tb testing.TB, cfg sandbox.Config) *sandboxEnv {
	tb.Helper()
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	tb.Cleanup(srv.Close)
	sb.SetBaseURL(srv.URL)
	return &sandboxEnv{sb: sb, url: srv.URL}
}

// mustClient returns a client of the default seller with the static token,
// changed by mutate.
func (e *sandboxEnv) mustClient(tb testing.TB, mutate func(*nuonuo.Config)) *nuonuo.Client {
	tb.Helper()
	cfg := nuonuo.Config{
		BaseURL:      e.url,
		SellerTaxNum: seller,
		AppKey:       sandbox.DefaultNuonuoAppKey,
		AppSecret:    sandbox.DefaultNuonuoAppSecret,
		AccessToken:  sandbox.DefaultNuonuoToken,
		HTTP:         providers.HTTPConfig{Timeout: 10 * time.Second},
		PollAfter:    time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := nuonuo.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// mustTokenSource returns a token source for the sandbox's token endpoint.
func (e *sandboxEnv) mustTokenSource(tb testing.TB, mutate func(*nuonuo.TokenSourceConfig)) *nuonuo.TokenSource {
	tb.Helper()
	cfg := nuonuo.TokenSourceConfig{
		TokenURL:     e.url + "/accessToken",
		AppKey:       sandbox.DefaultNuonuoAppKey,
		AppSecret:    sandbox.DefaultNuonuoAppSecret,
		PollInterval: 5 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ts, err := nuonuo.NewTokenSource(cfg)
	if err != nil {
		tb.Fatalf("NewTokenSource: %v", err)
	}
	return ts
}

// orderStats returns the sandbox's account of one order.
func (e *sandboxEnv) orderStats(orderNo string) sandbox.OrderStats {
	return e.sb.Stats().Sellers[seller][orderNo]
}

// issueRequest is a valid one-line blue order of the default seller:
// 100.00 + 6.00 tax = 106.00.
func issueRequest(orderNo string, mutate func(*schemas.Order)) *schemas.Request {
	o := &schemas.Order{
		BuyerName:   "杭州示例科技有限公司",
		BuyerTaxNum: "91330106MA2AYNWD8M",
		SalerTaxNum: seller,
		OrderNo:     orderNo,
		InvoiceDate: "2026-11-20 10:15:00",
		Clerk:       "张三",
		PushMode:    "-1",
		InvoiceType: schemas.InvoiceTypeBlue,
		InvoiceLine: "pc",
		InvoiceDetail: []schemas.InvoiceLine{{
			GoodsName:         "技术服务费",
			GoodsCode:         "3040201010000000000",
			WithTaxFlag:       "1",
			Price:             schemas.ParseAmount("106"),
			Num:               schemas.ParseAmount("1"),
			TaxRate:           schemas.ParseAmount("0.06"),
			TaxExcludedAmount: schemas.ParseAmount("100.00"),
			Tax:               schemas.ParseAmount("6.00"),
			TaxIncludedAmount: schemas.ParseAmount("106.00"),
		}},
	}
	if mutate != nil {
		mutate(o)
	}
	return &schemas.Request{SchemaVersion: "1", Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: orderNo, Order: o}
}

// redConfirmRequest applies for a red confirmation form of a fully digital
// invoice.
func redConfirmRequest(orderNo string, mutate func(*schemas.RedConfirm)) *schemas.Request {
	rc := &schemas.RedConfirm{
		BlueInvoiceLine:       "pc",
		ApplySource:           "0",
		BlueElecInvoiceNumber: "26332000000000000001",
		BlueInvoiceTime:       "2026-11-20 10:15:00",
		SellerTaxNo:           seller,
		SellerName:            "杭州示例销售有限公司",
		BuyerTaxNo:            "91440101MA5APD8X8J",
		BuyerName:             "杭州示例科技有限公司",
		RedReason:             "2",
		OrderNo:               orderNo,
	}
	if mutate != nil {
		mutate(rc)
	}
	return &schemas.Request{SchemaVersion: "1", Kind: schemas.KindRedConfirm, SellerTaxNum: seller, OrderNo: orderNo, RedConfirm: rc}
}

func reissueRequest(orderNo string, ri schemas.Reissue) *schemas.Request {
	return &schemas.Request{SchemaVersion: "1", Kind: schemas.KindReissue, SellerTaxNum: seller, OrderNo: orderNo, Reissue: &ri}
}

// wantClass fails the test when o is not of class want.
func wantClass(tb testing.TB, what string, o providers.Outcome, want providers.Class) {
	tb.Helper()
	if o.Class != want {
		tb.Fatalf("%s: class %v, want %v (code %q, message %q, err %v)", what, o.Class, want, o.Code, o.Message, o.Err)
	}
}

// clock is a settable clock shared by a sandbox and a client.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

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

// observed records Observer reports.
type observed struct {
	mu    sync.Mutex
	calls []string // "method code"
}

func (o *observed) ObserveCall(provider, method, code string, _ time.Duration) {
	o.mu.Lock()
	o.calls = append(o.calls, provider+" "+method+" "+code)
	o.mu.Unlock()
}

func (o *observed) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.calls...)
}

// mustGet downloads url.
func mustGet(tb testing.TB, url string) []byte {
	tb.Helper()
	resp, err := http.Get(url) //nolint:noctx // test download from a local server
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return b
}
