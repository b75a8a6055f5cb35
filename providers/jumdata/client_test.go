package jumdata_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

func TestConfigValidate(t *testing.T) {
	valid := jumdata.Config{
		BaseURL: "https://api.jumdata.com", AppID: "app", AppSecret: "secret-value", Token: "token-value",
		SellerTaxNum: "91330106MA2AYNWD8M", DQ: "330000", Gryhm: "13800000000",
	}
	tests := []struct {
		name string
		edit func(*jumdata.Config)
		ok   bool
	}{
		{"valid", func(*jumdata.Config) {}, true},
		{"no base URL", func(c *jumdata.Config) { c.BaseURL = "" }, false},
		{"relative base URL", func(c *jumdata.Config) { c.BaseURL = "api.jumdata.com" }, false},
		{"base URL with a query", func(c *jumdata.Config) { c.BaseURL = "https://api.jumdata.com/?x=1" }, false},
		// The URL is quoted without its user information: a password, or
		// a token in the user's place, read or not by url.Parse.
		{"base URL with a password and a query", func(c *jumdata.Config) { c.BaseURL = "https://ops:url-secret@api.jumdata.com/?x=1" }, false},
		{"base URL with a token and a fragment", func(c *jumdata.Config) { c.BaseURL = "https://url-secret@api.jumdata.com/#x" }, false},
		{"unreadable base URL with a password", func(c *jumdata.Config) { c.BaseURL = "https://ops:url-secret@api.jumdata.com:44x3" }, false},
		{"base URL with a password but no scheme", func(c *jumdata.Config) { c.BaseURL = "ops:url-secret@api.jumdata.com" }, false},
		{"ftp base URL with a password", func(c *jumdata.Config) { c.BaseURL = "ftp://ops:url-secret@api.jumdata.com" }, false},
		{"no app id", func(c *jumdata.Config) { c.AppID = "" }, false},
		{"no secret", func(c *jumdata.Config) { c.AppSecret = "" }, false},
		{"no token", func(c *jumdata.Config) { c.Token = "" }, false},
		{"lower-case seller", func(c *jumdata.Config) { c.SellerTaxNum = "91330106ma2aynwd8m" }, false},
		{"no dq", func(c *jumdata.Config) { c.DQ = "" }, false},
		{"no gryhm", func(c *jumdata.Config) { c.Gryhm = "" }, false},
		{"negative task life", func(c *jumdata.Config) { c.TaskIDLife = -time.Second }, false},
		{"negative poll", func(c *jumdata.Config) { c.PollAfter = -time.Second }, false},
		{"negative timeout", func(c *jumdata.Config) { c.HTTP.Timeout = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v", err)
			}
			if err != nil {
				if !errors.Is(err, jumdata.ErrConfig) {
					t.Errorf("%v does not wrap ErrConfig", err)
				}
				if strings.Contains(err.Error(), "secret-value") || strings.Contains(err.Error(), "token-value") || strings.Contains(err.Error(), "url-secret") {
					t.Errorf("%v shows a secret", err)
				}
				if _, nerr := jumdata.New(cfg); nerr == nil {
					t.Error("New accepted an invalid configuration")
				}
			}
		})
	}
}

func TestName(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	if e.client.Name() != "jumdata" {
		t.Fatal(e.client.Name())
	}
}

