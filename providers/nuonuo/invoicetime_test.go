package nuonuo_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/schemas"
)

// An invoiceTime outside the years 0 to 9999 in UTC (here epoch
// microseconds where milliseconds are documented, or year 0000 in China
// time) cannot be written as the RFC 3339 time that the order's record and
// the result carry: the issued order could be
// neither saved nor published. Such a time is not believed; the invoice is
// answered without it, as for one that cannot be read.
func TestInvoiceTimeOutsideRFC3339IsNotBelieved(t *testing.T) {
	for _, tt := range []struct {
		name, invoiceTime string
		want              time.Time
	}{
		{"epoch milliseconds", `1763600000000`, time.UnixMilli(1763600000000).UTC()},
		{"epoch microseconds", `1763600000000000`, time.Time{}},
		{"the largest int64", `"9223372036854775807"`, time.Time{}},
		{"China time", `"2026-11-20 10:15:00"`, time.Date(2026, 11, 20, 2, 15, 0, 0, time.UTC)},
		{"year 0000 in China time, year -1 in UTC", `"0000-01-01 00:00:00"`, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":[{"serialNo":"20260101000000000001","orderNo":"TIME-1",`+
					`"status":"2","statusMsg":"开票完成","invoiceNo":"26332000000000000001","allElectronicInvoiceNumber":"26332000000000000001",`+
					`"invoiceTime":`+tt.invoiceTime+`,"exTaxAmount":"100.00","taxAmount":"6.00","orderAmount":"106.00"}]}`)
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			o := c.Query(t.Context(), &providers.Call{Request: issueRequest("TIME-1", nil), SubmittedAt: time.Now(), Accepted: true})
			wantClass(t, "Query", o, providers.Issued)
			if len(o.Invoices) != 1 {
				t.Fatalf("invoices %+v, want one", o.Invoices)
			}
			if got := o.Invoices[0].IssuedAt; !got.Equal(tt.want) {
				t.Errorf("IssuedAt %v, want %v", got, tt.want)
			}
			res := schemas.Result{Invoices: o.Invoices}
			if _, err := json.Marshal(res); err != nil {
				t.Fatalf("the issued invoice cannot be written in a result: %v", err)
			}
		})
	}
}
