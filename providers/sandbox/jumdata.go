package sandbox

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// The jumdata side of the sandbox serves jumdata's tax/v3/makeout API (seed
// 004) below POST /tax/v3/makeout/. It is written from the document alone:
// it imports neither schemas nor the jumdata client, and reads the form and
// the invoiceData JSON with its own types, so that a client and this sandbox
// cannot agree by construction.
//
// Every answer is HTTP 200 with the envelope {code, msg, charge, taskNo,
// data}; code is a JSON number, charge is true on 200. Every call is checked
// in this order:
//
//   - the path: an endpoint the document does not list answers 404
//     (接口地址不正确);
//   - the format: Content-Type application/x-www-form-urlencoded with the
//     parameters in the body (query-string parameters are not read), else 400;
//   - the common parameters: appId must be Config.Jumdata.AppID, timestamp
//     milliseconds within ±10 minutes of the sandbox clock, sign the
//     lower-case hex sha256(appId + appSecret + timestamp). The document
//     lists no code for a bad signature, an unknown appId or a stale
//     timestamp: the sandbox answers 400 (参数错误) with a message saying
//     which check failed;
//   - token must be Config.Jumdata.Token, else 303 (token已失效);
//   - nsrsbh, dq and gryhm: a seller without a login (JumdataConfig.Logins,
//     unless AnySeller) answers 302 (未登录); a known seller whose dq or
//     gryhm differs answers 301 (用户名或手机号在电局不存在);
//   - face authentication: a seller listed in Faults.FaceAuthSellers answers
//     311 (未完成扫脸) to every call but auth/* until auth/qrcode and then
//     auth/result succeed for it (fault "face_auth" in the stats). The first
//     auth/result call for an authId answers 311 (the person has not scanned
//     yet), the next 200; an authId is valid 10 minutes, then 312. A seller
//     stays authenticated for the life of the sandbox.
//
// Blue invoices (blue-invoice/submit). invoiceData must be the JSON object
// documented in providers/jumdata/invoicedata.go (an assumption of this
// project: the format is not public), with no unknown fields: ddh (the
// order number), fppzdm 01|02, xsfnsrsbh = nsrsbh, gmfmc, hjje, hjse, jshj
// and mxlist lines (xh 1..n, fphxz 0|1|2, spmc, 19-digit spbm, hsbz Y|N,
// je, sl, se; dj and spsl together or not at all). Money has at most 2
// decimals, dj and spsl at most 8; a line's figures have at most 16
// characters, a minus sign included (an assumption, see jdMaxLineChars);
// sl is one of 0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09, 0.13; |je × sl −
// se| ≤ 0.06 per line (with kce, margin taxation: |(je − kce) × sl − se|)
// and |Σ je × sl − Σ se| ≤ 1.27 (the same way); kce not negative and no
// larger than je + se on a line that is not a discount line; |dj × spsl − (je, or je + se when hsbz is Y)| ≤ 0.01; hjje = Σ je,
// hjse = Σ se, hjje + hjse = jshj exactly; je is positive and se positive
// or 0 (seed 001: 红票为负, a blue invoice's figures are not); discount
// lines (fphxz 1) follow their discounted line (2) with the same spmc and
// sl and are negative (se negative or 0) and no larger. A problem answers
// 400 naming the field (invoiceData.mxlist[1].se).
//
// taskId is the idempotency key, per seller, kept 8 hours by the sandbox
// clock: the same taskId with byte-identical invoiceData is the same task
// (no new invoice); with other invoiceData it answers 400. A task answers 202
// to its first JumdataConfig.PendingPolls calls and 200 (fphm, kprq) after;
// like the tax bureau, it also completes on its own 5 minutes after it was
// created, whether or not anyone asks, so that an invoice exists even when
// the client lost track of the task. A forgotten taskId is a new task.
// A task whose bz (remark) contains SANDBOX:FAIL (SANDBOX:FAIL-PART too:
// jumdata issues one invoice an order) is refused by the tax bureau when it
// completes instead: 399 税局开票失败 and no invoice, answered to every later
// call with the same data for as long as the taskId is kept (other data
// under it still answers 400), so that a corrected request under a taskId
// of its own can be exercised.
//
// Accounting: an order is the seller plus invoiceData.ddh. A call creating a
// task counts a submission (an invoiceData refused with 400 too, when its ddh
// can be read), a repeated call a query, and a task that completes one
// issuance. Two taskIds for one order therefore show up in Stats.Duplicates.
// Red invoices are accounted as order "red:<lzfphm>" for a full reversal and
// "red:<lzfphm>:<first 8 hex of sha256(hzmx)>" for a partial one.
//
// Queries: blue-invoice/query and red-invoice/query list the seller's
// invoices issued between kprqq and kprqz (yyyy-MM-dd, China time) with the
// fields of the document's examples, paginated with pageNumber (default 1)
// and pageSize (default 50 and 10, at most 100); blue-invoice/query also
// filters by fphm, dfnsrsbh and dfnsrmc (the buyer), and finds nothing for
// paper invoice numbers (zzfpdm, zzfphm). A blue invoice shows fpztdm 01 (normal), 03
// (partly reversed) or 04 (fully reversed) and, once a red confirmation form
// exists for it, the form's uuid in hzqrxxuuid.
//
// Red invoices. red-invoice/submit needs lzfphm (a blue invoice of this
// seller), lzkprq (yyyy-MM-dd HH:mm:ss, same day as the blue invoice),
// chyydm 01..04 and, for a partial reversal, hzmx: a JSON array of lines
// {xh, spmc, spbm, ggxh, dw, spsl, dj, je, sl, se, yhzcbs} with negative je
// and se of at most 16 characters each, as a blue line's, held to the blue
// invoice's tolerances: |je × sl − se| ≤ 0.06 per
// line and |Σ je × sl − Σ se| ≤ 1.27. The amount is reserved when the
// form is made: a blue invoice with nothing left answers 399
// 蓝票没有可红冲的金额,不可再次红冲!, a partial reversal larger than what
// is left 399 too. With RedPendingPolls 0 the red
// invoice is issued at once and data carries it (fphm, kprq, jshj, ...); else
// data carries only the form's uuid (an assumption: the document's example
// shows data {}), red-invoice/result answers 202 RedPendingPolls times per
// form and then 200 with the red invoice, and the form also completes on
// its own after JumdataConfig.RedSettleAfter (default 5 minutes). Every
// submission makes a form of its own, so a blue invoice reversed in parts
// may have several pending at once; its hzqrxxuuid names the latest.
// red-confirmation/query and /detail describe forms (uuid, lzfphm, chyydm,
// hzcxje, hzcxse, lrrq: when the form was made, hzqrxxztdm 01, ykjhzfpbz
// Y|N),
// red-confirmation/confirm issues a pending form at once (399 when it is
// already issued), red-confirmation/page answers the invoice's PDF URL.
// JumdataConfig.RedAwait makes forms wait for the seller's
// red-confirmation/confirm (202 until then, never completed on their own)
// or for the buyer (the seller's confirm refused with 399).

const (
	jdPrefix        = "/tax/v3/makeout/"
	jdTaskLife      = 8 * time.Hour
	jdSettleAfter   = 5 * time.Minute
	jdClockSkew     = 10 * time.Minute
	jdAuthLife      = 10 * time.Minute
	jdTimeLayout    = "2006-01-02 15:04:05"
	jdDateLayout    = "2006-01-02"
	jdMaxPageSize   = 100
	jdMaxLines      = 2000
	jdFormMediaType = "application/x-www-form-urlencoded"
)

