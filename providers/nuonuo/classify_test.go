package nuonuo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

const billingMethod = "nuonuo.ElectronInvoice.requestBillingNew"

// classCase is one row of the classification table reached over HTTP.
type classCase struct {
	name string
	// covers names the table row the case reaches; empty for prefix and
	// default rows, which have no exact entry.
	covers string
	// code, httpStatus and message script the sandbox's answer to the call;
	// faults replace the script when set.
	code       string
	httpStatus int
	message    string
	faults     *sandbox.Faults
	// query runs Query instead of Submit.
	query bool
	// resubmission marks the Submit as one after an earlier submission.
	resubmission bool
	// client changes the client's configuration.
	client func(*testing.T, *sandboxEnv, *nuonuo.Config)
	// ctx changes the call's context.
	ctx func(context.Context) context.Context

	want      providers.Class
	wantCode  string
	wantField string
}

func classCases() []classCase {
	rejected := func(code, field string) classCase {
		return classCase{name: code, covers: code, code: code, want: providers.Rejected, wantCode: code, wantField: field}
	}
	cases := []classCase{
		rejected("E4000", ""),
		rejected("E9101", "order.invoiceType"),
		rejected("E9102", "order.invoiceCode"),
		rejected("E9103", "order.invoiceNum"),
		rejected("E9104", "order.email"),
		rejected("E9105", "order.invoiceDetail"),
		rejected("E9107", "order.proxyInvoiceFlag"),
		rejected("E9108", "order.invoiceDetail"),
		rejected("E9110", "order.invoiceDetail"),
		rejected("E9111", "order.invoiceDetail"),
		rejected("E9112", "order.invoiceDetail"),
		rejected("E9113", "order.buyerAddress"),
		rejected("E9114", "order.invoiceDetail"),
		rejected("E9115", "order.buyerTel"),
		rejected("E9116", "order.invoiceDetail"),
		rejected("E9117", "order.buyerName"),
		rejected("E9118", "order.buyerTaxNum"),
		rejected("E9119", "order.invoiceDetail"),
		rejected("E9120", "order.buyerAccount"),
		rejected("E9121", "order.invoiceDetail"),
		rejected("E9122", "order.invoiceDetail"),
		rejected("E9123", "order.invoiceDetail"),
		rejected("E9124", "order.invoiceDetail"),
		rejected("E9125", "order.invoiceDetail"),
		rejected("E9126", "order.invoiceDetail"),
		rejected("E9127", "order.invoiceDetail"),
		rejected("E9128", "order.invoiceDetail"),
		rejected("E9129", "order.invoiceDetail"),
		rejected("E9130", "order.invoiceDetail"),
		rejected("E9131", "order.invoiceDetail"),
		rejected("E9138", "order.invoiceDetail"),
		rejected("E9154", "order.invoiceDetail"),
		rejected("E9301", "order.salerTaxNum"),
		rejected("E9302", "order.salerTaxNum"),
		rejected("E9338", ""),
		rejected("0201", ""),
		{name: "E9109 (in the E9101–E9131 range, undocumented)", code: "E9109", want: providers.Rejected, wantCode: "E9109"},
		{name: "unknown code kept", code: "E9999", message: "未知错误", want: providers.Rejected, wantCode: "E9999"},
		{name: "E9130 names its line", code: "E9130", message: "（不含税金额+税额）不等于含税金额,第2行",
			want: providers.Rejected, wantCode: "E9130", wantField: "order.invoiceDetail[1].taxIncludedAmount"},
		{name: "E9131 names its line", code: "E9131", message: "金额*税率-税额大于0.06,明细行名称:服务,第3行",
			want: providers.Rejected, wantCode: "E9131", wantField: "order.invoiceDetail[2].tax"},
		{name: "E9106 of an order the query cannot find", covers: "E9106", code: "E9106", resubmission: true, want: providers.Retry, wantCode: "E9106"},
		{name: "E9500 on Submit", covers: "E9500", code: "E9500", want: providers.Rejected, wantCode: "E9500"},
		{name: "E9500 on Query", covers: "E9500", code: "E9500", query: true, want: providers.NotFound, wantCode: "E9500"},
		{name: "E9101 on Query (the query refused, not the order)", code: "E9101", query: true, want: providers.Retry, wantCode: "E9101"},
		{name: "unknown code on Query", code: "E9999", query: true, want: providers.Retry, wantCode: "E9999"},
		{name: "E9613", covers: "E9613", code: "E9613", want: providers.Retry, wantCode: "E9613"},
		{name: "0200", covers: "0200", code: "0200", want: providers.Retry, wantCode: "0200"},
		{name: "0202", covers: "0202", code: "0202", want: providers.Retry, wantCode: "0202"},
		{name: "0203", covers: "0203", code: "0203", want: providers.Retry, wantCode: "0203"},
		{name: "040102", covers: "040102", code: "040102", want: providers.Retry, wantCode: "040102"},
		{name: "070201", covers: "070201", code: "070201", want: providers.Retry, wantCode: "070201"},
		{name: "070204", covers: "070204", code: "070204", want: providers.ActionRequired, wantCode: "070204"},
		{name: "070301 with a static token", covers: "070301", code: "070301", want: providers.ActionRequired, wantCode: "070301"},
		{name: "070401", covers: "070401", code: "070401", want: providers.ActionRequired, wantCode: "070401"},
		{name: "070501", covers: "070501", code: "070501", want: providers.ActionRequired, wantCode: "070501"},
		{name: "070601", covers: "070601", code: "070601", want: providers.ActionRequired, wantCode: "070601"},
		{name: "0701xx", code: "070101", want: providers.ActionRequired, wantCode: "070101"},
		{name: "0703xx", code: "070302", want: providers.ActionRequired, wantCode: "070302"},
		{name: "HTTP 408", covers: "http_408", httpStatus: 408, want: providers.Retry, wantCode: "http_408"},
		{name: "HTTP 429", covers: "http_429", httpStatus: 429, want: providers.Retry, wantCode: "http_429"},
		{name: "HTTP 401", covers: "http_401", httpStatus: 401, want: providers.ActionRequired, wantCode: "http_401"},
		{name: "HTTP 403", covers: "http_403", httpStatus: 403, want: providers.ActionRequired, wantCode: "http_403"},
		{name: "HTTP 404", covers: "http_404", httpStatus: 404, want: providers.ActionRequired, wantCode: "http_404"},
		{name: "HTTP 405", covers: "http_405", httpStatus: 405, want: providers.ActionRequired, wantCode: "http_405"},
		{name: "HTTP 400", httpStatus: 400, want: providers.Rejected, wantCode: "http_400"},
		{name: "HTTP 503 on Submit", covers: "http_5xx", httpStatus: 503, want: providers.Unknown, wantCode: "http_503"},
		{name: "HTTP 500 on Submit", covers: "http_5xx", httpStatus: 500, want: providers.Unknown, wantCode: "http_500"},
		{name: "HTTP 502 on Query", covers: "http_5xx", httpStatus: 502, query: true, want: providers.Retry, wantCode: "http_502"},
		{name: "reset on Submit", covers: "transport", faults: &sandbox.Faults{Reset: 1}, want: providers.Unknown, wantCode: "transport"},
		{name: "reset on Query", covers: "transport", faults: &sandbox.Faults{Reset: 1}, query: true, want: providers.Retry, wantCode: "transport"},
		{name: "timeout on Submit", covers: "transport", faults: &sandbox.Faults{SpikeRate: 1, SpikeLatency: time.Second},
			client: func(_ *testing.T, _ *sandboxEnv, c *nuonuo.Config) { c.HTTP.Timeout = 50 * time.Millisecond },
			want:   providers.Unknown, wantCode: "transport"},
		{name: "garbage on Submit", covers: "unreadable", faults: &sandbox.Faults{Garbage: 1}, want: providers.Unknown, wantCode: "unreadable"},
		{name: "garbage on Query", covers: "unreadable", faults: &sandbox.Faults{Garbage: 1}, query: true, want: providers.Retry, wantCode: "unreadable"},
		{name: "oversized answer on Submit", covers: "unreadable", faults: &sandbox.Faults{},
			client: func(_ *testing.T, _ *sandboxEnv, c *nuonuo.Config) { c.HTTP.MaxResponseBytes = 16 },
			want:   providers.Unknown, wantCode: "unreadable"},
		{name: "token endpoint unreachable", covers: "token_transport", faults: &sandbox.Faults{},
			client: func(t *testing.T, env *sandboxEnv, c *nuonuo.Config) {
				dead := httptest.NewServer(nil)
				dead.Close()
				c.AccessToken = ""
				c.Tokens = env.mustTokenSource(t, func(tc *nuonuo.TokenSourceConfig) { tc.TokenURL = dead.URL + "/accessToken" })
			},
			want: providers.Retry, wantCode: "token_transport"},
		{name: "context ended before the call", covers: "canceled", faults: &sandbox.Faults{},
			ctx: func(ctx context.Context) context.Context {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return ctx
			},
			want: providers.Retry, wantCode: "canceled"},
	}
	return cases
}

