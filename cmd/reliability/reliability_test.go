package main

import (
	"bytes"
	"math/rand/v2"
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
