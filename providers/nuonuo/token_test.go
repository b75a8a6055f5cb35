package nuonuo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

func tokenCalls(env *sandboxEnv) int { return env.sb.Stats().TokenCalls["nuonuo"] }

func TestTokenOneCallForManyWorkersAndInstances(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	store := &nuonuo.MemoryTokenStore{}
	// Two instances: two token sources sharing one store.
	sources := []*nuonuo.TokenSource{
		env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Owner = store, "instance-a" }),
		env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Owner = store, "instance-b" }),
	}
	clients := make([]*nuonuo.Client, len(sources))
	for i, ts := range sources {
		clients[i] = env.mustClient(t, func(c *nuonuo.Config) { c.AccessToken, c.Tokens = "", ts })
	}
	const workers = 64
	var wg sync.WaitGroup
	outcomes := make([]providers.Outcome, workers)
	for i := range workers {
		wg.Go(func() {
			call := &providers.Call{Request: issueRequest(fmt.Sprintf("TOK-%d", i), nil)}
			outcomes[i] = clients[i%2].Query(t.Context(), call)
		})
	}
	wg.Wait()
	for i, o := range outcomes {
		wantClass(t, fmt.Sprintf("worker %d", i), o, providers.NotFound) // authenticated, and nothing there
	}
	if n := tokenCalls(env); n != 1 {
		t.Fatalf("%d token calls for %d workers on 2 instances, want 1", n, workers)
	}
}

func TestTokenRefreshedAheadOfExpiry(t *testing.T) {
	clk := newClock()
	env := newSandbox(t, sandbox.Config{Now: clk.Now})
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Now = clk.Now })
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Now = "", ts, clk.Now })

	first, err := ts.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(22 * time.Hour)
	if again, _ := ts.Token(t.Context()); again != first || tokenCalls(env) != 1 {
		t.Fatalf("at 22 h: token changed or %d calls; want the same token and 1 call", tokenCalls(env))
	}
	clk.Advance(61 * time.Minute) // 23 h 01 m: inside the hour before expiry
	next, err := ts.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if next == first || tokenCalls(env) != 2 {
		t.Fatalf("at 23 h 01 m: token changed %v, %d calls; want a new token and 2 calls", next != first, tokenCalls(env))
	}
	wantClass(t, "call with the new token", c.Query(t.Context(), &providers.Call{Request: issueRequest("AHEAD", nil)}), providers.NotFound)
	if tokenCalls(env) != 2 {
		t.Errorf("%d token calls, want 2", tokenCalls(env))
	}
}

func TestTokenRejectedIsRefreshedOnce(t *testing.T) {
	tests := []struct {
		name       string
		mismatches int
		want       providers.Class
		tokenCalls int
		calls      int
	}{
		{"one mismatch: refresh and retry", 1, providers.Accepted, 2, 2},
		{"two mismatches: action required", 2, providers.ActionRequired, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			ts := env.mustTokenSource(t, nil)
			obs := &observed{}
			c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Observer = "", ts, obs })
			if _, err := ts.Token(t.Context()); err != nil {
				t.Fatal(err)
			}
			env.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{
				Provider: "nuonuo", Method: billingMethod, Code: "070301", Times: tt.mismatches,
			}}})
			o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("MISMATCH", nil)})
			wantClass(t, "Submit", o, tt.want)
			if n := tokenCalls(env); n != tt.tokenCalls {
				t.Errorf("%d token calls, want %d", n, tt.tokenCalls)
			}
			if n := len(obs.list()); n != tt.calls {
				t.Errorf("%d service calls (%q), want %d", n, obs.list(), tt.calls)
			}
		})
	}
}

func TestTokenExpiredAtTheProviderIsRefreshed(t *testing.T) {
	// The sandbox's clock runs ahead of the client's: the provider expires
	// the token while the client still trusts it, answers 070301, and the
	// client refreshes once.
	sbClock, clientClock := newClock(), newClock()
	env := newSandbox(t, sandbox.Config{Now: sbClock.Now, Nuonuo: sandbox.NuonuoConfig{TokenTTL: time.Hour}})
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Now = clientClock.Now })
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Now = "", ts, sbClock.Now })
	if _, err := ts.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	sbClock.Advance(2 * time.Hour)
	clientClock.Advance(time.Minute)
	o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("EXPIRED", nil)})
	wantClass(t, "Submit", o, providers.Accepted)
	if n := tokenCalls(env); n != 2 {
		t.Errorf("%d token calls, want 2", n)
	}
}

