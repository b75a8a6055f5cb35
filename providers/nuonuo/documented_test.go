package nuonuo_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// documentedCase is one request that the validator and the Nuonuo sandbox
// must judge alike: both take it, or the validator refuses it naming the
// code the sandbox answers, whose message names the field.
type documentedCase struct {
	name string
	req  func(orderNo string) *schemas.Request
	// want lists the validator's violations as "field|code", in its
	// order; nil when the request is valid.
	want []string
	// code is the sandbox's refusal, "" when it takes the request, and
	// names a word its message must hold (the field).
	code, names string
}

// redOrder reverses a tax-control blue invoice (invoiceLine line) in full
// with a red order of issueRequest's line, changed by mutate.
func redOrder(line string, mutate func(*schemas.Order)) func(string) *schemas.Request {
	return func(orderNo string) *schemas.Request {
		return issueRequest(orderNo, func(o *schemas.Order) {
			o.InvoiceType, o.InvoiceLine = schemas.InvoiceTypeRed, line
			o.InvoiceCode, o.InvoiceNum = "033001900112", "12345679"
			l := &o.InvoiceDetail[0]
			l.Num, l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount("-1"), schemas.ParseAmount("-100.00"), schemas.ParseAmount("-6.00"), schemas.ParseAmount("-106.00")
			if mutate != nil {
				mutate(o)
			}
		})
	}
}

// blueOrder is issueRequest changed by mutate.
func blueOrder(mutate func(*schemas.Order)) func(string) *schemas.Request {
	return func(orderNo string) *schemas.Request { return issueRequest(orderNo, mutate) }
}

// formLines applies for a red confirmation form reversing lines of a fully
// digital blue invoice: each line is -50.00 + -3.00 at 6%, with the blue
// line numbers given, changed by mutate.
func formLines(indexes []string, mutate func([]schemas.RedConfirmLine)) func(string) *schemas.Request {
	return func(orderNo string) *schemas.Request {
		return redConfirmRequest(orderNo, func(rc *schemas.RedConfirm) {
			for _, idx := range indexes {
				rc.Detail = append(rc.Detail, schemas.RedConfirmLine{BlueDetailIndex: idx, GoodsName: "技术服务费", GoodsCode: "3040201010000000000",
					TaxRate: schemas.ParseAmount("0.06"), TaxExcludedAmount: schemas.ParseAmount("-50.00"), TaxAmount: schemas.ParseAmount("-3.00")})
			}
			if mutate != nil {
				mutate(rc.Detail)
			}
		})
	}
}

// checkDocumented decodes each case's request with the validator of a
// Nuonuo seller and sends it to the sandbox all the same (the validator's
// refusal pre-empts the sandbox's), holding both to the case.
func checkDocumented(t *testing.T, prefix string, cases []documentedCase) {
	t.Helper()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{seller: "nuonuo"}})
	if err != nil {
		t.Fatal(err)
	}
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(tc.req(fmt.Sprintf("%s-%d", prefix, i)))
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(body, seller)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range d.Violations {
				got = append(got, x.Field+"|"+x.ProviderCode)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("the validator's violations %v; want %v", d.Violations, tc.want)
			}
			out := c.Submit(t.Context(), &providers.Call{Request: d.Request})
			if tc.code == "" {
				wantClass(t, "Submit", out, providers.Accepted)
				return
			}
			if out.Class != providers.Rejected || out.Code != tc.code || !strings.Contains(out.Message, tc.names) {
				t.Fatalf("the sandbox answered %v %q %q; want a refusal %s naming %s", out.Class, out.Code, out.Message, tc.code, tc.names)
			}
		})
	}
}

