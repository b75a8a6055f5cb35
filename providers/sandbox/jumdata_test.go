package sandbox_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// Every helper here is prefixed jd: the package's tests share one namespace
// with the Nuonuo side's.

var jdCST = time.FixedZone("CST", 8*60*60)

// jdClock is a settable clock shared by a test and the sandbox.
type jdClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *jdClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *jdClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jdEnv is a sandbox served over real HTTP.
type jdEnv struct {
	t     testing.TB
	sb    *sandbox.Server
	url   string
	clock *jdClock
}

func jdStart(tb testing.TB, cfg sandbox.Config) *jdEnv {
	tb.Helper()
	clock := &jdClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, jdCST)}
	cfg.Now = clock.Now
	sb := sandbox.New(cfg)
	ts := httptest.NewServer(sb.Handler())
	tb.Cleanup(ts.Close)
	sb.SetBaseURL(ts.URL)
	return &jdEnv{t: tb, sb: sb, url: ts.URL, clock: clock}
}

// jdAnswer is jumdata's envelope as a test reads it.
type jdAnswer struct {
	Code   int             `json:"code"`
	Msg    string          `json:"msg"`
	Charge bool            `json:"charge"`
	TaskNo string          `json:"taskNo"`
	Data   json.RawMessage `json:"data"`
}

func jdSign(appID, secret, ts string) string {
	sum := sha256.Sum256([]byte(appID + secret + ts))
	return hex.EncodeToString(sum[:])
}

// jdParams are the common and login parameters of the default seller,
// signed at the sandbox's time.
func (e *jdEnv) jdParams() url.Values {
	ts := strconv.FormatInt(e.clock.Now().UnixMilli(), 10)
	return url.Values{
		"appId":     {sandbox.DefaultJumdataAppID},
		"timestamp": {ts},
		"sign":      {jdSign(sandbox.DefaultJumdataAppID, sandbox.DefaultJumdataSecret, ts)},
		"token":     {sandbox.DefaultJumdataToken},
		"nsrsbh":    {sandbox.DefaultJumdataSeller},
		"dq":        {sandbox.DefaultJumdataDQ},
		"gryhm":     {sandbox.DefaultJumdataGryhm},
	}
}

// call posts business parameters (merged over the default ones) to an
// endpoint.
func (e *jdEnv) call(endpoint string, business url.Values) jdAnswer {
	e.t.Helper()
	p := e.jdParams()
	for k, v := range business {
		p[k] = v
	}
	return e.post(endpoint, "application/x-www-form-urlencoded", p.Encode())
}

func (e *jdEnv) post(endpoint, contentType, body string) jdAnswer {
	e.t.Helper()
	resp, err := http.Post(e.url+"/tax/v3/makeout/"+endpoint, contentType, strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("post %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("post %s: HTTP %d: %s", endpoint, resp.StatusCode, b)
	}
	var a jdAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		e.t.Fatalf("post %s: answer %s: %v", endpoint, b, err)
	}
	return a
}

func jdWant(tb testing.TB, a jdAnswer, code int, msgHas string) {
	tb.Helper()
	if a.Code != code || !strings.Contains(a.Msg, msgHas) {
		tb.Fatalf("answer %d %q (data %s), want %d with %q", a.Code, a.Msg, a.Data, code, msgHas)
	}
}

// jdDoc is a valid invoiceData: a discounted chair and a service.
func jdDoc(orderNo string) map[string]any {
	return map[string]any{
		"ddh": orderNo, "fppzdm": "02", "xsfnsrsbh": sandbox.DefaultJumdataSeller,
		"gmfnsrsbh": "91440101MA5APD8X8J", "gmfmc": "杭州示例科技有限公司", "kpr": "张三",
		"hjje": json.Number("1000.00"), "hjse": json.Number("123.00"), "jshj": json.Number("1123.00"),
		"mxlist": []map[string]any{
			{"xh": 1, "fphxz": "2", "spmc": "办公椅", "spbm": "1050201990000000000", "dw": "把", "spsl": json.Number("2"), "dj": json.Number("565"), "hsbz": "Y", "je": json.Number("1000.00"), "sl": json.Number("0.13"), "se": json.Number("130.00")},
			{"xh": 2, "fphxz": "1", "spmc": "办公椅", "spbm": "1050201990000000000", "hsbz": "Y", "je": json.Number("-100.00"), "sl": json.Number("0.13"), "se": json.Number("-13.00")},
			{"xh": 3, "fphxz": "0", "spmc": "技术服务费", "spbm": "3040201990000000000", "spsl": json.Number("3"), "dj": json.Number("33.33333333"), "hsbz": "N", "je": json.Number("100.00"), "sl": json.Number("0.06"), "se": json.Number("6.00")},
		},
	}
}

// jdDecode reads JSON with numbers as json.Number: amounts are never
// compared as floats.
func jdDecode(tb testing.TB, raw []byte, v any) {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %s: %v", raw, err)
	}
}

func jdJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// submit posts a blue-invoice/submit.
func (e *jdEnv) submit(taskID string, doc any) jdAnswer {
	e.t.Helper()
	return e.call("blue-invoice/submit", url.Values{"taskId": {taskID}, "invoiceData": {jdJSON(e.t, doc)}})
}

// issued submits an order until it is issued and returns fphm and kprq.
func (e *jdEnv) issued(taskID string, doc any) (fphm, kprq string) {
	e.t.Helper()
	for range 20 {
		a := e.submit(taskID, doc)
		if a.Code == 200 {
			var d struct{ Fphm, Kprq string }
			if err := json.Unmarshal(a.Data, &d); err != nil || len(d.Fphm) != 20 {
				e.t.Fatalf("200 data %s: %v", a.Data, err)
			}
			return d.Fphm, d.Kprq
		}
		jdWant(e.t, a, 202, "")
	}
	e.t.Fatal("never issued")
	return "", ""
}

