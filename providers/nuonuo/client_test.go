package nuonuo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

func TestSignVector(t *testing.T) {
	got := nuonuo.Sign("secret", "app", strings.Repeat("a", 32), "12345678", "1700000000", []byte(`{"name":"中文"}`))
	if want := "4BzcKzrcoqxPis0W/W3X2ae0uIo="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{AppKey: "other", AppSecret: "s3cr3t-value"})
	if err != nil {
		t.Fatal(err)
	}
	valid := nuonuo.Config{BaseURL: "http://127.0.0.1:9100", SellerTaxNum: seller, AppKey: "k", AppSecret: "s3cr3t-value", AccessToken: "tok"}
	tests := []struct {
		name   string
		mutate func(*nuonuo.Config)
		ok     bool
	}{
		{"valid static token", func(*nuonuo.Config) {}, true},
		{"valid family", func(c *nuonuo.Config) { c.Family = nuonuo.FamilyOpeMplatform }, true},
		{"no base URL", func(c *nuonuo.Config) { c.BaseURL = "" }, false},
		{"relative base URL", func(c *nuonuo.Config) { c.BaseURL = "/open" }, false},
		{"no seller", func(c *nuonuo.Config) { c.SellerTaxNum = "" }, false},
		{"no app key", func(c *nuonuo.Config) { c.AppKey = "" }, false},
		{"no app secret", func(c *nuonuo.Config) { c.AppSecret = "" }, false},
		{"no token at all", func(c *nuonuo.Config) { c.AccessToken = "" }, false},
		{"both tokens", func(c *nuonuo.Config) { c.Tokens = ts }, false},
		{"token source of another app", func(c *nuonuo.Config) { c.AccessToken, c.Tokens = "", ts }, false},
		{"unknown family", func(c *nuonuo.Config) { c.Family = "Invoice" }, false},
		{"negative poll", func(c *nuonuo.Config) { c.PollAfter = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mutate(&cfg)
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cr3t-value") || strings.Contains(err.Error(), "tok\"")) {
				t.Fatalf("Validate leaks a credential: %v", err)
			}
		})
	}
}

func TestIssueEndToEnd(t *testing.T) {
	for _, family := range []string{nuonuo.FamilyElectronInvoice, nuonuo.FamilyOpeMplatform} {
		t.Run(family, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 2}})
			obs := &observed{}
			c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.Family, cfg.Observer = family, obs })
			call := &providers.Call{Request: issueRequest("E2E-1", nil)}

			sub := c.Submit(t.Context(), call)
			wantClass(t, "Submit", sub, providers.Accepted)
			if len(sub.Refs.SerialNo) != 20 || sub.RetryAfter <= 0 {
				t.Fatalf("Submit refs %+v retryAfter %v: want a 20-digit serial and a poll hint", sub.Refs, sub.RetryAfter)
			}
			call.Refs = sub.Refs
			for i := range 2 {
				wantClass(t, fmt.Sprintf("Query %d", i+1), c.Query(t.Context(), call), providers.Accepted)
			}
			got := c.Query(t.Context(), call)
			wantClass(t, "Query 3", got, providers.Issued)
			if len(got.Invoices) != 1 {
				t.Fatalf("invoices = %d, want 1", len(got.Invoices))
			}
			inv := got.Invoices[0]
			if inv.SerialNo != sub.Refs.SerialNo || len(inv.DigitalInvoiceNo) != 20 || inv.InvoiceNo == "" || inv.IssuedAt.IsZero() {
				t.Errorf("invoice %+v: want the serial, a 20-digit number, an invoice number and a time", inv)
			}
			for name, pair := range map[string][2]string{
				"exTax": {inv.ExTaxAmount.String(), "100.00"},
				"tax":   {inv.TaxAmount.String(), "6.00"},
				"total": {inv.TotalAmount.String(), "106.00"},
			} {
				if pair[0] != pair[1] {
					t.Errorf("%s = %q, want %q", name, pair[0], pair[1])
				}
			}
			if pdf := mustGet(t, inv.PdfURL); !bytes.HasPrefix(pdf, []byte("%PDF-")) {
				t.Errorf("pdfUrl does not serve a PDF: %.20q", pdf)
			}
			if st := env.orderStats("E2E-1"); st.Submissions != 1 || st.Issuances != 1 || st.Invoices != 1 || st.Queries != 3 {
				t.Errorf("sandbox stats %+v, want 1 submission, 1 issuance, 1 invoice, 3 queries", st)
			}
			want := []string{"nuonuo requestBillingNew E0000", "nuonuo queryInvoiceResult E0000"}
			if calls := obs.list(); len(calls) != 4 || calls[0] != want[0] || calls[3] != want[1] {
				t.Errorf("observer saw %q, want 4 reports starting %q and ending %q", calls, want[0], want[1])
			}
		})
	}
}