func TestClassificationOverHTTP(t *testing.T) {
	cases := classCases()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			c := env.mustClient(t, func(cfg *nuonuo.Config) {
				if tt.client != nil {
					tt.client(t, env, cfg)
				}
			})
			method := billingMethod
			if tt.query {
				method = "nuonuo.ElectronInvoice.queryInvoiceResult"
			}
			if tt.faults != nil {
				env.sb.SetFaults(*tt.faults)
			} else {
				env.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{
					Provider: "nuonuo", Method: method, Code: tt.code, Message: tt.message, HTTPStatus: tt.httpStatus,
				}}})
			}
			ctx := t.Context()
			if tt.ctx != nil {
				ctx = tt.ctx(ctx)
			}
			call := &providers.Call{Request: issueRequest("CLS-1", nil), Resubmission: tt.resubmission}
			var o providers.Outcome
			if tt.query {
				o = c.Query(ctx, call)
			} else {
				o = c.Submit(ctx, call)
			}
			wantClass(t, tt.name, o, tt.want)
			if o.Code != tt.wantCode {
				t.Errorf("code %q, want %q", o.Code, tt.wantCode)
			}
			if o.Field != tt.wantField {
				t.Errorf("field %q, want %q", o.Field, tt.wantField)
			}
			if tt.want == providers.Unknown && o.Err == nil {
				t.Errorf("an Unknown outcome carries no error")
			}
			if local := tt.wantCode == "canceled"; o.Local != local {
				t.Errorf("Local %v, want %v: only a call that never went out is the client's own answer", o.Local, local)
			}
		})
	}
}