func TestJumdataVerify(t *testing.T) {
	e := jdStart(t, sandbox.Config{})
	query := url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}}
	tests := []struct {
		name     string
		endpoint string
		edit     func(p url.Values)
		code     int
		msgHas   string
	}{
		{"valid", "blue-invoice/query", func(url.Values) {}, 200, ""},
		{"wrong sign", "blue-invoice/query", func(p url.Values) { p.Set("sign", strings.Repeat("0", 64)) }, 400, "签名错误"},
		{"upper-case sign", "blue-invoice/query", func(p url.Values) { p.Set("sign", strings.ToUpper(p.Get("sign"))) }, 400, "签名错误"},
		{"sign over another secret", "blue-invoice/query", func(p url.Values) {
			p.Set("sign", jdSign(p.Get("appId"), "other-secret", p.Get("timestamp")))
		}, 400, "签名错误"},
		{"missing sign", "blue-invoice/query", func(p url.Values) { p.Del("sign") }, 400, "公共参数"},
		{"unknown appId", "blue-invoice/query", func(p url.Values) {
			p.Set("appId", "someone-else")
			p.Set("sign", jdSign("someone-else", sandbox.DefaultJumdataSecret, p.Get("timestamp")))
		}, 400, "appId"},
		{"timestamp in seconds", "blue-invoice/query", func(p url.Values) {
			ts := strconv.FormatInt(e.clock.Now().Unix(), 10)
			p.Set("timestamp", ts)
			p.Set("sign", jdSign(p.Get("appId"), sandbox.DefaultJumdataSecret, ts))
		}, 400, "timestamp"},
		{"stale timestamp", "blue-invoice/query", func(p url.Values) {
			ts := strconv.FormatInt(e.clock.Now().Add(-11*time.Minute).UnixMilli(), 10)
			p.Set("timestamp", ts)
			p.Set("sign", jdSign(p.Get("appId"), sandbox.DefaultJumdataSecret, ts))
		}, 400, "timestamp"},
		{"future timestamp", "blue-invoice/query", func(p url.Values) {
			ts := strconv.FormatInt(e.clock.Now().Add(11*time.Minute).UnixMilli(), 10)
			p.Set("timestamp", ts)
			p.Set("sign", jdSign(p.Get("appId"), sandbox.DefaultJumdataSecret, ts))
		}, 400, "timestamp"},
		{"timestamp within skew", "blue-invoice/query", func(p url.Values) {
			ts := strconv.FormatInt(e.clock.Now().Add(-9*time.Minute).UnixMilli(), 10)
			p.Set("timestamp", ts)
			p.Set("sign", jdSign(p.Get("appId"), sandbox.DefaultJumdataSecret, ts))
		}, 200, ""},
		{"wrong token", "blue-invoice/query", func(p url.Values) { p.Set("token", "expired") }, 303, "token"},
		{"unknown seller", "blue-invoice/query", func(p url.Values) { p.Set("nsrsbh", "91110000000000000X") }, 302, "登录"},
		{"wrong gryhm", "blue-invoice/query", func(p url.Values) { p.Set("gryhm", "13900000000") }, 301, "不存在"},
		{"wrong dq", "blue-invoice/query", func(p url.Values) { p.Set("dq", "110000") }, 301, "不存在"},
		{"missing dq", "blue-invoice/query", func(p url.Values) { p.Del("dq") }, 400, "dq"},
		{"unknown endpoint", "blue-invoice/cancel", func(url.Values) {}, 404, "接口地址不正确"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.jdParams()
			for k, v := range query {
				p[k] = v
			}
			tt.edit(p)
			jdWant(t, e.post(tt.endpoint, "application/x-www-form-urlencoded", p.Encode()), tt.code, tt.msgHas)
		})
	}
	t.Run("parameters in the query string are not read", func(t *testing.T) {
		p := e.jdParams()
		for k, v := range query {
			p[k] = v
		}
		resp, err := http.Post(e.url+"/tax/v3/makeout/blue-invoice/query?"+p.Encode(), "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a jdAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		jdWant(t, a, 400, "公共参数")
	})
	t.Run("JSON body", func(t *testing.T) {
		jdWant(t, e.post("blue-invoice/query", "application/json", `{"appId":"x"}`), 400, "x-www-form-urlencoded")
	})
	t.Run("any seller", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{AnySeller: true}})
		jdWant(t, e.call("blue-invoice/query", url.Values{"nsrsbh": {"91110000000000000X"}, "dq": {"1"}, "gryhm": {"2"},
			"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}}), 200, "")
	})
}

