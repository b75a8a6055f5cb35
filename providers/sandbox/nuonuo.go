package sandbox

// The Nuonuo open platform, as seeds 000, 001 and 002 and the platform's
// public documents describe it. This is an independent implementation: it
// decodes the raw JSON itself and shares no code with providers/nuonuo, so
// that client and sandbox cannot agree by construction.
//
// # Every call to POST /open/v1/services
//
// Checked in this order, answered in the envelope
// {"code","describe","result"} with Content-Type application/json;charset=UTF-8:
//
//	appkey not the configured AppKey                   070101 获取app密钥失败或appkey无效
//	senid not 32 hex, nonce not 8 digits,
//	  timestamp not digits                             0201   输入参数格式有误
//	timestamp more than 10 minutes off the clock       070601 验签失败 (clock skew, the documented cause)
//	X-Nuonuo-Sign not HMAC-SHA1 over the exact body    070601 签名不匹配
//	accessToken neither the static Token nor a live
//	  fetched token                                    070301 accessToken不匹配/或appKey不匹配
//	accessToken fetched but expired                    070301 accessToken已过期 (see below)
//	userTax header missing                             070401 调用用户身份不匹配
//	method header unknown                              070501 请求的API不存在
//	body not JSON                                      0201   输入参数格式有误
//
// The platform's public code list has no separate code for an expired token
// (070302 is "APP未申请该资源", the app lacks the API), so an expired token
// is answered 070301 with its own message, which is what makes a client
// refresh it.
//
// # POST /accessToken
//
// Form client_id, client_secret, grant_type=client_credentials, as
// application/x-www-form-urlencoded (else 070315). Every call is counted in
// Stats.TokenCalls["nuonuo"]; past NuonuoConfig.TokenCallLimit calls the
// answer is 070306. A wrong client_id is 070304, a wrong client_secret
// 070305 (both echo the value in brackets, as the platform's messages do), a
// wrong grant_type 070307. Refusals are {"error","error_description"}; a
// token is {"access_token","expires_in"} with expires_in a string of
// seconds, NuonuoConfig.TokenTTL. Fetched tokens stay valid until they
// expire, also after a newer one was fetched.
//
// # Methods
//
// requestBillingNew (both ElectronInvoice and OpeMplatform) validates what
// seed 001's codes name: E4000 (a required field is missing: order, orderNo,
// buyerName, salerTaxNum, invoiceDate, clerk, invoiceType, a line's
// goodsName, taxRate or withTaxFlag; a goodsName of more than 90
// characters; buyerAddress and buyerTel of more than 100 characters
// together; a field longer than seed 001's maximum (nnCheckLengths:
// buyerName 100, buyerTaxNum and salerTaxNum 20, buyerTel 50, buyerAddress
// 80, billInfoNo 24, clerk 20, pushMode 2, buyerPhone 20, invoiceLine 2, a
// line's favouredPolicyFlag 2 and favouredPolicyName 50, in characters); a line's favouredPolicyName for favouredPolicyFlag 1 on an
// invoice that is not fully digital (seed 001: 全电发票时为空); buyerPhone
// for pushMode 1 (the default)
// or 2, email for pushMode 0 or 2; a remark of more than 230 characters, or
// 200 on a fully digital invoice, invoiceLine bs, pc, es or ec
// (PROVIDERS.md); more than 2000 lines; a taxRate outside
// 0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09, 0.13 or longer than seed 001's
// 10 characters ("0.060000000"); an amount of more than 2
// decimal places, a price or num of more than 8; a price, num or deduction
// of more than 16 characters, its minus sign counted, a deduction that
// is not a number of at most 2 decimals, negative on a blue goods line or
// larger than its amount with tax; a deduction on a second line of the invoice
// (seed 001: 只支持填写一项; a deduction of "0" is none) or a deduction of
// 0.00 (or zero spelt otherwise, "0.0") on a fully digital invoice,
// invoiceLine bs, pc, es or ec (0.00（全电发票暂不支持）); a red special
// invoice's (invoiceLine s or b) billInfoNo, and a remark that does not
// hold 开具红字增值税专用发票信息表编号 followed by it; on a red order's line that
// is not a discount line, an amount that is not negative, given or computed,
// a positive tax or, on a goods line, a positive num; on a blue order's
// goods line an amount that is not positive, given or computed (a price ×
// num rounding to 0.00), or a negative tax, and on its discount line an
// amount that is not negative or a positive tax), E9101, E9102 (a red
// order's blue invoice code and number; on any order an invoiceCode of
// more than 12 characters or an invoiceNum of more than 8), E9104, E9105, E9106 (orderNo taken
// for this seller), E9107, E9108, E9110, E9111, E9112, E9114, E9116, E9119,
// E9121 (a goodsCode of other than 19 digits: PROVIDERS.md), E9122, E9123,
// E9124–E9129 (E9124, E9126 and E9128: taxIncludedAmount,
// taxExcludedAmount or tax longer than seed 001's 16 characters, a red
// amount's minus sign counted), E9130, E9131 ("金额*税率-税额大于0.06,明细行名称:xxx,第x行";
// also, with a message of the sandbox's, lines whose taxes are more than
// 1.27 off Σ taxExcludedAmount × taxRate together; a line with a deduction,
// deduction taxation (差额征税), counts (taxExcludedAmount − deduction) ×
// taxRate, and a tax it leaves to the platform is computed on the amount
// less the deduction),
// E9138 (goodsCode missing), E9154 and E9302 (userTax ≠ salerTaxNum). A
// line that leaves any of taxExcludedAmount, tax and taxIncludedAmount out
// is computed from price × num (the amount with tax for withTaxFlag 1,
// without for 0) and the rate, the amounts it gives set aside, as seed 001
// says (任何一个不传时，会根据传入的单价，数量进行计算), and the rules above hold
// the computed amounts. Every
// call that names an order counts as a submission, refused ones too. An
// accepted order answers E0000 with a 20-digit invoiceSerialNum and counts
// one issuance of N invoices: an order whose total (tax included) exceeds
// SplitLimit is split into ceil(total/SplitLimit) invoices, more than 10 is
// E9154 and nothing is issued.
//
// queryInvoiceResult takes serialNos or orderNos (serialNos win; at most 50,
// else E4000). An accepted order shows status 20 (开票中) for its first
// PendingQueries queries, then 2 (开票完成) with one entry per invoice:
// invoiceCode, invoiceNo, a 20-digit allElectronicInvoiceNumber, invoiceTime
// (epoch milliseconds, a JSON number), exTaxAmount/taxAmount/orderAmount as
// strings and a pdfUrl to a real PDF under /_sandbox/documents/. An order
// not (yet) issued shows one entry with status 20 or 22 (with failCause) and
// the order's amounts; a split order issued in part shows its issued
// invoices with status 2 and then one entry for the rest, with status 20 or
// 22, its share of the amounts and no numbers or pdfUrl. The amounts of a
// split order's entries add up to the order's exactly: each invoice but the
// last takes its rounded share, the last the remainder. When none of the
// requested orders exists the answer is E9500.
//
// reInvoice takes fpqqlsh or orderno (fpqqlsh wins). At most 20 calls per
// order; the 21st and later answer E9613. An issued order answers E0000
// "发票已生成，无需再重试开票" and nothing happens; an order still issuing
// answers E0000 "开票中（重试中）"; a failed order (22) goes back to issuing
// and will issue: that is its one issuance. An order that failed in part
// (SANDBOX:FAIL-PART below) issues only its failed invoice: the invoices
// issued before keep their numbers, amounts and PDFs, and the issuance
// already counted is completed, not counted again (Stats.Invoices grows,
// Stats.Issuances does not). An unknown order is E9500.
//
// saveInvoiceRedConfirm needs blueInvoiceLine, applySource (0 or 1),
// sellerTaxNo (= userTax, else E9302), buyerName, redReason 1–4, sellerName
// when the buyer applies, the blue invoice's numbers (E9102) and, on every
// detail line, blueDetailIndex, goodsName, taxRate and goodsCode, a
// blueDetailIndex that is a line number of at most 5 digits, greater than
// the line's before (seed 002: 部分冲红明细序号必须和原蓝票顺序保持一致), a
// goodsName of at most 90 characters and a goodsCode of 19 digits, a taxRate
// of at most 10 characters that is one of the VAT rates above, a
// positive taxExcludedPrice when given, a negative taxExcludedAmount and a
// taxAmount of zero or less (seed 002 marks both optional: a line that
// leaves the amount out is num × taxExcludedPrice rounded to cents, one
// without num and taxExcludedPrice is refused, and a line that leaves the
// tax out is the amount × taxRate rounded to cents), each of num, taxExcludedPrice,
// taxExcludedAmount and taxAmount at most 16 characters, the minus sign
// counted, and the two amounts with at most 2 decimals (seed 002; E4000). billId is
// the idempotency key: the same billId answers the same form id and creates
// nothing; without one the sandbox makes one up. The result is the form id,
// which is also the form's billNo. Submissions and the red invoice's issuance
// are counted under the form's orderNo, or its billId when it has none.
//
// queryInvoiceRedConfirm finds a form by billUuid, billId or billNo (in that
// order of preference; identity 0 or 1 is required) and answers
// {"total": n, "list": [...]}, an empty list when there is no such form.
// Each query that names a form moves it on: RedConfirmSteps queries in 15
// (申请中), then RedConfirmSteps in 02 (03 when the buyer applied), then 04
// (购销双方已确认). A seller's application for an individual buyer (applySource
// 0, no buyerTaxNo) needs no confirmation and goes from 15 to 01. On reaching
// 01 or 04 an electronic form (blueInvoiceLine pc, bs, p or b) issues its red
// invoice at once, as the platform does: the list entry then carries
// invoiceSerialNum and orderNo, and queryInvoiceResult knows the red invoice.
//
// # Magic values
//
//   - An order whose remark contains SANDBOX:FAIL ends in status 22 with a
//     failCause instead of 2, so that reInvoice can be exercised; reInvoice
//     then issues it. Nothing is counted as issued until then.
//   - An order whose remark contains SANDBOX:FAIL-PART is split as usual,
//     but its last invoice fails while the others are issued: the query
//     shows the issued invoices with status 2 and one entry with status 22,
//     a failCause and the failed invoice's amounts. The order counts one
//     issuance of its issued invoices at once; reInvoice then issues the
//     failed invoice, which completes that issuance (one more invoice, no
//     second issuance). An order of one invoice fails whole, as with
//     SANDBOX:FAIL. SANDBOX:FAIL-PART is not SANDBOX:FAIL: a remark must
//     hold SANDBOX:FAIL on its own (not as the start of SANDBOX:FAIL-PART)
//     to fail the whole order, which it does when it holds both.
//   - A red confirmation whose buyerName contains SANDBOX:REFUSE is refused
//     by the other party: 05 (06 when the buyer applied) instead of 04.
//   - A red confirmation whose buyerName contains SANDBOX:FAIL ends in 16
//     (申请失败) after 15 (SANDBOX:FAIL-PART means nothing there).

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Nuonuo's signature is HMAC-SHA1.
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/schemas"
)

