package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestVmHWM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status string
		want   int64
		ok     bool
	}{
		{"linux", "Name:\tconsumer\nVmPeak:\t  900000 kB\nVmHWM:\t   81920 kB\nVmRSS:\t   70000 kB\n", 81920 << 10, true},
		{"no line", "Name:\tconsumer\nVmRSS:\t   70000 kB\n", 0, false},
		{"other unit", "VmHWM:\t 80 MB\n", 0, false},
		{"not a number", "VmHWM:\t lots kB\n", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := vmHWM(strings.NewReader(tc.status))
			if got != tc.want || ok != tc.ok {
				t.Errorf("vmHWM = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestPeakRSSCollector gathers the gauge from a registry: from this
// process's real status file on Linux, and nothing without one.
func TestPeakRSSCollector(t *testing.T) {
	t.Parallel()
	gather := func(c *peakRSSCollector) []float64 {
		t.Helper()
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var vals []float64
		for _, mf := range mfs {
			if mf.GetName() != "invoice_process_peak_resident_memory_bytes" {
				t.Errorf("unexpected metric %s", mf.GetName())
			}
			for _, m := range mf.GetMetric() {
				vals = append(vals, m.GetGauge().GetValue())
			}
		}
		return vals
	}
	if runtime.GOOS == "linux" {
		vals := gather(newPeakRSSCollector())
		// A Go test binary's peak RSS is more than a megabyte and far less
		// than a terabyte.
		if len(vals) != 1 || vals[0] < 1<<20 || vals[0] > 1<<40 {
			t.Errorf("peak RSS %v, want one plausible value", vals)
		}
	}
	c := newPeakRSSCollector()
	c.path = filepath.Join(t.TempDir(), "missing")
	if vals := gather(c); len(vals) != 0 {
		t.Errorf("without a status file: %v, want nothing", vals)
	}
	c.path = filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(c.path, []byte("VmHWM:\t 2048 kB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if vals := gather(c); len(vals) != 1 || vals[0] != 2048<<10 {
		t.Errorf("from a status file of 2048 kB: %v", vals)
	}
}
