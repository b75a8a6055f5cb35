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
	"github.com/fapiaohub/invoicer/schemas"
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

// A red confirmation form of queryInvoiceRedConfirm without a billStatus
// says nothing of the form's state either. It was taken for an unknown
// status (Accepted, with an empty code), and the order was polled until its
// request was given up with nothing to tell an operator why. It is now an
// answer that cannot be read, as an invoice entry without a status is.
func TestRedFormWithoutStatus(t *testing.T) {
	for _, tt := range []struct {
		name, status string // status: the billStatus member, as it appears in the JSON answer
	}{
		{"no billStatus", ``},
		{"empty billStatus", `"billStatus":"",`},
		{"null billStatus", `"billStatus":null,`},
		{"blank billStatus", `"billStatus":" ",`},
	} {
		for _, line := range []string{"c", "p"} { // a paper form and one issued automatically
			t.Run(tt.name+"/"+line, func(t *testing.T) {
				o := queryRedForm(t, "RC-NOSTATUS-1", line, tt.status)
				wantClass(t, "Query", o, providers.Retry)
				if o.Code != "unreadable" || !strings.Contains(o.Message, "without a billStatus") {
					t.Errorf("code %q message %q, want unreadable naming the missing billStatus", o.Code, o.Message)
				}
			})
		}
	}
}

// queryRedForm queries the red confirmation form of orderNo, for a blue
// invoice of line blueLine, that Nuonuo answers with the form's members
// plus status, the billStatus member as it appears in the JSON answer
// (with its trailing comma), or nothing.
func queryRedForm(tb testing.TB, orderNo, blueLine, status string) providers.Outcome {
	tb.Helper()
	req := redConfirmRequest(orderNo, func(rc *schemas.RedConfirm) {
		if blueLine == "c" {
			rc.BlueInvoiceLine, rc.BlueElecInvoiceNumber, rc.BlueInvoiceCode, rc.BlueInvoiceNumber = "c", "", "033001900112", "12345679"
		}
	})
	billID := nuonuo.BillID(seller, orderNo)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":{"total":1,"list":[{"billId":"`+billID+
			`","billNo":"99000000000000000001",`+status+`"billMessage":"","openStatus":0}]}}`)
	}))
	tb.Cleanup(srv.Close)
	c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Query(tb.Context(), &providers.Call{Request: req, SubmittedAt: time.Now(), Accepted: true})
}

// A saveInvoiceRedConfirm refused with a code this package does not know is
// followed by a query for the form: a form of this billId is our own
// earlier application. One found without a billStatus exists all the same;
// the submission is the unreadable answer, not Rejected.
func TestRefusedRedFormSubmissionFindsAFormWithoutStatus(t *testing.T) {
	const orderNo = "RC-NOSTATUS-2"
	billID := nuonuo.BillID(seller, orderNo)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		switch m := r.Header.Get("method"); m {
		case "nuonuo.OpeMplatform.saveInvoiceRedConfirm":
			_, _ = io.WriteString(w, `{"code":"E9999","describe":"单据已存在"}`)
		case "nuonuo.OpeMplatform.queryInvoiceRedConfirm":
			_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":{"total":1,"list":[{"billId":"`+billID+
				`","billNo":"99000000000000000002","billMessage":""}]}}`)
		default:
			t.Errorf("unexpected method %q", m)
			http.Error(w, "unexpected", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
	if err != nil {
		t.Fatal(err)
	}
	o := c.Submit(t.Context(), &providers.Call{Request: redConfirmRequest(orderNo, nil)})
	wantClass(t, "Submit", o, providers.Retry)
	if o.Code != "unreadable" || !strings.Contains(o.Message, "without a billStatus") || o.Refs.BillID != billID {
		t.Errorf("outcome %+v, want unreadable naming the missing billStatus, with the form's billId", o)
	}
}