// Nuonuo's documents do not say under which HTTP status the gateway sends
// its own codes. A 070301 that comes with HTTP 401 is still the platform's
// refusal of the token, not a configuration fault: it is refreshed once, as
// one under 200 is, and only a refused replacement is action-required.
func TestTokenMismatchUnderHTTP401(t *testing.T) {
	tests := []struct {
		name    string
		refused []string
		want    providers.Class
	}{
		{"the refreshed token is taken", []string{"tok-1"}, providers.NotFound},
		{"the refreshed token is refused too", []string{"tok-1", "tok-2"}, providers.ActionRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newScriptedPlatform(t)
			p.refusedStatus = http.StatusUnauthorized
			ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: p.url + "/accessToken", AppKey: "app", AppSecret: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			c := p.client(t, ts)
			if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
				t.Fatalf("first Token = %q, %v", tok, err)
			}
			for _, tok := range tt.refused {
				p.refuse(tok)
			}
			o := c.Query(t.Context(), &providers.Call{Request: issueRequest("EXPIRED-401", nil)})
			if tt.want == providers.ActionRequired {
				wantMismatch(t, "Query", o)
			}
			wantClass(t, "Query", o, tt.want)
			if n := p.tokenCalls(); n != 2 {
				t.Errorf("%d token calls, want 2 (the first and one refresh): %q", n, p.sent)
			}
		})
	}
}

func TestTokenCallLimit(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{TokenCallLimit: 1}})
	first := env.mustTokenSource(t, nil)
	if _, err := first.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	other := env.mustTokenSource(t, nil) // a separate store: a second, unshared token call
	_, err := other.Token(t.Context())
	var te *nuonuo.TokenError
	if !errors.Is(err, nuonuo.ErrTokenLimit) || !errors.As(err, &te) || te.Code != "070306" {
		t.Fatalf("Token() = %v, want a *TokenError 070306 wrapping ErrTokenLimit", err)
	}
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens = "", other })
	o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("LIMITED", nil)})
	wantClass(t, "Submit", o, providers.ActionRequired)
	if o.Code != "070306" {
		t.Errorf("code %q, want 070306", o.Code)
	}
	if n := env.sb.Stats().Requests["nuonuo"]; n != 0 {
		t.Errorf("%d service calls without a token", n)
	}
	// The refusal is held: more calls do not spend more token calls.
	for range 3 {
		wantClass(t, "Submit again", c.Submit(t.Context(), &providers.Call{Request: issueRequest("LIMITED", nil)}), providers.ActionRequired)
	}
	if n := tokenCalls(env); n != 2 {
		t.Errorf("%d token calls, want 2: a refusal must not be retried at once", n)
	}
}

func TestTokenRefusalKeepsSecrets(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	const secret = "wrong-secret-0f9e8d"
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.AppSecret = secret })
	_, err := ts.Token(t.Context())
	var te *nuonuo.TokenError
	if !errors.As(err, &te) || te.Code != "070305" || !errors.Is(err, nuonuo.ErrTokenRefused) {
		t.Fatalf("Token() = %v, want a *TokenError 070305", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the secret: %v", err)
	}
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AppSecret, cfg.AccessToken, cfg.Tokens = secret, "", ts })
	o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("SECRET", nil)})
	wantClass(t, "Submit", o, providers.ActionRequired)
	if strings.Contains(o.Message, secret) || (o.Err != nil && strings.Contains(o.Err.Error(), secret)) {
		t.Fatalf("the outcome shows the secret: %q %v", o.Message, o.Err)
	}
}

// loadSignal is a TokenStore that reports every Load.
type loadSignal struct {
	nuonuo.MemoryTokenStore
	loads chan struct{}
}

func (l *loadSignal) Load(ctx context.Context, key string) (nuonuo.Token, uint64, error) {
	select {
	case l.loads <- struct{}{}:
	default:
	}
	return l.MemoryTokenStore.Load(ctx, key)
}

