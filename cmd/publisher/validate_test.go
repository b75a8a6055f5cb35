package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
)

// runCLI runs the publisher with args and returns stdout, stderr (with the
// error main would print) and the exit code main would use.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if stdin != "" {
		f := filepath.Join(t.TempDir(), "stdin")
		if err := os.WriteFile(f, []byte(stdin), 0o644); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		old := os.Stdin
		os.Stdin = in
		t.Cleanup(func() { os.Stdin = old; in.Close() })
	}
	err := root.Execute()
	code := exitOK
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		code = ee.code
		if ee.err != nil {
			fmt.Fprintln(&errOut, "publisher:", ee.err) // as main does
		}
	case err != nil:
		code = exitUsage
		fmt.Fprintln(&errOut, "publisher:", err)
	}
	return out.String(), errOut.String(), code
}

func TestValidate(t *testing.T) {
	seed := filepath.Join("..", "..", "schemas", "testdata", "seed001-example.json")
	good := filepath.Join("..", "..", "schemas", "testdata", "requests", "issue-discount.json")
	ndjson := strings.Join([]string{
		`{"schemaVersion":"1","kind":"reissue","sellerTaxNum":"339902999999789113","orderNo":"R1","reissue":{"orderno":"F1"}}`,
		`{"schemaVersion":"1","kind":"reissue","sellerTaxNum":"339902999999789113","orderNo":"R2","reissue":{}}`,
		`{"truncated":`,
		``,
		`{"schemaVersion":"1","kind":"reissue","sellerTaxNum":"339902999999789113","orderNo":"R3","reissue":{"fpqqlsh":"1"},"x":1}`,
	}, "\n")
	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		contains []string
		lines    int
	}{
		{"valid file", "", []string{"validate", good}, exitOK, nil, 0},
		{"seed example", "", []string{"validate", seed}, exitFailed, []string{
			"seed001-example.json:1: order.invoiceDetail[0].goodsCode: has 9 digits; a tax classification code has 19: write a category code in full, trailing zeros included (E9121)",
			"seed001-example.json:1: order.orderNo: is 21 characters long; the maximum is 20 (E4000)",
			"seed001-example.json:1: orderNo: is 21 characters long; the maximum is 20",
		}, 3},
		{"ndjson on stdin", ndjson, []string{"validate", "-"}, exitFailed, []string{
			"<stdin>:2: reissue: needs fpqqlsh (the serial number) or orderno (E4000)",
			"<stdin>:3: (message): malformed message: not JSON",
			"<stdin>:4: x: is not a field of the contract",
		}, 3},
		{"no file", "", []string{"validate"}, exitUsage, nil, 0},
		{"missing file", "", []string{"validate", "does-not-exist.json"}, exitUsage, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, _, code := runCLI(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, c := range tc.contains {
				if !strings.Contains(out, c) {
					t.Errorf("output lacks %q:\n%s", c, out)
				}
			}
			if n := strings.Count(out, "\n"); n != tc.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tc.lines, out)
			}
		})
	}
}

