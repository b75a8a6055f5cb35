package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	seq := func(n int) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(i+1) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name string
		vals []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one value", seq(1), 99, time.Millisecond},
		{"median of 100 is the 50th", seq(100), 50, 50 * time.Millisecond},
		{"p99 of 100 is the 99th, not the 100th", seq(100), 99, 99 * time.Millisecond},
		{"p90 of 10", seq(10), 90, 9 * time.Millisecond},
		{"p99 of 10 is the largest", seq(10), 99, 10 * time.Millisecond},
		{"p50 of 3 rounds the rank up", seq(3), 50, 2 * time.Millisecond},
		{"p50 of 4", seq(4), 50, 2 * time.Millisecond},
		{"p100 is the max", seq(7), 100, 7 * time.Millisecond},
		{"p99.9 of 1000", seq(1000), 99.9, 999 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.vals, tc.p); got != tc.want {
				t.Errorf("percentile(%d values, %g) = %s, want %s", len(tc.vals), tc.p, got, tc.want)
			}
		})
	}
	// latencyOf sorts first.
	l := latencyOf([]time.Duration{5, 1, 4, 2, 3})
	if l.n != 5 || l.p50 != 3 || l.p90 != 5 || l.max != 5 {
		t.Errorf("latencyOf: %+v", l)
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		text string
		want map[string]float64
	}{
		{"both", "# HELP process_resident_memory_bytes x\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 1.2345e+07\ninvoice_process_peak_resident_memory_bytes 2e+07\n",
			map[string]float64{metricRSS: 1.2345e7, metricPeakRSS: 2e7}},
		{"with a timestamp", "process_resident_memory_bytes 1024 1700000000000\n", map[string]float64{metricRSS: 1024}},
		{"prefix of another name", "process_resident_memory_bytes_total 5\nprocess_resident_memory_bytes_x{a=\"b\"} 6\n", map[string]float64{}},
		{"series summed over their labels", "invoice_processing_seconds_sum{event=\"issued\"} 1.5\ninvoice_processing_seconds_sum{event=\"a } b\"} 0.25 1700000000000\n",
			map[string]float64{metricProcessingSum: 1.75}},
		{"unparsable", "process_resident_memory_bytes lots\n", map[string]float64{}},
		{"none", "go_goroutines 12\n", map[string]float64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMetrics(strings.NewReader(tc.text), metricRSS, metricPeakRSS, metricProcessingSum)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %g, want %g", k, got[k], v)
				}
			}
		})
	}
}

// TestBenchRequests checks the generated requests: valid, order numbers
// unique, at most 20 characters, found again from the result, and the same
// bodies for the same seed and run.
func TestBenchRequests(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 10, 15, 0, 0, cst)
	run := benchRunTag(now)
	if len(run) != 7 || run == benchRunTag(now.Add(time.Millisecond)) {
		t.Fatalf("run tag %q", run)
	}
	const n = benchTemplates + 300 // some requests reuse a template
	var sb strings.Builder
	gen, err := newBenchGen(3, run, []string{demoNuonuo, demoJumdata}, n, &sb)
	if err != nil {
		t.Fatalf("%v\n%s", err, sb.String())
	}
	again, err := newBenchGen(3, run, []string{demoNuonuo, demoJumdata}, n, &sb)
	if err != nil {
		t.Fatal(err)
	}
	subj := schemas.Subjects{}
	seen := map[string]bool{}
	sellers := map[string]int{}
	for _, i := range []int{0, 1, 2, benchTemplates - 1, benchTemplates, benchTemplates + 1, n - 1} {
		m := gen.msg(subj, i)
		d, err := v.Decode(m.Data, "")
		if err != nil || !d.Valid() {
			t.Fatalf("request %d: %v %v\n%s", i, err, d.Violations, m.Data)
		}
		no := d.OrderNo
		if len(no) > 20 || seen[no] || no != gen.orderNo(i) || d.Request.Order.OrderNo != no {
			t.Errorf("request %d: order number %q (order %q), want %q, unique, at most 20 characters", i, no, d.Request.Order.OrderNo, gen.orderNo(i))
		}
		seen[no] = true
		if k, ok := gen.index(no); !ok || k != i {
			t.Errorf("index(%q) = %d, %v; want %d", no, k, ok, i)
		}
		if d.SellerTaxNum != gen.seller(i) || m.Subject != subj.Request(d.SellerTaxNum) || m.Header.Get(jetstream.MsgIDHeader) != d.SellerTaxNum+":"+no {
			t.Errorf("request %d: seller %s, subject %s, id %s", i, d.SellerTaxNum, m.Subject, m.Header.Get(jetstream.MsgIDHeader))
		}
		sellers[d.SellerTaxNum]++
		if string(again.msg(subj, i).Data) != string(m.Data) {
			t.Errorf("request %d differs for the same seed and run", i)
		}
	}
	if len(sellers) != 2 {
		t.Errorf("sellers %v, want both", sellers)
	}
	for _, no := range []string{"", "B" + run + "-", "B" + run + "-000000x", "B" + run + "-0000000", "BOTHER00-0000001", "B" + run + "-00000001"} {
		if k, ok := gen.index(no); ok {
			t.Errorf("index(%q) = %d, want not one of the run's", no, k)
		}
	}
	one, err := newBenchGen(3, run, []string{demoJumdata}, 10, &sb)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if one.seller(i) != demoJumdata {
			t.Fatalf("--seller jumdata: request %d for %s", i, one.seller(i))
		}
	}
}

