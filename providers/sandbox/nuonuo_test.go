package sandbox_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Nuonuo's signature
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// These tests speak raw HTTP with their own signing code: the sandbox is
// checked against the documents, not against the client.

const nnSeller = sandbox.DefaultNuonuoSeller

type nnEnv struct {
	sb    *sandbox.Server
	url   string
	clock *nnClock
}

type nnClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *nnClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *nnClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newNuonuoEnv(tb testing.TB, cfg sandbox.Config) *nnEnv {
	tb.Helper()
	clk := &nnClock{t: time.Now()}
	cfg.Now = clk.Now
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	tb.Cleanup(srv.Close)
	sb.SetBaseURL(srv.URL)
	return &nnEnv{sb: sb, url: srv.URL, clock: clk}
}

// nnCall is one request to /open/v1/services; zero fields are filled in
// correctly, so that each test spoils exactly one thing.
type nnCall struct {
	method    string
	body      string
	appKey    string
	secret    string
	senid     string
	nonce     string
	timestamp string
	token     string
	userTax   *string
	spoilSign bool
	sendBody  string        // sent instead of body (the signature still covers body)
	skew      time.Duration // the caller's clock against the sandbox's
}

type nnReply struct {
	Code        string          `json:"code"`
	Describe    string          `json:"describe"`
	Result      json.RawMessage `json:"result"`
	contentType string
}

func nnSign(secret, appKey, senid, nonce, ts, body string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte("a=services&l=v1&p=open&k=" + appKey + "&i=" + senid + "&n=" + nonce + "&t=" + ts + "&f=" + body))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (e *nnEnv) do(t *testing.T, c nnCall) nnReply {
	t.Helper()
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.appKey, sandbox.DefaultNuonuoAppKey)
	set(&c.secret, sandbox.DefaultNuonuoAppSecret)
	set(&c.senid, strings.Repeat("ab", 16))
	set(&c.nonce, "12345678")
	set(&c.timestamp, strconv.FormatInt(e.clock.Now().Add(c.skew).Unix(), 10))
	set(&c.token, sandbox.DefaultNuonuoToken)
	tax := nnSeller
	if c.userTax != nil {
		tax = *c.userTax
	}
	sign := nnSign(c.secret, c.appKey, c.senid, c.nonce, c.timestamp, c.body)
	if c.spoilSign {
		sign = "AAAA" + sign[4:]
	}
	send := c.body
	if c.sendBody != "" {
		send = c.sendBody
	}
	q := url.Values{"senid": {c.senid}, "nonce": {c.nonce}, "timestamp": {c.timestamp}, "appkey": {c.appKey}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/open/v1/services?"+q.Encode(), strings.NewReader(send))
	if err != nil {
		t.Fatal(err)
	}
	req.Header["Content-Type"] = []string{"application/json;charset=UTF-8"}
	req.Header["X-Nuonuo-Sign"] = []string{sign}
	req.Header["accessToken"] = []string{c.token}
	if tax != "" {
		req.Header["userTax"] = []string{tax}
	}
	req.Header["method"] = []string{c.method}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r nnReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
	r.contentType = resp.Header.Get("Content-Type")
	return r
}

const (
	nnBilling   = "nuonuo.ElectronInvoice.requestBillingNew"
	nnQuery     = "nuonuo.ElectronInvoice.queryInvoiceResult"
	nnReInvoice = "nuonuo.OpeMplatform.reInvoice"
	nnSaveRed   = "nuonuo.OpeMplatform.saveInvoiceRedConfirm"
	nnQueryRed  = "nuonuo.OpeMplatform.queryInvoiceRedConfirm"
)

// nnOrder returns a valid order body (one line, 100.00 + 6.00 = 106.00) as
// a generic map for tests to spoil.
func nnOrder(orderNo string) map[string]any {
	return map[string]any{
		"buyerName": "杭州示例科技有限公司", "salerTaxNum": nnSeller, "orderNo": orderNo,
		"invoiceDate": "2026-11-20 10:15:00", "clerk": "张三", "pushMode": "-1",
		"invoiceType": "1", "invoiceLine": "pc",
		"invoiceDetail": []any{nnLine("技术服务费", "0", "1", "100.00", "6.00", "106.00")},
	}
}

func nnLine(name, prop, num, excl, tax, incl string) map[string]any {
	return map[string]any{
		"goodsName": name, "goodsCode": "3040201010000000000", "withTaxFlag": "1", "taxRate": "0.06",
		"num": num, "price": strings.TrimPrefix(incl, "-"), "invoiceLineProperty": prop,
		"taxExcludedAmount": excl, "tax": tax, "taxIncludedAmount": incl,
	}
}

func nnJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *nnEnv) submit(t *testing.T, order map[string]any) nnReply {
	t.Helper()
	return e.do(t, nnCall{method: nnBilling, body: nnJSON(t, map[string]any{"order": order})})
}

func TestNuonuoSignatureVectorMatchesTheDocuments(t *testing.T) {
	// The test signer is the documented scheme: check it against the vector.
	if got := nnSign("secret", "app", strings.Repeat("a", 32), "12345678", "1700000000", `{"name":"中文"}`); got != "4BzcKzrcoqxPis0W/W3X2ae0uIo=" {
		t.Fatalf("signature %q does not match the documented vector", got)
	}
}

func TestNuonuoCallChecks(t *testing.T) {
	empty := ""
	body := `{"orderNos":["X"]}`
	tests := []struct {
		name string
		call nnCall
		code string
		msg  string
	}{
		{"valid call reaches the method", nnCall{}, "E9500", ""},
		{"unknown appkey", nnCall{appKey: "nope"}, "070101", ""},
		{"senid not 32 hex", nnCall{senid: "xyz"}, "0201", ""},
		{"nonce not 8 digits", nnCall{nonce: "1234"}, "0201", ""},
		{"timestamp in milliseconds", nnCall{timestamp: "1700000000000"}, "070601", "时间"},
		{"client clock 11 minutes behind", nnCall{skew: -11 * time.Minute}, "070601", "时间"},
		{"client clock 9 minutes ahead is fine", nnCall{skew: 9 * time.Minute}, "E9500", ""},
		{"wrong secret", nnCall{secret: "other"}, "070601", "签名"},
		{"spoilt signature", nnCall{spoilSign: true}, "070601", "签名"},
		{"body changed after signing", nnCall{sendBody: `{"orderNos":["Y"]}`}, "070601", "签名"},
		{"unknown token", nnCall{token: "guess"}, "070301", "不匹配"},
		{"no userTax", nnCall{userTax: &empty}, "070401", ""},
		{"unknown method", nnCall{method: "nuonuo.ElectronInvoice.nothing"}, "070501", ""},
		{"body not JSON", nnCall{body: "{order"}, "0201", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNuonuoEnv(t, sandbox.Config{})
			c := tt.call
			if c.method == "" {
				c.method = nnQuery
			}
			if c.body == "" {
				c.body = body
			}
			if tt.name != "valid call reaches the method" && tt.name != "client clock 9 minutes ahead is fine" {
				// A refused call must not reach the method.
				defer func() {
					if n := e.sb.Stats().Sellers[nnSeller]["X"].Queries; n != 0 {
						t.Errorf("a refused call was counted as %d queries", n)
					}
				}()
			}
			r := e.do(t, c)
			if r.Code != tt.code || !strings.Contains(r.Describe, tt.msg) {
				t.Fatalf("code %q %q, want %q containing %q", r.Code, r.Describe, tt.code, tt.msg)
			}
			if r.contentType != "application/json;charset=UTF-8" {
				t.Errorf("Content-Type %q", r.contentType)
			}
		})
	}
}

