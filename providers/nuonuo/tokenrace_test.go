package nuonuo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
)

// scriptedPlatform is a Nuonuo platform whose answers a test orders: it
// issues tokens tok-1, tok-2, ... and refuses with 070301 the tokens in
// refused; a call naming an order in hold waits, once arrived, until the
// test releases it. Its answer is decided on arrival.
type scriptedPlatform struct {
	url string

	mu     sync.Mutex
	calls  int // token endpoint calls
	issued int // tokens issued
	// tokenGate, when set, holds the next token call until closed, and
	// tokenFail answers it 503.
	tokenGate    chan struct{}
	tokenFail    bool
	tokenArrived chan struct{}
	refused      map[string]bool
	hold         map[string]chan struct{} // order → closed to answer
	arrived      chan string              // "order token" of each call of a held order
	sent         []string                 // "order token" of every call
	// refusedStatus is the HTTP status of a 070301 answer; 0 means 200.
	refusedStatus int
}

// orderNos finds the order named in a call's body.
var orderNos = regexp.MustCompile(`"orderNos?"\s*:\s*\[?"([^"]*)"`)

func newScriptedPlatform(tb testing.TB) *scriptedPlatform {
	p := &scriptedPlatform{refused: map[string]bool{}, hold: map[string]chan struct{}{}, arrived: make(chan string, 16), tokenArrived: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *scriptedPlatform) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	if r.URL.Path == "/accessToken" {
		p.mu.Lock()
		p.calls++
		gate, fail := p.tokenGate, p.tokenFail
		p.tokenGate, p.tokenFail = nil, false
		if !fail {
			p.issued++
		}
		n := p.issued
		p.mu.Unlock()
		if gate != nil {
			p.tokenArrived <- struct{}{}
			<-gate
		}
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"access_token":"tok-%d","expires_in":"86400"}`, n)
		return
	}
	body, _ := io.ReadAll(r.Body)
	tok := r.Header.Get("accessToken")
	p.mu.Lock()
	refused, refusedStatus := p.refused[tok], p.refusedStatus
	var order string
	var gate chan struct{}
	for _, o := range orderNos.FindAllStringSubmatch(string(body), -1) {
		order = o[1]
	}
	if g, ok := p.hold[order]; ok {
		gate = g
		delete(p.hold, order) // only the next call of the order waits
	}
	p.sent = append(p.sent, order+" "+tok)
	p.mu.Unlock()
	if gate != nil {
		p.arrived <- order + " " + tok
		<-gate
	}
	if refused {
		if refusedStatus != 0 {
			w.WriteHeader(refusedStatus)
		}
		fmt.Fprint(w, `{"code":"070301","describe":"accessToken不匹配/或appKey不匹配"}`)
		return
	}
	fmt.Fprint(w, `{"code":"E9500","describe":"未查询到发票信息"}`)
}

// holdOrder makes the next call naming order wait until release is called.
func (p *scriptedPlatform) holdOrder(order string) (release func()) {
	g := make(chan struct{})
	p.mu.Lock()
	p.hold[order] = g
	p.mu.Unlock()
	return func() { close(g) }
}

func (p *scriptedPlatform) refuse(tok string) {
	p.mu.Lock()
	p.refused[tok] = true
	p.mu.Unlock()
}

func (p *scriptedPlatform) tokenCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// holdToken makes the next token call wait until release is called, and
// answer 503 if fail.
func (p *scriptedPlatform) holdToken(fail bool) (release func()) {
	g := make(chan struct{})
	p.mu.Lock()
	p.tokenGate, p.tokenFail = g, fail
	p.mu.Unlock()
	return func() { close(g) }
}

func (p *scriptedPlatform) client(tb testing.TB, ts *nuonuo.TokenSource) *nuonuo.Client {
	tb.Helper()
	c, err := nuonuo.New(nuonuo.Config{
		BaseURL: p.url, SellerTaxNum: seller, AppKey: "app", AppSecret: "secret", Tokens: ts,
		HTTP: providers.HTTPConfig{Timeout: 10 * time.Second}, PollAfter: time.Second,
	})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return c
}

// A worker whose call went out with a token before another worker had it
// replaced (070301) learns of the refusal late. Its late refusal is one of
// the token already replaced, not a refusal of the replacement: it repeats
// its call with the replacement, no worker is answered action-required, and
// no further token is fetched. Worker b's refusal arrives while a's repeat
// is still out, and after it was accepted.
func TestTokenLateRefusalOfTheReplacedToken(t *testing.T) {
	for _, bLate := range []string{"while a repeats", "after a's repeat was accepted"} {
		t.Run(bLate, func(t *testing.T) {
			p := newScriptedPlatform(t)
			ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: p.url + "/accessToken", AppKey: "app", AppSecret: "secret"})
			if err != nil {
				t.Fatal(err)
			}
			c := p.client(t, ts)
			if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
				t.Fatalf("first Token = %q, %v", tok, err)
			}
			p.refuse("tok-1") // the platform drops tok-1; tok-2 will do
			query := func(order string) <-chan providers.Outcome {
				out := make(chan providers.Outcome, 1)
				go func() { out <- c.Query(t.Context(), &providers.Call{Request: issueRequest(order, nil)}) }()
				return out
			}
			releaseB := p.holdOrder("LATE-B")
			bDone := query("LATE-B")
			if got := <-p.arrived; got != "LATE-B tok-1" {
				t.Fatalf("b's call: %q, want it sent with tok-1", got)
			}
			var a, b providers.Outcome
			if bLate == "while a repeats" {
				releaseA := p.holdOrder("LATE-A")
				aDone := query("LATE-A")
				if got := <-p.arrived; got != "LATE-A tok-1" {
					t.Fatalf("a's call: %q", got)
				}
				releaseRepeat := p.holdOrder("LATE-A")
				releaseA() // refused: a has tok-1 replaced and repeats
				if got := <-p.arrived; got != "LATE-A tok-2" {
					t.Fatalf("a's repeat: %q, want tok-2", got)
				}
				releaseB() // b's refusal of tok-1 arrives while a's repeat is out
				b = <-bDone
				releaseRepeat()
				a = <-aDone
			} else {
				// a is refused, has the token replaced, and its repeat is
				// accepted before b's refusal of tok-1 arrives.
				a = c.Query(t.Context(), &providers.Call{Request: issueRequest("LATE-A", nil)})
				releaseB()
				b = <-bDone
			}
			wantClass(t, "a", a, providers.NotFound)
			wantClass(t, "b", b, providers.NotFound)
			if n := p.tokenCalls(); n != 2 {
				t.Errorf("%d token calls, want 2", n)
			}
			t.Logf("calls: %q", p.sent)
		})
	}
}

// invalidated is a TokenStore that reports when tok is stored invalidated.
type invalidated struct {
	nuonuo.MemoryTokenStore
	tok  string
	once sync.Once
	done chan struct{}
}

func (s *invalidated) Store(ctx context.Context, key string, tok nuonuo.Token, rev uint64) (uint64, error) {
	r, err := s.MemoryTokenStore.Store(ctx, key, tok, rev)
	if err == nil && tok.AccessToken == s.tok && tok.ExpiresAt.IsZero() {
		s.once.Do(func() { close(s.done) })
	}
	return r, err
}

// A refresh ahead of expiry is under way when a worker's call is refused
// with 070301. The refresh had read the token before the refusal was
// recorded, and fails: it hands out the token in hand, the refused one. The
// worker must not repeat its call with the token it just saw refused and
// count that second refusal of the same token as the replacement's, which
// would answer action-required ("refused twice") and hold the seller: no
// replacement was ever tried. Here none can be fetched (the endpoint's
// failure is held), so the worker's answer is the endpoint's unavailability.
func TestTokenRefusedDuringARefreshIsNotSentAgain(t *testing.T) {
	clk := newClock()
	p := newScriptedPlatform(t)
	store := &invalidated{tok: "tok-1", done: make(chan struct{})}
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{
		TokenURL: p.url + "/accessToken", AppKey: "app", AppSecret: "secret", Store: store, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := p.client(t, ts)
	if tok, err := ts.Token(t.Context()); err != nil || tok != "tok-1" {
		t.Fatalf("first Token = %q, %v", tok, err)
	}
	p.refuse("tok-1") // the platform drops tok-1 early
	releaseB := p.holdOrder("STALE-B")
	bDone := make(chan providers.Outcome, 1)
	go func() { bDone <- c.Query(t.Context(), &providers.Call{Request: issueRequest("STALE-B", nil)}) }()
	if got := <-p.arrived; got != "STALE-B tok-1" {
		t.Fatalf("b's call: %q, want it sent with tok-1", got)
	}
	clk.Advance(23*time.Hour + time.Minute) // inside the hour before expiry
	releaseFetch := p.holdToken(true)
	wDone := make(chan string, 1)
	go func() {
		tok, err := ts.Token(t.Context())
		wDone <- fmt.Sprint(tok, err)
	}()
	<-p.tokenArrived // the refresh has read tok-1 and is calling the endpoint
	releaseB()       // b is refused and has tok-1 invalidated ...
	<-store.done
	// b asks for the token to repeat its call with and waits for the
	// refresh, as the refresh's own caller does ...
	waitInToken(t, 2)
	releaseFetch() // ... which fails
	b := <-bDone
	t.Logf("refresh: %s; calls: %q", <-wDone, p.sent)
	if b.Class == providers.ActionRequired {
		t.Fatalf("b: action required (code %q, err %v) after tok-1 was sent twice: %q", b.Code, b.Err, p.sent)
	}
	wantClass(t, "b", b, providers.Retry)
	for _, s := range p.sent[1:] {
		if s == "STALE-B tok-1" {
			t.Errorf("b sent tok-1 again after it was refused: %q", p.sent)
		}
	}
	if n := p.tokenCalls(); n != 2 {
		t.Errorf("%d token calls, want 2 (the first and the failed refresh)", n)
	}
}

// waitInToken waits until n goroutines wait in TokenSource.Token for a
// refresh under way. They are found by their stacks: the wait has no other
// sign.
func waitInToken(tb testing.TB, n int) {
	tb.Helper()
	buf := make([]byte, 1<<20)
	for range 1000 {
		waiting := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "[select") && strings.Contains(g, "nuonuo.(*TokenSource).Token(") {
				waiting++
			}
		}
		if waiting >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatalf("fewer than %d goroutines wait in Token", n)
}