// TestValidatorAndSandboxAgreeOnGoods: seed 001 gives a line's goodsName a
// maximum length of 90 and goodsCode one of 19, and PROVIDERS.md says a
// goods code (the tax classification code) has 19 digits; seed 002 gives a
// red confirmation line's goodsName and goodsCode the same maximums, both
// required. Neither seed names a code for a name too long: E4000. A goods
// code the platform cannot use is E9121 (获取商品编码失败, 填写商品编码goodsCode)
// on an order, which the validator names for one of other than 19 digits;
// seed 002 lists no codes, and a form's is E4000. Characters are counted,
// not bytes. Before, the sandbox checked neither and issued what the
// validator refuses.
func TestValidatorAndSandboxAgreeOnGoods(t *testing.T) {
	const line0, form0 = "order.invoiceDetail[0]", "redConfirm.detail[0]"
	name := func(n int) func(*schemas.Order) {
		return func(o *schemas.Order) { o.InvoiceDetail[0].GoodsName = strings.Repeat("货", n) }
	}
	code := func(s string) func(*schemas.Order) {
		return func(o *schemas.Order) { o.InvoiceDetail[0].GoodsCode = s }
	}
	checkDocumented(t, "GOODS", []documentedCase{
		{"a goods name of 90 characters", blueOrder(name(90)), nil, "", ""},
		{"a goods name of 91 characters", blueOrder(name(91)), []string{line0 + ".goodsName|E4000"}, "E4000", "goodsName"},
		{"a goods code of 18 digits", blueOrder(code("304020101000000000")), []string{line0 + ".goodsCode|E9121"}, "E9121", "goodsCode"},
		{"a goods code of 20 digits", blueOrder(code("30402010100000000000")), []string{line0 + ".goodsCode|E9121"}, "E9121", "goodsCode"},
		{"a goods code of 19 characters, not all digits", blueOrder(code("304020101000000000X")), []string{line0 + ".goodsCode|E9121"}, "E9121", "goodsCode"},
		{"a red confirmation line's goods name of 90 characters", formLines([]string{"1"}, func(ls []schemas.RedConfirmLine) { ls[0].GoodsName = strings.Repeat("货", 90) }), nil, "", ""},
		{"a red confirmation line's goods name of 91 characters", formLines([]string{"1"}, func(ls []schemas.RedConfirmLine) { ls[0].GoodsName = strings.Repeat("货", 91) }),
			[]string{form0 + ".goodsName|E4000"}, "E4000", "goodsName"},
		{"a red confirmation line's goods code of 18 digits", formLines([]string{"1"}, func(ls []schemas.RedConfirmLine) { ls[0].GoodsCode = "304020101000000000" }),
			[]string{form0 + ".goodsCode|E4000"}, "E4000", "goodsCode"},
	})
}

// TestValidatorAndSandboxAgreeOnTheBuyersAddressAndTelephone: seed 001
// says of buyerAddress and buyerTel 购方地址+电话总共不超100字符 (the buyer's
// address and telephone together at most 100 characters), with no code of
// its own: E4000, which the validator names on buyerAddress. Before, the
// sandbox did not read either field and issued 101 characters.
func TestValidatorAndSandboxAgreeOnTheBuyersAddressAndTelephone(t *testing.T) {
	buyer := func(address, tel int) func(*schemas.Order) {
		return func(o *schemas.Order) {
			o.BuyerAddress, o.BuyerTel = strings.Repeat("路", address), strings.Repeat("1", tel)
		}
	}
	checkDocumented(t, "BUYER", []documentedCase{
		{"80 and 20 characters", blueOrder(buyer(80, 20)), nil, "", ""},
		{"80 and 21 characters", blueOrder(buyer(80, 21)), []string{"order.buyerAddress|E4000"}, "E4000", "buyerAddress"},
		{"60 and 41 characters", blueOrder(buyer(60, 41)), []string{"order.buyerAddress|E4000"}, "E4000", "buyerTel"},
	})
}