func TestIssueSplitIntoSeveralInvoices(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.NewFromInt(50)}})
	c := env.mustClient(t, nil)
	call := &providers.Call{Request: issueRequest("SPLIT-1", nil)} // 106.00 over a 50.00 limit: 3 invoices
	sub := c.Submit(t.Context(), call)
	wantClass(t, "Submit", sub, providers.Accepted)
	call.Refs = sub.Refs
	got := c.Query(t.Context(), call)
	wantClass(t, "Query", got, providers.Issued)
	if len(got.Invoices) != 3 {
		t.Fatalf("invoices = %d, want 3", len(got.Invoices))
	}
	var numbers []string
	total := schemas.ParseAmount("0").Decimal()
	for _, inv := range got.Invoices {
		numbers = append(numbers, inv.DigitalInvoiceNo)
		total = total.Add(inv.TotalAmount.Decimal())
	}
	if slices.Sort(numbers); len(slices.Compact(numbers)) != 3 {
		t.Errorf("invoice numbers %v are not distinct", numbers)
	}
	if !total.Equal(schemas.ParseAmount("106.00").Decimal()) {
		t.Errorf("split totals add up to %s, want 106.00", total)
	}
	if st := env.orderStats("SPLIT-1"); st.Issuances != 1 || st.Invoices != 3 {
		t.Errorf("stats %+v, want 1 issuance of 3 invoices", st)
	}
}

func TestIssueRejectedWithField(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.NewFromInt(10)}})
	c := env.mustClient(t, nil)
	tests := []struct {
		name      string
		mutate    func(*schemas.Order)
		code      string
		field     string
		issuances int
	}{
		{"line tax off by more than 0.06", func(o *schemas.Order) {
			o.InvoiceDetail = append(o.InvoiceDetail, o.InvoiceDetail[0])
			o.InvoiceDetail[1].Tax = schemas.ParseAmount("5.00")
			o.InvoiceDetail[1].TaxExcludedAmount = schemas.ParseAmount("101.00")
		}, "E9131", "order.invoiceDetail[1].tax", 0},
		{"bad invoice type", func(o *schemas.Order) { o.InvoiceType = "3" }, "E9101", "order.invoiceType", 0},
		{"seller mismatch", func(o *schemas.Order) { o.SalerTaxNum = "91330106MA2AYNWD8M" }, "E9302", "order.salerTaxNum", 0},
		{"too many invoices", func(*schemas.Order) {}, "E9154", "order.invoiceDetail", 0}, // 106.00 over 10.00: 11 invoices
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orderNo := fmt.Sprintf("REJ-%d", i)
			o := c.Submit(t.Context(), &providers.Call{Request: issueRequest(orderNo, tt.mutate)})
			wantClass(t, "Submit", o, providers.Rejected)
			if o.Code != tt.code || o.Field != tt.field {
				t.Errorf("code %q field %q, want %q %q (message %q)", o.Code, o.Field, tt.code, tt.field, o.Message)
			}
			if st := env.orderStats(orderNo); st.Submissions != 1 || st.Issuances != tt.issuances {
				t.Errorf("stats %+v, want 1 submission and %d issuances", st, tt.issuances)
			}
		})
	}
}

