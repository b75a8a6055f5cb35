package nuonuo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
)

// An invoice entry of queryInvoiceResult without a status says nothing of
// the order's state. It was taken for one still being issued (Accepted,
// with neither code nor message), and the order was polled until its
// request was given up with nothing to tell an operator why. It is now an
// answer that cannot be read, as a result that is not JSON is: Retry, its
// message naming the missing status, so that the request given up says
// what is wrong.
func TestInvoiceEntryWithoutStatus(t *testing.T) {
	const issued = `{"serialNo":"20260101000000000001","orderNo":"NOSTATUS-1","status":"2","statusMsg":"开票完成",` +
		`"invoiceNo":"26332000000000000001","exTaxAmount":"50.00","taxAmount":"3.00","orderAmount":"53.00"}`
	for _, tt := range []struct {
		name, entries string
	}{
		{"no status", `[{"serialNo":"20260101000000000001","orderNo":"NOSTATUS-1","invoiceNo":"26332000000000000001"}]`},
		{"empty status", `[{"serialNo":"20260101000000000001","orderNo":"NOSTATUS-1","status":"","statusMsg":""}]`},
		{"null status", `[{"serialNo":"20260101000000000001","orderNo":"NOSTATUS-1","status":null}]`},
		{"one of a split order's", `[` + issued + `,{"serialNo":"20260101000000000001","orderNo":"NOSTATUS-1","orderAmount":"53.00"}]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":`+tt.entries+`}`)
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			o := c.Query(t.Context(), &providers.Call{Request: issueRequest("NOSTATUS-1", nil), SubmittedAt: time.Now(), Accepted: true})
			wantClass(t, "Query", o, providers.Retry)
			if o.Code != "unreadable" || !strings.Contains(o.Message, "without a status") {
				t.Errorf("code %q message %q, want unreadable naming the missing status", o.Code, o.Message)
			}
		})
	}
}
