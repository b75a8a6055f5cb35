package main

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	rtrace "runtime/trace"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/exp/trace"
)

// TestReadTrace reads the trace of a process with GOMAXPROCS 1 in which one
// goroutine sleeps in a system call (nanosleep, which keeps the P as an
// fdatasync does) while others are runnable: the time they waited with
// none running is found, and put on the sleeper.
func TestReadTrace(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "trace.out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestTraceHelperProcess$")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "BENCH_TRACE_HELPER="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s, err := readTrace(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// A trace cut short, as fetchTrace's bound cuts one, is an error.
	if _, err := readTrace(bytes.NewReader(b[:len(b)/2])); err == nil {
		t.Errorf("a trace cut at %d of its %d bytes read without an error", len(b)/2, len(b))
	}
	if s.span < 100*time.Millisecond || s.running <= 0 || s.running > s.span {
		t.Errorf("span %s, running %s: want a span of at least 100ms and at most one goroutine running (GOMAXPROCS 1)", s.span, s.running)
	}
	if len(s.waits) == 0 || s.runnable <= 0 || s.stalled <= 0 || s.stalled > s.runnable {
		t.Errorf("%d waits, runnable %s, stalled %s: want waits, and stalled time within the runnable time", len(s.waits), s.runnable, s.stalled)
	}
	var sleeper time.Duration
	for site, d := range s.stalledBy {
		if strings.HasSuffix(site, ".traceSleeper") {
			sleeper += d
		}
	}
	if sleeper <= 0 {
		t.Errorf("no stalled time on the sleeper's nanosleep: %v", s.stalledBy)
	}
	line := s.String()
	if !regexp.MustCompile(`^goroutines running (0\.[0-9]{2}|1\.00) on average; some goroutine runnable [0-9]+% of the time \(waits p50 [0-9.]+ ms, p99 [0-9.]+ ms\); runnable and none running [0-9]+% of the time`).MatchString(line) {
		t.Errorf("summary %q", line)
	}
}

// TestTraceHelperProcess is TestReadTrace's traced process: with
// BENCH_TRACE_HELPER set it writes a trace there and exits.
func TestTraceHelperProcess(t *testing.T) {
	out := os.Getenv("BENCH_TRACE_HELPER")
	if out == "" {
		t.Skip("the process TestReadTrace traces")
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtrace.Start(f); err != nil {
		t.Fatal(err)
	}
	stop := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				runtime.Gosched()
			}
		})
	}
	wg.Go(func() { traceSleeper(stop) })
	wg.Wait()
	rtrace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// traceSleeper sleeps 2 ms at a time in a system call until stop.
func traceSleeper(stop time.Time) {
	for time.Now().Before(stop) {
		ts := syscall.NsecToTimespec(int64(2 * time.Millisecond))
		_ = syscall.Nanosleep(&ts, nil)
	}
}

// TestBenchTrace: with --trace, bench records the consumer's process (here
// the test's own, through net/http/pprof) during an open-loop run and
// prints what the trace says.
func TestBenchTrace(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	out, errOut, code := c.cli(t, "bench", "-n", "40", "--rate", "100", "--timeout", "2m", "--trace", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	re := `(?m)^pipeline: consumer trace \(200ms from 100ms into the run, ` + regexp.QuoteMeta(srv.URL) + `\): goroutines running [0-9.]+ on average; ` +
		`some goroutine runnable [0-9]+% of the time \(waits p50 [0-9.]+ ms, p99 [0-9.]+ ms\); runnable and none running [0-9]+% of the time`
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("no trace line:\n%s", out)
	}
}

// TestTraceAccountGenerations: the trace announces every goroutine's state
// again at each of its generations (from == to; with Go 1.26 just before
// its next transition): a runnable wait and a system call go on through
// the announcement, which is no wait of its own.
func TestTraceAccountGenerations(t *testing.T) {
	a := newTraceAccount()
	ev := func(at trace.Time, id trace.GoID, from, to trace.GoState) {
		a.advance(at)
		a.transition(at, id, 0, from, to, func() string { return "go.etcd.io/bbolt.fdatasync" })
	}
	ev(100, 1, trace.GoUndetermined, trace.GoWaiting)
	ev(100, 2, trace.GoUndetermined, trace.GoRunning)
	ev(1000, 1, trace.GoWaiting, trace.GoRunnable)
	ev(2000, 2, trace.GoRunning, trace.GoSyscall)
	// A new generation.
	ev(5000, 1, trace.GoRunnable, trace.GoRunnable)
	ev(5000, 2, trace.GoSyscall, trace.GoSyscall)
	ev(9000, 2, trace.GoSyscall, trace.GoRunning)
	ev(9000, 2, trace.GoRunning, trace.GoWaiting)
	ev(9000, 1, trace.GoRunnable, trace.GoRunning)
	ev(10000, 1, trace.GoRunning, trace.GoWaiting)
	s := a.summary()
	if !slices.Equal(s.waits, []time.Duration{8000}) {
		t.Errorf("waits %v, want one of 8µs", s.waits)
	}
	if s.runnable != 8000 || s.stalled != 7000 {
		t.Errorf("runnable %s, stalled %s: want 8µs and 7µs", s.runnable, s.stalled)
	}
	if want := map[string]time.Duration{"go.etcd.io/bbolt.fdatasync": 7000}; !maps.Equal(s.stalledBy, want) {
		t.Errorf("stalled by %v, want %v", s.stalledBy, want)
	}
	if s.span != 9900 || s.running != 2900 {
		t.Errorf("span %s, running %s: want 9.9µs and 2.9µs", s.span, s.running)
	}
}

