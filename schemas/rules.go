package schemas

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// The domain rules of PROVIDERS.md ("Validation before any provider call"),
// checked with decimal arithmetic. Every rule reports the field path and the
// code the seller's provider would answer with (collector.providerCode:
// Nuonuo's; for a jumdata seller 400, or none where jumdata would take the
// request or is never sent what the rule checks), so that an order system
// learns of a mistake from this service instead of from the tax bureau. A
// rule given no code by collector.add names E4000 inside a body, seed 001's
// code for a wrong value, and none on the envelope (bodyCode).

// Tolerances and limits of the amount rules.
var (
	// LineTaxTolerance is the largest |taxExcludedAmount × taxRate − tax| per
	// line (E9131); a line taxed on the difference (差额征税) counts
	// (taxExcludedAmount − deduction) × taxRate.
	LineTaxTolerance = decimal.RequireFromString("0.06")
	// InvoiceTaxTolerance is the largest cumulative difference per invoice (E9131).
	InvoiceTaxTolerance = decimal.RequireFromString("1.27")
	// PriceAmountTolerance is the largest |price × num − amount| per line
	// whose amounts are issued as given: every line of a jumdata seller's,
	// and a Nuonuo seller's that gives all three amounts (a Nuonuo line
	// that leaves one out is computed from price × num, and the amounts it
	// gives are held to RuleComputedAmount instead).
	PriceAmountTolerance = decimal.RequireFromString("0.01")
)

// TaxRates is the set of VAT rates an invoice line may carry.
var TaxRates = []decimal.Decimal{
	decimal.RequireFromString("0"), decimal.RequireFromString("0.01"), decimal.RequireFromString("0.015"),
	decimal.RequireFromString("0.03"), decimal.RequireFromString("0.05"), decimal.RequireFromString("0.06"),
	decimal.RequireFromString("0.09"), decimal.RequireFromString("0.13"),
}

const (
	moneyPlaces    = 2 // amounts and taxes: cents
	quantityPlaces = 8 // prices and quantities
	// amountMaxChars is the maximum length of every amount field (最大长度
	// 16 in seeds 001 and 002): the length of the text, a red amount's
	// minus sign included (红票为负; seed 002: 带负号).
	amountMaxChars = 16
	// rateMaxChars is the maximum length of a tax rate (taxRate, 最大长度
	// 10 in seeds 001 and 002).
	rateMaxChars = 10
	// ratePlaces puts no limit of its own on a tax rate's decimals (one of
	// rateMaxChars characters has fewer): a rate is compared with the set
	// by value, and "0.0600" is 0.06.
	ratePlaces = rateMaxChars
	maxLines   = 2000
	dateLayout = "2006-01-02 15:04:05"
)

// fullyDigitalLines lists, per provider, the invoiceLine values that the
// provider issues as fully digital (全电, 数电) invoices, which are held to
// the fully digital limits (a remark of at most 200 characters).
//
//   - nuonuo: bs, pc, es, ec, seed 002's 电子发票 and 全电纸质发票. Its p (the
//     default, also for ""), c, s, b, ... are tax-control (税控) invoices.
//   - jumdata: the tax bureau's platform issues fully digital invoices only.
//     The jumdata adapter issues bs and b as 专票 (fppzdm 01) and pc, p and ""
//     as 普票 (02), and refuses the other lines; es and ec are fully digital
//     wherever they are accepted.
var fullyDigitalLines = map[string]map[string]bool{
	"nuonuo":  {"bs": true, "pc": true, "es": true, "ec": true},
	"jumdata": {"bs": true, "pc": true, "es": true, "ec": true, "b": true, "p": true, "": true},
}

// specialLines are the invoiceLine values of special VAT invoices (增值税专用
// 发票, 专票): s 专用发票 and b 增值税电子专用发票 (seed 001), bs 电子发票
// (增值税专用发票) and es 全电纸质发票(增值税专用发票) (seed 002). A special
// invoice lets the buyer deduct its input tax, and is issued to a taxpayer
// named by its tax number: the jumdata adapter sends b and bs as fppzdm 01,
// which the tax bureau refuses without gmfnsrsbh (购买方纳税人识别号).
var specialLines = map[string]bool{"s": true, "b": true, "bs": true, "es": true}

// defaultProvider is the provider whose rules apply to a seller that
// ValidatorConfig.Providers does not list.
const defaultProvider = "nuonuo"

// fullyDigital reports whether provider issues invoiceLine line as a fully
// digital invoice.
func fullyDigital(provider, line string) bool {
	if provider == "" {
		provider = defaultProvider
	}
	return fullyDigitalLines[provider][line]
}

// providerName names provider in messages.
func providerName(provider string) string {
	if provider == "" {
		return defaultProvider
	}
	return provider
}

// seed002FullyDigital reports whether line is a fully digital line in
// Nuonuo's numbering of seed 002 (bs, pc, es, ec), which is what the red
// references use: blueInvoiceLine of a red confirmation form and the
// invoiceLine of a red order (issued through Nuonuo only).
func seed002FullyDigital(line string) bool { return fullyDigitalLines["nuonuo"][line] }

// jumdataLines are the invoiceLine values of a blue order that the jumdata
// adapter issues (providers/jumdata: NewInvoiceData): bs and b as special
// invoices, pc, p and "" as normal ones. It refuses every other line as
// unsupported, before any call.
var jumdataLines = map[string]bool{"bs": true, "b": true, "pc": true, "p": true, "": true}

// jumdataSends reports whether the jumdata adapter would send r to jumdata
// at all. It refuses, as unsupported and before any call, a red order
// (jumdata reverses with red_confirm), an invoiceLine it does not issue
// (jumdataLines), specificFactor other than 0, proxyInvoiceFlag 1, a red
// confirmation of an invoice that is not fully digital (blueInvoiceLine in
// Nuonuo's numbering of seed 002: bs, pc, es, ec) and every reissue. What
// it never sends, jumdata never refuses: a rule that checks such a request
// pre-empts no jumdata code.
func jumdataSends(r *Request) bool {
	switch {
	case r.Kind == KindIssue && r.Order != nil:
		o := r.Order
		return !o.IsRed() && jumdataLines[o.InvoiceLine] && (o.SpecificFactor == "" || o.SpecificFactor == "0") && o.ProxyInvoiceFlag != "1"
	case r.Kind == KindRedConfirm && r.RedConfirm != nil:
		return seed002FullyDigital(r.RedConfirm.BlueInvoiceLine)
	}
	return false
}

// RuleUnsupported is the rule of a request that the seller's provider
// cannot do at all, as its adapter refuses it before any call: for a
// jumdata seller what jumdataSends says the jumdata adapter does not send.
// It names no provider code: the provider never sees the request, and the
// limit is this service's own.
const RuleUnsupported = "unsupported"

// checkJumdataSupport refuses, for a jumdata seller, what the jumdata
// adapter (providers/jumdata: NewInvoiceData, newRedTask, unsupportedKind)
// refuses as unsupported before any call: a reissue, a red order, an
// invoiceLine it does not issue, specificFactor other than 0,
// proxyInvoiceFlag 1, and a red confirmation of an invoice that is not
// fully digital. Without it such a request passed, was accepted and
// stored, and was rejected only when the adapter got it: the order system
// learnt late, and publisher validate said nothing. Each field is named,
// all at once (the adapter names the first it meets), with no provider
// code (RuleUnsupported). A field of the wrong JSON type or refused by the
// schema (an unknown invoiceLine) has its own violation and is not judged
// again. The other rules still check the request, naming no jumdata code
// either (jumdataSends is false): the order system learns of every problem
// at once.
func checkJumdataSupport(r *Request, c *collector) {
	unsupported := func(field, format string, args ...any) {
		if !c.has(field) && !c.mistyped(field) {
			c.own(field, RuleUnsupported, format, args...)
		}
	}
	switch {
	case r.Kind == KindReissue && r.Reissue != nil:
		unsupported("kind", "is reissue, which jumdata has no counterpart of (no reInvoice): a blue-invoice task is resumed by querying, and a refused one corrected and sent again as an issue")
	case r.Kind == KindIssue && r.Order != nil:
		o := r.Order
		if o.IsRed() {
			unsupported("order.invoiceType", "is 2, a red order, which jumdata does not issue: reverse a fully digital invoice with kind red_confirm")
		}
		if !jumdataLines[o.InvoiceLine] {
			unsupported("order.invoiceLine", "is %q, which jumdata does not issue: it issues fully digital invoices only (bs or b: special; pc, p or empty: ordinary)", o.InvoiceLine)
		}
		if o.SpecificFactor != "" && o.SpecificFactor != "0" {
			unsupported("order.specificFactor", "is %q: invoices with specific factors (特定要素) are not mapped to jumdata; leave it out or write 0", o.SpecificFactor)
		}
		if o.ProxyInvoiceFlag == "1" {
			unsupported("order.proxyInvoiceFlag", "is 1: proxy invoicing (代开) is not available through jumdata")
		}
	case r.Kind == KindRedConfirm && r.RedConfirm != nil:
		if line := r.RedConfirm.BlueInvoiceLine; line != "" && !seed002FullyDigital(line) {
			unsupported("redConfirm.blueInvoiceLine", "is %q, a tax-control invoice, which jumdata does not reverse: it reverses fully digital invoices only (bs, pc, es, ec; a jumdata seller's b is reversed as bs, p as pc)", line)
		}
	}
}

// normalize trims and upper-cases tax numbers, as the tax bureau does.
func normalize(r *Request) {
	r.SellerTaxNum = NormalizeTaxNumber(r.SellerTaxNum)
	if o := r.Order; o != nil {
		o.SalerTaxNum = NormalizeTaxNumber(o.SalerTaxNum)
		o.BuyerTaxNum = NormalizeTaxNumber(o.BuyerTaxNum)
	}
	if rc := r.RedConfirm; rc != nil {
		rc.SellerTaxNo = NormalizeTaxNumber(rc.SellerTaxNo)
		rc.BuyerTaxNo = NormalizeTaxNumber(rc.BuyerTaxNo)
	}
}

// RuleSubjectSpelling is the rule of a request published on its seller's
// subject spelt otherwise (in lower case): partitioned consumers share a
// seller's requests out by the subject as written, so every request of a
// seller must come on one subject, its tax number in capitals.
const RuleSubjectSpelling = "subject_spelling"

// checkRequest applies the domain rules to a request the schema could type.
// provider names the seller's provider ("" when unknown: Nuonuo's rules).
func checkRequest(r *Request, subjectSeller, provider string, c *collector) {
	switch {
	case subjectSeller == "" || r.SellerTaxNum == "" || subjectSeller == r.SellerTaxNum:
	case NormalizeTaxNumber(subjectSeller) == r.SellerTaxNum:
		c.add("sellerTaxNum", RuleSubjectSpelling, "", "is %q but the request was published on the subject of %q: publish it on the subject of the tax number in capitals, as every request of a seller must be", r.SellerTaxNum, subjectSeller)
	default:
		c.add("sellerTaxNum", "subject_mismatch", "", "is %q but the request was published on the subject of seller %q", r.SellerTaxNum, subjectSeller)
	}
	checkTaxNumber(c, "sellerTaxNum", r.SellerTaxNum)
	c.setProvider(provider, r)
	if provider == "jumdata" {
		checkJumdataSupport(r, c)
	}
	switch {
	case r.Kind == KindIssue && r.Order != nil:
		checkOrder(r, provider, c)
	case r.Kind == KindRedConfirm && r.RedConfirm != nil:
		checkRedConfirm(r, provider, c)
	case r.Kind == KindReissue && r.Reissue != nil:
		checkReissue(r.Reissue, provider, c)
	}
}

// checkTaxNumber warns (or, strict, rejects) an 18-character tax number whose
// check character is wrong. The format itself is the schema's.
func checkTaxNumber(c *collector, field, tn string) {
	if len(tn) != 18 || c.has(field) || ValidTaxNumberCheck(tn) {
		return
	}
	reportTaxNumberCheck(c, field, "%q fails the GB 32100-2015 check character of an 18-character unified social credit code", tn)
}

