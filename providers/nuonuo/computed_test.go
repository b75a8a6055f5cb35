package nuonuo_test

import (
	"encoding/json"
	"testing"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// TestValidatorAndSandboxComputeALineThatLeavesAnAmountOut: seed 001 says
// of taxExcludedAmount, tax and taxIncludedAmount "任何一个不传时，会根据传入
// 的单价，数量进行计算": Nuonuo computes a line that leaves any of them out from
// price × num and the rate, and issues those amounts. The validator and the
// sandbox read the seed each on its own; an order the validator takes is
// issued with the computed amounts, and one it refuses is refused.
func TestValidatorAndSandboxComputeALineThatLeavesAnAmountOut(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// parts are 300 lines of 0.50 without tax at 9% whose taxes are given
	// as 0.05 and 0.04 in turn, and their amounts with tax when withIncl:
	// left out, the platform computes 0.05 a line, 1.50 over Σ amount ×
	// rate, beyond the invoice's 1.27.
	parts := func(withIncl bool) func(o *schemas.Order) {
		return func(o *schemas.Order) {
			o.InvoiceDetail = make([]schemas.InvoiceLine, 300)
			for i := range o.InvoiceDetail {
				l := schemas.InvoiceLine{GoodsName: "配件", GoodsCode: "1050201990000000000", WithTaxFlag: "0",
					Price: schemas.ParseAmount("0.5"), Num: schemas.ParseAmount("1"), TaxRate: schemas.ParseAmount("0.09"),
					TaxExcludedAmount: schemas.ParseAmount("0.50"), Tax: schemas.ParseAmount([]string{"0.05", "0.04"}[i%2])}
				if withIncl {
					l.TaxIncludedAmount = schemas.ParseAmount([]string{"0.55", "0.54"}[i%2])
				}
				o.InvoiceDetail[i] = l
			}
		}
	}
	cases := []struct {
		name   string
		mutate func(o *schemas.Order)
		code   string    // the sandbox's refusal, "" when it issues
		issued [3]string // exTax, tax, total issued
	}{
		// 106.00 with tax at 6% is 100.00 + 6.00, whatever the line says
		// of its split.
		{"amounts given split otherwise than the rate", func(o *schemas.Order) {
			l := &o.InvoiceDetail[0]
			l.TaxExcludedAmount, l.Tax, l.TaxIncludedAmount = schemas.ParseAmount("101.00"), schemas.ParseAmount("5.00"), schemas.Amount{}
		}, "", [3]string{"100.00", "6.00", "106.00"}},
		{"taxes computed over the invoice's tolerance", parts(false), "E9131", [3]string{}},
		{"the same lines with all their amounts", parts(true), "", [3]string{"150.00", "13.50", "163.50"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newSandbox(t, sandbox.Config{})
			c := env.mustClient(t, nil)
			body, err := json.Marshal(issueRequest("COMPUTED-1", tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			d, err := v.Decode(body, seller)
			if err != nil {
				t.Fatal(err)
			}
			if d.Valid() != (tc.code == "") {
				t.Fatalf("the validator's violations %v; the sandbox's answer is %q (\"\": issued)", d.Violations, tc.code)
			}
			call := &providers.Call{Request: d.Request}
			out := c.Submit(t.Context(), call)
			if tc.code != "" {
				if out.Class != providers.Rejected || out.Code != tc.code {
					t.Fatalf("the sandbox answered %v %q %q, want a refusal %s", out.Class, out.Code, out.Message, tc.code)
				}
				return
			}
			wantClass(t, "Submit", out, providers.Accepted)
			call.Refs = out.Refs
			got := c.Query(t.Context(), call)
			wantClass(t, "Query", got, providers.Issued)
			if len(got.Invoices) != 1 {
				t.Fatalf("invoices %+v, want 1", got.Invoices)
			}
			inv := got.Invoices[0]
			if a := [3]string{inv.ExTaxAmount.String(), inv.TaxAmount.String(), inv.TotalAmount.String()}; a != tc.issued {
				t.Errorf("issued %v, want %v", a, tc.issued)
			}
		})
	}
}