// jdZone is China Standard Time, the zone of every date jumdata shows.
var jdZone = time.FixedZone("CST", 8*60*60)

// jdMessages are the document's descriptions of its codes, the stock
// messages of scripted answers.
var jdMessages = map[int]string{
	200: "成功",
	202: "任务正在进行中,请稍后再试",
	301: "用户名或手机号在电局不存在",
	302: "未登录或登录已失效,请重新登录",
	303: "token已失效,请重新获取token",
	311: "未完成扫脸",
	312: "实名认证过期,重新获取二维码进行人脸识别",
	399: "税局开票异常",
	400: "参数错误",
	404: "接口地址不正确",
	500: "系统维护,请稍候再试",
	501: "税局系统异常,请稍后再试",
	601: "接口未开通",
	602: "账号停用",
	604: "接口停用",
	606: "调用超限,请稍候再试",
	607: "ip不在白名单",
	609: "请求过于频繁,请稍候再试",
}

// jdNoAmountLeft is the document's 399 message for a blue invoice with
// nothing left to reverse.
const jdNoAmountLeft = "蓝票没有可红冲的金额,不可再次红冲!"

// jdEnvelope is jumdata's answer.
type jdEnvelope struct {
	Code   any    `json:"code"`
	Msg    string `json:"msg"`
	Charge bool   `json:"charge"`
	TaskNo string `json:"taskNo"`
	Data   any    `json:"data,omitempty"`
}

var jumdataSpec = providerSpec{
	name:   "jumdata",
	seller: func(r *http.Request) string { return r.PostFormValue("nsrsbh") },
	method: func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, jdPrefix) },
	answer: func(w http.ResponseWriter, code, message string) {
		var c any = code // a code that is not a number is answered as a string
		if n, err := strconv.Atoi(code); err == nil {
			c = n
			if message == "" {
				message = jdMessages[n]
			}
		}
		writeJSON(w, http.StatusOK, jdEnvelope{Code: c, Msg: message})
	},
	rateLimited: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, jdEnvelope{Code: 609, Msg: jdMessages[609]})
	},
}

// jumdataState is the jumdata side's memory: blue-invoice tasks, issued
// invoices, red confirmation forms and face authentication.
type jumdataState struct {
	mu  sync.Mutex
	seq uint64

	tasks     map[string]*jdTask // by seller + "\x00" + taskId, while remembered
	live      []*jdTask          // remembered tasks in creation order, for forgetting
	unsettled []*jdTask          // tasks in creation order, for completing on their own

	blue     map[string][]*jdInvoice // by seller, in issue order
	byNumber map[string]*jdInvoice   // blue invoices by fphm
	red      map[string][]*jdRed     // by seller, in issue order

	forms     map[string]*jdForm // by uuid
	formList  map[string][]*jdForm
	formQueue []*jdForm // forms in creation order, for completing on their own

	auth   map[string]*jdAuth // the seller's last QR code
	authed map[string]bool    // sellers who passed face authentication
}

func newJumdataState() *jumdataState {
	return &jumdataState{
		tasks:    map[string]*jdTask{},
		blue:     map[string][]*jdInvoice{},
		byNumber: map[string]*jdInvoice{},
		red:      map[string][]*jdRed{},
		forms:    map[string]*jdForm{},
		formList: map[string][]*jdForm{},
		auth:     map[string]*jdAuth{},
		authed:   map[string]bool{},
	}
}

// next returns a fresh sequence number.
func (st *jumdataState) next() uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	return st.seq
}

// jdTask is one blue-invoice task.
type jdTask struct {
	seller, taskID, orderNo string
	rawSum                  [sha256.Size]byte // of invoiceData exactly as received: a resubmission must be identical
	doc                     *jdDoc
	lines                   []jdAmounts
	hjje, hjse, jshj        decimal.Decimal
	created                 time.Time
	calls                   int
	invoice                 *jdInvoice
	refused                 bool // the tax bureau refused the task (SANDBOX:FAIL): no invoice, ever
}

// jdInvoice is an issued blue invoice.
type jdInvoice struct {
	seller, orderNo, fphm string
	kprq                  time.Time
	doc                   *jdDoc
	hjje, hjse, jshj      decimal.Decimal
	lines                 []jdAmounts
	leftJE, leftSE        decimal.Decimal // what may still be reversed
	hzqrxxuuid            string
	reds                  int
	pdfURL                string
}

// jdAmounts are one line's je and se.
type jdAmounts struct{ je, se decimal.Decimal }

// jdRed is an issued red invoice.
type jdRed struct {
	seller, fphm string
	kprq         time.Time
	blue         *jdInvoice
	hjje, hjse   decimal.Decimal // negative
	pdfURL       string
}

// jdForm is a red confirmation form.
type jdForm struct {
	uuid, seller, order, lzkprq, chyydm string
	blue                                *jdInvoice
	je, se                              decimal.Decimal // negative: the red invoice's amounts
	created                             time.Time
	polls                               int
	red                                 *jdRed
}

// jdAuth is a face authentication QR code.
type jdAuth struct {
	authID, app string
	issued      time.Time
	results     int
}

// jdReply is what an endpoint answers.
type jdReply struct {
	code int
	msg  string
	data any
}

func jdOK(msg string, data any) jdReply { return jdReply{code: 200, msg: msg, data: data} }

func jdFail(code int, format string, args ...any) jdReply {
	return jdReply{code: code, msg: fmt.Sprintf(format, args...)}
}

// jdEndpoint is one documented endpoint; face says whether face
// authentication guards it.
type jdEndpoint struct {
	face   bool
	handle func(s *Server, p url.Values, now time.Time) jdReply
}

var jdEndpoints = map[string]jdEndpoint{
	"auth/qrcode":              {face: false, handle: (*Server).jdAuthQRCode},
	"auth/result":              {face: false, handle: (*Server).jdAuthResult},
	"blue-invoice/submit":      {face: true, handle: (*Server).jdBlueSubmit},
	"blue-invoice/query":       {face: true, handle: (*Server).jdBlueQuery},
	"red-invoice/submit":       {face: true, handle: (*Server).jdRedSubmit},
	"red-invoice/result":       {face: true, handle: (*Server).jdRedResult},
	"red-invoice/query":        {face: true, handle: (*Server).jdRedQuery},
	"red-confirmation/query":   {face: true, handle: (*Server).jdFormQuery},
	"red-confirmation/detail":  {face: true, handle: (*Server).jdFormDetail},
	"red-confirmation/confirm": {face: true, handle: (*Server).jdFormConfirm},
	"red-confirmation/page":    {face: true, handle: (*Server).jdPage},
}

// jumdataMakeout serves POST /tax/v3/makeout/<endpoint>; the comment at the
// top of this file describes its behaviour.
func (s *Server) jumdataMakeout(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	method := strings.TrimPrefix(r.URL.Path, jdPrefix)
	var rep jdReply
	if ep, ok := jdEndpoints[method]; !ok {
		rep = jdFail(404, "接口地址不正确: %s", method)
	} else if rep = s.jdVerify(r, now, ep.face); rep.code == 0 {
		rep = ep.handle(s, r.PostForm, now)
	}
	taskNo := fmt.Sprintf("%s%010d", now.In(jdZone).Format("20060102150405"), s.jumdata.next()%1e10)
	writeJSON(w, http.StatusOK, jdEnvelope{Code: rep.code, Msg: rep.msg, Charge: rep.code == 200, TaskNo: taskNo, Data: rep.data})
}