func TestTokenWaitsForAnotherInstancesLease(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	store := &loadSignal{loads: make(chan struct{})}
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Key = store, "k" })
	now := time.Now()
	rev, err := store.Store(t.Context(), "k", nuonuo.Token{LeaseOwner: "other", LeaseUntil: now.Add(time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		tok, err := ts.Token(t.Context())
		if err != nil {
			tok = "error: " + err.Error()
		}
		got <- tok
	}()
	// Two reads: the source saw the lease, waited, and is polling.
	<-store.loads
	<-store.loads
	// The other instance finishes its refresh.
	if _, err := store.Store(t.Context(), "k", nuonuo.Token{AccessToken: "from-other", IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}, rev); err != nil {
		t.Fatal(err)
	}
	if tok := <-got; tok != "from-other" {
		t.Fatalf("Token() = %q, want the other instance's token", tok)
	}
	if n := tokenCalls(env); n != 0 {
		t.Errorf("%d token calls while another instance held the lease, want 0", n)
	}
}

func TestTokenUsesOldTokenDuringLeaseAndTakesOverExpiredLease(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	store := &nuonuo.MemoryTokenStore{}
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Key = store, "k" })
	now := time.Now()
	// Due for refresh (30 min left), another instance is on it: keep using the old one.
	old := nuonuo.Token{AccessToken: "old", IssuedAt: now.Add(-23*time.Hour - 30*time.Minute), ExpiresAt: now.Add(30 * time.Minute),
		LeaseOwner: "other", LeaseUntil: now.Add(time.Minute)}
	rev, err := store.Store(t.Context(), "k", old, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(t.Context()); err != nil || tok != "old" {
		t.Fatalf("Token() = %q, %v; want the old token while the lease holds", tok, err)
	}
	// The other instance died: its lease expired. This one takes over.
	old.LeaseUntil = now.Add(-time.Second)
	if _, err := store.Store(t.Context(), "k", old, rev); err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token(t.Context())
	if err != nil || tok == "old" {
		t.Fatalf("Token() = %q, %v; want a new token", tok, err)
	}
	stored, _, err := store.Load(t.Context(), "k")
	if err != nil || stored.AccessToken != tok || stored.LeaseOwner != "" {
		t.Fatalf("stored %+v, %v; want the new token without lease", stored, err)
	}
	if n := tokenCalls(env); n != 1 {
		t.Errorf("%d token calls, want 1", n)
	}
}

func TestTokenInvalidateRespectsReplacement(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	store := &nuonuo.MemoryTokenStore{}
	a := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Owner = store, "a" })
	b := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Store, c.Owner = store, "b" })
	first, err := a.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := b.Token(t.Context()); tok != first {
		t.Fatalf("b got %q, want the shared token", tok)
	}
	a.Invalidate(t.Context(), first)
	second, err := a.Token(t.Context())
	if err != nil || second == first {
		t.Fatalf("after Invalidate: %q, %v; want a new token", second, err)
	}
	// b learns of the mismatch late: the token was already replaced, so
	// b does not call the endpoint again.
	b.Invalidate(t.Context(), first)
	if tok, _ := b.Token(t.Context()); tok != second {
		t.Fatalf("b got %q, want the replacement %q", tok, second)
	}
	if n := tokenCalls(env); n != 2 {
		t.Errorf("%d token calls, want 2", n)
	}
}

