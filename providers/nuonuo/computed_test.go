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

// TestValidatorAndSandboxComputeALineThatLeavesAnAmountOut: seed 001 says
// of taxExcludedAmount, tax and taxIncludedAmount "任何一个不传时，会根据传入
// 的单价，数量进行计算": Nuonuo computes a line that leaves any of them out from
// price × num and the rate, and issues those amounts. The validator and the
// sandbox read the seed each on its own. An order the validator refuses with
// a provider's code the sandbox refuses with that code. An amount the line
// gives that is set aside is refused by the validator's own rule
// (computed_amount, no provider code) when it differs from the computed one
// by more than 0.06, and is a warning when it differs at all; one given
// with the wrong sign is refused by the validator's own rule too (sign, no
// provider code: the request's sign convention is one for every provider):
// the sandbox issues such an order, and issues the figure the validator
// names.
func TestValidatorAndSandboxComputeALineThatLeavesAnAmountOut(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// parts are 300 lines of 0.50 without tax at 9% whose taxes are given
	// as 0.05 and 0.04 in turn, and their amounts with tax when withIncl:
	// left out, the platform computes 0.05 a line, 1.50 over Σ amount ×
	// rate, beyond the invoice's 1.27.
	parts := func(withIncl bool) func(o *schemas.Order) {
		return func(o *schemas.Order) {
			o.InvoiceDetail = make([]schemas.InvoiceLine, 300)
			for i := range o.InvoiceDetail {
				l := schemas.InvoiceLine{GoodsName: "配件", GoodsCode: "1050201990000000000", WithTaxFlag: "0",
					Price: schemas.ParseAmount("0.5"), Num: schemas.ParseAmount("1"), TaxRate: schemas.ParseAmount("0.09"),
					TaxExcludedAmount: schemas.ParseAmount("0.50"), Tax: schemas.ParseAmount([]string{"0.05", "0.04"}[i%2])}
				if withIncl {
					l.TaxIncludedAmount = schemas.ParseAmount([]string{"0.55", "0.54"}[i%2])
				}
				o.InvoiceDetail[i] = l
			}
		}
	}
	// split gives the line's amount without tax and tax, and leaves its
	// amount with tax out.
	split := func(excl, tax string) func(o *schemas.Order) {
		return func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount(excl), schemas.ParseAmount(tax), schemas.Amount{}
		}
	}
	const line0, line1 = "order.invoiceDetail[0]", "order.invoiceDetail[1]"
	var oddTaxes []string
	for i := 1; i < 300; i += 2 {
		oddTaxes = append(oddTaxes, fmt.Sprintf("order.invoiceDetail[%d].tax", i))
	}
	slices.Sort(oddTaxes)
	cases := []struct {
		name    string
		mutate  func(o *schemas.Order)
		code    string    // the sandbox's refusal, which the validator names; "" when it issues
		refused []string  // "field|rule" the validator refuses by its own rules (no provider code)
		warned  []string  // fields it warns of (computed_amount), sorted
		issued  [3]string // exTax, tax, total issued
	}{
		// 106.00 with tax at 6% is 100.00 + 6.00, whatever the line says
		// of its split: the order system asked for other figures.
		{"amounts given split otherwise than the rate", split("101.00", "5.00"), "",
			[]string{line0 + ".tax|computed_amount", line0 + ".taxExcludedAmount|computed_amount"}, nil, [3]string{"100.00", "6.00", "106.00"}},
		{"amounts given 0.04 off", split("100.04", "5.96"), "",
			nil, []string{line0 + ".tax", line0 + ".taxExcludedAmount"}, [3]string{"100.00", "6.00", "106.00"}},
		{"amounts given as computed", split("100.00", "6.00"), "", nil, nil, [3]string{"100.00", "6.00", "106.00"}},
		// Amounts that disagree with price × num (106 × 2 = 212.00 with
		// tax) are set aside as any others: Nuonuo issues 200.00 +
		// 12.00, not refusing.
		{"amounts given far from price × num", func(o *schemas.Order) {
			split("100.00", "6.00")(o)
			o.InvoiceDetail[0].Num = schemas.ParseAmount("2")
		}, "", []string{line0 + ".tax|computed_amount", line0 + ".taxExcludedAmount|computed_amount"}, nil, [3]string{"200.00", "12.00", "212.00"}},
		// A line that gives all three amounts is issued as given, whatever
		// price × num says (212.00 with tax): no document gives a code
		// for the mismatch, and the validator refuses it by its own rule.
		{"all three amounts given far from price × num", func(o *schemas.Order) {
			o.InvoiceDetail[0].Num = schemas.ParseAmount("2")
		}, "", []string{line0 + ".taxIncludedAmount|price_quantity"}, nil, [3]string{"100.00", "6.00", "106.00"}},
		// Seed 001 gives a deduction of "0" (none) and "0.00" (deduction
		// taxation, nothing deducted); "0.0" says neither for sure, and no
		// document says Nuonuo refuses it: on its own, on a tax-control
		// invoice, the sandbox issues it, and the validator refuses it by
		// its own rule.
		{"a zero deduction written 0.0", func(o *schemas.Order) {
			o.InvoiceLine = "p"
			o.InvoiceDetail[0].Deduction = schemas.ParseAmount("0.0")
		}, "", []string{line0 + ".deduction|deduction_zero"}, nil, [3]string{"100.00", "6.00", "106.00"}},
		// But only "0", empty or absent is no deduction taxation (当传0、空
		// 或字段不传时，都表示非差额征税): "0.0" is deduction taxation with
		// nothing deducted, as "0.00" is, and held to seed 001's limits
		// of it, E4000: one line of an invoice (目前只支持填写一项), and
		// none of 0.00 on a fully digital one (全电发票暂不支持).
		{"a zero deduction written 0.0 on a second line taxed on the difference", func(o *schemas.Order) {
			o.InvoiceLine = "p"
			second := o.InvoiceDetail[0]
			second.Deduction = schemas.ParseAmount("0.0")
			l := &o.InvoiceDetail[0]
			// (106.00 − 10.00) × 0.06 / 1.06 = 5.43
			l.Deduction, l.Tax, l.TaxExcludedAmount = schemas.ParseAmount("10.00"), schemas.ParseAmount("5.43"), schemas.ParseAmount("100.57")
			o.InvoiceDetail = append(o.InvoiceDetail, second)
		}, "E4000", []string{line1 + ".deduction|deduction_zero"}, nil, [3]string{}},
		{"a zero deduction written 0.0 on a fully digital invoice", func(o *schemas.Order) {
			o.InvoiceDetail[0].Deduction = schemas.ParseAmount("0.0")
		}, "E4000", []string{line0 + ".deduction|deduction_zero"}, nil, [3]string{}},
		// The adapter sends a rate as its shortest decimal (0.060000000
		// as 0.06), which Nuonuo takes: a rate written longer than seed
		// 001's 10 characters is refused by the validator's own rule, not
		// as an E4000 that no Nuonuo call would answer.
		{"a rate of 11 characters, sent as its shortest decimal", func(o *schemas.Order) {
			o.InvoiceDetail[0].TaxRate = schemas.ParseAmount("0.060000000")
		}, "", []string{line0 + ".taxRate|max_length"}, nil, [3]string{"100.00", "6.00", "106.00"}},
		// A discount line's quantity is negative (E9111): a positive one
		// makes the amount Nuonuo computes from price × num positive too,
		// which follows from it, and the code named is the quantity's.
		{"a discount line's positive quantity, computed from price × num", func(o *schemas.Order) {
			o.InvoiceDetail[0].InvoiceLineProperty = schemas.LineDiscounted
			o.InvoiceDetail = append(o.InvoiceDetail, schemas.InvoiceLine{GoodsName: "技术服务费", GoodsCode: "3040201010000000000", WithTaxFlag: "1",
				Price: schemas.ParseAmount("106"), Num: schemas.ParseAmount("0.5"), TaxRate: schemas.ParseAmount("0.06"), InvoiceLineProperty: schemas.LineDiscount})
		}, "E9111", nil, nil, [3]string{}},
		// A blue goods line's quantity is positive (E9114 on a discounted
		// line), whatever the amounts it gives, set aside.
		{"a discounted line's negative quantity, computed from price × num", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.InvoiceLineProperty, l.Num, l.TaxIncludedAmount = schemas.LineDiscounted, schemas.ParseAmount("-1"), schemas.Amount{}
			o.InvoiceDetail = append(o.InvoiceDetail, schemas.InvoiceLine{GoodsName: "技术服务费", GoodsCode: "3040201010000000000", WithTaxFlag: "1",
				Price: schemas.ParseAmount("106"), Num: schemas.ParseAmount("-0.5"), TaxRate: schemas.ParseAmount("0.06"), InvoiceLineProperty: schemas.LineDiscount})
		}, "E9114", nil, nil, [3]string{}},
		// A negative amount without tax given beside price × num (106.00
		// with tax): Nuonuo sets it aside and issues 100.00.
		{"a negative amount given, set aside", split("-100.00", "6.00"), "",
			[]string{line0 + ".taxExcludedAmount|sign"}, nil, [3]string{"100.00", "6.00", "106.00"}},
		{"amount with tax given 0.03 from price × num", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.Amount{}, schemas.Amount{}, schemas.ParseAmount("106.03")
		}, "", nil, []string{line0 + ".taxIncludedAmount"}, [3]string{"100.00", "6.00", "106.00"}},
		// 2.1 × 12.08 = 25.368 with tax at 9%: 23.28 + 2.09, the amount
		// without tax the line gives alone, though 23.28 and the tax the
		// rate makes of it, 2.10, say 25.38.
		{"amount without tax alone, priced with tax", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.Price, l.Num, l.TaxRate = schemas.ParseAmount("2.1"), schemas.ParseAmount("12.08"), schemas.ParseAmount("0.09")
			l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount("23.28"), schemas.Amount{}, schemas.Amount{}
		}, "", nil, nil, [3]string{"23.28", "2.09", "25.37"}},
		// A price × num that rounds to 0.00 is no amount: Nuonuo refuses
		// the line it computes from it (E4000, no code of its own).
		{"a price × num rounding to 0.00", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.Price, l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount("0.004"), schemas.Amount{}, schemas.Amount{}, schemas.Amount{}
		}, "E4000", nil, nil, [3]string{}},
		// A negative deduction would add to the amount taxed: refused
		// (E4000, seed 001's code for a value that is wrong), though the
		// tax the platform would compute from it agrees with the rate.
		{"a negative deduction", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.TaxExcludedAmount, l.Tax, l.Deduction = schemas.Amount{}, schemas.Amount{}, schemas.ParseAmount("-50.00")
		}, "E4000", nil, nil, [3]string{}},
		// The lines whose tax is given as 0.04 are warned of: Nuonuo
		// computes 0.05.
		{"taxes computed over the invoice's tolerance", parts(false), "E9131", nil, oddTaxes, [3]string{}},
		{"the same lines with all their amounts", parts(true), "", nil, nil, [3]string{"150.00", "13.50", "163.50"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			c := env.mustClient(t, nil)
			body, err := json.Marshal(issueRequest("COMPUTED-1", tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(body, seller)
			if err != nil {
				t.Fatal(err)
			}
			var codes, refused, warned []string
			for _, x := range d.Violations {
				if x.ProviderCode == "" {
					refused = append(refused, x.Field+"|"+x.Rule)
					continue
				}
				codes = append(codes, x.ProviderCode)
			}
			for _, w := range d.Warnings {
				if w.Rule == "computed_amount" {
					warned = append(warned, w.Field)
				}
			}
			if tc.code == "" && len(codes) != 0 || tc.code != "" && !slices.Contains(codes, tc.code) {
				t.Fatalf("the validator's violations %v; the sandbox's answer is %q (\"\": issued)", d.Violations, tc.code)
			}
			slices.Sort(refused)
			slices.Sort(warned)
			slices.Sort(tc.refused)
			if !slices.Equal(refused, tc.refused) || !slices.Equal(warned, tc.warned) {
				t.Fatalf("refused by the validator's own rules %v, warned %v; want %v and %v\n%v\n%v", refused, warned, tc.refused, tc.warned, d.Violations, d.Warnings)
			}
			// What the validator's own rule refuses Nuonuo would issue:
			// send it all the same.
			call := &providers.Call{Request: d.Request}
			out := c.Submit(t.Context(), call)
			if tc.code != "" {
				if out.Class != providers.Rejected || out.Code != tc.code {
					t.Fatalf("the sandbox answered %v %q %q, want a refusal %s", out.Class, out.Code, out.Message, tc.code)
				}
				return
			}
			wantClass(t, "Submit", out, providers.Accepted)
			call.Refs = out.Refs
			got := c.Query(t.Context(), call)
			wantClass(t, "Query", got, providers.Issued)
			if len(got.Invoices) != 1 {
				t.Fatalf("invoices %+v, want 1", got.Invoices)
			}
			inv := got.Invoices[0]
			if a := [3]string{inv.ExTaxAmount.String(), inv.TaxAmount.String(), inv.TotalAmount.String()}; a != tc.issued {
				t.Errorf("issued %v, want %v", a, tc.issued)
			}
			// Each finding names the figure the sandbox issued (one line:
			// the invoice's totals are the line's).
			figure := map[string]string{"taxExcludedAmount": inv.ExTaxAmount.String(), "tax": inv.TaxAmount.String(), "taxIncludedAmount": inv.TotalAmount.String()}
			for _, x := range append(slices.Clone(d.Violations), d.Warnings...) {
				name := x.Field[strings.LastIndexByte(x.Field, '.')+1:]
				want := "Nuonuo will issue " + figure[name]
				switch {
				case x.Rule == "sign" && x.ProviderCode == "":
					want = "and issue " + figure[name] + ","
				case x.Rule != "computed_amount":
					continue
				}
				if !strings.Contains(x.Message, want) {
					t.Errorf("%s: %q does not say %q", x.Field, x.Message, want)
				}
			}
		})
	}
}

