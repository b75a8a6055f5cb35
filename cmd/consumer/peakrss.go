package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// peakRSSCollector exports the process's peak resident set size (Linux
// VmHWM) as invoice_process_peak_resident_memory_bytes, so that a scrape
// every few seconds still sees a peak between two scrapes (the process
// collector's process_resident_memory_bytes is the size at the scrape).
// Where /proc/self/status has no VmHWM it exports nothing.
type peakRSSCollector struct {
	desc *prometheus.Desc
	path string
}

func newPeakRSSCollector() *peakRSSCollector {
	return &peakRSSCollector{
		desc: prometheus.NewDesc("invoice_process_peak_resident_memory_bytes",
			"Peak resident set size of the process since it started (VmHWM), in bytes.", nil, nil),
		path: "/proc/self/status",
	}
}

// Describe implements prometheus.Collector.
func (c *peakRSSCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *peakRSSCollector) Collect(ch chan<- prometheus.Metric) {
	f, err := os.Open(c.path)
	if err != nil {
		return
	}
	defer f.Close()
	if b, ok := vmHWM(f); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(b))
	}
}

// vmHWM reads the VmHWM line of a /proc/<pid>/status file ("VmHWM:  1234
// kB") and returns it in bytes.
func vmHWM(r io.Reader) (int64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil || kb < 0 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