// Nuonuo method names the sandbox serves.
const (
	nnBillingEI       = "nuonuo.ElectronInvoice.requestBillingNew"
	nnBillingOM       = "nuonuo.OpeMplatform.requestBillingNew"
	nnQueryEI         = "nuonuo.ElectronInvoice.queryInvoiceResult"
	nnQueryOM         = "nuonuo.OpeMplatform.queryInvoiceResult"
	nnReInvoice       = "nuonuo.OpeMplatform.reInvoice"
	nnSaveRedConfirm  = "nuonuo.OpeMplatform.saveInvoiceRedConfirm"
	nnQueryRedConfirm = "nuonuo.OpeMplatform.queryInvoiceRedConfirm"

	nnMaxRetries    = 20
	nnMaxInvoices   = 10
	nnMaxQuery      = 50
	nnMaxLines      = 2000
	nnClockSkew     = 10 * time.Minute
	nnMaxBody       = 8 << 20
	nnMagicFail     = "SANDBOX:FAIL"
	nnMagicFailPart = "SANDBOX:FAIL-PART"
	nnMagicRefuse   = "SANDBOX:REFUSE"

	// nnMaxRemark is seed 001's maximum length of remark, in characters,
	// and nnMaxDigitalRemark PROVIDERS.md's on a fully digital invoice
	// (nnDigitalLines).
	nnMaxRemark        = 230
	nnMaxDigitalRemark = 200

	// nnMaxBuyerContact is seed 001's maximum length of buyerAddress and
	// buyerTel together, in characters.
	nnMaxBuyerContact = 100

	// nnMaxDetailIndex is seed 002's maximum length of a red confirmation
	// line's blueDetailIndex.
	nnMaxDetailIndex = 5

	// nnMaxPolicyFlag and nnMaxPolicyName are the maximum lengths of a
	// line's favouredPolicyFlag and favouredPolicyName (nnCheckLine).
	nnMaxPolicyFlag = 2
	nnMaxPolicyName = 50
)

// nnMaxFigure is the maximum length of every amount, price, quantity and
// deduction (最大长度 16 in seeds 001 and 002), its text counted whole: a
// red figure's minus sign is one of the 16 (红票为负; seed 002: 带负号).
const nnMaxFigure = 16

// nnMaxRate is the maximum length of a line's taxRate (最大长度 10 in seed
// 001), its text counted whole.
const nnMaxRate = 10

// Invoice statuses of queryInvoiceResult.
const (
	nnIssued  = "2"
	nnIssuing = "20"
	nnFailed  = "22"
)

var nnStatusMsg = map[string]string{nnIssued: "开票完成", nnIssuing: "开票中", nnFailed: "开票失败"}

// Red confirmation form statuses.
var nnBillMsg = map[string]string{
	"01": "无需确认",
	"02": "销方录入待购方确认",
	"03": "购方录入待销方确认",
	"04": "购销双方已确认",
	"05": "作废（销方录入购方否认）",
	"06": "作废（购方录入销方否认）",
	"15": "申请中",
	"16": "申请失败",
}

// nuonuoState is the Nuonuo side's memory: fetched tokens, orders and red
// confirmation forms.
type nuonuoState struct {
	mu         sync.Mutex
	tokens     map[string]time.Time // fetched token → expiry
	tokenCalls int
	orders     map[nnKey]*nnOrder // (seller, orderNo)
	serials    map[string]*nnOrder
	forms      map[nnKey]*nnForm // (seller, billId)
	seq        uint64
}

type nnKey struct{ seller, id string }

// nnOrder is one order of requestBillingNew (or a red invoice issued from a
// confirmation form).
type nnOrder struct {
	seller, orderNo, serial string
	line, invoiceType       string
	buyer                   string
	fail                    string // nnMagicFail or nnMagicFailPart: the current issuance attempt fails (whole or its last invoice)
	status                  string
	polls                   int // queries since the last (re)submission
	retries                 int // reInvoice calls
	parts                   int
	exTax, tax, total       decimal.Decimal
	failCause               string
	invoices                []nnInvoice // issued so far, in order; all o.parts once issued
}

type nnInvoice struct {
	code, number, digital string
	at                    time.Time
	exTax, tax, total     string
	pdfURL                string
}

// nnForm is one red confirmation form.
type nnForm struct {
	seller, billID, billNo, uuid  string
	statsKey                      string
	applySource, blueLine, blueNo string
	sellerName, buyerTaxNo, buyer string
	redReason, orderNo            string
	exTax, tax                    decimal.Decimal
	noConfirm, refuse, fail       bool
	status                        string
	polls                         int
	billTime, confirmTime         time.Time
	redSerial, redOrderNo         string
}

func newNuonuoState() *nuonuoState {
	return &nuonuoState{
		tokens:  map[string]time.Time{},
		orders:  map[nnKey]*nnOrder{},
		serials: map[string]*nnOrder{},
		forms:   map[nnKey]*nnForm{},
	}
}

var nuonuoSpec = providerSpec{
	name:   "nuonuo",
	seller: func(r *http.Request) string { return r.Header.Get("userTax") },
	method: func(r *http.Request) string { return r.Header.Get("method") },
	answer: func(w http.ResponseWriter, code, message string) {
		writeJSON(w, http.StatusOK, map[string]string{"code": code, "describe": message})
	},
	rateLimited: func(w http.ResponseWriter) {
		writeJSON(w, http.StatusOK, map[string]string{"code": "070201", "describe": "请求过于频繁"})
	},
}

// nnAnswer is one envelope.
type nnAnswer struct {
	code, describe string
	result         any
}

func nnFail(code, format string, args ...any) nnAnswer {
	return nnAnswer{code: code, describe: fmt.Sprintf(format, args...)}
}

func nnOK(describe string, result any) nnAnswer {
	return nnAnswer{code: "E0000", describe: describe, result: result}
}

func nnWrite(w http.ResponseWriter, a nnAnswer) {
	m := map[string]any{"code": a.code, "describe": a.describe}
	if a.result != nil {
		m["result"] = a.result
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) nuonuoServices(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, nnMaxBody))
	if err != nil {
		nnWrite(w, nnFail("0201", "输入参数格式有误: 请求报文无法读取"))
		return
	}
	if a, ok := s.nnVerify(r, body); !ok {
		nnWrite(w, a)
		return
	}
	seller := r.Header.Get("userTax")
	var a nnAnswer
	switch method := r.Header.Get("method"); method {
	case nnBillingEI, nnBillingOM, nnQueryEI, nnQueryOM, nnReInvoice, nnSaveRedConfirm, nnQueryRedConfirm:
		if !json.Valid(body) {
			a = nnFail("0201", "输入参数格式有误")
			break
		}
		switch method {
		case nnBillingEI, nnBillingOM:
			a = s.nnRequestBilling(seller, body)
		case nnQueryEI, nnQueryOM:
			a = s.nnQueryInvoice(seller, body)
		case nnReInvoice:
			a = s.nnReInvoice(seller, body)
		case nnSaveRedConfirm:
			a = s.nnSaveRedConfirm(seller, body)
		default:
			a = s.nnQueryRedConfirm(seller, body)
		}
	default:
		a = nnFail("070501", "请求的API不存在: %s", method)
	}
	nnWrite(w, a)
}

var (
	nnSenidRe = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	nnNonceRe = regexp.MustCompile(`^[1-9][0-9]{7}$`)
	nnDigits  = regexp.MustCompile(`^[0-9]+$`)
)

// nnVerify checks the public parameters, the signature and the token.
func (s *Server) nnVerify(r *http.Request, body []byte) (nnAnswer, bool) {
	cfg := s.cfg.Nuonuo
	q := r.URL.Query()
	appKey, senid, nonce, ts := q.Get("appkey"), q.Get("senid"), q.Get("nonce"), q.Get("timestamp")
	if appKey != cfg.AppKey {
		return nnFail("070101", "获取app密钥失败或appkey无效"), false
	}
	if !nnSenidRe.MatchString(senid) || !nnNonceRe.MatchString(nonce) || !nnDigits.MatchString(ts) {
		return nnFail("0201", "输入参数格式有误: senid须为32位随机码, nonce须为8位随机正整数, timestamp须为当前时间的秒数"), false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nnFail("0201", "输入参数格式有误: timestamp"), false
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > nnClockSkew || d < -nnClockSkew {
		return nnFail("070601", "验签失败: 请检查服务器时间是否与北京时间保持一致"), false
	}
	mac := hmac.New(sha1.New, []byte(cfg.AppSecret))
	io.WriteString(mac, "a=services&l=v1&p=open&k="+appKey+"&i="+senid+"&n="+nonce+"&t="+ts+"&f=")
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Nuonuo-Sign"))) {
		return nnFail("070601", "签名不匹配"), false
	}
	tok := r.Header.Get("accessToken")
	if tok != cfg.Token {
		n := s.nuonuo
		n.mu.Lock()
		exp, ok := n.tokens[tok]
		n.mu.Unlock()
		switch {
		case tok == "" || !ok:
			return nnFail("070301", "accessToken不匹配/或appKey不匹配"), false
		case !s.now().Before(exp):
			return nnFail("070301", "accessToken已过期"), false
		}
	}
	if r.Header.Get("userTax") == "" {
		return nnFail("070401", "调用用户身份不匹配: 请检查商户税号userTax和token是否匹配"), false
	}
	return nnAnswer{}, true
}