// TestBenchSeedRepeatsTheBodies: two runs with the same --seed, made as
// runBench makes them (the run tag from the clock, here a day and a second
// apart), publish the same bodies byte for byte but for their order
// numbers, which differ: nothing else in them comes from the clock.
func TestBenchSeedRepeatsTheBodies(t *testing.T) {
	t.Parallel()
	sellers := []string{demoNuonuo, demoJumdata}
	now := time.Date(2026, 11, 20, 10, 15, 0, 0, cst)
	later := now.Add(25*time.Hour + time.Second)
	const n = 50
	a, err := newBenchGen(0, benchRunTag(now), sellers, n, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBenchGen(0, benchRunTag(later), sellers, n, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		x, y := a.msg(schemas.Subjects{}, i), b.msg(schemas.Subjects{}, i)
		if a.orderNo(i) == b.orderNo(i) {
			t.Fatalf("request %d: both runs have order number %s", i, a.orderNo(i))
		}
		xs, ys := strings.ReplaceAll(string(x.Data), a.orderNo(i), "#"), strings.ReplaceAll(string(y.Data), b.orderNo(i), "#")
		if xs != ys {
			t.Fatalf("request %d differs between two runs with --seed 0 beyond its order number:\n%s\n%s", i, xs, ys)
		}
	}
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no requests", []string{"-n", "0"}},
		{"too many", []string{"-n", "10000000"}},
		{"rate and backlog", []string{"--rate", "10", "--backlog"}},
		{"negative rate", []string{"--rate", "-1"}},
		{"unknown seller", []string{"--seller", "acme"}},
		{"no window", []string{"--window", "0"}},
		{"no workers", []string{"--workers", "0"}},
		{"metrics not a URL", []string{"--metrics", "127.0.0.1:8080"}},
		{"trace not a URL", []string{"--trace", "127.0.0.1:6060"}},
		{"arguments", []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--server", unreachableURL(t), "bench"}, tc.args...)
			if out, errOut, code := runCLI(t, "", args...); code != exitUsage {
				t.Errorf("exit %d, want %d\n%s%s", code, exitUsage, out, errOut)
			}
		})
	}
	if _, errOut, code := runCLI(t, "", "--server", unreachableURL(t), "bench", "-n", "5"); code != exitTrouble || !strings.Contains(errOut, "cannot reach NATS") {
		t.Errorf("unreachable server: exit %d\n%s", code, errOut)
	}
}

// benchLine is the parsed last line of bench.
type benchLine struct {
	throughput, p50, p99, baseline, ratio float64 // -1: "-"
}

var benchLineRE = regexp.MustCompile(`^throughput=(-|[0-9]+\.[0-9]/s) p50=(-|[0-9]+\.[0-9]{2}) p99=(-|[0-9]+\.[0-9]{2}) baseline=(-|[0-9]+\.[0-9]/s) ratio=(-|[0-9]+\.[0-9]{3})$`)

