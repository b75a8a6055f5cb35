package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestNativeP99 serves a registry with a native histogram in two series
// over HTTP, as the consumer's /metrics does, reads it twice and checks
// the p99 of what was observed between the readings.
func TestNativeP99(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: nativeCalls, Help: "test", Buckets: prometheus.DefBuckets,
		NativeHistogramBucketFactor: 1.1, NativeHistogramMaxBucketNumber: 100, NativeHistogramMinResetDuration: time.Hour,
	}, []string{"method"})
	classic := prometheus.NewHistogram(prometheus.HistogramOpts{Name: nativeProcessing, Help: "test"})
	reg.MustRegister(h, classic)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	read := func() map[string]nativeHist {
		t.Helper()
		got, err := fetchNative(t.Context(), http.DefaultClient, srv.URL, nativeCalls, nativeProcessing)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// Before the run: slow calls that must not count.
	for range 500 {
		h.WithLabelValues("submit").Observe(0.5)
	}
	classic.Observe(1)
	first := read()
	if _, ok := first[nativeProcessing]; ok {
		t.Errorf("a histogram with classic buckets only was read as native")
	}
	// The run: 980 calls at 20 ms, 20 at 30 ms, in two series.
	for i := range 1000 {
		method, v := "submit", 0.020
		if i%2 == 1 {
			method = "query"
		}
		if i < 20 {
			v = 0.030
		}
		h.WithLabelValues(method).Observe(v)
	}
	run := read()[nativeCalls].plus(first[nativeCalls], -1)

	for _, c := range []struct {
		q      float64
		target float64
	}{{0.5, 0.020}, {0.97, 0.020}, {0.99, 0.030}} {
		got, ok := run.quantile(c.q)
		if !ok {
			t.Fatalf("quantile(%v) of %d buckets: none", c.q, len(run.counts))
		}
		// The bucket's upper bound: at least the value, less than 10% above it.
		if got < c.target || got > c.target*1.1 {
			t.Errorf("quantile(%v) = %.4f s, want the bucket of %.3f s (at most 10%% above it)", c.q, got, c.target)
		}
	}
	// A selector sums only its series: the 500 query calls, 10 of them at
	// 30 ms, all observed during the run. One it cannot read selects
	// nothing.
	query := nativeCalls + `{method="query"}`
	got, err := fetchNative(t.Context(), http.DefaultClient, srv.URL, query, nativeCalls+`{method="query"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("read %d histograms, want only %s", len(got), query)
	}
	var total, slow float64
	for i, n := range got[query].counts {
		total += n
		if math.Pow(2, math.Exp2(-float64(got[query].schema))*float64(i)) > 0.025 {
			slow += n
		}
	}
	if total != 500 || slow != 10 {
		t.Errorf("%s: %v calls, %v of them slow; want 500 and 10", query, total, slow)
	}

	// A handler that serves only the text format has no native histograms.
	text := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("invoice_provider_call_seconds_count 3\n"))
	}))
	t.Cleanup(text.Close)
	if got, err := fetchNative(t.Context(), http.DefaultClient, text.URL, nativeCalls); err != nil || got != nil {
		t.Errorf("from a text-only handler: %v, %v; want nothing", got, err)
	}
	if _, ok := (nativeHist{schema: 3, counts: map[int32]float64{}}).quantile(0.99); ok {
		t.Error("an empty histogram has a p99")
	}
}

// TestNativeReduce: merging buckets into a coarser schema keeps every
// observation and puts each in the bucket that holds its range.
func TestNativeReduce(t *testing.T) {
	t.Parallel()
	// Schema 1: base √2. Buckets 1..4 end at √2, 2, 2√2, 4; at schema 0
	// (base 2) they fall in buckets 1 (≤2) and 2 (≤4). Bucket 0 ends at 1,
	// and -1 at 1/√2: both in schema 0's bucket 0.
	h := nativeHist{schema: 1, zero: 2, counts: map[int32]float64{-1: 1, 0: 1, 1: 1, 2: 2, 3: 3, 4: 4}}
	r := h.reduce(0)
	want := map[int32]float64{0: 2, 1: 3, 2: 7}
	if r.schema != 0 || r.zero != 2 || len(r.counts) != len(want) {
		t.Fatalf("reduce(0) = %+v, want %v", r, want)
	}
	for i, n := range want {
		if r.counts[i] != n {
			t.Errorf("bucket %d: %v, want %v", i, r.counts[i], n)
		}
	}
	// The difference of two readings at different schemas.
	d := h.plus(nativeHist{schema: 0, counts: map[int32]float64{2: 7}}, -1)
	if _, left := d.counts[2]; d.schema != 0 || len(d.counts) != 2 || left {
		t.Errorf("difference = %+v, want buckets 0 and 1 only", d)
	}
}