func TestJumdataInvoiceDataChecks(t *testing.T) {
	e := jdStart(t, sandbox.Config{})
	line := func(d map[string]any, i int) map[string]any { return d["mxlist"].([]map[string]any)[i] }
	tests := []struct {
		name   string
		edit   func(d map[string]any)
		raw    string // sent instead of the edited document when set
		msgHas string
	}{
		{"not JSON", nil, `{"ddh":`, "invoiceData 不是有效"},
		{"trailing data", nil, jdJSON(t, jdDoc("X")) + `{}`, "trailing"},
		{"unknown field", func(d map[string]any) { d["orderNo"] = "X" }, "", "unknown field"},
		{"missing ddh", func(d map[string]any) { delete(d, "ddh") }, "", "invoiceData.ddh"},
		{"other seller", func(d map[string]any) { d["xsfnsrsbh"] = "91110000000000000X" }, "", "invoiceData.xsfnsrsbh"},
		{"bad kind", func(d map[string]any) { d["fppzdm"] = "82" }, "", "invoiceData.fppzdm"},
		{"special without buyer tax number", func(d map[string]any) { d["fppzdm"] = "01"; delete(d, "gmfnsrsbh") }, "", "invoiceData.gmfnsrsbh"},
		{"missing buyer", func(d map[string]any) { delete(d, "gmfmc") }, "", "invoiceData.gmfmc"},
		{"no lines", func(d map[string]any) { d["mxlist"] = []map[string]any{} }, "", "invoiceData.mxlist"},
		{"jshj is not hjje + hjse", func(d map[string]any) { d["jshj"] = json.Number("1123.01") }, "", "invoiceData.jshj"},
		{"hjje is not the lines' sum", func(d map[string]any) {
			d["hjje"], d["jshj"] = json.Number("1001.00"), json.Number("1124.00")
		}, "", "invoiceData.hjje"},
		{"hjse is not the lines' sum", func(d map[string]any) {
			d["hjse"], d["jshj"] = json.Number("124.00"), json.Number("1124.00")
		}, "", "invoiceData.hjse"},
		{"three decimals", func(d map[string]any) { line(d, 2)["je"] = json.Number("100.001") }, "", "invoiceData.mxlist[2].je"},
		{"exponent", func(d map[string]any) { line(d, 2)["je"] = json.Number("1e2") }, "", "invoiceData.mxlist[2].je"},
		{"line tax off by more than 0.06", func(d map[string]any) {
			line(d, 2)["se"] = json.Number("6.07")
			d["hjse"], d["jshj"] = json.Number("123.07"), json.Number("1123.07")
		}, "", "invoiceData.mxlist[2].se"},
		{"line tax within 0.06", func(d map[string]any) {
			line(d, 2)["se"] = json.Number("6.06")
			d["hjse"], d["jshj"] = json.Number("123.06"), json.Number("1123.06")
		}, "", ""},
		{"margin taxation: the tax on je less kce", func(d map[string]any) {
			line(d, 2)["kce"], line(d, 2)["se"] = json.Number("50.00"), json.Number("3.00")
			d["hjse"], d["jshj"] = json.Number("120.00"), json.Number("1120.00")
		}, "", ""},
		{"margin taxation: the tax on the whole je", func(d map[string]any) {
			line(d, 2)["kce"] = json.Number("50.00")
		}, "", "invoiceData.mxlist[2].se"},
		// The deduction is taken from the amount with tax (je + se): one
		// larger leaves a negative amount to tax. At rate 0 a tax of 0.00
		// agrees with any deduction, so the tolerance does not catch it.
		{"margin taxation: kce larger than je + se at rate 0", func(d map[string]any) {
			l := line(d, 2)
			l["sl"], l["se"], l["kce"] = json.Number("0"), json.Number("0.00"), json.Number("100.01")
			d["hjse"], d["jshj"] = json.Number("117.00"), json.Number("1117.00")
		}, "", "invoiceData.mxlist[2].kce: 100.01 大于含税金额 je + se = 100.00"},
		// A deduction is taken off the amount: a negative one would add to
		// it and tax more than the line's amount. At rate 0 a tax of 0.00
		// agrees with it, so the tolerance does not catch it either.
		{"margin taxation: negative kce at rate 0", func(d map[string]any) {
			l := line(d, 2)
			l["sl"], l["se"], l["kce"] = json.Number("0"), json.Number("0.00"), json.Number("-50.00")
			d["hjse"], d["jshj"] = json.Number("117.00"), json.Number("1117.00")
		}, "", "invoiceData.mxlist[2].kce: -50.00 为负数"},
		{"margin taxation: kce of all of je + se at rate 0", func(d map[string]any) {
			l := line(d, 2)
			l["sl"], l["se"], l["kce"] = json.Number("0"), json.Number("0.00"), json.Number("100.00")
			d["hjse"], d["jshj"] = json.Number("117.00"), json.Number("1117.00")
		}, "", ""},
		{"margin taxation: kce of all of je + se", func(d map[string]any) {
			l := line(d, 2)
			l["je"], l["se"], l["kce"] = json.Number("106.00"), json.Number("0.00"), json.Number("106.00")
			delete(l, "dj")
			delete(l, "spsl")
			d["hjje"], d["hjse"], d["jshj"] = json.Number("1006.00"), json.Number("117.00"), json.Number("1123.00")
		}, "", ""},
		{"rate not in the set", func(d map[string]any) { line(d, 2)["sl"] = json.Number("0.07") }, "", "invoiceData.mxlist[2].sl"},
		{"rate 0.015", func(d map[string]any) {
			line(d, 2)["sl"], line(d, 2)["se"] = json.Number("0.015"), json.Number("1.50")
			d["hjse"], d["jshj"] = json.Number("118.50"), json.Number("1118.50")
		}, "", ""},
		{"short goods code", func(d map[string]any) { line(d, 2)["spbm"] = "30402" }, "", "invoiceData.mxlist[2].spbm"},
		{"price without quantity", func(d map[string]any) { delete(line(d, 2), "spsl") }, "", "invoiceData.mxlist[2]: dj 与 spsl"},
		{"price times quantity", func(d map[string]any) { line(d, 2)["spsl"] = json.Number("4") }, "", "invoiceData.mxlist[2].je"},
		{"bad hsbz", func(d map[string]any) { line(d, 2)["hsbz"] = "1" }, "", "invoiceData.mxlist[2].hsbz"},
		{"xh out of order", func(d map[string]any) { line(d, 2)["xh"] = 7 }, "", "invoiceData.mxlist[2].xh"},
		{"discount not after its line", func(d map[string]any) { line(d, 0)["fphxz"] = "0" }, "", "invoiceData.mxlist[1].fphxz"},
		{"discounted line without discount", func(d map[string]any) { line(d, 2)["fphxz"] = "2" }, "", "invoiceData.mxlist[2].fphxz"},
		{"positive discount", func(d map[string]any) {
			line(d, 1)["je"], line(d, 1)["se"] = json.Number("100.00"), json.Number("13.00")
		}, "", "invoiceData.mxlist[1].je"},
		{"negative goods line", func(d map[string]any) {
			l := line(d, 2)
			l["je"], l["se"] = json.Number("-100.00"), json.Number("-6.00")
			delete(l, "dj")
			delete(l, "spsl")
		}, "", "invoiceData.mxlist[2].je"},
		// A line's figures have at most 16 characters, a minus sign
		// included; the totals are not held to it.
		{"je of 17 characters", func(d map[string]any) {
			l := line(d, 2)
			l["je"], l["sl"], l["se"] = json.Number("10000000000000.00"), json.Number("0"), json.Number("0.00")
			delete(l, "dj")
			delete(l, "spsl")
			d["hjje"], d["hjse"], d["jshj"] = json.Number("10000000000900.00"), json.Number("117.00"), json.Number("10000000001017.00")
		}, "", "invoiceData.mxlist[2].je: 10000000000000.00 超过 16 个字符"},
		{"je of 16 characters", func(d map[string]any) {
			l := line(d, 2)
			l["je"], l["sl"], l["se"] = json.Number("1000000000000.00"), json.Number("0"), json.Number("0.00")
			delete(l, "dj")
			delete(l, "spsl")
			d["hjje"], d["hjse"], d["jshj"] = json.Number("1000000000900.00"), json.Number("117.00"), json.Number("1000000001017.00")
		}, "", ""},
		{"kce of 17 characters", func(d map[string]any) { line(d, 2)["kce"] = json.Number("10000000000000.00") }, "", "invoiceData.mxlist[2].kce: 10000000000000.00 超过 16 个字符"},
		// A tax has the sign of its line's amount, or is zero: 100.00 at
		// rate 0 taxed -0.01 is within 0.06 of je × sl.
		{"negative tax on a goods line", func(d map[string]any) {
			l := line(d, 2)
			l["sl"], l["se"] = json.Number("0"), json.Number("-0.01")
			d["hjse"], d["jshj"] = json.Number("116.99"), json.Number("1116.99")
		}, "", "invoiceData.mxlist[2].se"},
		{"zero tax on a goods line", func(d map[string]any) {
			l := line(d, 2)
			l["sl"], l["se"] = json.Number("0"), json.Number("0.00")
			d["hjse"], d["jshj"] = json.Number("117.00"), json.Number("1117.00")
		}, "", ""},
		{"positive tax on a discount line", func(d map[string]any) {
			l := line(d, 1)
			l["je"], l["se"] = json.Number("-0.30"), json.Number("0.01")
			d["hjje"], d["hjse"], d["jshj"] = json.Number("1099.70"), json.Number("136.01"), json.Number("1235.71")
		}, "", "invoiceData.mxlist[1].se"},
		{"valid", func(map[string]any) {}, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" {
				d := jdDoc(fmt.Sprintf("CHK-%02d", i))
				tt.edit(d)
				raw = jdJSON(t, d)
			}
			a := e.call("blue-invoice/submit", url.Values{"taskId": {fmt.Sprintf("task-%02d", i)}, "invoiceData": {raw}})
			if tt.msgHas == "" {
				jdWant(t, a, 200, "")
				return
			}
			jdWant(t, a, 400, tt.msgHas)
		})
	}
}

