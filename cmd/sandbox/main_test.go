package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// Every integer flag of the sandbox is read in base 10, as the consumer's
// are: flag.IntVar would read --nuonuo-pending-queries 010 as octal 8 and
// 0x10 as 16. A hex number is refused, naming the flag.
func TestIntegerFlagsAreDecimal(t *testing.T) {
	seen := 0
	flagSet(&settings{}).VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			t.Errorf("--%s: a value without Get", f.Name)
			return
		}
		switch g.Get().(type) {
		case int, int64, uint, uint64:
		default:
			return
		}
		seen++
		t.Run(f.Name, func(t *testing.T) {
			fs := flagSet(&settings{})
			fs.SetOutput(io.Discard)
			if err := fs.Parse([]string{"--" + f.Name, "010"}); err != nil {
				t.Fatal(err)
			}
			if got := fs.Lookup(f.Name).Value.String(); got != "10" {
				t.Errorf("--%s 010 = %s, want 10", f.Name, got)
			}
			fs = flagSet(&settings{})
			fs.SetOutput(io.Discard)
			err := fs.Parse([]string{"--" + f.Name, "0x10"})
			if err == nil || !strings.Contains(err.Error(), "-"+f.Name+":") {
				t.Errorf("--%s 0x10: error %v, want one naming the flag", f.Name, err)
			}
		})
	})
	if seen < 7 {
		t.Errorf("%d integer flags, want the 7 the sandbox has at least", seen)
	}
	// The value reaches the sandbox's configuration.
	s, err := parseFlags([]string{"--nuonuo-pending-queries", "010", "--fault-seed", "010"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Nuonuo.PendingQueries != 10 || s.cfg.Faults.Seed != 10 {
		t.Errorf("pending queries %d, fault seed %d; want 10 and 10", s.cfg.Nuonuo.PendingQueries, s.cfg.Faults.Seed)
	}
}

// --fault-retry-after reaches the 503 fault's Retry-After; a negative one
// is refused, naming the flag.
func TestFaultRetryAfterFlag(t *testing.T) {
	s, err := parseFlags([]string{"--fault-5xx", "1", "--fault-retry-after", "7s"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Faults.RetryAfter != 7*time.Second {
		t.Errorf("Faults.RetryAfter %s, want 7s", s.cfg.Faults.RetryAfter)
	}
	if _, err := parseFlags([]string{"--fault-retry-after", "-1s"}); err == nil || !strings.Contains(err.Error(), "--fault-retry-after") {
		t.Errorf("--fault-retry-after -1s: error %v, want one naming the flag", err)
	}
}