// parseBenchLine parses the last line of out.
func parseBenchLine(t *testing.T, out string) benchLine {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	m := benchLineRE.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q is not the machine-readable line\n%s", last, out)
	}
	num := func(s string) float64 {
		if s == "-" {
			return -1
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return benchLine{num(m[1]), num(m[2]), num(m[3]), num(m[4]), num(m[5])}
}

func TestBenchEndToEnd(t *testing.T) {
	t.Parallel()
	const n = 200
	for _, tc := range []struct {
		name     string
		args     []string
		baseline bool
		want     []string
		pattern  string // a regular expression the output must match, when set
	}{
		{"closed loop", nil, false, []string{"closed loop, at most 256 publishes"}, ""},
		{"open loop", []string{"--rate", "400"}, false, []string{"open loop at 400/s"},
			`/s; behind the schedule p50 [0-9]+\.[0-9]{2}, p99 [0-9]+\.[0-9]{2}, at most [0-9]+\.[0-9]{2} ms\n`},
		{"baseline", []string{"--baseline", "--workers", "8", "--window", "32"}, true,
			[]string{"baseline: a bare relay with 8 workers", "baseline: results: issued 200", "baseline: published 200 of 200",
				"baseline-after: a bare relay with 8 workers", "baseline-after: results: issued 200", "baseline-after: published 200 of 200",
				"before the pipeline and", "the ratio uses their mean"}, ""},
		{"backlog", []string{"--backlog"}, false, []string{"waiting for their results", "from the first result to the last result"}, ""},
		{"one seller", []string{"--seller", "jumdata"}, false, []string{"issue requests for " + jumdataSeller + "\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := startConsumer(t, consumerOptions{pipeline: fast})
			args := append([]string{"bench", "-n", strconv.Itoa(n), "--timeout", "2m"}, tc.args...)
			out, errOut, code := c.cli(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, w := range append(tc.want, "pipeline: published 200 of 200 (duplicates 0, failed 0, not published 0)", "pipeline: results: issued 200\n",
				"deliveries for 200 requests") {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.pattern != "" && !regexp.MustCompile(tc.pattern).MatchString(out) {
				t.Errorf("output does not match %s:\n%s", tc.pattern, out)
			}
			// Every request got its result, as the consumer published it
			// (the test's own reader of the results may be a little behind
			// bench's).
			orders := func() int {
				c.mu.Lock()
				defer c.mu.Unlock()
				return len(c.all)
			}
			waitFor(t, "the results of every order in the test's reader", 10*time.Second, func() bool { return orders() >= n })
			c.mu.Lock()
			for k, rs := range c.all {
				if last := rs[len(rs)-1]; last.Status != schemas.StatusIssued {
					t.Errorf("%s: %s", k, last.Status)
				}
			}
			if len(c.all) != n {
				t.Errorf("the consumer published results for %d orders, want %d", len(c.all), n)
			}
			c.mu.Unlock()

			l := parseBenchLine(t, out)
			if l.throughput <= 0 || l.p50 < 0 || l.p99 < l.p50 {
				t.Errorf("figures %+v", l)
			}
			if !tc.baseline {
				if l.baseline != -1 || l.ratio != -1 {
					t.Errorf("without --baseline: baseline %g, ratio %g; want -", l.baseline, l.ratio)
				}
				return
			}
			if l.baseline <= 0 || l.ratio <= 0 {
				t.Fatalf("baseline %g, ratio %g", l.baseline, l.ratio)
			}
			// The printed figures are rounded: ratio lies between the
			// quotients of their bounds.
			lo, hi := (l.throughput-0.05)/(l.baseline+0.05), (l.throughput+0.05)/(l.baseline-0.05)
			if l.ratio < math.Floor(lo*1000)/1000 || l.ratio > math.Ceil(hi*1000)/1000 {
				t.Errorf("ratio %g, but throughput %g / baseline %g = %g", l.ratio, l.throughput, l.baseline, l.throughput/l.baseline)
			}
			// baseline is the mean of the relay runs before and after the
			// pipeline, which ran between them.
			if i, j := strings.Index(out, "pipeline: results:"), strings.Index(out, "baseline-after: a bare relay"); i < 0 || j < i {
				t.Errorf("the second relay run does not follow the pipeline:\n%s", out)
			}
			mm := regexp.MustCompile(`the relay did ([0-9.]+)/s before the pipeline and ([0-9.]+)/s after it; the ratio uses their mean, ([0-9.]+)/s`).FindStringSubmatch(out)
			if mm == nil {
				t.Fatalf("no line with both relay runs:\n%s", out)
			}
			first, _ := strconv.ParseFloat(mm[1], 64)
			second, _ := strconv.ParseFloat(mm[2], 64)
			mean, _ := strconv.ParseFloat(mm[3], 64)
			if math.Abs(mean-l.baseline) > 0.05 || math.Abs((first+second)/2-mean) > 0.1 {
				t.Errorf("relay runs %g and %g, mean %g, baseline %g", first, second, mean, l.baseline)
			}
			// The relay's streams are gone.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			for _, name := range []string{relayRequestStream, relayResultStream} {
				if _, err := c.js.Stream(ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
					t.Errorf("stream %s after the run: %v", name, err)
				}
			}
		})
	}
}

// TestBenchMetrics reads the memory figures from a /metrics endpoint that
// serves this process's real process collector and a peak gauge, and the
// breakdown from the consumer's own metrics.
func TestBenchMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := startConsumer(t, consumerOptions{pipeline: fast, metrics: reg})
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: metricPeakRSS, Help: "test"}, func() float64 { return 3 << 30 }))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	out, errOut, code := c.cli(t, "bench", "-n", "60", "--timeout", "2m", "--metrics", srv.URL)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`consumer memory \(` + regexp.QuoteMeta(srv.URL) + `\): largest RSS of ([0-9]+) samples ([0-9.]+) MiB; peak RSS since it started \(VmHWM\) 3072\.0 MiB\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no memory line:\n%s", out)
	}
	if samples, _ := strconv.Atoi(m[1]); samples < 2 { // one at the start, one at the end
		t.Errorf("%s samples", m[1])
	}
	if rss, _ := strconv.ParseFloat(m[2], 64); rss < 1 {
		t.Errorf("RSS %s MiB", m[2])
	}
	if !regexp.MustCompile(`pipeline: consumer CPU \(process_cpu_seconds_total\): [0-9]+\.[0-9]{2} s over the run, [0-9]+\.[0-9]{3} ms a result\n`).MatchString(out) {
		t.Errorf("no CPU line:\n%s", out)
	}
	// Each issued request was written at least twice (claim, outcome) and
	// cost at least one provider call, all after the first sample.
	// The consumer's latency histograms are native too: each gets its p99
	// (the writes', from the series of the writes before the result).
	b := regexp.MustCompile(`pipeline: consumer time \(its /metrics over the run\): processing ([0-9.]+) ms a message, p99 at most ([0-9.]+) ms; ` +
		`order writes ([0-9.]+) a result: [0-9.]+ before the result, ([0-9.]+) ms each, p99 at most ([0-9.]+) ms, and [0-9.]+ patient \(saved while the result is published\), [0-9.]+ ms each \(([0-9.]+) writes a commit; the store was committing [0-9]+% of the time\); ` +
		`provider calls ([0-9.]+) a result, ([0-9.]+) ms each, p99 at most ([0-9.]+) ms; ` +
		`the Go scheduler \(GOMAXPROCS [1-9][0-9]*\): a runnable goroutine waited at least [0-9]+\.[0-9]{3} ms on average to run \(each wait counted at its bucket's lower bound, a power of ten below the next\)\n`).FindStringSubmatch(out)
	if b == nil {
		t.Fatalf("no breakdown line:\n%s", out)
	}
	writes, _ := strconv.ParseFloat(b[3], 64)
	calls, _ := strconv.ParseFloat(b[7], 64)
	if writes < 2 || calls < 1 {
		t.Errorf("order writes %s a result, provider calls %s a result: want at least 2.00 and 1.00", b[3], b[7])
	}
	for _, v := range []string{b[1], b[2], b[4], b[5], b[6], b[8], b[9]} {
		if f, _ := strconv.ParseFloat(v, 64); f <= 0 {
			t.Errorf("breakdown figure %s, want more than 0:\n%s", v, b[0])
		}
	}
	// With fewer than 100 observations the p99 falls in the largest one's
	// bucket, whose upper bound is at least the mean.
	for _, pair := range [][2]string{{b[1], b[2]}, {b[4], b[5]}, {b[8], b[9]}} {
		mean, _ := strconv.ParseFloat(pair[0], 64)
		p99, _ := strconv.ParseFloat(pair[1], 64)
		if p99 < mean {
			t.Errorf("p99 %s ms against a mean of %s ms", pair[1], pair[0])
		}
	}
}

