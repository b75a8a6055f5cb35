package main

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestReliabilityShort runs the short version of the suite, every scenario,
// with the consumer built with the race detector: the CI run of the
// reliability suite. `go run ./cmd/reliability --full` is the long one.
func TestReliabilityShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes for about two minutes")
	}
	var out, errOut bytes.Buffer
	code := runMain([]string{"--race", "-v"}, &out, &errOut)
	t.Logf("\n%s", out.String())
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, s := range scenarios {
		if !strings.Contains(out.String(), s.name) {
			t.Errorf("no row for %s", s.name)
		}
	}
}

func TestHostileCorpusIsLargeAndVaried(t *testing.T) {
	c := hostileCorpus(rand.New(rand.NewPCG(1, 2)), "339902999999789113", "T", 4096)
	if len(c) < 100 {
		t.Fatalf("%d hostile messages, want at least 100", len(c))
	}
	kinds := map[expectation]int{}
	for _, h := range c {
		kinds[h.expect]++
	}
	if kinds[expectMalformed] < 20 || kinds[expectRejected] < 40 || kinds[expectIssued] != 1 {
		t.Fatalf("corpus mix %v", kinds)
	}
	// The check looks the orders up at the sandbox: every message made from
	// a valid request names its order, and no two messages name the same.
	owner := map[string]string{}
	for _, h := range c {
		switch {
		case h.expect == expectIssued && len(h.orderNos) != 1:
			t.Errorf("%q names %q, want its one order", h.name, h.orderNos)
		case h.expect == expectRejected && len(h.orderNos) == 0:
			t.Errorf("%q names no order", h.name)
		}
		for _, no := range h.orderNos {
			if other, ok := owner[no]; ok {
				t.Errorf("%q and %q both name %s", other, h.name, no)
			}
			owner[no] = h.name
		}
	}
	if len(owner) < kinds[expectRejected]+kinds[expectIssued] {
		t.Errorf("%d orders named", len(owner))
	}
	for name, want := range map[string][]string{
		"orderNo mismatch":         {"T-H", "OTHER"},
		"orderNo of 21 characters": {"T-H", strings.Repeat("A", 21)},
		"not a request \"{\"":      nil,
		"truncated at 9%":          {"T-H"},
	} {
		var got []string
		for _, h := range c {
			if h.name == name {
				got = h.orderNos
			}
		}
		if len(got) != len(want) {
			t.Errorf("%q names %q, want %d orders", name, got, len(want))
			continue
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%q names %q, want %q", name, got, want)
			}
		}
	}
}

func TestFaultKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"none", []string{"--latency", "5ms", "--nuonuo-token-call-limit", "-1"}, nil},
		{"every flag", []string{"--fault-5xx", "0.1", "--fault-reset", "0.1", "--fault-drop", "0.1", "--fault-garbage", "0.1",
			"--fault-spike-rate", "0.02", "--fault-spike", "3s", "--rate-limit", "60", "--face-auth", "91350100M000100Y43"},
			[]string{"drop", "error_5xx", "face_auth", "garbage", "latency_spike", "rate_limited", "reset"}},
		{"zero and empty", []string{"--fault-5xx", "0", "--rate-limit=0.0", "--face-auth", ""}, nil},
		{"inline and one dash", []string{"--fault-drop=0.05", "-fault-5xx", "0.1", "-rate-limit=5"}, []string{"drop", "error_5xx", "rate_limited"}},
		{"twice", []string{"--fault-drop", "0.05", "--fault-drop", "0.1"}, []string{"drop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := faultKinds(tc.args); !slices.Equal(got, tc.want) {
				t.Errorf("faultKinds(%q) = %q, want %q", tc.args, got, tc.want)
			}
		})
	}
	// The provider-faults scenario's four faults are each checked.
	for _, sc := range scenarios {
		want := []string{"drop", "error_5xx", "latency_spike", "rate_limited"}
		if got := faultKinds(sc.cfg(shortSizes).sandboxArgs); sc.name == "provider-faults" && !slices.Equal(got, want) {
			t.Errorf("provider-faults configures %q, want %q", got, want)
		}
	}
}

func TestOptions(t *testing.T) {
	var errOut bytes.Buffer
	if _, err := parseOptions([]string{"--only", "nope"}, &errOut); err == nil {
		t.Fatal("unknown scenario accepted")
	}
	o, err := parseOptions([]string{"--only", "sigkill,hostile", "--full"}, &errOut)
	if err != nil || !o.only["sigkill"] || !o.only["hostile"] || !o.full {
		t.Fatalf("%+v %v", o, err)
	}
}

// --orders and --seed are read in base 10, as the consumer's numbers are:
// flag.IntVar would read --orders 010 as octal 8 and 0x10 as 16. A hex
// number is refused, naming the flag.
func TestIntegerOptionsAreDecimal(t *testing.T) {
	var errOut bytes.Buffer
	o, err := parseOptions([]string{"--orders", "010", "--seed", "010"}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if o.orders != 10 || o.seed != 10 {
		t.Errorf("--orders 010 --seed 010: orders %d, seed %d; want 10 and 10", o.orders, o.seed)
	}
	for _, name := range []string{"orders", "seed"} {
		_, err := parseOptions([]string{"--" + name, "0x10"}, &errOut)
		if err == nil || !strings.Contains(err.Error(), "-"+name+":") {
			t.Errorf("--%s 0x10: error %v, want one naming the flag", name, err)
		}
	}
}

// TestNumericOptionsAreChecked: a number of orders below 1 is refused,
// naming the flag, rather than quietly taken for the default (300, or 5000
// with --full), which is what leaving --orders out gives; a negative seed
// is refused too (every uint64 is a seed, 0 included).
func TestNumericOptionsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"--orders", "-1"},
		{"--orders", "0"},
		{"--orders", "00"},
		{"--full", "--orders", "-5000"},
		{"--seed", "-1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var errOut bytes.Buffer
			o, err := parseOptions(args, &errOut)
			if err == nil {
				t.Fatalf("accepted: %+v", o)
			}
			if name := args[len(args)-2]; !strings.Contains(err.Error(), name[1:]) {
				t.Errorf("error %v, want one naming %s", err, name)
			}
		})
	}
	for _, tc := range []struct {
		args         []string
		orders, seed int
	}{
		{nil, 0, 1}, // 0: the default of the mode, which runSuite picks
		{[]string{"--orders", "1", "--seed", "0"}, 1, 0},
		{[]string{"--full", "--orders", "7"}, 7, 1},
	} {
		var errOut bytes.Buffer
		o, err := parseOptions(tc.args, &errOut)
		if err != nil || o.orders != tc.orders || o.seed != uint64(tc.seed) {
			t.Errorf("%q: %+v, %v; want orders %d, seed %d", tc.args, o, err, tc.orders, tc.seed)
		}
	}
}

// TestHelp: -h and --help print the flags and exit 0, as the consumer's and
// the sandbox's do, on standard error as theirs (the flag package's), and
// run nothing; a bad flag is still a usage error, exit 2.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		var out, errOut bytes.Buffer
		if code := runMain([]string{arg}, &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d, want 0\n%s", arg, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), "-orders number") || strings.Contains(errOut.String(), "help requested") {
			t.Errorf("%s: standard error is not the flags' help:\n%s", arg, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("%s: standard output %q, want nothing", arg, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := runMain([]string{"--no-such-flag"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "no-such-flag") {
		t.Errorf("--no-such-flag: exit %d, want 2 naming it\n%s", code, errOut.String())
	}
}
