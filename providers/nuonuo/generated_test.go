package nuonuo_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/shopspring/decimal"
)

// TestValidatorAndSandboxAgreeOnGeneratedLines sends 1,500 generated orders
// whose lines a seller computed correctly from price × num to the validator
// (as a Nuonuo seller's) and to the sandbox: prices of up to 8 decimals and
// quantities with decimals, withTaxFlag 0 and 1, every rate (0 with or
// without zeroRateFlag 3), lines that give all, some or none of their three
// amounts, blue and red invoices, discount pairs, a deduction (差额征税) on
// a blue invoice's first line, and invoices of 200 lines whose taxes each
// round. Every order passes with no warning but the sandbox seller's tax
// number check, and the sandbox issues it with the amounts without tax and
// taxes that LineFigures.Effective computes, summed over the lines.
func TestValidatorAndSandboxAgreeOnGeneratedLines(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{seller: "nuonuo"}})
	if err != nil {
		t.Fatal(err)
	}
	// One invoice per order, so that its totals are the lines' sums.
	env := newSandbox(t, sandbox.Config{Nuonuo: sandbox.NuonuoConfig{SplitLimit: decimal.RequireFromString("1000000000")}})
	c := env.mustClient(t, nil)
	rng := rand.New(rand.NewPCG(80, 1))
	rates := []string{"0", "0.01", "0.015", "0.03", "0.05", "0.06", "0.09", "0.13"}
	for i := range 1500 {
		red := rng.IntN(4) == 0
		n := 1 + rng.IntN(4)
		if rng.IntN(15) == 0 {
			n = 200
		}
		lines := generatedLines(rng, rates, red, n)
		orderNo := fmt.Sprintf("GEN-%d", i)
		body, err := json.Marshal(issueRequest(orderNo, func(o *schemas.Order) {
			o.InvoiceDetail = lines
			if red {
				o.InvoiceType, o.InvoiceLine, o.InvoiceCode, o.InvoiceNum = schemas.InvoiceTypeRed, "c", "033002600111", "00000042"
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Decode(body, seller)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Valid() {
			t.Fatalf("%s: %v\n%s", orderNo, d.Violations, body)
		}
		for _, w := range d.Warnings {
			if w.Rule != "tax_number_check" {
				t.Fatalf("%s: warning %s\n%s", orderNo, w, body)
			}
		}
		call := &providers.Call{Request: d.Request}
		out := c.Submit(t.Context(), call)
		wantClass(t, orderNo+" Submit", out, providers.Accepted)
		call.Refs = out.Refs
		got := c.Query(t.Context(), call)
		wantClass(t, orderNo+" Query", got, providers.Issued)
		var excl, tax decimal.Decimal
		for i, l := range d.Request.Order.InvoiceDetail {
			f := lineFigures(l)
			e, ok := f.Effective()
			if !ok {
				t.Fatalf("%s: line %d has no effective amounts", orderNo, i)
			}
			excl, tax = excl.Add(e.Excl), tax.Add(e.Tax)
		}
		if len(got.Invoices) != 1 || !got.Invoices[0].ExTaxAmount.Decimal().Equal(excl) || !got.Invoices[0].TaxAmount.Decimal().Equal(tax) {
			t.Fatalf("%s: issued %+v, the validator computes %s without tax and %s tax\n%s", orderNo, got.Invoices, excl, tax, body)
		}
	}
}

// generatedLines returns about n lines (a discount pair counts two) that a
// seller computed correctly: round2(price × num) is the amount the price
// is quoted in, the tax is computed from it and the rate (on the amount
// less the deduction under deduction taxation), and each of the three
// amounts is then left out or not at random.
func generatedLines(rng *rand.Rand, rates []string, red bool, n int) []schemas.InvoiceLine {
	// random is a positive number of at most places decimals, from 1 to
	// 1 + maxInt.
	random := func(maxInt int64, places int32) decimal.Decimal {
		scale := decimal.New(1, places).IntPart()
		return decimal.New(scale+rng.Int64N(maxInt*scale), -places)
	}
	var lines []schemas.InvoiceLine
	for len(lines) < n {
		rate := decimal.RequireFromString(rates[rng.IntN(len(rates))])
		flag := []string{"0", "1"}[rng.IntN(2)]
		price, num := random(999, int32(rng.IntN(9))), random(19, int32(rng.IntN(4)))
		if red {
			num = num.Neg()
		}
		line := func(num decimal.Decimal, ded *decimal.Decimal) schemas.InvoiceLine {
			amount := price.Mul(num).Round(2)
			var d decimal.Decimal
			if ded != nil {
				d = *ded
			}
			var incl, excl, tax decimal.Decimal
			switch {
			case flag == "0":
				excl = amount
				tax = excl.Sub(d).Mul(rate).Round(2)
				incl = excl.Add(tax)
			case ded != nil || rng.IntN(2) == 0:
				incl = amount
				tax = incl.Sub(d).Mul(rate).Div(rate.Add(decimal.NewFromInt(1))).Round(2)
				excl = incl.Sub(tax)
			default: // the demo's way: the amount without tax rounded first
				incl = amount
				excl = incl.Div(rate.Add(decimal.NewFromInt(1))).Round(2)
				tax = incl.Sub(excl)
			}
			l := schemas.InvoiceLine{GoodsName: "货物", GoodsCode: "1050201990000000000", WithTaxFlag: flag,
				Price: schemas.ParseAmount(price.String()), Num: schemas.ParseAmount(num.String()), TaxRate: schemas.ParseAmount(rate.String())}
			if rate.IsZero() && rng.IntN(2) == 0 {
				l.ZeroRateFlag = "3"
			}
			if ded != nil {
				l.Deduction = schemas.AmountOf(*ded, 2)
			}
			if rng.IntN(2) == 0 {
				l.TaxIncludedAmount = schemas.AmountOf(incl, 2)
			}
			if rng.IntN(2) == 0 {
				l.TaxExcludedAmount = schemas.AmountOf(excl, 2)
			}
			if rng.IntN(2) == 0 {
				l.Tax = schemas.AmountOf(tax, 2)
			}
			return l
		}
		switch {
		case !red && len(lines) == 0 && rng.IntN(6) == 0:
			// Deduction taxation on the first line, 1% to 100% of its
			// amount (not 0.00, which a fully digital invoice does not
			// take).
			ded := price.Mul(num).Round(2).Mul(decimal.New(int64(1+rng.IntN(100)), -2)).Round(2)
			lines = append(lines, line(num, &ded))
		case !red && len(lines)+2 <= n && rng.IntN(4) == 0:
			// A discount pair: 1% to 99% of the quantity off.
			base := line(num, nil)
			base.InvoiceLineProperty = schemas.LineDiscounted
			disc := line(num.Mul(decimal.New(int64(1+rng.IntN(99)), -2)).Round(8).Neg(), nil)
			disc.InvoiceLineProperty = schemas.LineDiscount
			lines = append(lines, base, disc)
		default:
			lines = append(lines, line(num, nil))
		}
	}
	return lines
}

// lineFigures are a line's figures as the validator reads them for a
// Nuonuo seller.
func lineFigures(l schemas.InvoiceLine) schemas.LineFigures {
	dec := func(a schemas.Amount) *decimal.Decimal {
		if !a.IsSet() {
			return nil
		}
		d := a.Decimal()
		return &d
	}
	f := schemas.LineFigures{Price: dec(l.Price), Num: dec(l.Num), Excl: dec(l.TaxExcludedAmount), Incl: dec(l.TaxIncludedAmount),
		Tax: dec(l.Tax), Rate: dec(l.TaxRate), WithTaxFlag: l.WithTaxFlag, Recompute: true}
	if schemas.DeductionApplies(l.Deduction) {
		f.Deduction = dec(l.Deduction)
	}
	return f
}