// jdSign is jumdata's signature: lower-case hex sha256(appId + appSecret +
// timestamp).
func jdSign(appID, appSecret, timestamp string) string {
	sum := sha256.Sum256([]byte(appID + appSecret + timestamp))
	return hex.EncodeToString(sum[:])
}

// jdVerify checks the format, the common parameters, the token, the login
// and face authentication. It answers code 0 when the call may proceed.
func (s *Server) jdVerify(r *http.Request, now time.Time, face bool) jdReply {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != jdFormMediaType {
		return jdFail(400, "参数错误: 请求格式须为 %s", jdFormMediaType)
	}
	if err := r.ParseForm(); err != nil {
		return jdFail(400, "参数错误: 请求参数无法解析")
	}
	p := r.PostForm
	cfg := &s.cfg.Jumdata
	appID, ts, sign := p.Get("appId"), p.Get("timestamp"), p.Get("sign")
	switch {
	case appID == "" || ts == "" || sign == "":
		return jdFail(400, "参数错误: 缺少公共参数 appId, timestamp 或 sign")
	case appID != cfg.AppID:
		return jdFail(400, "参数错误: appId 不存在")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return jdFail(400, "参数错误: timestamp 须为毫秒时间戳")
	}
	if skew := now.Sub(time.UnixMilli(ms)); skew > jdClockSkew || skew < -jdClockSkew {
		return jdFail(400, "参数错误: timestamp 与服务器时间相差超过10分钟")
	}
	if sign != jdSign(appID, cfg.AppSecret, ts) {
		return jdFail(400, "参数错误: 签名错误 (sign = sha256(appId + appSecret + timestamp), 小写十六进制)")
	}
	if rep, ok := jdRequire(p, "nsrsbh", "dq", "gryhm", "token"); !ok {
		return rep
	}
	if p.Get("token") != cfg.Token {
		return jdFail(303, "%s", jdMessages[303])
	}
	seller := p.Get("nsrsbh")
	login, known := cfg.Logins[seller]
	switch {
	case known && (login.DQ != p.Get("dq") || login.Gryhm != p.Get("gryhm")):
		return jdFail(301, "%s", jdMessages[301])
	case !known && !cfg.AnySeller:
		return jdFail(302, "%s", jdMessages[302])
	}
	if face && s.jdNeedsFace(seller) {
		s.stats.fault("face_auth")
		return jdFail(311, "%s", jdMessages[311])
	}
	return jdReply{}
}

// jdNeedsFace reports whether the seller must still scan a face.
func (s *Server) jdNeedsFace(seller string) bool {
	listed := false
	for _, f := range s.Faults().FaceAuthSellers {
		if f == seller {
			listed = true
			break
		}
	}
	if !listed {
		return false
	}
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.authed[seller]
}

// jdRequire answers 400 for the first missing parameter.
func jdRequire(p url.Values, names ...string) (jdReply, bool) {
	for _, n := range names {
		if strings.TrimSpace(p.Get(n)) == "" {
			return jdFail(400, "参数错误: 缺少参数 %s", n), false
		}
	}
	return jdReply{}, true
}

// ---- face authentication ----

func (s *Server) jdAuthQRCode(p url.Values, now time.Time) jdReply {
	app := p.Get("app")
	if app != "1" && app != "2" {
		return jdFail(400, "参数错误: app 须为 1(个税app) 或 2(税局app)")
	}
	st := s.jumdata
	st.mu.Lock()
	st.seq++
	id := jdHash(fmt.Sprintf("auth:%d", st.seq))[:19]
	st.auth[p.Get("nsrsbh")] = &jdAuth{authID: id, app: app, issued: now}
	st.mu.Unlock()
	img := base64.StdEncoding.EncodeToString([]byte("sandbox face authentication QR code " + id))
	return jdOK("成功", map[string]string{"authId": id, "qrcodeImageBase64": img, "qrcodeImageUrl": ""})
}

func (s *Server) jdAuthResult(p url.Values, now time.Time) jdReply {
	if rep, ok := jdRequire(p, "authId", "app"); !ok {
		return rep
	}
	seller := p.Get("nsrsbh")
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.auth[seller]
	if a == nil || a.authID != p.Get("authId") || a.app != p.Get("app") || now.Sub(a.issued) > jdAuthLife {
		return jdFail(312, "扫脸过期,重新获取二维码")
	}
	a.results++
	if a.results == 1 {
		return jdFail(311, "%s", jdMessages[311])
	}
	st.authed[seller] = true
	return jdOK("通过", nil)
}

// ---- invoiceData ----

// jdDoc is invoiceData as the sandbox reads it.
type jdDoc struct {
	Ddh       string      `json:"ddh"`
	Fppzdm    string      `json:"fppzdm"`
	Xsfnsrsbh string      `json:"xsfnsrsbh"`
	Xsfmc     string      `json:"xsfmc"`
	Xsfdz     string      `json:"xsfdz"`
	Xsfdh     string      `json:"xsfdh"`
	Gmfnsrsbh string      `json:"gmfnsrsbh"`
	Gmfmc     string      `json:"gmfmc"`
	Gmfdz     string      `json:"gmfdz"`
	Gmfdh     string      `json:"gmfdh"`
	Kpr       string      `json:"kpr"`
	Bz        string      `json:"bz"`
	Hjje      json.Number `json:"hjje"`
	Hjse      json.Number `json:"hjse"`
	Jshj      json.Number `json:"jshj"`
	Mxlist    []jdDocLine `json:"mxlist"`
}

// jdDocLine is one line of invoiceData.mxlist.
type jdDocLine struct {
	Xh      int         `json:"xh"`
	Fphxz   string      `json:"fphxz"`
	Spmc    string      `json:"spmc"`
	Spbm    string      `json:"spbm"`
	Zxbm    string      `json:"zxbm"`
	Ggxh    string      `json:"ggxh"`
	Dw      string      `json:"dw"`
	Spsl    json.Number `json:"spsl"`
	Dj      json.Number `json:"dj"`
	Hsbz    string      `json:"hsbz"`
	Je      json.Number `json:"je"`
	Sl      json.Number `json:"sl"`
	Se      json.Number `json:"se"`
	Kce     json.Number `json:"kce"`
	Yhzcbs  string      `json:"yhzcbs"`
	Zzstsgl string      `json:"zzstsgl"`
	Lslbs   string      `json:"lslbs"`
}