func TestInDoubtSubmitReconcilesByQuery(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	call := &providers.Call{Request: issueRequest("DOUBT-1", nil)}

	env.sb.SetFaults(sandbox.Faults{Drop: 1}) // accept, then lose the answer
	sub := c.Submit(t.Context(), call)
	wantClass(t, "Submit with the answer dropped", sub, providers.Unknown)
	if sub.Code != "transport" || sub.Err == nil {
		t.Errorf("code %q err %v, want transport with the error", sub.Code, sub.Err)
	}
	env.sb.SetFaults(sandbox.Faults{})

	q := c.Query(t.Context(), call) // no serial known: by orderNo
	wantClass(t, "Query after the drop", q, providers.Issued)
	if q.Refs.SerialNo == "" || len(q.Invoices) != 1 {
		t.Fatalf("Query refs %+v invoices %d: want the serial and one invoice", q.Refs, len(q.Invoices))
	}

	// A resubmission anyway answers E9106, which Submit reconciles itself.
	call.Resubmission = true
	again := c.Submit(t.Context(), call)
	wantClass(t, "resubmission", again, providers.Issued)
	if again.Refs.SerialNo != q.Refs.SerialNo {
		t.Errorf("resubmission serial %q, want %q", again.Refs.SerialNo, q.Refs.SerialNo)
	}
	st := env.sb.Stats()
	if o := st.Sellers[seller]["DOUBT-1"]; o.Submissions != 2 || o.Issuances != 1 {
		t.Errorf("stats %+v, want 2 submissions and exactly 1 issuance", o)
	}
	if len(st.Duplicates) != 0 {
		t.Errorf("duplicates %v", st.Duplicates)
	}
}

func TestDuplicateOrderWhileIssuing(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 5}})
	c := env.mustClient(t, nil)
	call := &providers.Call{Request: issueRequest("DUP-1", nil)}
	wantClass(t, "Submit", c.Submit(t.Context(), call), providers.Accepted)
	call.Resubmission = true
	again := c.Submit(t.Context(), call)
	wantClass(t, "second Submit (E9106, reconciled)", again, providers.Accepted)
	if again.Refs.SerialNo == "" {
		t.Errorf("reconciled outcome has no serial")
	}
	if st := env.orderStats("DUP-1"); st.Issuances != 1 || st.Submissions != 2 {
		t.Errorf("stats %+v, want 2 submissions and 1 issuance", st)
	}
}

func TestQueryUnknownOrderIsNotFound(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	o := c.Query(t.Context(), &providers.Call{Request: issueRequest("NEVER-SENT", nil)})
	wantClass(t, "Query", o, providers.NotFound)
	if o.Code != "E9500" {
		t.Errorf("code %q, want E9500", o.Code)
	}
}

func TestRedConfirmEndToEnd(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{RedConfirmSteps: 1}})
	c := env.mustClient(t, nil)
	req := redConfirmRequest("RC-1", nil)
	call := &providers.Call{Request: req}

	wantClass(t, "Query before any Submit", c.Query(t.Context(), call), providers.NotFound)
	sub := c.Submit(t.Context(), call)
	wantClass(t, "Submit", sub, providers.Accepted)
	if sub.Refs.BillID != nuonuo.BillID(seller, "RC-1") || sub.Refs.BillNo == "" || sub.RedConfirm == nil {
		t.Fatalf("Submit refs %+v state %+v: want the derived billId and a form id", sub.Refs, sub.RedConfirm)
	}
	call.Refs = sub.Refs
	for _, want := range []string{"15", "02"} {
		o := c.Query(t.Context(), call)
		wantClass(t, "Query "+want, o, providers.Accepted)
		if o.RedConfirm == nil || o.RedConfirm.BillStatus != want {
			t.Fatalf("state %+v, want billStatus %s", o.RedConfirm, want)
		}
	}
	done := c.Query(t.Context(), call)
	wantClass(t, "Query confirmed", done, providers.Issued)
	if done.RedConfirm.BillStatus != "04" || done.RedConfirm.BillNo != sub.Refs.BillNo || done.RedConfirm.BillID != sub.Refs.BillID {
		t.Errorf("state %+v, want 04 with the same ids", done.RedConfirm)
	}
	if len(done.Invoices) != 1 || done.Invoices[0].SerialNo == "" {
		t.Errorf("invoices %+v, want the red invoice's serial", done.Invoices)
	}

	// The same billId again: the same form, nothing new.
	again := c.Submit(t.Context(), &providers.Call{Request: req})
	wantClass(t, "Submit again", again, providers.Accepted)
	if again.Refs.BillNo != sub.Refs.BillNo {
		t.Errorf("resubmission form %q, want %q", again.Refs.BillNo, sub.Refs.BillNo)
	}
	if st := env.orderStats("RC-1"); st.Submissions != 2 || st.Issuances != 1 {
		t.Errorf("stats %+v, want 2 submissions and 1 issuance", st)
	}
}