// TestValidatorAndSandboxAgreeOnAFavouredPolicysName: seed 001 says of
// favouredPolicyName 当favouredPolicyFlag为1时，此项必填（全电发票时为空）:
// required when favouredPolicyFlag is 1, and empty on a fully digital
// invoice (Nuonuo's invoiceLine bs, pc, es and ec, whose favouredPolicyFlag
// takes the codes 01 to 18 instead). No code of its own: E4000. Before, the
// sandbox did not read the line's policy fields and issued a tax-control
// invoice without the name, and the validator required the name on a
// fully digital invoice too, which the seed says leaves it empty.
func TestValidatorAndSandboxAgreeOnAFavouredPolicysName(t *testing.T) {
	const line0 = "order.invoiceDetail[0]"
	policy := func(line, name string) func(*schemas.Order) {
		return func(o *schemas.Order) {
			o.InvoiceLine = line
			o.InvoiceDetail[0].FavouredPolicyFlag, o.InvoiceDetail[0].FavouredPolicyName = "1", name
		}
	}
	checkDocumented(t, "POLICY", []documentedCase{
		{"a tax-control invoice with the name", blueOrder(policy("c", "简易征收")), nil, "", ""},
		{"a tax-control invoice without the name", blueOrder(policy("c", "")), []string{line0 + ".favouredPolicyName|E4000"}, "E4000", "favouredPolicyName"},
		{"a fully digital invoice without the name", blueOrder(policy("pc", "")), nil, "", ""},
	})
}

// TestValidatorAndSandboxAgreeOnARedSpecialInvoice: seed 001 says of
// billInfoNo 专票冲红时此项必填，且必须在备注中注明“开具红字增值税专用发票信息表编号
// ZZZZZZZZZZZZZZZZ”字样: reversing a special VAT invoice (invoiceLine s or
// b) needs the red information form number, written out in the remark
// after 开具红字增值税专用发票信息表编号. No code of its own: E4000. Before,
// the sandbox did not read billInfoNo and issued such a red invoice
// without it or without the remark.
func TestValidatorAndSandboxAgreeOnARedSpecialInvoice(t *testing.T) {
	const form = "1403011904008472"
	special := func(billInfoNo, remark string) func(*schemas.Order) {
		return func(o *schemas.Order) { o.BillInfoNo, o.Remark = billInfoNo, remark }
	}
	checkDocumented(t, "REDSPECIAL", []documentedCase{
		{"s with the form in the remark", redOrder("s", special(form, "退货 开具红字增值税专用发票信息表编号"+form)), nil, "", ""},
		{"s without billInfoNo", redOrder("s", nil), []string{"order.billInfoNo|E4000"}, "E4000", "billInfoNo"},
		{"b without the form in the remark", redOrder("b", special(form, "退货")), []string{"order.remark|E4000"}, "E4000", "remark"},
		{"s with another form in the remark", redOrder("s", special(form, "开具红字增值税专用发票信息表编号1403011904008473")), []string{"order.remark|E4000"}, "E4000", "remark"},
		{"a normal invoice c without billInfoNo", redOrder("c", nil), nil, "", ""},
	})
}

// TestValidatorAndSandboxAgreeOnARedConfirmationsLineNumbers: seed 002
// says 部分冲红明细序号必须和原蓝票顺序保持一致 (a partial reversal's lines keep
// the blue invoice's order) and gives blueDetailIndex, 对应蓝票明细行序号 (the
// blue invoice's line number), a maximum length of 5. No code of its own:
// E4000. Before, the sandbox only checked that the index was given, and
// made a form whose lines go back, repeat a line, or name no line number.
func TestValidatorAndSandboxAgreeOnARedConfirmationsLineNumbers(t *testing.T) {
	checkDocumented(t, "REDLINES", []documentedCase{
		{"lines 1 and 3", formLines([]string{"1", "3"}, nil), nil, "", ""},
		{"lines 2 and 1", formLines([]string{"2", "1"}, nil), []string{"redConfirm.detail[1].blueDetailIndex|E4000"}, "E4000", "blueDetailIndex"},
		{"line 1 twice", formLines([]string{"1", "1"}, nil), []string{"redConfirm.detail[1].blueDetailIndex|E4000"}, "E4000", "blueDetailIndex"},
		{"a line number of 6 digits", formLines([]string{"123456"}, nil), []string{"redConfirm.detail[0].blueDetailIndex|E4000"}, "E4000", "blueDetailIndex"},
		{"a line number that is no number", formLines([]string{"a"}, nil), []string{"redConfirm.detail[0].blueDetailIndex|E4000"}, "E4000", "blueDetailIndex"},
	})
}