// jdDecodeStrict decodes one JSON value with no unknown fields and nothing
// after it.
func jdDecodeStrict(raw string, v any) error {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

var (
	jdPlainNumber = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	jdGoodsCode   = regexp.MustCompile(`^[0-9]{19}$`)
	jdInvoiceNo   = regexp.MustCompile(`^[0-9]{20}$`)

	jdLineTolerance    = decimal.RequireFromString("0.06")
	jdInvoiceTolerance = decimal.RequireFromString("1.27")
	jdPriceTolerance   = decimal.RequireFromString("0.01")
)

// jdRates are the VAT rates a line may carry.
var jdRates = []string{"0", "0.01", "0.015", "0.03", "0.05", "0.06", "0.09", "0.13"}

// jdNumber reads a plain decimal with at most places decimals; required
// says whether it must be present.
func jdNumber(n json.Number, field string, places int, required bool) (decimal.Decimal, bool, error) {
	s := n.String()
	if s == "" {
		if required {
			return decimal.Zero, false, fmt.Errorf("%s: 缺少", field)
		}
		return decimal.Zero, false, nil
	}
	if len(s) > 24 || !jdPlainNumber.MatchString(s) {
		return decimal.Zero, false, fmt.Errorf("%s: %q 不是数字", field, s)
	}
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > places {
		return decimal.Zero, false, fmt.Errorf("%s: %s 超过 %d 位小数", field, s, places)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Zero, false, fmt.Errorf("%s: %q 不是数字", field, s)
	}
	return d, true, nil
}

// jdMaxLineChars is the longest figure of a line (je, se, kce, dj, spsl;
// hzmx's too), a minus sign included. jumdata publishes no lengths for
// invoiceData, whose format is this project's assumption: the sandbox
// takes the 16 characters that seed 001 gives every amount field, as the
// validator does for what the jumdata mapping sends. The totals (hjje,
// hjse, jshj) add lines up and are not held to it.
const jdMaxLineChars = 16

// jdLineNumber is jdNumber for a line's figure: at most jdMaxLineChars
// characters.
func jdLineNumber(n json.Number, field string, places int, required bool) (decimal.Decimal, bool, error) {
	if s := n.String(); len(s) > jdMaxLineChars && jdPlainNumber.MatchString(s) {
		return decimal.Zero, false, fmt.Errorf("%s: %s 超过 %d 个字符", field, s, jdMaxLineChars)
	}
	return jdNumber(n, field, places, required)
}

func jdRate(n json.Number, field string) (decimal.Decimal, error) {
	d, _, err := jdNumber(n, field, 3, true)
	if err != nil {
		return d, err
	}
	for _, r := range jdRates {
		if d.Equal(decimal.RequireFromString(r)) {
			return d, nil
		}
	}
	return d, fmt.Errorf("%s: %s 不是有效税率 (0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09, 0.13)", field, n)
}

// jdCheckDoc applies the tax bureau's rules to invoiceData; it returns the
// line amounts and totals, or an error naming the field.
func jdCheckDoc(d *jdDoc, seller string) (lines []jdAmounts, hjje, hjse, jshj decimal.Decimal, err error) {
	fail := func(format string, args ...any) ([]jdAmounts, decimal.Decimal, decimal.Decimal, decimal.Decimal, error) {
		return nil, decimal.Zero, decimal.Zero, decimal.Zero, fmt.Errorf(format, args...)
	}
	switch {
	case d.Ddh == "":
		return fail("ddh: 缺少订单号")
	case utf8.RuneCountInString(d.Ddh) > 64:
		return fail("ddh: 超过 64 个字符")
	case d.Xsfnsrsbh != seller:
		return fail("xsfnsrsbh: %q 与 nsrsbh %q 不一致", d.Xsfnsrsbh, seller)
	case d.Fppzdm != "01" && d.Fppzdm != "02":
		return fail("fppzdm: %q 须为 01(专票) 或 02(普票)", d.Fppzdm)
	case d.Gmfmc == "":
		return fail("gmfmc: 缺少购买方名称")
	case d.Fppzdm == "01" && d.Gmfnsrsbh == "":
		return fail("gmfnsrsbh: 专票须填写购买方纳税人识别号")
	case utf8.RuneCountInString(d.Bz) > 200:
		return fail("bz: 超过 200 个字符")
	case len(d.Mxlist) == 0:
		return fail("mxlist: 缺少明细行")
	case len(d.Mxlist) > jdMaxLines:
		return fail("mxlist: 超过 %d 行", jdMaxLines)
	}
	if hjje, _, err = jdNumber(d.Hjje, "hjje", 2, true); err != nil {
		return fail("%v", err)
	}
	if hjse, _, err = jdNumber(d.Hjse, "hjse", 2, true); err != nil {
		return fail("%v", err)
	}
	if jshj, _, err = jdNumber(d.Jshj, "jshj", 2, true); err != nil {
		return fail("%v", err)
	}
	var sumJE, sumSE, sumExpected decimal.Decimal
	lines = make([]jdAmounts, len(d.Mxlist))
	for i := range d.Mxlist {
		l := &d.Mxlist[i]
		p := fmt.Sprintf("mxlist[%d]", i)
		switch {
		case l.Xh != i+1:
			return fail("%s.xh: %d 须为 %d", p, l.Xh, i+1)
		case l.Fphxz != "0" && l.Fphxz != "1" && l.Fphxz != "2":
			return fail("%s.fphxz: %q 须为 0, 1 或 2", p, l.Fphxz)
		case l.Spmc == "" || utf8.RuneCountInString(l.Spmc) > 90:
			return fail("%s.spmc: 须为 1 至 90 个字符", p)
		case !jdGoodsCode.MatchString(l.Spbm):
			return fail("%s.spbm: %q 须为 19 位税收分类编码", p, l.Spbm)
		case l.Hsbz != "Y" && l.Hsbz != "N":
			return fail("%s.hsbz: %q 须为 Y 或 N", p, l.Hsbz)
		}
		je, _, err := jdLineNumber(l.Je, p+".je", 2, true)
		if err != nil {
			return fail("%v", err)
		}
		se, _, err := jdLineNumber(l.Se, p+".se", 2, true)
		if err != nil {
			return fail("%v", err)
		}
		sl, err := jdRate(l.Sl, p+".sl")
		if err != nil {
			return fail("%v", err)
		}
		kce, hasKce, err := jdLineNumber(l.Kce, p+".kce", 2, false)
		if err != nil {
			return fail("%v", err)
		}
		dj, hasDJ, err := jdLineNumber(l.Dj, p+".dj", 8, false)
		if err != nil {
			return fail("%v", err)
		}
		spsl, hasSL, err := jdLineNumber(l.Spsl, p+".spsl", 8, false)
		if err != nil {
			return fail("%v", err)
		}
		if hasDJ != hasSL {
			return fail("%s: dj 与 spsl 须同时填写或同时为空", p)
		}
		if hasDJ {
			if !dj.IsPositive() {
				return fail("%s.dj: %s 须大于 0", p, l.Dj)
			}
			base := je
			if l.Hsbz == "Y" {
				base = je.Add(se)
			}
			if got := dj.Mul(spsl); got.Sub(base).Abs().GreaterThan(jdPriceTolerance) {
				return fail("%s.je: dj × spsl = %s 与金额 %s 不符", p, got.StringFixed(2), base.StringFixed(2))
			}
		}
		// Margin taxation (kce, 差额征税) deducts from the amount with
		// tax: a deduction larger than je + se leaves a negative amount
		// to tax, and a negative one would add to the amount taxed,
		// neither of which the tax bureau issues. At rate 0 a tax of
		// 0.00 agrees with any deduction, so the tolerance below does not
		// catch them. A discount line, whose amounts are negative, is
		// left alone: nothing says which sign its deduction takes.
		if hasKce && l.Fphxz != "1" && kce.IsNegative() {
			return fail("%s.kce: %s 为负数, 差额征税的扣除额不能为负数", p, l.Kce)
		}
		if hasKce && l.Fphxz != "1" && kce.GreaterThan(je.Add(se)) {
			return fail("%s.kce: %s 大于含税金额 je + se = %s, 差额征税的扣除额不能大于含税销售额", p, l.Kce, je.Add(se).StringFixed(2))
		}
		// The tax is on je less the deduction.
		taxed, basis := je, "je × sl"
		if hasKce {
			taxed, basis = je.Sub(kce), "(je − kce) × sl"
		}
		expected := taxed.Mul(sl)
		if diff := expected.Sub(se).Abs(); diff.GreaterThan(jdLineTolerance) {
			return fail("%s.se: %s 与 %s = %s 相差 %s, 超过 0.06", p, l.Se, basis, expected.StringFixed(2), diff.StringFixed(2))
		}
		if l.Fphxz == "1" {
			if !je.IsNegative() {
				return fail("%s.je: 折扣行金额须为负数", p)
			}
			if i == 0 || d.Mxlist[i-1].Fphxz != "2" {
				return fail("%s.fphxz: 折扣行须紧跟被折扣行", p)
			}
			prev := &d.Mxlist[i-1]
			prevRate, _ := jdRate(prev.Sl, "")
			switch {
			case prev.Spmc != l.Spmc:
				return fail("%s.spmc: 折扣行商品名称须与被折扣行一致", p)
			case !prevRate.Equal(sl):
				return fail("%s.sl: 折扣行税率须与被折扣行一致", p)
			case je.Abs().GreaterThan(lines[i-1].je):
				return fail("%s.je: 折扣金额大于被折扣行金额", p)
			}
			if se.IsPositive() {
				return fail("%s.se: 折扣行税额须为负数或 0", p)
			}
		} else if !je.IsPositive() {
			return fail("%s.je: 金额须为正数", p)
		} else if se.IsNegative() {
			return fail("%s.se: 税额须为正数或 0", p)
		}
		if l.Fphxz == "2" && (i+1 >= len(d.Mxlist) || d.Mxlist[i+1].Fphxz != "1") {
			return fail("%s.fphxz: 被折扣行后须紧跟折扣行", p)
		}
		lines[i] = jdAmounts{je: je, se: se}
		sumJE, sumSE, sumExpected = sumJE.Add(je), sumSE.Add(se), sumExpected.Add(expected)
	}
	switch {
	case !sumJE.Equal(hjje):
		return fail("hjje: %s 与明细金额合计 %s 不符", d.Hjje, sumJE.StringFixed(2))
	case !sumSE.Equal(hjse):
		return fail("hjse: %s 与明细税额合计 %s 不符", d.Hjse, sumSE.StringFixed(2))
	case !hjje.Add(hjse).Equal(jshj):
		return fail("jshj: %s 不等于 hjje + hjse = %s", d.Jshj, hjje.Add(hjse).StringFixed(2))
	case sumExpected.Sub(sumSE).Abs().GreaterThan(jdInvoiceTolerance):
		return fail("mxlist: 税额合计与 Σ je × sl 相差超过 1.27")
	}
	return lines, hjje, hjse, jshj, nil
}

// ---- blue invoices ----

func (s *Server) jdBlueSubmit(p url.Values, now time.Time) jdReply {
	if rep, ok := jdRequire(p, "taskId", "invoiceData"); !ok {
		return rep
	}
	// The form's values are slices of the request's body: a task keeps
	// copies, not the whole body.
	seller, taskID, raw := strings.Clone(p.Get("nsrsbh")), strings.Clone(p.Get("taskId")), p.Get("invoiceData")
	if len(taskID) > 64 {
		return jdFail(400, "参数错误: taskId 超过 64 个字符")
	}
	var doc jdDoc
	if err := jdDecodeStrict(raw, &doc); err != nil {
		return jdFail(400, "参数错误: invoiceData 不是有效的开票数据 JSON: %v", err)
	}
	lines, hjje, hjse, jshj, err := jdCheckDoc(&doc, seller)
	if err != nil {
		if doc.Ddh != "" {
			s.stats.submission("jumdata", seller, doc.Ddh)
		}
		return jdFail(400, "参数错误: invoiceData.%v", err)
	}

	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	key := seller + "\x00" + taskID
	t := st.tasks[key]
	switch {
	case t != nil && t.rawSum != sha256.Sum256([]byte(raw)):
		s.stats.submission("jumdata", seller, doc.Ddh)
		return jdFail(400, "参数错误: taskId %s 已用于其他开票数据, 同一taskId须使用相同参数", taskID)
	case t != nil:
		t.calls++
		s.stats.query("jumdata", seller, t.orderNo)
	default:
		t = &jdTask{
			seller: seller, taskID: taskID, orderNo: doc.Ddh, rawSum: sha256.Sum256([]byte(raw)), doc: &doc,
			lines: lines, hjje: hjje, hjse: hjse, jshj: jshj, created: now, calls: 1,
		}
		st.tasks[key] = t
		st.live = append(st.live, t)
		st.unsettled = append(st.unsettled, t)
		s.stats.submission("jumdata", seller, doc.Ddh)
	}
	if t.invoice == nil && !t.refused {
		if t.calls <= s.cfg.Jumdata.PendingPolls {
			return jdFail(202, "%s", jdMessages[202])
		}
		s.jdCompleteLocked(t, now)
	}
	if t.refused {
		return jdFail(399, "%s", jdBlueRefused)
	}
	return jdOK("开具成功", map[string]string{"fphm": t.invoice.fphm, "kprq": t.invoice.kprq.In(jdZone).Format(jdTimeLayout)})
}

// jdSweepLocked completes tasks older than jdSettleAfter and forms older
// than JumdataConfig.RedSettleAfter, as the tax bureau would without being
// asked, and forgets taskIds older than 8 hours. Callers hold st.mu.
func (s *Server) jdSweepLocked(now time.Time) {
	st := s.jumdata
	for len(st.unsettled) > 0 && now.Sub(st.unsettled[0].created) >= jdSettleAfter {
		t := st.unsettled[0]
		st.unsettled = st.unsettled[1:]
		if t.invoice == nil && !t.refused {
			s.jdCompleteLocked(t, now)
		}
	}
	for len(st.live) > 0 && now.Sub(st.live[0].created) >= jdTaskLife {
		t := st.live[0]
		st.live = st.live[1:]
		if key := t.seller + "\x00" + t.taskID; st.tasks[key] == t {
			delete(st.tasks, key)
		}
	}
	settle := s.cfg.Jumdata.RedSettleAfter
	if settle <= 0 {
		settle = jdSettleAfter
	}
	for len(st.formQueue) > 0 && now.Sub(st.formQueue[0].created) >= settle {
		f := st.formQueue[0]
		st.formQueue = st.formQueue[1:]
		if f.red == nil {
			s.jdIssueRedLocked(f, now)
		}
	}
}

// jdMagicFail in a blue task's bz has the tax bureau refuse it: the marker
// of Nuonuo's failed issuance.
const jdMagicFail = nnMagicFail

// jdBlueRefused is the sandbox's message for a blue task the tax bureau
// refused (SANDBOX:FAIL); the document gives 399's meaning, not its
// wording for an issuance.
const jdBlueRefused = "税局开票失败: 开票数据未通过税局校验 (SANDBOX:FAIL)"

// jdCompleteLocked completes a task: the tax bureau refuses it
// (SANDBOX:FAIL in bz) or issues its invoice. Callers hold st.mu.
func (s *Server) jdCompleteLocked(t *jdTask, now time.Time) {
	if strings.Contains(t.doc.Bz, jdMagicFail) {
		t.refused = true
		return
	}
	s.jdIssueLocked(t, now)
}

// jdIssueLocked issues the task's invoice. Callers hold st.mu.
func (s *Server) jdIssueLocked(t *jdTask, now time.Time) {
	st := s.jumdata
	hjje, hjse, jshj := t.hjje, t.hjse, t.jshj
	_, _, fphm := s.nextInvoiceNumbers()
	inv := &jdInvoice{
		seller: t.seller, orderNo: t.orderNo, fphm: fphm, kprq: now, doc: t.doc,
		hjje: hjje, hjse: hjse, jshj: jshj, lines: t.lines, leftJE: hjje, leftSE: hjse,
	}
	inv.pdfURL = s.storeInvoicePDF("jumdata-"+fphm+".pdf",
		"jumdata sandbox: fully digital invoice (blue)",
		"fphm "+fphm, "kprq "+now.In(jdZone).Format(jdTimeLayout),
		"seller "+t.seller, "buyer "+t.doc.Gmfnsrsbh, "order "+t.orderNo,
		"hjje "+hjje.StringFixed(2)+"  hjse "+hjse.StringFixed(2)+"  jshj "+jshj.StringFixed(2))
	t.invoice = inv
	st.blue[t.seller] = append(st.blue[t.seller], inv)
	st.byNumber[fphm] = inv
	s.stats.issued("jumdata", t.seller, t.orderNo, 1)
}

// jdBlueItem is one entry of blue-invoice/query, with the fields of the
// document's example.
type jdBlueItem struct {
	Gjbq            *string     `json:"gjbq"`
	Fphm            string      `json:"fphm"`
	Zzfphm          string      `json:"zzfphm"`
	Zzfpdm          string      `json:"zzfpdm"`
	Fplydm          string      `json:"fplydm"`
	Fplxdm          string      `json:"fplxdm"`
	Fppzdm          string      `json:"fppzdm"`
	Fpztdm          string      `json:"fpztdm"`
	Sflzfp          string      `json:"sflzfp"`
	Kjhzfpdydlzfphm *string     `json:"kjhzfpdydlzfphm"`
	Kpfnsrsbh       string      `json:"kpfnsrsbh"`
	Xsfnsrsbh       string      `json:"xsfnsrsbh"`
	Xsfmc           string      `json:"xsfmc"`
	Gmfnsrsbh       string      `json:"gmfnsrsbh"`
	Gmfmc           string      `json:"gmfmc"`
	Kprq            string      `json:"kprq"`
	Hjje            json.Number `json:"hjje"`
	Hjse            json.Number `json:"hjse"`
	Bz              *string     `json:"bz"`
	Fpkjfsdm        string      `json:"fpkjfsdm"`
	Kpr             *string     `json:"kpr"`
	Jshj            json.Number `json:"jshj"`
	Gmfzrrbz        *string     `json:"gmfzrrbz"`
	Tdyslxmc        string      `json:"tdyslxmc"`
	Hzqrxxuuid      *string     `json:"hzqrxxuuid"`
	Tdysmxlist      any         `json:"tdysmxlist"`
}

// jdList is a page of a list answer.
type jdList struct {
	PageNumber int `json:"pagenumber"`
	PageSize   int `json:"pagesize"`
	Total      int `json:"total"`
	List       any `json:"list"`
}

func jdNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// jdNum writes an amount as a JSON number the way jumdata does (74, 73.26).
func jdNum(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// jdSellerName is the seller's name on an invoice.
func jdSellerName(d *jdDoc) string {
	if d.Xsfmc != "" {
		return d.Xsfmc
	}
	return "沙箱纳税人" + d.Xsfnsrsbh
}

func (inv *jdInvoice) item() jdBlueItem {
	status := "01"
	switch {
	case inv.reds > 0 && inv.leftJE.IsZero() && inv.leftSE.IsZero():
		status = "04"
	case inv.reds > 0:
		status = "03"
	}
	fplxdm := "82" // 数电普票
	if inv.doc.Fppzdm == "01" {
		fplxdm = "81" // 数电专票
	}
	return jdBlueItem{
		Fphm: inv.fphm, Fplydm: "2", Fplxdm: fplxdm, Fppzdm: inv.doc.Fppzdm, Fpztdm: status, Sflzfp: "Y",
		Kpfnsrsbh: inv.seller, Xsfnsrsbh: inv.seller, Xsfmc: jdSellerName(inv.doc),
		Gmfnsrsbh: inv.doc.Gmfnsrsbh, Gmfmc: inv.doc.Gmfmc, Kprq: inv.kprq.In(jdZone).Format(jdTimeLayout),
		Hjje: jdNum(inv.hjje), Hjse: jdNum(inv.hjse), Jshj: jdNum(inv.jshj),
		Bz: jdNullable(inv.doc.Bz), Kpr: jdNullable(inv.doc.Kpr), Fpkjfsdm: "1",
		Hzqrxxuuid: jdNullable(inv.hzqrxxuuid),
	}
}

// jdDateRange reads kprqq..kprqz as [from, to) in China time.
func jdDateRange(p url.Values) (from, to time.Time, rep jdReply, ok bool) {
	if rep, ok := jdRequire(p, "kprqq", "kprqz"); !ok {
		return from, to, rep, false
	}
	from, err1 := time.ParseInLocation(jdDateLayout, p.Get("kprqq"), jdZone)
	last, err2 := time.ParseInLocation(jdDateLayout, p.Get("kprqz"), jdZone)
	switch {
	case err1 != nil:
		return from, to, jdFail(400, "参数错误: kprqq 须为 yyyy-MM-dd"), false
	case err2 != nil:
		return from, to, jdFail(400, "参数错误: kprqz 须为 yyyy-MM-dd"), false
	case last.Before(from):
		return from, to, jdFail(400, "参数错误: kprqz 早于 kprqq"), false
	}
	return from, last.AddDate(0, 0, 1), jdReply{}, true
}

// jdPaging reads pageNumber and pageSize.
func jdPaging(p url.Values, defaultSize int) (page, size int, rep jdReply, ok bool) {
	page, size = 1, defaultSize
	if v := p.Get("pageNumber"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, jdFail(400, "参数错误: pageNumber 须为正整数"), false
		}
		page = n
	}
	if v := p.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, jdFail(400, "参数错误: pageSize 须为正整数"), false
		}
		size = min(n, jdMaxPageSize)
	}
	return page, size, jdReply{}, true
}