func TestClassificationTableIsCovered(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range classCases() {
		covered[c.covers] = true
	}
	for _, code := range nuonuo.TableCodes() {
		if !covered[code] {
			t.Errorf("table row %q is not reached by TestClassificationOverHTTP", code)
		}
	}
}

// A gateway code (07xxxx) in the platform's envelope under an HTTP 4xx is
// classed by the code, as under 200; any other code under a 4xx, and every
// answer under a 5xx, by the status.
func TestGatewayCodeUnderHTTPStatus(t *testing.T) {
	for _, tt := range []struct {
		status         int
		code           string
		want           providers.Class
		wantCode       string
		wantRetryAfter time.Duration
	}{
		{401, "070601", providers.ActionRequired, "070601", 0},
		{429, "070201", providers.Retry, "070201", time.Second},
		{401, "070301", providers.ActionRequired, "070301", 0}, // a static token: nothing to refresh
		{400, "E9101", providers.Rejected, "http_400", 0},
		{503, "070301", providers.Unknown, "http_503", 0},
	} {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				w.WriteHeader(tt.status)
				fmt.Fprintf(w, `{"code":%q,"describe":"网关"}`, tt.code)
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("GATEWAY-1", nil)})
			wantClass(t, "Submit", o, tt.want)
			if o.Code != tt.wantCode || o.RetryAfter != tt.wantRetryAfter {
				t.Errorf("code %q, RetryAfter %v; want %q, %v", o.Code, o.RetryAfter, tt.wantCode, tt.wantRetryAfter)
			}
		})
	}
}