// checkBuyerTaxNumber is checkTaxNumber for a buyer, who may be a person:
// an individual's resident ID number goes in the buyer's tax number (seed
// 001), and one with a right GB 11643 check character passes too.
func checkBuyerTaxNumber(c *collector, field, tn string) {
	if len(tn) != 18 || c.has(field) || ValidTaxNumberCheck(tn) || validResidentID(tn) {
		return
	}
	reportTaxNumberCheck(c, field, "%q fails both the GB 32100-2015 check character of an 18-character unified social credit code and the GB 11643 check character of a resident ID number", tn)
}

func reportTaxNumberCheck(c *collector, field, msg, tn string) {
	if c.strict {
		c.add(field, "tax_number_check", "", msg, tn)
		return
	}
	c.warn(field, "tax_number_check", msg, tn)
}

// checkOrder applies the rules of an issue request's order. Some are
// Nuonuo's own requirements, of fields the jumdata mapping does not send
// (providers/jumdata/invoicedata.go drops invoiceDate, pushMode,
// buyerPhone, email, the roll of paper invoices, salerTaxNum, and the
// adapter issues no motor vehicle, used car or red order): a jumdata
// seller is not held to them (nuonuo false), and where the request is
// wrong by its own contract all the same (two sellers, a date or an email
// address that is none) the rule is this service's own for such a seller.
func checkOrder(r *Request, provider string, c *collector) {
	o := r.Order
	nuonuo := providerName(provider) == "nuonuo"
	if o.SalerTaxNum != "" && r.SellerTaxNum != "" && o.SalerTaxNum != r.SellerTaxNum && !c.has("sellerTaxNum") && !c.has("order.salerTaxNum") {
		c.addCode("order.salerTaxNum", "seller_mismatch", c.providerCode(provider, "E9302", ""), "is %q but the request is for seller %q", o.SalerTaxNum, r.SellerTaxNum)
	}
	if o.OrderNo != "" && o.OrderNo != r.OrderNo && !c.mistyped("orderNo") {
		c.add("order.orderNo", "order_no_mismatch", "", "is %q but the request's orderNo is %q", o.OrderNo, r.OrderNo)
	}
	checkTaxNumber(c, "order.salerTaxNum", o.SalerTaxNum)
	checkBuyerTaxNumber(c, "order.buyerTaxNum", o.BuyerTaxNum)
	// jumdata refuses a special invoice (fppzdm 01: b, bs) without
	// gmfnsrsbh with 400.
	if specialLines[o.InvoiceLine] && o.BuyerTaxNum == "" && !c.has("order.buyerTaxNum") && !c.mistyped("order.buyerTaxNum") {
		c.addCode("order.buyerTaxNum", "required", c.providerCode(provider, "E4000", "400"), "is required on a special VAT invoice (invoiceLine %s, 专票), which is issued to a taxpayer named by its tax number; issue a normal invoice to a buyer without one", o.InvoiceLine)
	}

	if o.InvoiceDate != "" && !c.has("order.invoiceDate") {
		if _, err := time.Parse(dateLayout, o.InvoiceDate); err != nil {
			c.addCode("order.invoiceDate", "format", c.providerCode(provider, "E4000", ""), "is not a real date and time: %q", o.InvoiceDate)
		}
	}
	pushMode := o.PushMode
	if pushMode == "" && !c.mistyped("order.pushMode") {
		pushMode = "1" // Nuonuo's default: push to the buyer's phone
	}
	if nuonuo && (pushMode == "1" || pushMode == "2") && o.BuyerPhone == "" {
		c.add("order.buyerPhone", "required", "E4000", "is required when pushMode is %s (1 is the default): the invoice is pushed to the buyer's phone; set pushMode -1 to push nothing", pushMode)
	}
	if nuonuo && (pushMode == "0" || pushMode == "2") && o.Email == "" {
		c.add("order.email", "required", "E4000", "is required when pushMode is %s: the invoice is pushed by email", pushMode)
	}
	if o.Email != "" && !c.has("order.email") && !looksLikeEmail(o.Email) {
		c.addCode("order.email", "format", c.providerCode(provider, "E4000", ""), "is not an email address: %q", o.Email)
	}
	// Seed 001 (购方地址+电话总共不超100字符); the jumdata mapping sends them
	// apart (gmfdz, gmfdh), each held to the schema's length.
	if n := utf8.RuneCountInString(o.BuyerAddress) + utf8.RuneCountInString(o.BuyerTel); nuonuo && n > 100 {
		c.add("order.buyerAddress", "max_length", "E4000", "buyerAddress and buyerTel together are %d characters; the maximum is 100", n)
	}
	// 230 characters (the schema's maximum, seed 001), 200 on a fully
	// digital invoice of the seller's provider. jumdata refuses a longer
	// remark with 400 (参数错误), Nuonuo with E4000. Over 230 the schema's
	// violation says 200 too (schemaViolations).
	if n := utf8.RuneCountInString(o.Remark); n > 200 && fullyDigital(provider, o.InvoiceLine) && !c.has("order.remark") && !c.mistyped("order.invoiceLine") {
		c.addCode("order.remark", "max_length", c.providerCode(provider, "E4000", "400"), "%s", remarkTooLong(n, o.InvoiceLine, provider))
	}
	if nuonuo && o.NextInvoiceCode != "" {
		if o.NextInvoiceNum == "" {
			c.add("order.nextInvoiceNum", "required", "E4000", "is required when nextInvoiceCode is set")
		}
		if o.InvoiceNumEnd == "" {
			c.add("order.invoiceNumEnd", "required", "E4000", "is required when nextInvoiceCode is set")
		}
	}
	switch {
	case !nuonuo:
	case o.InvoiceLine == "j":
		checkVehicleOrder(o, c)
	case o.InvoiceLine == "u":
		if o.SecondHandCarInfo == nil {
			c.add("order.secondHandCarInfo", "required", "E4000", "is required for a used car invoice (invoiceLine u)")
		}
		// Seed 001: buyerTaxNum, buyerTel, buyerAddress 二手车销售统一发票时
		// 必填; salerAccount 二手车销售统一发票时必须.
		for _, f := range []struct{ name, v, what string }{
			{"buyerTaxNum", o.BuyerTaxNum, "the buyer's tax number (an individual's ID number)"},
			{"buyerTel", o.BuyerTel, "the buyer's telephone"},
			{"buyerAddress", o.BuyerAddress, "the buyer's address"},
			{"salerAccount", o.SalerAccount, "the seller's bank and account"},
		} {
			if f.v == "" && !c.has("order."+f.name) {
				c.add("order."+f.name, "required", "E4000", "is required on a used car invoice (invoiceLine u): %s", f.what)
			}
		}
	}
	if o.IsRed() {
		checkRedOrder(o, provider, c)
	}
	checkLines(o, provider, c)
	checkDeductions(o, provider, c)
}

// remarkTooLong is the message of a remark of n characters on a fully
// digital invoice (invoiceLine line with provider), whose limit is 200
// (PROVIDERS.md: 230, 200 for fully digital; the tax bureau's, and so
// jumdata's bz, every jumdata invoice being fully digital), whether the
// JSON Schema's 230 (seed 001's remark) or the domain rule found it.
func remarkTooLong(n int, line, provider string) string {
	return fmt.Sprintf("is %d characters long; the maximum for a fully digital invoice (invoiceLine %q with %s) is 200", n, line, providerName(provider))
}

// checkVehicleOrder applies seed 001's rules of a motor vehicle invoice
// (invoiceLine j, 机动车销售统一发票).
func checkVehicleOrder(o *Order, c *collector) {
	vi := o.VehicleInfo
	if vi == nil {
		c.add("order.vehicleInfo", "required", "E4000", "is required for a motor vehicle invoice (invoiceLine j)")
	}
	if len(o.InvoiceDetail) > 1 {
		c.add("order.invoiceDetail", "max_items", "E4000", "has %d lines; a motor vehicle invoice has exactly one", len(o.InvoiceDetail))
	}
	// remark: 机动车发票蓝票时备注只能为空.
	if o.Remark != "" && !o.IsRed() && !c.mistyped("order.invoiceType") {
		c.add("order.remark", "vehicle_remark", "E4000", "must be empty on a blue motor vehicle invoice (invoiceLine j)")
	}
	if vi == nil {
		return
	}
	// vehicleType: 同明细中商品名称，开具机动车发票时明细有且仅有一行，商品名称为车辆类型.
	if len(o.InvoiceDetail) == 1 && vi.VehicleType != "" && !c.has("order.vehicleInfo.vehicleType") &&
		!c.mistyped("order.invoiceDetail[0].goodsName") && o.InvoiceDetail[0].GoodsName != vi.VehicleType {
		c.add("order.invoiceDetail[0].goodsName", "vehicle_goods_name", "E4000", "is %q but the goods name of a motor vehicle invoice is the vehicle type, vehicleInfo.vehicleType %q", o.InvoiceDetail[0].GoodsName, vi.VehicleType)
	}
	// idNumOrgCode: 该字段为空则为2021新版常规机动车发票，此时购方税号必填（个人在购
	// 方税号中填身份证号）；该字段有值…此时购方税号需要为空.
	if c.mistyped("order.vehicleInfo.idNumOrgCode") || c.has("order.buyerTaxNum") {
		return
	}
	switch {
	case vi.IDNumOrgCode == "" && o.BuyerTaxNum == "":
		c.add("order.buyerTaxNum", "required", "E4000", "is required on a motor vehicle invoice without vehicleInfo.idNumOrgCode: the buyer's tax number, or an individual's ID number")
	case vi.IDNumOrgCode != "" && o.BuyerTaxNum != "":
		c.add("order.buyerTaxNum", "vehicle_buyer", "E4000", "must be empty on a motor vehicle invoice with vehicleInfo.idNumOrgCode (the buyer's other identity document)")
	}
}

// checkDeductions applies seed 001's limits of deduction taxation (差额征税):
// "扣除额，差额征收时填写，目前只支持填写一项。注意：当传0、空或字段不传时，都表示
// 非差额征税；传0.00才表示差额征税：0.00（全电发票暂不支持）".
//   - A zero deduction is "0" (none) or "0.00" (deduction taxation with
//     nothing deducted): another spelling of zero, such as "0.0", says
//     neither for sure, and is refused rather than guessed at, by this
//     service's own rule for every seller: no document says a provider
//     refuses it for its spelling (the jumdata mapping would send it as kce
//     0.00, deduction taxation, and the jumdata sandbox issues it), but
//     which invoice it asks for is not said.
//   - On a Nuonuo seller's invoice one line at most is taxed on the
//     difference (只支持填写一项), and a fully digital one takes no deduction
//     of zero. jumdata's document says neither; its sellers are not held to
//     them. Seed 001 reads every deduction but "0", empty or absent as
//     deduction taxation (DeductionApplies), so a zero spelt otherwise
//     ("0.0", "-0.00") is one, with nothing deducted, as 0.00 is: it is
//     held to both limits beside deduction_zero, naming E4000 as the
//     Nuonuo sandbox answers it. (Before, deduction_zero alone was
//     reported, and the sandbox answered a second such line E4000: the
//     order system learnt of the limit only after correcting the
//     spelling.)
//
// A deduction larger than its line's amount needs the line's amounts, and is
// checked with them (checkDeductionAmount).
func checkDeductions(o *Order, provider string, c *collector) {
	nuonuo := providerName(provider) == "nuonuo"
	first := -1
	for i := range o.InvoiceDetail {
		d := o.InvoiceDetail[i].Deduction
		field := fmt.Sprintf("order.invoiceDetail[%d].deduction", i)
		if !d.IsSet() || !d.Valid() || c.has(field) || c.mistyped(field) {
			continue
		}
		text := d.String()
		if d.Decimal().IsZero() && text != "0" && text != "0.00" {
			c.own(field, "deduction_zero", "is %q: write 0 (or leave it out) for no deduction taxation, or 0.00 for deduction taxation with nothing deducted", text)
		}
		if !DeductionApplies(d) || !nuonuo {
			continue
		}
		if d.Decimal().IsZero() && fullyDigital(provider, o.InvoiceLine) && !c.mistyped("order.invoiceLine") {
			c.add(field, "deduction_fully_digital", "E4000", "is %s, deduction taxation with nothing deducted, which Nuonuo does not support yet on a fully digital invoice (invoiceLine %q); write 0 for no deduction taxation", text, o.InvoiceLine)
		}
		if first >= 0 {
			c.add(field, "deduction_lines", "E4000", "makes a second line taxed on the difference (差额征税), after invoiceDetail[%d]: Nuonuo takes a deduction on one line of an invoice only", first)
			continue
		}
		first = i
	}
}