func (s *Server) nuonuoToken(w http.ResponseWriter, r *http.Request) {
	s.stats.tokenCall("nuonuo")
	cfg := s.cfg.Nuonuo
	n := s.nuonuo
	n.mu.Lock()
	n.tokenCalls++
	calls := n.tokenCalls
	n.mu.Unlock()
	refuse := func(code, desc string) {
		writeJSON(w, http.StatusOK, map[string]string{"error": code, "error_description": desc})
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		refuse("070315", "Incorrect content-type")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if err := r.ParseForm(); err != nil {
		refuse("070315", "Incorrect content-type")
		return
	}
	switch id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"); {
	case cfg.TokenCallLimit > 0 && calls > cfg.TokenCallLimit:
		refuse("070306", "The number of calls is limited")
		return
	case id != cfg.AppKey:
		refuse("070304", "Incorrect clientId["+id+"]")
		return
	case secret != cfg.AppSecret:
		refuse("070305", "Incorrect clientSecret["+secret+"]")
		return
	case r.PostForm.Get("grant_type") != "client_credentials":
		refuse("070307", "Incorrect grant_type["+r.PostForm.Get("grant_type")+"]")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	n.mu.Lock()
	n.tokens[tok] = s.now().Add(cfg.TokenTTL)
	n.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"access_token": tok,
		"expires_in":   strconv.FormatInt(int64(cfg.TokenTTL/time.Second), 10),
	})
}

// nnText is a JSON string or number (kept as its literal text) or null.
type nnText string

func (t *nnText) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0 || string(b) == "null":
		*t = ""
	case b[0] == '"':
		s, err := schemas.UnquoteString(b)
		if err != nil {
			return err
		}
		*t = nnText(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*t = nnText(n.String())
	}
	return nil
}

func (t nnText) s() string { return strings.TrimSpace(string(t)) }

type nnOrderIn struct {
	BuyerName        nnText     `json:"buyerName"`
	BuyerTaxNum      nnText     `json:"buyerTaxNum"`
	BuyerPhone       nnText     `json:"buyerPhone"`
	BuyerAddress     nnText     `json:"buyerAddress"`
	BuyerTel         nnText     `json:"buyerTel"`
	SalerTaxNum      nnText     `json:"salerTaxNum"`
	OrderNo          nnText     `json:"orderNo"`
	InvoiceDate      nnText     `json:"invoiceDate"`
	InvoiceCode      nnText     `json:"invoiceCode"`
	InvoiceNum       nnText     `json:"invoiceNum"`
	BillInfoNo       nnText     `json:"billInfoNo"`
	Clerk            nnText     `json:"clerk"`
	PushMode         nnText     `json:"pushMode"`
	Email            nnText     `json:"email"`
	InvoiceType      nnText     `json:"invoiceType"`
	InvoiceLine      nnText     `json:"invoiceLine"`
	Remark           nnText     `json:"remark"`
	ProxyInvoiceFlag nnText     `json:"proxyInvoiceFlag"`
	InvoiceDetail    []nnLineIn `json:"invoiceDetail"`
}

type nnLineIn struct {
	GoodsName           nnText `json:"goodsName"`
	GoodsCode           nnText `json:"goodsCode"`
	WithTaxFlag         nnText `json:"withTaxFlag"`
	Price               nnText `json:"price"`
	Num                 nnText `json:"num"`
	Tax                 nnText `json:"tax"`
	TaxRate             nnText `json:"taxRate"`
	TaxExcludedAmount   nnText `json:"taxExcludedAmount"`
	TaxIncludedAmount   nnText `json:"taxIncludedAmount"`
	InvoiceLineProperty nnText `json:"invoiceLineProperty"`
	Deduction           nnText `json:"deduction"`
	FavouredPolicyFlag  nnText `json:"favouredPolicyFlag"`
	FavouredPolicyName  nnText `json:"favouredPolicyName"`
}

var nnNumberRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// nnLine is a line's amounts once read. ded is its deduction (扣除额),
// zero when it has none; deducts is set when the line is taxed on the
// difference (差额征税): its deduction is written, and not "0".
type nnLine struct {
	name, prop           string
	rate, num            *decimal.Decimal
	excl, tax, incl, ded decimal.Decimal
	deducts              bool
}

var (
	nnTol        = decimal.RequireFromString("0.06")
	nnInvoiceTol = decimal.RequireFromString("1.27")
	nnOne        = decimal.NewFromInt(1)
)

