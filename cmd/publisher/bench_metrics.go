package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The consumer's metrics the bench reads: the process collector's resident
// set size, and the consumer's own peak of it (VmHWM), which does not miss
// a peak between two samples.
const (
	metricRSS     = "process_resident_memory_bytes"
	metricPeakRSS = "invoice_process_peak_resident_memory_bytes"
	// metricCPU is the process collector's CPU time, user and system.
	metricCPU = "process_cpu_seconds_total"
	// metricStartTime is the process collector's start time of the
	// process, in Unix seconds.
	metricStartTime = "process_start_time_seconds"
	// metricDocumentsPending is the number of issued orders whose PDFs the
	// consumer's document keeper has yet to keep: it yields to the requests
	// during a backlog and catches up after.
	metricDocumentsPending = "invoice_documents_pending"
)

// The consumer's counters behind the breakdown line: where a request's
// time goes. Histograms are read through their _sum and _count, summed
// over their labels.
const (
	metricProcessingSum   = "invoice_processing_seconds_sum"
	metricProcessingCount = "invoice_processing_seconds_count"
	metricPutSeconds      = "invoice_store_put_seconds_total"
	metricPuts            = "invoice_store_puts_total"
	metricPatientSeconds  = "invoice_store_patient_put_seconds_total"
	metricPatientPuts     = "invoice_store_patient_puts_total"
	metricStoreWrites     = "invoice_store_writes_total"
	metricCommits         = "invoice_store_commits_total"
	metricCommitSeconds   = "invoice_store_commit_seconds_total"
	metricCallSum         = "invoice_provider_call_seconds_sum"
	metricCallCount       = "invoice_provider_call_seconds_count"
	// The Go collector's scheduler metrics (the consumer registers them):
	// GOMAXPROCS, and the time runnable goroutines waited to run, a
	// sample of the waits that the runtime keeps as a histogram. The
	// runtime gives no sum of it: the collector's _sum counts each wait at
	// the lower bound of its bucket, which it merges into buckets a power of
	// ten apart (64 ns, 640 ns, 7.2 µs, 82 µs, 0.92 ms, 10.5 ms, 117 ms),
	// so sum/count is a lower bound of the mean wait, up to 11 times less
	// (more for waits beyond 117 ms).
	metricGOMAXPROCS = "go_sched_gomaxprocs_threads"
	metricSchedSum   = "go_sched_latencies_seconds_sum"
	metricSchedCount = "go_sched_latencies_seconds_count"
)

// breakdownMetrics are the counters the sampler keeps first and last
// values of.
var breakdownMetrics = []string{metricProcessingSum, metricProcessingCount, metricPutSeconds, metricPuts,
	metricPatientSeconds, metricPatientPuts, metricStoreWrites, metricCommits, metricCommitSeconds, metricCallSum, metricCallCount,
	metricGOMAXPROCS, metricSchedSum, metricSchedCount}

// memorySampleEvery is how often the bench reads the consumer's /metrics.
const memorySampleEvery = time.Second

// memorySampler reads the consumer's /metrics during a phase and keeps the
// largest resident set size seen and the last peak the consumer reported.
type memorySampler struct {
	url    string
	client *http.Client

	mu       sync.Mutex
	samples  int
	errs     int
	lastErr  error
	maxRSS   float64
	series   []float64 // every RSS read, in order, to tell flat from growing
	peakRSS  float64   // the consumer's VmHWM gauge; 0 if it has none
	havePeak bool
	// firstCPU and lastCPU are the process's CPU seconds at the first and
	// the last sample that had them.
	firstCPU, lastCPU float64
	cpuSamples        int
	// first and last are the breakdown counters at the first and the last
	// sample, read at firstAt and lastAt.
	first, last     map[string]float64
	firstAt, lastAt time.Time
	// firstNative and lastNative are the latency histograms in native
	// form at the same samples; haveFirstNative says whether the first
	// sample read them, without which no p99 is given.
	firstNative, lastNative map[string]nativeHist
	haveFirstNative         bool
	// since is when the phase began, before the first sample: a consumer
	// that started after it (a backlog run starts it once the requests
	// are in) counts from zero, from its start.
	since time.Time
}

func newMemorySampler(url string) *memorySampler {
	return &memorySampler{url: url, client: &http.Client{Timeout: 2 * time.Second}, since: time.Now()}
}

// run samples every memorySampleEvery until ctx ends, then once more. The
// caller takes the first sample, before the phase starts.
func (m *memorySampler) run(ctx context.Context) {
	t := time.NewTicker(memorySampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			m.sample(sctx)
			cancel()
			return
		case <-t.C:
			m.sample(ctx)
		}
	}
}