func TestJumdataTaskIsIdempotent(t *testing.T) {
	e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 2}})
	doc := jdDoc("IDEM-1")
	jdWant(t, e.submit("task-1", doc), 202, "进行中")
	jdWant(t, e.submit("task-1", doc), 202, "进行中")
	fphm, kprq := e.issued("task-1", doc)
	again, _ := e.issued("task-1", doc)
	if again != fphm {
		t.Fatalf("the same task answered invoice %s, then %s", fphm, again)
	}
	if want := "2026-11-20 10:00:00"; kprq != want {
		t.Errorf("kprq %q, want %q (the sandbox clock in China time)", kprq, want)
	}

	other := jdDoc("IDEM-1")
	other["bz"] = "changed"
	jdWant(t, e.submit("task-1", other), 400, "taskId task-1 已用于其他开票数据")

	st := e.sb.Stats()
	o := st.Sellers[sandbox.DefaultJumdataSeller]["IDEM-1"]
	if o.Issuances != 1 || o.Invoices != 1 || o.Queries != 3 || o.Submissions != 2 || len(st.Duplicates) != 0 {
		t.Fatalf("stats %+v, duplicates %v; want 1 issuance, 3 queries, 2 submissions (one refused)", o, st.Duplicates)
	}
}

// A task the tax bureau refuses (SANDBOX:FAIL in bz) answers 399 and
// issues nothing, whether asked or left to complete on its own; its taskId
// stays bound to the refused data, and a corrected request goes through
// under a taskId of its own.
func TestJumdataTaskRefusedByTheTaxBureau(t *testing.T) {
	e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 1}})
	refused := jdDoc("REF-1")
	refused["bz"] = "SANDBOX:FAIL"
	jdWant(t, e.submit("task-1", refused), 202, "进行中")
	jdWant(t, e.submit("task-1", refused), 399, "税局开票失败")
	jdWant(t, e.submit("task-1", refused), 399, "税局开票失败")

	corrected := jdDoc("REF-1")
	jdWant(t, e.submit("task-1", corrected), 400, "taskId task-1 已用于其他开票数据")
	e.issued("task-2", corrected)

	alone := jdDoc("REF-2")
	alone["bz"] = "加急 SANDBOX:FAIL-PART"
	jdWant(t, e.submit("task-3", alone), 202, "")
	e.clock.Advance(6 * time.Minute)
	jdWant(t, e.submit("task-3", alone), 399, "税局开票失败")
	a := e.call("blue-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-21"}})
	jdWant(t, a, 200, "")
	var d struct{ List []map[string]any }
	jdDecode(t, a.Data, &d)
	if len(d.List) != 1 || d.List[0]["bz"] != nil && d.List[0]["bz"] != "" {
		t.Fatalf("listed %v, want only the corrected request's invoice", d.List)
	}

	st := e.sb.Stats()
	sellers := st.Sellers[sandbox.DefaultJumdataSeller]
	if o := sellers["REF-1"]; o.Issuances != 1 || o.Invoices != 1 || len(st.Duplicates) != 0 {
		t.Fatalf("REF-1 %+v, duplicates %v: want the corrected request's one invoice", o, st.Duplicates)
	}
	if o := sellers["REF-2"]; o.Issuances != 0 || o.Submissions != 1 {
		t.Fatalf("REF-2 %+v: want one submission and nothing issued", o)
	}
}

func TestJumdataDuplicateAccounting(t *testing.T) {
	t.Run("two taskIds for one order", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{})
		e.issued("task-a", jdDoc("DUP-1"))
		e.issued("task-b", jdDoc("DUP-1"))
		if st := e.sb.Stats(); !slices.Equal(st.Duplicates, []string{sandbox.DefaultJumdataSeller + ":DUP-1"}) {
			t.Fatalf("duplicates %v", st.Duplicates)
		}
	})
	t.Run("a taskId is forgotten after 8 hours", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{})
		first, _ := e.issued("task-a", jdDoc("DUP-2"))
		e.clock.Advance(7*time.Hour + 59*time.Minute)
		if again, _ := e.issued("task-a", jdDoc("DUP-2")); again != first {
			t.Fatalf("within 8 hours the task answered %s, then %s", first, again)
		}
		e.clock.Advance(2 * time.Minute)
		if again, _ := e.issued("task-a", jdDoc("DUP-2")); again == first {
			t.Fatal("after 8 hours the taskId was still remembered")
		}
		if st := e.sb.Stats(); len(st.Duplicates) != 1 {
			t.Fatalf("duplicates %v: a forgotten taskId submitted again is a second invoice", st.Duplicates)
		}
	})
}

