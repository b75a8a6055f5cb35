package jumdata

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// This file is the whole mapping from our requests (package schemas, which
// keeps Nuonuo's field names) to jumdata's business parameters: the blue
// invoice's invoiceData, the red invoice's hzmx lines and the red reason
// code.
//
// Assumption. jumdata does not publish the invoiceData format ("开票数据说明"
// is empty in seed 004). This project uses the tax bureau's own field names,
// the ones jumdata's query endpoints return (xsfnsrsbh, xsfmc, gmfnsrsbh,
// gmfmc, hjje, hjse, jshj, bz, kpr; lines spmc, spbm, ggxh, dw, spsl, dj, je,
// sl, se), plus the order number in ddh so that jumdata (and the sandbox's
// accounting) can tell orders apart. The sandbox checks exactly this format.
// Moving to jumdata's real format means changing this file only.
//
// invoiceData, field by field (schemas.Request / schemas.Order → JSON):
//
//	ddh        Request.OrderNo                 订单号, our idempotency key
//	fppzdm     Order.InvoiceLine               发票票种: bs, b → "01" (专票); pc, p, "" → "02" (普票);
//	                                           any other line (paper, vehicle, used car, ...) is unsupported
//	xsfnsrsbh  Request.SellerTaxNum            销售方纳税人识别号
//	xsfmc      Config.SellerName               销售方名称, omitted when empty (the order has no seller name)
//	xsfdz      Order.SalerAddress              销售方地址, omitted when empty
//	xsfdh      Order.SalerTel                  销售方电话, omitted when empty
//	gmfnsrsbh  Order.BuyerTaxNum               购买方纳税人识别号, omitted for a buyer without one
//	gmfmc      Order.BuyerName                 购买方名称
//	gmfdz      Order.BuyerAddress              购买方地址, omitted when empty
//	gmfdh      Order.BuyerTel                  购买方电话, omitted when empty
//	kpr        Order.Clerk                     开票人
//	bz         Order.Remark                    备注, omitted when empty
//	hjje       Σ mxlist.je                     合计金额 (tax excluded)
//	hjse       Σ mxlist.se                     合计税额
//	jshj       hjje + hjse                     价税合计
//	mxlist     Order.InvoiceDetail, in order   明细
//
// mxlist lines (schemas.InvoiceLine → JSON):
//
//	xh       position, 1-based                 序号
//	fphxz    InvoiceLineProperty ("" → "0")    发票行性质: 0 normal, 1 discount, 2 discounted (same values)
//	spmc     GoodsName                         商品名称
//	spbm     GoodsCode                         税收分类编码
//	zxbm     SelfCode                          自行编码, omitted when empty
//	ggxh     SpecType                          规格型号, omitted when empty
//	dw       Unit                              单位, omitted when empty
//	spsl     Num                               数量, only when Price is given too
//	dj       Price                             单价, only when Num is given too
//	hsbz     WithTaxFlag "1" → "Y", else "N"   含税标志: whether dj includes tax
//	je       line amount excluding tax         金额 (see below)
//	sl       TaxRate                           税率 (0.13)
//	se       line tax                          税额 (see below)
//	kce      Deduction                         扣除额 of deduction taxation (差额征税), omitted when
//	                                           empty or "0" (schemas.DeductionApplies: seed 001's
//	                                           "0" is no deduction taxation, "0.00" is)
//	yhzcbs   FavouredPolicyFlag                优惠政策标识, omitted when empty
//	zzstsgl  FavouredPolicyName                增值税特殊管理, omitted when empty
//	lslbs    ZeroRateFlag                      零税率标识 (same values), omitted when empty
//
// Amounts are exact decimals (shopspring/decimal, never float64) written
// as JSON numbers: money with exactly 2 decimals ("1000.00"), rates, prices
// and quantities as the shortest exact decimal ("0.13", "565",
// "33.33333333"). A line's je and se are the order's own figures when given:
//
//	taxExcludedAmount and tax         je = taxExcludedAmount, se = tax
//	taxIncludedAmount and tax         je = taxIncludedAmount − tax, se = tax
//	taxExcludedAmount and included    je = taxExcludedAmount, se = taxIncludedAmount − taxExcludedAmount
//	only taxIncludedAmount            se = round((incl − kce) × rate / (1 + rate)), je = incl − se
//	only taxExcludedAmount            je = excl, se = round((excl − kce) × rate)
//	no amount, price and num          the amount price × num is rounded to cents and read as
//	                                  taxIncludedAmount (withTaxFlag 1) or taxExcludedAmount (0),
//	                                  then as above
//
// where kce is 0 on a line not taxed on the difference and round is
// schemas.RoundMoney: to cents, half away from zero, the only rounding of
// the mapping. These are the cases of
// schemas.LineFigures.Effective, which the validator (schemas) derives the
// same amounts with and holds to the tolerances (E9131 per line, 1.27 per
// invoice) before the mapping runs: what is validated is what is sent. The
// mapping leaves LineFigures.Recompute unset: a line that leaves an amount
// out is sent from the amounts it gives, where Nuonuo would compute it from
// price × num (seed 001), and the validator reads it so for a jumdata seller.
// The validator also holds je, se and kce, written as the mapping writes
// them, to 16 characters, a minus sign included: jumdata publishes no
// length, and this project takes the seeds' maximum length of an amount
// field (an assumption, as the format is). An amount of 16 characters
// without decimals ("1000000000000000") goes out with 19.
//
// Dropped, because a fully digital invoice issued through jumdata has no
// place for them: invoiceDate (the tax bureau dates the invoice: kprq),
// buyerAccount and salerAccount (Nuonuo's combined 开户行及账号 has no
// reliable split into the tax bureau's bank and account fields), pushMode,
// buyerPhone and email (jumdata does not deliver invoices), checker and
// payee (not printed on fully digital invoices), clerkId, departmentId,
// extensionNumber, terminalNumber, machineCode, listFlag, listName,
// callBackUrl, surveyAnswerType, vehicleFlag, hiddenBmbbbh, nextInvoiceCode,
// nextInvoiceNum, invoiceNumEnd (Nuonuo's own), salerTaxNum and orderNo
// (equal to the request's, checked by the validator) and each line's
// taxIncludedAmount (it is je + se). Refused as unsupported rather than
// dropped: red orders (invoiceType 2: jumdata reverses with red_confirm),
// specificFactor other than 0 (特定要素 data is not mapped), proxyInvoiceFlag
// 1 and the invoice lines other than bs, b, pc, p.