func TestIssuePollsThenIssued(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 2}}, nil)
	ctx := t.Context()
	call := &providers.Call{Request: issueRequest(t, "ORD-1")}
	taskID := jumdata.TaskID(sandbox.DefaultJumdataSeller, "ORD-1", 0)

	out := e.client.Submit(ctx, call)
	wantClass(t, "submit", out, providers.Retry, "202")
	if out.Refs.TaskID != taskID || out.RetryAfter != jumdata.DefaultPollAfter {
		t.Fatalf("submit refs %+v retry after %v", out.Refs, out.RetryAfter)
	}
	call.Refs, call.SubmittedAt = out.Refs, e.clock.Now()

	e.clock.Advance(2 * time.Second)
	out = e.client.Query(ctx, call)
	wantClass(t, "first query", out, providers.Accepted, "202")
	if out.Refs.TaskID != taskID || out.RetryAfter != jumdata.DefaultPollAfter {
		t.Fatalf("query refs %+v retry after %v", out.Refs, out.RetryAfter)
	}

	e.clock.Advance(2 * time.Second)
	out = e.client.Query(ctx, call)
	wantClass(t, "second query", out, providers.Issued, "200")
	inv := out.Invoices[0]
	if len(inv.InvoiceNo) != 20 || inv.DigitalInvoiceNo != inv.InvoiceNo || inv.SerialNo != taskID {
		t.Errorf("invoice numbers %+v", inv)
	}
	if inv.ExTaxAmount.String() != "1000.00" || inv.TaxAmount.String() != "123.00" || inv.TotalAmount.String() != "1123.00" {
		t.Errorf("amounts %s %s %s", inv.ExTaxAmount, inv.TaxAmount, inv.TotalAmount)
	}
	if want := clockStart().Add(4 * time.Second); !inv.IssuedAt.Equal(want) {
		t.Errorf("issued at %v, want %v", inv.IssuedAt, want)
	}

	again := e.client.Query(ctx, call)
	wantClass(t, "third query", again, providers.Issued, "200")
	if again.Invoices[0].InvoiceNo != inv.InvoiceNo {
		t.Fatalf("the order's invoice changed from %s to %s", inv.InvoiceNo, again.Invoices[0].InvoiceNo)
	}

	if got := e.obs.Calls(); !slices.Equal(got, []string{
		"blue-invoice/submit 202", "blue-invoice/submit 202", "blue-invoice/submit 200", "blue-invoice/submit 200",
	}) {
		t.Errorf("observed %v", got)
	}
	// Identical parameters within the taskId's life: one task, one invoice.
	if o := e.orderStats("ORD-1"); o.Submissions != 1 || o.Queries != 3 || o.Issuances != 1 {
		t.Fatalf("sandbox stats %+v", o)
	}
	e.noDuplicates()
}