func TestMemoryTokenStoreCompareAndSwap(t *testing.T) {
	var s nuonuo.MemoryTokenStore
	ctx := t.Context()
	if _, _, err := s.Load(ctx, "k"); !errors.Is(err, nuonuo.ErrNoToken) {
		t.Fatalf("Load of nothing = %v, want ErrNoToken", err)
	}
	r1, err := s.Store(ctx, "k", nuonuo.Token{AccessToken: "one"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store(ctx, "k", nuonuo.Token{AccessToken: "two"}, 0); !errors.Is(err, nuonuo.ErrTokenConflict) {
		t.Fatalf("create over an existing key = %v, want ErrTokenConflict", err)
	}
	r2, err := s.Store(ctx, "k", nuonuo.Token{AccessToken: "two"}, r1)
	if err != nil || r2 == r1 {
		t.Fatalf("update = %d, %v", r2, err)
	}
	if _, err := s.Store(ctx, "k", nuonuo.Token{AccessToken: "three"}, r1); !errors.Is(err, nuonuo.ErrTokenConflict) {
		t.Fatalf("stale update = %v, want ErrTokenConflict", err)
	}
	if tok, rev, _ := s.Load(ctx, "k"); tok.AccessToken != "two" || rev != r2 {
		t.Fatalf("Load = %q rev %d, want two rev %d", tok.AccessToken, rev, r2)
	}
}

func TestTokenSourceConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  nuonuo.TokenSourceConfig
		ok   bool
	}{
		{"valid", nuonuo.TokenSourceConfig{AppKey: "k", AppSecret: "s"}, true},
		{"no key", nuonuo.TokenSourceConfig{AppSecret: "s"}, false},
		{"no secret", nuonuo.TokenSourceConfig{AppKey: "k"}, false},
		{"bad URL", nuonuo.TokenSourceConfig{AppKey: "k", AppSecret: "s", TokenURL: "open.nuonuo.com"}, false},
		{"negative duration", nuonuo.TokenSourceConfig{AppKey: "k", AppSecret: "s", LeaseTTL: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// mismatchForever scripts 070301 for every service call: the platform
// refuses every token, fresh ones included.
func mismatchForever() sandbox.Faults {
	return sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "nuonuo", Code: "070301", Times: 1 << 30}}}
}

// wantMismatch fails the test unless o is the action-required answer to a
// token the platform keeps refusing.
func wantMismatch(tb testing.TB, what string, o providers.Outcome) {
	tb.Helper()
	wantClass(tb, what, o, providers.ActionRequired)
	if o.Code != "070301" || !errors.Is(o.Err, nuonuo.ErrTokenMismatch) {
		tb.Fatalf("%s: code %q err %v, want 070301 wrapping ErrTokenMismatch", what, o.Code, o.Err)
	}
	if !strings.Contains(o.Message, "070301") || !strings.Contains(o.Message, "console") {
		tb.Fatalf("%s: message %q does not tell the operator what to do", what, o.Message)
	}
}

func TestTokenPersistentMismatchStopsRefreshing(t *testing.T) {
	const hold = 5 * time.Minute
	clk := newClock()
	env := newSandbox(t, sandbox.Config{})
	ts := env.mustTokenSource(t, func(c *nuonuo.TokenSourceConfig) { c.Now, c.MismatchHold = clk.Now, hold })
	obs := &observed{}
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Observer = "", ts, obs })
	env.sb.SetFaults(mismatchForever())

	for i := range 1000 {
		call := &providers.Call{Request: issueRequest(fmt.Sprintf("PERSIST-%d", i), nil)}
		if i%2 == 0 {
			wantMismatch(t, fmt.Sprintf("Submit %d", i), c.Submit(t.Context(), call))
		} else {
			wantMismatch(t, fmt.Sprintf("Query %d", i), c.Query(t.Context(), call))
		}
	}
	// The first token and one refresh; then nothing until something changes.
	if n := tokenCalls(env); n != 2 {
		t.Fatalf("%d token calls for 1000 messages under a persistent 070301, want 2", n)
	}
	if n := len(obs.list()); n != 2 {
		t.Fatalf("%d service calls, want 2: calls fail fast once the refreshed token was refused too", n)
	}

	// After the hold one call goes out with the token in hand, to see whether
	// the platform takes it now. Refused: held again, still no token call.
	clk.Advance(hold + time.Second)
	wantMismatch(t, "probe after the hold", c.Query(t.Context(), &providers.Call{Request: issueRequest("PROBE-1", nil)}))
	wantMismatch(t, "call after the probe", c.Query(t.Context(), &providers.Call{Request: issueRequest("PROBE-2", nil)}))
	if n, m := tokenCalls(env), len(obs.list()); n != 2 || m != 3 {
		t.Fatalf("after one probe: %d token calls and %d service calls, want 2 and 3", n, m)
	}

	// An operator fixes the app in the console: the next probe is accepted,
	// and the calls after it go out as usual, without a token call.
	env.sb.SetFaults(sandbox.Faults{})
	clk.Advance(hold + time.Second)
	for i := range 3 {
		wantClass(t, fmt.Sprintf("call %d after the fix", i), c.Query(t.Context(), &providers.Call{Request: issueRequest("FIXED", nil)}), providers.NotFound)
	}
	if n := tokenCalls(env); n != 2 {
		t.Errorf("%d token calls after recovery, want 2", n)
	}
}