// InvoiceData is jumdata's invoiceData object for a blue invoice. The JSON
// names are the tax bureau's; the comment at the top of invoicedata.go says
// which request field feeds each.
type InvoiceData struct {
	// OrderNo is our order number (ddh).
	OrderNo string `json:"ddh"`
	// InvoiceKind is the invoice kind (fppzdm): "01" special, "02" ordinary.
	InvoiceKind string `json:"fppzdm"`
	// SellerTaxNum is the seller's tax number (xsfnsrsbh).
	SellerTaxNum string `json:"xsfnsrsbh"`
	// SellerName is the seller's name (xsfmc).
	SellerName string `json:"xsfmc,omitempty"`
	// SellerAddress is the seller's address (xsfdz).
	SellerAddress string `json:"xsfdz,omitempty"`
	// SellerTel is the seller's phone (xsfdh).
	SellerTel string `json:"xsfdh,omitempty"`
	// BuyerTaxNum is the buyer's tax number (gmfnsrsbh).
	BuyerTaxNum string `json:"gmfnsrsbh,omitempty"`
	// BuyerName is the buyer's name (gmfmc).
	BuyerName string `json:"gmfmc"`
	// BuyerAddress is the buyer's address (gmfdz).
	BuyerAddress string `json:"gmfdz,omitempty"`
	// BuyerTel is the buyer's phone (gmfdh).
	BuyerTel string `json:"gmfdh,omitempty"`
	// Drawer is the person issuing the invoice (kpr).
	Drawer string `json:"kpr,omitempty"`
	// Remark is the remark (bz).
	Remark string `json:"bz,omitempty"`
	// Amount is the total excluding tax (hjje).
	Amount json.Number `json:"hjje"`
	// Tax is the total tax (hjse).
	Tax json.Number `json:"hjse"`
	// Total is the total including tax (jshj).
	Total json.Number `json:"jshj"`
	// Lines are the invoice lines (mxlist).
	Lines []InvoiceDataLine `json:"mxlist"`
}