func TestJumdataTaskCompletesOnItsOwn(t *testing.T) {
	e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{PendingPolls: 100}})
	jdWant(t, e.submit("task-1", jdDoc("OWN-1")), 202, "")
	list := func() []map[string]any {
		a := e.call("blue-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-21"}})
		jdWant(t, a, 200, "")
		var d struct{ List []map[string]any }
		if err := json.Unmarshal(a.Data, &d); err != nil {
			t.Fatal(err)
		}
		return d.List
	}
	if l := list(); len(l) != 0 {
		t.Fatalf("listed %v before the task completed", l)
	}
	e.clock.Advance(6 * time.Minute)
	l := list()
	if len(l) != 1 || l[0]["gmfnsrsbh"] != "91440101MA5APD8X8J" {
		t.Fatalf("listed %v, want the task's invoice", l)
	}
	if a := e.submit("task-1", jdDoc("OWN-1")); a.Code != 200 {
		t.Fatalf("the completed task answered %d", a.Code)
	}
	if st := e.sb.Stats(); st.Issuances != 1 {
		t.Fatalf("issuances %d", st.Issuances)
	}
}

func TestJumdataBlueQuery(t *testing.T) {
	e := jdStart(t, sandbox.Config{})
	var numbers []string
	for i := range 3 {
		n, _ := e.issued(fmt.Sprintf("task-%d", i), jdDoc(fmt.Sprintf("Q-%d", i)))
		numbers = append(numbers, n)
	}
	e.clock.Advance(24 * time.Hour)
	tomorrow, _ := e.issued("task-late", jdDoc("Q-late"))

	type page struct {
		PageNumber, PageSize, Total int
		List                        []map[string]any
	}
	get := func(extra url.Values) page {
		a := e.call("blue-invoice/query", extra)
		jdWant(t, a, 200, "")
		var p page
		jdDecode(t, a.Data, &p)
		return p
	}
	p1 := get(url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}, "pageSize": {"2"}})
	p2 := get(url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}, "pageSize": {"2"}, "pageNumber": {"2"}})
	if p1.Total != 3 || len(p1.List) != 2 || p2.Total != 3 || len(p2.List) != 1 || p2.PageNumber != 2 {
		t.Fatalf("pages %+v / %+v", p1, p2)
	}
	got := []any{p1.List[0]["fphm"], p1.List[1]["fphm"], p2.List[0]["fphm"]}
	if fmt.Sprint(got) != fmt.Sprint(numbers) {
		t.Fatalf("listed %v, want %v", got, numbers)
	}
	item := p1.List[0]
	for _, f := range []string{"fphm", "kprq", "xsfnsrsbh", "xsfmc", "gmfnsrsbh", "gmfmc", "hjje", "hjse", "jshj", "sflzfp", "fpztdm", "hzqrxxuuid", "kjhzfpdydlzfphm"} {
		if _, ok := item[f]; !ok {
			t.Errorf("list item has no %s: %v", f, item)
		}
	}
	if item["jshj"] != json.Number("1123") || item["hjje"] != json.Number("1000") || item["sflzfp"] != "Y" || item["fpztdm"] != "01" {
		t.Errorf("item %v", item)
	}
	if p := get(url.Values{"kprqq": {"2026-11-21"}, "kprqz": {"2026-11-21"}}); p.Total != 1 || p.List[0]["fphm"] != tomorrow {
		t.Errorf("next day %+v", p)
	}
	if p := get(url.Values{"kprqq": {"2026-11-01"}, "kprqz": {"2026-11-30"}, "fphm": {numbers[1]}}); p.Total != 1 || p.List[0]["fphm"] != numbers[1] {
		t.Errorf("by fphm %+v", p)
	}
	if p := get(url.Values{"kprqq": {"2026-11-01"}, "kprqz": {"2026-11-30"}, "dfnsrsbh": {"91110000000000000X"}}); p.Total != 0 {
		t.Errorf("by another buyer %+v", p)
	}
	jdWant(t, e.call("blue-invoice/query", url.Values{"kprqq": {"2026-11-21"}, "kprqz": {"2026-11-20"}}), 400, "kprqz")
	jdWant(t, e.call("blue-invoice/query", url.Values{"kprqq": {"20261120"}, "kprqz": {"2026-11-20"}}), 400, "kprqq")
}

