package nuonuo

import (
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// orderTotals compares what Nuonuo holds under an order number with the
// request, and says when it cannot tell.
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
		{"one invoice, the same", entries("106.00"), []schemas.InvoiceLine{line("106.00", "", "")}, true, true},
		{"lines by excluded amount and tax", entries("212.00"), []schemas.InvoiceLine{line("", "100.00", "6.00"), line("106", "", "")}, true, true},
		{"a split order, each invoice its share", entries("100.00", "112.00"), []schemas.InvoiceLine{line("212.00", "", "")}, true, true},
		{"a split order, each entry the order's total", entries("212.00", "212.00"), []schemas.InvoiceLine{line("212.00", "", "")}, true, true},
		{"another order", entries("106.00"), []schemas.InvoiceLine{line("212.00", "", "")}, true, false},
		{"a line without its amounts", entries("106.00"), []schemas.InvoiceLine{line("", "", "")}, false, false},
		{"an entry without orderAmount", entries(""), []schemas.InvoiceLine{line("106.00", "", "")}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			held, want, known := orderTotals(tt.entries, &schemas.Order{InvoiceDetail: tt.lines})
			if known != tt.known || (known && held.Equal(want) != tt.same) {
				t.Fatalf("held %s want %s known %v; want known %v, the same %v", held, want, known, tt.known, tt.same)
			}
		})
	}
}
