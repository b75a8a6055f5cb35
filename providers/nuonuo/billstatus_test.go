package nuonuo_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/schemas"
)

// A billStatus sent as a JSON number (4 for "04") is the same status: read
// as the text "4", which no row of the status table names, a confirmed
// form was polled as unknown until the request was given up, and a void
// one never ended as such.
func TestBillStatusAsANumber(t *testing.T) {
	for _, tt := range []struct {
		status   string // as it appears in the JSON answer
		want     providers.Class
		wantCode string
		awaiting bool
	}{
		{`"04"`, providers.Issued, "04", false},
		{`4`, providers.Issued, "04", false},
		{`1`, providers.Issued, "01", false},
		{`2`, providers.Accepted, "02", true},
		{`7`, providers.Rejected, "07", false},
		{`16`, providers.Rejected, "16", false},
		{`15`, providers.Accepted, "15", false},
	} {
		t.Run(tt.status, func(t *testing.T) {
			o := queryPaperForm(t, tt.status)
			wantClass(t, "Query", o, tt.want)
			if o.Code != tt.wantCode || o.RedConfirm == nil || o.RedConfirm.BillStatus != tt.wantCode {
				t.Errorf("code %q state %+v, want billStatus %s", o.Code, o.RedConfirm, tt.wantCode)
			}
			if o.AwaitingParty != tt.awaiting {
				t.Errorf("AwaitingParty %v, want %v", o.AwaitingParty, tt.awaiting)
			}
		})
	}
}

// billStatus 10 is the tax bureau's 作废（异常凭证）: the form is void because
// the blue invoice became an abnormal voucher. The seeds do not list it;
// the tax bureau's list of form statuses, which 01 to 09 follow, does. A
// void form ends as the other void statuses do, Rejected with its status,
// instead of being polled as unknown until the request is given up.
func TestBillStatusVoidAbnormalVoucher(t *testing.T) {
	for _, status := range []string{`"10"`, `10`} {
		t.Run(status, func(t *testing.T) {
			o := queryPaperForm(t, status)
			wantClass(t, "Query", o, providers.Rejected)
			if o.Code != "10" || o.RedConfirm == nil || o.RedConfirm.BillStatus != "10" {
				t.Errorf("code %q state %+v, want billStatus 10", o.Code, o.RedConfirm)
			}
		})
	}
}

// queryPaperForm queries a paper form (blue line c) that Nuonuo answers
// with billStatus status, as it appears in the JSON answer. Confirmed, a
// paper form is Issued without a red invoice, so the form's status alone
// decides.
func queryPaperForm(tb testing.TB, status string) providers.Outcome {
	tb.Helper()
	req := redConfirmRequest("RC-NUM-1", func(rc *schemas.RedConfirm) {
		rc.BlueInvoiceLine, rc.BlueElecInvoiceNumber, rc.BlueInvoiceCode, rc.BlueInvoiceNumber = "c", "", "033001900112", "12345679"
	})
	billID := nuonuo.BillID(seller, "RC-NUM-1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":{"total":1,"list":[{"billId":"`+billID+
			`","billNo":"99000000000000000001","billStatus":`+status+`,"billMessage":"","openStatus":0}]}}`)
	}))
	tb.Cleanup(srv.Close)
	c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Query(tb.Context(), &providers.Call{Request: req, SubmittedAt: time.Now(), Accepted: true})
}