// TestCPUReport: the CPU line is the difference between the first and the
// last sample, and per result; with fewer than two samples there is none.
func TestCPUReport(t *testing.T) {
	t.Parallel()
	m := &memorySampler{url: "u", firstCPU: 10.5, lastCPU: 12.5, cpuSamples: 3}
	if got, want := m.cpuReport(2000), "consumer CPU (process_cpu_seconds_total): 2.00 s over the run, 1.000 ms a result"; got != want {
		t.Errorf("cpuReport = %q, want %q", got, want)
	}
	if got, want := m.cpuReport(0), "consumer CPU (process_cpu_seconds_total): 2.00 s over the run"; got != want {
		t.Errorf("cpuReport without results = %q, want %q", got, want)
	}
	m.cpuSamples = 1
	if got := m.cpuReport(2000); got != "" {
		t.Errorf("cpuReport from one sample = %q, want none", got)
	}
}

// TestBreakdownReport: the breakdown line is made of the counters'
// differences between the first and the last sample; a part whose counters
// are missing is left out, and with one sample there is no line.
func TestBreakdownReport(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	first := map[string]float64{
		metricProcessingSum: 1, metricProcessingCount: 100,
		metricPutSeconds: 0.5, metricPuts: 200, metricStoreWrites: 210, metricCommits: 150, metricCommitSeconds: 0.2,
		metricCallSum: 0.3, metricCallCount: 100,
	}
	last := map[string]float64{
		metricProcessingSum: 6, metricProcessingCount: 2100, // 5 s over 2,000 messages
		metricPutSeconds: 4.5, metricPuts: 4200, // 4 s over 4,000 writes
		metricStoreWrites: 4210, metricCommits: 3350, metricCommitSeconds: 8.2, // 4,000 writes in 3,200 commits, 8 s of 10
		metricCallSum: 1.3, metricCallCount: 2100, // 1 s over 2,000 calls
	}
	m := &memorySampler{url: "u", first: first, last: last, firstAt: at, lastAt: at.Add(10 * time.Second)}
	want := "consumer time (its /metrics over the run): processing 2.50 ms a message; " +
		"order writes 2.00 a result, 1.00 ms each (1.25 writes a commit; the store was committing 80% of the time); " +
		"provider calls 1.00 a result, 0.50 ms each"
	if got := m.breakdownReport(2000); got != want {
		t.Errorf("breakdownReport =\n%q\nwant\n%q", got, want)
	}
	// Half the writes patient: 2.5 of the 4 s.
	first[metricPatientPuts], first[metricPatientSeconds] = 100, 0.25
	last[metricPatientPuts], last[metricPatientSeconds] = 2100, 2.75
	want = "consumer time (its /metrics over the run): processing 2.50 ms a message; " +
		"order writes 2.00 a result: 1.00 before the result, 0.75 ms each, and 1.00 patient (saved while the result is published), 1.25 ms each " +
		"(1.25 writes a commit; the store was committing 80% of the time); provider calls 1.00 a result, 0.50 ms each"
	if got := m.breakdownReport(2000); got != want {
		t.Errorf("breakdownReport with patient writes =\n%q\nwant\n%q", got, want)
	}
	// A consumer without the order-write counters.
	for _, name := range []string{metricPutSeconds, metricPuts} {
		delete(m.first, name)
		delete(m.last, name)
	}
	want = "consumer time (its /metrics over the run): processing 2.50 ms a message; provider calls 1.00 a result, 0.50 ms each"
	if got := m.breakdownReport(2000); got != want {
		t.Errorf("breakdownReport without order writes =\n%q\nwant\n%q", got, want)
	}
	// The Go scheduler's waits: 2 s over 5,000 sampled waits; GOMAXPROCS
	// as last read.
	first[metricSchedSum], first[metricSchedCount], first[metricGOMAXPROCS] = 1, 1000, 2
	last[metricSchedSum], last[metricSchedCount], last[metricGOMAXPROCS] = 3, 6000, 1
	want = "consumer time (its /metrics over the run): processing 2.50 ms a message; provider calls 1.00 a result, 0.50 ms each; " +
		"the Go scheduler (GOMAXPROCS 1): a runnable goroutine waited at least 0.400 ms on average to run (each wait counted at its bucket's lower bound, a power of ten below the next)"
	if got := m.breakdownReport(2000); got != want {
		t.Errorf("breakdownReport with the scheduler =\n%q\nwant\n%q", got, want)
	}
	delete(last, metricGOMAXPROCS)
	want = "consumer time (its /metrics over the run): processing 2.50 ms a message; provider calls 1.00 a result, 0.50 ms each; " +
		"the Go scheduler: a runnable goroutine waited at least 0.400 ms on average to run (each wait counted at its bucket's lower bound, a power of ten below the next)"
	if got := m.breakdownReport(2000); got != want {
		t.Errorf("breakdownReport with the scheduler, without GOMAXPROCS =\n%q\nwant\n%q", got, want)
	}
	m.lastAt = m.firstAt
	if got := m.breakdownReport(2000); got != "" {
		t.Errorf("breakdownReport from one sample = %q, want none", got)
	}
}

