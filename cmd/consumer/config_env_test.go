package main

import (
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A flag given on the command line overrides its environment variable,
// whatever the variable holds: one it would refuse (a shared environment
// file's INVOICE_SHUTDOWN_TIMEOUT=60, without its unit) does not stop a
// start that gives the flag, as a valid one would not be used either, and
// is a warning naming the variable and the flag. Another unreadable
// variable, whose flag is not given, still stops it, naming that variable
// alone.
func TestAFlagOverridesAnUnreadableVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		got  func(*options) any
		want any
	}{
		{"duration", []string{"--shutdown-timeout", "60s"}, map[string]string{"INVOICE_SHUTDOWN_TIMEOUT": "60"},
			func(o *options) any { return o.shutdownTO }, time.Minute},
		{"number", []string{"--workers", "8"}, map[string]string{"INVOICE_WORKERS": "many"},
			func(o *options) any { return o.workers }, 8},
		{"boolean", []string{"--strict-tax-numbers"}, map[string]string{"INVOICE_STRICT_TAX_NUMBERS": "on"},
			func(o *options) any { return o.strictTax }, true},
		{"boolean switched off", []string{"--strict-tax-numbers=false"}, map[string]string{"INVOICE_STRICT_TAX_NUMBERS": "yes"},
			func(o *options) any { return o.strictTax }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatalf("%v with %v: %v", tc.args, tc.env, err)
			}
			if got := tc.got(o); got != tc.want {
				t.Fatalf("%v with %v: %v, want the flag's %v", tc.args, tc.env, got, tc.want)
			}
			flagName := strings.SplitN(tc.args[0], "=", 2)[0]
			for name, value := range tc.env {
				if len(o.warnings) != 1 || !strings.Contains(o.warnings[0], name+"="+strconv.Quote(value)) || !strings.Contains(o.warnings[0], flagName+" overrides it") {
					t.Fatalf("warnings %q, want one naming %s, its value and %s", o.warnings, name, flagName)
				}
			}
		})
	}
	if o, err := parseFlags([]string{"--shutdown-timeout", "60s"}, envOf(map[string]string{"INVOICE_SHUTDOWN_TIMEOUT": "45s"})); err != nil || len(o.warnings) != 0 {
		t.Fatalf("a valid variable the flag overrides: %v, warnings %q; want none", err, o.warnings)
	}
	_, err := parseFlags([]string{"--shutdown-timeout", "60s"}, envOf(map[string]string{"INVOICE_SHUTDOWN_TIMEOUT": "60", "INVOICE_ACK_WAIT": "45"}))
	if err == nil || !strings.Contains(err.Error(), "INVOICE_ACK_WAIT") || strings.Contains(err.Error(), "INVOICE_SHUTDOWN_TIMEOUT") {
		t.Fatalf("error %v, want one naming INVOICE_ACK_WAIT, whose flag is not given, and not INVOICE_SHUTDOWN_TIMEOUT, whose flag is", err)
	}
}

// A value is read alike as a flag and as its variable: spaces around it
// (a ConfigMap's "30s ", a value ending in the newline of a YAML block)
// are ignored by both, durations and booleans as numbers.
func TestSpacesAroundAValueAreIgnoredAlike(t *testing.T) {
	for _, tc := range []struct {
		name, flag, variable, value string
		got                         func(*options) any
		want                        any
	}{
		{"duration", "shutdown-timeout", "INVOICE_SHUTDOWN_TIMEOUT", " 45s ", func(o *options) any { return o.shutdownTO }, 45 * time.Second},
		{"duration and a newline", "ack-wait", "INVOICE_ACK_WAIT", "45s\n", func(o *options) any { return o.ackWait }, 45 * time.Second},
		{"boolean", "strict-tax-numbers", "INVOICE_STRICT_TAX_NUMBERS", "true ", func(o *options) any { return o.strictTax }, true},
		{"number", "workers", "INVOICE_WORKERS", " 64 ", func(o *options) any { return o.workers }, 64},
		{"sync interval", "js-sync", "INVOICE_JS_SYNC", " 100ms ", func(o *options) any { return o.jsSync }, "100ms"},
		{"sync always", "js-sync", "INVOICE_JS_SYNC", "always ", func(o *options) any { return o.jsSync }, "always"},
		// The other enumerated words, as --js-sync's: a word with a space
		// around it is no other word.
		{"log format", "log-format", "INVOICE_LOG_FORMAT", " json\n", func(o *options) any { return o.logFormat }, "json"},
		{"log level", "log-level", "INVOICE_LOG_LEVEL", "debug ", func(o *options) any { return o.logLevel }, "debug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, given := range []struct {
				how  string
				args []string
				env  map[string]string
			}{
				{"flag", []string{"--" + tc.flag + "=" + tc.value}, nil},
				{"variable", nil, map[string]string{tc.variable: tc.value}},
			} {
				o, err := parseFlags(given.args, envOf(given.env))
				if err != nil {
					t.Errorf("%s %q: %v", given.how, tc.value, err)
					continue
				}
				if got := tc.got(o); got != tc.want {
					t.Errorf("%s %q: %v, want %v", given.how, tc.value, got, tc.want)
				}
			}
		})
	}
}

