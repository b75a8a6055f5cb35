package jumdata_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// A 429 or a 503 that says when to ask again (Retry-After, RFC 9110
// §10.2.3: delay-seconds, or an HTTP-date read on the client's clock) is
// answered with that hint in Outcome.RetryAfter, on Submit and on Query,
// at most providers.MaxRetryAfter. A header that cannot be read, is
// negative or names a time already past gives no hint, as no header does.
func TestRetryAfter(t *testing.T) {
	at := func(d time.Duration) string { return clockStart().Add(d).UTC().Format(http.TimeFormat) }
	for _, tt := range []struct {
		name   string
		status int
		header string
		submit providers.Class // the query's is Retry
		want   time.Duration
	}{
		{"429 in seconds", 429, "7", providers.Retry, 7 * time.Second},
		{"503 in seconds", 503, "7", providers.Unknown, 7 * time.Second},
		{"429 as a date", 429, at(7 * time.Second), providers.Retry, 7 * time.Second},
		{"503 as a date", 503, at(7 * time.Second), providers.Unknown, 7 * time.Second},
		{"503 as an RFC 850 date", 503, clockStart().Add(7 * time.Second).UTC().Format("Monday, 02-Jan-06 15:04:05 GMT"), providers.Unknown, 7 * time.Second},
		{"429 as an asctime date", 429, clockStart().Add(7 * time.Second).UTC().Format(time.ANSIC), providers.Retry, 7 * time.Second},
		{"a day, capped", 429, "86400", providers.Retry, providers.MaxRetryAfter},
		{"beyond any integer, capped", 503, "99999999999999999999999", providers.Unknown, providers.MaxRetryAfter},
		{"a date next month, capped", 503, at(30 * 24 * time.Hour), providers.Unknown, providers.MaxRetryAfter},
		{"no header", 429, "", providers.Retry, 0},
		{"zero", 429, "0", providers.Retry, 0},
		{"not a number", 429, "soon", providers.Retry, 0},
		{"negative", 429, "-7", providers.Retry, 0},
		{"a fraction", 503, "7.5", providers.Unknown, 0},
		{"a date past", 503, at(-time.Minute), providers.Unknown, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sandbox.Config{}, nil)
			script := sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", HTTPStatus: tt.status, RetryAfter: tt.header}}}
			call := &providers.Call{Request: issueRequest(t, "RA-1")}
			e.sb.SetFaults(script)
			out := e.client.Submit(t.Context(), call)
			wantClass(t, "submit", out, tt.submit, "")
			if out.RetryAfter != tt.want {
				t.Errorf("submit answered HTTP %d with Retry-After %q: RetryAfter %v, want %v", tt.status, tt.header, out.RetryAfter, tt.want)
			}
			call.SubmittedAt = e.clock.Now()
			e.sb.SetFaults(script)
			out = e.client.Query(t.Context(), call)
			wantClass(t, "query", out, providers.Retry, "")
			if out.RetryAfter != tt.want {
				t.Errorf("query answered HTTP %d with Retry-After %q: RetryAfter %v, want %v", tt.status, tt.header, out.RetryAfter, tt.want)
			}
		})
	}
}

// A 429's Retry-After is also how long the seller's Limiter pauses its
// calls: the next call, made at once with two seconds to go out, does not
// go out (without the header the pause is a second, and it would).
func TestRetryAfterPausesTheSeller(t *testing.T) {
	limiter := providers.NewLimiter(providers.LimiterConfig{Rate: 1000})
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", HTTPStatus: 429, RetryAfter: "7"},
	}}}, func(c *jumdata.Config) { c.Limiter = limiter })
	call := &providers.Call{Request: issueRequest(t, "RA-PAUSE-1")}
	wantClass(t, "the refused submit", e.client.Submit(t.Context(), call), providers.Retry, "http_429")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	out := e.client.Submit(ctx, call)
	if !out.Local || out.Code != "not_sent" {
		t.Fatalf("the next submit within 2 s of a 429 asking for 7 s: %s %q (local %v); want not sent", out.Class, out.Code, out.Local)
	}
	if st := e.orderStats("RA-PAUSE-1"); st.Submissions != 0 {
		t.Fatalf("sandbox %+v: a call went out during the pause", st)
	}
}