func nnFetchToken(t *testing.T, e *nnEnv, form url.Values, contentType string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/accessToken", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func TestNuonuoTokenEndpoint(t *testing.T) {
	const form = "application/x-www-form-urlencoded;charset=UTF-8"
	good := url.Values{"client_id": {sandbox.DefaultNuonuoAppKey}, "client_secret": {sandbox.DefaultNuonuoAppSecret}, "grant_type": {"client_credentials"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range good {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name        string
		form        url.Values
		contentType string
		code        string
	}{
		{"wrong content type", good, "application/json", "070315"},
		{"wrong client id", with("client_id", "x"), form, "070304"},
		{"wrong client secret", with("client_secret", "x"), form, "070305"},
		{"wrong grant type", with("grant_type", "password"), form, "070307"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNuonuoEnv(t, sandbox.Config{})
			_, m := nnFetchToken(t, e, tt.form, tt.contentType)
			if m["error"] != tt.code || m["access_token"] != nil {
				t.Fatalf("answer %v, want error %s", m, tt.code)
			}
		})
	}

	t.Run("tokens live TokenTTL and the limit holds", func(t *testing.T) {
		e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{TokenTTL: time.Hour, TokenCallLimit: 2}})
		_, m := nnFetchToken(t, e, good, form)
		tok, _ := m["access_token"].(string)
		if tok == "" || m["expires_in"] != "3600" {
			t.Fatalf("answer %v, want a token with expires_in \"3600\"", m)
		}
		if r := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["X"]}`, token: tok}); r.Code != "E9500" {
			t.Fatalf("fetched token refused: %s %s", r.Code, r.Describe)
		}
		e.clock.Advance(time.Hour)
		if r := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["X"]}`, token: tok}); r.Code != "070301" || !strings.Contains(r.Describe, "过期") {
			t.Fatalf("expired token: %s %s, want 070301 过期", r.Code, r.Describe)
		}
		if _, m := nnFetchToken(t, e, good, form); m["access_token"] == nil {
			t.Fatalf("second call refused: %v", m)
		}
		if _, m := nnFetchToken(t, e, good, form); m["error"] != "070306" {
			t.Fatalf("third call: %v, want 070306", m)
		}
		if n := e.sb.Stats().TokenCalls["nuonuo"]; n != 3 {
			t.Errorf("token calls %d, want 3", n)
		}
	})
}

