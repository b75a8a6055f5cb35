package schemas_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestNuonuoAmountsGivenAgainstThoseItComputes: Nuonuo computes a line that
// leaves any of its three amounts out from price × num and the rate, and
// issues those amounts instead of the ones the line gives (seed 001: 不含税
// 金额、税额、含税金额任何一个不传时，会根据传入的单价，数量进行计算). An amount the
// line gives that differs from what Nuonuo will issue by more than E9131's
// per-line 0.06 is refused by this service's own rule (no provider code:
// Nuonuo would issue other figures, not refuse); one that differs by 0.01
// to 0.06 is a warning; an equal one passes silently. Each finding names
// the figure given and the one Nuonuo will issue. The jumdata mapping sends
// the amounts given (LineFigures.Recompute unset), and its sellers are held
// to E9131 on them as before.
func TestNuonuoAmountsGivenAgainstThoseItComputes(t *testing.T) {
	const line0, line2 = "order.invoiceDetail[0]", "order.invoiceDetail[2]"
	blue := MustRead(t, "requests/issue-discount.json")
	red := MustRead(t, "requests/issue-red.json")
	cases := []struct {
		name    string
		base    []byte
		edits   []edit
		refused []computedFinding // Nuonuo seller: violations of rule computed_amount
		warned  []computedFinding // Nuonuo seller: warnings of rule computed_amount
		jumdata []string          // jumdata seller: exact "field|rule|code" violations
	}{
		// 113.00 with tax at 13% is 100.00 + 13.00, whatever tax the line
		// gives: the order system asked for 50.00.
		{"tax given far from the one computed", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxIncludedAmount", "113.00", "tax", "50.00"))},
			[]computedFinding{{line2 + ".tax", "50.00", "13.00"}}, nil,
			[]string{line2 + ".tax|line_tax_tolerance|400", "order.invoiceDetail|invoice_tax_tolerance|400"}},
		{"amount and tax given split otherwise than the rate", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxExcludedAmount", "103.00", "tax", "10.00"))},
			[]computedFinding{{line2 + ".taxExcludedAmount", "103.00", "100.00"}, {line2 + ".tax", "10.00", "13.00"}}, nil,
			[]string{line2 + ".tax|line_tax_tolerance|400", "order.invoiceDetail|invoice_tax_tolerance|400"}},
		// The tolerance's edges, on the amount with tax Nuonuo computes as
		// 100.00 + 13.00 (withTaxFlag 0: price × num is without tax).
		{"amount with tax 0.07 over", blue, []edit{set(line2, rateLine("0", "price", "100", "num", "1", "taxExcludedAmount", "100.00", "taxIncludedAmount", "113.07"))},
			[]computedFinding{{line2 + ".taxIncludedAmount", "113.07", "113.00"}}, nil,
			[]string{line2 + ".tax|line_tax_tolerance|400"}},
		{"amount with tax 0.06 over", blue, []edit{set(line2, rateLine("0", "price", "100", "num", "1", "taxExcludedAmount", "100.00", "taxIncludedAmount", "113.06"))},
			nil, []computedFinding{{line2 + ".taxIncludedAmount", "113.06", "113.00"}}, nil},
		{"tax 0.01 over", blue, []edit{set(line2, rateLine("0", "price", "100", "num", "1", "tax", "13.01"))},
			nil, []computedFinding{{line2 + ".tax", "13.01", "13.00"}}, nil},
		{"tax 0.05 under, amount with tax equal", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxIncludedAmount", "113.00", "tax", "12.95"))},
			nil, []computedFinding{{line2 + ".tax", "12.95", "13.00"}}, nil},
		{"amounts equal to those computed", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxIncludedAmount", "113.00", "tax", "13.00"))},
			nil, nil, nil},
		// Under deduction taxation Nuonuo taxes (1000.00 − 500.00) × 0.06 /
		// 1.06 = 28.30.
		{"tax 0.03 over under a deduction", blue, []edit{set(line2, rateLine("1", "taxRate", "0.06", "price", "1000", "num", "1", "taxIncludedAmount", "1000.00", "deduction", "500.00", "tax", "28.33"))},
			nil, []computedFinding{{line2 + ".tax", "28.33", "28.30"}}, nil},
		// A red line: -5.65 with tax is -5.00 + -0.65. The jumdata adapter
		// refuses a red order before any call (it reverses with
		// red_confirm), and issue-red.json's invoiceLine c: the validator
		// refuses both as unsupported for a jumdata seller, and what else
		// it refuses of the order is its own rule.
		{"red line's amount without tax 0.02 off", red, []edit{del(line0 + ".tax"), set(line0+".taxExcludedAmount", "-5.02")},
			nil, []computedFinding{{line0 + ".taxExcludedAmount", "-5.02", "-5.00"}}, []string{"order.invoiceLine|unsupported|", "order.invoiceType|unsupported|"}},
		{"red line's amount without tax 0.10 off", red, []edit{del(line0 + ".tax"), set(line0+".taxExcludedAmount", "-5.10")},
			[]computedFinding{{line0 + ".taxExcludedAmount", "-5.10", "-5.00"}}, nil,
			[]string{line0 + ".tax|line_tax_tolerance|", "order.invoiceLine|unsupported|", "order.invoiceType|unsupported|"}},
		// A line that gives its amount without tax alone, priced with
		// tax: 2.1 × 12.08 = 25.368, which Nuonuo rounds to 25.37 and
		// computes as 23.28 + 2.09 at 9%, the amount given. Read on its
		// own, 23.28 and the tax the rate makes of it, 2.10, say 25.38,
		// 0.012 from price × num: the two roundings of a tax from the
		// rate, not a disagreement, and Nuonuo issues what the line
		// says. The jumdata mapping sends je 23.28 and se 2.10 beside
		// dj × spsl, which the tax bureau holds to 0.01.
		{"amount without tax alone, as Nuonuo computes it", blue, []edit{set(line2, rateLine("1", "taxRate", "0.09", "price", "2.1", "num", "12.08", "taxExcludedAmount", "23.28"))},
			nil, nil, []string{line2 + ".price|price_quantity|400"}},
		{"red line's amount without tax alone, as Nuonuo computes it", red, []edit{set(line0+".taxRate", "0.09"), set(line0+".price", "2.1"), set(line0+".num", "-12.08"),
			del(line0 + ".tax"), del(line0 + ".taxIncludedAmount"), set(line0+".taxExcludedAmount", "-23.28")},
			nil, nil, []string{line0 + ".price|price_quantity|", "order.invoiceLine|unsupported|", "order.invoiceType|unsupported|"}},
		// Amounts given that disagree with price × num: Nuonuo sets them
		// aside as any others, and issues price × num (226.00 with tax
		// at 13%: 200.00 + 26.00), not refusing. Each is held to the one
		// Nuonuo computes as above, not refused with a provider's code.
		// The jumdata mapping sends them beside dj × spsl, which the tax
		// bureau holds to 0.01.
		{"amounts given far from price × num", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "2", "taxExcludedAmount", "100.00", "tax", "13.00"))},
			[]computedFinding{{line2 + ".taxExcludedAmount", "100.00", "200.00"}, {line2 + ".tax", "13.00", "26.00"}}, nil,
			[]string{line2 + ".price|price_quantity|400"}},
		{"amount with tax given 0.03 from price × num", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxIncludedAmount", "113.03"))},
			nil, []computedFinding{{line2 + ".taxIncludedAmount", "113.03", "113.00"}},
			[]string{line2 + ".taxIncludedAmount|price_quantity|400"}},
		{"amount without tax given 0.07 from price × num", blue, []edit{set(line2, rateLine("0", "price", "100", "num", "1", "taxExcludedAmount", "100.07"))},
			[]computedFinding{{line2 + ".taxExcludedAmount", "100.07", "100.00"}}, nil,
			[]string{line2 + ".taxExcludedAmount|price_quantity|400"}},
		// A line that gives all three amounts is issued as given.
		{"all three amounts given", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxExcludedAmount", "100.05", "tax", "12.95", "taxIncludedAmount", "113.00"))},
			nil, nil, nil},
	}
	for _, tc := range cases {
		doc := MustEdit(t, tc.base, tc.edits...)
		t.Run(tc.name+"/nuonuo", func(t *testing.T) {
			d := DecodeAs(t, doc, "nuonuo")
			var wantRefused []string
			for _, f := range tc.refused {
				wantRefused = append(wantRefused, f.field+"|computed_amount|")
			}
			if got := summary(d.Violations); !sameSet(got, wantRefused) {
				t.Errorf("violations\n got  %q\n want %q\n%v", got, wantRefused, d.Violations)
			}
			var warned []string // the red request's seller fails the tax number check too
			for _, w := range d.Warnings {
				if w.Rule != "tax_number_check" {
					warned = append(warned, w.Field+"|"+w.Rule+"|"+w.ProviderCode)
				}
			}
			var wantWarned []string
			for _, f := range tc.warned {
				wantWarned = append(wantWarned, f.field+"|computed_amount|")
			}
			if !sameSet(warned, wantWarned) {
				t.Errorf("warnings\n got  %q\n want %q\n%v", warned, wantWarned, d.Warnings)
			}
			checkFigures(t, d.Violations, tc.refused)
			checkFigures(t, d.Warnings, tc.warned)
		})
		t.Run(tc.name+"/jumdata", func(t *testing.T) {
			d := DecodeAs(t, doc, "jumdata")
			if got := summary(d.Violations); !sameSet(got, tc.jumdata) {
				t.Errorf("violations\n got  %q\n want %q\n%v", got, tc.jumdata, d.Violations)
			}
			for _, w := range d.Warnings {
				if w.Rule == "computed_amount" {
					t.Errorf("warning %s for a jumdata seller, whose mapping sends the amounts given", w)
				}
			}
		})
	}
}