// TestValidatorAndSandboxDeriveARedConfirmationLine: seed 002 marks a red
// confirmation line's taxExcludedAmount and taxAmount optional (N). A line
// that leaves the tax out, or both amounts but for num and
// taxExcludedPrice, passes the validator and the sandbox makes the form
// and issues its red invoice with the amounts the validator derives
// (RedLineFigures.Effective); a line that gives no amount at all the
// validator refuses with the code the sandbox answers.
func TestValidatorAndSandboxDeriveARedConfirmationLine(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{seller: "nuonuo"}})
	if err != nil {
		t.Fatal(err)
	}
	line := func(num, price, excl, tax string) schemas.RedConfirmLine {
		return schemas.RedConfirmLine{BlueDetailIndex: "1", GoodsName: "技术服务费", GoodsCode: "3040201010000000000", TaxRate: schemas.ParseAmount("0.06"),
			Num: schemas.ParseAmount(num), TaxExcludedPrice: schemas.ParseAmount(price), TaxExcludedAmount: schemas.ParseAmount(excl), TaxAmount: schemas.ParseAmount(tax)}
	}
	cases := []struct {
		name   string
		line   schemas.RedConfirmLine
		code   string    // the validator's and the sandbox's refusal; "" when issued
		issued [2]string // the red invoice's amount without tax and tax
	}{
		{"both amounts", line("", "", "-50.00", "-3.00"), "", [2]string{"-50.00", "-3.00"}},
		{"the amount without tax alone", line("", "", "-50.05", ""), "", [2]string{"-50.05", "-3.00"}},
		{"num and taxExcludedPrice alone", line("-3", "16.66666667", "", ""), "", [2]string{"-50.00", "-3.00"}},
		{"num, taxExcludedPrice and the tax", line("-3", "16.66666667", "", "-3.01"), "", [2]string{"-50.00", "-3.01"}},
		{"no amount", line("", "", "", "-3.00"), "E4000", [2]string{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{RedConfirmSteps: 1}})
			c := env.mustClient(t, nil)
			orderNo := fmt.Sprintf("RCD-%d", i)
			body, err := json.Marshal(redConfirmRequest(orderNo, func(rc *schemas.RedConfirm) { rc.Detail = []schemas.RedConfirmLine{tc.line} }))
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(body, seller)
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, x := range d.Violations {
				codes = append(codes, x.ProviderCode)
			}
			if tc.code == "" && len(d.Violations) != 0 || tc.code != "" && !slices.Contains(codes, tc.code) {
				t.Fatalf("the validator's violations %v; the sandbox's answer is %q (\"\": issued)", d.Violations, tc.code)
			}
			call := &providers.Call{Request: d.Request}
			out := c.Submit(t.Context(), call)
			if tc.code != "" {
				if out.Class != providers.Rejected || out.Code != tc.code {
					t.Fatalf("the sandbox answered %v %q %q, want a refusal %s", out.Class, out.Code, out.Message, tc.code)
				}
				return
			}
			wantClass(t, "Submit", out, providers.Accepted)
			call.Refs = out.Refs
			for range 5 {
				if out = c.Query(t.Context(), call); out.Class != providers.Accepted {
					break
				}
			}
			wantClass(t, "Query", out, providers.Issued)
			red := c.Query(t.Context(), &providers.Call{Request: issueRequest(orderNo, nil)})
			if len(red.Invoices) != 1 {
				t.Fatalf("the red invoice of %s: %+v", orderNo, red)
			}
			if got := [2]string{red.Invoices[0].ExTaxAmount.String(), red.Invoices[0].TaxAmount.String()}; got != tc.issued {
				t.Errorf("issued %v, want %v", got, tc.issued)
			}
		})
	}
}