func (s *Server) nnRequestBilling(seller string, body []byte) nnAnswer {
	var in struct {
		Order *nnOrderIn `json:"order"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nnFail("E4000", "接口调用失败: 报文格式有误")
	}
	o := in.Order
	if o == nil {
		return nnFail("E4000", "接口调用失败: order不能为空")
	}
	orderNo := o.OrderNo.s()
	if orderNo == "" {
		return nnFail("E4000", "接口调用失败: orderNo不能为空")
	}
	s.stats.submission("nuonuo", seller, orderNo)
	if a, ok := s.nnCheckOrder(seller, o); !ok {
		return a
	}
	lines, a, ok := nnCheckLines(o)
	if !ok {
		return a
	}
	var exTax, tax, total decimal.Decimal
	for _, l := range lines {
		exTax, tax, total = exTax.Add(l.excl), tax.Add(l.tax), total.Add(l.incl)
	}
	parts := 1
	if limit := s.cfg.Nuonuo.SplitLimit; limit.IsPositive() && total.Abs().GreaterThan(limit) {
		parts = int(total.Abs().Div(limit).Ceil().IntPart())
	}
	if parts > nnMaxInvoices {
		return nnFail("E9154", "订单被拆分后大于10张发票")
	}
	n := s.nuonuo
	n.mu.Lock()
	key := nnKey{seller, orderNo}
	if _, dup := n.orders[key]; dup {
		n.mu.Unlock()
		return nnFail("E9106", "订单编号或流水号不能重复")
	}
	ord := &nnOrder{
		seller: seller, orderNo: orderNo, serial: s.nnSerial(n),
		line: o.InvoiceLine.s(), invoiceType: o.InvoiceType.s(), buyer: o.BuyerName.s(),
		fail:   nnRemarkFail(string(o.Remark)),
		status: nnIssuing, parts: parts, exTax: exTax, tax: tax, total: total,
	}
	n.orders[key] = ord
	n.serials[ord.serial] = ord
	n.mu.Unlock()
	// An issuance is counted once it is decided, with the invoices it will
	// issue: none for SANDBOX:FAIL, all but the last for SANDBOX:FAIL-PART.
	if good := parts - nnFailing(ord.fail, parts); good > 0 {
		s.stats.issued("nuonuo", seller, orderNo, good)
	}
	return nnOK("开票提交成功", map[string]string{"invoiceSerialNum": ord.serial})
}

// nnRemarkFail returns the failure magic an order's remark asks for:
// nnMagicFail, nnMagicFailPart or "". SANDBOX:FAIL is a prefix of
// SANDBOX:FAIL-PART, so it counts only where it is not the start of one.
func nnRemarkFail(remark string) string {
	switch {
	case strings.Contains(strings.ReplaceAll(remark, nnMagicFailPart, ""), nnMagicFail):
		return nnMagicFail
	case strings.Contains(remark, nnMagicFailPart):
		return nnMagicFailPart
	}
	return ""
}

// nnFailing is how many of an order's parts invoices fail under the magic
// fail: all for SANDBOX:FAIL, the last for SANDBOX:FAIL-PART, else none.
func nnFailing(fail string, parts int) int {
	switch fail {
	case nnMagicFail:
		return parts
	case nnMagicFailPart:
		return 1
	}
	return 0
}

// nnSerial returns a new 20-digit serial number; callers hold n.mu.
func (s *Server) nnSerial(n *nuonuoState) string {
	n.seq++
	return s.now().Format("060102150405") + fmt.Sprintf("%08d", n.seq%100000000)
}

// nnCheckOrder applies the order-level rules.
func (s *Server) nnCheckOrder(seller string, o *nnOrderIn) (nnAnswer, bool) {
	for _, f := range []struct {
		name string
		v    nnText
	}{{"buyerName", o.BuyerName}, {"salerTaxNum", o.SalerTaxNum}, {"invoiceDate", o.InvoiceDate}, {"clerk", o.Clerk}, {"invoiceType", o.InvoiceType}} {
		if f.v.s() == "" {
			return nnFail("E4000", "接口调用失败: %s不能为空", f.name), false
		}
	}
	if utf8.RuneCountInString(o.OrderNo.s()) > 20 {
		return nnFail("E4000", "接口调用失败: orderNo不能超过20位"), false
	}
	if a, ok := nnCheckLengths(o); !ok {
		return a, false
	}
	if _, err := time.Parse("2006-01-02 15:04:05", o.InvoiceDate.s()); err != nil {
		return nnFail("E4000", "接口调用失败: invoiceDate格式须为yyyy-MM-dd HH:mm:ss"), false
	}
	if t := o.InvoiceType.s(); t != "1" && t != "2" {
		return nnFail("E9101", "开票类型错误(1:正票 2:红票)"), false
	}
	if o.SalerTaxNum.s() != seller {
		return nnFail("E9302", "身份认证与当前企业税号不相符"), false
	}
	if utf8.RuneCountInString(o.Email.s()) > 50 {
		return nnFail("E9104", "购方邮箱不能超过50位"), false
	}
	// Seed 001 gives remark a maximum length of 230 and PROVIDERS.md 200
	// on a fully digital invoice, neither with a code of its own: E4000,
	// which the validator names for it (schemas: max_length on
	// order.remark). Characters are counted, as the validator counts them.
	if n := utf8.RuneCountInString(o.Remark.s()); nnDigitalLines[o.InvoiceLine.s()] && n > nnMaxDigitalRemark {
		return nnFail("E4000", "接口调用失败: 全电发票remark不能超过%d个字符", nnMaxDigitalRemark), false
	} else if n > nnMaxRemark {
		return nnFail("E4000", "接口调用失败: remark不能超过%d个字符", nnMaxRemark), false
	}
	// Seed 001, buyerAddress and buyerTel: 购方地址+电话总共不超100字符, with
	// no code of its own: E4000, which the validator names for it
	// (schemas: max_length on order.buyerAddress). Characters are counted
	// as sent, as the validator counts them.
	if n := utf8.RuneCountInString(string(o.BuyerAddress)) + utf8.RuneCountInString(string(o.BuyerTel)); n > nnMaxBuyerContact {
		return nnFail("E4000", "接口调用失败: 购方地址+电话(buyerAddress+buyerTel)总共不能超过%d个字符", nnMaxBuyerContact), false
	}
	pushMode := o.PushMode.s()
	if pushMode == "" {
		pushMode = "1"
	}
	if (pushMode == "1" || pushMode == "2") && o.BuyerPhone.s() == "" {
		return nnFail("E4000", "接口调用失败: 推送方式为手机时buyerPhone不能为空"), false
	}
	if (pushMode == "0" || pushMode == "2") && o.Email.s() == "" {
		return nnFail("E4000", "接口调用失败: 推送方式为邮箱时email不能为空"), false
	}
	if f := o.ProxyInvoiceFlag.s(); f != "" && f != "0" && f != "1" {
		return nnFail("E9107", "代开标志只能为0和1"), false
	}
	if o.InvoiceType.s() == "2" {
		code, num := o.InvoiceCode.s(), o.InvoiceNum.s()
		if !nnDigits.MatchString(code) || (len(code) != 10 && len(code) != 12) || !nnDigits.MatchString(num) || len(num) != 8 {
			return nnFail("E9102", "发票号码或发票代码不正确"), false
		}
		// Seed 001, billInfoNo: 专票冲红时此项必填，且必须在备注中注明“开具
		// 红字增值税专用发票信息表编号ZZZZZZZZZZZZZZZZ”字样. Its special VAT
		// invoices are s (专用发票) and b (增值税电子专用发票). No code of
		// its own: E4000, which the validator names for both (schemas:
		// required on order.billInfoNo, red_remark on order.remark). Both
		// are read as sent, as the validator reads them.
		if line := o.InvoiceLine.s(); line == "s" || line == "b" {
			form := string(o.BillInfoNo)
			if form == "" {
				return nnFail("E4000", "接口调用失败: 专票冲红时billInfoNo(红字信息表编号)不能为空"), false
			}
			if !strings.Contains(string(o.Remark), nnRedSpecialRemark+form) {
				return nnFail("E4000", "接口调用失败: 专票冲红时remark须注明“%s%s”字样", nnRedSpecialRemark, form), false
			}
		}
	}
	return nnAnswer{}, true
}

// nnCheckLengths holds the order's fields to seed 001's maximum lengths
// (最大长度): those of the fields the sandbox reads whose length no other
// rule here bounds. Not orderNo, invoiceDate (a format of 19 characters),
// email (E9104), remark (230, or 200), buyerAddress and buyerTel together
// (100), and not the enumerations invoiceType (E9101), proxyInvoiceFlag
// (E9107) and a line's withTaxFlag and invoiceLineProperty, whose values
// are checked; pushMode and invoiceLine are enumerations whose values the
// sandbox does not check, held to their lengths here. Seed 001 names a
// code for the blue invoice's code and number, E9102 (发票号码或发票代码不正确),
// which the validator names for them; the others have none of their own:
// E4000, a private parameter whose value is wrong.
//
// A value is counted as sent, in characters, as the validator counts it
// (the JSON Schema's maxLength), and a tax number without the spaces
// around it, which the validator's pattern allows. The check runs before
// the seller's tax number is compared with userTax (E9302): one too long
// is a parameter's wrong value, and no seller's.
func nnCheckLengths(o *nnOrderIn) (nnAnswer, bool) {
	for _, f := range []struct {
		name string
		v    string
		max  int
		code string
	}{
		{"buyerName", string(o.BuyerName), 100, "E4000"},
		{"buyerTaxNum", o.BuyerTaxNum.s(), 20, "E4000"},
		{"buyerTel", string(o.BuyerTel), 50, "E4000"},
		{"buyerAddress", string(o.BuyerAddress), 80, "E4000"},
		{"salerTaxNum", o.SalerTaxNum.s(), 20, "E4000"},
		{"invoiceCode", string(o.InvoiceCode), 12, "E9102"},
		{"invoiceNum", string(o.InvoiceNum), 8, "E9102"},
		{"billInfoNo", string(o.BillInfoNo), 24, "E4000"},
		{"clerk", string(o.Clerk), 20, "E4000"},
		{"pushMode", string(o.PushMode), 2, "E4000"},
		{"buyerPhone", string(o.BuyerPhone), 20, "E4000"},
		{"invoiceLine", string(o.InvoiceLine), 2, "E4000"},
	} {
		if utf8.RuneCountInString(f.v) <= f.max {
			continue
		}
		if f.code == "E9102" {
			return nnFail(f.code, "发票号码或发票代码不正确: %s不能超过%d位", f.name, f.max), false
		}
		return nnFail(f.code, "接口调用失败: %s不能超过%d个字符", f.name, f.max), false
	}
	return nnAnswer{}, true
}

// nnRedSpecialRemark is the text that, followed by billInfoNo, the remark
// of a red special VAT invoice must hold (seed 001).
const nnRedSpecialRemark = "开具红字增值税专用发票信息表编号"

// nnCheckLines applies the line rules and returns every line's amounts.
func nnCheckLines(o *nnOrderIn) ([]nnLine, nnAnswer, bool) {
	if len(o.InvoiceDetail) == 0 {
		return nil, nnFail("E9122", "商品详情为空"), false
	}
	if len(o.InvoiceDetail) > nnMaxLines {
		return nil, nnFail("E4000", "接口调用失败: 商品明细最多2000行"), false
	}
	red := o.InvoiceType.s() == "2"
	digital := nnDigitalLines[o.InvoiceLine.s()]
	lines := make([]nnLine, len(o.InvoiceDetail))
	for i := range o.InvoiceDetail {
		l, a, ok := nnCheckLine(&o.InvoiceDetail[i], i, red)
		if !ok {
			return nil, a, false
		}
		// Seed 001, favouredPolicyName: 当favouredPolicyFlag为1时，此项必填
		// （全电发票时为空）: required on a tax-control invoice, left empty on
		// a fully digital one, whose favouredPolicyFlag takes the codes 01
		// to 18 instead. No code of its own: E4000.
		if in := &o.InvoiceDetail[i]; !digital && in.FavouredPolicyFlag.s() == "1" && in.FavouredPolicyName.s() == "" {
			return nil, nnFail("E4000", "接口调用失败: favouredPolicyFlag为1时favouredPolicyName不能为空,第%d行", i+1), false
		}
		lines[i] = l
	}
	if a, ok := nnCheckDeductions(lines, o.InvoiceLine.s()); !ok {
		return nil, a, false
	}
	for i, l := range lines {
		switch l.prop {
		case "2":
			if i+1 >= len(lines) || lines[i+1].prop != "1" {
				return nil, nnFail("E9110", "折扣行必须紧挨被折扣行之后,第%d行", i+1), false
			}
		case "1":
			if i == 0 || lines[i-1].prop != "2" {
				return nil, nnFail("E9110", "折扣行必须紧挨被折扣行之后,第%d行", i+1), false
			}
			prev := lines[i-1]
			if l.name != prev.name {
				return nil, nnFail("E9105", "折扣行的商品名称必须和被折扣行相同,第%d行", i+1), false
			}
			if !l.rate.Equal(*prev.rate) {
				return nil, nnFail("E9112", "折扣行商品税率必须和被折扣行商品税率相同,第%d行", i+1), false
			}
			if l.incl.Abs().GreaterThan(prev.incl.Abs()) || l.excl.Abs().GreaterThan(prev.excl.Abs()) {
				return nil, nnFail("E9108", "折扣行金额不能大于被折扣行的金额,第%d行", i+1), false
			}
		}
		// Seed 001's codes of a discount pair's quantities first: an
		// amount computed from price × num has the quantity's sign, and
		// its wrong sign below follows from the quantity's, which the
		// seed names.
		if l.num != nil && !l.num.IsZero() {
			neg := l.num.IsNegative()
			switch {
			case !red && l.prop == "1" && !neg:
				return nil, nnFail("E9111", "蓝票折扣行商品数量应为负,第%d行", i+1), false
			case !red && l.prop == "2" && neg:
				return nil, nnFail("E9114", "蓝票被折扣行商品数量应为正,第%d行", i+1), false
			case red && l.prop == "1" && neg:
				return nil, nnFail("E9116", "红票折扣行商品数量应为正,第%d行", i+1), false
			case red && l.prop == "2" && !neg:
				return nil, nnFail("E9119", "红票被折扣行商品数量应为负,第%d行", i+1), false
			}
		}
		// Seed 001: a red invoice's amounts are negative (红票为负), given
		// or computed from price × num, and so is its quantity (开具红票时
		// 数量为负数); a tax of zero (rate 0) has no sign, and a num of zero
		// is left alone here as below. A discount line
		// is left to E9116, whose quantity is positive. Seed 001 gives no
		// code of its own: E4000, a private parameter whose value is wrong.
		if red && l.prop != "1" {
			for _, f := range []struct {
				name string
				bad  bool
			}{
				{"taxIncludedAmount", !l.incl.IsNegative()},
				{"taxExcludedAmount", !l.excl.IsNegative()},
				{"tax", l.tax.IsPositive()},
				{"num", l.prop == "0" && l.num != nil && l.num.IsPositive()},
			} {
				if f.bad {
					return nil, nnFail("E4000", "接口调用失败: 红票%s须为负数,第%d行", f.name, i+1), false
				}
			}
		}
		// A blue invoice's figures are not a red one's (seed 001: 红票为
		// 负; seed 002's red lines carry the minus sign): a goods line's
		// amounts are positive, given or computed from price × num, and
		// its tax is not negative; a discount line's are the reverse. A
		// price × num that rounds to 0.00 is no amount, and an invoice
		// line of zero sells nothing. Seed 001 gives no code of its own:
		// E4000.
		if !red {
			discount := l.prop == "1"
			for _, f := range []struct {
				name, want string
				bad        bool
			}{
				{"taxIncludedAmount", "须为正数", !discount && !l.incl.IsPositive()},
				{"taxExcludedAmount", "须为正数", !discount && !l.excl.IsPositive()},
				{"tax", "不能为负数", !discount && l.tax.IsNegative()},
				{"taxIncludedAmount", "须为负数", discount && !l.incl.IsNegative()},
				{"taxExcludedAmount", "须为负数", discount && !l.excl.IsNegative()},
				{"tax", "不能为正数", discount && l.tax.IsPositive()},
			} {
				if !f.bad {
					continue
				}
				kind := "蓝票"
				if discount {
					kind = "折扣行"
				}
				return nil, nnFail("E4000", "接口调用失败: %s%s%s,第%d行", kind, f.name, f.want, i+1), false
			}
		}
		// Deduction taxation deducts from the amount with tax: a
		// deduction larger than it leaves a negative amount to tax, which
		// the tax bureau does not issue; at rate 0 a tax of 0.00 agrees
		// with it, so E9131 does not catch it. A red or discount line,
		// whose amounts are negative, is left alone: seed 001 does not
		// say which sign its deduction takes. No code of its own: E4000.
		// (A negative deduction is refused with the line, nnCheckLine.)
		if !red && l.prop != "1" && l.ded.GreaterThan(decimal.Max(l.incl, l.excl)) {
			return nil, nnFail("E4000", "接口调用失败: deduction不能大于含税金额,第%d行", i+1), false
		}
	}
	// Lines each within 0.06 can still add up to more than the tax
	// bureau's 1.27 per invoice. Seed 001 gives no code of its own for
	// that: it is E9131's rule summed, and the message is the sandbox's.
	var expected, tax decimal.Decimal
	for i := range lines {
		expected, tax = expected.Add(lines[i].expectedTax()), tax.Add(lines[i].tax)
	}
	if expected.Sub(tax).Abs().GreaterThan(nnInvoiceTol) {
		return nil, nnFail("E9131", "金额*税率-税额合计大于1.27"), false
	}
	return lines, nnAnswer{}, true
}

// nnCheckDeductions applies seed 001's limits of deduction taxation (差额
// 征税) to an invoice's lines: "目前只支持填写一项" (one line at most is taxed on
// the difference) and "传0.00才表示差额征税：0.00（全电发票暂不支持）" (a
// deduction of 0.00 is not taken on a fully digital invoice, invoiceLine
// bs, pc, es or ec). A deduction of "0" is none either way; any other zero
// ("0.0", "-0.00") is deduction taxation with nothing deducted, as 0.00 is
// (only 0, empty or absent is none), and refused on a fully digital
// invoice as 0.00 is: it read the text "0.00" alone, and issued "0.0"
// there while the validator refuses it (deduction_fully_digital). The
// seed gives neither limit a code of its own: E4000.
func nnCheckDeductions(lines []nnLine, invoiceLine string) (nnAnswer, bool) {
	first := -1
	for i, l := range lines {
		if !l.deducts {
			continue
		}
		if l.ded.IsZero() && nnDigitalLines[invoiceLine] {
			return nnFail("E4000", "接口调用失败: 全电发票暂不支持deduction传0.00(差额征税),第%d行", i+1), false
		}
		if first >= 0 {
			return nnFail("E4000", "接口调用失败: deduction目前只支持填写一项(差额征税已在第%d行),第%d行", first+1, i+1), false
		}
		first = i
	}
	return nnAnswer{}, true
}

// nnCheckLine reads and checks one line of an invoice, red or not.
func nnCheckLine(in *nnLineIn, i int, red bool) (nnLine, nnAnswer, bool) {
	row := i + 1
	l := nnLine{name: in.GoodsName.s(), prop: in.InvoiceLineProperty.s()}
	if l.prop == "" {
		l.prop = "0"
	}
	switch {
	case l.name == "":
		return l, nnFail("E4000", "接口调用失败: goodsName不能为空,第%d行", row), false
	case in.TaxRate.s() == "":
		return l, nnFail("E4000", "接口调用失败: taxRate不能为空,第%d行", row), false
	case in.WithTaxFlag.s() != "0" && in.WithTaxFlag.s() != "1":
		return l, nnFail("E4000", "接口调用失败: withTaxFlag只能为0或1,第%d行", row), false
	case l.prop != "0" && l.prop != "1" && l.prop != "2":
		return l, nnFail("E4000", "接口调用失败: invoiceLineProperty只能为0、1或2,第%d行", row), false
	case in.GoodsCode.s() == "":
		return l, nnFail("E9138", "商品编码获取出现异常,第%d行", row), false
	}
	if a, ok := nnCheckGoods(in.GoodsName, in.GoodsCode, "E9121", row); !ok {
		return l, a, false
	}
	// Seed 001 gives favouredPolicyName at most 50 characters and
	// favouredPolicyFlag 1, though its own description gives a fully
	// digital invoice's flags two digits (01 to 18): 2, as the validator
	// reads it. No code of their own: E4000. Counted as sent, in
	// characters, as the validator counts them.
	for _, f := range []struct {
		name string
		v    nnText
		max  int
	}{{"favouredPolicyFlag", in.FavouredPolicyFlag, nnMaxPolicyFlag}, {"favouredPolicyName", in.FavouredPolicyName, nnMaxPolicyName}} {
		if utf8.RuneCountInString(string(f.v)) > f.max {
			return l, nnFail("E4000", "接口调用失败: %s不能超过%d个字符,第%d行", f.name, f.max, row), false
		}
	}
	// Seed 001: taxRate has at most 10 characters, and no code of its
	// own: E4000.
	if r := in.TaxRate.s(); len(r) > nnMaxRate && nnNumberRe.MatchString(r) {
		return l, nnFail("E4000", "接口调用失败: taxRate不能超过%d位,第%d行", nnMaxRate, row), false
	}
	rate, ok := nnDecimal(in.TaxRate.s())
	if !ok {
		return l, nnFail("E4000", "接口调用失败: taxRate只能是数字,第%d行", row), false
	}
	// VAT has these rates only; seed 001 gives no code of its own for
	// another, so it is E4000, a private parameter whose value is wrong.
	if !nnValidRate(rate) {
		return l, nnFail("E4000", "接口调用失败: taxRate不是有效税率,第%d行", row), false
	}
	l.rate = &rate
	amounts := []struct {
		v                 string
		tooLong, notDigit string
		what, name        string
		dst               *decimal.Decimal
	}{
		{in.TaxIncludedAmount.s(), "E9124", "E9125", "含税金额", "taxIncludedAmount", &l.incl},
		{in.TaxExcludedAmount.s(), "E9126", "E9127", "不含税金额", "taxExcludedAmount", &l.excl},
		{in.Tax.s(), "E9128", "E9129", "税额", "tax", &l.tax},
	}
	given := 0
	for _, a := range amounts {
		if a.v == "" {
			continue
		}
		// Seed 001 names E9124, E9126 and E9128 for an amount too long
		// ("不能超过20位" in its words) and gives the fields a maximum
		// length of 16, as the validator holds them: a longer number is
		// refused with the field's code.
		if len(a.v) > nnMaxFigure && nnNumberRe.MatchString(a.v) {
			return l, nnFail(a.tooLong, "%s不能超过%d位(含负号),第%d行", a.what, nnMaxFigure, row), false
		}
		d, ok := nnDecimal(a.v)
		if !ok {
			return l, nnFail(a.notDigit, "%s只能是数字,第%d行", a.what, row), false
		}
		// Amounts are in cents; seed 001 gives no code of its own for
		// more places, so it is E4000, a private parameter whose value
		// is wrong.
		if nnPlaces(a.v) > 2 {
			return l, nnFail("E4000", "接口调用失败: %s最多2位小数,第%d行", a.name, row), false
		}
		*a.dst = d
		given++
	}
	price, num := in.Price.s(), in.Num.s()
	if price == "" && (num != "" || given < 3) {
		return l, nnFail("E9123", "项目单价为空时，含税金额、不含税金额、税额都不能为空,第%d行", row), false
	}
	var p, q decimal.Decimal
	for _, f := range []struct {
		v    string
		dst  *decimal.Decimal
		name string
	}{{price, &p, "price"}, {num, &q, "num"}} {
		if f.v == "" {
			continue
		}
		// Seed 001: price and num have at most 16 characters, and no
		// code of their own: E4000.
		if len(f.v) > nnMaxFigure && nnNumberRe.MatchString(f.v) {
			return l, nnFail("E4000", "接口调用失败: %s不能超过%d位(含负号),第%d行", f.name, nnMaxFigure, row), false
		}
		d, ok := nnDecimal(f.v)
		if !ok {
			return l, nnFail("E4000", "接口调用失败: %s只能是数字,第%d行", f.name, row), false
		}
		// Seed 001: price and num are precise to 8 decimal places.
		if nnPlaces(f.v) > 8 {
			return l, nnFail("E4000", "接口调用失败: %s最多8位小数,第%d行", f.name, row), false
		}
		*f.dst = d
	}
	if num != "" {
		l.num = &q
	}
	// Seed 001: deduction (扣除额) is an amount of at most 16 characters;
	// it gives no code of its own: E4000. It is filled in for deduction
	// taxation (差额征收时填写), which taxes the amount less the deduction:
	// the tax is (taxIncludedAmount − deduction) × rate / (1 + rate), that
	// is (taxExcludedAmount − deduction) × rate. A deduction of "0", empty
	// or absent is none (非差额征税), and "0.00" deducts nothing: either
	// way the whole amount is taxed. A negative deduction would add to
	// the amount taxed: on a blue goods line it is refused before the
	// tax is computed or checked with it (a red or discount line's is
	// left alone: seed 001 does not say which sign its deduction takes).
	// nnCheckDeductions holds the invoice to one line taxed on the
	// difference and keeps 0.00 off a fully digital invoice.
	if ded := in.Deduction.s(); ded != "" {
		switch {
		case !nnNumberRe.MatchString(ded):
			return l, nnFail("E4000", "接口调用失败: deduction只能是数字,第%d行", row), false
		case len(ded) > nnMaxFigure:
			return l, nnFail("E4000", "接口调用失败: deduction不能超过%d位(含负号),第%d行", nnMaxFigure, row), false
		case nnPlaces(ded) > 2:
			return l, nnFail("E4000", "接口调用失败: deduction最多2位小数,第%d行", row), false
		}
		l.ded, _ = nnDecimal(ded)
		if l.ded.IsNegative() && !red && l.prop != "1" {
			return l, nnFail("E4000", "接口调用失败: deduction不能为负数,第%d行", row), false
		}
		l.deducts = ded != "0"
	}
	// Seed 001: "不含税金额、税额、含税金额任何一个不传时，会根据传入的单价，数量
	// 进行计算": a line that leaves any of its three amounts out is computed
	// from price × num and the rate, and the amounts it gives are set aside.
	if given < 3 {
		if num == "" {
			return l, nnFail("E4000", "接口调用失败: 单价不为空时数量不能为空,第%d行", row), false
		}
		amount := p.Mul(q).Round(2)
		if in.WithTaxFlag.s() == "1" {
			l.incl = amount
			l.tax = amount.Sub(l.ded).Mul(rate).Div(nnOne.Add(rate)).Round(2)
			l.excl = l.incl.Sub(l.tax)
		} else {
			l.excl = amount
			l.tax = amount.Sub(l.ded).Mul(rate).Round(2)
			l.incl = l.excl.Add(l.tax)
		}
	}
	if !l.excl.Add(l.tax).Equal(l.incl) {
		return l, nnFail("E9130", "（不含税金额+税额）不等于含税金额,第%d行", row), false
	}
	if l.expectedTax().Sub(l.tax).Abs().GreaterThan(nnTol) {
		return l, nnFail("E9131", "金额*税率-税额大于0.06,明细行名称:%s,第%d行", l.name, row), false
	}
	return l, nnAnswer{}, true
}

// nnMaxGoodsName is the maximum length of a line's goodsName, in
// characters (最大长度 90 in seeds 001 and 002), and nnGoodsCodeLen the
// length of its goodsCode: PROVIDERS.md says a goods code, the tax
// classification code (商品税收分类编码), has 19 digits, and seeds 001 and
// 002 give it a maximum length of 19.
const (
	nnMaxGoodsName = 90
	nnGoodsCodeLen = 19
)

// nnCheckGoods checks a line's goodsName and goodsCode, which its caller
// found given, as seeds 001 and 002 and PROVIDERS.md limit them: a name of
// at most 90 characters (no code of its own: E4000) and a code of 19
// digits, refused with codeCode: seed 001's E9121 (获取商品编码失败,
// 填写商品编码goodsCode) on an order's line, which the validator names for
// it, E4000 on a red confirmation's (seed 002 lists no codes). The name is
// counted as sent, in characters, as the validator counts it. row is the
// line's number, from 1.
func nnCheckGoods(name, code nnText, codeCode string, row int) (nnAnswer, bool) {
	if n := utf8.RuneCountInString(string(name)); n > nnMaxGoodsName {
		return nnFail("E4000", "接口调用失败: goodsName不能超过%d个字符,第%d行", nnMaxGoodsName, row), false
	}
	if c := code.s(); len(c) != nnGoodsCodeLen || !nnDigits.MatchString(c) {
		return nnFail(codeCode, "获取商品编码失败: goodsCode须为%d位数字的税收分类编码,第%d行", nnGoodsCodeLen, row), false
	}
	return nnAnswer{}, true
}

// expectedTax is the tax the rate asks of the line: (taxExcludedAmount −
// deduction) × rate, the whole amount's without a deduction.
func (l *nnLine) expectedTax() decimal.Decimal { return l.excl.Sub(l.ded).Mul(*l.rate) }

// nnRates are the VAT rates a line may carry.
var nnRates = []decimal.Decimal{
	decimal.Zero, decimal.RequireFromString("0.01"), decimal.RequireFromString("0.015"), decimal.RequireFromString("0.03"),
	decimal.RequireFromString("0.05"), decimal.RequireFromString("0.06"), decimal.RequireFromString("0.09"), decimal.RequireFromString("0.13"),
}

// nnValidRate reports whether rate is one of nnRates.
func nnValidRate(rate decimal.Decimal) bool {
	for _, r := range nnRates {
		if rate.Equal(r) {
			return true
		}
	}
	return false
}

// nnPlaces is the number of decimal places written in s, a number
// nnDecimal accepted.
func nnPlaces(s string) int {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

func nnDecimal(s string) (decimal.Decimal, bool) {
	if !nnNumberRe.MatchString(s) || len(s) > 40 {
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(s)
	return d, err == nil
}

// nnEntry is one entry of queryInvoiceResult's answer.
type nnEntry struct {
	SerialNo                   string `json:"serialNo"`
	OrderNo                    string `json:"orderNo"`
	Status                     string `json:"status"`
	StatusMsg                  string `json:"statusMsg"`
	FailCause                  string `json:"failCause,omitempty"`
	InvoiceCode                string `json:"invoiceCode,omitempty"`
	InvoiceNo                  string `json:"invoiceNo,omitempty"`
	AllElectronicInvoiceNumber string `json:"allElectronicInvoiceNumber,omitempty"`
	InvoiceTime                int64  `json:"invoiceTime,omitempty"`
	ExTaxAmount                string `json:"exTaxAmount"`
	TaxAmount                  string `json:"taxAmount"`
	OrderAmount                string `json:"orderAmount"`
	InvoiceLine                string `json:"invoiceLine,omitempty"`
	InvoiceType                string `json:"invoiceType"`
	PayerName                  string `json:"payerName,omitempty"`
	SalerTaxNum                string `json:"salerTaxNum"`
	PdfURL                     string `json:"pdfUrl,omitempty"`
	OfdURL                     string `json:"ofdUrl"`
	XMLURL                     string `json:"xmlUrl"`
}

func (s *Server) nnQueryInvoice(seller string, body []byte) nnAnswer {
	var in struct {
		SerialNos []string `json:"serialNos"`
		OrderNos  []string `json:"orderNos"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nnFail("E4000", "接口调用失败: 报文格式有误")
	}
	ids, bySerial := in.OrderNos, false
	if len(in.SerialNos) > 0 {
		ids, bySerial = in.SerialNos, true
	}
	switch {
	case len(ids) == 0:
		return nnFail("E4000", "接口调用失败: serialNos和orderNos不能同时为空")
	case len(ids) > nnMaxQuery:
		return nnFail("E4000", "接口调用失败: 单次最多查询50条")
	}
	n := s.nuonuo
	entries := []nnEntry{}
	for _, id := range ids {
		n.mu.Lock()
		var o *nnOrder
		if bySerial {
			if c := n.serials[id]; c != nil && c.seller == seller {
				o = c
			}
		} else {
			o = n.orders[nnKey{seller, id}]
		}
		if o == nil {
			n.mu.Unlock()
			if !bySerial {
				s.stats.query("nuonuo", seller, id)
			}
			continue
		}
		s.nnAdvance(o)
		entries = append(entries, nnEntries(o)...)
		orderNo := o.orderNo
		n.mu.Unlock()
		s.stats.query("nuonuo", seller, orderNo)
	}
	if len(entries) == 0 {
		return nnFail("E9500", "未查询到发票信息")
	}
	return nnOK("查询成功", entries)
}

