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
	// TaxFromRateIncl: taxIncludedAmount only (or round2(price × num) for
	// it, as on a recomputed line); the provider computes the tax from the
	// rate: tax = round2((taxIncludedAmount − deduction) × rate / (1 +
	// rate)), taxExcludedAmount = taxIncludedAmount − tax.
	TaxFromRateIncl
	// TaxFromRateExcl: taxExcludedAmount only (or round2(price × num) for
	// it); the provider computes the tax from the rate: tax =
	// round2((taxExcludedAmount − deduction) × rate).
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
	// Deduction is the deduction of deduction taxation (差额征税), nil when
	// the line is not taxed on the difference (DeductionApplies).
	Deduction *decimal.Decimal
	// WithTaxFlag is the line's withTaxFlag: "1" price × num is the amount
	// with tax, "0" without; any other value derives nothing from them.
	WithTaxFlag string
	// Recompute makes a line that leaves any of its three amounts out
	// (taxExcludedAmount, tax, taxIncludedAmount) and gives price and num
	// with a valid WithTaxFlag be computed from price × num and the rate
	// alone, the amounts it gives set aside, as Nuonuo computes it (seed
	// 001: 不含税金额、税额、含税金额任何一个不传时，会根据传入的单价，数量进行计算).
	// Without it (the jumdata mapping) price × num stands in only for the
	// two amounts when the line gives neither, and the amounts given are
	// used.
	Recompute bool
}

// EffectiveAmounts are the amount without tax and the tax that a provider
// works with for one order line, derived from its figures as seed 001 says
// Nuonuo does (LineFigures.Recompute) and as the jumdata mapping sends them
// (je and se).
type EffectiveAmounts struct {
	// Excl is the amount without tax.
	Excl decimal.Decimal
	// Tax is the tax.
	Tax decimal.Decimal
	// Source says how Excl and Tax were obtained.
	Source AmountSource
	// FromPriceNum reports that neither taxExcludedAmount nor
	// taxIncludedAmount was given (or used: Recomputed) and round2(price ×
	// num) stood in for the one withTaxFlag names: taxIncludedAmount (1) or
	// taxExcludedAmount (0).
	FromPriceNum bool
	// Filled is that round2(price × num) when FromPriceNum.
	Filled decimal.Decimal
	// Recomputed reports that the line was computed from price × num and
	// the rate alone (LineFigures.Recompute): FromPriceNum is set, the tax
	// comes from the rate, and any amount the line gives was set aside.
	Recomputed bool
}

// ComputedFromRate reports whether the provider computes the tax from the
// rate (one amount only): such a tax agrees with the rate by construction,
// to within half a cent, and is not held to the per-line tolerance; its
// rounding still counts in the per-invoice one, where it adds up.
func (e EffectiveAmounts) ComputedFromRate() bool {
	return e.Source == TaxFromRateIncl || e.Source == TaxFromRateExcl
}

// RoundMoney rounds to cents, half away from zero: the only rounding of
// the derived amounts.
func RoundMoney(d decimal.Decimal) decimal.Decimal { return d.Round(moneyPlaces) }

// DeductionApplies reports whether a line's deduction field asks for
// deduction taxation (差额征税). Seed 001: "当传0、空或字段不传时，都表示非差额
// 征税；传0.00才表示差额征税": the text "0", an empty or absent field is no
// deduction taxation; any other value ("0.00", "500.00") is.
func DeductionApplies(deduction Amount) bool {
	return deduction.IsSet() && deduction.String() != "0"
}

// ExpectedTax is the tax the rate asks of the amount without tax excl:
// excl × rate, or (excl − deduction) × rate under deduction taxation
// (deduction not nil), which is (incl − deduction) × rate / (1 + rate). It
// is what E9131 compares a line's tax with.
func ExpectedTax(excl, rate decimal.Decimal, deduction *decimal.Decimal) decimal.Decimal {
	if deduction != nil {
		excl = excl.Sub(*deduction)
	}
	return excl.Mul(rate)
}

