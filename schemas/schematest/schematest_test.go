package schematest_test

import (
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
)

// The request is valid for a seller of either provider, and edit reaches
// the order that is encoded.
func TestIssueRequestIsValid(t *testing.T) {
	const seller = "91330106MA2CFK6E5Y"
	for _, provider := range []string{"nuonuo", "jumdata"} {
		v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{seller: provider}})
		if err != nil {
			t.Fatal(err)
		}
		d, err := v.Decode(schematest.IssueRequest(seller, "ST-1", nil), seller)
		if err != nil {
			t.Fatalf("%s: %v", provider, err)
		}
		if len(d.Violations) > 0 {
			t.Fatalf("%s: %v", provider, d.Violations)
		}
		if d.Request.Order.OrderNo != "ST-1" || d.Request.Order.InvoiceDetail[0].TaxIncludedAmount.String() != "106.00" {
			t.Fatalf("%s: decoded %+v", provider, d.Request.Order)
		}
	}
	b := schematest.IssueRequest(seller, "ST-2", func(o *schemas.Order) { o.InvoiceDetail[0].Tax = schemas.ParseAmount("-6.00") })
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := v.Decode(b, seller); err != nil || len(d.Violations) == 0 {
		t.Fatal("a blue line's negative tax, set by edit, was accepted: edit did not reach the encoded order")
	}
}
