package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fapiaohub/invoicer/store"
)

// storeCollector exports the order store's commit counters (store.Stats):
// how many group commits there were, how many writes they carried, how
// many failed, and how long the single commit goroutine spent in them. The
// rate of invoice_store_commit_seconds_total is the share of time the
// store was committing: near 1, writers queue for it. The order writes'
// own time (invoice_store_put_seconds_total over invoice_store_puts_total)
// is the mean latency of a write; the patient ones
// (invoice_store_patient_puts_total, an issued record saved while its
// result is published) are counted apart as well, since no result waits
// for them.
type storeCollector struct {
	db                                     StoreReadings
	commits, failed, writes, commitSeconds *prometheus.Desc
	puts, putSeconds                       *prometheus.Desc
	patientPuts, patientPutSeconds         *prometheus.Desc
	writable, diskFree, diskSize           *prometheus.Desc
}

// StoreReadings is what NewStoreCollector reads at each scrape;
// *store.DB implements it.
type StoreReadings interface {
	Stats() store.Stats
	Healthy() error
	DiskSpace() (free, size uint64, err error)
}

// NewStoreCollector returns a Prometheus collector of the order store's
// commit counters, read from db (store.DB.Stats) at each scrape:
// invoice_store_commits_total, invoice_store_failed_commits_total,
// invoice_store_writes_total, invoice_store_commit_seconds_total,
// invoice_store_puts_total, invoice_store_put_seconds_total,
// invoice_store_patient_puts_total and
// invoice_store_patient_put_seconds_total; of its state,
// invoice_store_writable (store.DB.Healthy), which stays 0 for as long as
// the store refuses writes, however few commits are tried meanwhile; and of
// the file system under it, invoice_store_disk_free_bytes and
// invoice_store_disk_size_bytes (store.DB.DiskSpace; absent where it
// cannot be read).
func NewStoreCollector(db StoreReadings) prometheus.Collector {
	return &storeCollector{
		db: db,
		writable: prometheus.NewDesc("invoice_store_writable",
			"1 while the order store writes; 0 from a failed commit until a probe writes again (disk full, read-only, failing): meanwhile the consumer takes no request.", nil, nil),
		diskFree: prometheus.NewDesc("invoice_store_disk_free_bytes",
			"Space left on the file system that holds the order store (--data), for an unprivileged writer.", nil, nil),
		diskSize: prometheus.NewDesc("invoice_store_disk_size_bytes",
			"Size of the file system that holds the order store (--data).", nil, nil),
		commits: prometheus.NewDesc("invoice_store_commits_total",
			"Order-store transactions answered without a commit failure (each one commit, two fdatasyncs, unless all its writes failed their checks).", nil, nil),
		failed: prometheus.NewDesc("invoice_store_failed_commits_total",
			"Order-store transactions that failed to commit (the disk or the file).", nil, nil),
		writes: prometheus.NewDesc("invoice_store_writes_total",
			"Order-store writes carried by committed transactions; divided by invoice_store_commits_total, the mean group-commit size.", nil, nil),
		commitSeconds: prometheus.NewDesc("invoice_store_commit_seconds_total",
			"Time the order store's commit goroutine spent in write transactions, fsyncs included; its rate near 1 means the store is saturated.", nil, nil),
		puts: prometheus.NewDesc("invoice_store_puts_total",
			"Order records written (an issued request writes two: the claim before the provider call and the outcome), refused and failed writes included.", nil, nil),
		putSeconds: prometheus.NewDesc("invoice_store_put_seconds_total",
			"Time order-record writes took from the call to the durable answer, the wait for the commit in progress included; divided by invoice_store_puts_total, the mean time a request waits for each write.", nil, nil),
		patientPuts: prometheus.NewDesc("invoice_store_patient_puts_total",
			"The part of invoice_store_puts_total written patiently: an issued record saved while its result is published, which joins a commit another write starts.", nil, nil),
		patientPutSeconds: prometheus.NewDesc("invoice_store_patient_put_seconds_total",
			"The part of invoice_store_put_seconds_total taken by patient writes; the rest, over the rest of the writes, is the mean time a request waits for a write before its result.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.commits
	ch <- c.failed
	ch <- c.writes
	ch <- c.commitSeconds
	ch <- c.puts
	ch <- c.putSeconds
	ch <- c.patientPuts
	ch <- c.patientPutSeconds
	ch <- c.writable
	ch <- c.diskFree
	ch <- c.diskSize
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.db.Stats()
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(st.FailedCommits))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Requests))
	ch <- prometheus.MustNewConstMetric(c.commitSeconds, prometheus.CounterValue, st.CommitTime.Seconds())
	ch <- prometheus.MustNewConstMetric(c.puts, prometheus.CounterValue, float64(st.Puts))
	ch <- prometheus.MustNewConstMetric(c.putSeconds, prometheus.CounterValue, st.PutTime.Seconds())
	ch <- prometheus.MustNewConstMetric(c.patientPuts, prometheus.CounterValue, float64(st.PatientPuts))
	ch <- prometheus.MustNewConstMetric(c.patientPutSeconds, prometheus.CounterValue, st.PatientPutTime.Seconds())
	writable := 1.0
	if c.db.Healthy() != nil {
		writable = 0
	}
	ch <- prometheus.MustNewConstMetric(c.writable, prometheus.GaugeValue, writable)
	if free, size, err := c.db.DiskSpace(); err == nil {
		ch <- prometheus.MustNewConstMetric(c.diskFree, prometheus.GaugeValue, float64(free))
		ch <- prometheus.MustNewConstMetric(c.diskSize, prometheus.GaugeValue, float64(size))
	}
}