// Effective returns the line's effective amounts, and false when the line
// gives too little to derive them (Source AmountsNone). The cases, in order:
//
//	Recompute, price and num, an amount left out: the amounts given are set
//	                                 aside (Recomputed), then as below
//	no taxExcludedAmount nor taxIncludedAmount, price and num: round2(price × num)
//	                                 is taxIncludedAmount (withTaxFlag 1) or
//	                                 taxExcludedAmount (0), then as below
//	taxExcludedAmount and tax        as given
//	taxIncludedAmount and tax        taxExcludedAmount = taxIncludedAmount − tax
//	taxExcludedAmount and incl.      tax = taxIncludedAmount − taxExcludedAmount
//	only taxIncludedAmount           tax = round2((incl − deduction) × rate / (1 + rate)), excl = incl − tax
//	only taxExcludedAmount           tax = round2((excl − deduction) × rate)
//
// The last two need the rate; the deduction is 0 without deduction taxation.
// A recomputed line is one of them: price × num is its amount with tax
// (withTaxFlag 1) or without (0), and its tax comes from the rate.
func (f *LineFigures) Effective() (EffectiveAmounts, bool) {
	var e EffectiveAmounts
	excl, incl, tax := f.Excl, f.Incl, f.Tax
	priced := f.Price != nil && f.Num != nil && (f.WithTaxFlag == "0" || f.WithTaxFlag == "1")
	if f.Recompute && priced && (excl == nil || incl == nil || tax == nil) {
		e.Recomputed = true
		excl, incl, tax = nil, nil, nil
	}
	if excl == nil && incl == nil && priced {
		e.FromPriceNum, e.Filled = true, RoundMoney(f.Price.Mul(*f.Num))
		if f.WithTaxFlag == "1" {
			incl = &e.Filled
		} else {
			excl = &e.Filled
		}
	}
	var ded decimal.Decimal
	if f.Deduction != nil {
		ded = *f.Deduction
	}
	switch {
	case excl != nil && tax != nil:
		e.Excl, e.Tax, e.Source = *excl, *tax, AmountsGiven
	case incl != nil && tax != nil:
		e.Excl, e.Tax, e.Source = incl.Sub(*tax), *tax, ExclFromInclAndTax
	case excl != nil && incl != nil:
		e.Excl, e.Tax, e.Source = *excl, incl.Sub(*excl), TaxFromInclAndExcl
	case incl != nil && f.Rate != nil:
		one := decimal.NewFromInt(1)
		e.Tax = RoundMoney(incl.Sub(ded).Mul(*f.Rate).DivRound(one.Add(*f.Rate), 16))
		e.Excl, e.Source = incl.Sub(e.Tax), TaxFromRateIncl
	case excl != nil && f.Rate != nil:
		e.Excl, e.Tax, e.Source = *excl, RoundMoney(excl.Sub(ded).Mul(*f.Rate)), TaxFromRateExcl
	default:
		return EffectiveAmounts{}, false
	}
	return e, true
}

// RedLineFigures are a red confirmation line's figures as the request gives
// them (seed 002: num negative, taxExcludedPrice positive, the amounts
// negative); a nil field is not given (or unusable).
type RedLineFigures struct {
	// Num and Price are num and taxExcludedPrice.
	Num, Price *decimal.Decimal
	// Excl and Tax are taxExcludedAmount and taxAmount.
	Excl, Tax *decimal.Decimal
	// Rate is the tax rate.
	Rate *decimal.Decimal
}

// Effective returns the line's amount without tax and tax as the jumdata
// mapping sends them (hzmx je and se), and false when the line gives too
// little: taxExcludedAmount, or round2(num × taxExcludedPrice) without it
// (FromPriceNum); taxAmount (Source AmountsGiven), or round2(amount × rate)
// without it (TaxFromRateExcl).
func (f *RedLineFigures) Effective() (EffectiveAmounts, bool) {
	var e EffectiveAmounts
	excl := f.Excl
	if excl == nil && f.Num != nil && f.Price != nil {
		e.FromPriceNum, e.Filled = true, RoundMoney(f.Num.Mul(*f.Price))
		excl = &e.Filled
	}
	switch {
	case excl == nil:
		return EffectiveAmounts{}, false
	case f.Tax != nil:
		e.Excl, e.Tax, e.Source = *excl, *f.Tax, AmountsGiven
	case f.Rate != nil:
		e.Excl, e.Tax, e.Source = *excl, RoundMoney(excl.Mul(*f.Rate)), TaxFromRateExcl
	default:
		return EffectiveAmounts{}, false
	}
	return e, true
}