func TestTokenTransientMismatchRecovers(t *testing.T) {
	// Each 070301 that follows an accepted call is a new incident: it is
	// refreshed once and the call succeeds. Only a refused replacement stops
	// the refreshing.
	env := newSandbox(t, sandbox.Config{})
	ts := env.mustTokenSource(t, nil)
	obs := &observed{}
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Observer = "", ts, obs })
	for round := range 3 {
		env.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "nuonuo", Method: billingMethod, Code: "070301"}}})
		o := c.Submit(t.Context(), &providers.Call{Request: issueRequest(fmt.Sprintf("TRANSIENT-%d", round), nil)})
		wantClass(t, fmt.Sprintf("Submit %d", round), o, providers.Accepted)
		// The first token, then one refresh per transient 070301.
		if n, want := tokenCalls(env), round+2; n != want {
			t.Fatalf("round %d: %d token calls, want %d", round, n, want)
		}
		if n, want := len(obs.list()), 2*(round+1); n != want {
			t.Fatalf("round %d: %d service calls, want %d", round, n, want)
		}
	}
}

func TestTokenConcurrentMismatchOneRefresh(t *testing.T) {
	tests := []struct {
		name string
		// expire makes the sandbox expire the first token: every worker's
		// first call is refused, the refreshed token is accepted.
		expire bool
		// persistent refuses every call, the refreshed token's too.
		persistent bool
		want       providers.Class
	}{
		{name: "transient: the token expired at the provider", expire: true, want: providers.NotFound},
		{name: "persistent: every token refused", persistent: true, want: providers.ActionRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sbClock := newClock()
			env := newSandbox(t, sandbox.Config{Now: sbClock.Now, Nuonuo: sandbox.NuonuoConfig{TokenTTL: time.Hour}})
			ts := env.mustTokenSource(t, nil)
			c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken, cfg.Tokens, cfg.Now = "", ts, sbClock.Now })
			if _, err := ts.Token(t.Context()); err != nil {
				t.Fatal(err)
			}
			if tt.expire {
				sbClock.Advance(2 * time.Hour) // the client still trusts its token
			}
			if tt.persistent {
				env.sb.SetFaults(mismatchForever())
			}
			const workers = 64
			start := make(chan struct{})
			outcomes := make([]providers.Outcome, workers)
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					<-start
					outcomes[i] = c.Query(t.Context(), &providers.Call{Request: issueRequest(fmt.Sprintf("CONC-%d", i), nil)})
				})
			}
			close(start)
			wg.Wait()
			for i, o := range outcomes {
				if tt.want == providers.ActionRequired {
					wantMismatch(t, fmt.Sprintf("worker %d", i), o)
				} else {
					wantClass(t, fmt.Sprintf("worker %d", i), o, tt.want)
				}
			}
			if n := tokenCalls(env); n != 2 {
				t.Fatalf("%d token calls for %d workers refused at once, want 2 (the first token and one refresh)", n, workers)
			}
		})
	}
}

// An early refresh (inside the hour before expiry) that fails, here because
// the token endpoint drops the connection, leaves the token in hand in use
// instead of failing the calls, and is not tried again on every call: the
// endpoint allows 50 calls in 30 days. After RefusalHold it is tried again.
func TestTokenRefreshFailureKeepsTheValidToken(t *testing.T) {
	clk := newClock()
	var down atomic.Bool
	var calls, issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":"86400"}`, issued.Add(1))
	}))
	defer srv.Close()
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{
		TokenURL: srv.URL, AppKey: "app", AppSecret: "secret", Now: clk.Now,
		HTTPClient: providers.NewHTTPClient(providers.HTTPConfig{Timeout: 2 * time.Second}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
		t.Fatalf("first Token = %q, %v", tok, err)
	}
	clk.Advance(23*time.Hour + 30*time.Minute) // valid for 30 more minutes
	down.Store(true)
	for i := range 3 {
		if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
			t.Errorf("Token #%d, the endpoint down, a valid token in hand = %q, %v; want tok-1", i, tok, err)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d token endpoint calls, want 2: the first fetch and one failed refresh", n)
	}
	down.Store(false)
	clk.Advance(2 * time.Minute) // past the default hold of 1 minute
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-2" {
		t.Errorf("Token after the hold, the endpoint back = %q, %v; want a refreshed tok-2", tok, err)
	}
	clk.Advance(30 * time.Minute) // tok-1 has expired; tok-2 is fresh
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-2" || calls.Load() != 3 {
		t.Errorf("Token later = %q, %v after %d calls; want tok-2 after 3", tok, err, calls.Load())
	}
}

