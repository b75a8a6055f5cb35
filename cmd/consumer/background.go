package main

import (
	"context"
	"errors"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// watchStore probes the order store while its last commit failed (a full or
// read-only disk): the consume loop pauses, nothing is acknowledged, and
// /readyz reports unready until a probe write succeeds again. It logs the
// failure, and each probe whose reason differs from the one logged last:
// /readyz gives the reasons to a caller on the host only, and what keeps
// the store paused can change (a full disk freed, then a read-only one).
func watchStore(ctx context.Context, db storeHealth, every time.Duration, log zerolog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing, logged := false, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := db.Healthy()
		if err == nil {
			if failing {
				log.Info().Msg("order store writes again: resuming")
				failing = false
			}
			continue
		}
		if !failing {
			log.Error().Err(err).Msg("order store cannot write: pausing, nothing is acknowledged until it can")
			failing, logged = true, err.Error()
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		perr := db.Probe(pctx) // success clears Healthy
		cancel()
		if perr != nil && ctx.Err() == nil && perr.Error() != logged {
			log.Error().Err(perr).Msg("order store still cannot write: a probe failed, for this reason now; still paused")
			logged = perr.Error()
		}
	}
}

// storeHealth is what watchStore needs of the order store (*store.DB).
type storeHealth interface {
	Healthy() error
	Probe(ctx context.Context) error
}

// refreshMetrics keeps the gauges that are read rather than counted up to
// date: consumer backlog and ack pending, the age of the oldest waiting
// request, orders by state, documents still to be kept and held sellers.
// Once stoodDown reports true it leaves the request consumer's gauges and
// the held sellers alone (run takes them off /metrics, consumingGauges).
func refreshMetrics(ctx context.Context, m *pipeline.Metrics, cons jetstream.Consumer, js jetstream.JetStream, topo pipeline.Topology, db *store.DB, p *pipeline.Pipeline, stoodDown func() bool) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	topo = topo.WithDefaults()
	for i := 0; ; i++ {
		consuming := !stoodDown()
		rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		if consuming {
			if info, err := cons.Info(rctx); err == nil {
				m.Backlog.Set(float64(info.NumPending))
				m.AckPending.Set(float64(info.NumAckPending))
				m.BacklogAge.Set(backlogAge(rctx, js, topo, info))
			}
		}
		if i%6 == 0 { // orders by state every 30 seconds: it reads an index
			if counts, err := db.Counts(rctx); err == nil {
				for _, s := range schemas.OrderStates {
					m.Orders.WithLabelValues(string(s)).Set(float64(counts[s]))
				}
			}
		}
		countPendingDocuments(rctx, m, db)
		cancel()
		if consuming {
			m.HeldSellers.Set(float64(len(p.HeldSellers())))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// countPendingDocuments sets the gauge of the issued orders whose
// documents are still to be kept from db's index; it leaves the gauge as
// it was when db cannot say.
func countPendingDocuments(ctx context.Context, m *pipeline.Metrics, db *store.DB) {
	if n, err := db.CountPendingDocuments(ctx); err == nil {
		m.DocumentsPending.Set(float64(n))
	}
}

// refreshDocumentsPending keeps the gauge of the issued orders whose
// documents are still to be kept up to date, every 5 seconds as
// refreshMetrics does, for a start refused (standByRefused), which reads
// none of refreshMetrics' other gauges.
func refreshDocumentsPending(ctx context.Context, m *pipeline.Metrics, db *store.DB) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		countPendingDocuments(rctx, m, db)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// consumingGauges are the gauges of the work this instance takes from its
// request consumer, which an instance that stood down takes off /metrics
// (refreshMetrics no longer reads them, and the consume loop, which sets
// the request consumer's missing, stops). The durable's backlog, ack
// pending and backlog age are the owner's to report: this instance's copy
// would raise the same backlog alert a second time, naming an instance
// that takes none of those requests. Its held sellers would stay held for
// ever: a hold ends when a probe gets through, and no request comes to it
// to probe with. Whether the request consumer is missing is the owner's to
// report too: this instance no longer creates it again, and its gauge
// would raise InvoiceRequestStreamDeleted naming an instance that is not
// the one to act (a refused start, standByRefused, exports none of these).
// Whether the request stream's unclaimed mark is unknown is the owner's
// too: this instance submits nothing any more, with a claim or without.
func consumingGauges(m *pipeline.Metrics) []prometheus.Collector {
	return []prometheus.Collector{m.Backlog, m.AckPending, m.BacklogAge, m.HeldSellers, m.ConsumerMissing, m.UnclaimedMarkUnknown}
}

// backlogAge is the age in seconds of the oldest request the consumer has
// not been delivered yet (0 when there is none).
func backlogAge(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, info *jetstream.ConsumerInfo) float64 {
	if info.NumPending == 0 {
		return 0
	}
	stream, err := js.Stream(ctx, topo.RequestStream)
	if err != nil {
		return 0
	}
	msg, err := stream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(info.Config.FilterSubject))
	if err != nil {
		return 0
	}
	return time.Since(msg.Time).Seconds()
}

// sweepOrphans removes acknowledged requests the server left in the
// work-queue request stream (pipeline.OrphanSweeper), shortly after start
// and then every 15 seconds (a sweep with nothing to do is one consumer
// info and one message lookup).
func sweepOrphans(ctx context.Context, s *pipeline.OrphanSweeper, m *pipeline.Metrics, log zerolog.Logger) {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := s.Sweep(sctx)
		cancel()
		m.Orphans.WithLabelValues("deleted").Add(float64(rep.Deleted))
		m.Orphans.WithLabelValues("kept").Add(float64(rep.Kept))
		// A request consumer the server does not have (the request
		// stream or its durable deleted) is the consume loop's to report
		// (pipeline.Loop.Missing), not every sweep's.
		gone := errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)
		switch {
		case err != nil && ctx.Err() == nil && !gone:
			log.Warn().Err(err).Int("deleted", rep.Deleted).Msg("sweep acknowledged requests left in the request stream")
		case rep.Deleted > 0 || rep.Kept > 0:
			log.Warn().Int("deleted", rep.Deleted).Int("kept", rep.Kept).
				Msg("acknowledged requests were left in the request stream by the server; deleted those the order store shows answered, kept the others for an operator")
		}
		t.Reset(15 * time.Second)
	}
}