func TestNuonuoValidationCodes(t *testing.T) {
	line := func(o map[string]any, i int) map[string]any { return o["invoiceDetail"].([]any)[i].(map[string]any) }
	withDiscount := func(o map[string]any) {
		o["invoiceDetail"] = []any{
			nnLine("技术服务费", "2", "1", "100.00", "6.00", "106.00"),
			nnLine("技术服务费", "1", "-1", "-10.00", "-0.60", "-10.60"),
		}
	}
	redOrder := func(o map[string]any) {
		o["invoiceType"], o["invoiceLine"], o["invoiceCode"], o["invoiceNum"] = "2", "c", "033001900112", "12345679"
	}
	tests := []struct {
		name   string
		mutate func(map[string]any)
		code   string
		msg    string
	}{
		{"missing buyerName", func(o map[string]any) { delete(o, "buyerName") }, "E4000", "buyerName"},
		{"missing clerk", func(o map[string]any) { o["clerk"] = "" }, "E4000", "clerk"},
		{"phone push without phone", func(o map[string]any) { delete(o, "pushMode") }, "E4000", "buyerPhone"},
		{"bad invoice date", func(o map[string]any) { o["invoiceDate"] = "2026-11-20" }, "E4000", "invoiceDate"},
		{"line without goodsName", func(o map[string]any) { line(o, 0)["goodsName"] = "" }, "E4000", "第1行"},
		{"tax rate outside the set", func(o map[string]any) {
			l := line(o, 0)
			l["taxRate"], l["taxExcludedAmount"], l["tax"] = "0.07", "99.07", "6.93"
		}, "E4000", "taxRate"},
		// Seed 001 gives taxRate a maximum length of 10 and no code of
		// its own: a rate of the set written longer is refused.
		{"taxRate of 11 characters", func(o map[string]any) { line(o, 0)["taxRate"] = "0.060000000" }, "E4000", "taxRate不能超过10位,第1行"},
		{"price of 9 decimals", func(o map[string]any) { line(o, 0)["price"] = "106.000000001" }, "E4000", "price"},
		{"num of 9 decimals", func(o map[string]any) { line(o, 0)["num"] = "1.000000001" }, "E4000", "num"},
		{"amounts of 3 decimals", func(o map[string]any) {
			l := line(o, 0)
			l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "100.001", "6.000", "106.001"
		}, "E4000", "taxIncludedAmount"},
		{"invoice type 3", func(o map[string]any) { o["invoiceType"] = "3" }, "E9101", ""},
		{"red without blue numbers", func(o map[string]any) { o["invoiceType"] = "2"; o["invoiceLine"] = "c" }, "E9102", ""},
		// Seed 001, billInfoNo: 专票冲红时此项必填，且必须在备注中注明“开具红字
		// 增值税专用发票信息表编号ZZZZZZZZZZZZZZZZ”字样; no code of its own.
		{"red special invoice without billInfoNo", func(o map[string]any) {
			redOrder(o)
			o["invoiceLine"] = "s"
			l := line(o, 0)
			l["num"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-1", "-100.00", "-6.00", "-106.00"
		}, "E4000", "billInfoNo"},
		{"red special invoice without the form in its remark", func(o map[string]any) {
			redOrder(o)
			o["invoiceLine"], o["billInfoNo"], o["remark"] = "b", "1403011904008472", "开具红字增值税专用发票信息表编号1403011904008473"
			l := line(o, 0)
			l["num"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-1", "-100.00", "-6.00", "-106.00"
		}, "E4000", "remark"},
		{"email too long", func(o map[string]any) { o["email"] = strings.Repeat("a", 45) + "@x.com" }, "E9104", ""},
		// Seed 001: 购方地址+电话总共不超100字符, no code of its own.
		{"buyer address and telephone over 100 characters", func(o map[string]any) {
			o["buyerAddress"], o["buyerTel"] = strings.Repeat("路", 80), strings.Repeat("1", 21)
		}, "E4000", "buyerAddress+buyerTel"},
		// Seed 001 gives remark a maximum length of 230, PROVIDERS.md 200
		// on a fully digital invoice (pc, nnOrder's), in characters; no
		// code of its own: E4000.
		{"remark over 200 on a fully digital invoice", func(o map[string]any) { o["remark"] = strings.Repeat("备", 201) }, "E4000", "remark不能超过200个字符"},
		{"remark over 230", func(o map[string]any) { o["invoiceLine"], o["remark"] = "c", strings.Repeat("备", 231) }, "E4000", "remark不能超过230个字符"},
		// Seed 001: favouredPolicyName 当favouredPolicyFlag为1时，此项必填
		// (全电发票时为空: nnOrder's pc takes it without), no code of its
		// own.
		{"favoured policy without its name", func(o map[string]any) {
			o["invoiceLine"], line(o, 0)["favouredPolicyFlag"] = "c", "1"
		}, "E4000", "favouredPolicyName不能为空,第1行"},
		{"proxy flag 2", func(o map[string]any) { o["proxyInvoiceFlag"] = "2" }, "E9107", ""},
		{"seller mismatch", func(o map[string]any) { o["salerTaxNum"] = "91330106MA2AYNWD8M" }, "E9302", ""},
		{"no lines", func(o map[string]any) { o["invoiceDetail"] = []any{} }, "E9122", ""},
		{"no price, amounts missing", func(o map[string]any) {
			delete(line(o, 0), "price")
			delete(line(o, 0), "num")
			delete(line(o, 0), "tax")
		}, "E9123", ""},
		{"no price but a quantity", func(o map[string]any) { delete(line(o, 0), "price") }, "E9123", ""},
		{"amount of 21 digits", func(o map[string]any) { line(o, 0)["taxIncludedAmount"] = strings.Repeat("9", 21) }, "E9124", ""},
		// Seed 001 gives taxIncludedAmount, taxExcludedAmount and tax a
		// maximum length of 16 (E9124, E9126 and E9128 name their
		// length, "不能超过20位" in the seed's words), price, num and
		// deduction one of 16 with no code of their own (E4000). A red
		// figure's minus sign is one of the 16.
		{"amounts of 17 characters", func(o map[string]any) {
			l := line(o, 0)
			l["price"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "10600000000000", "10000000000000.00", "600000000000.00", "10600000000000.00"
		}, "E9124", "含税金额"},
		{"amount with tax of 20 digits", func(o map[string]any) { line(o, 0)["taxIncludedAmount"] = "00000000000000000106" }, "E9124", "含税金额"},
		{"amount without tax of 20 characters", func(o map[string]any) { line(o, 0)["taxExcludedAmount"] = "00000000000100.00" }, "E9126", "不含税金额"},
		{"tax of 17 characters", func(o map[string]any) { line(o, 0)["tax"] = "00000000000006.00" }, "E9128", "税额"},
		{"red tax of 17 characters with its sign", func(o map[string]any) {
			redOrder(o)
			l := line(o, 0)
			l["num"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-1", "-100.00", "-0000000000006.00", "-106.00"
		}, "E9128", "税额"},
		{"price of 17 characters", func(o map[string]any) { line(o, 0)["price"] = "00000000000106.00" }, "E4000", "price"},
		{"num of 17 characters", func(o map[string]any) { line(o, 0)["num"] = "00000000000000001" }, "E4000", "num"},
		{"deduction of 17 characters", func(o map[string]any) { line(o, 0)["deduction"] = "00000000000000.00" }, "E4000", "deduction"},
		{"deduction of 3 decimals", func(o map[string]any) { line(o, 0)["deduction"] = "0.000" }, "E4000", "deduction"},
		{"deduction not a number", func(o map[string]any) { line(o, 0)["deduction"] = "5OO" }, "E4000", "deduction"},
		{"amount not a number", func(o map[string]any) { line(o, 0)["taxIncludedAmount"] = "1O6" }, "E9125", ""},
		{"excluded amount not a number", func(o map[string]any) { line(o, 0)["taxExcludedAmount"] = "abc" }, "E9127", ""},
		{"tax of 21 digits", func(o map[string]any) { line(o, 0)["tax"] = "-" + strings.Repeat("1", 21) }, "E9128", ""},
		{"sum off", func(o map[string]any) { line(o, 0)["taxIncludedAmount"] = "106.01" }, "E9130", "第1行"},
		{"tax off by 0.07", func(o map[string]any) {
			l := line(o, 0)
			l["tax"], l["taxExcludedAmount"] = "5.93", "100.07"
			l["taxIncludedAmount"] = "106.00"
		}, "E9131", "金额*税率-税额大于0.06,明细行名称:技术服务费,第1行"},
		{"taxes off by 1.50 over the invoice", func(o map[string]any) {
			// Each line is 0.06 off, within the line tolerance; 25 of them
			// are 1.50 off, beyond the invoice's 1.27.
			var lines []any
			for range 25 {
				lines = append(lines, nnLine("技术服务费", "0", "1", "10.00", "0.54", "10.54"))
			}
			o["invoiceDetail"] = lines
		}, "E9131", "1.27"},
		{"no goods code", func(o map[string]any) { delete(line(o, 0), "goodsCode") }, "E9138", ""},
		// PROVIDERS.md: a goods code has 19 digits (seed 001: 最大长度 19);
		// one the platform cannot use is E9121 (获取商品编码失败).
		{"goods code of 18 digits", func(o map[string]any) { line(o, 0)["goodsCode"] = "304020101000000000" }, "E9121", "goodsCode"},
		{"goods code of 20 digits", func(o map[string]any) { line(o, 0)["goodsCode"] = "30402010100000000000" }, "E9121", "goodsCode"},
		{"goods code not all digits", func(o map[string]any) { line(o, 0)["goodsCode"] = "304020101000000000X" }, "E9121", "goodsCode"},
		// Seed 001: goodsName has at most 90 characters, and no code of
		// its own.
		{"goods name of 91 characters", func(o map[string]any) { line(o, 0)["goodsName"] = strings.Repeat("货", 91) }, "E4000", "goodsName不能超过90个字符,第1行"},
		{"discount without discounted line", func(o map[string]any) {
			withDiscount(o)
			line(o, 0)["invoiceLineProperty"] = "0"
		}, "E9110", "第2行"},
		{"discounted line without discount", func(o map[string]any) { line(o, 0)["invoiceLineProperty"] = "2" }, "E9110", "第1行"},
		{"discount names other goods", func(o map[string]any) { withDiscount(o); line(o, 1)["goodsName"] = "别的" }, "E9105", ""},
		{"discount at another rate", func(o map[string]any) {
			withDiscount(o)
			l := line(o, 1)
			l["taxRate"], l["tax"], l["taxExcludedAmount"] = "0.13", "-1.22", "-9.38"
		}, "E9112", ""},
		{"discount larger than the line", func(o map[string]any) {
			withDiscount(o)
			l := line(o, 1)
			l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-200.00", "-12.00", "-212.00"
		}, "E9108", ""},
		{"blue discount with positive quantity", func(o map[string]any) { withDiscount(o); line(o, 1)["num"] = "1" }, "E9111", ""},
		{"blue discounted line with negative quantity", func(o map[string]any) { withDiscount(o); line(o, 0)["num"] = "-1" }, "E9114", ""},
		// A blue invoice's figures are not a red one's (seed 001: 红票为负):
		// a goods line's amounts are positive, given or computed from
		// price × num, its tax not negative; a discount line's the
		// reverse. Seed 001 gives no code of its own: E4000.
		{"blue amount from price × num rounding to nothing", func(o map[string]any) {
			l := line(o, 0)
			l["price"] = "0.004"
			delete(l, "taxExcludedAmount")
			delete(l, "tax")
			delete(l, "taxIncludedAmount")
		}, "E4000", "taxIncludedAmount须为正数,第1行"},
		{"blue amounts of zero", func(o map[string]any) {
			l := line(o, 0)
			l["price"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"], l["taxRate"] = "0.01", "0.00", "0.00", "0.00", "0"
		}, "E4000", "taxIncludedAmount须为正数,第1行"},
		{"blue goods line with a negative tax", func(o map[string]any) {
			l := line(o, 0)
			l["taxRate"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "0", "106.01", "-0.01", "106.00"
		}, "E4000", "tax不能为负数,第1行"},
		{"blue discount line with a positive amount", func(o map[string]any) {
			withDiscount(o)
			l := line(o, 1)
			l["num"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-1", "10.00", "0.60", "10.60"
		}, "E4000", "折扣行taxIncludedAmount须为负数,第2行"},
		// Seed 001: a red invoice's amounts are negative (红票为负), and so
		// is its quantity (开具红票时数量为负数).
		{"red with positive amounts", func(o map[string]any) { redOrder(o); line(o, 0)["num"] = "1" }, "E4000", "taxIncludedAmount须为负数,第1行"},
		{"red with a positive amount without tax", func(o map[string]any) {
			redOrder(o)
			l := line(o, 0)
			l["num"], l["price"] = "-1", "0.01"
			l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "0.01", "-0.02", "-0.01"
		}, "E4000", "taxExcludedAmount须为负数,第1行"},
		{"red with a positive tax", func(o map[string]any) {
			redOrder(o)
			l := line(o, 0)
			l["num"], l["price"] = "-1", "0.49"
			l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-0.50", "0.01", "-0.49"
		}, "E4000", "tax须为负数,第1行"},
		{"red with a positive quantity", func(o map[string]any) {
			redOrder(o)
			l := line(o, 0)
			l["num"], l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "1", "-100.00", "-6.00", "-106.00"
		}, "E4000", "num须为负数,第1行"},
		{"red amounts from a positive quantity", func(o map[string]any) {
			redOrder(o)
			l := line(o, 0)
			l["num"] = "1"
			delete(l, "taxExcludedAmount")
			delete(l, "tax")
			delete(l, "taxIncludedAmount")
		}, "E4000", "须为负数,第1行"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNuonuoEnv(t, sandbox.Config{})
			orderNo := fmt.Sprintf("V-%d", i)
			o := nnOrder(orderNo)
			tt.mutate(o)
			r := e.submit(t, o)
			if r.Code != tt.code || !strings.Contains(r.Describe, tt.msg) {
				t.Fatalf("code %q %q, want %q containing %q", r.Code, r.Describe, tt.code, tt.msg)
			}
			st := e.sb.Stats().Sellers[nnSeller][orderNo]
			if st.Submissions != 1 || st.Issuances != 0 {
				t.Errorf("stats %+v: a refused order counts one submission and no issuance", st)
			}
		})
	}
}

func TestNuonuoAcceptsDiscountsAndNumbers(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{})
	o := nnOrder("OK-1")
	o["invoiceDetail"] = []any{
		nnLine("技术服务费", "2", "1", "100.00", "6.00", "106.00"),
		nnLine("技术服务费", "1", "-1", "-10.00", "-0.60", "-10.60"),
		// Amounts as JSON numbers, and a line with only price and quantity.
		map[string]any{"goodsName": "咨询费", "goodsCode": "3040201010000000000", "withTaxFlag": "1",
			"taxRate": json.Number("0.06"), "price": json.Number("53"), "num": json.Number("2")},
	}
	r := e.submit(t, o)
	if r.Code != "E0000" {
		t.Fatalf("code %q %q, want E0000", r.Code, r.Describe)
	}
	var res struct {
		InvoiceSerialNum string `json:"invoiceSerialNum"`
	}
	if err := json.Unmarshal(r.Result, &res); err != nil || len(res.InvoiceSerialNum) != 20 {
		t.Fatalf("result %s: want a 20-digit invoiceSerialNum", r.Result)
	}
	q := e.do(t, nnCall{method: nnQuery, body: `{"serialNos":["` + res.InvoiceSerialNum + `"]}`})
	var entries []map[string]any
	if err := json.Unmarshal(q.Result, &entries); err != nil || len(entries) != 1 {
		t.Fatalf("query %s %s: %v", q.Code, q.Result, err)
	}
	// 106.00 − 10.60 + 106.00 = 201.40
	if got := entries[0]["orderAmount"]; got != "201.40" || entries[0]["status"] != "2" {
		t.Errorf("entry %v, want status 2 and orderAmount \"201.40\"", entries[0])
	}
	if st := e.sb.Stats().Sellers[nnSeller]["OK-1"]; st.Issuances != 1 || st.Invoices != 1 || st.Submissions != 1 {
		t.Errorf("stats %+v", st)
	}
	if dup := e.submit(t, nnOrder("OK-1")); dup.Code != "E9106" {
		t.Errorf("second submission: %q, want E9106", dup.Code)
	}
	if st := e.sb.Stats().Sellers[nnSeller]["OK-1"]; st.Issuances != 1 || st.Submissions != 2 {
		t.Errorf("after the duplicate: %+v", st)
	}
}

// TestNuonuoAcceptsFiguresOf16Characters: seeds 001 and 002 give every
// amount, price, quantity and deduction a maximum length of 16, a red
// figure's minus sign included, and both a taxRate one of 10;
// TestNuonuoValidationCodes refuses 17 and a taxRate of 11,
// TestNuonuoRedConfirm too.
func TestNuonuoAcceptsFiguresOf16Characters(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.RequireFromString("10000000000000000")}})
	blue := nnOrder("LEN-BLUE")
	l := blue["invoiceDetail"].([]any)[0].(map[string]any)
	l["price"], l["num"] = "1060000000000.00", "0000001.00000000"
	l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "1000000000000.00", "60000000000.00", "1060000000000.00"
	l["deduction"], l["taxRate"] = "0000000000000.00", "0.06000000"
	// A deduction of zero is deduction taxation with nothing deducted,
	// which a fully digital invoice does not take (E4000): a tax-control
	// one does.
	blue["invoiceLine"] = "p"
	if r := e.submit(t, blue); r.Code != "E0000" {
		t.Fatalf("blue figures of 16 characters: %q %q, want E0000", r.Code, r.Describe)
	}
	red := nnOrder("LEN-RED")
	red["invoiceType"], red["invoiceLine"], red["invoiceCode"], red["invoiceNum"] = "2", "c", "033001900112", "12345679"
	l = red["invoiceDetail"].([]any)[0].(map[string]any)
	l["price"], l["num"] = "106000000000.00", "-000001.00000000"
	l["taxExcludedAmount"], l["tax"], l["taxIncludedAmount"] = "-100000000000.00", "-6000000000.00", "-106000000000.00"
	if r := e.submit(t, red); r.Code != "E0000" {
		t.Fatalf("red figures of 16 characters with their sign: %q %q, want E0000", r.Code, r.Describe)
	}
	form := nnJSON(t, map[string]any{
		"billId": "LEN-1", "blueInvoiceLine": "pc", "applySource": "0", "blueElecInvoiceNumber": "26332000000000000001",
		"sellerTaxNo": nnSeller, "sellerName": "销方", "buyerTaxNo": "91440101MA5APD8X8J", "buyerName": "购方",
		"redReason": "2", "orderNo": "LEN-FORM",
		"detail": []any{map[string]any{"blueDetailIndex": "1", "goodsName": "服务", "taxRate": "0.06000000", "goodsCode": "3049900000000000000",
			"num": "-1.0000000000000", "taxExcludedPrice": "100000000000.000", "taxExcludedAmount": "-100000000000.00", "taxAmount": "-6000000000.00"}},
	})
	if r := e.do(t, nnCall{method: nnSaveRed, body: form}); r.Code != "E0000" {
		t.Fatalf("red confirmation figures of 16 characters: %q %q, want E0000", r.Code, r.Describe)
	}
}

func TestNuonuoSplitLimit(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.RequireFromString("10.6")}})
	if r := e.submit(t, nnOrder("S-10")); r.Code != "E0000" { // exactly 10 invoices
		t.Fatalf("106.00 over 10.60: %q %q", r.Code, r.Describe)
	}
	o := nnOrder("S-11")
	o["invoiceDetail"].([]any)[0].(map[string]any)["price"] = "106.01"
	l := o["invoiceDetail"].([]any)[0].(map[string]any)
	l["taxIncludedAmount"], l["taxExcludedAmount"], l["tax"] = "106.01", "100.01", "6.00"
	if r := e.submit(t, o); r.Code != "E9154" {
		t.Fatalf("106.01 over 10.60: %q, want E9154", r.Code)
	}
	st := e.sb.Stats().Sellers[nnSeller]
	if st["S-10"].Invoices != 10 || st["S-11"].Issuances != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestNuonuoQueryInvoiceResult(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1}})
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	tests := []struct {
		name, body, code string
	}{
		{"neither list", `{}`, "E4000"},
		{"more than 50", nnJSON(t, map[string]any{"orderNos": many}), "E4000"},
		{"unknown order", `{"orderNos":["NOPE"]}`, "E9500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, nnCall{method: nnQuery, body: tt.body}); r.Code != tt.code {
				t.Fatalf("code %q, want %q", r.Code, tt.code)
			}
		})
	}
	t.Run("issuing then issued with a PDF", func(t *testing.T) {
		if r := e.submit(t, nnOrder("Q-1")); r.Code != "E0000" {
			t.Fatal(r.Code)
		}
		status := func() map[string]any {
			r := e.do(t, nnCall{method: "nuonuo.OpeMplatform.queryInvoiceResult", body: `{"orderNos":["Q-1"]}`})
			var entries []map[string]any
			if err := json.Unmarshal(r.Result, &entries); err != nil || len(entries) != 1 {
				t.Fatalf("%s %s", r.Code, r.Result)
			}
			return entries[0]
		}
		if s := status(); s["status"] != "20" {
			t.Fatalf("first query: %v, want status 20", s)
		}
		s := status()
		if s["status"] != "2" || len(s["allElectronicInvoiceNumber"].(string)) != 20 || s["taxAmount"] != "6.00" {
			t.Fatalf("second query: %v", s)
		}
		if _, ok := s["invoiceTime"].(float64); !ok {
			t.Errorf("invoiceTime %v is not a JSON number of milliseconds", s["invoiceTime"])
		}
		download := func() []byte {
			resp, err := http.Get(s["pdfUrl"].(string))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			pdf, _ := io.ReadAll(resp.Body)
			return pdf
		}
		pdf := download()
		if !bytes.HasPrefix(pdf, []byte("%PDF-1.4")) || !bytes.Contains(pdf, []byte(s["allElectronicInvoiceNumber"].(string))) {
			t.Errorf("pdfUrl serves %.20q, without the invoice's number", pdf)
		}
		// Rendered when downloaded: the same bytes every time.
		if again := download(); !bytes.Equal(again, pdf) {
			t.Errorf("the second download differs from the first:\n%q\n%q", again, pdf)
		}
	})
}