// An answer without a token (a gateway's HTML page) is held like a refusal,
// and failures in a row double the hold up to an hour: a busy consumer
// without a token does not spend the endpoint's 50 calls in minutes.
func TestTokenEndpointFailuresAreHeldAndBackOff(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
	}))
	defer srv.Close()
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: srv.URL, AppKey: "k", AppSecret: "s",
		RefusalHold: time.Minute, Now: clock, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fail := func(what string, wantCalls int32) {
		t.Helper()
		if _, err := ts.Token(t.Context()); err == nil {
			t.Fatalf("%s: a token from an HTML page", what)
		}
		if n := calls.Load(); n != wantCalls {
			t.Fatalf("%s: %d endpoint calls, want %d", what, n, wantCalls)
		}
	}
	fail("first", 1)
	for range 10 {
		fail("within the first minute", 1)
	}
	// Each hold doubles: 1, 2, 4, 8, 16, 32 minutes, then an hour.
	for i, hold := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		advance(hold - time.Second)
		fail(fmt.Sprintf("a second before hold %d (%s) ends", i+1, hold), int32(i+1))
		advance(time.Second)
		fail(fmt.Sprintf("hold %d (%s) over", i+1, hold), int32(i+2))
	}
}

// The token endpoint that goes with a platform: production's is on another
// host than its API.
func TestTokenURLFor(t *testing.T) {
	for base, want := range map[string]string{
		"https://sdk.nuonuo.com":         nuonuo.DefaultTokenURL,
		"https://SDK.nuonuo.com/":        nuonuo.DefaultTokenURL,
		"https://sdk.nuonuo.com:443":     nuonuo.DefaultTokenURL,
		"http://127.0.0.1:9100":          "http://127.0.0.1:9100/accessToken",
		"http://127.0.0.1:9100/":         "http://127.0.0.1:9100/accessToken",
		"https://sandbox.nuonuocs.cn":    "https://sandbox.nuonuocs.cn/accessToken",
		"https://sdk.nuonuo.com.example": "https://sdk.nuonuo.com.example/accessToken",
	} {
		if got := nuonuo.TokenURLFor(base); got != want {
			t.Errorf("TokenURLFor(%q) = %q, want %q", base, got, want)
		}
	}
}

// One app key may be configured against two token endpoints (production and
// a sandbox, each with its own sellers), and the consumer makes a token
// source for each. Sharing one store, each keeps its own token: under the
// app key alone, the second read the first's token from the store and sent
// it to a platform that never issued it.
func TestTokenSourcesOfOneAppKeyOnTwoEndpoints(t *testing.T) {
	endpoint := func(tok string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json;charset=UTF-8")
			fmt.Fprintf(w, `{"access_token":%q,"expires_in":"86400"}`, tok)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/accessToken"
	}
	store := &nuonuo.MemoryTokenStore{}
	for _, tt := range []struct{ url, want string }{
		{endpoint("tok-production"), "tok-production"},
		{endpoint("tok-sandbox"), "tok-sandbox"},
	} {
		ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: tt.url, AppKey: "app", AppSecret: "secret", Store: store})
		if err != nil {
			t.Fatal(err)
		}
		if tok, err := ts.Token(t.Context()); err != nil || tok != tt.want {
			t.Errorf("Token from %s = %q, %v; want %q", tt.url, tok, err, tt.want)
		}
	}
}

// The production token endpoint's tokens keep the key they were stored
// under before the key named the endpoint: after an upgrade, a stored
// token is used, not fetched again with one of the endpoint's 50 calls.
func TestTokenStoredForProductionIsKept(t *testing.T) {
	store := &nuonuo.MemoryTokenStore{}
	now := time.Now()
	if _, err := store.Store(t.Context(), "nuonuo.app", nuonuo.Token{AccessToken: "tok-stored", IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	refuse := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("no token call expected")
	})}
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{AppKey: "app", AppSecret: "secret", Store: store, HTTPClient: refuse})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-stored" {
		t.Errorf("Token = %q, %v; want the stored tok-stored", tok, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