func TestJumdataRed(t *testing.T) {
	hzmx := `[{"xh":3,"spmc":"技术服务费","spbm":"3040201990000000000","je":-50.00,"sl":0.06,"se":-3.00}]`
	t.Run("pending form, result polls, then nothing left", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 2}})
		fphm, kprq := e.issued("task-1", jdDoc("R-1"))
		a := e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"02"}})
		jdWant(t, a, 200, "")
		var form struct{ UUID string }
		if err := json.Unmarshal(a.Data, &form); err != nil || len(form.UUID) != 32 {
			t.Fatalf("submit data %s: %v", a.Data, err)
		}
		result := url.Values{"uuid": {form.UUID}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}}
		jdWant(t, e.call("red-invoice/result", result), 202, "")
		jdWant(t, e.call("red-invoice/result", result), 202, "")
		a = e.call("red-invoice/result", result)
		jdWant(t, a, 200, "开具成功")
		var red map[string]any
		if jdDecode(t, a.Data, &red); red["jshj"] != json.Number("-1123") || len(red["fphm"].(string)) != 20 {
			t.Fatalf("result data %s", a.Data)
		}
		jdWant(t, e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}}), 399, "蓝票没有可红冲的金额,不可再次红冲!")

		a = e.call("red-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}})
		jdWant(t, a, 200, "")
		var list struct {
			Total int
			List  []map[string]any
		}
		if jdDecode(t, a.Data, &list); list.Total != 1 || list.List[0]["kjhzfpdydlzfphm"] != fphm || list.List[0]["hjse"] != json.Number("-123") {
			t.Fatalf("red list %s", a.Data)
		}
		a = e.call("blue-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}, "fphm": {fphm}})
		if !strings.Contains(string(a.Data), `"hzqrxxuuid":"`+form.UUID+`"`) || !strings.Contains(string(a.Data), `"fpztdm":"04"`) {
			t.Fatalf("blue after the reversal %s", a.Data)
		}
		st := e.sb.Stats()
		if o := st.Sellers[sandbox.DefaultJumdataSeller]["red:"+fphm]; o.Issuances != 1 || o.Submissions != 2 || o.Queries != 3 {
			t.Fatalf("red stats %+v", o)
		}
	})
	t.Run("two partial forms waiting for the buyer", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5, RedSettleAfter: 72 * time.Hour}})
		fphm, kprq := e.issued("task-1", jdDoc("R-5"))
		submit := func(chyydm string) string {
			t.Helper()
			a := e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {chyydm}, "hzmx": {hzmx}})
			jdWant(t, a, 200, "")
			var form struct{ UUID string }
			if err := json.Unmarshal(a.Data, &form); err != nil || len(form.UUID) != 32 {
				t.Fatalf("submit data %s: %v", a.Data, err)
			}
			return form.UUID
		}
		first := submit("02")
		made := e.clock.Now()
		e.clock.Advance(time.Hour)
		second := submit("04")
		if first == second {
			t.Fatalf("one form for two submissions: %s", first)
		}
		// An hour on, beyond the default 5 minutes, both still wait.
		for _, uuid := range []string{first, second} {
			jdWant(t, e.call("red-invoice/result", url.Values{"uuid": {uuid}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}}), 202, "")
		}
		a := e.call("blue-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-20"}, "fphm": {fphm}})
		if !strings.Contains(string(a.Data), `"hzqrxxuuid":"`+second+`"`) {
			t.Fatalf("the blue invoice does not name its latest form %s: %s", second, a.Data)
		}
		a = e.call("red-confirmation/detail", url.Values{"uuid": {first}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}})
		var form map[string]any
		if jdDecode(t, a.Data, &form); form["lrrq"] != made.In(jdCST).Format("2006-01-02 15:04:05") || form["chyydm"] != "02" ||
			form["hzcxje"] != json.Number("-50") || form["hzcxse"] != json.Number("-3") || form["ykjhzfpbz"] != "N" {
			t.Fatalf("first form %s", a.Data)
		}
		e.clock.Advance(72 * time.Hour)
		a = e.call("red-invoice/query", url.Values{"kprqq": {"2026-11-20"}, "kprqz": {"2026-11-23"}})
		var list struct{ Total int }
		if jdDecode(t, a.Data, &list); list.Total != 2 {
			t.Fatalf("after the buyer's 72 hours %s", a.Data)
		}
	})
	t.Run("partial, issued at once", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{})
		fphm, kprq := e.issued("task-1", jdDoc("R-2"))
		a := e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"04"}, "hzmx": {hzmx}})
		jdWant(t, a, 200, "开具成功")
		var red map[string]any
		if jdDecode(t, a.Data, &red); red["jshj"] != json.Number("-53") {
			t.Fatalf("data %s", a.Data)
		}
		// 50 of the service's 100 are left; a second identical partial fits, a third does not.
		jdWant(t, e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"04"}, "hzmx": {hzmx}}), 200, "")
		jdWant(t, e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"04"},
			"hzmx": {strings.ReplaceAll(hzmx, "-50.00", "-1000.00")}}), 400, "hzmx[0].se")
	})
	t.Run("refusals", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{})
		fphm, kprq := e.issued("task-1", jdDoc("R-3"))
		tests := []struct {
			name   string
			p      url.Values
			code   int
			msgHas string
		}{
			{"unknown blue invoice", url.Values{"lzfphm": {"26332000000999999999"}, "lzkprq": {kprq}, "chyydm": {"01"}}, 399, "不存在"},
			{"wrong day", url.Values{"lzfphm": {fphm}, "lzkprq": {"2026-11-19 10:00:00"}, "chyydm": {"01"}}, 399, "开票日期"},
			{"date only", url.Values{"lzfphm": {fphm}, "lzkprq": {"2026-11-20"}, "chyydm": {"01"}}, 400, "lzkprq"},
			{"reason 1", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"1"}}, 400, "chyydm"},
			{"hzmx not an array", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {`{"xh":1}`}}, 400, "hzmx"},
			{"positive hzmx", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {strings.NewReplacer("-50.00", "50.00", "-3.00", "3.00").Replace(hzmx)}}, 400, "hzmx[0].je"},
			{"hzmx je of 17 characters", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {strings.Replace(hzmx, "-50.00", "-1000000000000.00", 1)}}, 400, "hzmx[0].je: -1000000000000.00 超过 16 个字符"},
			{"hzmx line beyond the invoice", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {strings.Replace(hzmx, `"xh":3`, `"xh":4`, 1)}}, 400, "明细行数"},
			{"too much", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {strings.NewReplacer("-50.00", "-1050.00", "-3.00", "-63.00").Replace(hzmx)}}, 399, "超过"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) { jdWant(t, e.call("red-invoice/submit", tt.p), tt.code, tt.msgHas) })
		}
	})
	t.Run("confirmation forms and the download page", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 5}})
		fphm, kprq := e.issued("task-1", jdDoc("R-4"))
		a := e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"03"}})
		var form struct{ UUID string }
		if err := json.Unmarshal(a.Data, &form); err != nil {
			t.Fatal(err)
		}
		byUUID := url.Values{"uuid": {form.UUID}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}}
		a = e.call("red-confirmation/query", nil)
		if jdWant(t, a, 200, ""); !strings.Contains(string(a.Data), `"lzfphm":"`+fphm+`"`) || !strings.Contains(string(a.Data), `"ykjhzfpbz":"N"`) {
			t.Fatalf("forms %s", a.Data)
		}
		jdWant(t, e.call("red-confirmation/detail", byUUID), 200, "")
		jdWant(t, e.call("red-confirmation/confirm", byUUID), 200, "")
		jdWant(t, e.call("red-confirmation/confirm", byUUID), 399, "已开具")
		jdWant(t, e.call("red-invoice/result", byUUID), 200, "开具成功")
		jdWant(t, e.call("red-confirmation/detail", url.Values{"uuid": {"nope"}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}}), 400, "不存在")

		a = e.call("red-confirmation/page", url.Values{"fphm": {fphm}, "kprq": {kprq}})
		jdWant(t, a, 200, "")
		var page struct{ URL string }
		if err := json.Unmarshal(a.Data, &page); err != nil || !strings.HasPrefix(page.URL, e.url+"/_sandbox/documents/") {
			t.Fatalf("page %s: %v", a.Data, err)
		}
		resp, err := http.Get(page.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(string(b), "%PDF-") {
			t.Fatalf("document %s %.20q", resp.Header.Get("Content-Type"), b)
		}
		jdWant(t, e.call("red-confirmation/page", url.Values{"fphm": {fphm}, "kprq": {"2026-11-19"}}), 399, "不存在")
	})
}