// sample reads the metrics once.
func (m *memorySampler) sample(ctx context.Context) {
	vals, err := m.fetch(ctx)
	var native map[string]nativeHist
	if err == nil {
		// Absent (nil) when the consumer does not serve them.
		native, _ = fetchNative(ctx, m.client, m.url, nativeProcessing, nativeCalls, nativeSaves)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			m.errs++
			m.lastErr = err
		}
		return
	}
	if v, ok := vals[metricRSS]; ok {
		m.samples++
		m.maxRSS = max(m.maxRSS, v)
		m.series = append(m.series, v)
	}
	if v, ok := vals[metricPeakRSS]; ok {
		m.havePeak = true
		m.peakRSS = max(m.peakRSS, v)
	}
	now := time.Now()
	if m.first == nil {
		m.first, m.firstAt = vals, now
		m.firstNative, m.haveFirstNative = native, native != nil
		if started, ok := vals[metricStartTime]; ok && started > float64(m.since.UnixNano())/1e9 {
			// The consumer started during the phase: everything it
			// counted is the phase's, from its start on.
			m.first, m.firstAt = map[string]float64{}, time.Unix(0, int64(started*1e9))
			m.firstNative, m.haveFirstNative = nil, true
			if _, ok := vals[metricCPU]; ok {
				m.firstCPU, m.cpuSamples = 0, 1
			}
		}
	}
	m.last, m.lastAt = vals, now
	if native != nil {
		m.lastNative = native
	}
	if v, ok := vals[metricCPU]; ok {
		if m.cpuSamples == 0 {
			m.firstCPU = v
		}
		m.lastCPU = v
		m.cpuSamples++
	}
}

func (m *memorySampler) fetch(ctx context.Context) (map[string]float64, error) {
	return fetchMetrics(ctx, m.client, m.url, append([]string{metricRSS, metricPeakRSS, metricCPU, metricStartTime}, breakdownMetrics...)...)
}

// fetchMetrics reads the named metrics (a labelled one summed over its
// series) from the consumer's /metrics at url.
func fetchMetrics(ctx context.Context, client *http.Client, url string, names ...string) (out map[string]float64, err error) {
	err = getOK(ctx, client, url, "", func(resp *http.Response) error {
		out, err = parseMetrics(io.LimitReader(resp.Body, 16<<20), names...)
		return err
	})
	return out, err
}

// getOK GETs url from the consumer's HTTP server (its /metrics, or its
// pprof trace), asking for the format accept ("" for the handler's
// default, such as the metrics' text format), and hands an OK response to
// read.
func getOK(ctx context.Context, client *http.Client, url, accept string, read func(*http.Response) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return read(resp)
}

// parseMetrics returns the values of the named metrics in the Prometheus
// text format; a metric with labels is the sum of its series.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			// Label values may hold spaces: the value follows the last '}'.
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest, ok = line[:i], line[j+1:], true
		}
		if !ok {
			continue
		}
		for _, want := range names {
			if name != want {
				continue
			}
			val, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				out[name] += v
			}
		}
	}
	return out, sc.Err()
}

// report is one line on the consumer's memory.
func (m *memorySampler) report() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var parts []string
	if m.samples > 0 {
		parts = append(parts, fmt.Sprintf("largest RSS of %d samples %s", m.samples, mib(m.maxRSS)))
		if n := len(m.series); n >= 4 {
			parts = append(parts, fmt.Sprintf("RSS at a quarter, half, three quarters and the end of the run %s, %s, %s, %s",
				mib(m.series[n/4]), mib(m.series[n/2]), mib(m.series[3*n/4]), mib(m.series[n-1])))
		}
	} else {
		parts = append(parts, "no "+metricRSS+" read")
	}
	if m.havePeak {
		parts = append(parts, "peak RSS since it started (VmHWM) "+mib(m.peakRSS))
	} else if m.samples > 0 {
		parts = append(parts, "no "+metricPeakRSS+": the peak between samples is unknown")
	}
	if m.errs > 0 {
		parts = append(parts, fmt.Sprintf("%d failed read(s), last: %v", m.errs, m.lastErr))
	}
	return "consumer memory (" + m.url + "): " + strings.Join(parts, "; ")
}

// cpuReport is one line on the CPU time the consumer's process used from
// the phase's first sample (or the consumer's start, when it started during
// the phase) to its last, in all and for each of results: a
// figure that, unlike latency, hardly moves with the other processes on the
// machine, to compare builds by. In the default mode the process also runs
// NATS and the sandbox. "" when the metric was not read twice.
func (m *memorySampler) cpuReport(results int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cpuSamples < 2 {
		return ""
	}
	used := m.lastCPU - m.firstCPU
	line := fmt.Sprintf("consumer CPU (%s): %.2f s over the run", metricCPU, used)
	if results > 0 {
		line += fmt.Sprintf(", %.3f ms a result", used*1000/float64(results))
	}
	return line
}