// checkRedOrder applies the rules of a red invoice issued with
// requestBillingNew. The jumdata adapter issues no red order (it reverses
// with red_confirm): the references a red order needs are Nuonuo's own, and
// a jumdata seller's red order is refused as unsupported
// (checkJumdataSupport) whatever it reverses.
func checkRedOrder(o *Order, provider string, c *collector) {
	if providerName(provider) != "nuonuo" {
		return // unsupported: checkJumdataSupport
	}
	if seed002FullyDigital(o.InvoiceLine) {
		c.addCode("order.invoiceType", "red_fully_digital", c.providerCode(provider, "E4000", ""), "a fully digital invoice (invoiceLine %s) is reversed with kind red_confirm, not a red order", o.InvoiceLine)
		return
	}
	if !isDigits(o.InvoiceCode) || (len(o.InvoiceCode) != 10 && len(o.InvoiceCode) != 12) {
		c.add("order.invoiceCode", "red_reference", "E9102", "must be the 10- or 12-digit code of the blue invoice being reversed; got %q", o.InvoiceCode)
	}
	if !isDigits(o.InvoiceNum) || len(o.InvoiceNum) != 8 {
		c.add("order.invoiceNum", "red_reference", "E9102", "must be the 8-digit number of the blue invoice being reversed (pad with leading zeros); got %q", o.InvoiceNum)
	}
	if o.InvoiceLine != "s" && o.InvoiceLine != "b" {
		return
	}
	// Seed 001, billInfoNo: 专票冲红时此项必填，且必须在备注中注明“开具红字
	// 增值税专用发票信息表编号ZZZZZZZZZZZZZZZZ”字样.
	if o.BillInfoNo == "" {
		c.add("order.billInfoNo", "required", "E4000", "is required to reverse a special VAT invoice: the red information form number")
		return
	}
	if want := redSpecialRemarkPrefix + o.BillInfoNo; !c.has("order.billInfoNo") && !c.mistyped("order.billInfoNo") && !c.mistyped("order.remark") && !strings.Contains(o.Remark, want) {
		c.add("order.remark", "red_remark", "E4000", "must contain %q when a special VAT invoice is reversed: the red information form number (billInfoNo) written out, as seed 001 requires", want)
	}
}

// redSpecialRemarkPrefix is the text that, followed by billInfoNo, the
// remark of a red special VAT invoice must contain (seed 001).
const redSpecialRemarkPrefix = "开具红字增值税专用发票信息表编号"

// lineAmounts are one line's amounts once checked; a nil field is unset or
// unusable (its problem already reported). eff holds the amount without tax
// and the tax the provider works with when effective is true: when every
// amount the line gives is usable and they are enough (LineFigures).
// said holds, when stated is true, what the amounts the line gives say on
// their own, without price and num: on a line the provider computes from
// price × num (eff.Recomputed), the figures it sets aside. deduction is set
// when the line is taxed on the difference (差额征税).
type lineAmounts struct {
	price, num, tax, rate, excl, incl *decimal.Decimal
	deduction                         *decimal.Decimal
	eff, said                         EffectiveAmounts
	effective, stated                 bool
}

// effectiveAmounts derives a's effective amounts, as the provider would,
// when every amount field of the line is usable: given and valid, or absent
// (a field of the wrong type or with a violation is neither). price × num
// stands in for a missing amount only when withTaxFlag is valid; for a
// Nuonuo seller it makes the whole line when the line leaves any amount out
// (LineFigures.Recompute). ded is the line's deduction field, parsed.
func effectiveAmounts(c *collector, p string, l *InvoiceLine, a *lineAmounts, ded *decimal.Decimal, provider string) {
	for _, f := range []struct {
		name string
		v    Amount
		d    *decimal.Decimal
	}{{"price", l.Price, a.price}, {"num", l.Num, a.num}, {"tax", l.Tax, a.tax}, {"taxExcludedAmount", l.TaxExcludedAmount, a.excl}, {"taxIncludedAmount", l.TaxIncludedAmount, a.incl}, {"deduction", l.Deduction, ded}} {
		if c.has(p+"."+f.name) || f.d == nil && f.v.IsSet() {
			return
		}
	}
	if DeductionApplies(l.Deduction) {
		a.deduction = ded
	}
	fig := LineFigures{Price: a.price, Num: a.num, Excl: a.excl, Incl: a.incl, Tax: a.tax, Rate: a.rate, Deduction: a.deduction,
		Recompute: providerName(provider) == "nuonuo"}
	if !c.has(p + ".withTaxFlag") {
		fig.WithTaxFlag = l.WithTaxFlag
	}
	a.eff, a.effective = fig.Effective()
	fig.Price, fig.Num, fig.Recompute = nil, nil, false
	a.said, a.stated = fig.Effective()
}

func checkLines(o *Order, provider string, c *collector) {
	lines := o.InvoiceDetail // at most maxLines: Decode cuts the rest (limitLines)
	red := o.IsRed()
	parsed := make([]lineAmounts, len(lines))
	var sumExpected, sumTax decimal.Decimal
	for i := range lines {
		l := &lines[i]
		p := fmt.Sprintf("order.invoiceDetail[%d]", i)
		a := &parsed[i]
		// The jumdata mapping sends the amount without tax and the tax
		// as je and se, price and num (dj, spsl) only together, a
		// deduction only under deduction taxation, and no amount with
		// tax.
		priced, deducted := notSent, notSent
		if l.Price.IsSet() && l.Num.IsSet() {
			priced = sentExact
		}
		if DeductionApplies(l.Deduction) {
			deducted = sentMoney
		}
		a.price = amount(c, p+".price", l.Price, quantityPlaces, "", provider, priced)
		a.num = amount(c, p+".num", l.Num, quantityPlaces, "", provider, priced)
		a.tax = amount(c, p+".tax", l.Tax, moneyPlaces, "E9128", provider, sentMoney)
		a.excl = amount(c, p+".taxExcludedAmount", l.TaxExcludedAmount, moneyPlaces, "E9126", provider, sentMoney)
		a.incl = amount(c, p+".taxIncludedAmount", l.TaxIncludedAmount, moneyPlaces, "E9124", provider, notSent)
		ded := amount(c, p+".deduction", l.Deduction, moneyPlaces, "", provider, deducted)
		a.rate = taxRate(c, p+".taxRate", l.TaxRate, provider)
		if a.rate != nil && !isTaxRate(*a.rate) {
			c.addCode(p+".taxRate", "tax_rate", c.providerCode(provider, "E4000", "400"), "%s is not a VAT rate; use one of 0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09, 0.13", l.TaxRate)
			a.rate = nil
		}
		checkDeductionSign(c, p, l, ded, red, provider)
		effectiveAmounts(c, p, l, a, ded, provider)
		checkLine(c, p, l, a, red, provider)
		checkComputedAmounts(c, p, l, a)
		if c.jumdataSent {
			checkJumdataLineLengths(c, p, l, a, ded)
		}
		// The per-invoice difference sums every line's, on the amounts the
		// provider works with: the tax given or following from two amounts
		// given (or one and price × num), and for a line that leaves its
		// tax to the provider (one amount, or price and num only, seed
		// 001; for Nuonuo any line that leaves an amount out, computed
		// from price × num) the tax it computes from the rate, rounded to
		// cents. That
		// rounding is within half a cent a line, but it adds up on the
		// invoice the tax bureau holds to 1.27 (300 lines of 0.50 at 9%
		// are taxed 0.05 each, 1.50 over Σ amount × rate). A line whose
		// amounts or rate are unusable has a violation of its own.
		if a.effective && a.rate != nil {
			sumExpected = sumExpected.Add(ExpectedTax(a.eff.Excl, *a.rate, a.deduction))
			sumTax = sumTax.Add(a.eff.Tax)
		}
	}
	if len(lines) > 1 {
		if diff := sumExpected.Sub(sumTax).Abs(); diff.GreaterThan(InvoiceTaxTolerance) {
			c.addCode("order.invoiceDetail", "invoice_tax_tolerance", c.providerCode(provider, "E9131", "400"), "the lines' taxes differ from Σ taxExcludedAmount × taxRate by %s (a line's amount or tax that is not given taken as the provider derives it, from the others or, on a line Nuonuo computes, from price × num, a tax from the rate rounded to cents, and a line taxed on the difference counting (taxExcludedAmount − deduction) × taxRate); the limit per invoice is %s", diff.StringFixed(2), InvoiceTaxTolerance)
		}
	}
	checkDiscounts(c, lines, parsed, red, provider)
}

