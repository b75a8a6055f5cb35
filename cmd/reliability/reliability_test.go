package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
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
// number is refused, naming the flag. (disk-full alone takes as few as 8
// orders.)
func TestIntegerOptionsAreDecimal(t *testing.T) {
	var errOut bytes.Buffer
	o, err := parseOptions([]string{"--only", "disk-full", "--orders", "010", "--seed", "010"}, &errOut)
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
// with --full), which is what leaving --orders out gives (a number below a
// scenario's minimum is refused too: TestOrdersBelowAScenariosMinimumAreRefused);
// a negative seed is refused too (every uint64 is a seed, 0 included).
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
		{[]string{"--only", "disk-full", "--orders", "8", "--seed", "0"}, 8, 0},
		{[]string{"--full", "--only", "disk-full", "--orders", "8"}, 8, 1},
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

// TestOrdersBelowAScenariosMinimumAreRefused: each scenario divides
// --orders or spreads it over its faults, and below its minimum it tests
// nothing (hostile with no valid order among the corpus, sigkill with no
// order in flight at a kill, provider-faults without the faults it must
// inject). A number below the minimum of a scenario that would run is
// refused, naming the flag, the scenario and its minimum; --only lets a
// smaller number through for the scenarios whose minimum it meets.
func TestOrdersBelowAScenariosMinimumAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in the error; nil: accepted
	}{
		{[]string{"--orders", "1"}, []string{"-orders 1", "provider-faults", "at least 100"}},
		{[]string{"--orders", "99"}, []string{"-orders 99", "provider-faults", "at least 100"}},
		{[]string{"--orders", "100"}, nil},
		{[]string{"--full", "--orders", "100"}, nil},
		{[]string{"--only", "sigkill", "--orders", "15"}, []string{"-orders 15", "sigkill", "at least 16"}},
		{[]string{"--only", "sigkill", "--orders", "16"}, nil},
		{[]string{"--full", "--only", "sigkill", "--orders", "23"}, []string{"-orders 23", "sigkill", "at least 24"}},
		{[]string{"--full", "--only", "sigkill", "--orders", "24"}, nil},
		{[]string{"--only", "nats-restart", "--orders", "11"}, []string{"-orders 11", "nats-restart", "at least 12"}},
		{[]string{"--full", "--only", "nats-restart", "--orders", "17"}, []string{"nats-restart", "at least 18"}},
		{[]string{"--only", "hostile", "--orders", "11"}, []string{"-orders 11", "hostile", "at least 12"}},
		{[]string{"--only", "hostile", "--orders", "12"}, nil},
		{[]string{"--only", "same-order", "--orders", "11"}, []string{"same-order", "at least 12"}},
		{[]string{"--only", "disk-full", "--orders", "7"}, []string{"-orders 7", "disk-full", "at least 8"}},
		{[]string{"--only", "disk-full", "--orders", "8"}, nil},
		{[]string{"--only", "disk-full,provider-faults", "--orders", "8"}, []string{"provider-faults", "at least 100"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var errOut bytes.Buffer
			o, err := parseOptions(tc.args, &errOut)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && err == nil:
				t.Fatalf("accepted: %+v", o)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to say %q", err, w)
				}
			}
		})
	}
}

// TestEveryScenarioRunsAtTheDefaults: the default numbers of orders, 300
// and 5000 with --full, meet every scenario's minimum, and the flag's help
// gives each minimum.
func TestEveryScenarioRunsAtTheDefaults(t *testing.T) {
	for _, sc := range scenarios {
		if m := sc.minOrders(shortSizes); m < 1 || m > shortSizes.orders {
			t.Errorf("%s needs %d orders; the default is %d", sc.name, m, shortSizes.orders)
		}
		if m := sc.minOrders(fullSizes); m < 1 || m > fullSizes.orders {
			t.Errorf("%s needs %d orders with --full; the default is %d", sc.name, m, fullSizes.orders)
		}
	}
	for _, args := range [][]string{nil, {"--full"}} {
		var errOut bytes.Buffer
		if _, err := parseOptions(args, &errOut); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
	var out, errOut bytes.Buffer
	runMain([]string{"-h"}, &out, &errOut)
	for _, want := range []string{"sigkill 16 (24 with --full)", "nats-restart 12 (18 with --full)", "provider-faults 100", "hostile 12", "same-order 12", "disk-full 8", "refused rather than raised"} {
		if !strings.Contains(strings.Join(strings.Fields(errOut.String()), " "), want) {
			t.Errorf("the help does not say %q:\n%s", want, errOut.String())
		}
	}
}

// TestProviderFaultsMinimumMeetsEveryFault: provider-faults fails unless
// the sandbox injected each kind of fault it was given. The generator's
// decisions depend on the seed and the order of the calls only, whichever
// call each is, and every order makes at least one call: so as many calls
// as the scenario's minimum number of orders, to a real sandbox with the
// scenario's seed and rates, must meet every fault the generator draws.
// (The rate limit depends on timing, not on the generator.)
func TestProviderFaultsMinimumMeetsEveryFault(t *testing.T) {
	var args []string
	for _, sc := range scenarios {
		if sc.name == "provider-faults" {
			args = sc.cfg(shortSizes).sandboxArgs
		}
	}
	arg := func(name string) string {
		t.Helper()
		i := slices.Index(args, name)
		if i < 0 || i+1 == len(args) {
			t.Fatalf("provider-faults gives the sandbox no %s: %q", name, args)
		}
		return args[i+1]
	}
	number := func(name string) float64 {
		t.Helper()
		f, err := strconv.ParseFloat(arg(name), 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return f
	}
	seed, err := strconv.ParseUint(arg("--fault-seed"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The spike's latency is left out: the sandbox counts a spike before
	// it sleeps, and this test counts, not waits.
	sb := sandbox.New(sandbox.Config{Faults: sandbox.Faults{Seed: seed, Error5xx: number("--fault-5xx"), Drop: number("--fault-drop"), SpikeRate: number("--fault-spike-rate")}})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	client := &http.Client{Timeout: 10 * time.Second}
	drawn := []string{"drop", "error_5xx", "latency_spike"}
	met := func() bool {
		f := sb.Stats().Faults
		for _, kind := range drawn {
			if f[kind] == 0 {
				return false
			}
		}
		return true
	}
	calls := 0
	for ; calls < providerFaultsMinOrders && !met(); calls++ {
		resp, err := client.Post(srv.URL+"/tax/v3/makeout/blue-invoice/submit", "application/x-www-form-urlencoded", strings.NewReader("nsrsbh="+jumdataSellers[0]))
		if err == nil { // a drop hangs up
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	if !met() {
		t.Fatalf("%d calls met the faults %v, want each of %q at least once: provider-faults needs more orders", calls, sb.Stats().Faults, drawn)
	}
	t.Logf("every drawn fault met by call %d of at most %d", calls, providerFaultsMinOrders)
}
