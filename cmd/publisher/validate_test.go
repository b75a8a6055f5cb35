package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
