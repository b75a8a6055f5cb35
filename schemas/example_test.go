package schemas_test

import (
	"fmt"

	"github.com/fapiaohub/invoicer/schemas"
)

func ExampleValidator_Decode() {
	v, _ := schemas.NewValidator(schemas.ValidatorConfig{})
	msg := []byte(`{"schemaVersion":"1","kind":"issue","sellerTaxNum":"91330106MA2AYNWD8M","orderNo":"A-1",
	  "order":{"buyerName":"个人","salerTaxNum":"91330106MA2AYNWD8M","orderNo":"A-1","invoiceDate":"2026-11-20 10:00:00",
	    "clerk":"张三","pushMode":"-1","invoiceType":"1","invoiceDetail":[{"goodsName":"咖啡","goodsCode":"1030307020000000000",
	    "withTaxFlag":"1","taxRate":"0.13","taxExcludedAmount":"10.00","tax":"1.31","taxIncludedAmount":"11.30"}]}}`)
	d, err := v.Decode(msg, "91330106MA2AYNWD8M")
	if err != nil {
		fmt.Println("malformed:", err)
		return
	}
	for _, vi := range d.Violations {
		fmt.Println(vi)
	}
	// Output:
	// order.invoiceDetail[0].taxIncludedAmount: is 11.30 but taxExcludedAmount + tax is 11.31 (E9130)
}