func TestRedConfirmOutcomes(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	tests := []struct {
		name   string
		mutate func(*schemas.RedConfirm)
		class  providers.Class
		status string
	}{
		{"confirmed by both", nil, providers.Issued, "04"},
		{"individual buyer needs no confirmation", func(rc *schemas.RedConfirm) { rc.BuyerTaxNo = "" }, providers.Issued, "01"},
		{"buyer refuses", func(rc *schemas.RedConfirm) { rc.BuyerName = "SANDBOX:REFUSE 公司" }, providers.Rejected, "05"},
		{"application fails", func(rc *schemas.RedConfirm) { rc.BuyerName = "SANDBOX:FAIL 公司" }, providers.Rejected, "16"},
		{"own billId", func(rc *schemas.RedConfirm) { rc.BillID = "MY-BILL-7" }, providers.Issued, "04"},
		{"electronic ordinary invoice (p)", func(rc *schemas.RedConfirm) {
			rc.BlueInvoiceLine, rc.BlueElecInvoiceNumber, rc.BlueInvoiceCode, rc.BlueInvoiceNumber = "p", "", "033001900111", "12345678"
		}, providers.Issued, "04"},
		{"paper invoice (c)", func(rc *schemas.RedConfirm) {
			rc.BlueInvoiceLine, rc.BlueElecInvoiceNumber, rc.BlueInvoiceCode, rc.BlueInvoiceNumber = "c", "", "033001900112", "12345679"
		}, providers.Issued, "04"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := &providers.Call{Request: redConfirmRequest(fmt.Sprintf("RCO-%d", i), tt.mutate)}
			sub := c.Submit(t.Context(), call)
			wantClass(t, "Submit", sub, providers.Accepted)
			call.Refs = sub.Refs
			o := c.Query(t.Context(), call)
			wantClass(t, "Query", o, tt.class)
			if o.RedConfirm == nil || o.RedConfirm.BillStatus != tt.status || o.Code != tt.status {
				t.Errorf("state %+v code %q, want billStatus %s", o.RedConfirm, o.Code, tt.status)
			}
			// An electronic form's red invoice is issued with it; a paper
			// form's is not issued automatically.
			if line := call.Request.RedConfirm.BlueInvoiceLine; o.Class == providers.Issued && (len(o.Invoices) == 1) != (line != "c") {
				t.Errorf("blue line %s: %d invoices", line, len(o.Invoices))
			}
			if rid := call.Request.RedConfirm.BillID; rid != "" && sub.Refs.BillID != rid {
				t.Errorf("billId %q, want the request's %q", sub.Refs.BillID, rid)
			}
		})
	}
}

func TestRedConfirmRejected(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	o := c.Submit(t.Context(), &providers.Call{Request: redConfirmRequest("RCR-1", func(rc *schemas.RedConfirm) {
		rc.BlueElecInvoiceNumber = "123"
	})})
	wantClass(t, "Submit", o, providers.Rejected)
	if o.Code != "E9102" {
		t.Errorf("code %q, want E9102", o.Code)
	}
}