// TestValidatorAndSandboxAgreeOnQuantitySigns: seed 001 says a red
// invoice's quantity is negative (num: 开具红票时数量为负数; no code of its
// own, E4000) and names the codes of a discount pair's quantities: E9111, a
// blue discount line's is negative, and E9114, a blue discounted line's is
// positive. (E9116 and E9119 name a red pair's, but a red invoice has
// normal lines only, 红票只有正常行.) The sandbox modelled these already;
// this holds the two to them. A blue goods line's quantity being positive,
// and a quantity never zero, are the validator's own inferences, which no
// document states, and are not held here. A quantity of the wrong sign
// also makes price × num disagree with the amount, which the validator
// refuses by its own rule (price_quantity, no code), beside the sign.
func TestValidatorAndSandboxAgreeOnQuantitySigns(t *testing.T) {
	const line0, line1 = "order.invoiceDetail[0]", "order.invoiceDetail[1]"
	pair := func(discountedNum, discountNum string) func(*schemas.Order) {
		return func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.InvoiceLineProperty, l.Num = schemas.LineDiscounted, schemas.ParseAmount(discountedNum)
			o.InvoiceDetail = append(o.InvoiceDetail, schemas.InvoiceLine{GoodsName: l.GoodsName, GoodsCode: l.GoodsCode, WithTaxFlag: "1",
				Price: schemas.ParseAmount("10.60"), Num: schemas.ParseAmount(discountNum), TaxRate: l.TaxRate, InvoiceLineProperty: schemas.LineDiscount,
				TaxExcludedAmount: schemas.ParseAmount("-10.00"), Tax: schemas.ParseAmount("-0.60"), TaxIncludedAmount: schemas.ParseAmount("-10.60")})
		}
	}
	checkDocumented(t, "SIGNS", []documentedCase{
		{"a red line's negative quantity", redOrder("c", nil), nil, "", ""},
		{"a red line's positive quantity", redOrder("c", func(o *schemas.Order) { o.InvoiceDetail[0].Num = schemas.ParseAmount("1") }),
			[]string{line0 + ".num|E4000", line0 + ".taxIncludedAmount|"}, "E4000", "num"},
		{"a blue discount pair", blueOrder(pair("1", "-1")), nil, "", ""},
		{"a blue discount line's positive quantity", blueOrder(pair("1", "1")), []string{line1 + ".num|E9111", line1 + ".taxIncludedAmount|"}, "E9111", "数量"},
		{"a blue discounted line's negative quantity", blueOrder(pair("-1", "-1")), []string{line0 + ".num|E9114", line0 + ".taxIncludedAmount|"}, "E9114", "数量"},
	})
}

