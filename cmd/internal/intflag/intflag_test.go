package intflag_test

import (
	"bytes"
	"flag"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
)

const notInt = "not a whole number in base 10"

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  string // "" when read
	}{
		{"10", 10, ""},
		{"010", 10, ""},
		{"08", 8, ""},
		{"+3", 3, ""},
		{"-1", -1, ""},
		{" 7 ", 7, ""},
		{"0x10", 0, notInt},
		{"0o10", 0, notInt},
		{"0b10", 0, notInt},
		{"1_000", 0, notInt},
		{"3.0", 0, notInt},
		{"", 0, notInt},
		{"99999999999999999999", 0, "out of range"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var n int
			v := intflag.NewInt(&n, 5)
			err := v.Set(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Set(%q): error %v, want %q", tc.in, err, tc.err)
				}
				if n != 5 {
					t.Fatalf("Set(%q) refused but changed the value to %d", tc.in, n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q): %v", tc.in, err)
			}
			if n != tc.want || v.String() != strconv.Itoa(tc.want) || v.Get() != any(tc.want) {
				t.Fatalf("Set(%q) = %d (String %s, Get %v), want %d", tc.in, n, v.String(), v.Get(), tc.want)
			}
		})
	}
}

func TestUint64(t *testing.T) {
	const notUint = "not a whole number of 0 or more in base 10"
	for _, tc := range []struct {
		in   string
		want uint64
		err  string // "" when read
	}{
		{"010", 10, ""},
		{"18446744073709551615", 18446744073709551615, ""},
		{" 0 ", 0, ""},
		{"-1", 0, notUint},
		{"+1", 0, notUint},
		{"0x10", 0, notUint},
		{"18446744073709551616", 0, "out of range"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var n uint64
			v := intflag.NewUint64(&n, 5)
			err := v.Set(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("Set(%q): error %v, want %q", tc.in, err, tc.err)
				}
				if n != 5 {
					t.Fatalf("Set(%q) refused but changed the value to %d", tc.in, n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q): %v", tc.in, err)
			}
			if n != tc.want || v.String() != strconv.FormatUint(tc.want, 10) || v.Get() != any(tc.want) {
				t.Fatalf("Set(%q) = %d (String %s, Get %v), want %d", tc.in, n, v.String(), v.Get(), tc.want)
			}
		})
	}
}

// In a standard FlagSet: the default holds until the flag is given, a
// refused value's error names the flag, and -h shows the default.
func TestStandardFlagSet(t *testing.T) {
	var n int
	var u uint64
	newSet := func() *flag.FlagSet {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(intflag.NewInt(&n, 32), "workers", "the `number` of workers")
		fs.Var(intflag.NewUint64(&u, 1), "seed", "the `number` seeding it")
		return fs
	}
	if err := newSet().Parse(nil); err != nil || n != 32 || u != 1 {
		t.Fatalf("no flags: %d, %d, %v; want the defaults 32 and 1", n, u, err)
	}
	if err := newSet().Parse([]string{"--workers", "010", "-seed=007"}); err != nil || n != 10 || u != 7 {
		t.Fatalf("--workers 010 -seed=007: %d, %d, %v; want 10 and 7", n, u, err)
	}
	err := newSet().Parse([]string{"--workers", "0x10"})
	if err == nil || !strings.Contains(err.Error(), "-workers: "+notInt) {
		t.Fatalf("--workers 0x10: %v, want an error naming the flag", err)
	}
	var help bytes.Buffer
	fs := newSet()
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, want := range []string{"-workers number", "(default 32)", "-seed number", "(default 1)"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, help.String())
		}
	}
}

// In a pflag FlagSet (cobra's): the same, and -h names the types as
// pflag's own int flags do.
func TestPflagFlagSet(t *testing.T) {
	var n int
	var u uint64
	newSet := func() *pflag.FlagSet {
		fs := pflag.NewFlagSet("cmd", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.VarP(intflag.NewInt(&n, 20), "count", "n", "number of requests")
		fs.Var(intflag.NewUint64(&u, 0), "seed", "random seed")
		return fs
	}
	if err := newSet().Parse([]string{"-n", "010", "--seed", "010"}); err != nil || n != 10 || u != 10 {
		t.Fatalf("-n 010 --seed 010: %d, %d, %v; want 10 and 10", n, u, err)
	}
	err := newSet().Parse([]string{"--count", "0x10"})
	if err == nil || !strings.Contains(err.Error(), "--count") || !strings.Contains(err.Error(), notInt) {
		t.Fatalf("--count 0x10: %v, want an error naming the flag", err)
	}
	usage := newSet().FlagUsages()
	for _, want := range []string{"-n, --count int", "(default 20)", "--seed uint"} {
		if !strings.Contains(usage, want) {
			t.Errorf("-h lacks %q:\n%s", want, usage)
		}
	}
	if strings.Contains(usage, "(default 0)") {
		t.Errorf("-h shows a zero default:\n%s", usage)
	}
}