func TestReissueOfFailedInvoice(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1}})
	c := env.mustClient(t, nil)
	blue := &providers.Call{Request: issueRequest("FAIL-1", func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL" })}
	sub := c.Submit(t.Context(), blue)
	wantClass(t, "Submit", sub, providers.Accepted)
	blue.Refs = sub.Refs
	wantClass(t, "Query while issuing", c.Query(t.Context(), blue), providers.Accepted)
	failed := c.Query(t.Context(), blue)
	wantClass(t, "Query after failure", failed, providers.Rejected)
	if failed.Code != "22" || !strings.Contains(failed.Message, "SANDBOX:FAIL") {
		t.Errorf("code %q message %q, want 22 with the fail cause", failed.Code, failed.Message)
	}
	if st := env.orderStats("FAIL-1"); st.Issuances != 0 {
		t.Fatalf("a failed order counts %d issuances, want 0", st.Issuances)
	}

	re := &providers.Call{Request: reissueRequest("RE-1", schemas.Reissue{OrderNo: "FAIL-1"})}
	wantClass(t, "reissue Query before Submit (still failed)", c.Query(t.Context(), re), providers.NotFound)
	rs := c.Submit(t.Context(), re)
	wantClass(t, "reissue Submit", rs, providers.Accepted)
	re.Refs = rs.Refs
	wantClass(t, "reissue Query while issuing", c.Query(t.Context(), re), providers.Accepted)
	done := c.Query(t.Context(), re)
	wantClass(t, "reissue Query", done, providers.Issued)
	if len(done.Invoices) != 1 || done.Invoices[0].SerialNo != sub.Refs.SerialNo {
		t.Errorf("invoices %+v, want one with the original serial", done.Invoices)
	}
	// Reissuing an issued invoice changes nothing.
	wantClass(t, "reissue of an issued invoice", c.Submit(t.Context(), re), providers.Accepted)
	wantClass(t, "its Query", c.Query(t.Context(), re), providers.Issued)
	if st := env.orderStats("FAIL-1"); st.Issuances != 1 || st.Invoices != 1 {
		t.Errorf("stats %+v, want exactly 1 issuance", st)
	}
}

// TestSplitOrderFailedInPart: an order split into three invoices, the last
// of which fails, is rejected with the two that were issued (they exist and
// must not be lost); a reissue then issues the third and answers all three.
func TestSplitOrderFailedInPart(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.NewFromInt(50)}})
	c := env.mustClient(t, nil)
	blue := &providers.Call{Request: issueRequest("PART-1", func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL-PART" })}
	sub := c.Submit(t.Context(), blue)
	wantClass(t, "Submit", sub, providers.Accepted)
	blue.Refs = sub.Refs
	part := c.Query(t.Context(), blue)
	wantClass(t, "Query", part, providers.Rejected)
	if !errors.Is(part.Err, providers.ErrIssuanceFailed) || part.Code != "22" || len(part.Invoices) != 2 ||
		!strings.Contains(part.Message, "2 of the order's 3 invoices were issued") || !strings.Contains(part.Message, "SANDBOX:FAIL-PART") {
		t.Fatalf("failed in part: %+v", part)
	}
	for _, inv := range part.Invoices {
		if inv.DigitalInvoiceNo == "" || inv.PdfURL == "" || inv.TotalAmount.Decimal().IsZero() {
			t.Errorf("issued invoice of the failed order %+v", inv)
		}
	}

	re := &providers.Call{Request: reissueRequest("RE-PART", schemas.Reissue{OrderNo: "PART-1"})}
	still := c.Query(t.Context(), re)
	wantClass(t, "reissue Query before Submit (still failed in part)", still, providers.NotFound)
	wantClass(t, "reissue Submit", c.Submit(t.Context(), re), providers.Accepted)
	done := c.Query(t.Context(), re)
	wantClass(t, "reissue Query", done, providers.Issued)
	if len(done.Invoices) != 3 || done.Invoices[0].DigitalInvoiceNo != part.Invoices[0].DigitalInvoiceNo || done.Invoices[1].DigitalInvoiceNo != part.Invoices[1].DigitalInvoiceNo {
		t.Fatalf("after the reissue %+v, want the two invoices issued before and a third", done.Invoices)
	}
	total := decimal.Zero
	for _, inv := range done.Invoices {
		total = total.Add(inv.TotalAmount.Decimal())
	}
	if !total.Equal(decimal.RequireFromString("106.00")) {
		t.Errorf("the three invoices add up to %s, want 106.00", total)
	}
	if st := env.orderStats("PART-1"); st.Issuances != 1 || st.Invoices != 3 {
		t.Errorf("stats %+v, want 1 issuance of 3 invoices", st)
	}
}

func TestReissueBySerialAndUnknown(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	blue := &providers.Call{Request: issueRequest("FAIL-2", func(o *schemas.Order) { o.Remark = "x SANDBOX:FAIL" })}
	sub := c.Submit(t.Context(), blue)
	blue.Refs = sub.Refs
	wantClass(t, "Query", c.Query(t.Context(), blue), providers.Rejected)

	re := &providers.Call{Request: reissueRequest("RE-2", schemas.Reissue{Fpqqlsh: sub.Refs.SerialNo})}
	wantClass(t, "reissue Submit by serial", c.Submit(t.Context(), re), providers.Accepted)
	wantClass(t, "reissue Query by serial", c.Query(t.Context(), re), providers.Issued)

	unknown := &providers.Call{Request: reissueRequest("RE-3", schemas.Reissue{OrderNo: "NO-SUCH"})}
	wantClass(t, "reissue Query of an unknown order", c.Query(t.Context(), unknown), providers.Rejected)
	o := c.Submit(t.Context(), unknown)
	wantClass(t, "reissue Submit of an unknown order", o, providers.Rejected)
	if o.Code != "E9500" {
		t.Errorf("code %q, want E9500", o.Code)
	}
}

func TestReissueRetryLimit(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 100}})
	c := env.mustClient(t, nil)
	wantClass(t, "Submit", c.Submit(t.Context(), &providers.Call{Request: issueRequest("LIMIT-1", nil)}), providers.Accepted)
	re := &providers.Call{Request: reissueRequest("RE-L", schemas.Reissue{OrderNo: "LIMIT-1"})}
	for i := range 20 {
		wantClass(t, fmt.Sprintf("reissue %d", i+1), c.Submit(t.Context(), re), providers.Accepted)
	}
	o := c.Submit(t.Context(), re)
	wantClass(t, "reissue 21", o, providers.Retry)
	if o.Code != "E9613" {
		t.Errorf("code %q, want E9613", o.Code)
	}
	if st := env.orderStats("LIMIT-1"); st.Issuances != 1 {
		t.Errorf("stats %+v, want 1 issuance", st)
	}
}