// checkLine applies the per-line arithmetic and sign rules.
func checkLine(c *collector, p string, l *InvoiceLine, a *lineAmounts, red bool, provider string) {
	nuonuo := providerName(provider) == "nuonuo"
	// The tax classification code has 19 digits (PROVIDERS.md); the schema
	// allows digits only, at most 19. Nuonuo answers a code it cannot use
	// with E9121 (获取商品编码失败), jumdata a spbm of other than 19 digits
	// with 400.
	if l.GoodsCode == "" {
		c.addCode(p+".goodsCode", "required", c.providerCode(provider, "E9138", "400"), "is required: the tax classification code of the goods")
	} else if !c.has(p+".goodsCode") && len(l.GoodsCode) < 19 {
		c.addCode(p+".goodsCode", "goods_code_length", c.providerCode(provider, "E9121", "400"), "has %d digits; a tax classification code has 19: write a category code in full, trailing zeros included", len(l.GoodsCode))
	}
	// Seed 001: favouredPolicyName 当favouredPolicyFlag为1时，此项必填
	// (全电发票时为空): Nuonuo's, on a tax-control invoice only. A fully
	// digital one (c.fullyDigital: bs, pc, es, ec) leaves the name empty,
	// its favouredPolicyFlag taking the codes 01 to 18 instead, and was
	// refused without it before, against the seed. An invoiceLine of the
	// wrong JSON type says neither. The jumdata mapping sends yhzcbs and
	// zzstsgl as given, and jumdata does not check them. A zero-rate flag
	// beside a rate other than 0 says two things, and is this service's
	// own rule for a jumdata seller.
	if nuonuo && l.FavouredPolicyFlag == "1" && l.FavouredPolicyName == "" && !c.fullyDigital && !c.mistyped("order.invoiceLine") {
		c.add(p+".favouredPolicyName", "required", "E4000", "is required when favouredPolicyFlag is 1 on a tax-control invoice (invoiceLine %q); a fully digital one leaves it empty", c.invoiceLine)
	}
	if (l.ZeroRateFlag == "1" || l.ZeroRateFlag == "2" || l.ZeroRateFlag == "3") && a.rate != nil && !a.rate.IsZero() {
		c.addCode(p+".zeroRateFlag", "zero_rate", c.providerCode(provider, "E4000", ""), "is %s but taxRate is %s; a zero-rate flag needs taxRate 0", l.ZeroRateFlag, l.TaxRate)
	}
	// E9123: without a price the quantity must be empty and every amount
	// given, for a Nuonuo seller (seed 001). The jumdata mapping sends a
	// quantity only with its price, and derives the amount or tax a line
	// leaves out from those it gives: jumdata never sees either, and its
	// sellers are held only to giving an amount it can derive je and se
	// from, below.
	if nuonuo && !l.Price.IsSet() && !c.mistyped(p+".price") {
		if l.Num.IsSet() {
			c.add(p+".num", "price_quantity", "E9123", "must be empty when price is empty")
		}
		for _, f := range []struct {
			name string
			v    Amount
		}{{"tax", l.Tax}, {"taxExcludedAmount", l.TaxExcludedAmount}, {"taxIncludedAmount", l.TaxIncludedAmount}} {
			if !f.v.IsSet() {
				c.add(p+"."+f.name, "price_quantity", "E9123", "is required when price is empty")
			}
		}
	}
	// The reverse, for a Nuonuo line that leaves an amount out: Nuonuo
	// computes such a line from price and num (seed 001: 不含税金额、税额、
	// 含税金额任何一个不传时，会根据传入的单价，数量进行计算), which a price
	// without num cannot give (the sandbox answers E4000 单价不为空时数量不能
	// 为空; the seed gives no code of its own). A line that gives all three
	// amounts is not computed; the jumdata mapping sends a price only with
	// its quantity, and a line from its amounts.
	if nuonuo && l.Price.IsSet() && !l.Num.IsSet() && !c.mistyped(p+".num") &&
		(!l.Tax.IsSet() || !l.TaxExcludedAmount.IsSet() || !l.TaxIncludedAmount.IsSet()) {
		c.add(p+".num", "price_quantity", "E4000", "is required when price is given and the line leaves an amount out: the provider computes the line from price × num; give num, or all three amounts")
	}
	// A jumdata seller's line that gives neither amount, nor price and num
	// to stand in for one, leaves the mapping nothing to derive je and se
	// from: the adapter refuses it before any call, and the request, whose
	// line has no amount, is refused by this service's own rule.
	if !nuonuo && !l.TaxExcludedAmount.IsSet() && !l.TaxIncludedAmount.IsSet() && !(l.Price.IsSet() && l.Num.IsSet()) &&
		!c.mistyped(p+".taxExcludedAmount") && !c.mistyped(p+".taxIncludedAmount") && !c.mistyped(p+".price") && !c.mistyped(p+".num") {
		c.own(p+".taxExcludedAmount", "required", "is required, or taxIncludedAmount, or price and num: the line gives no amount, and jumdata is sent the amount without tax and the tax (je and se) derived from one")
	}
	// price × num against the amount the price is quoted in (unknown when
	// withTaxFlag is wrong). A jumdata seller's names 400: its mapping
	// sends dj × spsl beside je and se (the sandbox answers 400, as it
	// does for any invoiceData the tax bureau would refuse). A Nuonuo
	// seller's is this service's own rule: Nuonuo issues a line that gives
	// all three amounts as given, and neither seed 001 nor seed 002 says
	// it refuses one whose price × num disagrees (E9123 is about an empty
	// price, above); the request says two things all the same. Not on a line that Nuonuo
	// computes from price × num (Recomputed: a Nuonuo seller's line that
	// leaves an amount out): Nuonuo sets the amounts it gives aside and
	// issues price × num, whatever they say, and refuses nothing;
	// checkComputedAmounts holds each amount given to the one Nuonuo
	// computes instead (more than LineTaxTolerance apart refused by this
	// service's own rule, closer a warning).
	if a.price != nil && a.num != nil && !c.has(p+".withTaxFlag") && !(a.effective && a.eff.Recomputed) {
		field, amt, text := p+".taxIncludedAmount", a.incl, l.TaxIncludedAmount
		if l.WithTaxFlag == "0" {
			field, amt, text = p+".taxExcludedAmount", a.excl, l.TaxExcludedAmount
		}
		got := a.price.Mul(*a.num)
		pqCode := c.providerCode(provider, "", "400")
		switch {
		case amt != nil && provider == "jumdata" && l.WithTaxFlag == "1" && a.excl != nil && a.tax != nil && !a.excl.Add(*a.tax).Equal(*amt):
			// The jumdata mapping does not send a taxIncludedAmount
			// unlike taxExcludedAmount + tax (amount_sum, below,
			// refuses it by this service's own rule): jumdata holds
			// dj × spsl to je + se, the amounts it is sent.
			if sent := a.excl.Add(*a.tax); got.Sub(sent).Abs().GreaterThan(PriceAmountTolerance) {
				c.addCode(p+".price", "price_quantity", pqCode, "× num is %s but taxExcludedAmount + tax, which jumdata is sent (je + se; withTaxFlag 1: the price includes tax, and taxIncludedAmount is not sent), is %s: they may differ by %s at most", got.StringFixed(2), sent.StringFixed(2), PriceAmountTolerance)
			}
		case amt != nil:
			if got.Sub(*amt).Abs().GreaterThan(PriceAmountTolerance) {
				c.addCode(field, "price_quantity", pqCode, "is %s but price × num is %s: they may differ by %s at most", text, got.StringFixed(2), PriceAmountTolerance)
			}
		case a.stated:
			// That amount is not given but follows from the others:
			// jumdata's mapping sends dj × spsl beside je and se, and the
			// tax bureau holds them to the same tolerance. (A Nuonuo
			// seller's line that leaves an amount out is computed from
			// price × num, above.)
			derived, how := quotedAmount(l.WithTaxFlag, a.said)
			if got.Sub(derived).Abs().GreaterThan(PriceAmountTolerance) {
				c.addCode(p+".price", "price_quantity", pqCode, "× num is %s but the line's %s: they may differ by %s at most (dj × spsl is sent beside the amounts)", got.StringFixed(2), how, PriceAmountTolerance)
			}
		}
	}
	// E9130: exact sum. The jumdata mapping sends je and se, not
	// taxIncludedAmount (jshj is hjje + hjse): jumdata never sees one that
	// disagrees with them, and the request, which says two things, is
	// refused for its sellers by this service's own rule.
	if a.excl != nil && a.tax != nil && a.incl != nil && !a.excl.Add(*a.tax).Equal(*a.incl) {
		if provider == "jumdata" {
			c.own(p+".taxIncludedAmount", "amount_sum", "is %s but taxExcludedAmount + tax is %s: jumdata would be sent the amount without tax and the tax (je and se) and issue %s with tax, not what the line says", l.TaxIncludedAmount, a.excl.Add(*a.tax).StringFixed(2), a.excl.Add(*a.tax).StringFixed(2))
		} else {
			c.add(p+".taxIncludedAmount", "amount_sum", "E9130", "is %s but taxExcludedAmount + tax is %s", l.TaxIncludedAmount, a.excl.Add(*a.tax).StringFixed(2))
		}
	}
	// E9131: per-line tax tolerance, on the amounts the provider works
	// with: the tax given or following from two amounts given (or one and
	// price × num), not one the provider computes from the rate, as Nuonuo
	// does on every line that leaves an amount out (Recomputed). Under
	// deduction taxation (差额征税) the rate applies to the amount less the
	// deduction.
	if a.effective && !a.eff.ComputedFromRate() && a.rate != nil {
		expected := ExpectedTax(a.eff.Excl, *a.rate, a.deduction)
		if diff := expected.Sub(a.eff.Tax).Abs(); diff.GreaterThan(LineTaxTolerance) {
			c.addCode(p+".tax", "line_tax_tolerance", c.providerCode(provider, "E9131", "400"), "%s: the difference %s exceeds %s", lineTaxMismatch(l, a, expected), diff.StringFixed(2), LineTaxTolerance)
		}
	}
	// A price is positive on every line, red or blue, as a red
	// confirmation's taxExcludedPrice is (seed 002: 单价(不含税)为正数): the
	// sign goes on num and the amounts. A price of zero sells nothing, and
	// jumdata refuses one (dj 须大于 0), though price × num may pass
	// against an amount of 0.01: 400 where the mapping sends it, beside
	// its quantity. jumdata does not look at a quantity's sign (spsl) but
	// in dj × spsl against the amount, price_quantity above: a quantity's
	// sign is this service's own rule for a jumdata seller.
	if a.price != nil && !a.price.IsPositive() {
		jd := "400"
		if a.num == nil {
			jd = ""
		}
		c.addCode(p+".price", "sign", c.providerCode(provider, "E4000", jd), "is %s but must be positive; the sign goes on num and the amounts", l.Price)
	}
	if a.num != nil && a.num.IsZero() {
		c.addCode(p+".num", "sign", c.providerCode(provider, "E4000", ""), "must not be zero")
	}
	// Signs: a blue invoice's goods lines are positive and its discount lines
	// negative; a red invoice's lines are negative. Zero is neither: an
	// amount of zero is refused either way, -0.00 too. A tax of zero is
	// allowed (rate 0, or a tax that rounds to nothing), written without a
	// minus sign on a goods line; any other tax has the sign of the
	// amounts. Unknown when the invoice type or the line property has the
	// wrong JSON type.
	if c.mistyped("order.invoiceType") || c.mistyped(p+".invoiceLineProperty") {
		return
	}
	prop := l.Property()
	wantNegative := red || prop == LineDiscount
	// The quantity's sign first: the figures derived from price × num
	// below are not judged again on a quantity of the wrong sign.
	if a.num != nil && !a.num.IsZero() {
		neg := a.num.IsNegative()
		numSign := func(nuonuo, msg string) {
			c.addCode(p+".num", "sign", c.providerCode(provider, nuonuo, ""), "%s", msg)
		}
		switch {
		case !red && prop == LineDiscount && !neg:
			numSign("E9111", "must be negative on a blue invoice's discount line")
		case !red && prop == LineDiscounted && neg:
			numSign("E9114", "must be positive on a blue invoice's discounted line")
		case red && prop == LineDiscount && neg:
			numSign("E9116", "must be positive on a red invoice's discount line")
		case red && prop == LineDiscounted && !neg:
			numSign("E9119", "must be negative on a red invoice's discounted line")
		case red && prop == LineNormal && !neg:
			numSign("E4000", "must be negative on a red invoice")
		case !red && prop == LineNormal && neg:
			numSign("E4000", "must be positive on a blue invoice's goods line")
		}
	}
	// amountOK and taxOK say whether an amount and a tax have the sign of
	// the line.
	amountOK := func(d decimal.Decimal) bool {
		return wantNegative && d.IsNegative() || !wantNegative && d.IsPositive()
	}
	taxOK := func(d decimal.Decimal) bool {
		return wantNegative && !d.IsPositive() || !wantNegative && !d.IsNegative()
	}
	// On a line that Nuonuo computes from price × num (Recomputed) the
	// amounts and the tax the line gives are set aside: Nuonuo does not
	// refuse one of the wrong sign, it issues the figure it computes. The
	// request's sign convention is one for every provider (the jumdata
	// mapping sends the figures given, and the tax bureau refuses them;
	// a seller moved, or a dead letter replayed, sends them as written),
	// so it is refused all the same, by this service's own rule, naming
	// the figure Nuonuo would issue, issued; unless that figure has the
	// wrong sign too (issuedOK false), which Nuonuo refuses and the checks
	// of derived figures below report on the same field, naming E4000.
	// Where price or num has a violation of its own there is no figure
	// Nuonuo would issue to name, and the figures given are held to their
	// signs as on any line.
	derivable := a.effective && !c.has(p+".price") && !c.has(p+".num")
	setAside := derivable && a.eff.Recomputed
	// signCode is the code of a sign rule on name: the jumdata mapping
	// sends the amount without tax and the tax (je and se), which jumdata
	// refuses with the wrong sign, not the amount with tax.
	signCode := func(name string) string {
		if name == "taxIncludedAmount" {
			return c.providerCode(provider, "E4000", "")
		}
		return c.providerCode(provider, "E4000", "400")
	}
	wrongSign := func(name string, issued decimal.Decimal, issuedOK bool, format string, args ...any) {
		switch {
		case !setAside:
			c.addCode(p+"."+name, "sign", signCode(name), format, args...)
		case issuedOK:
			c.own(p+"."+name, "sign", format+"; Nuonuo would set it aside, as the line leaves an amount out, and issue %s, computed from price × num and the rate, but the request's sign convention is one for every provider (the jumdata mapping sends the figures given): correct its sign, or leave it out",
				append(args, issued.StringFixed(2))...)
		}
	}
	for _, f := range []struct {
		name   string
		v      *decimal.Decimal
		issued decimal.Decimal
	}{{"taxIncludedAmount", a.incl, a.eff.Excl.Add(a.eff.Tax)}, {"taxExcludedAmount", a.excl, a.eff.Excl}} {
		if f.v == nil || amountOK(*f.v) {
			continue
		}
		want := "positive"
		if wantNegative {
			want = "negative"
		}
		wrongSign(f.name, f.issued, amountOK(f.issued), "must be %s on %s", want, lineKind(red, prop))
	}
	if a.tax != nil {
		switch {
		case wantNegative && a.tax.IsPositive():
			wrongSign("tax", a.eff.Tax, taxOK(a.eff.Tax), "must be negative (or zero) on %s", lineKind(red, prop))
		case !wantNegative && a.tax.IsNegative():
			wrongSign("tax", a.eff.Tax, taxOK(a.eff.Tax), "must be positive (or zero) on %s", lineKind(red, prop))
		case !wantNegative && strings.HasPrefix(l.Tax.String(), "-") && l.Tax.Decimal().IsZero():
			// -0.00 is zero, but its minus sign says a negative
			// figure, which only a red invoice's or a discount line's
			// is (seed 001: 红票为负), and the Nuonuo adapter sends the
			// seller's text as it is. Which one the provider reads is
			// not documented: the validator does not guess. The jumdata
			// mapping writes the tax with two decimals, 0.00, which
			// the tax bureau takes; seed 004 says nothing of signs
			// (invoiceData's format is not public). The request is
			// refused for a jumdata seller too, as the contract's sign
			// convention is one for every provider (a seller moved to
			// Nuonuo, or a dead letter replayed after, sends the text
			// as written), but it names no provider code: none is
			// pre-empted. Nor does it where Nuonuo sets the tax aside.
			switch {
			case provider == "jumdata":
				c.own(p+".tax", "sign", "is %s, a zero written with a minus sign, which says a negative tax: write 0.00 on %s. jumdata would be sent 0.00 (its mapping writes amounts with two decimals), but the request's sign convention is one for every provider: only a red invoice's and a discount line's figures carry a minus sign", l.Tax, lineKind(red, prop))
			case setAside:
				wrongSign("tax", a.eff.Tax, taxOK(a.eff.Tax), "is %s, a zero written with a minus sign, which says a negative tax: write 0.00 on %s", l.Tax, lineKind(red, prop))
			default:
				c.add(p+".tax", "sign", "", "is %s, a zero written with a minus sign, which says a negative tax, and Nuonuo is sent the text as written: write 0.00 on %s", l.Tax, lineKind(red, prop))
			}
		}
	}
	// An amount without tax the line does not give is held to the same
	// signs as it is derived (LineFigures.Effective): the provider issues
	// it, and the jumdata mapping sends it as je, which the tax bureau
	// refuses at zero (金额须为正数). A tiny line within the tax tolerance
	// (taxIncludedAmount and tax 0.05) or a price × num that rounds to
	// nothing makes one. On a line that Nuonuo computes from price × num
	// (Recomputed) so is an amount the line gives, which it sets aside:
	// what it issues is what it computes. A figure derived from others
	// that have violations of their own is not judged again (derivable;
	// on a line Nuonuo computes, price and num alone count).
	if (a.excl == nil || setAside && !c.has(p+".taxExcludedAmount")) && derivable &&
		(setAside || !c.has(p+".taxIncludedAmount") && !c.has(p+".tax")) {
		excl := a.eff.Excl
		switch {
		case wantNegative && !excl.IsNegative():
			c.addCode(p+".taxExcludedAmount", "sign", signCode("taxExcludedAmount"), "%s: %s makes it %s, which must be negative on %s", derivedLead(l.TaxExcludedAmount), derivedExcl(l, a.eff), excl.StringFixed(2), lineKind(red, prop))
		case !wantNegative && !excl.IsPositive():
			c.addCode(p+".taxExcludedAmount", "sign", signCode("taxExcludedAmount"), "%s: %s makes it %s, which must be positive on %s", derivedLead(l.TaxExcludedAmount), derivedExcl(l, a.eff), excl.StringFixed(2), lineKind(red, prop))
		}
	}
	// So is a tax the line does not give: the provider issues it, and the
	// jumdata mapping sends it as se. taxIncludedAmount below
	// taxExcludedAmount makes a negative one within E9131's 0.06 at rate 0
	// (or on a small line), and a deduction larger than the amount makes
	// the tax the provider computes from the rate negative. A tax that a
	// line Nuonuo computes gives is set aside, as an amount is (above).
	if (a.tax == nil || setAside && !c.has(p+".tax")) && derivable &&
		(setAside || !c.has(p+".taxIncludedAmount") && !c.has(p+".taxExcludedAmount")) {
		tax := a.eff.Tax
		switch {
		case wantNegative && tax.IsPositive():
			c.addCode(p+".tax", "sign", signCode("tax"), "%s: %s makes it %s, which must be negative (or zero) on %s", derivedLead(l.Tax), derivedTax(l, a), tax.StringFixed(2), lineKind(red, prop))
		case !wantNegative && tax.IsNegative():
			c.addCode(p+".tax", "sign", signCode("tax"), "%s: %s makes it %s, which must be positive (or zero) on %s", derivedLead(l.Tax), derivedTax(l, a), tax.StringFixed(2), lineKind(red, prop))
		}
	}
	checkDeductionAmount(c, p, l, a, red, prop, provider)
	if red && prop != LineNormal {
		c.addCode(p+".invoiceLineProperty", "red_line_property", c.providerCode(provider, "E4000", ""), "is %s but a red invoice has normal lines (0) only", prop)
	}
}

