package nuonuo_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// TestValidatorAndSandboxAgreeOnARemarksLength: seed 001 gives remark a
// maximum length of 230 characters, PROVIDERS.md 200 on a fully digital
// invoice (Nuonuo's invoiceLine bs, pc, es and ec), and neither a code of
// its own: E4000, seed 001's code for a private parameter whose value is
// wrong. A remark one character over its invoice's limit the validator
// refuses naming E4000 and the sandbox refuses with E4000; one at the
// limit both take, and the sandbox issues it. Characters are counted, not
// bytes (备 is three bytes in UTF-8). Before, the sandbox took a remark of
// any length, and issued what the validator refuses.
func TestValidatorAndSandboxAgreeOnARemarksLength(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{seller: "nuonuo"}})
	if err != nil {
		t.Fatal(err)
	}
	env := newSandbox(t, sandbox.Config{})
	c := env.mustClient(t, nil)
	for _, tc := range []struct {
		line  string
		limit int
	}{
		{"pc", 200}, {"bs", 200}, // fully digital
		{"p", 230}, {"c", 230}, // tax-control
	} {
		for _, n := range []int{tc.limit, tc.limit + 1} {
			t.Run(fmt.Sprintf("%s with %d characters", tc.line, n), func(t *testing.T) {
				orderNo := fmt.Sprintf("REMARK-%s-%d", tc.line, n)
				body, err := json.Marshal(issueRequest(orderNo, func(o *schemas.Order) {
					o.InvoiceLine, o.Remark = tc.line, strings.Repeat("备", n)
				}))
				if err != nil {
					t.Fatal(err)
				}
				d, err := v.Decode(body, seller)
				if err != nil {
					t.Fatal(err)
				}
				var codes, want []string
				for _, x := range d.Violations {
					codes = append(codes, x.Field+"|"+x.ProviderCode)
				}
				over := n > tc.limit
				if over {
					want = []string{"order.remark|E4000"}
				}
				if !slices.Equal(codes, want) {
					t.Fatalf("the validator's violations %v; want %v", d.Violations, want)
				}
				// The validator's refusal pre-empts the sandbox's: send it
				// all the same.
				out := c.Submit(t.Context(), &providers.Call{Request: d.Request})
				if over {
					if out.Class != providers.Rejected || out.Code != "E4000" || !strings.Contains(out.Message, "remark") {
						t.Fatalf("the sandbox answered %v %q %q; want a refusal E4000 naming the remark", out.Class, out.Code, out.Message)
					}
					return
				}
				wantClass(t, "Submit", out, providers.Accepted)
			})
		}
	}
}
