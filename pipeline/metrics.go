package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fapiaohub/invoicer/schemas"
)

// The native histograms' resolution: each bucket at most 10% wider than the
// one below it, and at most 100 buckets a series (the resolution halves when
// a series would need more, and is reset after an hour at the earliest).
const (
	nativeBucketFactor = 1.1
	nativeMaxBuckets   = 100
)

// latencyOpts are the options of a latency histogram: 12 classic buckets
// from first up, each 2.5 times the one before, and a native histogram as
// well, for a Prometheus that scrapes them, with buckets 10% wide.
func latencyOpts(name, help string, first float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Name: name, Help: help,
		Buckets:                         prometheus.ExponentialBuckets(first, 2.5, 12),
		NativeHistogramBucketFactor:     nativeBucketFactor,
		NativeHistogramMaxBucketNumber:  nativeMaxBuckets,
		NativeHistogramMinResetDuration: time.Hour,
	}
}

// Metrics are the Prometheus metrics an operator watches. Create them with
// NewMetrics; a nil *Metrics records nothing.
type Metrics struct {
	// Messages counts processed messages by event (issued, rejected,
	// conflict, replayed, malformed, failed, accepted, retry, in_doubt,
	// held, action_required, busy, error).
	Messages *prometheus.CounterVec
	// Retries counts messages put back for another delivery, by event.
	Retries *prometheus.CounterVec
	// DeadLetters counts dead letters published, by reason.
	DeadLetters *prometheus.CounterVec
	// InFlight is the number of messages being processed.
	InFlight prometheus.Gauge
	// Processing is the time to process one message, by event.
	Processing *prometheus.HistogramVec
	// ProviderCalls is the latency of provider HTTP calls by provider,
	// method and answer code.
	ProviderCalls *prometheus.HistogramVec
	// OrderSaves is the latency of the pipeline's order-record saves
	// (Store.Put and Store.PutPatient, timed by TimedStore), by patient:
	// "false" for the saves a request waits for before its result (the
	// claim before a provider call above all), "true" for the issued
	// records saved while their results are published.
	OrderSaves *prometheus.HistogramVec
	// Backlog and AckPending are the request consumer's pending and
	// unacknowledged message counts, refreshed by the consumer binary.
	Backlog    prometheus.Gauge
	AckPending prometheus.Gauge
	// BacklogAge is the age in seconds of the oldest undelivered request.
	BacklogAge prometheus.Gauge
	// Orders is the number of orders in the store by state.
	Orders *prometheus.GaugeVec
	// HeldSellers is the number of sellers waiting for a person to act.
	HeldSellers prometheus.Gauge
	// Documents counts the DocumentKeeper's tries to keep an issued order's
	// documents, by outcome: kept, failed (tried again later).
	Documents *prometheus.CounterVec
	// DocumentsPending is the number of issued orders whose documents are
	// still to be kept (the order store's pending-documents index).
	DocumentsPending prometheus.Gauge
	// Orphans counts acknowledged requests found left in the request
	// stream (OrphanSweeper), by action: deleted, kept.
	Orphans *prometheus.CounterVec
	// Partitions is the partition count the instance was started with (1
	// without partitions), set by the consumer binary: every instance
	// exports it, so that an alert can count the instances that answer
	// against it and see one whose pod is gone, which has no series left.
	Partitions prometheus.Gauge
	// StoodDown is 1 once another instance took this one's request
	// consumer (WatchOwner's error), or from the start of one refused
	// because another instance pulls from it, set by the consumer binary:
	// the instance takes no requests and stands by until it is stopped,
	// alive and scraped like one that consumes, while the owner may be
	// gone and the partition consumed by nobody. 0 otherwise.
	StoodDown prometheus.Gauge
	// ConsumerMissing is 1 while the consume loop has no request consumer
	// to pull from, the server having none (the request stream or its
	// durable deleted) and the loop not having created it again yet
	// (LoopConfig.Recreate failing, or not set); 0 otherwise, and once
	// the loop has stopped (Loop.Run returned).
	ConsumerMissing prometheus.Gauge
	// UnclaimedMarkUnknown is 1, by request stream, while the pipeline
	// may submit orders without a claim (Pipeline.WatchBacklog, the
	// consumer's --jumdata-no-claim) and the stream's unclaimed mark is
	// unknown: its durable was found replaced unseen, or its first
	// delivery could not be checked against the durable bound, or the
	// marks could not be written when the loop created it again. Every
	// order of the stream is then claimed (safe, but what the opt-in
	// saves is lost) until a later check finds the durable bound, the
	// loop creates the stream's consumer again, or the instance starts
	// again. 0 otherwise; a stream gets its series once RecoverUnclaimed
	// has read it.
	UnclaimedMarkUnknown *prometheus.GaugeVec
	// PartnerAnswers counts the answers of the consumer binary's partner
	// API (GET /partner/queryInvoice) by result code: 0 success, 1001
	// and 1003-1006 the partner's side or a document not available yet,
	// 1007 too many queries at once, 1500 the consumer's side (1002 is not
	// answered: an unknown channel gets 1004).
	PartnerAnswers *prometheus.CounterVec

	// callCodes are the answer codes ProviderCalls has a series for, by
	// provider (callCodeLabel).
	callCodesMu sync.Mutex
	callCodes   map[string]map[string]bool
}