// RuleComputedAmount is the rule of an amount that a Nuonuo seller's line
// gives and Nuonuo sets aside: a line that leaves any of taxExcludedAmount,
// tax and taxIncludedAmount out is computed from price × num and the rate
// (seed 001: 不含税金额、税额、含税金额任何一个不传时，会根据传入的单价，数量进行
// 计算), and the invoice carries the computed figures, not the ones given.
// An amount given that differs from the computed one by more than
// LineTaxTolerance is a violation of this service's own (Nuonuo would issue
// the other figure, not refuse: no provider code); one that differs by less
// is a warning. Either names the figure given and the one Nuonuo will issue.
// The jumdata mapping sends the amounts given, and its sellers are not held
// to it.
const RuleComputedAmount = "computed_amount"

// checkComputedAmounts holds each amount a line gives that Nuonuo sets aside
// (EffectiveAmounts.Recomputed) to the one Nuonuo computes: more than
// LineTaxTolerance apart is refused (collector.own), closer is a warning,
// equal passes. It is the only rule that holds such an amount to price ×
// num: an amount that disagrees with price × num is one Nuonuo sets aside
// as any other (price_quantity is not applied to the line). An amount with
// a violation of its own is not judged again, nor is a line whose price or
// num has one, which Nuonuo refuses.
func checkComputedAmounts(c *collector, p string, l *InvoiceLine, a *lineAmounts) {
	e := a.eff
	if !a.effective || !e.Recomputed || c.has(p+".price") || c.has(p+".num") {
		return
	}
	figures := []struct {
		name     string
		text     Amount
		given    *decimal.Decimal
		computed decimal.Decimal
	}{
		{"taxExcludedAmount", l.TaxExcludedAmount, a.excl, e.Excl},
		{"tax", l.Tax, a.tax, e.Tax},
		{"taxIncludedAmount", l.TaxIncludedAmount, a.incl, e.Excl.Add(e.Tax)},
	}
	var left []string
	for _, f := range figures {
		if !f.text.IsSet() {
			left = append(left, f.name)
		}
	}
	quoted := "with tax, withTaxFlag 1"
	if l.WithTaxFlag == "0" {
		quoted = "without tax, withTaxFlag 0"
	}
	rate := "the rate"
	if a.deduction != nil {
		rate = "the rate on the amount less the deduction (差额征税)"
	}
	how := fmt.Sprintf("a line that leaves %s out is computed from price × num (%s %s) and %s, and the amounts it gives are set aside (seed 001)",
		strings.Join(left, " and "), e.Filled.StringFixed(2), quoted, rate)
	for _, f := range figures {
		field := p + "." + f.name
		if f.given == nil || c.has(field) {
			continue
		}
		diff := f.given.Sub(f.computed).Abs()
		issued := f.computed.StringFixed(2)
		switch {
		case diff.IsZero():
		case diff.GreaterThan(LineTaxTolerance):
			c.own(field, RuleComputedAmount, "is %s, but Nuonuo will issue %s, %s apart, beyond %s: %s. Give all three amounts, or none", f.text, issued, diff.StringFixed(2), LineTaxTolerance, how)
		default:
			c.warn(field, RuleComputedAmount, "is %s, but Nuonuo will issue %s, %s apart: %s, and the invoice will say %s. Give all three amounts, or none", f.text, issued, diff.StringFixed(2), how, issued)
		}
	}
}

// checkDeductionSign refuses a negative deduction on a blue goods line taxed
// on the difference (差额征税). The deduction (扣除额, seed 001) is taken off
// the amount before it is taxed: a negative one would add to it, taxing more
// than the line's amount, which no document allows and the tax bureau does
// not issue. Where the tax is derived from the rate it agrees with such a
// deduction, and at rate 0 a tax of 0.00 agrees with any, so the rule is the
// deduction's own. It is checked before the line's amounts are derived with
// the deduction, which are then not judged on it again. Seed 001 gives it no
// code of its own: E4000, a value that is wrong, for a Nuonuo seller;
// jumdata answers a kce it cannot take with 400 (providerCode). A red or
// discount line, whose amounts are negative, is left alone, as
// checkDeductionAmount leaves it: no document says which sign its deduction
// takes. -0.00 is zero, and checkDeductions' deduction_zero.
func checkDeductionSign(c *collector, p string, l *InvoiceLine, ded *decimal.Decimal, red bool, provider string) {
	field := p + ".deduction"
	if ded == nil || !ded.IsNegative() || red || c.mistyped("order.invoiceType") || c.mistyped(p+".invoiceLineProperty") || l.Property() == LineDiscount {
		return
	}
	c.addCode(field, "sign", c.providerCode(provider, "E4000", "400"), "is %s, a negative deduction, which would add to the amount taxed: a deduction (扣除额) of deduction taxation (差额征税) is taken off the line's amount; write the amount deducted, 0.00 for none, or 0 (or leave it out) for no deduction taxation", l.Deduction)
}

// providerCode is the code a rule names for a seller of provider: nuonuo
// for a Nuonuo seller (and for a seller ValidatorConfig.Providers does not
// list); for a jumdata seller, jumdata when the jumdata adapter sends the
// request (jumdataSent), and "" when it would not (it refuses the request
// as unsupported before any call, and jumdata never sees it). "" names no
// code: the rule is this service's own for that seller (record it with
// collector.addCode, which keeps "", not collector.add). A rule passes
// jumdata "" where jumdata would take what it refuses, or is never sent
// it: a line's taxIncludedAmount, a quantity's sign.
func (c *collector) providerCode(provider, nuonuo, jumdata string) string {
	if provider != "jumdata" {
		return nuonuo
	}
	if !c.jumdataSent {
		return ""
	}
	return jumdata
}