// InvoiceDataLine is one line of InvoiceData (mxlist).
type InvoiceDataLine struct {
	// Index is the 1-based line number (xh).
	Index int `json:"xh"`
	// Property is the line property (fphxz): "0" normal, "1" discount,
	// "2" discounted.
	Property string `json:"fphxz"`
	// GoodsName is the goods name (spmc).
	GoodsName string `json:"spmc"`
	// GoodsCode is the tax classification code (spbm).
	GoodsCode string `json:"spbm"`
	// SelfCode is the seller's own goods code (zxbm).
	SelfCode string `json:"zxbm,omitempty"`
	// SpecType is the specification (ggxh).
	SpecType string `json:"ggxh,omitempty"`
	// Unit is the unit (dw).
	Unit string `json:"dw,omitempty"`
	// Quantity is the quantity (spsl).
	Quantity json.Number `json:"spsl,omitempty"`
	// Price is the unit price (dj), including tax when PriceIncludesTax is "Y".
	Price json.Number `json:"dj,omitempty"`
	// PriceIncludesTax is "Y" or "N" (hsbz).
	PriceIncludesTax string `json:"hsbz"`
	// Amount is the line amount excluding tax (je).
	Amount json.Number `json:"je"`
	// TaxRate is the VAT rate (sl).
	TaxRate json.Number `json:"sl"`
	// Tax is the line tax (se).
	Tax json.Number `json:"se"`
	// Deduction is the deductible amount of margin taxation (kce).
	Deduction json.Number `json:"kce,omitempty"`
	// FavouredPolicyFlag is the preferential policy flag (yhzcbs).
	FavouredPolicyFlag string `json:"yhzcbs,omitempty"`
	// FavouredPolicyName is the special VAT management text (zzstsgl).
	FavouredPolicyName string `json:"zzstsgl,omitempty"`
	// ZeroRateFlag is the zero-rate flag (lslbs).
	ZeroRateFlag string `json:"lslbs,omitempty"`
}

// FieldError says why a request cannot be expressed in jumdata's
// parameters. Err is providers.ErrUnsupported when jumdata cannot do what
// the field asks at all.
type FieldError struct {
	// Field is the request field, as a path (order.invoiceDetail[2].tax).
	Field string
	// Reason says what is wrong with it.
	Reason string
	// Err is providers.ErrUnsupported or nil.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string { return "jumdata: " + e.Field + ": " + e.Reason }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

func unsupportedField(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...), Err: providers.ErrUnsupported}
}