func TestRateLimitFeedback(t *testing.T) {
	env := newSandbox(t, sandbox.Config{Faults: sandbox.Faults{RateLimit: 0.001, RateBurst: 1}})
	lim := providers.NewLimiter(providers.LimiterConfig{Rate: 100})
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.Limiter = lim })
	before := lim.Limit()
	wantClass(t, "first call", c.Query(t.Context(), &providers.Call{Request: issueRequest("RL-1", nil)}), providers.NotFound)
	o := c.Submit(t.Context(), &providers.Call{Request: issueRequest("RL-2", nil)})
	wantClass(t, "second call", o, providers.Retry)
	if o.Code != "070201" || o.RetryAfter <= 0 {
		t.Errorf("code %q retryAfter %v, want 070201 with a hint", o.Code, o.RetryAfter)
	}
	if lim.Throttles() != 1 || lim.Limit() >= before {
		t.Errorf("limiter throttles %d limit %v (was %v): want one throttle and a lower rate", lim.Throttles(), lim.Limit(), before)
	}
	if st := env.orderStats("RL-2"); st.Submissions != 0 || st.Issuances != 0 {
		t.Errorf("a rate-limited call took effect: %+v", st)
	}
}

func TestMissingBodyIsRejected(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	req := &schemas.Request{Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: "X"}
	wantClass(t, "Submit", c.Submit(t.Context(), &providers.Call{Request: req}), providers.Rejected)
	if n := env.sb.Stats().Requests["nuonuo"]; n != 0 {
		t.Errorf("%d calls made for a request without body", n)
	}
}

// A query for an earlier request with other content finds an issued order
// by its order number; a red confirmation without its billId and a reissue
// are found by their own content, so it says it cannot tell.
func TestQueryEarlierRequest(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	first := issueRequest("EARLIER-1", nil)
	if o := c.Submit(t.Context(), &providers.Call{Request: first}); o.Class != providers.Issued && o.Class != providers.Accepted {
		t.Fatalf("submit: %+v", o)
	}
	corrected := issueRequest("EARLIER-1", func(o *schemas.Order) { o.BuyerName = "更正后的买方" })
	var o providers.Outcome
	for range 20 {
		if o = c.Query(t.Context(), &providers.Call{Request: corrected, Earlier: true, SubmittedAt: time.Now()}); o.Class != providers.Accepted {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantClass(t, "Query for the earlier issue", o, providers.Issued)

	for _, req := range []*schemas.Request{redConfirmRequest("EARLIER-2", nil), reissueRequest("EARLIER-3", schemas.Reissue{OrderNo: "EARLIER-1"})} {
		o := c.Query(t.Context(), &providers.Call{Request: req, Earlier: true, SubmittedAt: time.Now()})
		wantClass(t, string(req.Kind), o, providers.Rejected)
		if !errors.Is(o.Err, providers.ErrUnsupported) || o.Field != "orderNo" {
			t.Errorf("%s: %+v", req.Kind, o)
		}
	}
	red := c.Query(t.Context(), &providers.Call{Request: redConfirmRequest("EARLIER-2", nil), Earlier: true, Refs: schemas.ProviderRefs{BillID: nuonuo.BillID(seller, "EARLIER-2")}})
	wantClass(t, "red confirmation with its billId", red, providers.NotFound)
}

// A tax rate written with trailing zeros ("0.0600", which the validator
// takes by value) reaches Nuonuo as its shortest decimal, the form its
// documents show; the request itself is left as it was.
func TestTaxRateSentAsShortestDecimal(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	var mu sync.Mutex
	var bodies []string
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		env.sb.Handler().ServeHTTP(w, r)
	}))
	defer spy.Close()
	env.url = spy.URL
	c := env.mustClient(t, nil)
	req := issueRequest("RATE-1", func(o *schemas.Order) {
		for i := range o.InvoiceDetail {
			o.InvoiceDetail[i].TaxRate = schemas.ParseAmount(o.InvoiceDetail[i].TaxRate.Decimal().StringFixed(4))
		}
	})
	wantClass(t, "submit", c.Submit(t.Context(), &providers.Call{Request: req}), providers.Accepted)
	mu.Lock()
	defer mu.Unlock()
	sent := strings.ReplaceAll(strings.Join(bodies, "\n"), `\"`, `"`)
	if strings.Contains(sent, `"taxRate":"0.0600"`) || !strings.Contains(sent, `"taxRate":"0.06"`) {
		t.Fatalf("the rate was not sent as 0.06: %.600s", sent)
	}
	if got := req.Order.InvoiceDetail[0].TaxRate.String(); got != "0.0600" {
		t.Fatalf("the request's own rate was changed to %q", got)
	}
}

