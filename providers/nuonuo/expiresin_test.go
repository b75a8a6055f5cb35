package nuonuo_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/fapiaohub/invoicer/providers/nuonuo"
)

// An expires_in too large for a time.Duration (more than about 292 years in
// seconds) overflowed into a token that had expired when it was fetched: every
// Token call fetched another, spending the endpoint's 50 calls per 30 days in
// as many calls and holding every seller of the app on 070306.
func TestTokenHugeExpiresInDoesNotRefetch(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","expires_in":"10000000000"}`))
	}))
	t.Cleanup(srv.Close)
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: srv.URL + "/accessToken", AppKey: "app", AppSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if tok, err := ts.Token(t.Context()); err != nil || tok != "tok" {
			t.Fatalf("Token: %q, %v", tok, err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d token endpoint calls for 5 Token calls, want 1", n)
	}
}
