package schemas_test

import (
	"testing"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestLineFiguresRecompute: with Recompute (Nuonuo, seed 001) a line that
// leaves any of its three amounts out is computed from price × num and the
// rate, the amounts it gives set aside; without it (the jumdata mapping)
// the amounts given are used. A line that gives all three, or no price
// and num, is read the same way either way.
func TestLineFiguresRecompute(t *testing.T) {
	d := func(s string) *decimal.Decimal {
		if s == "" {
			return nil
		}
		v := decimal.RequireFromString(s)
		return &v
	}
	tests := []struct {
		name                        string
		price, num, excl, tax, incl string
		recompute                   bool
		wantExcl, wantTax           string
		recomputed                  bool
	}{
		{"two amounts, recomputed", "113", "1", "103.00", "10.00", "", true, "100.00", "13.00", true},
		{"two amounts, used", "113", "1", "103.00", "10.00", "", false, "103.00", "10.00", false},
		{"the tax only, recomputed", "113", "1", "", "13.10", "", true, "100.00", "13.00", true},
		{"the tax only, used beside price × num", "113", "1", "", "13.10", "", false, "99.90", "13.10", false},
		{"all three amounts", "113", "1", "103.00", "10.00", "113.00", true, "103.00", "10.00", false},
		{"no price", "", "", "103.00", "10.00", "", true, "103.00", "10.00", false},
		{"price and num only", "113", "1", "", "", "", true, "100.00", "13.00", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := schemas.LineFigures{Price: d(tt.price), Num: d(tt.num), Excl: d(tt.excl), Tax: d(tt.tax), Incl: d(tt.incl),
				Rate: d("0.13"), WithTaxFlag: "1", Recompute: tt.recompute}
			e, ok := f.Effective()
			if !ok || e.Excl.StringFixed(2) != tt.wantExcl || e.Tax.StringFixed(2) != tt.wantTax || e.Recomputed != tt.recomputed {
				t.Fatalf("got %s + %s, recomputed %v (ok %v); want %s + %s, recomputed %v",
					e.Excl.StringFixed(2), e.Tax.StringFixed(2), e.Recomputed, ok, tt.wantExcl, tt.wantTax, tt.recomputed)
			}
			if e.Recomputed && (!e.FromPriceNum || !e.ComputedFromRate()) {
				t.Errorf("a recomputed line's %+v: want price × num and a tax from the rate", e)
			}
		})
	}
}