// maxCallCodes is the number of answer codes of one provider that get a
// series of their own in ProviderCalls; the codes after them, and any code
// longer than maxCallCodeBytes, are counted as CallCodeOther. The codes
// come from the provider's answers: one answering a new code every time
// must not grow the series without bound.
const (
	maxCallCodes     = 100
	maxCallCodeBytes = 32
)

// CallCodeOther is the code label of the provider calls whose answer code
// did not get a series of its own (maxCallCodes).
const CallCodeOther = "other"

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_messages_total", Help: "Request messages processed, by outcome event.",
		}, []string{"event"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_retries_total", Help: "Request messages put back for a later delivery, by event.",
		}, []string{"event"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_dead_letters_total", Help: "Dead letters published, by reason.",
		}, []string{"reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_in_flight", Help: "Request messages being processed.",
		}),
		Processing: prometheus.NewHistogramVec(latencyOpts("invoice_processing_seconds",
			"Time to process one request message, by outcome event.", 0.0005), []string{"event"}),
		Documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_documents_total", Help: "Tries to keep an issued order's invoice PDFs in the object store in the background, by outcome: kept, failed (tried again later with backoff).",
		}, []string{"outcome"}),
		DocumentsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_documents_pending", Help: "Issued orders whose invoice PDFs are still to be kept; fetched from the provider when asked for meanwhile. It grows during a backlog, when the keeper yields to the requests.",
		}),
		Orphans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_request_orphans_total", Help: "Acknowledged requests the server left in the work-queue request stream, by action: deleted (the order store shows them answered) or kept (for an operator).",
		}, []string{"action"}),
		ProviderCalls: prometheus.NewHistogramVec(latencyOpts("invoice_provider_call_seconds",
			"Provider HTTP call latency, by provider, method and answer code.", 0.001), []string{"provider", "method", "code"}),
		OrderSaves: prometheus.NewHistogramVec(latencyOpts("invoice_order_save_seconds",
			"Time to save an order record durably, from the pipeline's call to the order store's answer (the wait for the commit in progress and the fsyncs included), failed saves too; by patient: false for the saves a request waits for before its result (the claim before a provider call above all), true for issued records saved while their results are published.", 0.0002), []string{"patient"}),
		Backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_consumer_backlog", Help: "Request messages not yet delivered to the consumer.",
		}),
		AckPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_consumer_ack_pending", Help: "Request messages delivered and not yet acknowledged.",
		}),
		BacklogAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_consumer_backlog_age_seconds", Help: "Age of the oldest request not yet delivered (0 when none).",
		}),
		Orders: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "invoice_orders", Help: "Orders in the order store, by state.",
		}, []string{"state"}),
		HeldSellers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_action_required_sellers", Help: "Sellers held until a person acts (credentials, login, face authentication).",
		}),
		Partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_partitions", Help: "Partitions the request stream is split into (--partitions; 1 without), one instance each.",
		}),
		StoodDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_consumer_stood_down", Help: "1 once another instance took this one's request consumer, or from the start of one refused because another pulls from it: it takes no requests and stands by until stopped (/readyz answers 503 \"stood down\"); 0 otherwise.",
		}),
		ConsumerMissing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "invoice_request_consumer_missing", Help: "1 while the request consumer (the request stream, or its durable) is found missing, until the consume loop has created it again (a second or so) or for as long as it cannot: nothing is taken (/readyz answers 503 \"request consumer missing\"); 0 otherwise, and once the consume loop has stopped.",
		}),
		UnclaimedMarkUnknown: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "invoice_unclaimed_mark_unknown", Help: "1 while orders may go without a claim (--jumdata-no-claim) and the request stream's unclaimed mark is unknown (its durable found replaced unseen, its first delivery not checked, or the mark not written when the consumer was created again): every order is claimed, safe but without the option's gain, until a later check finds the durable bound, the consumer is created again or the instance restarts; 0 otherwise. By request stream.",
		}, []string{"stream"}),
		PartnerAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "invoice_partner_answers_total",
			Help: "Answers of GET /partner/queryInvoice by result code: 0 success, 1001 and 1003-1006 the partner's side or a document not available yet, 1007 too many queries at once, 1500 the consumer's side.",
		}, []string{"result"}),
	}
	// Every series an alert counts with increase() exists from the start at
	// 0: a series that first appears at 1 shows no increase, and the first
	// dead letter after a start would go unnoticed.
	for _, e := range []string{EventIssued, EventRejected, EventConflict, EventReplayed, EventMalformed, EventFailed,
		EventAccepted, EventRetry, EventInDoubt, EventHeld, EventActionRequired, EventBusy, EventError} {
		m.Messages.WithLabelValues(e)
	}
	for _, e := range []string{EventAccepted, EventRetry, EventInDoubt, EventHeld, EventActionRequired, EventBusy, EventError} {
		m.Retries.WithLabelValues(e)
	}
	for _, r := range []schemas.DeadLetterReason{schemas.ReasonMalformed, schemas.ReasonExhausted, schemas.ReasonActionRequired} {
		m.DeadLetters.WithLabelValues(string(r))
	}
	for _, o := range []string{"kept", "failed"} {
		m.Documents.WithLabelValues(o)
	}
	// The partner API's result codes. 1002 is not answered: an unknown
	// channel gets 1004, as a wrong signature does.
	for _, r := range []string{"0", "1001", "1003", "1004", "1005", "1006", "1007", "1500"} {
		m.PartnerAnswers.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.Retries, m.DeadLetters, m.InFlight, m.Processing, m.ProviderCalls, m.OrderSaves,
			m.Backlog, m.AckPending, m.BacklogAge, m.Orders, m.HeldSellers, m.Documents, m.DocumentsPending, m.Orphans, m.Partitions,
			m.StoodDown, m.ConsumerMissing, m.UnclaimedMarkUnknown, m.PartnerAnswers)
	}
	return m
}