// breakdownReport is one line on where the consumer's time went from the
// phase's first sample (or the consumer's start, when it started during the
// phase) to its last, from its own counters: the mean time
// to process a request message; the order-store writes for each of results
// and their mean latency (the wait for the group commit included), how
// many writes a commit carried and the share of the time the store was
// committing; the provider calls for each result and their mean latency;
// a lower bound of the mean time a runnable goroutine waited to run (the
// Go scheduler's, with GOMAXPROCS). The processing time, the writes before
// the result and the provider calls also get their p99 where the consumer
// exports them as native histograms.
// A part whose counters the last sample lacks (a consumer that does not
// export them) is left out; "" when none is there or there were fewer than
// two samples.
func (m *memorySampler) breakdownReport(results int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.first == nil || !m.lastAt.After(m.firstAt) {
		return ""
	}
	// A labelled metric has no series before its first observation: one
	// the last sample has and the first has not started from 0.
	delta := func(name string) (float64, bool) {
		b, ok := m.last[name]
		return b - m.first[name], ok
	}
	// p99 is the histogram's p99 over the run, from its native form, as
	// ", p99 at most X ms"; "" when the consumer does not export it.
	p99 := func(name string) string {
		last, ok := m.lastNative[name]
		if !ok || !m.haveFirstNative {
			return ""
		}
		if first, ok := m.firstNative[name]; ok {
			last = last.plus(first, -1)
		}
		if v, ok := last.quantile(0.99); ok {
			return fmt.Sprintf(", p99 at most %.2f ms", v*1000)
		}
		return ""
	}
	var parts []string
	if sum, ok := delta(metricProcessingSum); ok {
		if n, _ := delta(metricProcessingCount); n > 0 {
			parts = append(parts, fmt.Sprintf("processing %.2f ms a message", sum*1000/n)+p99(nativeProcessing))
		}
	}
	if secs, ok := delta(metricPutSeconds); ok {
		if n, _ := delta(metricPuts); n > 0 && results > 0 {
			part := fmt.Sprintf("order writes %.2f a result, %.2f ms each", n/float64(results), secs*1000/n) + p99(nativeSaves)
			pn, _ := delta(metricPatientPuts)
			psecs, _ := delta(metricPatientSeconds)
			if pn > 0 && n > pn {
				// The patient writes end after the result; the others
				// come before it.
				part = fmt.Sprintf("order writes %.2f a result: %.2f before the result, %.2f ms each%s, and %.2f patient (saved while the result is published), %.2f ms each",
					n/float64(results), (n-pn)/float64(results), (secs-psecs)*1000/(n-pn), p99(nativeSaves), pn/float64(results), psecs*1000/pn)
			}
			writes, _ := delta(metricStoreWrites)
			commits, _ := delta(metricCommits)
			busy, _ := delta(metricCommitSeconds)
			if commits > 0 {
				part += fmt.Sprintf(" (%.2f writes a commit; the store was committing %.0f%% of the time)",
					writes/commits, 100*busy/m.lastAt.Sub(m.firstAt).Seconds())
			}
			parts = append(parts, part)
		}
	}
	if sum, ok := delta(metricCallSum); ok {
		if n, _ := delta(metricCallCount); n > 0 && results > 0 {
			parts = append(parts, fmt.Sprintf("provider calls %.2f a result, %.2f ms each", n/float64(results), sum*1000/n)+p99(nativeCalls))
		}
	}
	if sum, ok := delta(metricSchedSum); ok {
		if n, _ := delta(metricSchedCount); n > 0 {
			procs := ""
			if v, ok := m.last[metricGOMAXPROCS]; ok {
				procs = fmt.Sprintf(" (GOMAXPROCS %.0f)", v)
			}
			parts = append(parts, fmt.Sprintf("the Go scheduler%s: a runnable goroutine waited at least %.3f ms on average to run (each wait counted at its bucket's lower bound, a power of ten below the next)", procs, sum*1000/n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "consumer time (its /metrics over the run): " + strings.Join(parts, "; ")
}

// mib formats bytes in MiB.
func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// documentsSettleEvery is how often waitDocuments reads the consumer's
// metrics; the consumer refreshes invoice_documents_pending every 5 s.
const documentsSettleEvery = time.Second

// waitDocuments waits until the consumer at url has no documents left to
// keep (invoice_documents_pending is 0 or absent), so that the background
// work a pipeline run deferred is finished before anything else is
// measured. It returns the count when it started waiting and how long the
// wait took; an error when the metrics cannot be read or ctx ends first.
func waitDocuments(ctx context.Context, url string) (pending float64, took time.Duration, err error) {
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	for first := true; ; first = false {
		vals, err := fetchMetrics(ctx, client, url, metricDocumentsPending)
		if err != nil {
			return pending, time.Since(start), err
		}
		n := vals[metricDocumentsPending]
		if first {
			pending = n
		}
		if n == 0 {
			return pending, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return pending, time.Since(start), fmt.Errorf("%.0f still to keep: %w", n, context.Cause(ctx))
		case <-time.After(documentsSettleEvery):
		}
	}
}
