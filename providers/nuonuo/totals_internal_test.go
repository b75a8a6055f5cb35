package nuonuo

import (
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// orderTotals compares what Nuonuo holds under an order number with the
// request, and says when it cannot tell: a line not given all three
// amounts is computed by Nuonuo from price and num (seed 001).
func TestOrderTotals(t *testing.T) {
	line := func(incl, excl, tax string) schemas.InvoiceLine {
		return schemas.InvoiceLine{TaxIncludedAmount: schemas.ParseAmount(incl), TaxExcludedAmount: schemas.ParseAmount(excl), Tax: schemas.ParseAmount(tax)}
	}
	entries := func(amounts ...string) []invoiceEntry {
		out := make([]invoiceEntry, len(amounts))
		for i, a := range amounts {
			out[i].OrderAmount = flexString(a)
		}
		return out
	}
	for _, tt := range []struct {
		name        string
		entries     []invoiceEntry
		lines       []schemas.InvoiceLine
		known, same bool
	}{
		{"one invoice, the same", entries("106.00"), []schemas.InvoiceLine{line("106.00", "100.00", "6.00")}, true, true},
		{"written otherwise", entries(" 106 "), []schemas.InvoiceLine{line("106.00", "100.00", "6.00")}, true, true},
		{"two lines, a discount", entries("95.40"), []schemas.InvoiceLine{line("106.00", "100.00", "6.00"), line("-10.60", "-10.00", "-0.60")}, true, true},
		{"a split order, each invoice its share", entries("100.00", "112.00"), []schemas.InvoiceLine{line("212.00", "200.00", "12.00")}, true, true},
		{"a split order of twice the amount", entries("106.00", "106.00"), []schemas.InvoiceLine{line("106.00", "100.00", "6.00")}, true, false},
		{"another order", entries("106.00"), []schemas.InvoiceLine{line("212.00", "200.00", "12.00")}, true, false},
		{"a line without its included amount", entries("106.00"), []schemas.InvoiceLine{line("", "100.00", "5.95")}, false, false},
		{"a line with its included amount only", entries("10.00"), []schemas.InvoiceLine{line("9.99", "", "")}, false, false},
		{"an entry without orderAmount", entries(""), []schemas.InvoiceLine{line("106.00", "100.00", "6.00")}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held, want, known := orderTotals(tt.entries, &schemas.Order{InvoiceDetail: tt.lines})
			if known != tt.known || (known && held.Equal(want) != tt.same) {
				t.Fatalf("held %s want %s known %v; want known %v, the same %v", held, want, known, tt.known, tt.same)
			}
		})
	}
}

// otherBuyer tells another buyer's order by payerName, when Nuonuo gives
// it.
func TestOtherBuyer(t *testing.T) {
	order := &schemas.Order{BuyerName: "杭州示例科技有限公司"}
	for name, want := range map[string]bool{"": false, "杭州示例科技有限公司": false, " 杭州示例科技有限公司 ": false, "别的公司": true} {
		if got := otherBuyer([]invoiceEntry{{PayerName: flexString(name)}}, order); got != want {
			t.Errorf("payerName %q: other buyer %v, want %v", name, got, want)
		}
	}
}
