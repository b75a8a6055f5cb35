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

// ValidTaxNumber reports whether tn, normalized (NormalizeTaxNumber), is a
// tax number a request may carry as its sellerTaxNum
// (invoice-request.schema.json: 15 to 20 letters or digits): the form in
// which sellers are configured and routed.
func ValidTaxNumber(tn string) bool {
	if len(tn) < 15 || len(tn) > 20 {
		return false
	}
	return !strings.ContainsFunc(tn, func(r rune) bool { return (r < '0' || r > '9') && (r < 'A' || r > 'Z') })
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

// residentIDWeights are 2^(17-i) mod 11 for i = 0..16 (GB 11643-1999).
var residentIDWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// validResidentID reports whether id is an 18-character resident ID number
// (GB 11643-1999): 17 digits and the right check character, 0-9 or X.
// An individual buyer's ID number goes where a tax number would (seed 001).
func validResidentID(id string) bool {
	if len(id) != 18 {
		return false
	}
	sum := 0
	for i := range 17 {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
		sum += int(id[i]-'0') * residentIDWeights[i]
	}
	return id[17] == "10X98765432"[sum%11]
}
