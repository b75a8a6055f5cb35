package schemas

import "github.com/shopspring/decimal"

// AmountSource says how a line's effective amount without tax and tax were
// obtained from the figures the request gives (EffectiveAmounts).
type AmountSource int

// The sources of a line's effective amounts, in the order they are tried.
const (
	// AmountsNone: no amount can be obtained (no amount, and no price and
	// num with a valid withTaxFlag).
	AmountsNone AmountSource = iota
	// AmountsGiven: taxExcludedAmount and tax, both given (or the amount
	// without tax filled from price × num, see EffectiveAmounts.FromPriceNum).
	AmountsGiven
	// ExclFromInclAndTax: taxExcludedAmount = taxIncludedAmount − tax.
	ExclFromInclAndTax
	// TaxFromInclAndExcl: tax = taxIncludedAmount − taxExcludedAmount.
	TaxFromInclAndExcl
	// TaxFromRateIncl: taxIncludedAmount only; the provider computes the
	// tax from the rate: tax = round2(taxIncludedAmount × rate / (1 +
	// rate)), taxExcludedAmount = taxIncludedAmount − tax.
	TaxFromRateIncl
	// TaxFromRateExcl: taxExcludedAmount only; the provider computes the
	// tax from the rate: tax = round2(taxExcludedAmount × rate).
	TaxFromRateExcl
)

// LineFigures are an order line's figures as the request gives them; a nil
// field is not given (or unusable).
type LineFigures struct {
	// Price and Num are the line's price and quantity.
	Price, Num *decimal.Decimal
	// Excl, Incl and Tax are taxExcludedAmount, taxIncludedAmount and tax.
	Excl, Incl, Tax *decimal.Decimal
	// Rate is the tax rate.
	Rate *decimal.Decimal
	// WithTaxFlag is the line's withTaxFlag: "1" price × num is the amount
	// with tax, "0" without; any other value derives nothing from them.
	WithTaxFlag string
}

// EffectiveAmounts are the amount without tax and the tax that a provider
// works with for one order line, derived from its figures as seed 001 says
// the provider does and as the jumdata mapping sends them (je and se).
type EffectiveAmounts struct {
	// Excl is the amount without tax.
	Excl decimal.Decimal
	// Tax is the tax.
	Tax decimal.Decimal
	// Source says how Excl and Tax were obtained.
	Source AmountSource
	// FromPriceNum reports that neither taxExcludedAmount nor
	// taxIncludedAmount was given and round2(price × num) stood in for the
	// one withTaxFlag names: taxIncludedAmount (1) or taxExcludedAmount (0).
	FromPriceNum bool
	// Filled is that round2(price × num) when FromPriceNum.
	Filled decimal.Decimal
}

// ComputedFromRate reports whether the provider computes the tax from the
// rate (one amount only): such a tax agrees with the rate by construction
// and is not held to the tax tolerances.
func (e EffectiveAmounts) ComputedFromRate() bool {
	return e.Source == TaxFromRateIncl || e.Source == TaxFromRateExcl
}

// RoundMoney rounds to cents, half away from zero: the only rounding of
// the derived amounts.
func RoundMoney(d decimal.Decimal) decimal.Decimal { return d.Round(moneyPlaces) }

// Effective returns the line's effective amounts, and false when the line
// gives too little to derive them (Source AmountsNone). The cases, in order:
//
//	no taxExcludedAmount nor taxIncludedAmount, price and num: round2(price × num)
//	                                 is taxIncludedAmount (withTaxFlag 1) or
//	                                 taxExcludedAmount (0), then as below
//	taxExcludedAmount and tax        as given
//	taxIncludedAmount and tax        taxExcludedAmount = taxIncludedAmount − tax
//	taxExcludedAmount and incl.      tax = taxIncludedAmount − taxExcludedAmount
//	only taxIncludedAmount           tax = round2(incl × rate / (1 + rate)), excl = incl − tax
//	only taxExcludedAmount           tax = round2(excl × rate)
//
// The last two need the rate.
func (f *LineFigures) Effective() (EffectiveAmounts, bool) {
	var e EffectiveAmounts
	excl, incl := f.Excl, f.Incl
	if excl == nil && incl == nil && f.Price != nil && f.Num != nil && (f.WithTaxFlag == "0" || f.WithTaxFlag == "1") {
		e.FromPriceNum, e.Filled = true, RoundMoney(f.Price.Mul(*f.Num))
		if f.WithTaxFlag == "1" {
			incl = &e.Filled
		} else {
			excl = &e.Filled
		}
	}
	switch {
	case excl != nil && f.Tax != nil:
		e.Excl, e.Tax, e.Source = *excl, *f.Tax, AmountsGiven
	case incl != nil && f.Tax != nil:
		e.Excl, e.Tax, e.Source = incl.Sub(*f.Tax), *f.Tax, ExclFromInclAndTax
	case excl != nil && incl != nil:
		e.Excl, e.Tax, e.Source = *excl, incl.Sub(*excl), TaxFromInclAndExcl
	case incl != nil && f.Rate != nil:
		one := decimal.NewFromInt(1)
		e.Tax = RoundMoney(incl.Mul(*f.Rate).DivRound(one.Add(*f.Rate), 16))
		e.Excl, e.Source = incl.Sub(e.Tax), TaxFromRateIncl
	case excl != nil && f.Rate != nil:
		e.Excl, e.Tax, e.Source = *excl, RoundMoney(excl.Mul(*f.Rate)), TaxFromRateExcl
	default:
		return EffectiveAmounts{}, false
	}
	return e, true
}
