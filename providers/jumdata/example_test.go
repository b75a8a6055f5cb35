package jumdata_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

func ExampleSign() {
	// The document's example values.
	fmt.Println(jumdata.Sign("xyzxy2121zxyz", "efcefcef1121cefcefc1212121", "1555378976238"))
	// Output: 6ddcdc405743c576cb6d34b17b47ed56e2b9b6670fae1fe85ed01244fd31558b
}

func ExampleTaskID() {
	fmt.Println(jumdata.TaskID("91330106MA2AYNWD8M", "ORD-2026-000001", 0))
	// Output: 18b7caa90cd047e604e1345a025c2903
}

func ExampleClient_Submit() {
	// A local jumdata: the sandbox, with its default seller and credentials.
	sb := sandbox.New(sandbox.Config{})
	ts := httptest.NewServer(sb.Handler())
	defer ts.Close()

	client, err := jumdata.New(jumdata.Config{
		BaseURL:      ts.URL,
		AppID:        sandbox.DefaultJumdataAppID,
		AppSecret:    sandbox.DefaultJumdataSecret,
		Token:        sandbox.DefaultJumdataToken,
		SellerTaxNum: sandbox.DefaultJumdataSeller,
		DQ:           sandbox.DefaultJumdataDQ,
		Gryhm:        sandbox.DefaultJumdataGryhm,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, _ := schemas.NewValidator(schemas.ValidatorConfig{})
	d, err := v.Decode([]byte(`{"schemaVersion":"1","kind":"issue","sellerTaxNum":"91330106MA2AYNWD8M","orderNo":"A-1",
	  "order":{"buyerName":"个人","salerTaxNum":"91330106MA2AYNWD8M","orderNo":"A-1","invoiceDate":"2026-11-20 10:00:00",
	    "clerk":"张三","pushMode":"-1","invoiceType":"1","invoiceLine":"pc","invoiceDetail":[{"goodsName":"咖啡",
	    "goodsCode":"1030307020000000000","withTaxFlag":"1","taxRate":"0.13","taxExcludedAmount":"10.00","tax":"1.30",
	    "taxIncludedAmount":"11.30"}]}}`), "")
	if err != nil || !d.Valid() {
		fmt.Println(err, d.Violations)
		return
	}

	out := client.Submit(context.Background(), &providers.Call{Request: d.Request})
	fmt.Println(out.Class, out.Refs.TaskID, out.Invoices[0].TotalAmount)
	// Output: issued b8fe9f7b3092b8b95bf26dea92824ad6 11.30
}