// ObserveCall implements providers.Observer.
func (m *Metrics) ObserveCall(provider, method, code string, took time.Duration) {
	if m == nil {
		return
	}
	m.ProviderCalls.WithLabelValues(provider, method, m.callCodeLabel(provider, code)).Observe(took.Seconds())
}

// callCodeLabel is code, or CallCodeOther once provider has answered
// maxCallCodes other codes, or when code is too long to be one.
func (m *Metrics) callCodeLabel(provider, code string) string {
	if len(code) > maxCallCodeBytes {
		return CallCodeOther
	}
	m.callCodesMu.Lock()
	defer m.callCodesMu.Unlock()
	seen := m.callCodes[provider]
	switch {
	case seen[code]:
		return code
	case len(seen) >= maxCallCodes:
		return CallCodeOther
	}
	if seen == nil {
		if m.callCodes == nil {
			m.callCodes = map[string]map[string]bool{}
		}
		seen = map[string]bool{}
		m.callCodes[provider] = seen
	}
	seen[code] = true
	return code
}

// TimedStore returns st with the latency of its Put and PutPatient calls
// recorded in OrderSaves; st itself when m is nil.
func (m *Metrics) TimedStore(st Store) Store {
	if m == nil {
		return st
	}
	return &timedStore{Store: st, waited: m.OrderSaves.WithLabelValues("false"), patient: m.OrderSaves.WithLabelValues("true")}
}

// timedStore is a Store whose writes are timed (Metrics.TimedStore).
type timedStore struct {
	Store
	waited, patient prometheus.Observer
}

// Put implements Store.
func (t *timedStore) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	start := time.Now()
	defer func() { t.waited.Observe(time.Since(start).Seconds()) }()
	return t.Store.Put(ctx, rec)
}

// PutPatient implements Store.
func (t *timedStore) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	start := time.Now()
	defer func() { t.patient.Observe(time.Since(start).Seconds()) }()
	return t.Store.PutPatient(ctx, rec)
}

// observe records one processed message.
func (m *Metrics) observe(out *Outcome, took time.Duration) {
	if m == nil {
		return
	}
	m.Messages.WithLabelValues(out.Event).Inc()
	m.Processing.WithLabelValues(out.Event).Observe(took.Seconds())
	if out.Action == Nak {
		m.Retries.WithLabelValues(out.Event).Inc()
	}
	if out.DeadLetter != "" {
		m.DeadLetters.WithLabelValues(string(out.DeadLetter)).Inc()
	}
}

// document counts one order handled by the document keeper.
func (m *Metrics) document(outcome string) {
	if m != nil {
		m.Documents.WithLabelValues(outcome).Inc()
	}
}