func TestQueryPastTaskIDLife(t *testing.T) {
	t.Run("found by blue-invoice/query", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 3}}, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-2")}
		wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Retry, "202")
		call.SubmittedAt = e.clock.Now()
		e.obs.Calls()

		// Nobody asked for 9 hours: the tax bureau issued the invoice
		// anyway and jumdata forgot the taskId.
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantClass(t, "query", out, providers.Issued, "200")
		inv := out.Invoices[0]
		if len(inv.InvoiceNo) != 20 || inv.TotalAmount.String() != "1123.00" || inv.IssuedAt.IsZero() {
			t.Fatalf("invoice %+v", inv)
		}
		if got := e.obs.Calls(); !slices.Equal(got, []string{"blue-invoice/query 200"}) {
			t.Fatalf("observed %v: past the taskId's life only blue-invoice/query may be called", got)
		}
		if o := e.orderStats("ORD-2"); o.Submissions != 1 || o.Issuances != 1 {
			t.Fatalf("sandbox stats %+v", o)
		}
		e.noDuplicates()
	})
	t.Run("nothing issued", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		e.mustIssue("OTHER-1") // another order of the same buyer and amounts, issued before
		call := &providers.Call{Request: issueRequest(t, "ORD-3"), SubmittedAt: e.clock.Now().Add(time.Hour)}
		e.clock.Advance(10 * time.Hour)
		wantClass(t, "query", e.client.Query(t.Context(), call), providers.NotFound, "not_found")
	})
	t.Run("two candidates", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-4"), SubmittedAt: e.clock.Now()}
		e.mustIssue("ORD-4")
		e.mustIssue("ORD-5") // same buyer, same amounts, same day
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantClass(t, "query", out, providers.ActionRequired, "ambiguous")
		if strings.Count(out.Message, "2633200000") != 2 {
			t.Errorf("message %q should name both invoices", out.Message)
		}
	})
	t.Run("asks for the buyer's invoices only", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		// 60 invoices for other buyers, then ours: one page of the buyer's.
		for i := range 60 {
			call := &providers.Call{Request: issueRequest(t, fmt.Sprintf("FILL-%d", i), "91440101MA5APD8X8J", fmt.Sprintf("9144010100000%05d", i))}
			wantClass(t, "fill", e.client.Submit(t.Context(), call), providers.Issued, "")
		}
		call := &providers.Call{Request: issueRequest(t, "ORD-6"), SubmittedAt: clockStart()}
		want := e.mustIssue("ORD-6")
		e.obs.Calls()
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantInvoice(t, out, want)
		if got := e.obs.Calls(); !slices.Equal(got, []string{"blue-invoice/query 200"}) {
			t.Fatalf("observed %v: the search did not ask for the buyer's invoices only (dfnsrsbh)", got)
		}
	})
	t.Run("asks the whole list before it answers none", func(t *testing.T) {
		// A jumdata whose dfnsrsbh filter means something else than the
		// buyer: the buyer's list comes back empty.
		misread := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err == nil && r.PostForm.Get("dfnsrsbh") != "" {
					r.PostForm.Set("dfnsrsbh", "NOBODY")
				}
				h.ServeHTTP(w, r)
			})
		}
		e := newEnvWith(t, sandbox.Config{}, misread, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-8"), SubmittedAt: clockStart()}
		want := e.mustIssue("ORD-8")
		e.obs.Calls()
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantInvoice(t, out, want)
		if got := e.obs.Calls(); !slices.Equal(got, []string{"blue-invoice/query 200", "blue-invoice/query 200"}) {
			t.Fatalf("observed %v: want the buyer's list, then the whole list", got)
		}
	})
	t.Run("a refused buyer filter asks the whole list", func(t *testing.T) {
		refuse := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err == nil && r.PostForm.Get("dfnsrsbh") != "" {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"code":400,"msg":"参数错误: dfnsrsbh 不合法","taskNo":"1"}`))
					return
				}
				h.ServeHTTP(w, r)
			})
		}
		e := newEnvWith(t, sandbox.Config{}, refuse, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-9"), SubmittedAt: clockStart()}
		want := e.mustIssue("ORD-9")
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantInvoice(t, out, want)
	})
	t.Run("a throttled buyer list is not followed by the whole list", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-11"), SubmittedAt: clockStart()}
		e.mustIssue("ORD-11")
		e.clock.Advance(9 * time.Hour)
		e.obs.Calls()
		e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/query", Code: "609"}}})
		wantClass(t, "query", e.client.Query(t.Context(), call), providers.Retry, "609")
		if got := e.obs.Calls(); !slices.Equal(got, []string{"blue-invoice/query 609"}) {
			t.Fatalf("observed %v: a throttle fails the whole list as well, at the cost of its pages", got)
		}
	})
	t.Run("a refused list is asked again, not a rejection", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		call := &providers.Call{Request: issueRequest(t, "ORD-10"), SubmittedAt: clockStart()}
		e.mustIssue("ORD-10")
		e.clock.Advance(9 * time.Hour)
		e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/query", Code: "400", Message: "参数错误", Times: 2}}})
		wantClass(t, "query", e.client.Query(t.Context(), call), providers.Retry, "400")
		wantClass(t, "query again", e.client.Query(t.Context(), call), providers.Issued, "")
	})
	t.Run("reads every page", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		// 60 invoices of the same buyer and amounts, issued an hour before
		// ours was submitted, then ours: the buyer's list has two pages.
		for i := range 60 {
			e.mustIssue(fmt.Sprintf("EARLIER-%d", i))
		}
		e.clock.Advance(time.Hour)
		call := &providers.Call{Request: issueRequest(t, "ORD-7"), SubmittedAt: e.clock.Now()}
		want := e.mustIssue("ORD-7")
		e.obs.Calls()
		e.clock.Advance(9 * time.Hour)
		out := e.client.Query(t.Context(), call)
		wantInvoice(t, out, want)
		if got := e.obs.Calls(); !slices.Equal(got, []string{"blue-invoice/query 200", "blue-invoice/query 200"}) {
			t.Fatalf("observed %v", got)
		}
	})
}

// wantInvoice checks that a search found the order's invoice, want.
func wantInvoice(t *testing.T, out providers.Outcome, want schemas.Invoice) {
	t.Helper()
	wantClass(t, "query", out, providers.Issued, "")
	if out.Invoices[0].InvoiceNo != want.InvoiceNo {
		t.Fatalf("found %s, want %s", out.Invoices[0].InvoiceNo, want.InvoiceNo)
	}
}

// The tax bureau's refusal of a red confirmation form, answered by
// red-invoice/result, is final: a red request so refused is rejected, not
// polled until the delivery limit (only look-ups' refusals are Retry).
func TestRefusedRedFormIsFinal(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5}}, nil)
	call := e.acceptedRedForm("ORD-RR1", "RR-1")
	e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-invoice/result", Code: "399", Message: "红字确认单已作废,不能开具红字发票"}}})
	out := e.client.Query(t.Context(), call)
	wantClass(t, "query", out, providers.Rejected, "399")
	if errors.Is(out.Err, providers.ErrSubmissionRefused) {
		t.Fatalf("a red form's refusal marked as a blue task's: %v", out.Err)
	}
}

func TestQueryNeverSubmitted(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	for _, req := range []*schemas.Request{issueRequest(t, "ORD-7"), redRequest(t, "RC-7", "26332000000000000001", clockStart(), "1", "")} {
		wantClass(t, string(req.Kind), e.client.Query(t.Context(), &providers.Call{Request: req}), providers.NotFound, "not_submitted")
	}
	if got := e.obs.Calls(); len(got) != 0 {
		t.Fatalf("observed %v: nothing to ask", got)
	}
}

func TestRed(t *testing.T) {
	t.Run("form, result 202 then 200", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 2}}, nil)
		blue := e.mustIssue("ORD-R1")
		call := &providers.Call{Request: redRequest(t, "RC-1", blue.InvoiceNo, blue.IssuedAt, "2", "")}
		out := e.client.Submit(t.Context(), call)
		wantClass(t, "submit", out, providers.Accepted, "200")
		uuid := out.Refs.BillNo
		if len(uuid) != 32 || out.RedConfirm == nil || out.RedConfirm.BillNo != uuid || out.RedConfirm.BillID != "RC-1" {
			t.Fatalf("refs %+v state %+v", out.Refs, out.RedConfirm)
		}
		call.Refs, call.SubmittedAt = out.Refs, e.clock.Now()
		for i := range 2 {
			out = e.client.Query(t.Context(), call)
			wantClass(t, fmt.Sprintf("query %d", i), out, providers.Accepted, "202")
		}
		out = e.client.Query(t.Context(), call)
		wantClass(t, "query", out, providers.Issued, "200")
		red := out.Invoices[0]
		if len(red.InvoiceNo) != 20 || red.InvoiceNo == blue.InvoiceNo || red.TotalAmount.String() != "-1123.00" || red.SerialNo != uuid {
			t.Fatalf("red invoice %+v", red)
		}
		if got := e.obs.Calls(); !slices.Contains(got, "red-invoice/submit 200") || !slices.Contains(got, "red-invoice/result 202") || !slices.Contains(got, "red-invoice/result 200") {
			t.Fatalf("observed %v", got)
		}

		// Nothing is left to reverse: a new red confirmation is refused.
		again := e.client.Submit(t.Context(), &providers.Call{Request: redRequest(t, "RC-2", blue.InvoiceNo, blue.IssuedAt, "1", "")})
		wantClass(t, "second reversal", again, providers.Rejected, "399")
		if again.Message != "蓝票没有可红冲的金额,不可再次红冲!" {
			t.Errorf("message %q", again.Message)
		}
		if o := e.orderStats("red:" + blue.InvoiceNo); o.Issuances != 1 {
			t.Fatalf("red stats %+v", o)
		}
		e.noDuplicates()
	})
	t.Run("partial, issued at once", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		blue := e.mustIssue("ORD-R2")
		out := e.client.Submit(t.Context(), &providers.Call{Request: redRequest(t, "RC-3", blue.InvoiceNo, blue.IssuedAt, "4", partialDetail)})
		wantClass(t, "submit", out, providers.Issued, "200")
		red := out.Invoices[0]
		if red.ExTaxAmount.String() != "-50.00" || red.TaxAmount.String() != "-3.00" || red.TotalAmount.String() != "-53.00" {
			t.Fatalf("red amounts %s %s %s", red.ExTaxAmount, red.TaxAmount, red.TotalAmount)
		}
	})
	t.Run("blueInvoiceTime is required", func(t *testing.T) {
		e := newEnv(t, sandbox.Config{}, nil)
		req := redRequest(t, "RC-4", "26332000000000000001", clockStart(), "1", "")
		req.RedConfirm.BlueInvoiceTime = ""
		for name, f := range map[string]func() providers.Outcome{
			"submit": func() providers.Outcome { return e.client.Submit(t.Context(), &providers.Call{Request: req}) },
			"query": func() providers.Outcome {
				return e.client.Query(t.Context(), &providers.Call{Request: req, SubmittedAt: clockStart()})
			},
		} {
			out := f()
			wantClass(t, name, out, providers.Rejected, "invalid")
			if out.Field != "redConfirm.blueInvoiceTime" {
				t.Errorf("%s field %q", name, out.Field)
			}
		}
		if got := e.obs.Calls(); len(got) != 0 {
			t.Fatalf("observed %v: nothing may be sent", got)
		}
	})
	t.Run("red reasons reach jumdata swapped", func(t *testing.T) {
		var mu sync.Mutex
		var sent []string
		record := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/red-invoice/submit") {
					mu.Lock()
					sent = append(sent, r.PostFormValue("chyydm"))
					mu.Unlock()
				}
				h.ServeHTTP(w, r)
			})
		}
		e := newEnvWith(t, sandbox.Config{}, record, nil)
		for i, reason := range []string{"1", "2", "3", "4"} {
			blue := e.mustIssue(fmt.Sprintf("ORD-R3-%d", i))
			out := e.client.Submit(t.Context(), &providers.Call{Request: redRequest(t, fmt.Sprintf("RC-5-%d", i), blue.InvoiceNo, blue.IssuedAt, reason, "")})
			wantClass(t, "submit", out, providers.Issued, "200")
		}
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"02", "01", "03", "04"}; !slices.Equal(sent, want) {
			t.Fatalf("chyydm sent %v for Nuonuo reasons 1..4, want %v", sent, want)
		}
	})
}

func TestUnsupported(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	// The validator refuses each of these as unsupported for a jumdata
	// seller (TestValidatorRefusesWhatTheAdapterDoesNotSend): the adapter
	// refuses them all the same, sending nothing.
	reissue := publishedRequest(t, `{"schemaVersion":"1","kind":"reissue","sellerTaxNum":"`+sandbox.DefaultJumdataSeller+`","orderNo":"RE-1","reissue":{"orderno":"ORD-1"}}`)
	red := issueRequest(t, "ORD-U1")
	red.Order.InvoiceType = schemas.InvoiceTypeRed
	tests := []struct {
		name  string
		req   *schemas.Request
		field string
	}{
		{"reissue", reissue, "kind"},
		{"red order", red, "order.invoiceType"},
		{"paper invoice", publishedRequest(t, issueMessage(t, "ORD-U2", `"invoiceLine": "pc"`, `"invoiceLine": "c"`)), "order.invoiceLine"},
		{"VAT blue invoice", func() *schemas.Request {
			r := redRequest(t, "RC-U3", "26332000000000000001", clockStart(), "1", "")
			r.RedConfirm.BlueInvoiceLine = "p"
			return r
		}(), "redConfirm.blueInvoiceLine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, out := range map[string]providers.Outcome{
				"submit": e.client.Submit(t.Context(), &providers.Call{Request: tt.req}),
				"query":  e.client.Query(t.Context(), &providers.Call{Request: tt.req, SubmittedAt: clockStart()}),
			} {
				wantClass(t, name, out, providers.Rejected, "unsupported")
				if !errors.Is(out.Err, providers.ErrUnsupported) || out.Field != tt.field {
					t.Errorf("%s: err %v field %q", name, out.Err, out.Field)
				}
			}
		})
	}
	if got := e.obs.Calls(); len(got) != 0 {
		t.Fatalf("observed %v: nothing may be sent", got)
	}
}

func TestSellerMismatch(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	req := issueRequest(t, "ORD-S1", `"sellerTaxNum": "91330106MA2AYNWD8M"`, `"sellerTaxNum": "339902999999789113"`,
		`"salerTaxNum": "91330106MA2AYNWD8M"`, `"salerTaxNum": "339902999999789113"`)
	out := e.client.Submit(t.Context(), &providers.Call{Request: req})
	wantClass(t, "submit", out, providers.ActionRequired, "seller_mismatch")
	if len(e.obs.Calls()) != 0 {
		t.Fatal("a call was made for another seller")
	}
}

func TestFaceAuthentication(t *testing.T) {
	e := newEnv(t, sandbox.Config{Faults: sandbox.Faults{FaceAuthSellers: []string{sandbox.DefaultJumdataSeller}}}, nil)
	ctx := t.Context()
	call := &providers.Call{Request: issueRequest(t, "ORD-F1")}
	wantClass(t, "submit before authentication", e.client.Submit(ctx, call), providers.ActionRequired, "311")

	qr, err := e.client.FaceAuthQRCode(ctx, jumdata.ScanAppETax)
	if err != nil || qr.AuthID == "" || qr.ImageBase64 == "" {
		t.Fatalf("QR code %+v, %v", qr, err)
	}
	err = e.client.FaceAuthResult(ctx, qr.AuthID, jumdata.ScanAppETax)
	var apiErr *jumdata.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "311" || apiErr.Class != providers.ActionRequired {
		t.Fatalf("result before the scan: %v", err)
	}
	wantClass(t, "submit while scanning", e.client.Submit(ctx, call), providers.ActionRequired, "311")
	if err := e.client.FaceAuthResult(ctx, qr.AuthID, jumdata.ScanAppETax); err != nil {
		t.Fatalf("result after the scan: %v", err)
	}
	wantClass(t, "submit after authentication", e.client.Submit(ctx, call), providers.Issued, "200")
	if n := e.sb.Stats().Faults["face_auth"]; n != 2 {
		t.Fatalf("face_auth faults %d", n)
	}
	t.Run("expired QR code", func(t *testing.T) {
		err := e.client.FaceAuthResult(ctx, "not-a-code", jumdata.ScanAppETax)
		if !errors.As(err, &apiErr) || apiErr.Code != "312" || apiErr.Class != providers.ActionRequired {
			t.Fatalf("err %v", err)
		}
	})
}

func TestInvoicePage(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	inv := e.mustIssue("ORD-P1")
	u, err := e.client.InvoicePage(t.Context(), inv.InvoiceNo, inv.IssuedAt.In(cst).Format("2006-01-02 15:04:05"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "%PDF-") {
		t.Fatalf("GET %s: %d %.10q", u, resp.StatusCode, b)
	}
	_, err = e.client.InvoicePage(t.Context(), "26332000000999999999", "2026-11-20")
	var apiErr *jumdata.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "399" {
		t.Fatalf("unknown invoice: %v", err)
	}
}

// A query for an earlier request with other content cannot be answered by
// jumdata, which finds orders by their content: it says so without calling,
// except for a red confirmation whose uuid is known.
func TestQueryEarlierRequest(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	red := redRequest(t, "RC-E1", "26332000000000000001", clockStart(), "1", "")
	for _, req := range []*schemas.Request{issueRequest(t, "ORD-E1"), red} {
		out := e.client.Query(t.Context(), &providers.Call{Request: req, SubmittedAt: clockStart(), Earlier: true,
			Refs: schemas.ProviderRefs{TaskID: "0123456789abcdef0123456789abcdef"}})
		wantClass(t, string(req.Kind), out, providers.Rejected, "unsupported")
		if !errors.Is(out.Err, providers.ErrUnsupported) || out.Field != "orderNo" {
			t.Errorf("%s: err %v field %q", req.Kind, out.Err, out.Field)
		}
	}
	if got := e.obs.Calls(); len(got) != 0 {
		t.Fatalf("observed %v: nothing may be sent", got)
	}
	out := e.client.Query(t.Context(), &providers.Call{Request: red, SubmittedAt: clockStart(), Earlier: true,
		Refs: schemas.ProviderRefs{BillNo: "no-such-uuid"}})
	if out.Class == providers.Rejected && errors.Is(out.Err, providers.ErrUnsupported) {
		t.Fatalf("a known confirmation uuid is looked up: %+v", out)
	}
	if got := e.obs.Calls(); len(got) != 1 {
		t.Fatalf("observed %v: one red-invoice/result call expected", got)
	}
}

// A red confirmation form jumdata accepted is not Rejected because one
// red-invoice/result poll got a code the table does not list: Retry, and
// the form is issued on a later poll.
func TestUnknownCodeOnAPollOfAnAcceptedFormIsRetried(t *testing.T) {
	e := newEnv(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1}}, nil)
	call := e.acceptedRedForm("ORD-POLL-1", "RC-POLL-1")

	e.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "red-invoice/result", Code: "502", Message: "网关异常"}}})
	wantClass(t, "poll with an unknown code", e.client.Query(t.Context(), call), providers.Retry, "502")
	var last providers.Outcome
	for range 3 {
		if last = e.client.Query(t.Context(), call); last.Class != providers.Accepted {
			break
		}
	}
	wantClass(t, "later poll", last, providers.Issued, "200")
}