// A redirect is not followed: it would turn the POST into a GET without its
// body and carry the accessToken header to wherever it points. The call is
// ActionRequired (BaseURL or the path to it is wrong), as for a 404.
func TestRedirectIsNotFollowed(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer redirect.Close()
	env.url = redirect.URL
	c := env.mustClient(t, func(cfg *nuonuo.Config) { cfg.AccessToken = "a-static-token" })
	wantClass(t, "submit", c.Submit(t.Context(), &providers.Call{Request: issueRequest("REDIRECT-1", nil)}), providers.ActionRequired)
	if n := elsewhere.Load(); n != 0 {
		t.Fatalf("the redirect was followed: %d calls elsewhere", n)
	}
}

// A query refused in a way that says nothing of the order (a gateway's
// HTTP 400 or 413, a code that would reject a submission, an unlisted
// code) is Retry, never Rejected: the order was accepted and is issued.
func TestRefusedQueryOfAnAcceptedOrderIsRetried(t *testing.T) {
	const method = "nuonuo.ElectronInvoice.queryInvoiceResult"
	for _, tt := range []struct {
		name   string
		answer sandbox.ScriptedAnswer
	}{
		{"HTTP 400 from a gateway", sandbox.ScriptedAnswer{Provider: "nuonuo", Method: method, HTTPStatus: 400}},
		{"HTTP 413", sandbox.ScriptedAnswer{Provider: "nuonuo", Method: method, HTTPStatus: 413}},
		{"a submission's refusal", sandbox.ScriptedAnswer{Provider: "nuonuo", Method: method, Code: "0201", Message: "必填参数为空"}},
		{"an unlisted code", sandbox.ScriptedAnswer{Provider: "nuonuo", Method: method, Code: "E9999", Message: "系统繁忙"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			c := env.mustClient(t, nil)
			call := &providers.Call{Request: issueRequest("QREFUSED-1", nil)}
			sub := c.Submit(t.Context(), call)
			wantClass(t, "Submit", sub, providers.Accepted)
			call.Refs, call.SubmittedAt, call.Accepted = sub.Refs, time.Now(), true

			env.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{tt.answer}})
			wantClass(t, "refused Query", c.Query(t.Context(), call), providers.Retry)
			wantClass(t, "next Query", c.Query(t.Context(), call), providers.Issued)
			if st := env.orderStats("QREFUSED-1"); st.Issuances != 1 {
				t.Errorf("stats %+v, want 1 issuance", st)
			}
		})
	}
}