// nnAdvance moves an issuing order on by one query; callers hold n.mu.
func (s *Server) nnAdvance(o *nnOrder) {
	if o.status != nnIssuing {
		return
	}
	o.polls++
	if o.polls <= s.cfg.Nuonuo.PendingQueries {
		return
	}
	if o.fail != "" {
		// The invoices before the failing ones are issued all the same.
		s.nnIssue(o, o.parts-nnFailing(o.fail, o.parts))
		o.status = nnFailed
		o.failCause = "开票失败: 税控设备离线 (" + o.fail + ")"
		return
	}
	s.nnMaterialize(o)
}

// nnMaterialize issues an order's invoices not issued yet; callers hold
// n.mu.
func (s *Server) nnMaterialize(o *nnOrder) {
	s.nnIssue(o, o.parts)
	o.status = nnIssued
}

// nnIssue issues an order's invoices up to the upto-th, keeping those issued
// before; callers hold n.mu.
func (s *Server) nnIssue(o *nnOrder, upto int) {
	at := s.now()
	for i := len(o.invoices); i < upto; i++ {
		ex, tx := nnShare(o, i)
		code, number, digital := s.nextInvoiceNumbers()
		inv := nnInvoice{code: code, number: number, digital: digital, at: at,
			exTax: ex.StringFixed(2), tax: tx.StringFixed(2), total: ex.Add(tx).StringFixed(2)}
		inv.pdfURL = s.storeInvoicePDF("nuonuo-"+digital+".pdf",
			"Nuonuo sandbox invoice (not a real fapiao)",
			"Seller tax number: "+o.seller,
			"Order: "+o.orderNo+"  serial: "+o.serial,
			fmt.Sprintf("Invoice %d of %d  code %s  number %s", i+1, o.parts, code, number),
			"Fully digital number: "+digital,
			"Issued: "+at.Format(time.RFC3339),
			"Excluding tax: "+inv.exTax+"  tax: "+inv.tax+"  total: "+inv.total,
		)
		o.invoices = append(o.invoices, inv)
	}
}

