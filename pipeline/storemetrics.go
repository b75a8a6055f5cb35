package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fapiaohub/invoicer/store"
)

// storeCollector exports the order store's commit counters (store.Stats):
// how many group commits there were, how many writes they carried, how
// many failed, and how long the single commit goroutine spent in them. The
// rate of invoice_store_commit_seconds_total is the share of time the
// store was committing: near 1, writers queue for it.
type storeCollector struct {
	stats                                  func() store.Stats
	commits, failed, writes, commitSeconds *prometheus.Desc
}

// NewStoreCollector returns a Prometheus collector of the order store's
// commit counters, read from stats (store.DB.Stats) at each scrape:
// invoice_store_commits_total, invoice_store_failed_commits_total,
// invoice_store_writes_total and invoice_store_commit_seconds_total.
func NewStoreCollector(stats func() store.Stats) prometheus.Collector {
	return &storeCollector{
		stats: stats,
		commits: prometheus.NewDesc("invoice_store_commits_total",
			"Order-store transactions answered without a commit failure (each one fsync, unless all its writes failed their checks).", nil, nil),
		failed: prometheus.NewDesc("invoice_store_failed_commits_total",
			"Order-store transactions that failed to commit (the disk or the file).", nil, nil),
		writes: prometheus.NewDesc("invoice_store_writes_total",
			"Order-store writes carried by committed transactions; divided by invoice_store_commits_total, the mean group-commit size.", nil, nil),
		commitSeconds: prometheus.NewDesc("invoice_store_commit_seconds_total",
			"Time the order store's commit goroutine spent in write transactions, fsyncs included; its rate near 1 means the store is saturated.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.commits
	ch <- c.failed
	ch <- c.writes
	ch <- c.commitSeconds
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(st.FailedCommits))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Requests))
	ch <- prometheus.MustNewConstMetric(c.commitSeconds, prometheus.CounterValue, st.CommitTime.Seconds())
}