func invalidField(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// given returns &d when ok (the field was given), else nil: the form of
// schemas.LineFigures and schemas.RedLineFigures.
func given(d decimal.Decimal, ok bool) *decimal.Decimal {
	if !ok {
		return nil
	}
	return &d
}

// money writes an amount of money with exactly two decimals.
func money(d decimal.Decimal) json.Number { return json.Number(d.StringFixed(2)) }

// exact writes a rate, price or quantity as its shortest exact decimal.
func exact(d decimal.Decimal) json.Number { return json.Number(d.String()) }

// NewInvoiceData maps an issue request to jumdata's invoiceData. sellerName
// fills xsfmc (empty omits it). The mapping is deterministic: the same
// request always gives the same bytes from Encode, which is what lets a
// repeated blue-invoice/submit count as the same task.
//
// It returns a *FieldError when the request cannot be mapped; the error
// wraps providers.ErrUnsupported when jumdata cannot issue such an invoice.
func NewInvoiceData(req *schemas.Request, sellerName string) (*InvoiceData, error) {
	o := req.Order
	if o == nil {
		return nil, invalidField("order", "is required for kind issue")
	}
	if o.IsRed() {
		return nil, unsupportedField("order.invoiceType", "red orders are not issued through jumdata: reverse a fully digital invoice with kind red_confirm")
	}
	var kind string
	switch o.InvoiceLine {
	case "bs", "b":
		kind = "01"
	case "pc", "p", "":
		kind = "02"
	default:
		return nil, unsupportedField("order.invoiceLine", "%q: jumdata issues fully digital invoices only (bs or b: special; pc, p or empty: ordinary)", o.InvoiceLine)
	}
	if o.SpecificFactor != "" && o.SpecificFactor != "0" {
		return nil, unsupportedField("order.specificFactor", "%q: invoices with specific factors (特定要素) are not mapped to jumdata", o.SpecificFactor)
	}
	if o.ProxyInvoiceFlag == "1" {
		return nil, unsupportedField("order.proxyInvoiceFlag", "proxy invoicing (代开) is not available through jumdata")
	}
	d := &InvoiceData{
		OrderNo:       req.OrderNo,
		InvoiceKind:   kind,
		SellerTaxNum:  req.SellerTaxNum,
		SellerName:    sellerName,
		SellerAddress: o.SalerAddress,
		SellerTel:     o.SalerTel,
		BuyerTaxNum:   strings.ToUpper(strings.TrimSpace(o.BuyerTaxNum)),
		BuyerName:     o.BuyerName,
		BuyerAddress:  o.BuyerAddress,
		BuyerTel:      o.BuyerTel,
		Drawer:        o.Clerk,
		Remark:        o.Remark,
		Lines:         make([]InvoiceDataLine, 0, len(o.InvoiceDetail)),
	}
	if len(o.InvoiceDetail) == 0 {
		return nil, invalidField("order.invoiceDetail", "has no lines")
	}
	var sumJE, sumSE decimal.Decimal
	for i := range o.InvoiceDetail {
		l := &o.InvoiceDetail[i]
		line, je, se, err := mapLine(fmt.Sprintf("order.invoiceDetail[%d]", i), i+1, l)
		if err != nil {
			return nil, err
		}
		d.Lines = append(d.Lines, line)
		sumJE, sumSE = sumJE.Add(je), sumSE.Add(se)
	}
	d.Amount, d.Tax, d.Total = money(sumJE), money(sumSE), money(sumJE.Add(sumSE))
	return d, nil
}

// mapLine maps one order line and returns it with its je and se.
func mapLine(p string, index int, l *schemas.InvoiceLine) (InvoiceDataLine, decimal.Decimal, decimal.Decimal, error) {
	var zero decimal.Decimal
	val := func(field string, a schemas.Amount) (decimal.Decimal, bool, error) {
		if !a.IsSet() {
			return zero, false, nil
		}
		if !a.Valid() {
			return zero, false, invalidField(p+"."+field, "%q is not a plain decimal", a.String())
		}
		return a.Decimal(), true, nil
	}
	rate, hasRate, err := val("taxRate", l.TaxRate)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	if !hasRate {
		return InvoiceDataLine{}, zero, zero, invalidField(p+".taxRate", "is required")
	}
	price, hasPrice, err := val("price", l.Price)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	num, hasNum, err := val("num", l.Num)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	excl, hasExcl, err := val("taxExcludedAmount", l.TaxExcludedAmount)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	incl, hasIncl, err := val("taxIncludedAmount", l.TaxIncludedAmount)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	tax, hasTax, err := val("tax", l.Tax)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	deduction, hasDeduction, err := val("deduction", l.Deduction)
	if err != nil {
		return InvoiceDataLine{}, zero, zero, err
	}
	// je and se are the amounts the validator held to the tax tolerances:
	// both derive them with schemas.LineFigures.Effective.
	fig := schemas.LineFigures{
		Price: given(price, hasPrice), Num: given(num, hasNum),
		Excl: given(excl, hasExcl), Incl: given(incl, hasIncl), Tax: given(tax, hasTax),
		Rate: &rate, WithTaxFlag: l.WithTaxFlag,
	}
	// kce only under deduction taxation: seed 001's "deduction":"0" (like
	// an empty or absent deduction) is none, and "kce":0.00 would be one.
	taxedOnDifference := hasDeduction && schemas.DeductionApplies(l.Deduction)
	if taxedOnDifference {
		fig.Deduction = &deduction
	}
	eff, ok := fig.Effective()
	if !ok {
		return InvoiceDataLine{}, zero, zero, invalidField(p+".taxExcludedAmount", "no amount: give taxExcludedAmount and tax, taxIncludedAmount, or price and num with withTaxFlag 0 or 1")
	}
	je, se := eff.Excl, eff.Tax
	line := InvoiceDataLine{
		Index:              index,
		Property:           l.Property(),
		GoodsName:          l.GoodsName,
		GoodsCode:          l.GoodsCode,
		SelfCode:           l.SelfCode,
		SpecType:           l.SpecType,
		Unit:               l.Unit,
		PriceIncludesTax:   "N",
		Amount:             money(je),
		TaxRate:            exact(rate),
		Tax:                money(se),
		FavouredPolicyFlag: l.FavouredPolicyFlag,
		FavouredPolicyName: l.FavouredPolicyName,
		ZeroRateFlag:       l.ZeroRateFlag,
	}
	if l.WithTaxFlag == "1" {
		line.PriceIncludesTax = "Y"
	}
	if hasPrice && hasNum {
		line.Price, line.Quantity = exact(price), exact(num)
	}
	if taxedOnDifference {
		line.Deduction = money(deduction)
	}
	return line, je, se, nil
}

// Encode returns the invoiceData parameter: the JSON of d. The same d
// always encodes to the same bytes.
func (d *InvoiceData) Encode() (string, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode invoiceData: %w", err)
	}
	return string(b), nil
}