// TestSamplerConsumerStartedLater: a consumer that starts during the phase
// (a backlog run) is counted from zero and from its start; one that ran
// before it, from the first sample.
func TestSamplerConsumerStartedLater(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		body string // "" answers 503: the consumer is not running
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if body == "" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	serve := func(started time.Time, cpu, puts, putSecs float64) {
		mu.Lock()
		defer mu.Unlock()
		body = fmt.Sprintf("process_start_time_seconds %.3f\nprocess_cpu_seconds_total %g\n"+
			"invoice_store_puts_total %g\ninvoice_store_put_seconds_total %g\n", float64(started.UnixMilli())/1e3, cpu, puts, putSecs)
	}
	ctx := t.Context()

	m := newMemorySampler(srv.URL)
	m.sample(ctx) // the phase starts with the consumer down
	time.Sleep(5 * time.Millisecond)
	started := time.Now()
	time.Sleep(5 * time.Millisecond)
	serve(started, 1.5, 20, 0.02)
	m.sample(ctx)
	serve(started, 2, 40, 0.04)
	m.sample(ctx)
	if got, want := m.cpuReport(20), "consumer CPU (process_cpu_seconds_total): 2.00 s over the run, 100.000 ms a result"; got != want {
		t.Errorf("started later: cpuReport = %q, want %q", got, want)
	}
	if got, want := m.breakdownReport(20), "consumer time (its /metrics over the run): order writes 2.00 a result, 1.00 ms each"; got != want {
		t.Errorf("started later: breakdownReport = %q, want %q", got, want)
	}
	if d := m.firstAt.Sub(started); d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("counted from %v, want the consumer's start %v", m.firstAt, started)
	}

	serve(time.Now().Add(-time.Hour), 100, 1000, 1)
	m = newMemorySampler(srv.URL)
	m.sample(ctx) // the consumer ran before the phase
	serve(time.Now().Add(-time.Hour), 101, 1040, 1.04)
	m.sample(ctx)
	if got, want := m.cpuReport(20), "consumer CPU (process_cpu_seconds_total): 1.00 s over the run, 50.000 ms a result"; got != want {
		t.Errorf("running before: cpuReport = %q, want %q", got, want)
	}
	if got, want := m.breakdownReport(20), "consumer time (its /metrics over the run): order writes 2.00 a result, 1.00 ms each"; got != want {
		t.Errorf("running before: breakdownReport = %q, want %q", got, want)
	}
}