// TestValidatorAndSandboxAgreeOnTheOrdersLengths: seed 001 gives each
// field of the order a maximum length (最大长度), which the validator holds
// through the JSON Schema, naming seed 001's code where it gives one
// (E9102 for the blue invoice's code and number, 发票号码或发票代码不正确)
// and E4000, a private parameter whose value is wrong, where it gives
// none. Here every field the sandbox reads whose length no other rule of
// its bounds: one at its maximum both take, and the sandbox issues it; one
// a character over the validator refuses naming the code and the sandbox
// answers it, naming the field. Characters are counted, not bytes (甲 is
// three bytes in UTF-8). favouredPolicyFlag's is the validator's 2, not
// the table's 1: seed 001's own description gives a fully digital
// invoice's flags two digits (01 to 18). A tax number's length is its
// pattern's (15 to 20 letters or digits), which the validator names as a
// format. Before, the sandbox checked none of these lengths and issued
// what the validator refuses (the seller's tax number: E9302, the seller
// another).
func TestValidatorAndSandboxAgreeOnTheOrdersLengths(t *testing.T) {
	const line0 = "order.invoiceDetail[0]"
	text := func(n int) string { return strings.Repeat("甲", n) }
	digits := func(n int) string { return strings.Repeat("1", n) }
	set := func(f func(o *schemas.Order)) func(string) *schemas.Request { return blueOrder(f) }
	var cases []documentedCase
	for _, f := range []struct {
		name  string
		max   int
		value func(int) string
		set   func(o *schemas.Order, v string)
		code  string
		rule  string // the validator's field when it is not order.<name>
	}{
		{"buyerName", 100, text, func(o *schemas.Order, v string) { o.BuyerName = v }, "E4000", ""},
		{"buyerTaxNum", 20, func(n int) string { return "91330106MA2AYNWD8M" + digits(n-18) }, func(o *schemas.Order, v string) { o.BuyerTaxNum = v }, "E4000", ""},
		{"buyerTel", 50, digits, func(o *schemas.Order, v string) { o.BuyerTel = v }, "E4000", ""},
		{"buyerAddress", 80, text, func(o *schemas.Order, v string) { o.BuyerAddress = v }, "E4000", ""},
		{"buyerPhone", 20, digits, func(o *schemas.Order, v string) { o.BuyerPhone = v }, "E4000", ""},
		{"clerk", 20, text, func(o *schemas.Order, v string) { o.Clerk = v }, "E4000", ""},
		{"billInfoNo", 24, digits, func(o *schemas.Order, v string) { o.BillInfoNo = v }, "E4000", ""},
		{"invoiceCode", 12, digits, func(o *schemas.Order, v string) { o.InvoiceCode = v }, "E9102", ""},
		{"invoiceNum", 8, digits, func(o *schemas.Order, v string) { o.InvoiceNum = v }, "E9102", ""},
		{"favouredPolicyName", 50, text, func(o *schemas.Order, v string) { o.InvoiceDetail[0].FavouredPolicyName = v }, "E4000", line0 + ".favouredPolicyName"},
		{"favouredPolicyFlag", 2, func(n int) string { return "0" + digits(n-1) }, func(o *schemas.Order, v string) { o.InvoiceDetail[0].FavouredPolicyFlag = v }, "E4000", line0 + ".favouredPolicyFlag"},
	} {
		field := f.rule
		if field == "" {
			field = "order." + f.name
		}
		at, over := f.value(f.max), f.value(f.max+1)
		cases = append(cases,
			documentedCase{fmt.Sprintf("%s of %d characters", f.name, f.max), set(func(o *schemas.Order) { f.set(o, at) }), nil, "", ""},
			documentedCase{fmt.Sprintf("%s of %d characters", f.name, f.max+1), set(func(o *schemas.Order) { f.set(o, over) }), []string{field + "|" + f.code}, f.code, f.name})
	}
	cases = append(cases,
		// The seller's tax number is the seller's: one of 21 characters is
		// no seller's, and its length is refused before it is compared.
		documentedCase{"salerTaxNum of 21 characters", set(func(o *schemas.Order) { o.SalerTaxNum = seller + digits(21-len(seller)) }), []string{"order.salerTaxNum|E4000"}, "E4000", "salerTaxNum"},
		// pushMode and invoiceLine are enumerations, whose longest values
		// are their maximums: the validator names a value a character
		// too long as none of them.
		documentedCase{"pushMode of 3 characters", set(func(o *schemas.Order) { o.PushMode = "-10" }), []string{"order.pushMode|E4000"}, "E4000", "pushMode"},
		documentedCase{"invoiceLine of 3 characters", set(func(o *schemas.Order) { o.InvoiceLine = "pcc" }), []string{"order.invoiceLine|E4000"}, "E4000", "invoiceLine"},
	)
	checkDocumented(t, "LENGTHS", cases)
}