// RedReasonCode maps Nuonuo's red reason (schemas.RedConfirm.RedReason) to
// the tax bureau's chyydm that jumdata takes. The two number the same four
// reasons differently, 1 and 2 swapped:
//
//	Nuonuo  meaning   chyydm
//	1       销货退回   02
//	2       开票有误   01
//	3       服务中止   03
//	4       销售折让   04
//
// ok is false for any other value.
func RedReasonCode(nuonuo string) (chyydm string, ok bool) {
	switch nuonuo {
	case "1":
		return "02", true
	case "2":
		return "01", true
	case "3":
		return "03", true
	case "4":
		return "04", true
	}
	return "", false
}

// RedLine is one line of a partial red invoice (hzmx), mapped from
// schemas.RedConfirmLine:
//
//	xh      BlueDetailIndex (the blue invoice's line number)
//	spmc    GoodsName
//	spbm    GoodsCode
//	ggxh    SpecType, omitted when empty
//	dw      Unit, omitted when empty
//	spsl    Num (negative: a num of 0 or more is refused), only with a price
//	dj      TaxExcludedPrice, only with a quantity
//	je      TaxExcludedAmount (negative); without it round(num × price)
//	sl      TaxRate
//	se      TaxAmount (negative); without it round(je × rate)
//	yhzcbs  FavouredPolicyFlag, omitted when empty
//
// where round is schemas.RoundMoney, as schemas.RedLineFigures.Effective
// derives je and se for the validator's E9131 check.
type RedLine struct {
	// Index is the blue invoice's line number (xh).
	Index int `json:"xh"`
	// GoodsName is the goods name (spmc).
	GoodsName string `json:"spmc"`
	// GoodsCode is the tax classification code (spbm).
	GoodsCode string `json:"spbm"`
	// SpecType is the specification (ggxh).
	SpecType string `json:"ggxh,omitempty"`
	// Unit is the unit (dw).
	Unit string `json:"dw,omitempty"`
	// Quantity is the reversed quantity (spsl), negative.
	Quantity json.Number `json:"spsl,omitempty"`
	// Price is the unit price excluding tax (dj).
	Price json.Number `json:"dj,omitempty"`
	// Amount is the reversed amount excluding tax (je), negative.
	Amount json.Number `json:"je"`
	// TaxRate is the VAT rate (sl).
	TaxRate json.Number `json:"sl"`
	// Tax is the reversed tax (se), negative.
	Tax json.Number `json:"se"`
	// FavouredPolicyFlag is the preferential policy flag (yhzcbs).
	FavouredPolicyFlag string `json:"yhzcbs,omitempty"`
}