// TestBenchMissingResults runs bench with no consumer: it must say that the
// results are missing and exit 1, not report figures as if all was well.
func TestBenchMissingResults(t *testing.T) {
	t.Parallel()
	e := MustNATS(t)
	out, _, code := e.cli(t, "bench", "-n", "20", "--timeout", "3s")
	if code != exitFailed {
		t.Errorf("exit %d, want %d\n%s", code, exitFailed, out)
	}
	for _, w := range []string{"pipeline: published 20 of 20", "pipeline: results: none; 20 request(s) without a result", "stopped: context deadline exceeded"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if l := parseBenchLine(t, out); l.throughput != -1 || l.p50 != -1 || l.p99 != -1 || l.baseline != -1 || l.ratio != -1 {
		t.Errorf("figures %+v without a single result, want all -", l)
	}
	// The requests are in the stream, as the consumer would find them.
	if st := e.streamState("INVOICE_REQUESTS"); st.Msgs != 20 {
		t.Errorf("%d requests in the stream, want 20", st.Msgs)
	}
	var req schemas.Request
	if err := json.Unmarshal(e.requests()[0].Data, &req); err != nil || !strings.HasPrefix(req.OrderNo, "B") || len(req.OrderNo) != 16 {
		t.Errorf("first request: %v, order number %q", err, req.OrderNo)
	}
}

func TestMeanBaseline(t *testing.T) {
	t.Parallel()
	phase := func(v float64) *benchPhase { return &benchPhase{throughput: v} }
	for _, tc := range []struct {
		name          string
		before, after *benchPhase
		want          float64 // -1: nil
	}{
		{"no baseline", nil, nil, -1},
		{"before only (the run was stopped)", phase(1200), nil, 1200},
		{"after without results", phase(1200), phase(0), 1200},
		{"before without results", phase(0), phase(900), 900},
		{"both", phase(1200), phase(900), 1050},
	} {
		got := meanBaseline(tc.before, tc.after)
		switch {
		case tc.want == -1 && got != nil:
			t.Errorf("%s: %+v, want nil", tc.name, got)
		case tc.want != -1 && (got == nil || got.throughput != tc.want):
			t.Errorf("%s: %+v, want throughput %g", tc.name, got, tc.want)
		}
	}
}

// TestWaitDocuments: bench waits until the consumer has kept the PDFs a run
// left to keep, and reports how many there were.
func TestWaitDocuments(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pending := 0
		if reads.Add(1) <= 2 {
			pending = 7
		}
		fmt.Fprintf(w, "# TYPE %s gauge\n%s %d\n", metricDocumentsPending, metricDocumentsPending, pending)
	}))
	t.Cleanup(srv.Close)
	pending, took, err := waitDocuments(t.Context(), srv.URL)
	if err != nil || pending != 7 || reads.Load() != 3 || took < documentsSettleEvery {
		t.Fatalf("waitDocuments = %v pending, took %s, %v after %d reads; want 7, at least %s, nil after 3", pending, took, err, reads.Load(), documentsSettleEvery)
	}

	// A consumer without the metric has nothing to wait for; one that
	// never catches up is given up at the context's end.
	empty := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(empty.Close)
	if pending, _, err := waitDocuments(t.Context(), empty.URL); err != nil || pending != 0 {
		t.Fatalf("without the metric: %v pending, %v", pending, err)
	}
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s 3\n", metricDocumentsPending)
	}))
	t.Cleanup(stuck.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, _, err := waitDocuments(ctx, stuck.URL); err == nil || !strings.Contains(err.Error(), "3 still to keep") {
		t.Fatalf("a consumer that never catches up: %v", err)
	}
}

// TestScheduledAt: a request's latency starts at a wall-clock reading (the
// clock of the server's result timestamps), the publish moment's less its
// delay behind the schedule, not at the schedule's own monotonic time.
func TestScheduledAt(t *testing.T) {
	t.Parallel()
	now := time.Now()
	due := now.Add(-3 * time.Millisecond)
	got := scheduledAt(now, due)
	if strings.Contains(got.String(), "m=") {
		t.Errorf("scheduledAt = %s, has a monotonic reading; want a wall-clock time", got)
	}
	if want := now.Round(0).Add(-3 * time.Millisecond); !got.Equal(want) {
		t.Errorf("scheduledAt = %s, want %s (now's wall clock less 3 ms)", got, want)
	}

	// The recorder keeps the wall clock: a result stored 2 ms after such a
	// start counts 2 ms, whatever the monotonic clock said.
	rec := newBenchRecorder(1, now)
	rec.markSent(0, got)
	rec.result(0, schemas.StatusIssued, got.Add(2*time.Millisecond))
	if s := rec.summary(); s.latency.p50 != 2*time.Millisecond {
		t.Errorf("latency %s, want 2ms", s.latency.p50)
	}
}
