package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTargetsScript runs cmd/publisher/targets.sh end to end at a small
// scale (a few hundred requests a target, one run each, on ports of its
// own): it builds the binaries, starts NATS, the sandbox and the consumer
// in each set-up, runs bench and reads its figures. It checks that every
// target produced figures and a verdict, not that the targets were met:
// that depends on the machine's hour (README.md, "How to read the
// figures").
func TestTargetsScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and starts real processes")
	}
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	ports := freePorts(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "targets.sh")
	cmd.Env = append(os.Environ(),
		"RUNS=1", "N_RATIO=400", "N_SLOW=300", "N_OPEN=400", "N_DRAIN=600", "RATE=400", "LATENCY=20ms", "WORKERS=32",
		"NATS_PORT="+ports[0], "SANDBOX_PORT="+ports[1], "HTTP_PORT="+ports[2],
		"OUT="+filepath.Join(t.TempDir(), "targets"))
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("targets.sh: %v\n%s", err, out)
	}
	text := string(out)
	for _, re := range []string{
		`(?m)^Decode/typical \(µs\) at the start: \d+ \d+ \d+ $`,
		`(?m)^order-store commit \(µs\) at the start: \d+ \d+ \d+ $`,
		`(?m)^order-store commit \(µs\) at the end: \d+ \d+ \d+ $`,
		`(?m)^ratio  run 1: ratio 0\.\d+ \([0-9.]+/s against a relay of [0-9.]+/s\), CPU [0-9.]+ ms a result$`,
		`(?m)^slow   run 1: [0-9.]+/s, [0-9.]+% of [0-9.]+/s \(32 workers / \([0-9.]+ calls a result x 20ms\)\)`,
		`(?m)^open   run 1, claim: p99 [0-9.]+ ms, p50 [0-9.]+ ms, CPU [0-9.]+ ms a result; its goroutines waited at least [0-9.]+ ms on average to run \(GOMAXPROCS [0-9]+\); the bare relay's p99 [0-9.]+ and [0-9.]+ ms$`,
		`(?m)^open   run 1, no-claim: p99 [0-9.]+ ms, p50 [0-9.]+ ms, CPU [0-9.]+ ms a result; its goroutines waited at least [0-9.]+ ms on average to run \(GOMAXPROCS [0-9]+\); the bare relay's p99 [0-9.]+ and [0-9.]+ ms$`,
		`(?m)^drain  run 1: [0-9.]+/s, peak RSS \(VmHWM\) [0-9.]+ MiB, 0 redelivered$`,
		`(?m)^ratio  >= 0\.5: met in [01] of 1$`,
		`(?m)^slow   >= 90% of the bound: met in [01] of 1$`,
		`(?m)^open   p99 <= 5 ms: every order claimed met in [01] of 1, --jumdata-no-claim in [01] of 1 \(the bare relay at the same rate in [0-4] of 4\)$`,
		// 600 requests are far below the peak memory target.
		`(?m)^drain  peak < 256 MiB and 0 redelivered: met in 1 of 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("the output has no line matching %s:\n%s", re, text)
		}
	}
	// Every process it started is gone: the ports are free again.
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, time.Second); err == nil {
			c.Close()
			t.Errorf("127.0.0.1:%s still accepts connections after targets.sh ended", p)
		}
	}
	if strings.Count(text, "met in") != 8 {
		t.Errorf("want each of the four verdicts twice (as measured and in the summary):\n%s", text)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var ports []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
