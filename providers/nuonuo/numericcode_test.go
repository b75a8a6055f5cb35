package nuonuo_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
)

// A platform code sent as a JSON number has lost its leading zero (70201
// for "070201"): read as "70201", no row of the table names it, and the
// default rule rejected for good a submission that was only throttled or
// whose token did not match. It is read as the code it stands for.
func TestPlatformCodeAsANumber(t *testing.T) {
	for _, tt := range []struct {
		code     string // as it appears in the JSON answer
		want     providers.Class
		wantCode string
	}{
		{`"070201"`, providers.Retry, "070201"},
		{`70201`, providers.Retry, "070201"},
		{`70301`, providers.ActionRequired, "070301"},
		{`70601`, providers.ActionRequired, "070601"},
		{`40102`, providers.Retry, "040102"},
		{`203`, providers.Retry, "0203"},
		{`201`, providers.Rejected, "0201"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				_, _ = io.WriteString(w, `{"code":`+tt.code+`,"describe":"x"}`)
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("NUMCODE-1", nil), SubmittedAt: time.Now()})
			wantClass(t, "Submit", o, tt.want)
			if o.Code != tt.wantCode {
				t.Errorf("code %q, want %q", o.Code, tt.wantCode)
			}
		})
	}
}

// The token endpoint's refusal in a number (70306 for "070306", the call
// limit) is the same refusal: an operator must act, and the outcome says
// which code.
func TestTokenRefusalCodeAsANumber(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = io.WriteString(w, `{"error":70306,"error_description":"调用次数超限"}`)
	}))
	t.Cleanup(srv.Close)
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{TokenURL: srv.URL + "/accessToken", AppKey: "k", AppSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", Tokens: ts})
	if err != nil {
		t.Fatal(err)
	}
	o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("NUMCODE-2", nil), SubmittedAt: time.Now()})
	wantClass(t, "Submit", o, providers.ActionRequired)
	if o.Code != "070306" || !errors.Is(o.Err, nuonuo.ErrTokenLimit) {
		t.Errorf("code %q err %v, want 070306 wrapping ErrTokenLimit", o.Code, o.Err)
	}
}