// JumdataConfig.RedAwait: a form waiting for the seller answers 202 until
// red-confirmation/confirm issues it, and does not complete on its own; a
// form waiting for the buyer has the seller's confirmation refused and is
// issued once the buyer agrees (RedPendingPolls polls).
func TestJumdataRedAwait(t *testing.T) {
	form := func(e *jdEnv, order string) url.Values {
		fphm, kprq := e.issued("task-"+order, jdDoc(order))
		a := e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}})
		jdWant(t, a, 200, "")
		var f struct{ UUID string }
		if err := json.Unmarshal(a.Data, &f); err != nil || f.UUID == "" {
			t.Fatalf("submit %s: %v", a.Data, err)
		}
		return url.Values{"uuid": {f.UUID}, "xsfnsrsbh": {sandbox.DefaultJumdataSeller}}
	}
	t.Run("seller", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller, RedPendingPolls: 1}})
		byUUID := form(e, "RA-1")
		for range 3 {
			jdWant(t, e.call("red-invoice/result", byUUID), 202, "")
		}
		e.clock.Advance(time.Hour)
		jdWant(t, e.call("red-invoice/result", byUUID), 202, "")
		jdWant(t, e.call("red-confirmation/confirm", byUUID), 200, "")
		jdWant(t, e.call("red-invoice/result", byUUID), 200, "开具成功")
	})
	t.Run("buyer", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitBuyer, RedPendingPolls: 2}})
		byUUID := form(e, "RA-2")
		jdWant(t, e.call("red-confirmation/confirm", byUUID), 399, "需购买方确认")
		jdWant(t, e.call("red-invoice/result", byUUID), 202, "")
		jdWant(t, e.call("red-invoice/result", byUUID), 202, "")
		jdWant(t, e.call("red-invoice/result", byUUID), 200, "开具成功")
		jdWant(t, e.call("red-confirmation/confirm", byUUID), 399, "已开具")
	})
}

func TestJumdataFaceAuth(t *testing.T) {
	e := jdStart(t, sandbox.Config{Faults: sandbox.Faults{FaceAuthSellers: []string{sandbox.DefaultJumdataSeller}}})
	jdWant(t, e.submit("task-1", jdDoc("FACE-1")), 311, "未完成扫脸")
	jdWant(t, e.call("auth/qrcode", url.Values{"app": {"3"}}), 400, "app")
	a := e.call("auth/qrcode", url.Values{"app": {"1"}})
	jdWant(t, a, 200, "")
	var qr struct{ AuthID, QrcodeImageBase64 string }
	if err := json.Unmarshal(a.Data, &qr); err != nil || qr.AuthID == "" || qr.QrcodeImageBase64 == "" {
		t.Fatalf("qrcode %s: %v", a.Data, err)
	}
	jdWant(t, e.call("auth/result", url.Values{"authId": {"other"}, "app": {"1"}}), 312, "过期")
	jdWant(t, e.call("auth/result", url.Values{"authId": {qr.AuthID}, "app": {"1"}}), 311, "未完成扫脸")
	jdWant(t, e.submit("task-1", jdDoc("FACE-1")), 311, "")
	jdWant(t, e.call("auth/result", url.Values{"authId": {qr.AuthID}, "app": {"1"}}), 200, "通过")
	jdWant(t, e.submit("task-1", jdDoc("FACE-1")), 200, "")
	if st := e.sb.Stats(); st.Faults["face_auth"] != 2 {
		t.Fatalf("face_auth faults %d, want 2", st.Faults["face_auth"])
	}
	t.Run("expired QR code", func(t *testing.T) {
		e := jdStart(t, sandbox.Config{})
		var qr struct{ AuthID string }
		_ = json.Unmarshal(e.call("auth/qrcode", url.Values{"app": {"2"}}).Data, &qr)
		e.clock.Advance(11 * time.Minute)
		jdWant(t, e.call("auth/result", url.Values{"authId": {qr.AuthID}, "app": {"2"}}), 312, "")
	})
}

func TestJumdataScriptedAnswers(t *testing.T) {
	e := jdStart(t, sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "602"},
		{Provider: "jumdata", Method: "blue-invoice/submit", Code: "399", Message: "税局说不"},
	}}})
	jdWant(t, e.submit("t", jdDoc("S-1")), 602, "账号停用")
	jdWant(t, e.submit("t", jdDoc("S-1")), 399, "税局说不")
	jdWant(t, e.submit("t", jdDoc("S-1")), 200, "")
}

