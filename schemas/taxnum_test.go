package schemas_test

import (
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// ValidTaxNumber accepts what the request schema's sellerTaxNum pattern
// accepts once normalized, and nothing else.
func TestValidTaxNumber(t *testing.T) {
	for tn, want := range map[string]bool{
		"91330106MA2AYNWD8M":    true,
		"339902999999789113":    true,
		"123456789012345":       true,  // 15
		"12345678901234567890":  true,  // 20
		"12345678901234":        false, // 14
		"123456789012345678901": false, // 21
		"91330106ma2aynwd8m":    false, // not normalized
		"9133 0106 MA2A YNWD8M": false,
		"91330106-MA2AYNWD8M":   false,
		"９１３３０１０６MA2AYNWD8M":    false, // full-width digits
		"":                      false,
	} {
		if got := schemas.ValidTaxNumber(tn); got != want {
			t.Errorf("ValidTaxNumber(%q) = %v, want %v", tn, got, want)
		}
	}
}
