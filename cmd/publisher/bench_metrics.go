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
	// metricDocumentsPending is the number of issued orders whose PDFs the
	// consumer's document keeper has yet to keep: it yields to the requests
	// during a backlog and catches up after.
	metricDocumentsPending = "invoice_documents_pending"
)

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
}

func newMemorySampler(url string) *memorySampler {
	return &memorySampler{url: url, client: &http.Client{Timeout: 2 * time.Second}}
}

// run samples once at once, then every memorySampleEvery until ctx ends,
// then once more.
func (m *memorySampler) run(ctx context.Context) {
	t := time.NewTicker(memorySampleEvery)
	defer t.Stop()
	for {
		m.sample(ctx)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			m.sample(sctx)
			cancel()
			return
		case <-t.C:
		}
	}
}

// sample reads the metrics once.
func (m *memorySampler) sample(ctx context.Context) {
	vals, err := m.fetch(ctx)
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
	if v, ok := vals[metricCPU]; ok {
		if m.cpuSamples == 0 {
			m.firstCPU = v
		}
		m.lastCPU = v
		m.cpuSamples++
	}
}

func (m *memorySampler) fetch(ctx context.Context) (map[string]float64, error) {
	return fetchMetrics(ctx, m.client, m.url, metricRSS, metricPeakRSS, metricCPU)
}

// fetchMetrics reads the named metrics (without labels) from the consumer's
// /metrics at url.
func fetchMetrics(ctx context.Context, client *http.Client, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(io.LimitReader(resp.Body, 16<<20), names...)
}

// parseMetrics returns the values of the named metrics (without labels) in
// the Prometheus text format.
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
		if !ok {
			continue
		}
		for _, want := range names {
			if name != want {
				continue
			}
			val, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
			if v, err := strconv.ParseFloat(val, 64); err == nil {
				out[name] = v
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
// the phase's first sample to its last, in all and for each of results: a
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