func TestJumdataRateLimit(t *testing.T) {
	e := jdStart(t, sandbox.Config{Faults: sandbox.Faults{RateLimit: 1, RateBurst: 1}})
	jdWant(t, e.submit("t1", jdDoc("RL-1")), 200, "")
	// The sandbox clock stands still: the bucket stays empty.
	jdWant(t, e.submit("t2", jdDoc("RL-2")), 609, "频繁")
	if st := e.sb.Stats(); st.Faults["rate_limited"] != 1 || st.Issuances != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// FuzzJumdataInvoiceData feeds arbitrary invoiceData to blue-invoice/submit:
// the sandbox answers 200 or 400, never anything else, and never panics.
func FuzzJumdataInvoiceData(f *testing.F) {
	f.Add(jdJSON(f, jdDoc("F-1")))
	f.Add(`{"ddh":"x","mxlist":[{"xh":1}]}`)
	f.Add(`{"ddh":"x","hjje":1e999,"mxlist":null}`)
	f.Add(`[]`)
	clock := time.Date(2026, 11, 20, 10, 0, 0, 0, jdCST)
	sb := sandbox.New(sandbox.Config{Now: func() time.Time { return clock }})
	h := sb.Handler()
	ts := strconv.FormatInt(clock.UnixMilli(), 10)
	f.Fuzz(func(t *testing.T, data string) {
		p := url.Values{
			"appId": {sandbox.DefaultJumdataAppID}, "timestamp": {ts},
			"sign":  {jdSign(sandbox.DefaultJumdataAppID, sandbox.DefaultJumdataSecret, ts)},
			"token": {sandbox.DefaultJumdataToken}, "nsrsbh": {sandbox.DefaultJumdataSeller},
			"dq": {sandbox.DefaultJumdataDQ}, "gryhm": {sandbox.DefaultJumdataGryhm},
			"taskId": {"fuzz"}, "invoiceData": {data},
		}
		req := httptest.NewRequest(http.MethodPost, "/tax/v3/makeout/blue-invoice/submit", strings.NewReader(p.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var a jdAnswer
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
			t.Fatalf("answer %q: %v", rec.Body.Bytes(), err)
		}
		if a.Code != 200 && a.Code != 400 {
			t.Fatalf("code %d %q", a.Code, a.Msg)
		}
	})
}

// A task keeps copies of its seller and taskId, not slices of the request's
// form body: a sandbox that has seen many orders would otherwise hold every
// body in memory.
func TestJumdataTaskKeepsNoFormBody(t *testing.T) {
	e := jdStart(t, sandbox.Config{})
	p := e.jdParams()
	p.Set("taskId", "T-KEEP-1")
	p.Set("invoiceData", jdJSON(t, jdDoc("KEEP-1")))
	body := p.Encode()
	seller, taskID, err := e.sb.SubmitBlueForm(body)
	if err != nil {
		t.Fatal(err)
	}
	if seller != sandbox.DefaultJumdataSeller || taskID != "T-KEEP-1" {
		t.Fatalf("task kept seller %q, taskId %q", seller, taskID)
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	for name, s := range map[string]string{"seller": seller, "taskId": taskID} {
		if at := uintptr(unsafe.Pointer(unsafe.StringData(s))); at >= start && at < start+uintptr(len(body)) {
			t.Errorf("the task's %s is a slice of the %d-byte form body", name, len(body))
		}
	}
}

// The tax bureau's 1.27 per-invoice tolerance holds for a red invoice's
// lines as for a blue one's: hzmx lines each within 0.06 may still add up
// to more than 1.27 off Σ je × sl.
func TestJumdataRedInvoiceTolerance(t *testing.T) {
	const n = 25
	var blue, red []map[string]any
	for i := 1; i <= n; i++ {
		blue = append(blue, map[string]any{"xh": i, "fphxz": "0", "spmc": "技术服务费", "spbm": "3040201990000000000", "hsbz": "N",
			"je": json.Number("100.00"), "sl": json.Number("0.06"), "se": json.Number("6.00")})
		// -10.00 × 0.06 = -0.60: each line is 0.06 off, at the line tolerance.
		red = append(red, map[string]any{"xh": i, "spmc": "技术服务费", "spbm": "3040201990000000000",
			"je": json.Number("-10.00"), "sl": json.Number("0.06"), "se": json.Number("-0.54")})
	}
	doc := jdDoc("R-TOL")
	doc["mxlist"], doc["hjje"], doc["hjse"], doc["jshj"] = blue, json.Number("2500.00"), json.Number("150.00"), json.Number("2650.00")
	e := jdStart(t, sandbox.Config{})
	fphm, kprq := e.issued("task-1", doc)
	submit := func(lines []map[string]any) jdAnswer {
		return e.call("red-invoice/submit", url.Values{"lzfphm": {fphm}, "lzkprq": {kprq}, "chyydm": {"01"}, "hzmx": {jdJSON(t, lines)}})
	}
	// 25 × 0.06 = 1.50 is refused; 21 × 0.06 = 1.26 is not.
	jdWant(t, submit(red), 400, "1.27")
	jdWant(t, submit(red[:21]), 200, "")
}

// A scripted answer carries its Retry-After header as written, and the 503
// fault carries Faults.RetryAfter in whole seconds (none when it is 0).
// Neither lets the call take effect, except a scripted status marked
// AfterEffect, which answers it once the call has taken effect.
func TestRetryAfterHeader(t *testing.T) {
	post := func(t *testing.T, e *jdEnv) *http.Response {
		t.Helper()
		p := e.jdParams()
		p.Set("taskId", "task-ra")
		p.Set("invoiceData", jdJSON(t, jdDoc("RA-1")))
		resp, err := http.Post(e.url+"/tax/v3/makeout/blue-invoice/submit", "application/x-www-form-urlencoded", strings.NewReader(p.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	for _, tt := range []struct {
		name   string
		faults sandbox.Faults
		status int
		want   []string // the Retry-After header's values
		took   int      // the submissions the call made
	}{
		{"scripted 429", sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", HTTPStatus: 429, RetryAfter: "7"}}}, 429, []string{"7"}, 0},
		{"scripted 503 with a date", sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", HTTPStatus: 503, RetryAfter: "Fri, 20 Nov 2026 02:00:07 GMT"}}},
			503, []string{"Fri, 20 Nov 2026 02:00:07 GMT"}, 0},
		{"scripted without", sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", HTTPStatus: 429}}}, 429, nil, 0},
		{"scripted 503 after the effect", sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", HTTPStatus: 503, RetryAfter: "7", AfterEffect: true}}},
			503, []string{"7"}, 1},
		{"503 fault", sandbox.Faults{Error5xx: 1, RetryAfter: 1500 * time.Millisecond}, 503, []string{"2"}, 0},
		{"503 fault without", sandbox.Faults{Error5xx: 1}, 503, nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := jdStart(t, sandbox.Config{Faults: tt.faults})
			resp := post(t, e)
			if got := resp.Header.Values("Retry-After"); resp.StatusCode != tt.status || !slices.Equal(got, tt.want) {
				t.Fatalf("HTTP %d, Retry-After %q; want %d, %q", resp.StatusCode, got, tt.status, tt.want)
			}
			if got := e.sb.Stats().Sellers[sandbox.DefaultJumdataSeller]["RA-1"].Submissions; got != tt.took {
				t.Fatalf("%d submissions of the task, want %d", got, tt.took)
			}
		})
	}
}