// nnShare returns the amounts of invoice i (from 0) of an order: each
// invoice but the last its share rounded to cents, the last the remainder,
// so that they add up to the order's exactly.
func nnShare(o *nnOrder, i int) (exTax, tax decimal.Decimal) {
	parts := decimal.NewFromInt(int64(o.parts))
	exShare, taxShare := o.exTax.Div(parts).Round(2), o.tax.Div(parts).Round(2)
	if i < o.parts-1 {
		return exShare, taxShare
	}
	before := decimal.NewFromInt(int64(o.parts - 1))
	return o.exTax.Sub(exShare.Mul(before)), o.tax.Sub(taxShare.Mul(before))
}

// nnEntries renders an order for queryInvoiceResult: its issued invoices
// with status 2 and, unless the order is issued, one entry for the rest with
// the order's status (20 or 22), failCause and the rest's amounts (the
// order's when nothing was issued yet). Callers hold n.mu.
func nnEntries(o *nnOrder) []nnEntry {
	base := nnEntry{
		SerialNo: o.serial, OrderNo: o.orderNo, Status: nnIssued, StatusMsg: nnStatusMsg[nnIssued],
		InvoiceLine: o.line, InvoiceType: o.invoiceType, PayerName: o.buyer, SalerTaxNum: o.seller,
	}
	out := make([]nnEntry, 0, len(o.invoices)+1)
	for _, inv := range o.invoices {
		e := base
		e.InvoiceCode, e.InvoiceNo, e.AllElectronicInvoiceNumber = inv.code, inv.number, inv.digital
		e.InvoiceTime = inv.at.UnixMilli()
		e.ExTaxAmount, e.TaxAmount, e.OrderAmount = inv.exTax, inv.tax, inv.total
		e.PdfURL = inv.pdfURL
		out = append(out, e)
	}
	if o.status == nnIssued {
		return out
	}
	rest := base
	rest.Status, rest.StatusMsg, rest.FailCause = o.status, nnStatusMsg[o.status], o.failCause
	ex, tx := o.exTax, o.tax
	for i := range o.invoices {
		e, t := nnShare(o, i)
		ex, tx = ex.Sub(e), tx.Sub(t)
	}
	rest.ExTaxAmount, rest.TaxAmount, rest.OrderAmount = ex.StringFixed(2), tx.StringFixed(2), ex.Add(tx).StringFixed(2)
	return append(out, rest)
}