// A value its flag cannot read, given as the flag or as its variable, is
// refused naming both, so that the operator finds it wherever it is set.
func TestUnreadableValuesNameTheFlagAndTheVariable(t *testing.T) {
	for _, tc := range []struct{ flag, variable, value string }{
		{"shutdown-timeout", "INVOICE_SHUTDOWN_TIMEOUT", "60"},
		{"ack-wait", "INVOICE_ACK_WAIT", "45"},
		{"strict-tax-numbers", "INVOICE_STRICT_TAX_NUMBERS", "on"},
		{"workers", "INVOICE_WORKERS", "many"},
		{"js-sync", "INVOICE_JS_SYNC", "sometimes"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			for _, given := range []struct {
				how  string
				args []string
				env  map[string]string
			}{
				{"flag", []string{"--" + tc.flag + "=" + tc.value}, nil},
				{"variable", nil, map[string]string{tc.variable: tc.value}},
			} {
				_, err := parseFlags(given.args, envOf(given.env))
				if err == nil || !strings.Contains(err.Error(), "-"+tc.flag) || !strings.Contains(err.Error(), tc.variable) || !strings.Contains(err.Error(), tc.value) {
					t.Errorf("%s %q: error %v, want one naming -%s, %s and the value", given.how, tc.value, err, tc.flag, tc.variable)
				}
			}
		})
	}
}

// A value in its flag's range is checked with the other flags, and its
// refusal names the variable beside the flag, as every other refusal of
// a value does, wherever it was given: the operator looking at a unit
// that gives no flag finds the variable to correct. The log format and
// level, checked as the logger is built, name theirs too.
func TestRangeErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		env      map[string]string
		variable string // named, as a word of its own (INVOICE_PARTITION is not INVOICE_PARTITIONS)
	}{
		{"workers 0", []string{"--workers", "0"}, nil, "INVOICE_WORKERS"},
		{"variable workers 5000", nil, map[string]string{"INVOICE_WORKERS": "5000"}, "INVOICE_WORKERS"},
		{"partner max queries -1", []string{"--partner-max-queries", "-1"}, nil, "INVOICE_PARTNER_MAX_QUERIES"},
		{"variable partner max queries -1", nil, map[string]string{"INVOICE_PARTNER_MAX_QUERIES": "-1"}, "INVOICE_PARTNER_MAX_QUERIES"},
		{"partition past the partitions", []string{"--partitions", "2", "--partition", "2"}, nil, "INVOICE_PARTITION"},
		{"variable partition past the partitions", nil, map[string]string{"INVOICE_PARTITIONS": "2", "INVOICE_PARTITION": "-1"}, "INVOICE_PARTITION"},
		{"partition without partitions", []string{"--partition", "1"}, nil, "INVOICE_PARTITION"},
		{"variable partition without partitions", nil, map[string]string{"INVOICE_PARTITION": "1"}, "INVOICE_PARTITION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, envOf(tc.env))
			if err == nil {
				t.Fatal("accepted")
			}
			if !regexp.MustCompile(`\b` + tc.variable + `\b`).MatchString(err.Error()) {
				t.Errorf("error %q; want it to name %s", err, tc.variable)
			}
		})
	}
	for _, tc := range []struct{ format, level, variable string }{
		{"xml", "info", "INVOICE_LOG_FORMAT"},
		{"json", "loud", "INVOICE_LOG_LEVEL"},
	} {
		if _, err := newLogger(tc.format, tc.level, io.Discard); err == nil || !strings.Contains(err.Error(), tc.variable) {
			t.Errorf("log format %q, level %q: error %v; want one naming %s", tc.format, tc.level, err, tc.variable)
		}
	}
}