func TestNuonuoReInvoice(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{})
	fail := nnOrder("F-1")
	fail["remark"] = "SANDBOX:FAIL"
	e.submit(t, fail)
	e.submit(t, nnOrder("OK-1"))
	query := func(no string) map[string]any {
		r := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["` + no + `"]}`})
		var entries []map[string]any
		_ = json.Unmarshal(r.Result, &entries)
		if len(entries) == 0 {
			t.Fatalf("query %s: %s", no, r.Code)
		}
		return entries[0]
	}
	if s := query("F-1"); s["status"] != "22" || !strings.Contains(s["failCause"].(string), "SANDBOX:FAIL") {
		t.Fatalf("failed order: %v", s)
	}
	query("OK-1")
	tests := []struct {
		name, body, code, msg string
	}{
		{"neither key", `{}`, "E4000", ""},
		{"unknown order", `{"orderno":"NOPE"}`, "E9500", ""},
		{"issued order", `{"orderno":"OK-1"}`, "E0000", "无需再重试"},
		{"failed order", `{"orderno":"F-1"}`, "E0000", "重试成功"},
		{"issuing order", `{"orderno":"F-1"}`, "E0000", "开票中"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, nnCall{method: nnReInvoice, body: tt.body}); r.Code != tt.code || !strings.Contains(r.Describe, tt.msg) {
				t.Fatalf("%q %q, want %q containing %q", r.Code, r.Describe, tt.code, tt.msg)
			}
		})
	}
	if s := query("F-1"); s["status"] != "2" {
		t.Fatalf("reissued order: %v, want status 2", s)
	}
	st := e.sb.Stats().Sellers[nnSeller]
	if st["F-1"].Issuances != 1 || st["OK-1"].Issuances != 1 {
		t.Errorf("issuances F-1 %d OK-1 %d, want 1 and 1", st["F-1"].Issuances, st["OK-1"].Issuances)
	}
	for i := 3; i <= 20; i++ {
		if r := e.do(t, nnCall{method: nnReInvoice, body: `{"orderno":"F-1"}`}); r.Code != "E0000" {
			t.Fatalf("reissue %d: %s", i, r.Code)
		}
	}
	if r := e.do(t, nnCall{method: nnReInvoice, body: `{"orderno":"F-1"}`}); r.Code != "E9613" {
		t.Fatalf("reissue 21: %s, want E9613", r.Code)
	}
}

func TestNuonuoRedConfirm(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{RedConfirmSteps: 2}})
	form := func(mutate func(map[string]any)) string {
		m := map[string]any{
			"billId": "B-1", "blueInvoiceLine": "pc", "applySource": "0", "blueElecInvoiceNumber": "26332000000000000001",
			"sellerTaxNo": nnSeller, "sellerName": "销方", "buyerTaxNo": "91440101MA5APD8X8J", "buyerName": "购方",
			"redReason": "2", "orderNo": "RED-1",
			"detail": []any{map[string]any{"blueDetailIndex": "1", "goodsName": "服务", "taxRate": "0.06", "goodsCode": "3049900000000000000",
				"taxExcludedAmount": "-5.00", "taxAmount": "-0.30"}},
		}
		if mutate != nil {
			mutate(m)
		}
		return nnJSON(t, m)
	}
	for _, tt := range []struct {
		name   string
		mutate func(map[string]any)
		code   string
	}{
		{"no buyer name", func(m map[string]any) { delete(m, "buyerName") }, "E4000"},
		{"apply source 2", func(m map[string]any) { m["applySource"] = "2" }, "E4000"},
		{"red reason 5", func(m map[string]any) { m["redReason"] = "5" }, "E4000"},
		{"billId of 33", func(m map[string]any) { m["billId"] = strings.Repeat("b", 33) }, "E4000"},
		{"other seller", func(m map[string]any) { m["sellerTaxNo"] = "91330106MA2AYNWD8M" }, "E9302"},
		{"short blue number", func(m map[string]any) { m["blueElecInvoiceNumber"] = "123" }, "E9102"},
		// Seed 002 requires these four on every detail line.
		{"line without blueDetailIndex", func(m map[string]any) { delete(m["detail"].([]any)[0].(map[string]any), "blueDetailIndex") }, "E4000"},
		{"line without goodsName", func(m map[string]any) { delete(m["detail"].([]any)[0].(map[string]any), "goodsName") }, "E4000"},
		{"line without taxRate", func(m map[string]any) { delete(m["detail"].([]any)[0].(map[string]any), "taxRate") }, "E4000"},
		{"line without goodsCode", func(m map[string]any) { delete(m["detail"].([]any)[0].(map[string]any), "goodsCode") }, "E4000"},
		// Seed 002: blueDetailIndex is the blue invoice's line number (at
		// most 5 characters), and 部分冲红明细序号必须和原蓝票顺序保持一致.
		{"line number not a number", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["blueDetailIndex"] = "a" }, "E4000"},
		{"line number of 6 digits", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["blueDetailIndex"] = "123456" }, "E4000"},
		{"lines out of the blue invoice's order", func(m map[string]any) {
			first := m["detail"].([]any)[0].(map[string]any)
			second := map[string]any{}
			for k, v := range first {
				second[k] = v
			}
			first["blueDetailIndex"] = "2"
			m["detail"] = append(m["detail"].([]any), second)
		}, "E4000"},
		// Seed 002: goodsName has at most 90 characters, goodsCode 19
		// (PROVIDERS.md: a goods code has 19 digits).
		{"line with a goods name of 91 characters", func(m map[string]any) {
			m["detail"].([]any)[0].(map[string]any)["goodsName"] = strings.Repeat("货", 91)
		}, "E4000"},
		{"line with a goods code of 18 digits", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["goodsCode"] = "304990000000000000" }, "E4000"},
		{"line with a goods code of 20 digits", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["goodsCode"] = "30499000000000000000" }, "E4000"},
		// Seed 002: 单价(不含税)为正数; the amount and the tax 带负号.
		{"line with a price of zero", func(m map[string]any) {
			l := m["detail"].([]any)[0].(map[string]any)
			l["num"], l["taxExcludedPrice"] = "-1", "0"
		}, "E4000"},
		{"line with a positive amount", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxExcludedAmount"] = "5.00" }, "E4000"},
		{"line with an amount of zero", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxExcludedAmount"] = "-0.00" }, "E4000"},
		{"line with a positive tax", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxAmount"] = "0.30" }, "E4000"},
		// Seed 002 marks taxExcludedAmount and taxAmount optional; without
		// the amount, num and taxExcludedPrice stand in for it.
		{"line without an amount, num or price", func(m map[string]any) { delete(m["detail"].([]any)[0].(map[string]any), "taxExcludedAmount") }, "E4000"},
		{"line without a tax, whose amount is positive", func(m map[string]any) {
			l := m["detail"].([]any)[0].(map[string]any)
			delete(l, "taxAmount")
			l["taxExcludedAmount"] = "5.00"
		}, "E4000"},
		{"line whose num and price make a positive amount", func(m map[string]any) {
			l := m["detail"].([]any)[0].(map[string]any)
			delete(l, "taxExcludedAmount")
			l["num"], l["taxExcludedPrice"] = "1", "5"
		}, "E4000"},
		// Seed 002: num, taxExcludedPrice, taxExcludedAmount and
		// taxAmount have at most 16 characters, the minus sign included
		// (带负号), and the amounts two decimals (精确到小数点后面两位).
		{"line with an amount of 17 characters", func(m map[string]any) {
			m["detail"].([]any)[0].(map[string]any)["taxExcludedAmount"] = "-0000000000005.00"
		}, "E4000"},
		{"line with a tax of 17 characters", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxAmount"] = "-0000000000000.30" }, "E4000"},
		{"line with a num of 17 characters", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["num"] = "-0000000000000001" }, "E4000"},
		{"line with a price of 17 characters", func(m map[string]any) {
			m["detail"].([]any)[0].(map[string]any)["taxExcludedPrice"] = "00000000000005.00"
		}, "E4000"},
		{"line with an amount of 3 decimals", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxExcludedAmount"] = "-5.000" }, "E4000"},
		{"line with a tax of 3 decimals", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxAmount"] = "-0.300" }, "E4000"},
		// Seed 002 gives taxRate a maximum length of 10, and a line's rate
		// is a VAT rate: 0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09 or 0.13.
		{"line with a rate outside the set", func(m map[string]any) {
			l := m["detail"].([]any)[0].(map[string]any)
			l["taxRate"], l["taxAmount"] = "0.07", "-0.35"
		}, "E4000"},
		{"line with a rate of 11 characters", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxRate"] = "0.060000000" }, "E4000"},
		{"line with a rate not a number", func(m map[string]any) { m["detail"].([]any)[0].(map[string]any)["taxRate"] = "6%" }, "E4000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := func(m map[string]any) { m["orderNo"] = "RED-BAD"; tt.mutate(m) }
			if r := e.do(t, nnCall{method: nnSaveRed, body: form(bad)}); r.Code != tt.code {
				t.Fatalf("%q %q, want %q", r.Code, r.Describe, tt.code)
			}
		})
	}

	r := e.do(t, nnCall{method: nnSaveRed, body: form(nil)})
	var formID string
	if err := json.Unmarshal(r.Result, &formID); r.Code != "E0000" || err != nil || formID == "" {
		t.Fatalf("save: %s %s", r.Code, r.Result)
	}
	if again := e.do(t, nnCall{method: nnSaveRed, body: form(nil)}); string(again.Result) != string(r.Result) {
		t.Fatalf("same billId gave form %s, want %s", again.Result, r.Result)
	}
	status := func(body string) map[string]any {
		q := e.do(t, nnCall{method: nnQueryRed, body: body})
		var page struct {
			Total int              `json:"total"`
			List  []map[string]any `json:"list"`
		}
		if err := json.Unmarshal(q.Result, &page); err != nil || q.Code != "E0000" {
			t.Fatalf("query: %s %s", q.Code, q.Result)
		}
		if page.Total != len(page.List) || len(page.List) > 1 {
			t.Fatalf("page %+v", page)
		}
		if len(page.List) == 0 {
			return nil
		}
		return page.List[0]
	}
	if got := status(`{"identity":"0","billId":"NOPE"}`); got != nil {
		t.Fatalf("unknown form listed: %v", got)
	}
	if q := e.do(t, nnCall{method: nnQueryRed, body: `{"billId":"B-1"}`}); q.Code != "E4000" {
		t.Fatalf("query without identity: %s", q.Code)
	}
	var seen []string
	for range 5 {
		f := status(`{"identity":"0","billId":"B-1"}`)
		seen = append(seen, f["billStatus"].(string))
	}
	if want := "15 15 02 02 04"; strings.Join(seen, " ") != want {
		t.Fatalf("statuses %v, want %s", seen, want)
	}
	f := status(`{"identity":"0","billNo":"` + formID + `"}`)
	if f["billNo"] != formID || f["invoiceSerialNum"] == nil || f["orderNo"] != "RED-1" || f["openStatus"] != "1" {
		t.Fatalf("confirmed form %v: want the red invoice's serial and order", f)
	}
	q := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["RED-1"]}`})
	if q.Code != "E0000" || !strings.Contains(string(q.Result), `"orderAmount":"-5.30"`) {
		t.Fatalf("red invoice: %s %s", q.Code, q.Result)
	}
	if st := e.sb.Stats().Sellers[nnSeller]["RED-1"]; st.Submissions != 2 || st.Issuances != 1 || st.Invoices != 1 {
		t.Errorf("stats %+v, want 2 submissions and 1 issuance", st)
	}
}