// E9106 on a first submission (Call.Resubmission false): the order number
// is taken by an order of other amounts. Its invoice is not this
// request's: Rejected on order.orderNo, naming both totals, and nothing
// more is issued. An order of the same amounts is followed: it is this
// request's own, submitted before its record was lost (a store restored
// from a backup).
func TestFirstSubmissionOfATakenOrderNumberIsRejected(t *testing.T) {
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	other := issueRequest("TAKEN-1", nil)
	wantClass(t, "the other order's Submit", c.Submit(t.Context(), &providers.Call{Request: other}), providers.Accepted)

	mine := issueRequest("TAKEN-1", func(o *schemas.Order) {
		l := &o.InvoiceDetail[0]
		l.Price, l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount =
			schemas.ParseAmount("212"), schemas.ParseAmount("200.00"), schemas.ParseAmount("12.00"), schemas.ParseAmount("212.00")
	})
	o := c.Submit(t.Context(), &providers.Call{Request: mine, SubmittedAt: time.Now()})
	wantClass(t, "first Submit under a taken order number", o, providers.Rejected)
	if o.Code != "E9106" || o.Field != "order.orderNo" || len(o.Invoices) != 0 || !strings.Contains(o.Message, "106.00") || !strings.Contains(o.Message, "212.00") {
		t.Errorf("outcome %+v, want E9106 on order.orderNo, no invoices, and both totals", o)
	}
	if st := env.orderStats("TAKEN-1"); st.Issuances != 1 || st.Submissions != 2 {
		t.Errorf("stats %+v, want 2 submissions and the other order's 1 issuance", st)
	}

	// The same amounts for another buyer: not ours either.
	wantClass(t, "another buyer's Submit", c.Submit(t.Context(), &providers.Call{Request: issueRequest("TAKEN-2", nil)}), providers.Accepted)
	o = c.Submit(t.Context(), &providers.Call{Request: issueRequest("TAKEN-2", func(o *schemas.Order) { o.BuyerName = "另一家公司" }), SubmittedAt: time.Now()})
	wantClass(t, "first Submit for another buyer", o, providers.Rejected)
	if o.Code != "E9106" || !strings.Contains(o.Message, "另一家公司") {
		t.Errorf("outcome %+v, want E9106 naming both buyers", o)
	}

	// Our own order, its record lost: the same amounts, followed.
	own := &providers.Call{Request: issueRequest("OWN-1", nil)}
	wantClass(t, "own Submit", c.Submit(t.Context(), own), providers.Accepted)
	again := c.Submit(t.Context(), &providers.Call{Request: issueRequest("OWN-1", nil), SubmittedAt: time.Now()})
	if again.Class != providers.Accepted && again.Class != providers.Issued {
		t.Fatalf("our own order submitted again without its record: %+v, want it followed", again)
	}
	if again.Refs.SerialNo == "" {
		t.Errorf("followed outcome without the serial: %+v", again.Refs)
	}
	if st := env.orderStats("OWN-1"); st.Issuances != 1 {
		t.Errorf("stats %+v, want 1 issuance", st)
	}
}

// A confirmed electronic form (01 or 04) that does not name its red invoice
// yet is Accepted, not Issued: the platform issues that invoice after the
// confirmation (seed 002, "电票都自动开"), and "issued" with no invoice
// would be final. A paper form confirmed is Issued with none: no invoice
// is issued for it automatically.
func TestConfirmedFormWithoutItsRedInvoice(t *testing.T) {
	for _, tt := range []struct {
		line, status string
		want         providers.Class
	}{
		{"pc", "04", providers.Accepted},
		{"bs", "01", providers.Accepted},
		{"b", "04", providers.Accepted},
		{"c", "04", providers.Issued},
		{"es", "01", providers.Issued},
	} {
		t.Run(tt.line+" "+tt.status, func(t *testing.T) {
			req := redConfirmRequest("RC-NOSERIAL-1", func(rc *schemas.RedConfirm) { rc.BlueInvoiceLine = tt.line })
			billID := nuonuo.BillID(seller, "RC-NOSERIAL-1")
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json;charset=UTF-8")
				_, _ = io.WriteString(w, `{"code":"E0000","describe":"查询成功","result":{"total":1,"list":[{"billId":"`+billID+
					`","billNo":"99000000000000000001","billStatus":"`+tt.status+`","billMessage":"购销双方已确认","openStatus":"0"}]}}`)
			}))
			t.Cleanup(srv.Close)
			c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: "k", AppSecret: "s", AccessToken: "t"})
			if err != nil {
				t.Fatal(err)
			}
			o := c.Query(t.Context(), &providers.Call{Request: req, SubmittedAt: time.Now(), Accepted: true})
			wantClass(t, "Query", o, tt.want)
			if len(o.Invoices) != 0 || o.RedConfirm == nil || o.RedConfirm.BillStatus != tt.status {
				t.Errorf("invoices %+v state %+v, want none and the form's status %s", o.Invoices, o.RedConfirm, tt.status)
			}
			if tt.want == providers.Accepted && (o.RetryAfter <= 0 || o.AwaitingParty) {
				t.Errorf("RetryAfter %s AwaitingParty %v: want a poll, not a wait for the other party", o.RetryAfter, o.AwaitingParty)
			}
		})
	}
}
