package nuonuo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/schemas"
)

// E9103 (该发票不能重复冲红, seed 001) refuses a red order because its blue
// invoice is reversed already. To a resubmission (providers.Call.
// Resubmission: an earlier submission's answer was lost) that reversal may
// be the earlier submission's own: the red order is looked up by its
// order number and followed when Nuonuo holds it, so that the red invoice
// issued is not reported rejected. To a first submission, and when Nuonuo
// holds no order under the number, the reversal is another order's: the
// refusal stands. A look-up that fails says nothing either way: Retry.
func TestRedOrderAlreadyReversedOnResubmission(t *testing.T) {
	const found = `{"code":"E0000","describe":"查询成功","result":[{"serialNo":"20260101000000000009","orderNo":"RED-1",` +
		`"status":"2","statusMsg":"开票完成","invoiceNo":"26332000000000000009","allElectronicInvoiceNumber":"26332000000000000009",` +
		`"invoiceTime":1763600000000,"exTaxAmount":"-100.00","taxAmount":"-6.00","orderAmount":"-106.00"}]}`
	for _, tt := range []struct {
		name         string
		resubmission bool
		query        string // the answer to queryInvoiceResult; "" for HTTP 503
		want         providers.Class
		wantCode     string
		wantQueries  int
	}{
		{"resubmission, our red order held", true, found, providers.Issued, "2", 1},
		{"resubmission, no order under the number", true, `{"code":"E9500","describe":"未查询到发票信息"}`, providers.Rejected, "E9103", 1},
		{"resubmission, the look-up fails", true, "", providers.Retry, "http_503", 1},
		{"first submission", false, found, providers.Rejected, "E9103", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			queries := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				method := r.Header.Get("method")
				switch {
				case strings.HasSuffix(method, ".requestBillingNew"):
					_, _ = io.WriteString(w, `{"code":"E9103","describe":"该发票不能重复冲红"}`)
				case strings.HasSuffix(method, ".queryInvoiceResult"):
					mu.Lock()
					queries++
					mu.Unlock()
					if tt.query == "" {
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					_, _ = io.WriteString(w, tt.query)
				default:
					http.Error(w, "unexpected method", http.StatusBadRequest)
				}
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			req := issueRequest("RED-1", func(o *schemas.Order) {
				o.InvoiceType, o.InvoiceLine, o.InvoiceCode, o.InvoiceNum = schemas.InvoiceTypeRed, "p", "033001900111", "12345678"
				l := &o.InvoiceDetail[0]
				l.Num, l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount =
					schemas.ParseAmount("-1"), schemas.ParseAmount("-100.00"), schemas.ParseAmount("-6.00"), schemas.ParseAmount("-106.00")
			})
			o := c.Submit(t.Context(), &providers.Call{Request: req, SubmittedAt: time.Now(), Resubmission: tt.resubmission})
			wantClass(t, "Submit", o, tt.want)
			if o.Code != tt.wantCode {
				t.Errorf("code %q, want %q (message %q)", o.Code, tt.wantCode, o.Message)
			}
			if tt.want == providers.Issued && (len(o.Invoices) != 1 || o.Invoices[0].DigitalInvoiceNo != "26332000000000000009" || o.Refs.SerialNo != "20260101000000000009") {
				t.Errorf("invoices %+v refs %+v, want the red invoice Nuonuo holds", o.Invoices, o.Refs)
			}
			if tt.want == providers.Rejected && o.Field != "order.invoiceNum" {
				t.Errorf("field %q, want order.invoiceNum", o.Field)
			}
			mu.Lock()
			defer mu.Unlock()
			if queries != tt.wantQueries {
				t.Errorf("%d queries, want %d", queries, tt.wantQueries)
			}
		})
	}
}