func (s *Server) nnReInvoice(seller string, body []byte) nnAnswer {
	var in struct {
		Fpqqlsh nnText `json:"fpqqlsh"`
		OrderNo nnText `json:"orderno"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nnFail("E4000", "接口调用失败: 报文格式有误")
	}
	if in.Fpqqlsh.s() == "" && in.OrderNo.s() == "" {
		return nnFail("E4000", "接口调用失败: 流水号和订单号不能同时为空")
	}
	n := s.nuonuo
	n.mu.Lock()
	var o *nnOrder
	if serial := in.Fpqqlsh.s(); serial != "" {
		if c := n.serials[serial]; c != nil && c.seller == seller {
			o = c
		}
	} else {
		o = n.orders[nnKey{seller, in.OrderNo.s()}]
	}
	if o == nil {
		n.mu.Unlock()
		if no := in.OrderNo.s(); no != "" && in.Fpqqlsh.s() == "" {
			s.stats.submission("nuonuo", seller, no)
		}
		return nnFail("E9500", "发票不存在")
	}
	orderNo := o.orderNo
	o.retries++
	var a nnAnswer
	issue := false
	switch {
	case o.retries > nnMaxRetries:
		a = nnFail("E9613", "同一流水号(订单号)单最多重试20次")
	case o.status == nnIssued:
		a = nnOK("发票已生成，无需再重试开票", "发票已生成，无需再重试开票")
	case o.status == nnIssuing:
		a = nnOK("开票中（重试中），请耐心等待开票结果", "开票中（重试中），请耐心等待开票结果")
	default: // failed: issue again what was not issued
		o.status, o.polls, o.fail, o.failCause = nnIssuing, 0, "", ""
		issue = true
		a = nnOK("重试成功", "重试成功")
	}
	parts, done := o.parts, len(o.invoices)
	n.mu.Unlock()
	s.stats.submission("nuonuo", seller, orderNo)
	switch {
	case !issue:
	case done > 0:
		// Failed in part (SANDBOX:FAIL-PART): its issuance was counted with
		// the invoices issued then; issuing the rest completes it.
		s.stats.completed("nuonuo", seller, orderNo, parts-done)
	default:
		s.stats.issued("nuonuo", seller, orderNo, parts)
	}
	return a
}

type nnRedIn struct {
	BillID                nnText `json:"billId"`
	BlueInvoiceLine       nnText `json:"blueInvoiceLine"`
	ApplySource           nnText `json:"applySource"`
	BlueInvoiceNumber     nnText `json:"blueInvoiceNumber"`
	BlueInvoiceCode       nnText `json:"blueInvoiceCode"`
	BlueElecInvoiceNumber nnText `json:"blueElecInvoiceNumber"`
	SellerTaxNo           nnText `json:"sellerTaxNo"`
	SellerName            nnText `json:"sellerName"`
	BuyerTaxNo            nnText `json:"buyerTaxNo"`
	BuyerName             nnText `json:"buyerName"`
	RedReason             nnText `json:"redReason"`
	OrderNo               nnText `json:"orderNo"`
	Detail                []struct {
		BlueDetailIndex   nnText `json:"blueDetailIndex"`
		GoodsName         nnText `json:"goodsName"`
		TaxRate           nnText `json:"taxRate"`
		GoodsCode         nnText `json:"goodsCode"`
		Num               nnText `json:"num"`
		TaxExcludedPrice  nnText `json:"taxExcludedPrice"`
		TaxExcludedAmount nnText `json:"taxExcludedAmount"`
		TaxAmount         nnText `json:"taxAmount"`
	} `json:"detail"`
}

var nnDigitalLines = map[string]bool{"pc": true, "bs": true, "es": true, "ec": true}

func (s *Server) nnSaveRedConfirm(seller string, body []byte) nnAnswer {
	var in nnRedIn
	if err := json.Unmarshal(body, &in); err != nil {
		return nnFail("E4000", "接口调用失败: 报文格式有误")
	}
	billID := in.BillID.s()
	if utf8.RuneCountInString(billID) > 32 {
		return nnFail("E4000", "接口调用失败: billId不能超过32位")
	}
	statsKey := in.OrderNo.s()
	n := s.nuonuo
	if billID == "" {
		n.mu.Lock()
		n.seq++
		billID = fmt.Sprintf("SBX%017d", n.seq)
		n.mu.Unlock()
	}
	if statsKey == "" {
		statsKey = billID
	}
	s.stats.submission("nuonuo", seller, statsKey)
	for _, f := range []struct {
		name string
		v    nnText
	}{{"blueInvoiceLine", in.BlueInvoiceLine}, {"applySource", in.ApplySource}, {"sellerTaxNo", in.SellerTaxNo}, {"buyerName", in.BuyerName}, {"redReason", in.RedReason}} {
		if f.v.s() == "" {
			return nnFail("E4000", "接口调用失败: %s不能为空", f.name)
		}
	}
	src := in.ApplySource.s()
	switch {
	case src != "0" && src != "1":
		return nnFail("E4000", "接口调用失败: applySource只能为0或1")
	case src == "1" && in.SellerName.s() == "":
		return nnFail("E4000", "接口调用失败: 购方申请时sellerName不能为空")
	case !strings.Contains("1234", in.RedReason.s()) || len(in.RedReason.s()) != 1:
		return nnFail("E4000", "接口调用失败: redReason只能为1、2、3、4")
	case in.SellerTaxNo.s() != seller:
		return nnFail("E9302", "身份认证与当前企业税号不相符")
	}
	line := in.BlueInvoiceLine.s()
	blueNo := in.BlueElecInvoiceNumber.s()
	if nnDigitalLines[line] {
		if blueNo == "" && len(in.BlueInvoiceNumber.s()) == 20 {
			blueNo = in.BlueInvoiceNumber.s()
		}
		if !nnDigits.MatchString(blueNo) || len(blueNo) != 20 {
			return nnFail("E9102", "发票号码或发票代码不正确")
		}
	} else {
		code, num := in.BlueInvoiceCode.s(), in.BlueInvoiceNumber.s()
		if !nnDigits.MatchString(code) || (len(code) != 10 && len(code) != 12) || !nnDigits.MatchString(num) || len(num) != 8 {
			return nnFail("E9102", "发票号码或发票代码不正确")
		}
		blueNo = num
	}
	var exTax, tax decimal.Decimal
	lastIndex := 0 // the previous line's blueDetailIndex; a line number is 1 or more
	for i, d := range in.Detail {
		// Seed 002 marks these four required on every detail line.
		for _, f := range []struct {
			name string
			v    nnText
		}{{"blueDetailIndex", d.BlueDetailIndex}, {"goodsName", d.GoodsName}, {"taxRate", d.TaxRate}, {"goodsCode", d.GoodsCode}} {
			if f.v.s() == "" {
				return nnFail("E4000", "接口调用失败: %s不能为空,第%d行", f.name, i+1)
			}
		}
		// Seed 002: blueDetailIndex is 对应蓝票明细行序号 (the blue
		// invoice's line number, 最大长度 5), and 部分冲红明细序号必须和原蓝票
		// 顺序保持一致: the lines follow the blue invoice's, each number
		// greater than the line's before (a blue line is not reversed
		// twice in one form). No code of its own: E4000, which the
		// validator names for both (schemas: format and max_length on
		// blueDetailIndex, detail_order). The sandbox does not know the
		// blue invoice's lines, so a number beyond them, or a discount
		// line's (seed 002: 折扣行的序号不传), is not refused.
		idx := d.BlueDetailIndex.s()
		if len(idx) > nnMaxDetailIndex || !nnDigits.MatchString(idx) {
			return nnFail("E4000", "接口调用失败: blueDetailIndex须为蓝票明细行序号(最多%d位数字),第%d行", nnMaxDetailIndex, i+1)
		}
		n, _ := strconv.Atoi(idx) // at most 5 digits
		if n <= lastIndex {
			return nnFail("E4000", "接口调用失败: blueDetailIndex须和原蓝票顺序保持一致(%d不大于上一行的%d),第%d行", n, lastIndex, i+1)
		}
		lastIndex = n
		if a, ok := nnCheckGoods(d.GoodsName, d.GoodsCode, "E4000", i+1); !ok {
			return a
		}
		// Seed 002: taxRate has at most 10 characters; a line's rate is a
		// VAT rate, as on an order's line (nnCheckLine). It gives no code
		// of its own: E4000.
		r := d.TaxRate.s()
		switch rate, ok := nnDecimal(r); {
		case len(r) > nnMaxRate && nnNumberRe.MatchString(r):
			return nnFail("E4000", "接口调用失败: taxRate不能超过%d位,第%d行", nnMaxRate, i+1)
		case !ok:
			return nnFail("E4000", "接口调用失败: taxRate只能是数字,第%d行", i+1)
		case !nnValidRate(rate):
			return nnFail("E4000", "接口调用失败: taxRate不是有效税率,第%d行", i+1)
		}
		// Seed 002: num, taxExcludedPrice, taxExcludedAmount and
		// taxAmount have at most 16 characters, the minus sign included
		// (带负号), and the amounts two decimals (精确到小数点后面两位). It
		// gives no code of its own: E4000.
		for _, f := range []struct {
			name string
			v    nnText
		}{{"num", d.Num}, {"taxExcludedPrice", d.TaxExcludedPrice}, {"taxExcludedAmount", d.TaxExcludedAmount}, {"taxAmount", d.TaxAmount}} {
			if v := f.v.s(); len(v) > nnMaxFigure && nnNumberRe.MatchString(v) {
				return nnFail("E4000", "接口调用失败: %s不能超过%d位(含负号),第%d行", f.name, nnMaxFigure, i+1)
			}
		}
		// Seed 002 marks taxExcludedAmount and taxAmount optional (N):
		// a line that leaves the amount out is num × taxExcludedPrice
		// rounded to cents, and one that leaves the tax out is the
		// amount × taxRate rounded to cents (an assumption, as the seed
		// does not say how; the validator derives them so too,
		// schemas.RedLineFigures). A line that gives neither the amount
		// nor num and taxExcludedPrice reverses nothing that can be told.
		exText, txText := d.TaxExcludedAmount.s(), d.TaxAmount.s()
		if exText == "" {
			num, okNum := nnDecimal(d.Num.s())
			price, okPrice := nnDecimal(d.TaxExcludedPrice.s())
			if !okNum || !okPrice {
				return nnFail("E4000", "接口调用失败: taxExcludedAmount不能为空(或传num和taxExcludedPrice),第%d行", i+1)
			}
			exText = num.Mul(price).Round(2).StringFixed(2)
		}
		ex, ok1 := nnDecimal(exText)
		if ok1 && txText == "" {
			rate, _ := nnDecimal(r)
			txText = ex.Mul(rate).Round(2).StringFixed(2)
		}
		tx, ok2 := nnDecimal(txText)
		if !ok1 || !ok2 {
			return nnFail("E4000", "接口调用失败: 明细金额只能是数字,第%d行", i+1)
		}
		if nnPlaces(d.TaxExcludedAmount.s()) > 2 || nnPlaces(d.TaxAmount.s()) > 2 {
			return nnFail("E4000", "接口调用失败: 明细金额最多2位小数,第%d行", i+1)
		}
		// Seed 002: taxExcludedPrice 单价(不含税)为正数; taxExcludedAmount
		// and taxAmount 带负号 (a tax of zero, at rate 0, has none to
		// carry). Seed 002 gives no code of its own: E4000.
		switch price, ok := nnDecimal(d.TaxExcludedPrice.s()); {
		case d.TaxExcludedPrice.s() != "" && (!ok || !price.IsPositive()):
			return nnFail("E4000", "接口调用失败: taxExcludedPrice须为正数,第%d行", i+1)
		case !ex.IsNegative():
			return nnFail("E4000", "接口调用失败: taxExcludedAmount须为负数,第%d行", i+1)
		case tx.IsPositive():
			return nnFail("E4000", "接口调用失败: taxAmount须为负数,第%d行", i+1)
		}
		exTax, tax = exTax.Add(ex), tax.Add(tx)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	key := nnKey{seller, billID}
	if f := n.forms[key]; f != nil {
		return nnOK("成功", f.billNo)
	}
	if len(in.Detail) == 0 {
		exTax, tax = n.blueAmounts(seller, blueNo)
	}
	n.seq++
	var u [16]byte
	_, _ = rand.Read(u[:])
	f := &nnForm{
		seller: seller, billID: billID, billNo: fmt.Sprintf("99%018d", n.seq), uuid: hex.EncodeToString(u[:]),
		statsKey: statsKey, applySource: src, blueLine: line, blueNo: blueNo,
		sellerName: in.SellerName.s(), buyerTaxNo: in.BuyerTaxNo.s(), buyer: in.BuyerName.s(),
		redReason: in.RedReason.s(), orderNo: in.OrderNo.s(), exTax: exTax, tax: tax,
		noConfirm: src == "0" && in.BuyerTaxNo.s() == "",
		refuse:    strings.Contains(in.BuyerName.s(), nnMagicRefuse),
		fail:      nnRemarkFail(in.BuyerName.s()) == nnMagicFail,
		status:    "15", billTime: s.now(),
	}
	n.forms[key] = f
	return nnOK("成功", f.billNo)
}

// blueAmounts returns the negated amounts of a blue invoice this sandbox
// issued, for a full reversal; zero when unknown. Callers hold n.mu.
func (n *nuonuoState) blueAmounts(seller, number string) (decimal.Decimal, decimal.Decimal) {
	for _, o := range n.orders {
		if o.seller != seller {
			continue
		}
		for _, inv := range o.invoices {
			if inv.digital == number || inv.number == number {
				ex, _ := nnDecimal(inv.exTax)
				tx, _ := nnDecimal(inv.tax)
				return ex.Neg(), tx.Neg()
			}
		}
	}
	return decimal.Decimal{}, decimal.Decimal{}
}

// nnFormEntry is one entry of queryInvoiceRedConfirm's list.
type nnFormEntry struct {
	BillNo            string `json:"billNo"`
	BillUUID          string `json:"billUuid"`
	BillID            string `json:"billId"`
	BillStatus        string `json:"billStatus"`
	BillMessage       string `json:"billMessage"`
	InvoiceSerialNum  string `json:"invoiceSerialNum,omitempty"`
	OrderNo           string `json:"orderNo,omitempty"`
	RequestStatus     string `json:"requestStatus"`
	OpenStatus        string `json:"openStatus"`
	ApplySource       string `json:"applySource"`
	BlueInvoiceLine   string `json:"blueInvoiceLine"`
	BlueInvoiceNumber string `json:"blueInvoiceNumber"`
	BillTime          string `json:"billTime"`
	ConfirmTime       string `json:"confirmTime,omitempty"`
	SellerTaxNo       string `json:"sellerTaxNo"`
	SellerName        string `json:"sellerName"`
	BuyerTaxNo        string `json:"buyerTaxNo"`
	BuyerName         string `json:"buyerName"`
	TaxExcludedAmount string `json:"taxExcludedAmount"`
	TaxAmount         string `json:"taxAmount"`
	RedReason         string `json:"redReason"`
}

func (s *Server) nnQueryRedConfirm(seller string, body []byte) nnAnswer {
	var in struct {
		Identity   nnText `json:"identity"`
		BillStatus nnText `json:"billStatus"`
		BillID     nnText `json:"billId"`
		BillNo     nnText `json:"billNo"`
		BillUUID   nnText `json:"billUuid"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nnFail("E4000", "接口调用失败: 报文格式有误")
	}
	if id := in.Identity.s(); id != "0" && id != "1" {
		return nnFail("E4000", "接口调用失败: identity只能为0或1")
	}
	n := s.nuonuo
	n.mu.Lock()
	var found []*nnForm
	targeted := in.BillUUID.s() != "" || in.BillID.s() != "" || in.BillNo.s() != ""
	for _, f := range n.forms {
		if f.seller != seller {
			continue
		}
		var match bool
		switch {
		case in.BillUUID.s() != "":
			match = f.uuid == in.BillUUID.s()
		case in.BillID.s() != "":
			match = f.billID == in.BillID.s()
		case in.BillNo.s() != "":
			match = f.billNo == in.BillNo.s()
		default:
			match = true
		}
		if match {
			found = append(found, f)
		}
	}
	list := []nnFormEntry{}
	var counted []string
	var issued []*nnForm
	for _, f := range found {
		if targeted {
			if s.nnAdvanceForm(n, f) {
				issued = append(issued, f)
			}
			counted = append(counted, f.statsKey)
		}
		if st := in.BillStatus.s(); st != "" && st != f.status {
			continue
		}
		list = append(list, nnRenderForm(f))
	}
	n.mu.Unlock()
	for _, k := range counted {
		s.stats.query("nuonuo", seller, k)
	}
	for _, f := range issued {
		s.stats.issued("nuonuo", seller, f.statsKey, 1)
	}
	return nnOK("查询成功", map[string]any{"total": len(list), "list": list})
}