// checkDeductionAmount refuses a blue goods line taxed on the difference
// (差额征税) whose deduction is larger than its amount with tax: the
// provider taxes the amount less the deduction (seed 001's (taxIncludedAmount
// − deduction) × rate / (1 + rate)), and a larger deduction leaves a
// negative amount to tax. Where the tax is derived from the rate, it comes
// out negative, and at a rate above 0 a given tax seldom agrees within
// E9131's 0.06; but at rate 0 a tax of 0.00 agrees with any deduction, and
// on a small line the difference is within 0.06, so the rule is the
// deduction's own, with E4000 as checkDeductions' limits (seed 001 gives
// no narrower code). It is reported beside what it causes (a negative tax
// derived from the rate, an E9131 on a given tax), which name the tax and
// not the deduction. The amount is the larger of taxIncludedAmount and
// taxExcludedAmount, each as given or as the provider derives it
// (LineFigures.Effective): taxIncludedAmount, unless the tax is negative,
// as a tax the provider derives from the rate is under such a deduction. A
// red or discount line, whose amounts are negative, is left alone: no
// document says which sign its deduction takes. A line whose amounts with
// or without tax have violations of their own is not judged again. A
// jumdata seller's names 400: its mapping sends the deduction as kce, and
// the sandbox refuses one larger than je + se with it.
func checkDeductionAmount(c *collector, p string, l *InvoiceLine, a *lineAmounts, red bool, prop, provider string) {
	if a.deduction == nil || red || prop == LineDiscount || !a.effective ||
		c.has(p+".deduction") || c.has(p+".taxIncludedAmount") || c.has(p+".taxExcludedAmount") {
		return
	}
	amount, name, given := a.eff.Excl.Add(a.eff.Tax), "taxIncludedAmount", a.incl != nil
	if a.eff.Excl.GreaterThan(amount) {
		amount, name, given = a.eff.Excl, "taxExcludedAmount", a.excl != nil
	}
	if !a.deduction.GreaterThan(amount) {
		return
	}
	lead := "not given"
	if given && a.eff.Recomputed {
		given, lead = false, "set aside as the line leaves an amount out"
	}
	how := ""
	switch {
	case given:
	case name == "taxIncludedAmount":
		how = fmt.Sprintf(" (%s: %s)", lead, derivedIncl(a.eff))
	default:
		how = fmt.Sprintf(" (%s: %s)", lead, strings.TrimSuffix(derivedExcl(l, a.eff), ","))
	}
	c.addCode(p+".deduction", "deduction_amount", c.providerCode(provider, "E4000", "400"), "is %s, more than the line's %s %s%s: deduction taxation (差额征税) taxes the amount less the deduction, which may not be larger than the amount", l.Deduction, name, amount.StringFixed(2), how)
}

// derivedLead opens a message on a line's amount or tax that the provider
// derives: one the line does not give (given unset), or one it gives that
// Nuonuo sets aside, computing the line from price × num
// (EffectiveAmounts.Recomputed).
func derivedLead(given Amount) string {
	if !given.IsSet() {
		return "is not given"
	}
	return fmt.Sprintf("is %s, set aside as the line leaves an amount out and the provider computes it from price × num", given)
}

// derivedIncl says how a line's amount with tax, not given, follows from
// its effective amounts e.
func derivedIncl(e EffectiveAmounts) string {
	amount := "taxExcludedAmount"
	switch {
	case e.FromPriceNum && (e.Source == ExclFromInclAndTax || e.Source == TaxFromRateIncl):
		return fmt.Sprintf("price × num rounded to cents, %s, as taxIncludedAmount (withTaxFlag 1)", e.Filled.StringFixed(2))
	case e.FromPriceNum:
		amount = fmt.Sprintf("price × num rounded to cents, %s, as taxExcludedAmount (withTaxFlag 0)", e.Filled.StringFixed(2))
	}
	if e.Source == TaxFromRateExcl {
		return amount + " + the tax the provider computes from the rate"
	}
	return amount + " + tax"
}

// jumdataMoney is the text the jumdata mapping sends for an amount of
// money d (providers/jumdata: money): d with exactly two decimals, so that
// an integer amount goes out three characters longer than it came ("100"
// as "100.00") and an amount of one decimal one character longer.
func jumdataMoney(d decimal.Decimal) string { return d.StringFixed(moneyPlaces) }

// checkJumdataLength holds an amount of money that the jumdata mapping
// sends, d, to amountMaxChars as it is sent (jumdataMoney). jumdata
// publishes no length of its own for invoiceData, whose format is this
// project's assumption (providers/jumdata/invoicedata.go): the amounts the
// mapping writes are held to the 16 characters that the seeds give every
// amount field, the limit the request's own text is held to, and the
// sandbox holds them to it too. given is the field's text; how says how a
// value the request does not give is derived, "" when it is given. jumdata
// answers a parameter it refuses with 400.
func checkJumdataLength(c *collector, field string, given Amount, d decimal.Decimal, how string) {
	if c.has(field) {
		return
	}
	// A given amount without a violation has at most two decimals, so its
	// text gains at most three characters (".00"): one of 13 or fewer needs
	// no text written for it, which spares a typical request's lines an
	// allocation each.
	if how == "" && len(given.String()) <= amountMaxChars-3 {
		return
	}
	sent := jumdataMoney(d)
	if len(sent) <= amountMaxChars {
		return
	}
	if how == "" {
		c.add(field, "max_length", "400", "is %s, sent to jumdata with two decimals as %s: %d characters; the maximum is %d, a minus sign included", given, sent, len(sent), amountMaxChars)
		return
	}
	c.add(field, "max_length", "400", "is not given: %s makes it %s, sent to jumdata as such: %d characters; the maximum is %d, a minus sign included", how, sent, len(sent), amountMaxChars)
}

// checkJumdataLineLengths applies checkJumdataLength to the amounts of
// money the jumdata mapping sends for an order line: je and se, as given
// or as derived (LineFigures.Effective), and kce, the deduction of a line
// taxed on the difference. taxIncludedAmount is not sent (it is je + se),
// nor are price and num other than as given, whose own 16 characters
// bound them. A value derived from a figure with a violation of its own
// is not judged again.
func checkJumdataLineLengths(c *collector, p string, l *InvoiceLine, a *lineAmounts, ded *decimal.Decimal) {
	derivable := a.effective && !c.has(p+".taxIncludedAmount") && !c.has(p+".price") && !c.has(p+".num")
	switch {
	case a.excl != nil:
		checkJumdataLength(c, p+".taxExcludedAmount", l.TaxExcludedAmount, *a.excl, "")
	case derivable && !c.has(p+".tax"):
		checkJumdataLength(c, p+".taxExcludedAmount", l.TaxExcludedAmount, a.eff.Excl, derivedExcl(l, a.eff))
	}
	switch {
	case a.tax != nil:
		checkJumdataLength(c, p+".tax", l.Tax, *a.tax, "")
	case derivable && !c.has(p+".taxExcludedAmount"):
		checkJumdataLength(c, p+".tax", l.Tax, a.eff.Tax, derivedTax(l, a))
	}
	if ded != nil && DeductionApplies(l.Deduction) {
		checkJumdataLength(c, p+".deduction", l.Deduction, *ded, "")
	}
}

// derivedExcl says how a line's amount without tax, not given, is derived
// from its effective amounts e.
func derivedExcl(l *InvoiceLine, e EffectiveAmounts) string {
	less := "tax"
	if e.Source == TaxFromRateIncl {
		less = "the tax the provider computes from the rate"
	}
	switch {
	case e.FromPriceNum && l.WithTaxFlag == "0":
		return "price × num rounded to cents (withTaxFlag 0: the price excludes tax)"
	case e.FromPriceNum:
		return fmt.Sprintf("price × num rounded to cents, %s, as taxIncludedAmount (withTaxFlag 1), less %s,", e.Filled.StringFixed(2), less)
	}
	return "taxIncludedAmount − " + less
}

// derivedTax says how a line's tax, not given, is derived from its
// effective amounts (a.eff): from its two amounts, or from the rate.
func derivedTax(l *InvoiceLine, a *lineAmounts) string {
	e := a.eff
	if e.Source == TaxFromInclAndExcl {
		return "taxIncludedAmount − taxExcludedAmount"
	}
	amount := "taxExcludedAmount"
	if e.Source == TaxFromRateIncl {
		amount = "taxIncludedAmount"
	}
	if e.FromPriceNum {
		amount = fmt.Sprintf("%s (price × num rounded to cents, %s)", amount, e.Filled.StringFixed(2))
	}
	if a.deduction != nil {
		amount = fmt.Sprintf("(%s − deduction %s)", amount, l.Deduction)
	}
	if e.Source == TaxFromRateIncl {
		return "the tax the provider computes from the rate, " + amount + " × taxRate / (1 + taxRate) rounded to cents,"
	}
	return "the tax the provider computes from the rate, " + amount + " × taxRate rounded to cents,"
}

// quotedAmount returns the amount a line's price is quoted in (with tax
// for withTaxFlag 1, without for 0) when the line does not give it, derived
// from its effective amounts e, and says how it was derived.
func quotedAmount(flag string, e EffectiveAmounts) (decimal.Decimal, string) {
	if flag == "1" {
		incl := e.Excl.Add(e.Tax)
		how := "taxExcludedAmount + tax"
		if e.Source == TaxFromRateExcl {
			how = "taxExcludedAmount + the tax the provider computes from the rate"
		}
		return incl, fmt.Sprintf("taxIncludedAmount is not given and %s makes it %s (withTaxFlag 1: the price includes tax)", how, incl.StringFixed(2))
	}
	how := "taxIncludedAmount − tax"
	if e.Source == TaxFromRateIncl {
		how = "taxIncludedAmount − the tax the provider computes from the rate"
	}
	return e.Excl, fmt.Sprintf("taxExcludedAmount is not given and %s makes it %s (withTaxFlag 0: the price excludes tax)", how, e.Excl.StringFixed(2))
}

// lineTaxMismatch says how a line's tax and amount without tax were
// derived and what the rate makes of them, for an E9131 violation on .tax.
func lineTaxMismatch(l *InvoiceLine, a *lineAmounts, expected decimal.Decimal) string {
	e := a.eff
	exp := expected.StringFixed(2)
	excl := e.Excl.StringFixed(2)
	// times names the product the rule compares the tax with.
	times := func(amount string) string {
		if a.deduction != nil {
			return fmt.Sprintf("(%s − deduction %s) × taxRate (deduction taxation, 差额征税)", amount, l.Deduction)
		}
		return amount + " × taxRate"
	}
	switch {
	case e.Source == TaxFromInclAndExcl:
		return fmt.Sprintf("is not given: taxIncludedAmount − taxExcludedAmount makes it %s, but %s is %s", e.Tax.StringFixed(2), times("taxExcludedAmount"), exp)
	case e.Source == ExclFromInclAndTax && e.FromPriceNum:
		return fmt.Sprintf("is %s, and neither taxIncludedAmount nor taxExcludedAmount is given: the provider takes price × num rounded to cents, %s, as taxIncludedAmount (withTaxFlag 1), which makes taxExcludedAmount taxIncludedAmount − tax = %s, and %s is %s", l.Tax, e.Filled.StringFixed(2), excl, times(excl), exp)
	case e.Source == ExclFromInclAndTax:
		return fmt.Sprintf("is %s, and taxExcludedAmount is not given: taxIncludedAmount − tax makes it %s, and %s is %s", l.Tax, excl, times(excl), exp)
	case e.FromPriceNum:
		return fmt.Sprintf("is %s, and neither taxExcludedAmount nor taxIncludedAmount is given: the provider takes price × num rounded to cents, %s, as taxExcludedAmount (withTaxFlag 0), and %s is %s", l.Tax, excl, times(excl), exp)
	}
	return fmt.Sprintf("is %s but %s is %s", l.Tax, times("taxExcludedAmount"), exp)
}

func lineKind(red bool, prop string) string {
	switch {
	case red:
		return "a red invoice"
	case prop == LineDiscount:
		return "a blue invoice's discount line"
	}
	return "a blue invoice's goods line"
}

