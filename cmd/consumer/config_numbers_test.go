package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// The consumer's integer flags are read in base 10, as their INVOICE_*
// variables are, not only --partition and --partitions: flag.IntVar would
// read --workers 010 as octal 8 and 0x10 as 16. A hex number is refused
// naming the flag.
func TestIntegerFlagsAreDecimal(t *testing.T) {
	for _, tc := range []struct {
		flag, env string
		got       func(*options) int
	}{
		{"replicas", "INVOICE_REPLICAS", func(o *options) int { return o.replicas }},
		{"workers", "INVOICE_WORKERS", func(o *options) int { return o.workers }},
		{"max-deliver", "INVOICE_MAX_DELIVER", func(o *options) int { return o.maxDeliver }},
		{"partner-max-queries", "INVOICE_PARTNER_MAX_QUERIES", func(o *options) int { return o.partnerMax }},
		{"max-request-bytes", "INVOICE_MAX_REQUEST_BYTES", func(o *options) int { return o.maxBytes }},
		{"store-batch", "INVOICE_STORE_BATCH", func(o *options) int { return o.storeBatch }},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			o, err := parseFlags([]string{"--" + tc.flag, "010"}, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(o); got != 10 {
				t.Errorf("--%s 010 = %d, want 10", tc.flag, got)
			}
			o, err = parseFlags(nil, envOf(map[string]string{tc.env: "010"}))
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(o); got != 10 {
				t.Errorf("%s=010 = %d, want 10, as the flag", tc.env, got)
			}
			_, err = parseFlags([]string{"--" + tc.flag, "0x10"}, noEnv)
			if err == nil || !strings.Contains(err.Error(), "-"+tc.flag+":") {
				t.Errorf("--%s 0x10: error %v, want one naming the flag", tc.flag, err)
			}
		})
	}
}

// TestUsageNamesEveryValue: -h shows each flag with what it takes (a
// number, a duration, a string), never flag's "value" for a flag of our
// own type, and the integer flags' defaults.
func TestUsageNamesEveryValue(t *testing.T) {
	usage := consumerUsage(t)
	if strings.Contains(usage, " value\n") {
		t.Errorf("a flag shows as taking a \"value\":\n%s", usage)
	}
	for _, want := range []string{
		"-workers number", "(INVOICE_WORKERS) (default 128)",
		"-replicas number", "(INVOICE_REPLICAS) (default 1)",
		"-max-deliver number", "(INVOICE_MAX_DELIVER) (default 20)",
		"-partner-max-queries number", "(INVOICE_PARTNER_MAX_QUERIES) (default 32)",
		"-max-request-bytes number", "(INVOICE_MAX_REQUEST_BYTES) (default 524288)",
		"-store-batch number", "-partitions number", "-partition number",
		"-shutdown-timeout duration",
	} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
	// A variable's value is the default -h shows, as for every flag.
	if u := consumerUsageWith(t, map[string]string{"INVOICE_WORKERS": "012"}); !regexp.MustCompile(`\(INVOICE_WORKERS\) \(default 12\)`).MatchString(u) {
		t.Errorf("INVOICE_WORKERS=012: usage does not show the default 12:\n%s", u)
	}
}

// consumerUsage returns what -h prints.
func consumerUsage(t *testing.T) string {
	t.Helper()
	return consumerUsageWith(t, nil)
}

// consumerUsageWith returns what -h prints in the environment env.
func consumerUsageWith(t *testing.T, env map[string]string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	_, perr := parseFlags([]string{"-h"}, envOf(env))
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if !errors.Is(perr, flag.ErrHelp) {
		t.Fatalf("-h: %v", perr)
	}
	return string(out)
}