// nnAdvanceForm moves a form on by one query and reports whether its red
// invoice was issued now. Callers hold n.mu.
func (s *Server) nnAdvanceForm(n *nuonuoState, f *nnForm) bool {
	switch f.status {
	case "15", "02", "03":
	default:
		return false
	}
	f.polls++
	steps := s.cfg.Nuonuo.RedConfirmSteps
	switch {
	case f.polls <= steps:
		f.status = "15"
		return false
	case f.fail:
		f.status = "16"
		return false
	case f.noConfirm:
		f.status = "01"
	case f.polls <= 2*steps:
		f.status = map[bool]string{true: "02", false: "03"}[f.applySource == "0"]
		return false
	case f.refuse:
		f.status = map[bool]string{true: "05", false: "06"}[f.applySource == "0"]
		return false
	default:
		f.status = "04"
	}
	f.confirmTime = s.now()
	switch f.blueLine {
	case "pc", "bs", "p", "b":
		// Seed 002: "电票都自动开，纸票都不自动".
	default:
		return false // paper forms are not issued automatically
	}
	redOrderNo := f.orderNo
	if redOrderNo == "" {
		redOrderNo = "HZ" + f.billNo[len(f.billNo)-18:]
	}
	o := n.orders[nnKey{f.seller, redOrderNo}]
	if o == nil {
		o = &nnOrder{
			seller: f.seller, orderNo: redOrderNo, serial: s.nnSerial(n), line: f.blueLine, invoiceType: "2",
			buyer: f.buyer, parts: 1, exTax: f.exTax, tax: f.tax, total: f.exTax.Add(f.tax),
		}
		n.orders[nnKey{f.seller, redOrderNo}] = o
		n.serials[o.serial] = o
		s.nnMaterialize(o)
	}
	f.redSerial, f.redOrderNo = o.serial, redOrderNo
	return true
}

func nnRenderForm(f *nnForm) nnFormEntry {
	e := nnFormEntry{
		BillNo: f.billNo, BillUUID: f.uuid, BillID: f.billID, BillStatus: f.status, BillMessage: nnBillMsg[f.status],
		InvoiceSerialNum: f.redSerial, OrderNo: f.redOrderNo, OpenStatus: "0", ApplySource: f.applySource,
		BlueInvoiceLine: f.blueLine, BlueInvoiceNumber: f.blueNo, BillTime: f.billTime.In(nnChina).Format("2006-01-02 15:04:05"),
		SellerTaxNo: f.seller, SellerName: f.sellerName, BuyerTaxNo: f.buyerTaxNo, BuyerName: f.buyer,
		TaxExcludedAmount: f.exTax.StringFixed(2), TaxAmount: f.tax.StringFixed(2), RedReason: f.redReason,
	}
	if f.status == "16" {
		e.BillMessage = "申请失败: 该发票不允许冲红 (" + nnMagicFail + ")"
	}
	if f.redSerial != "" {
		e.OpenStatus = "1"
	}
	if !f.confirmTime.IsZero() {
		e.ConfirmTime = f.confirmTime.In(nnChina).Format("2006-01-02 15:04:05")
	}
	return e
}

var nnChina = time.FixedZone("CST", 8*3600)