func TestNuonuoFailPartIssuesTheRestThenReInvoiceCompletesIt(t *testing.T) {
	// 1000.01 + 60.00 = 1060.01 over 400.00: three invoices, the last taking
	// the remainder (333.34, 333.34, 333.33 excluding tax; 20.00 tax each).
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1, SplitLimit: decimal.RequireFromString("400")}})
	o := nnOrder("FP-1")
	o["invoiceDetail"] = []any{nnLine("技术服务费", "0", "1", "1000.01", "60.00", "1060.01")}
	o["remark"] = "加急 SANDBOX:FAIL-PART"
	if r := e.submit(t, o); r.Code != "E0000" {
		t.Fatalf("submit: %s %s", r.Code, r.Describe)
	}
	query := func(no string) ([]map[string]any, string) {
		t.Helper()
		r := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["` + no + `"]}`})
		var entries []map[string]any
		if err := json.Unmarshal(r.Result, &entries); err != nil || r.Code != "E0000" {
			t.Fatalf("query %s: %s %s", no, r.Code, r.Result)
		}
		return entries, string(r.Result)
	}
	statuses := func(entries []map[string]any) string {
		var s []string
		for _, e := range entries {
			s = append(s, e["status"].(string))
		}
		return strings.Join(s, " ")
	}
	stats := func(want sandbox.OrderStats) {
		t.Helper()
		st := e.sb.Stats()
		want.Provider = "nuonuo"
		if got := st.Sellers[nnSeller]["FP-1"]; got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}
		if len(st.Duplicates) != 0 {
			t.Errorf("duplicates %v", st.Duplicates)
		}
	}
	// Accepted: one issuance of the two invoices that will be issued.
	stats(sandbox.OrderStats{Submissions: 1, Issuances: 1, Invoices: 2})

	if entries, raw := query("FP-1"); statuses(entries) != "20" || entries[0]["orderAmount"] != "1060.01" {
		t.Fatalf("first query: %s, want one entry 20 with the order's amounts", raw)
	}
	failed, raw := query("FP-1")
	t.Logf("partial failure: %s", raw)
	if statuses(failed) != "2 2 22" {
		t.Fatalf("after PendingQueries: %s, want statuses 2 2 22", raw)
	}
	for i, inv := range failed[:2] {
		if len(inv["allElectronicInvoiceNumber"].(string)) != 20 || inv["invoiceNo"] == nil || inv["pdfUrl"] == nil ||
			inv["exTaxAmount"] != "333.34" || inv["taxAmount"] != "20.00" || inv["orderAmount"] != "353.34" || inv["failCause"] != nil {
			t.Errorf("issued invoice %d: %v", i+1, inv)
		}
	}
	last := failed[2]
	if cause, _ := last["failCause"].(string); cause != "开票失败: 税控设备离线 (SANDBOX:FAIL-PART)" {
		t.Errorf("failCause %q", cause)
	}
	if last["exTaxAmount"] != "333.33" || last["taxAmount"] != "20.00" || last["orderAmount"] != "353.33" {
		t.Errorf("failed invoice's amounts: %v, want its share 333.33 + 20.00", last)
	}
	for _, k := range []string{"invoiceCode", "invoiceNo", "allElectronicInvoiceNumber", "invoiceTime", "pdfUrl"} {
		if v, ok := last[k]; ok {
			t.Errorf("failed invoice has %s %v", k, v)
		}
	}
	if again, raw := query("FP-1"); statuses(again) != "2 2 22" {
		t.Fatalf("a failed order stays failed: %s", raw)
	}
	stats(sandbox.OrderStats{Submissions: 1, Queries: 3, Issuances: 1, Invoices: 2})

	if r := e.do(t, nnCall{method: nnReInvoice, body: `{"orderno":"FP-1"}`}); r.Code != "E0000" || !strings.Contains(r.Describe, "重试成功") {
		t.Fatalf("reInvoice: %s %s", r.Code, r.Describe)
	}
	// The failed invoice is issued: the issuance is completed, not repeated.
	stats(sandbox.OrderStats{Submissions: 2, Queries: 3, Issuances: 1, Invoices: 3})

	issuing, raw := query("FP-1")
	if statuses(issuing) != "2 2 20" || issuing[2]["failCause"] != nil || issuing[2]["orderAmount"] != "353.33" {
		t.Fatalf("reissuing: %s, want the issued invoices and the failed one issuing", raw)
	}
	issued, raw := query("FP-1")
	t.Logf("after reInvoice: %s", raw)
	if statuses(issued) != "2 2 2" {
		t.Fatalf("after reInvoice: %s, want three invoices issued", raw)
	}
	for i := range 2 {
		if fmt.Sprint(issued[i]) != fmt.Sprint(failed[i]) {
			t.Errorf("invoice %d changed:\n%v\n%v", i+1, failed[i], issued[i])
		}
	}
	seen := map[string]bool{}
	var ex, tax, total decimal.Decimal
	for i, inv := range issued {
		no, _ := inv["allElectronicInvoiceNumber"].(string)
		pdf, _ := inv["pdfUrl"].(string)
		if len(no) != 20 || pdf == "" || seen[no] || seen[pdf] {
			t.Errorf("invoice %d: number %q pdfUrl %q (each its own)", i+1, no, pdf)
		}
		seen[no], seen[pdf] = true, true
		ex = ex.Add(decimal.RequireFromString(inv["exTaxAmount"].(string)))
		tax = tax.Add(decimal.RequireFromString(inv["taxAmount"].(string)))
		total = total.Add(decimal.RequireFromString(inv["orderAmount"].(string)))
	}
	if ex.StringFixed(2) != "1000.01" || tax.StringFixed(2) != "60.00" || total.StringFixed(2) != "1060.01" {
		t.Errorf("invoices add up to %s + %s = %s, want 1000.01 + 60.00 = 1060.01", ex, tax, total)
	}
	if issued[2]["orderAmount"] != "353.33" {
		t.Errorf("reissued invoice: %v, want the failed invoice's share", issued[2])
	}
	resp, err := http.Get(issued[2]["pdfUrl"].(string))
	if err != nil {
		t.Fatal(err)
	}
	pdf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(pdf, []byte(issued[2]["allElectronicInvoiceNumber"].(string))) || !bytes.Contains(pdf, []byte("Invoice 3 of 3")) {
		t.Errorf("reissued invoice's PDF %.80q", pdf)
	}
	if r := e.do(t, nnCall{method: nnReInvoice, body: `{"orderno":"FP-1"}`}); r.Code != "E0000" || !strings.Contains(r.Describe, "无需再重试") {
		t.Fatalf("reInvoice of the issued order: %s %s", r.Code, r.Describe)
	}
	stats(sandbox.OrderStats{Submissions: 3, Queries: 5, Issuances: 1, Invoices: 3})
	if st := e.sb.Stats(); st.Issuances != 1 || st.Invoices != 3 {
		t.Errorf("totals: %d issuances of %d invoices, want 1 of 3", st.Issuances, st.Invoices)
	}
}

func TestNuonuoFailMagicsAreToldApart(t *testing.T) {
	// Under SplitLimit an order is one invoice: SANDBOX:FAIL-PART fails it
	// whole, as SANDBOX:FAIL does, and reInvoice (by fpqqlsh) issues it as
	// the order's one issuance. SANDBOX:FAIL beside SANDBOX:FAIL-PART fails
	// a split order whole.
	e := newNuonuoEnv(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.RequireFromString("60")}})
	tests := []struct {
		orderNo, remark string
		split           bool
		statuses, cause string
		afterSubmit     sandbox.OrderStats
	}{
		{"ONE-1", "SANDBOX:FAIL-PART", false, "22", "(SANDBOX:FAIL-PART)", sandbox.OrderStats{}},
		{"BOTH-1", "SANDBOX:FAIL-PART SANDBOX:FAIL", true, "22", "(SANDBOX:FAIL)", sandbox.OrderStats{}},
		{"PART-1", "SANDBOX:FAIL-PARTS", true, "2 22", "(SANDBOX:FAIL-PART)", sandbox.OrderStats{Issuances: 1, Invoices: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.orderNo, func(t *testing.T) {
			o := nnOrder(tt.orderNo)
			if !tt.split {
				o["invoiceDetail"] = []any{nnLine("技术服务费", "0", "1", "50.00", "3.00", "53.00")}
			}
			o["remark"] = tt.remark
			r := e.submit(t, o)
			var res struct {
				InvoiceSerialNum string `json:"invoiceSerialNum"`
			}
			if err := json.Unmarshal(r.Result, &res); r.Code != "E0000" || err != nil {
				t.Fatalf("submit: %s %s", r.Code, r.Result)
			}
			tt.afterSubmit.Provider, tt.afterSubmit.Submissions = "nuonuo", 1
			if st := e.sb.Stats().Sellers[nnSeller][tt.orderNo]; st != tt.afterSubmit {
				t.Errorf("stats after submit %+v, want %+v", st, tt.afterSubmit)
			}
			query := func() []map[string]any {
				q := e.do(t, nnCall{method: nnQuery, body: `{"serialNos":["` + res.InvoiceSerialNum + `"]}`})
				var entries []map[string]any
				if err := json.Unmarshal(q.Result, &entries); err != nil {
					t.Fatalf("query: %s %s", q.Code, q.Result)
				}
				return entries
			}
			entries := query()
			var got []string
			for _, e := range entries {
				got = append(got, e["status"].(string))
			}
			last, _ := entries[len(entries)-1]["failCause"].(string)
			if strings.Join(got, " ") != tt.statuses || !strings.HasSuffix(last, tt.cause) {
				t.Fatalf("entries %v, want statuses %s and a failCause ending %s", entries, tt.statuses, tt.cause)
			}
			if r := e.do(t, nnCall{method: nnReInvoice, body: `{"fpqqlsh":"` + res.InvoiceSerialNum + `"}`}); r.Code != "E0000" || !strings.Contains(r.Describe, "重试成功") {
				t.Fatalf("reInvoice: %s %s", r.Code, r.Describe)
			}
			entries = query()
			for _, e := range entries {
				if e["status"] != "2" {
					t.Fatalf("after reInvoice: %v", entries)
				}
			}
			if st := e.sb.Stats().Sellers[nnSeller][tt.orderNo]; st.Issuances != 1 || st.Invoices != len(entries) {
				t.Errorf("stats %+v: want one issuance of %d invoices", st, len(entries))
			}
		})
	}
	if d := e.sb.Stats().Duplicates; len(d) != 0 {
		t.Errorf("duplicates %v", d)
	}
}

// 21 lines each 0.06 off are 1.26 off together: within the invoice's 1.27.
func TestNuonuoInvoiceTaxToleranceHolds(t *testing.T) {
	e := newNuonuoEnv(t, sandbox.Config{})
	o := nnOrder("TOL-1")
	var lines []any
	for range 21 {
		lines = append(lines, nnLine("技术服务费", "0", "1", "10.00", "0.54", "10.54"))
	}
	o["invoiceDetail"] = lines
	if r := e.submit(t, o); r.Code != "E0000" {
		t.Fatalf("code %q %q, want E0000", r.Code, r.Describe)
	}
}

// TestNuonuoTaxesTheDifference: under deduction taxation (差额征税, seed
// 001's deduction, 扣除额) the rate applies to the amount less the
// deduction: 1000.00 with 500.00 deducted at 6% is taxed 500.00 × 0.06 /
// 1.06 = 28.30, and taxExcludedAmount is 1000.00 − 28.30 = 971.70, so
// (971.70 − 500.00) × 0.06 = 28.30 is what E9131 holds the tax to. A tax
// left to the platform (price and num only) is computed the same way, and
// a deduction of "0" is none. A deduction may not be larger than the
// amount with tax. TestNuonuoDeductionLimits has 0.00, which deducts
// nothing.
func TestNuonuoTaxesTheDifference(t *testing.T) {
	type line = map[string]any
	tests := []struct {
		name   string
		line   line
		code   string
		msg    string
		taxNow string // the order's tax once issued, when accepted
	}{
		{"seed 001's deduction line", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "500.00",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "971.70", "tax": "28.30"}, "E0000", "", "28.30"},
		{"the tax on the whole amount", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "500.00",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "943.40", "tax": "56.60"}, "E9131", "金额*税率-税额大于0.06", ""},
		{"deduction 0 is none", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "0",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "943.40", "tax": "56.60"}, "E0000", "", "56.60"},
		{"tax from price with tax and num", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "500.00"}, "E0000", "", "28.30"},
		{"tax from price without tax and num", line{"withTaxFlag": "0", "price": "971.70", "num": "1", "deduction": "500.00"}, "E0000", "", "28.30"},
		// A deduction larger than the amount with tax leaves a negative
		// amount to tax; at rate 0 a tax of 0.00 agrees with it.
		{"deduction larger than the amount at rate 0", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "1000.01", "taxRate": "0",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "1000.00", "tax": "0.00"}, "E4000", "deduction不能大于含税金额,第1行", ""},
		// A deduction is taken off the amount: a negative one would add to
		// it, and the platform computes a tax on more than the line's
		// amount from it. Seed 001 gives no code of its own: E4000.
		{"negative deduction", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "-500.00"}, "E4000", "deduction不能为负数,第1行", ""},
		{"negative deduction at rate 0", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "-500.00", "taxRate": "0",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "1000.00", "tax": "0.00"}, "E4000", "deduction不能为负数,第1行", ""},
		{"deduction of the whole amount", line{"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": "1000.00",
			"taxIncludedAmount": "1000.00", "taxExcludedAmount": "1000.00", "tax": "0.00"}, "E0000", "", "0.00"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNuonuoEnv(t, sandbox.Config{})
			orderNo := fmt.Sprintf("DED-%d", i)
			o := nnOrder(orderNo)
			l := line{"goodsName": "旅游服务", "goodsCode": "3070401000000000000", "taxRate": "0.06", "invoiceLineProperty": "0"}
			for k, v := range tt.line {
				l[k] = v
			}
			o["invoiceDetail"] = []any{l}
			r := e.submit(t, o)
			if r.Code != tt.code || !strings.Contains(r.Describe, tt.msg) {
				t.Fatalf("code %q %q, want %q containing %q", r.Code, r.Describe, tt.code, tt.msg)
			}
			if tt.taxNow == "" {
				return
			}
			q := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["` + orderNo + `"]}`})
			var entries []map[string]any
			if err := json.Unmarshal(q.Result, &entries); err != nil || len(entries) != 1 {
				t.Fatalf("query %s %s: %v", q.Code, q.Result, err)
			}
			if got := entries[0]; got["status"] != "2" || got["taxAmount"] != tt.taxNow || got["orderAmount"] != "1000.00" {
				t.Errorf("entry %v, want status 2, taxAmount %s and orderAmount 1000.00", got, tt.taxNow)
			}
		})
	}
}