// TestBenchTraceClosedLoop: a closed-loop run of a few requests is over
// before the trace's 1s delay: bench does not then record the idle consumer
// as if it were the run (nor wait for it), and says so; a run that ends
// during the trace is said to. Not parallel: a run slower than 1s would
// trace this process while TestBenchTrace does, and a process has one
// tracer.
func TestBenchTraceClosedLoop(t *testing.T) {
	c := startConsumer(t, consumerOptions{pipeline: fast})
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	out, errOut, code := c.cli(t, "bench", "-n", "20", "--timeout", "2m", "--trace", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	re := `(?m)^pipeline: consumer trace \(` + regexp.QuoteMeta(srv.URL) + `\): none, the run ended before the trace was to begin 1s into it$|` +
		`(?m)^pipeline: consumer trace \(3s from 1s into the run, .*\(the run ended [0-9.]+m?s into the trace: the rest is the consumer after it\)$`
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("no trace line, or one that does not say the run was over:\n%s", out)
	}
}

// TestWaitQuantile: the waits' quantiles are nearest ranks, as bench's
// latency percentiles are: of 100 waits the 99th and of 10 the 10th for
// p99, and none without waits.
func TestWaitQuantile(t *testing.T) {
	waits := func(n int) *traceSummary {
		s := &traceSummary{}
		for i := 1; i <= n; i++ {
			s.waits = append(s.waits, time.Duration(i)*time.Millisecond)
		}
		return s
	}
	for _, tc := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{0, 0.99, 0},
		{1, 0.5, time.Millisecond},
		{10, 0.99, 10 * time.Millisecond},
		{10, 0.5, 5 * time.Millisecond},
		{100, 0.99, 99 * time.Millisecond},
		{200, 0.99, 198 * time.Millisecond},
	} {
		if got := waits(tc.n).waitQuantile(tc.q); got != tc.want {
			t.Errorf("%d waits: quantile %g is %s, want %s", tc.n, tc.q, got, tc.want)
		}
	}
}

// TestTraceAccountStolenP: a system call whose P was taken from it (sysmon's
// retake, which gives the P to another goroutine) keeps nobody from running
// after that, and the stall that follows is put on the system calls that
// still hold their P only.
func TestTraceAccountStolenP(t *testing.T) {
	a := newTraceAccount()
	sites := map[trace.GoID]string{2: "os.(*File).Read", 3: "go.etcd.io/bbolt.fdatasync"}
	ev := func(at trace.Time, id trace.GoID, from, to trace.GoState) {
		a.advance(at)
		a.transition(at, id, 0, from, to, func() string { return sites[id] })
	}
	ev(100, 1, trace.GoUndetermined, trace.GoWaiting)
	ev(100, 2, trace.GoUndetermined, trace.GoRunning)
	ev(100, 3, trace.GoUndetermined, trace.GoRunnable)
	ev(1000, 1, trace.GoWaiting, trace.GoRunnable)
	ev(2000, 2, trace.GoRunning, trace.GoSyscall)
	a.advance(3000)
	a.stolen(0) // P 0 taken from goroutine 2, still in its read
	ev(3000, 3, trace.GoRunnable, trace.GoRunning)
	ev(4000, 3, trace.GoRunning, trace.GoSyscall)
	ev(6000, 3, trace.GoSyscall, trace.GoRunning)
	ev(6000, 3, trace.GoRunning, trace.GoWaiting)
	ev(6000, 1, trace.GoRunnable, trace.GoRunning)
	s := a.summary()
	want := map[string]time.Duration{"os.(*File).Read": 1000, "go.etcd.io/bbolt.fdatasync": 2000}
	if s.stalled != 3000 || !maps.Equal(s.stalledBy, want) {
		t.Errorf("stalled %s by %v, want 3µs by %v", s.stalled, s.stalledBy, want)
	}
}
