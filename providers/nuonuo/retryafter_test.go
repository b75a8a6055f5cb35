package nuonuo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// A 429 or a 503 that says when to ask again (Retry-After, RFC 9110
// §10.2.3: delay-seconds, or an HTTP-date read on the client's clock) is
// answered with that hint in Outcome.RetryAfter, on Submit and on Query,
// at most providers.MaxRetryAfter; so is a 070201 ("too frequent") or a
// 429, which without one pause a second. A header that cannot be read, is
// negative or names a time already past gives no hint, as no header does.
func TestRetryAfter(t *testing.T) {
	clk := &clock{t: time.Now().Truncate(time.Second)} // an HTTP-date names a whole second
	at := func(d time.Duration) string { return clk.Now().Add(d).UTC().Format(http.TimeFormat) }
	const queryMethod = "nuonuo.ElectronInvoice.queryInvoiceResult"
	for _, tt := range []struct {
		name   string
		status int    // a bare HTTP status, or 0 for code under 200
		code   string // the envelope's code when status is 0
		header string
		submit providers.Class // the query's is Retry
		want   time.Duration
	}{
		{"429 in seconds", 429, "", "7", providers.Retry, 7 * time.Second},
		{"503 in seconds", 503, "", "7", providers.Unknown, 7 * time.Second},
		{"429 as a date", 429, "", at(7 * time.Second), providers.Retry, 7 * time.Second},
		{"503 as a date", 503, "", at(7 * time.Second), providers.Unknown, 7 * time.Second},
		{"070201 in seconds", 0, "070201", "7", providers.Retry, 7 * time.Second},
		{"070201 asking for less than its pause", 0, "070201", "0", providers.Retry, time.Second},
		{"a day, capped", 429, "", "86400", providers.Retry, providers.MaxRetryAfter},
		{"a date next month, capped", 503, "", at(30 * 24 * time.Hour), providers.Unknown, providers.MaxRetryAfter},
		{"no header", 503, "", "", providers.Unknown, 0},
		{"429 without a header", 429, "", "", providers.Retry, time.Second},
		{"070201 without a header", 0, "070201", "", providers.Retry, time.Second},
		{"not a number", 503, "", "soon", providers.Unknown, 0},
		{"negative", 503, "", "-7", providers.Unknown, 0},
		{"429 with a negative header", 429, "", "-7", providers.Retry, time.Second},
		{"a date past", 503, "", at(-time.Minute), providers.Unknown, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.Now = clk.Now })
			script := func(method string) sandbox.Faults {
				return sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "nuonuo", Method: method, HTTPStatus: tt.status, Code: tt.code, RetryAfter: tt.header}}}
			}
			call := &providers.Call{Request: issueRequest("RA-1", nil)}
			env.sb.SetFaults(script(billingMethod))
			o := c.Submit(t.Context(), call)
			wantClass(t, "submit", o, tt.submit)
			if o.RetryAfter != tt.want {
				t.Errorf("submit answered HTTP %d %q with Retry-After %q: RetryAfter %v, want %v", tt.status, tt.code, tt.header, o.RetryAfter, tt.want)
			}
			env.sb.SetFaults(script(queryMethod))
			o = c.Query(t.Context(), call)
			wantClass(t, "query", o, providers.Retry)
			if o.RetryAfter != tt.want {
				t.Errorf("query answered HTTP %d %q with Retry-After %q: RetryAfter %v, want %v", tt.status, tt.code, tt.header, o.RetryAfter, tt.want)
			}
		})
	}
}

// A 070201's Retry-After is also how long the seller's Limiter pauses its
// calls: the next call, made at once with two seconds to go out, does not
// go out (without the header the pause is a second, and it would).
func TestRetryAfterPausesTheSeller(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "nuonuo", Method: billingMethod, Code: "070201", RetryAfter: "7"},
	}}})
	limiter := providers.NewLimiter(providers.LimiterConfig{Rate: 1000})
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.Limiter = limiter })
	call := &providers.Call{Request: issueRequest("RA-PAUSE-1", nil)}
	wantClass(t, "the refused submit", c.Submit(t.Context(), call), providers.Retry)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	o := c.Submit(ctx, call)
	if !o.Local || o.Code != "canceled" {
		t.Fatalf("the next submit within 2 s of a 070201 asking for 7 s: %s %q (local %v); want not sent", o.Class, o.Code, o.Local)
	}
	if st := env.orderStats("RA-PAUSE-1"); st.Submissions != 0 {
		t.Fatalf("sandbox %+v: a call went out during the pause", st)
	}
}

// A 429 is HTTP's "too many requests" whether or not the platform's
// envelope under it says 070201: a bare one, one with an HTML page or an
// empty body from a proxy in front of the gateway, one whose envelope
// carries a code other than a gateway's. Each backs the seller's Limiter
// off as 070201 does (one throttle, a lower rate) and pauses the seller's
// calls for its Retry-After, a second without one; the outcome is Retry
// with that hint, as 070201's is. Before, only 070201 throttled: after a
// bare 429 asking for 7 s the next call went out at once, at the full rate.
func TestHTTP429ThrottlesTheSeller(t *testing.T) {
	for _, tt := range []struct {
		name, contentType, body, header string
		want                            time.Duration
	}{
		{"bare, with Retry-After", "text/plain; charset=utf-8", "Too Many Requests\n", "7", 7 * time.Second},
		{"an HTML page, with Retry-After", "text/html", "<html><body><h1>429 Too Many Requests</h1></body></html>", "7", 7 * time.Second},
		{"an empty body, with Retry-After", "", "", "7", 7 * time.Second},
		{"an envelope with another code, with Retry-After", "application/json;charset=UTF-8", `{"code":"E9999","describe":"busy"}`, "7", 7 * time.Second},
		{"bare, without Retry-After", "text/plain; charset=utf-8", "Too Many Requests\n", "", time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					w.Header().Set("Content-Type", "application/json;charset=UTF-8")
					fmt.Fprint(w, `{"code":"E0000","describe":"ok","result":{"invoiceSerialNum":"S-1"}}`)
					return
				}
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				if tt.header != "" {
					w.Header().Set("Retry-After", tt.header)
				}
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprint(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			limiter := providers.NewLimiter(providers.LimiterConfig{Rate: 1000})
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t", Limiter: limiter})
			if err != nil {
				t.Fatal(err)
			}
			call := &providers.Call{Request: issueRequest("RA-429-1", nil)}
			o := c.Submit(t.Context(), call)
			wantClass(t, "the refused submit", o, providers.Retry)
			if o.Code != "http_429" || o.RetryAfter != tt.want {
				t.Errorf("code %q, RetryAfter %v; want http_429, %v", o.Code, o.RetryAfter, tt.want)
			}
			if limiter.Throttles() != 1 || limiter.Limit() >= 1000 {
				t.Fatalf("after a 429: limiter throttled %d times, limit %v; want one throttle and a rate below 1000", limiter.Throttles(), limiter.Limit())
			}
			if tt.want <= 2*time.Second {
				return
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if o := c.Submit(ctx, call); !o.Local || o.Code != "canceled" {
				t.Fatalf("the next submit within 2 s of a 429 asking for %s: %s %q (local %v); want not sent", tt.header, o.Class, o.Code, o.Local)
			}
			if n := calls.Load(); n != 1 {
				t.Fatalf("%d calls reached the server: a call went out during the pause", n)
			}
		})
	}
}