// jdPageOf cuts one page out of items.
func jdPageOf[T any](items []T, page, size int) []T {
	start := (page - 1) * size
	if start >= len(items) {
		return []T{}
	}
	return items[start:min(start+size, len(items))]
}

func jdWithin(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

func (s *Server) jdBlueQuery(p url.Values, now time.Time) jdReply {
	from, to, rep, ok := jdDateRange(p)
	if !ok {
		return rep
	}
	page, size, rep, ok := jdPaging(p, 50)
	if !ok {
		return rep
	}
	seller, fphm, buyer, buyerName := p.Get("nsrsbh"), p.Get("fphm"), p.Get("dfnsrsbh"), p.Get("dfnsrmc")
	paper := p.Get("zzfpdm") != "" || p.Get("zzfphm") != ""
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	var items []jdBlueItem
	for _, inv := range st.blue[seller] {
		if paper || !jdWithin(inv.kprq, from, to) || (fphm != "" && inv.fphm != fphm) || (buyer != "" && inv.doc.Gmfnsrsbh != buyer) ||
			(buyerName != "" && inv.doc.Gmfmc != buyerName) {
			continue
		}
		items = append(items, inv.item())
	}
	return jdOK("成功", jdList{PageNumber: page, PageSize: size, Total: len(items), List: jdPageOf(items, page, size)})
}

// ---- red invoices ----

// jdRedLine is one line of hzmx.
type jdRedLine struct {
	Xh     int         `json:"xh"`
	Spmc   string      `json:"spmc"`
	Spbm   string      `json:"spbm"`
	Ggxh   string      `json:"ggxh"`
	Dw     string      `json:"dw"`
	Spsl   json.Number `json:"spsl"`
	Dj     json.Number `json:"dj"`
	Je     json.Number `json:"je"`
	Sl     json.Number `json:"sl"`
	Se     json.Number `json:"se"`
	Yhzcbs string      `json:"yhzcbs"`
}

// jdCheckHzmx reads the partial-red lines and returns their total je and se
// (negative).
func jdCheckHzmx(raw string) (je, se decimal.Decimal, n int, err error) {
	var lines []jdRedLine
	if err := jdDecodeStrict(raw, &lines); err != nil {
		return je, se, 0, fmt.Errorf("hzmx: 须为明细行 JSON 数组: %v", err)
	}
	if len(lines) == 0 {
		return je, se, 0, errors.New("hzmx: 为空数组; 全额红冲时请不传 hzmx")
	}
	var expected decimal.Decimal // Σ je × sl
	for i := range lines {
		l := &lines[i]
		p := fmt.Sprintf("hzmx[%d]", i)
		if l.Xh < 1 {
			return je, se, 0, fmt.Errorf("%s.xh: 须为蓝票明细行序号 (从 1 开始)", p)
		}
		if l.Spmc == "" {
			return je, se, 0, fmt.Errorf("%s.spmc: 缺少商品名称", p)
		}
		lje, _, err := jdLineNumber(l.Je, p+".je", 2, true)
		if err != nil {
			return je, se, 0, err
		}
		lse, _, err := jdLineNumber(l.Se, p+".se", 2, true)
		if err != nil {
			return je, se, 0, err
		}
		sl, err := jdRate(l.Sl, p+".sl")
		if err != nil {
			return je, se, 0, err
		}
		for _, f := range []struct {
			n    json.Number
			name string
		}{{l.Spsl, ".spsl"}, {l.Dj, ".dj"}} {
			if _, _, err := jdLineNumber(f.n, p+f.name, 8, false); err != nil {
				return je, se, 0, err
			}
		}
		switch {
		case !lje.IsNegative():
			return je, se, 0, fmt.Errorf("%s.je: 红冲金额须为负数", p)
		case lse.IsPositive():
			return je, se, 0, fmt.Errorf("%s.se: 红冲税额须为负数或 0", p)
		case lje.Mul(sl).Sub(lse).Abs().GreaterThan(jdLineTolerance):
			return je, se, 0, fmt.Errorf("%s.se: %s 与 je × sl 相差超过 0.06", p, l.Se)
		}
		je, se = je.Add(lje), se.Add(lse)
		expected = expected.Add(lje.Mul(sl))
		n = max(n, l.Xh)
	}
	// A red invoice is an invoice: the tax bureau holds its lines to the
	// same 1.27 per-invoice tolerance as a blue invoice's, which lines
	// each within 0.06 can still exceed together.
	if expected.Sub(se).Abs().GreaterThan(jdInvoiceTolerance) {
		return je, se, 0, errors.New("hzmx: 税额合计与 Σ je × sl 相差超过 1.27")
	}
	return je, se, n, nil
}

func jdHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (s *Server) jdRedSubmit(p url.Values, now time.Time) jdReply {
	if rep, ok := jdRequire(p, "lzfphm", "lzkprq", "chyydm"); !ok {
		return rep
	}
	seller, lzfphm, lzkprq, chyydm, hzmx := p.Get("nsrsbh"), p.Get("lzfphm"), p.Get("lzkprq"), p.Get("chyydm"), p.Get("hzmx")
	if !jdInvoiceNo.MatchString(lzfphm) {
		return jdFail(400, "参数错误: lzfphm 须为 20 位发票号码")
	}
	// The document writes the format as "yyyy-MM-dd HH:mm:dd", a typo for
	// HH:mm:ss.
	blueTime, err := time.ParseInLocation(jdTimeLayout, lzkprq, jdZone)
	if err != nil {
		return jdFail(400, "参数错误: lzkprq 须为 yyyy-MM-dd HH:mm:ss")
	}
	switch chyydm {
	case "01", "02", "03", "04":
	default:
		return jdFail(400, "参数错误: chyydm 须为 01(开票有误), 02(销货退回), 03(服务中止) 或 04(销售折让)")
	}
	partial := strings.TrimSpace(hzmx) != ""
	var je, se decimal.Decimal
	var maxXh int
	if partial {
		if je, se, maxXh, err = jdCheckHzmx(hzmx); err != nil {
			return jdFail(400, "参数错误: %v", err)
		}
	}

	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	blue := st.byNumber[lzfphm]
	if blue == nil || blue.seller != seller {
		return jdFail(399, "蓝字发票 %s 不存在", lzfphm)
	}
	order := "red:" + lzfphm
	if partial {
		order += ":" + jdHash(hzmx)[:8]
	}
	s.stats.submission("jumdata", seller, order)
	left := blue.leftJE.Add(blue.leftSE)
	switch {
	case blueTime.Format(jdDateLayout) != blue.kprq.In(jdZone).Format(jdDateLayout):
		return jdFail(399, "蓝字发票开票日期与发票号码不匹配")
	case left.IsZero():
		return jdFail(399, "%s", jdNoAmountLeft)
	case partial && maxXh > len(blue.lines):
		return jdFail(400, "参数错误: hzmx 明细行序号 %d 超出蓝票明细行数 %d", maxXh, len(blue.lines))
	case partial && (je.Neg().GreaterThan(blue.leftJE) || se.Neg().GreaterThan(blue.leftSE)):
		return jdFail(399, "红冲金额超过蓝票剩余可红冲金额")
	case !partial:
		je, se = blue.leftJE.Neg(), blue.leftSE.Neg()
	}
	blue.leftJE, blue.leftSE = blue.leftJE.Add(je), blue.leftSE.Add(se)
	st.seq++
	f := &jdForm{
		uuid: jdHash(fmt.Sprintf("form:%d:%s", st.seq, lzfphm))[:32], seller: seller, order: order,
		lzkprq: lzkprq, chyydm: chyydm, blue: blue, je: je, se: se, created: now,
	}
	st.forms[f.uuid] = f
	st.formList[seller] = append(st.formList[seller], f)
	blue.hzqrxxuuid = f.uuid
	switch s.cfg.Jumdata.RedAwait {
	case RedAwaitSeller:
		// Issued by red-confirmation/confirm only: not queued to
		// complete on its own.
	case RedAwaitBuyer:
		st.formQueue = append(st.formQueue, f)
	default:
		if s.cfg.Jumdata.RedPendingPolls <= 0 {
			s.jdIssueRedLocked(f, now)
			return jdOK("开具成功", f.result())
		}
		st.formQueue = append(st.formQueue, f)
	}
	return jdOK("红字确认单已提交, 请使用确认单uuid查询开具结果", map[string]string{"uuid": f.uuid})
}

// jdIssueRedLocked issues the red invoice of a form. Callers hold st.mu.
func (s *Server) jdIssueRedLocked(f *jdForm, now time.Time) {
	st := s.jumdata
	_, _, fphm := s.nextInvoiceNumbers()
	red := &jdRed{seller: f.seller, fphm: fphm, kprq: now, blue: f.blue, hjje: f.je, hjse: f.se}
	red.pdfURL = s.storeInvoicePDF("jumdata-"+fphm+".pdf",
		"jumdata sandbox: fully digital invoice (red)",
		"fphm "+fphm, "kprq "+now.In(jdZone).Format(jdTimeLayout),
		"reverses "+f.blue.fphm, "seller "+f.seller,
		"hjje "+f.je.StringFixed(2)+"  hjse "+f.se.StringFixed(2)+"  jshj "+f.je.Add(f.se).StringFixed(2))
	f.red = red
	f.blue.reds++
	st.red[f.seller] = append(st.red[f.seller], red)
	s.stats.issued("jumdata", f.seller, f.order, 1)
}

// result is the data of red-invoice/result for an issued form, with the
// fields of the document's example.
func (f *jdForm) result() map[string]any {
	r := f.red
	return map[string]any{
		"xsfmc": jdSellerName(f.blue.doc), "xsfnsrsbh": f.seller,
		"gmfmc": f.blue.doc.Gmfmc, "gmfnsrsbh": f.blue.doc.Gmfnsrsbh,
		"fphm": r.fphm, "fppzdm": f.blue.doc.Fppzdm, "kprq": r.kprq.In(jdZone).Format(jdTimeLayout),
		"jshj": jdNum(r.hjje.Add(r.hjse)), "gmfzrrbz": "N", "tdyslxdm": "",
	}
}

// jdFindFormLocked looks up the seller's form named by uuid and xsfnsrsbh. Callers
// hold st.mu.
func (s *Server) jdFindFormLocked(p url.Values) (*jdForm, jdReply, bool) {
	if rep, ok := jdRequire(p, "uuid", "xsfnsrsbh"); !ok {
		return nil, rep, false
	}
	if p.Get("xsfnsrsbh") != p.Get("nsrsbh") {
		return nil, jdFail(400, "参数错误: xsfnsrsbh 与 nsrsbh 不一致"), false
	}
	f := s.jumdata.forms[p.Get("uuid")]
	if f == nil || f.seller != p.Get("nsrsbh") {
		return nil, jdFail(400, "参数错误: 红字确认单 %s 不存在", p.Get("uuid")), false
	}
	return f, jdReply{}, true
}

func (s *Server) jdRedResult(p url.Values, now time.Time) jdReply {
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	f, rep, ok := s.jdFindFormLocked(p)
	if !ok {
		return rep
	}
	s.stats.query("jumdata", f.seller, f.order)
	if f.red == nil {
		if s.cfg.Jumdata.RedAwait == RedAwaitSeller || f.polls < s.cfg.Jumdata.RedPendingPolls {
			f.polls++
			return jdFail(202, "%s", jdMessages[202])
		}
		s.jdIssueRedLocked(f, now)
	}
	return jdOK("开具成功", f.result())
}

// jdRedItem is one entry of red-invoice/query, with the fields of the
// document's example.
type jdRedItem struct {
	Xsfmc           string      `json:"xsfmc"`
	Xsfnsrsbh       string      `json:"xsfnsrsbh"`
	Gmfmc           string      `json:"gmfmc"`
	Gmfnsrsbh       string      `json:"gmfnsrsbh"`
	Dfnsrmc         string      `json:"dfnsrmc"`
	Dfnsrsbh        string      `json:"dfnsrsbh"`
	Kjhzfpdydlzfphm string      `json:"kjhzfpdydlzfphm"`
	Kprq            string      `json:"kprq"`
	Fphm            string      `json:"fphm"`
	Fplydm          string      `json:"fplydm"`
	Fplxdm          string      `json:"fplxdm"`
	Hjje            json.Number `json:"hjje"`
	Hjse            json.Number `json:"hjse"`
	Zzfpdm          string      `json:"zzfpdm"`
	Sflzfp          string      `json:"sflzfp"`
	Zzfphm          string      `json:"zzfphm"`
}

func (s *Server) jdRedQuery(p url.Values, now time.Time) jdReply {
	from, to, rep, ok := jdDateRange(p)
	if !ok {
		return rep
	}
	page, size, rep, ok := jdPaging(p, 10)
	if !ok {
		return rep
	}
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	var items []jdRedItem
	for _, r := range st.red[p.Get("nsrsbh")] {
		if !jdWithin(r.kprq, from, to) {
			continue
		}
		d := r.blue.doc
		items = append(items, jdRedItem{
			Xsfmc: jdSellerName(d), Xsfnsrsbh: r.seller, Gmfmc: d.Gmfmc, Gmfnsrsbh: d.Gmfnsrsbh,
			Dfnsrmc: d.Gmfmc, Dfnsrsbh: d.Gmfnsrsbh, Kjhzfpdydlzfphm: r.blue.fphm,
			Kprq: r.kprq.In(jdZone).Format(jdTimeLayout), Fphm: r.fphm, Fplydm: "2", Fplxdm: r.blue.item().Fplxdm,
			Hjje: jdNum(r.hjje), Hjse: jdNum(r.hjse), Sflzfp: "N",
		})
	}
	return jdOK("成功", jdList{PageNumber: page, PageSize: size, Total: len(items), List: jdPageOf(items, page, size)})
}

// ---- red confirmation forms ----

// item describes a form in red-confirmation/query and /detail. Beyond the
// four fields of the document's example the fields are an assumption, named
// as the tax bureau names them.
func (f *jdForm) item() map[string]any {
	issued := "N"
	if f.red != nil {
		issued = "Y"
	}
	d := f.blue.doc
	return map[string]any{
		"uuid": f.uuid, "xsfmc": jdSellerName(d), "xsfnsrsbh": f.seller, "gmfmc": d.Gmfmc, "gmfnsrsbh": d.Gmfnsrsbh,
		"lzfphm": f.blue.fphm, "lzkprq": f.lzkprq, "chyydm": f.chyydm,
		"hzcxje": jdNum(f.je), "hzcxse": jdNum(f.se), "lrrq": f.created.In(jdZone).Format(jdTimeLayout),
		"hzqrxxztdm": "01", "ykjhzfpbz": issued,
	}
}

func (s *Server) jdFormQuery(p url.Values, now time.Time) jdReply {
	page, size, rep, ok := jdPaging(p, 10)
	if !ok {
		return rep
	}
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	forms := st.formList[p.Get("nsrsbh")]
	items := make([]map[string]any, 0, len(forms))
	for _, f := range forms {
		items = append(items, f.item())
	}
	return jdOK("成功", jdList{PageNumber: page, PageSize: size, Total: len(items), List: jdPageOf(items, page, size)})
}

func (s *Server) jdFormDetail(p url.Values, now time.Time) jdReply {
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	f, rep, ok := s.jdFindFormLocked(p)
	if !ok {
		return rep
	}
	return jdOK("成功", f.item())
}

func (s *Server) jdFormConfirm(p url.Values, now time.Time) jdReply {
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	f, rep, ok := s.jdFindFormLocked(p)
	if !ok {
		return rep
	}
	switch {
	case f.red != nil:
		return jdFail(399, "该红字确认单已开具红字发票")
	case s.cfg.Jumdata.RedAwait == RedAwaitBuyer:
		return jdFail(399, "该红字确认单需购买方确认")
	}
	s.jdIssueRedLocked(f, now)
	return jdOK("成功", nil)
}

// jdPage answers the download page of an invoice: here, its PDF.
func (s *Server) jdPage(p url.Values, now time.Time) jdReply {
	if rep, ok := jdRequire(p, "fphm", "kprq"); !ok {
		return rep
	}
	seller, fphm, kprq := p.Get("nsrsbh"), p.Get("fphm"), p.Get("kprq")
	st := s.jumdata
	st.mu.Lock()
	defer st.mu.Unlock()
	s.jdSweepLocked(now)
	var issued time.Time
	var pdf string
	if inv := st.byNumber[fphm]; inv != nil && inv.seller == seller {
		issued, pdf = inv.kprq, inv.pdfURL
	}
	for _, r := range st.red[seller] {
		if r.fphm == fphm {
			issued, pdf = r.kprq, r.pdfURL
		}
	}
	// kprq may be the date or the date and time of issue.
	if pdf == "" || !strings.HasPrefix(issued.In(jdZone).Format(jdTimeLayout), kprq) || len(kprq) < len(jdDateLayout) {
		return jdFail(399, "发票 %s 不存在", fphm)
	}
	return jdOK("成功", map[string]string{"url": pdf})
}
