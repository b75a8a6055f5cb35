package schemas

import "strings"

// uscCharset is the alphabet of GB 32100-2015 unified social credit codes;
// a character's value is its index.
const uscCharset = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// uscWeights are 3^(i-1) mod 31 for i = 1..17.
var uscWeights = func() [17]int {
	var w [17]int
	p := 1
	for i := range w {
		w[i] = p
		p = p * 3 % 31
	}
	return w
}()

// NormalizeTaxNumber trims spaces and upper-cases a tax number, the form in
// which it is compared, routed and sent to providers.
func NormalizeTaxNumber(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}

// TaxNumberCheckChar returns the GB 32100-2015 check character for the first
// 17 characters of a unified social credit code, or false when one of them is
// outside the code's alphabet.
func TaxNumberCheckChar(first17 string) (byte, bool) {
	if len(first17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v := strings.IndexByte(uscCharset, first17[i])
		if v < 0 {
			return 0, false
		}
		sum += v * uscWeights[i]
	}
	return uscCharset[(31-sum%31)%31], true
}

// ValidTaxNumberCheck reports whether an 18-character unified social credit
// code carries the right check character. Other lengths are not checked and
// report true.
func ValidTaxNumberCheck(tn string) bool {
	if len(tn) != 18 {
		return true
	}
	want, ok := TaxNumberCheckChar(tn[:17])
	return ok && tn[17] == want
}