// --provider checks a seller by its provider's rules, as the consumer does:
// jumdata issues invoiceLine p as a fully digital invoice, held to a remark
// of 200 characters, and Nuonuo does not.
func TestValidateByProvider(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "schemas", "testdata", "requests", "issue-discount.json"))
	if err != nil {
		t.Fatal(err)
	}
	req := strings.Replace(string(data), `"invoiceLine": "pc"`, `"invoiceLine": "p", "remark": "`+strings.Repeat("备", 201)+`"`, 1)
	if req == string(data) {
		t.Fatal("the test request has no invoiceLine to change")
	}
	req = strings.Join(strings.Fields(req), " ") // one line: newline-delimited input
	out, _, code := runCLI(t, req, "validate", "-")
	if code != exitOK {
		t.Fatalf("by Nuonuo's rules: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, req, "validate", "--provider", "91330106MA2AYNWD8M=jumdata", "-")
	if code != exitFailed || !strings.Contains(out, "order.remark: is 201 characters long") || !strings.Contains(out, "(400)") {
		t.Fatalf("by jumdata's rules: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, req, "publish", "--dry-run", "--provider", "91330106MA2AYNWD8M=jumdata", "-"); code == exitOK || !strings.Contains(out+fmt.Sprint(code), "order.remark") {
		t.Fatalf("publish --dry-run by jumdata's rules: exit %d\n%s", code, out)
	}
	if _, _, code := runCLI(t, req, "validate", "--provider", "91330106MA2AYNWD8M=baiwang", "-"); code != exitUsage {
		t.Fatalf("an unknown provider: exit %d, want a usage error", code)
	}
}

// TestValidateFileMistakes: a pretty-printed request with one syntax error is
// one report, at its line and column, not one per line read as
// newline-delimited JSON; a file or pipe with no records is not a success.
func TestValidateFileMistakes(t *testing.T) {
	pretty := writeFile(t, "pretty.json", []byte("{\n  \"schemaVersion\": \"1\",\n  \"kind\": \"issue\",\n}\n"))
	out, _, code := runCLI(t, "", "validate", pretty)
	if code != exitFailed || strings.Count(out, "\n") != 1 || !strings.Contains(out, "pretty.json: line 3, column") || !strings.Contains(out, "not JSON") {
		t.Fatalf("pretty-printed with a trailing comma: exit %d\n%s", code, out)
	}
	// A newline-delimited file whose first record is broken is still read
	// record by record.
	nd := writeFile(t, "broken-first.ndjson", append([]byte(`{"schemaVersion": "1", "kind`+"\n"), issueRequest(t, nuonuoSeller, "ND-2")...))
	if out, _, code := runCLI(t, "", "validate", nd); code != exitFailed || !strings.Contains(out, "broken-first.ndjson:1: (message): malformed") || strings.Contains(out, ":2:") {
		t.Fatalf("newline-delimited with a broken first record: exit %d\n%s", code, out)
	}
	empty := writeFile(t, "empty.json", []byte("\n\n"))
	if out, _, code := runCLI(t, "", "validate", empty); code != exitFailed || !strings.Contains(out, "empty.json: no records") {
		t.Fatalf("empty file: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, "", "validate", "-"); code != exitFailed || !strings.Contains(out, "<stdin>: no records") {
		t.Fatalf("empty standard input: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, "", "--server", unreachableURL(t), "publish", "--dry-run", empty); code != exitFailed || !strings.Contains(out, "no records") {
		t.Fatalf("publish of an empty file: exit %d\n%s", code, out)
	}
}

// TestValidateRefusesWhatJumdataCannotDo: validate tells the developer of
// a jumdata seller's request that the jumdata adapter would refuse as
// unsupported (here a paper invoice, invoiceLine c), naming the field and
// no provider code, before it is published: it passed before, and was
// rejected only once the consumer had accepted and stored it.
func TestValidateRefusesWhatJumdataCannotDo(t *testing.T) {
	req := string(issueRequest(t, jumdataSeller, "UNSUP-1"))
	req = strings.Replace(req, `"invoiceLine":"pc"`, `"invoiceLine":"c"`, 1)
	if !strings.Contains(req, `"invoiceLine":"c"`) {
		t.Fatalf("the test request has no invoiceLine pc to change: %s", req)
	}
	if out, _, code := runCLI(t, req, "validate", "-"); code != exitOK {
		t.Fatalf("by Nuonuo's rules: exit %d\n%s", code, out)
	}
	out, _, code := runCLI(t, req, "validate", "--provider", jumdataSeller+"=jumdata", "-")
	if code != exitFailed || !strings.Contains(out, `<stdin>:1: order.invoiceLine: is "c", which jumdata does not issue`) || strings.Contains(out, "(400)") {
		t.Fatalf("by jumdata's rules: exit %d\n%s", code, out)
	}
}

// TestValidatePrettyPrintedWithABOM: a pretty-printed request saved with a
// UTF-8 byte order mark (as some Windows editors save) is one report, at
// line 1, column 1, where the mark is, not one per line read as
// newline-delimited JSON. The consumer reads such a message as malformed,
// so validate does not pass it either.
func TestValidatePrettyPrintedWithABOM(t *testing.T) {
	f := writeFile(t, "bom.json", []byte("\ufeff{\n  \"schemaVersion\": \"1\",\n  \"kind\": \"issue\"\n}\n"))
	out, _, code := runCLI(t, "", "validate", f)
	if code != exitFailed || strings.Count(out, "\n") != 1 || !strings.Contains(out, "bom.json: line 1, column 1: (message): malformed message") || !strings.Contains(out, `\ufeff`) {
		t.Fatalf("pretty-printed with a byte order mark: exit %d\n%s", code, out)
	}
}

// TestValidatePrintsTheFirstWarningsOfARecord: a record's warnings are
// printed up to maxPrintedWarnings, then one line counting the rest and
// all of them; a record of 2,000 lines each warned of does not print
// 2,000. The record is valid all the same.
func TestValidatePrintsTheFirstWarningsOfARecord(t *testing.T) {
	const seller = "91330106MA2AYNWD8M" // a right check character: no warning of its own
	// Each line leaves its amount with tax out and gives 100.01 without
	// tax, which Nuonuo sets aside for the 100.00 it computes from price
	// × num: a computed_amount warning a line.
	req := schematest.IssueRequest(seller, "WARN-2000", func(o *schemas.Order) {
		l := o.InvoiceDetail[0]
		l.TaxIncludedAmount, l.TaxExcludedAmount = schemas.Amount{}, schemas.ParseAmount("100.01")
		o.InvoiceDetail = slices.Repeat([]schemas.InvoiceLine{l}, 2000)
	})
	f := writeFile(t, "warnings.ndjson", req)
	out, errOut, code := runCLI(t, "", "validate", f)
	if code != exitOK || out != "" {
		t.Fatalf("exit %d, want 0 and no violations:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if len(lines) != maxPrintedWarnings+1 {
		t.Fatalf("%d lines on standard error, want %d warnings and one counting the rest:\n%.2000s", len(lines), maxPrintedWarnings, errOut)
	}
	for i, l := range lines[:maxPrintedWarnings] {
		if want := fmt.Sprintf("%s:1: warning: order.invoiceDetail[%d].taxExcludedAmount: is 100.01, but Nuonuo will issue 100.00", f, i); !strings.HasPrefix(l, want) {
			t.Errorf("line %d is %q, want it to start %q", i+1, l, want)
		}
	}
	if last, want := lines[maxPrintedWarnings], fmt.Sprintf("%s:1: %d more warnings not shown (2000 in all)", f, 2000-maxPrintedWarnings); last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
}