// checkDiscounts applies the discount-line rules: a discount line (1)
// directly follows its discounted line (2), names the same goods, carries
// the same rate and is no larger in amount.
//
// For a jumdata seller each names 400: the mapping sends fphxz, spmc, sl
// and je, which the jumdata sandbox checks the same way; but the amount
// with tax, which it does not send (the sandbox compares je), is this
// service's own rule.
func checkDiscounts(c *collector, lines []InvoiceLine, parsed []lineAmounts, red bool, provider string) {
	// A line property of the wrong JSON type is unknown: the lines next to
	// it are not judged by it.
	unknown := func(i int) bool {
		return c.typeErrors > 0 && c.mistyped(fmt.Sprintf("order.invoiceDetail[%d].invoiceLineProperty", i))
	}
	for i := range lines {
		p := fmt.Sprintf("order.invoiceDetail[%d]", i)
		if unknown(i) {
			continue
		}
		switch lines[i].Property() {
		case LineDiscounted:
			if i+1 < len(lines) && unknown(i+1) {
				continue
			}
			if i+1 >= len(lines) || lines[i+1].Property() != LineDiscount {
				c.addCode(p+".invoiceLineProperty", "discount_position", c.providerCode(provider, "E9110", "400"), "is 2 (discounted) but the next line is not its discount line (1)")
			}
		case LineDiscount:
			if i > 0 && unknown(i-1) {
				continue
			}
			if i == 0 || lines[i-1].Property() != LineDiscounted {
				c.addCode(p+".invoiceLineProperty", "discount_position", c.providerCode(provider, "E9110", "400"), "is 1 (discount) but does not directly follow a discounted line (2)")
				continue
			}
			prev := &lines[i-1]
			if lines[i].GoodsName != prev.GoodsName && (c.typeErrors == 0 || !c.mistyped(p+".goodsName") && !c.mistyped(fmt.Sprintf("order.invoiceDetail[%d].goodsName", i-1))) {
				c.addCode(p+".goodsName", "discount_goods", c.providerCode(provider, "E9105", "400"), "is %q but the discounted line above names %q", lines[i].GoodsName, prev.GoodsName)
			}
			a, b := parsed[i].rate, parsed[i-1].rate
			if a != nil && b != nil && !a.Equal(*b) {
				c.addCode(p+".taxRate", "discount_rate", c.providerCode(provider, "E9112", "400"), "is %s but the discounted line above is taxed at %s", lines[i].TaxRate, prev.TaxRate)
			}
			// The amounts as given or, where a line leaves one out, as the
			// provider derives it (seed 001: computed from price and num):
			// a discounted line that gives price and num only is held to
			// E9108 as much as one that gives its amounts.
			for _, name := range []string{"taxIncludedAmount", "taxExcludedAmount"} {
				disc, _ := discountAmount(&parsed[i], name)
				base, how := discountAmount(&parsed[i-1], name)
				jd := "400"
				if name == "taxIncludedAmount" {
					jd = ""
				}
				if disc != nil && base != nil && disc.Abs().GreaterThan(base.Abs()) {
					c.addCode(p+"."+name, "discount_amount", c.providerCode(provider, "E9108", jd), "discounts %s, more than the discounted line's %s%s", disc.Abs().StringFixed(2), base.Abs().StringFixed(2), how)
				}
			}
		}
	}
}

// discountAmount returns a line's taxIncludedAmount or taxExcludedAmount
// (name) for the discount-line rules: as given, or, when the line leaves it
// out or Nuonuo computes the line from price × num (Recomputed), as the
// provider derives it from the line's other figures
// (LineFigures.Effective), with how saying so; nil when it is neither given
// nor derivable.
func discountAmount(a *lineAmounts, name string) (d *decimal.Decimal, how string) {
	given := a.excl
	if name == "taxIncludedAmount" {
		given = a.incl
	}
	switch {
	case given != nil && !(a.effective && a.eff.Recomputed):
		return given, ""
	case !a.effective:
		return nil, ""
	}
	v := a.eff.Excl
	if name == "taxIncludedAmount" {
		v = v.Add(a.eff.Tax)
	}
	switch {
	case given != nil:
		how = " (set aside as the line leaves an amount out: the provider computes the line from price × num)"
	case a.eff.FromPriceNum:
		how = " (not given: the provider computes the line from price × num)"
	default:
		how = " (not given: the provider derives it from the line's other amounts)"
	}
	return &v, how
}

// sentAs says how the jumdata mapping (providers/jumdata: money, exact)
// writes a figure it sends, for the code a rule on the figure as written
// names for a jumdata seller (jumdataCode).
type sentAs int

const (
	// notSent: jumdata is not sent the figure as such (a line's
	// taxIncludedAmount, a price or quantity without the other, a
	// deduction of "0").
	notSent sentAs = iota
	// sentMoney: with exactly two decimals (je, se, kce), which jumdata
	// holds to 16 characters.
	sentMoney
	// sentExact: as its shortest exact decimal (dj, spsl: leading zeros
	// and trailing decimal zeros dropped), which jumdata holds to 16
	// characters and 8 decimals.
	sentExact
	// sentRate: as its shortest exact decimal (sl), which jumdata holds to
	// the set of rates.
	sentRate
)

// jumdataCode is the code a rule on a's text (its length or decimals)
// names for a jumdata seller, for a figure sent as s: 400 when jumdata
// would refuse the figure as the mapping writes it, "" (this service's
// own rule) when it would take it, as "100.00" for "00000000000100.00",
// or is not sent it. A value the mapping cannot read it refuses before
// any call.
func (s sentAs) jumdataCode(a Amount) string {
	if s == notSent || !a.Valid() {
		return ""
	}
	d := a.Decimal()
	refused := false
	switch s {
	case sentMoney:
		refused = len(jumdataMoney(d)) > amountMaxChars
	case sentExact:
		t := d.String()
		refused = len(t) > amountMaxChars || ParseAmount(t).Places() > quantityPlaces
	case sentRate:
		refused = !isTaxRate(d)
	}
	if refused {
		return "400"
	}
	return ""
}

// nuonuoCode is the code a rule on a's text names for a Nuonuo seller,
// whose adapter sends the seller's text as written but for a tax rate
// (sentRate), sent as its shortest decimal (providers/nuonuo: plainRate,
// "0.060000000" as "0.06"): a rate of the set is taken whatever its
// trailing zeros, and a rule on its text is this service's own (""); any
// other figure, and a rate Nuonuo refuses as sent, names code.
func (s sentAs) nuonuoCode(a Amount, code string) string {
	if s == sentRate && a.Valid() && isTaxRate(a.Decimal()) {
		return ""
	}
	return code
}

// amount checks one amount field's length (amountMaxChars) and precision
// and returns its value, or nil when it is unset or unusable. lengthCode is
// the Nuonuo code of a length violation ("" for E4000); sent says how the
// jumdata mapping sends the figure, for the code a jumdata seller's names.
func amount(c *collector, field string, a Amount, places int, lengthCode, provider string, sent sentAs) *decimal.Decimal {
	return amountWithin(c, field, a, amountMaxChars, places, lengthCode, provider, sent)
}

// taxRate is amount for a tax rate: at most rateMaxChars characters.
func taxRate(c *collector, field string, a Amount, provider string) *decimal.Decimal {
	return amountWithin(c, field, a, rateMaxChars, ratePlaces, "", provider, sentRate)
}

// amountWithin is amount with a maximum length of maxChars characters.
//
// A figure written too long or too precisely that can be read and written
// within the limit (00000000000100.00, 13.001) has that violation, and its value is
// returned all the same, rounded to places (as the jumdata mapping sends
// money; the text Nuonuo would refuse is corrected so, most likely): the
// other rules judge it (collector.addSpelling), so that a second problem
// of the figure (a sign, a tax off the rate, a deduction larger than the
// amount, which jumdata refuses with 400) is reported at once. Before, the
// field was not judged again, and the order system, having corrected the
// spelling and sent the request again, learnt of the second problem only
// then. A figure that cannot be read (not a plain decimal, or longer than
// maxAmountChars), or is too large for maxChars however written, is not
// judged again: nil.
func amountWithin(c *collector, field string, a Amount, maxChars, places int, lengthCode, provider string, sent sentAs) *decimal.Decimal {
	if !a.IsSet() || c.has(field) {
		return nil
	}
	// The length first, on the text: a plain decimal too long to be parsed
	// (over maxAmountChars) is too long, not malformed. The seeds' maximum
	// length is the field's, every character of it: a minus sign counts,
	// so a red invoice's amount has one digit fewer than a blue one's.
	long := false
	if n := len(a.String()); n > maxChars && isPlainDecimal(a.String()) {
		code := lengthCode
		if code == "" {
			code = "E4000"
		}
		code = c.providerCode(provider, sent.nuonuoCode(a, code), sent.jumdataCode(a))
		// A value too large to be written within the limit at all
		// (10000000000000000.00) is no figure the provider could take,
		// and judging it would only add what follows from it (a sum, a
		// tolerance): not judged again.
		if !a.Valid() || len(a.Decimal().Round(int32(places)).String()) > maxChars {
			c.addCode(field, "max_length", code, "has %d characters; the maximum is %d, a minus sign included", n, maxChars)
			return nil
		}
		c.addSpelling(field, "max_length", code, "has %d characters; the maximum is %d, a minus sign included", n, maxChars)
		long = true
	}
	// The mapping refuses a value it cannot read before any call.
	if !a.Valid() {
		c.addCode(field, "format", c.providerCode(provider, codeFor(field, "format"), ""), "must be a plain decimal such as 5.65 (no exponent, no spaces); got %s", quoteValue(a.String()))
		return nil
	}
	d := a.Decimal()
	if a.Places() > places {
		// A text already too long says so once: its decimals are one
		// reason why.
		if !long {
			c.addSpelling(field, "precision", c.providerCode(provider, bodyCode(field, "precision"), sent.jumdataCode(a)), "has %d decimals; the maximum is %d", a.Places(), places)
		}
		d = d.Round(int32(places))
	}
	return &d
}

func isTaxRate(d decimal.Decimal) bool {
	for _, r := range TaxRates {
		if d.Equal(r) {
			return true
		}
	}
	return false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func looksLikeEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at == strings.LastIndexByte(s, '@') && strings.Contains(s[at+1:], ".") &&
		!strings.ContainsAny(s, " \t<>,;")
}