// TestNuonuoDeductionLimits: seed 001's deduction (扣除额) is "差额征收时填写，
// 目前只支持填写一项。注意：当传0、空或字段不传时，都表示非差额征税；传0.00才表示差
// 额征税：0.00（全电发票暂不支持）". One line of an invoice at most is taxed on
// the difference, and 0.00, deduction taxation with nothing deducted, is not
// taken on a fully digital invoice (invoiceLine bs, pc, es or ec); "0" is no
// deduction taxation, on any line and any invoice. The seed gives neither
// limit a code of its own: E4000.
func TestNuonuoDeductionLimits(t *testing.T) {
	type line = map[string]any
	// deducted is 1000.00 with tax at 6%, 500.00 deducted: tax 28.30.
	deducted := func(ded string) line {
		return line{"goodsName": "旅游服务", "goodsCode": "3070401000000000000", "taxRate": "0.06", "invoiceLineProperty": "0",
			"withTaxFlag": "1", "price": "1000", "num": "1", "deduction": ded}
	}
	// whole is 1000.00 with tax at 6% taxed on the whole amount: tax 56.60.
	whole := func(ded string) line {
		l := deducted(ded)
		l["taxIncludedAmount"], l["taxExcludedAmount"], l["tax"] = "1000.00", "943.40", "56.60"
		return l
	}
	tests := []struct {
		name        string
		invoiceLine string
		lines       []any
		code        string
		msg         string
		taxNow      string // the order's tax once issued, when accepted
	}{
		{"deductions on two lines", "p", []any{deducted("500.00"), deducted("500.00")}, "E4000", "第2行", ""},
		{"deductions on two lines, one of 0.00", "p", []any{deducted("500.00"), whole("0.00")}, "E4000", "第2行", ""},
		{"a deduction and a line of 0", "pc", []any{deducted("500.00"), whole("0")}, "E0000", "", "84.90"},
		{"0 on two lines", "pc", []any{whole("0"), whole("0")}, "E0000", "", "113.20"},
		{"0.00 on a tax-control invoice deducts nothing", "p", []any{whole("0.00")}, "E0000", "", "56.60"},
		{"0.00 on pc", "pc", []any{whole("0.00")}, "E4000", "第1行", ""},
		{"0.00 on bs", "bs", []any{whole("0.00")}, "E4000", "第1行", ""},
		{"0.00 on es", "es", []any{whole("0.00")}, "E4000", "第1行", ""},
		{"0.00 on ec", "ec", []any{whole("0.00")}, "E4000", "第1行", ""},
		{"500.00 on pc", "pc", []any{deducted("500.00")}, "E0000", "", "28.30"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newNuonuoEnv(t, sandbox.Config{})
			orderNo := fmt.Sprintf("DEDL-%d", i)
			o := nnOrder(orderNo)
			o["invoiceLine"], o["invoiceDetail"] = tt.invoiceLine, tt.lines
			r := e.submit(t, o)
			if r.Code != tt.code || !strings.Contains(r.Describe, tt.msg) || (r.Code == "E4000" && !strings.Contains(r.Describe, "deduction")) {
				t.Fatalf("code %q %q, want %q naming deduction and containing %q", r.Code, r.Describe, tt.code, tt.msg)
			}
			st := e.sb.Stats().Sellers[nnSeller][orderNo]
			if tt.taxNow == "" {
				if st.Submissions != 1 || st.Issuances != 0 {
					t.Errorf("stats %+v: a refused order counts one submission and no issuance", st)
				}
				return
			}
			q := e.do(t, nnCall{method: nnQuery, body: `{"orderNos":["` + orderNo + `"]}`})
			var entries []map[string]any
			if err := json.Unmarshal(q.Result, &entries); err != nil || len(entries) != 1 {
				t.Fatalf("query %s %s: %v", q.Code, q.Result, err)
			}
			if got := entries[0]; got["status"] != "2" || got["taxAmount"] != tt.taxNow {
				t.Errorf("entry %v, want status 2 and taxAmount %s", got, tt.taxNow)
			}
		})
	}
}