// computedFinding is an amount given that Nuonuo sets aside: its field, the
// figure given and the one Nuonuo issues.
type computedFinding struct{ field, given, issued string }

// checkFigures fails unless each finding has a violation (or warning) in vs
// at its field whose message names the figure given, the figure Nuonuo
// will issue, and what to do: give all three amounts, or none.
func checkFigures(t *testing.T, vs []schemas.Violation, want []computedFinding) {
	t.Helper()
	for _, f := range want {
		i := slices.IndexFunc(vs, func(v schemas.Violation) bool { return v.Field == f.field && v.Rule == "computed_amount" })
		if i < 0 {
			continue // the lists' comparison has said so
		}
		msg := vs[i].Message
		for _, s := range []string{"is " + f.given + ",", "Nuonuo will issue " + f.issued, "all three amounts, or none"} {
			if !strings.Contains(msg, s) {
				t.Errorf("%s: message %q does not say %q", f.field, msg, s)
			}
		}
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestNuonuoAmountsSetAsideKeepTheSignConvention: a line that leaves an
// amount out is computed by Nuonuo from price × num and the rate, and the
// amounts it gives are set aside: an amount or tax given with the wrong
// sign (a blue goods line's negative amount or tax, its tax of -0.00, a
// discount or red line's positive amount) is not refused by Nuonuo, which
// issues the figure it computes. It names no provider code, then. The
// request's sign convention is one for every provider (the jumdata mapping
// sends the amounts given, and refuses them), so it is refused all the
// same, by this service's own rule, naming the figure Nuonuo would issue.
// What Nuonuo computes is held to the signs with E4000 as before.
func TestNuonuoAmountsSetAsideKeepTheSignConvention(t *testing.T) {
	const line1, line2 = "order.invoiceDetail[1]", "order.invoiceDetail[2]"
	const line0 = "order.invoiceDetail[0]"
	blue := MustRead(t, "requests/issue-discount.json")
	red := MustRead(t, "requests/issue-red.json")
	cases := []struct {
		name   string
		base   []byte
		edits  []edit
		want   []string // exact "field|rule|code" violations for a Nuonuo seller
		issued string   // the figure the message names as Nuonuo's, "" for none
	}{
		{"a goods line's negative amount without tax", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "taxExcludedAmount", "-100.00"))},
			[]string{line2 + ".taxExcludedAmount|sign|"}, "100.00"},
		{"a goods line's negative amount with tax", blue, []edit{set(line2, rateLine("0", "price", "100", "num", "1", "taxIncludedAmount", "-113.00"))},
			[]string{line2 + ".taxIncludedAmount|sign|"}, "113.00"},
		{"a goods line's negative tax", blue, []edit{set(line2, rateLine("1", "price", "113", "num", "1", "tax", "-13.00"))},
			[]string{line2 + ".tax|sign|"}, "13.00"},
		{"a goods line's tax of -0.00", blue, []edit{set(line2, rateLine("1", "taxRate", "0", "price", "100", "num", "1", "tax", "-0.00"))},
			[]string{line2 + ".tax|sign|"}, "0.00"},
		{"a discount line's positive amount", blue, []edit{set(line1+".price", "113"), set(line1+".num", "-1"), set(line1+".taxIncludedAmount", "113.00"),
			del(line1 + ".taxExcludedAmount"), del(line1 + ".tax")},
			[]string{line1 + ".taxIncludedAmount|sign|"}, "-113.00"},
		{"a red line's positive amount", red, []edit{set(line0+".taxIncludedAmount", "5.65"), del(line0 + ".taxExcludedAmount"), del(line0 + ".tax")},
			[]string{line0 + ".taxIncludedAmount|sign|"}, "-5.65"},
		// What Nuonuo computes has the wrong sign too: it refuses that
		// (E4000), on the figure it computes.
		{"an amount given and computed as zero", blue, []edit{set(line2, rateLine("1", "price", "0.004", "num", "1", "taxExcludedAmount", "-0.01"))},
			[]string{line2 + ".taxExcludedAmount|sign|E4000"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := MustEdit(t, tc.base, tc.edits...)
			d := DecodeAs(t, doc, "nuonuo")
			if got := summary(d.Violations); !sameSet(got, tc.want) {
				t.Fatalf("violations\n got  %q\n want %q\n%v", got, tc.want, d.Violations)
			}
			if tc.issued == "" {
				return
			}
			for _, s := range []string{"Nuonuo would set it aside", "and issue " + tc.issued + ",", "sign convention is one for every provider"} {
				if !strings.Contains(d.Violations[0].Message, s) {
					t.Errorf("message %q does not say %q", d.Violations[0].Message, s)
				}
			}
		})
	}
}