// checkRedConfirm applies the rules of a red confirmation application.
// provider names the seller's provider ("" when unknown: Nuonuo's rules).
// The jumdata mapping (providers/jumdata: newRedTask, RedLines) sends the
// blue invoice's number and time (lzfphm, lzkprq) and the lines (hzmx: xh,
// dj with spsl, je, se, sl) under the envelope's seller, and refuses
// before any call a blue invoice that is not fully digital, a number or
// time it is not given or cannot read, and a quantity of 0 or more; it
// sends no applySource or sellerName, and jumdata does not hold the lines
// to the blue invoice's order.
func checkRedConfirm(r *Request, provider string, c *collector) {
	rc := r.RedConfirm
	nuonuo := providerName(provider) == "nuonuo"
	if rc.SellerTaxNo != "" && r.SellerTaxNum != "" && rc.SellerTaxNo != r.SellerTaxNum && !c.has("sellerTaxNum") && !c.has("redConfirm.sellerTaxNo") {
		c.addCode("redConfirm.sellerTaxNo", "seller_mismatch", c.providerCode(provider, "E9302", ""), "is %q but the request is for seller %q", rc.SellerTaxNo, r.SellerTaxNum)
	}
	checkTaxNumber(c, "redConfirm.sellerTaxNo", rc.SellerTaxNo)
	checkBuyerTaxNumber(c, "redConfirm.buyerTaxNo", rc.BuyerTaxNo)
	if nuonuo && rc.ApplySource == "1" && rc.SellerName == "" {
		c.add("redConfirm.sellerName", "required", "E4000", "is required when the buyer applies (applySource 1)")
	}
	if seed002FullyDigital(rc.BlueInvoiceLine) {
		n := rc.BlueElecInvoiceNumber
		field := "redConfirm.blueElecInvoiceNumber"
		if n == "" && len(rc.BlueInvoiceNumber) == 20 {
			n, field = rc.BlueInvoiceNumber, "redConfirm.blueInvoiceNumber"
		}
		// jumdata refuses an lzfphm of other than 20 digits with 400;
		// without one the adapter sends nothing.
		jd := "400"
		if rc.BlueNumber() == "" {
			jd = ""
		}
		if !isDigits(n) || len(n) != 20 {
			c.addCode(field, "red_reference", c.providerCode(provider, "E9102", jd), "must be the 20-digit number of the fully digital blue invoice (blueInvoiceLine %s); got %q", rc.BlueInvoiceLine, n)
		}
	} else if nuonuo && rc.BlueInvoiceLine != "" {
		if !isDigits(rc.BlueInvoiceCode) || (len(rc.BlueInvoiceCode) != 10 && len(rc.BlueInvoiceCode) != 12) {
			c.add("redConfirm.blueInvoiceCode", "red_reference", "E9102", "must be the 10- or 12-digit code of the VAT blue invoice (blueInvoiceLine %s); got %q", rc.BlueInvoiceLine, rc.BlueInvoiceCode)
		}
		if !isDigits(rc.BlueInvoiceNumber) || len(rc.BlueInvoiceNumber) != 8 {
			c.add("redConfirm.blueInvoiceNumber", "red_reference", "E9102", "must be the 8-digit number of the VAT blue invoice; got %q", rc.BlueInvoiceNumber)
		}
	}
	// lzkprq: seed 004 requires the blue invoice's issue time (必须 是),
	// which Nuonuo's form does not have (seed 002); the jumdata adapter
	// refuses a request without it before any call, so jumdata is never
	// sent it: this service's own rule, no code.
	if !nuonuo && rc.BlueInvoiceTime == "" && !c.has("redConfirm.blueInvoiceTime") && !c.mistyped("redConfirm.blueInvoiceTime") {
		c.own("redConfirm.blueInvoiceTime", "required", "is required for a jumdata seller (red-invoice/submit's lzkprq): the blue invoice's issue time, yyyy-MM-dd HH:mm:ss")
	}
	if rc.BlueInvoiceTime != "" && !c.has("redConfirm.blueInvoiceTime") {
		if _, err := time.Parse(dateLayout, rc.BlueInvoiceTime); err != nil {
			c.addCode("redConfirm.blueInvoiceTime", "format", c.providerCode(provider, "E4000", ""), "is not a real date and time: %q", rc.BlueInvoiceTime)
		}
	}
	lastIndex := 0
	var sumExpected, sumTax decimal.Decimal
	for i := range rc.Detail {
		l := &rc.Detail[i]
		p := fmt.Sprintf("redConfirm.detail[%d]", i)
		// Seed 002: 部分冲红明细序号必须和原蓝票顺序保持一致, Nuonuo's.
		if idx, ok := indexToken("[" + l.BlueDetailIndex + "]"); nuonuo && ok && !c.has(p+".blueDetailIndex") {
			if idx <= lastIndex {
				c.add(p+".blueDetailIndex", "detail_order", "E4000", "is %d but must be greater than the previous line's %d: lines follow the blue invoice's order", idx, lastIndex)
			}
			lastIndex = idx
		}
		// hzmx: spsl and dj only together, je and se.
		priced := notSent
		if l.Num.IsSet() && l.TaxExcludedPrice.IsSet() {
			priced = sentExact
		}
		num := amount(c, p+".num", l.Num, quantityPlaces, "", provider, priced)
		price := amount(c, p+".taxExcludedPrice", l.TaxExcludedPrice, quantityPlaces, "", provider, priced)
		excl := amount(c, p+".taxExcludedAmount", l.TaxExcludedAmount, moneyPlaces, "", provider, sentMoney)
		tax := amount(c, p+".taxAmount", l.TaxAmount, moneyPlaces, "", provider, sentMoney)
		rate := taxRate(c, p+".taxRate", l.TaxRate, provider)
		if rate != nil && !isTaxRate(*rate) {
			c.addCode(p+".taxRate", "tax_rate", c.providerCode(provider, "E4000", "400"), "%s is not a VAT rate; use one of 0, 0.01, 0.015, 0.03, 0.05, 0.06, 0.09, 0.13", l.TaxRate)
			rate = nil
		}
		// The jumdata adapter refuses a quantity of 0 or more before any
		// call, and jumdata does not look at a price's sign (dj).
		if num != nil && !num.IsNegative() {
			c.addCode(p+".num", "sign", c.providerCode(provider, "E4000", ""), "must be negative on a red confirmation: the quantity reversed")
		}
		if price != nil && !price.IsPositive() {
			c.addCode(p+".taxExcludedPrice", "sign", c.providerCode(provider, "E4000", ""), "must be positive (seed 002: 单价(不含税)为正数)")
		}
		// num × taxExcludedPrice against the amount, as on an order's
		// lines: this service's own rule (no provider code), as neither
		// seed 002 nor the sandboxes refuse a form's line for it.
		if num != nil && price != nil && excl != nil {
			if got := num.Mul(*price); got.Sub(*excl).Abs().GreaterThan(PriceAmountTolerance) {
				c.own(p+".taxExcludedAmount", "price_quantity", "is %s but num × taxExcludedPrice is %s: they may differ by %s at most", l.TaxExcludedAmount, got.StringFixed(2), PriceAmountTolerance)
			}
		}
		// Zero is not negative: a line reversing 0.00 reverses nothing, and
		// is refused as an order's line of zero is (jumdata: 红冲金额须为负数).
		if excl != nil && !excl.IsNegative() {
			c.addCode(p+".taxExcludedAmount", "sign", c.providerCode(provider, "E4000", "400"), "must be negative on a red confirmation: the amount reversed")
		}
		if tax != nil && tax.IsPositive() {
			c.addCode(p+".taxAmount", "sign", c.providerCode(provider, "E4000", "400"), "must be negative on a red confirmation")
		}
		// A line that gives neither taxExcludedAmount nor num and
		// taxExcludedPrice to stand in for it reverses no amount that
		// can be told: the jumdata adapter refuses it before any call
		// (RedLines), and Nuonuo's form has no amount to reverse (its
		// sandbox answers E4000; seed 002 gives no code of its own).
		if !l.TaxExcludedAmount.IsSet() && !(l.Num.IsSet() && l.TaxExcludedPrice.IsSet()) &&
			!c.mistyped(p+".taxExcludedAmount") && !c.mistyped(p+".num") && !c.mistyped(p+".taxExcludedPrice") {
			c.addCode(p+".taxExcludedAmount", "required", c.providerCode(provider, "E4000", ""), "is required, or num and taxExcludedPrice: the line gives no amount to reverse")
		}
		e, ok := redLineEffective(c, p, l, RedLineFigures{Num: num, Price: price, Excl: excl, Tax: tax, Rate: rate})
		if !ok {
			continue
		}
		// num × taxExcludedPrice rounded to cents stands in for a
		// taxExcludedAmount the line does not give (jumdata's je): it must
		// reverse something, as a given one must.
		if e.FromPriceNum && !e.Excl.IsNegative() && !c.has(p+".num") && !c.has(p+".taxExcludedPrice") {
			c.addCode(p+".taxExcludedAmount", "sign", c.providerCode(provider, "E4000", "400"), "is not given: num × taxExcludedPrice rounded to cents makes it %s, which must be negative on a red confirmation: the amount reversed", e.Excl.StringFixed(2))
		}
		if !e.ComputedFromRate() {
			checkRedLineTax(c, p, l, e, *rate, provider)
		}
		// The jumdata mapping sends the line's je and se with two
		// decimals, given or derived (RedLines); Nuonuo is sent the
		// seller's text.
		if c.jumdataSent {
			how := ""
			if e.FromPriceNum {
				how = "num × taxExcludedPrice rounded to cents"
			}
			checkJumdataLength(c, p+".taxExcludedAmount", l.TaxExcludedAmount, e.Excl, how)
			how = ""
			if e.ComputedFromRate() {
				how = "taxExcludedAmount × taxRate rounded to cents"
			}
			checkJumdataLength(c, p+".taxAmount", l.TaxAmount, e.Tax, how)
		}
		// The red invoice the form issues is an invoice the tax bureau
		// holds to 1.27 as it holds a blue one (checkLines), on the
		// amounts sent: a tax the mapping computes from the rate counts
		// with its rounding, which adds up over many lines.
		sumExpected = sumExpected.Add(e.Excl.Mul(*rate))
		sumTax = sumTax.Add(e.Tax)
	}
	if len(rc.Detail) > 1 {
		if diff := sumExpected.Sub(sumTax).Abs(); diff.GreaterThan(InvoiceTaxTolerance) {
			c.addCode("redConfirm.detail", "invoice_tax_tolerance", c.providerCode(provider, "E9131", "400"), "the lines' taxAmount differ from Σ taxExcludedAmount × taxRate by %s (a taxExcludedAmount that is not given taken as num × taxExcludedPrice rounded to cents, and a taxAmount that is not given as taxExcludedAmount × taxRate rounded to cents, as jumdata derives them); the limit per invoice, the red one included, is %s", diff.StringFixed(2), InvoiceTaxTolerance)
		}
	}
}

// redLineEffective returns a red confirmation line's amount without tax and
// tax as sent (RedLineFigures.Effective: taxExcludedAmount, or without it
// round2(num × taxExcludedPrice); taxAmount, or without it the amount ×
// taxRate rounded to cents, as the jumdata mapping derives them), and false
// when the line gives too little or its rate is unusable. A field given but
// unusable has its own violation and derives nothing.
func redLineEffective(c *collector, p string, l *RedConfirmLine, fig RedLineFigures) (EffectiveAmounts, bool) {
	unusable := func(name string, v Amount, d *decimal.Decimal) bool {
		return d == nil && (v.IsSet() || c.has(p+"."+name))
	}
	if fig.Rate == nil || unusable("taxAmount", l.TaxAmount, fig.Tax) || unusable("taxExcludedAmount", l.TaxExcludedAmount, fig.Excl) ||
		fig.Excl == nil && (unusable("num", l.Num, fig.Num) || unusable("taxExcludedPrice", l.TaxExcludedPrice, fig.Price)) {
		return EffectiveAmounts{}, false
	}
	return fig.Effective()
}

// checkRedLineTax applies E9131 to a red confirmation line's taxAmount and
// the amount sent, e (redLineEffective), taxed at rate (for a jumdata
// seller 400: jumdata holds hzmx's se to je × sl).
func checkRedLineTax(c *collector, p string, l *RedConfirmLine, e EffectiveAmounts, rate decimal.Decimal, provider string) {
	expected := e.Excl.Mul(rate)
	if diff := expected.Sub(e.Tax).Abs(); diff.GreaterThan(LineTaxTolerance) {
		how := fmt.Sprintf("taxExcludedAmount × taxRate is %s", expected.StringFixed(2))
		if e.FromPriceNum {
			how = fmt.Sprintf("taxExcludedAmount is not given: num × taxExcludedPrice rounded to cents makes it %s (as jumdata derives it), and %s × taxRate is %s", e.Excl.StringFixed(2), e.Excl.StringFixed(2), expected.StringFixed(2))
		}
		c.addCode(p+".taxAmount", "line_tax_tolerance", c.providerCode(provider, "E9131", "400"), "is %s but %s: the difference %s exceeds %s", l.TaxAmount, how, diff.StringFixed(2), LineTaxTolerance)
	}
}

// checkReissue applies the rules of a reInvoice request: Nuonuo's own, as
// the jumdata adapter takes no reissue.
func checkReissue(ri *Reissue, provider string, c *collector) {
	if providerName(provider) == "nuonuo" && ri.NextInvoiceCode != "" {
		if ri.InvoiceNumStart == "" {
			c.add("reissue.invoiceNumStart", "required", "E4000", "is required when nextInvoiceCode is set")
		}
		if ri.InvoiceNumEnd == "" {
			c.add("reissue.invoiceNumEnd", "required", "E4000", "is required when nextInvoiceCode is set")
		}
	}
}