// RedLines maps a red confirmation's detail to hzmx lines and returns their
// total je and se. An empty detail is a full reversal: no lines.
func RedLines(detail []schemas.RedConfirmLine) (lines []RedLine, je, se decimal.Decimal, err error) {
	for i := range detail {
		l := &detail[i]
		p := fmt.Sprintf("redConfirm.detail[%d]", i)
		idx, convErr := strconv.Atoi(l.BlueDetailIndex)
		if convErr != nil || idx < 1 {
			return nil, je, se, invalidField(p+".blueDetailIndex", "%q is not a line number", l.BlueDetailIndex)
		}
		get := func(field string, a schemas.Amount) (decimal.Decimal, bool, error) {
			if !a.IsSet() {
				return decimal.Zero, false, nil
			}
			if !a.Valid() {
				return decimal.Zero, false, invalidField(p+"."+field, "%q is not a plain decimal", a.String())
			}
			return a.Decimal(), true, nil
		}
		rate, hasRate, err := get("taxRate", l.TaxRate)
		if err != nil {
			return nil, je, se, err
		}
		if !hasRate {
			return nil, je, se, invalidField(p+".taxRate", "is required")
		}
		num, hasNum, err := get("num", l.Num)
		if err != nil {
			return nil, je, se, err
		}
		price, hasPrice, err := get("taxExcludedPrice", l.TaxExcludedPrice)
		if err != nil {
			return nil, je, se, err
		}
		amt, hasAmt, err := get("taxExcludedAmount", l.TaxExcludedAmount)
		if err != nil {
			return nil, je, se, err
		}
		tax, hasTax, err := get("taxAmount", l.TaxAmount)
		if err != nil {
			return nil, je, se, err
		}
		if hasNum && !num.IsNegative() {
			// A positive num would make a positive je of num × price.
			return nil, je, se, invalidField(p+".num", "is %s, but the quantity reversed must be negative", l.Num)
		}
		// The validator held these amounts to E9131: both derive them with
		// schemas.RedLineFigures.Effective.
		fig := schemas.RedLineFigures{Num: given(num, hasNum), Price: given(price, hasPrice), Excl: given(amt, hasAmt), Tax: given(tax, hasTax), Rate: &rate}
		eff, ok := fig.Effective()
		if !ok {
			return nil, je, se, invalidField(p+".taxExcludedAmount", "is required without num and taxExcludedPrice")
		}
		amt, tax = eff.Excl, eff.Tax
		line := RedLine{
			Index:              idx,
			GoodsName:          l.GoodsName,
			GoodsCode:          l.GoodsCode,
			SpecType:           l.SpecType,
			Unit:               l.Unit,
			Amount:             money(amt),
			TaxRate:            exact(rate),
			Tax:                money(tax),
			FavouredPolicyFlag: l.FavouredPolicyFlag,
		}
		if hasNum && hasPrice {
			line.Quantity, line.Price = exact(num), exact(price)
		}
		lines = append(lines, line)
		je, se = je.Add(amt), se.Add(tax)
	}
	return lines, je, se, nil
}

// EncodeRedLines returns the hzmx parameter: the JSON array of lines, or ""
// (a full reversal) when there are none.
func EncodeRedLines(lines []RedLine) (string, error) {
	if len(lines) == 0 {
		return "", nil
	}
	b, err := json.Marshal(lines)
	if err != nil {
		return "", fmt.Errorf("encode hzmx: %w", err)
	}
	return string(b), nil
}
