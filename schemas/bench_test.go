package schemas_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// BenchmarkDecode measures decoding and validating a typical request and one
// with the most lines allowed.
func BenchmarkDecode(b *testing.B) {
	typical := MustRead(b, "requests/issue-discount.json")
	lines := make([]any, 2000)
	for i := range lines {
		lines[i] = map[string]any{"goodsName": fmt.Sprintf("G%d", i), "goodsCode": "1050201990000000000", "withTaxFlag": "1",
			"price": "1.13", "num": "1", "taxRate": "0.13", "taxExcludedAmount": "1.00", "tax": "0.13", "taxIncludedAmount": "1.13"}
	}
	large := MustEdit(b, typical, set("order.invoiceDetail", lines))
	v := MustValidator(b, schemas.ValidatorConfig{})
	for _, bc := range []struct {
		name string
		doc  []byte
	}{{"typical", typical}, {"2000-lines", large}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.doc)))
			b.ReportAllocs()
			for b.Loop() {
				d, err := v.Decode(bc.doc, "")
				if err != nil || !d.Valid() {
					b.Fatal(err, d.Violations)
				}
			}
		})
	}
}

// BenchmarkEncode measures writing a typical decoded request back as JSON,
// as the publisher does: a dozen amounts among its fields, the kind of
// value the results' invoices and the providers' request bodies carry too.
func BenchmarkEncode(b *testing.B) {
	typical := MustRead(b, "requests/issue-discount.json")
	v := MustValidator(b, schemas.ValidatorConfig{})
	d, err := v.Decode(typical, "")
	if err != nil || !d.Valid() {
		b.Fatal(err, d.Violations)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(d.Request); err != nil {
			b.Fatal(err)
		}
	}
}
