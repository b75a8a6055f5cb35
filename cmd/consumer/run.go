package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/scrub"
	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
)

// shutdownMargin is how long the shutdown may take beyond --shutdown-timeout
// (run): the requests in flight are abandoned at the timeout, and return at
// once to their cancelled contexts, unless something under them does not
// watch it; the document keeper gets a few seconds more, and the rest
// (closing NATS, the embedded server and the order store) takes a moment on
// a healthy disk. Below the 15 s that the systemd unit and the StatefulSet
// leave beyond the default timeout before they kill the process.
const shutdownMargin = 10 * time.Second

// run runs the consumer (serve) until ctx ends and its shutdown is done, or
// until the shutdown has taken --shutdown-timeout and shutdownMargin more.
// Then it returns an error saying what the shutdown was still waiting for,
// without waiting for it any longer: main exits. A write to the order store
// whose fdatasync a hung disk holds returns neither to a cancelled context
// nor to Close, and would hold the process past any timeout; it is not
// acknowledged, so JetStream delivers its request again, and bbolt's file
// survives a process that ends in the middle of a commit as it survives a
// crash.
func run(ctx context.Context, o *options, log zerolog.Logger) error {
	var step shutdownStep
	return boundShutdown(ctx, o.shutdownTO+shutdownMargin, &step, func() error { return serve(ctx, o, log, &step) })
}

// boundShutdown runs serve and returns its error, waiting for it at most
// limit once ctx ends; then it returns an error naming step, what serve's
// shutdown was waiting for, and leaves serve running.
func boundShutdown(ctx context.Context, limit time.Duration, step *shutdownStep, serve func() error) error {
	done := make(chan error, 1)
	// Not waited for when it outlives the limit: that is the point, and
	// the process ends right after.
	go func() { done <- serve() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("the shutdown did not finish within %v of the signal: exiting without waiting any longer for %s", limit, step)
	}
}

// shutdownStep says what serve is waiting for, for the error of a shutdown
// that runs out of time (boundShutdown). It is safe for concurrent use.
type shutdownStep struct{ what atomic.Pointer[func() string] }

// set records what serve waits for from now on.
func (s *shutdownStep) set(what string) { s.setFunc(func() string { return what }) }

// setFunc records what serve waits for from now on, told by what when it
// is asked (a count that changes meanwhile).
func (s *shutdownStep) setFunc(what func() string) { s.what.Store(&what) }

// String returns what serve waits for.
func (s *shutdownStep) String() string {
	if f := s.what.Load(); f != nil {
		return (*f)()
	}
	return "the start to end (the order store, NATS and the request consumer being set up)"
}

// serve wires the consumer together, runs it until ctx ends, and shuts down
// in the one order that loses nothing: stop pulling → finish in-flight work
// → close NATS → stop the embedded server → close the order store. It keeps
// step saying what the shutdown waits for. A start that finds another
// instance pulling from the request consumer stands by instead until ctx
// ends (standByRefused).
func serve(ctx context.Context, o *options, log zerolog.Logger, step *shutdownStep) error {
	if err := os.MkdirAll(o.dataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	// The order store first: its file lock is the single-instance guard of
	// the whole data directory, the embedded JetStream store included.
	db, err := store.Open(store.Config{Path: filepath.Join(o.dataDir, "orders.db"), MaxBatch: o.storeBatch, MaxBatchDelay: o.storeDelay, BusyBatchDelay: busyDelay(o.storeBusy)})
	if err != nil {
		return err
	}
	defer func() {
		step.set("the order store to close: its commit in progress, which may be waiting for the disk (no request waits for it any more)")
		if err := db.Close(); err != nil {
			log.Error().Err(err).Msg("close order store")
		}
	}()

	cfg, sb, err := loadSellers(o, log)
	if err != nil {
		return err
	}
	if sb != nil {
		defer func() {
			step.set("the in-process provider sandbox to stop")
			sb.close()
		}()
	}

	var ns *server.Server
	if o.natsURL == "" {
		sync := o.jsSync == "always"
		interval, _ := time.ParseDuration(o.jsSync)
		ns, err = startEmbedded(embeddedConfig{Listen: o.natsListen, DataDir: o.dataDir, SyncAlways: sync, SyncInterval: interval}, log)
		if err != nil {
			return err
		}
		defer func() {
			step.set("the embedded NATS server to stop (its JetStream store, under --data, may be waiting for the disk)")
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		// The server's URL, not --nats-listen's: with port 0 it names the
		// port the system picked.
		log.Info().Str("url", ns.ClientURL()).Str("jetstream_dir", filepath.Join(o.dataDir, "jetstream")).
			Str("fsync", o.jsSync).Msg("embedded NATS server with JetStream is running (use --nats-url for an external one)")
	}
	nc, err := connectNATS(o, ns, log)
	if err != nil {
		return err
	}
	defer func() {
		step.set("the NATS connection to close")
		nc.Close()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	subjects := schemas.Subjects{Prefix: o.prefix}
	topo := pipeline.Topology{Subjects: subjects, Replicas: o.replicas, Partitions: o.partitions, Reconfigure: o.reconfigure}.WithDefaults()
	setupCtx, cancelSetup := context.WithTimeout(ctx, pipeline.SetupTimeout)
	defer cancelSetup()
	// Before the streams and the durable are updated to this instance's
	// settings: a second instance must change nothing of the first one's
	// (its subjects, partitions, ack wait or pull limits) before it is
	// refused.
	if err := ensureAlone(setupCtx, js, topo, pipeline.ConsumerSettings{Partition: o.partition}, o, log); err != nil {
		if errors.Is(err, pipeline.ErrConsumerInUse) {
			return standByRefused(ctx, o, log, nc, db, err, step)
		}
		return err
	}
	if err := topo.Ensure(setupCtx, js); err != nil {
		if errors.Is(err, pipeline.ErrTopologyChanged) {
			return fmt.Errorf("%w. Start with the streams' --prefix, --partitions and --replicas (INVOICE_PREFIX, INVOICE_PARTITIONS, INVOICE_REPLICAS); to change them, stop every instance, follow deploy/README.md (\"Changing the number of partitions\", \"Changing the subject prefix\") and start one instance with --reconfigure-streams", err)
		}
		return err
	}
	me := pipeline.Owner{Started: time.Now().UTC().Round(0), Name: fmt.Sprintf("%s pid %d", connectionName(o), os.Getpid())}
	settings := pipeline.ConsumerSettings{Partition: o.partition, Workers: o.workers, AckWait: o.ackWait, Owner: me}
	cons, err := topo.EnsureConsumer(setupCtx, js, settings)
	if err != nil {
		return err
	}

	reg := newRegistry(db)
	metrics := pipeline.NewMetrics(reg)
	metrics.Partitions.Set(float64(max(o.partitions, 1)))

	httpClient := providers.NewHTTPClient(providers.HTTPConfig{Timeout: o.providerTO, MaxConns: o.workers})
	provs, err := buildProviders(setupCtx, cfg, js, o, httpClient, metrics)
	if err != nil {
		return err
	}
	docs, err := pipeline.OpenDocuments(setupCtx, js, httpClient, o.replicas)
	if err != nil {
		return err
	}
	validator, err := schemas.NewValidator(schemas.ValidatorConfig{MaxBytes: o.maxBytes, StrictTaxNumbers: o.strictTax, Providers: cfg.providerNames()})
	if err != nil {
		return err
	}
	// A results or dead-letter stream deleted while the consumer runs is
	// created again, with these settings and this instance's mark, by the
	// first publish that finds it missing, rather than at the next start.
	pub := pipeline.NewJetStreamPublisher(js, subjects).ExpectStreams(topo.ResultStream, topo.DeadLetterStream).
		RecreateStreams(topo.Streams(), me.String(), func(cfg jetstream.StreamConfig) {
			log.Warn().Str("stream", cfg.Name).Strs("subjects", cfg.Subjects).
				Msg("the stream was missing (deleted?): created again, empty, by this instance, with its settings; what it held before is gone")
		})
	p, err := pipeline.New(pipeline.Config{Subjects: subjects, MaxDeliver: o.maxDeliver, RedConfirmWait: o.redWait}, validator, metrics.TimedStore(db), pub, provs)
	if err != nil {
		return err
	}
	// A request stream or durable deleted while the consumer runs is
	// created again, with these settings, by the loop that finds it gone.
	recreate := func(ctx context.Context) (pipeline.RecreatedConsumer, error) {
		return topo.RecreateRequestConsumer(ctx, js, settings)
	}
	loop := pipeline.NewLoop(pipeline.LoopConfig{Workers: o.workers, AckWait: o.ackWait, Paused: db.Healthy, Recreate: recreate}, p, cons, log, metrics)
	// The keeper yields to the requests while they are behind.
	keeper := pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{Busy: loop.Behind}, log.With().Str("component", "documents").Logger(), metrics)
	defer keeper.Stop(context.Background()) // when run fails early; a no-op after the shutdown below
	p.KeepDocuments(keeper)

	status, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{Subjects: subjects, Partitions: o.partitions, Partition: o.partition}, p.Orders())
	if err != nil {
		return err
	}
	defer func() { _ = status.Stop() }()

	// Set when another instance took the request consumer (WatchOwner's
	// error): /readyz answers 503 with it from then on, the partner API
	// asks the owner, and the gauges of the durable's work are the owner's
	// to report.
	var stoodDown atomic.Pointer[error]
	stoodDownErr := func() error {
		if err := stoodDown.Load(); err != nil {
			return *err
		}
		return nil
	}
	isStoodDown := func() bool { return stoodDown.Load() != nil }

	// Background work, stopped and waited for before the connection closes.
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		step.set("the background work to stop (the order store's probe, the metrics, the sweep of the request stream, the HTTP servers)")
		stopBackground()
		background.Wait()
	}()
	background.Go(func() { watchStore(bgCtx, db, 5*time.Second, log) })
	background.Go(func() { refreshMetrics(bgCtx, metrics, cons, js, topo, db, p, isStoodDown) })
	reqStream, err := js.Stream(setupCtx, topo.RequestStream)
	if err != nil {
		return fmt.Errorf("request stream: %w", err)
	}
	if o.noClaim {
		// --jumdata-no-claim: a new jumdata order is submitted without a
		// durable claim while no request has waited longer than jumdata
		// remembers a taskId (pipeline.Backlog); until the first reading,
		// every order is claimed.
		backlog := pipeline.NewStreamBacklog(reqStream)
		if err := backlog.Refresh(setupCtx); err != nil {
			log.Warn().Err(err).Msg("request stream state unreadable: every new order is claimed before it is submitted")
		}
		p.WatchBacklog(backlog, db)
		background.Go(func() {
			backlog.Run(bgCtx, 5*time.Second, func(err error) { log.Warn().Err(err).Msg("request stream state") })
		})
	}
	// A crash may have left requests submitted without a claim (by this
	// run's or an earlier run's --jumdata-no-claim) and their orders
	// unrecorded: record them as a claim would have, before taking any.
	recoverCtx, cancelRecover := context.WithTimeout(ctx, pipeline.RecoverTimeout)
	n, err := p.RecoverUnclaimed(recoverCtx, reqStream, cons, db)
	cancelRecover()
	if err != nil {
		return err
	}
	if n > 0 {
		log.Warn().Int("orders", n).Msg("recorded requests a crash may have left submitted without a claim: each asks its provider before anything is submitted again")
	}
	sweeper := &pipeline.OrphanSweeper{Stream: reqStream, Consumer: cons, Store: db, Validator: validator, Subjects: subjects}
	// The sweep deletes from the request stream: once another instance
	// took the request consumer, that is the owner's to do.
	sweepCtx, stopSweep := context.WithCancel(bgCtx)
	defer stopSweep()
	background.Go(func() { sweepOrphans(sweepCtx, sweeper, metrics, log) })
	// Set once the shutdown begins: /readyz answers 503 from then on, while
	// the requests in flight finish and /healthz and /metrics are served.
	var draining atomic.Bool
	if o.httpListen != "" || o.partnerAddr != "" {
		secrets, scopes := map[string][]byte{}, map[string]map[string]bool{}
		for _, pc := range cfg.Partners {
			secrets[pc.Channel] = []byte(pc.Secret)
			if len(pc.Sellers) > 0 {
				scopes[pc.Channel] = map[string]bool{}
				for _, tn := range pc.Sellers {
					scopes[pc.Channel][tn] = true
				}
			}
		}
		partner := &partnerAPI{secrets: secrets, sellers: scopes, store: p.Orders(), docs: docs, window: 5 * time.Minute, now: time.Now,
			partitions: o.partitions, partition: o.partition, remote: statusLookup(nc, subjects), answers: metrics.PartnerAnswers,
			slots: newPartnerSlots(o.partnerMax), log: log.With().Str("component", "partner").Logger(),
			stoodDown: isStoodDown}
		ready := readiness{nc: nc, bound: loop.Bound, missing: loop.Missing, store: db.Healthy, draining: draining.Load, stoodDown: stoodDownErr}
		channels := make([]string, 0, len(secrets))
		for c := range secrets {
			channels = append(channels, c)
		}
		if err := startHTTP(bgCtx, o, ready, reg, partner, channels, &background, log); err != nil {
			return err
		}
	}

	if o.pprofListen != "" {
		served, err := serveHTTP(bgCtx, o.pprofListen, newPprofHandler())
		if err != nil {
			return fmt.Errorf("--pprof %s (INVOICE_PPROF): %w", o.pprofListen, err)
		}
		background.Go(func() {
			if err := <-served; err != nil {
				log.Error().Err(err).Msg("pprof server")
			}
		})
		log.Info().Str("addr", o.pprofListen).Msg("serving Go profiles at /debug/pprof/")
	}

	sellers := make([]string, 0, len(cfg.Sellers))
	for _, s := range cfg.Sellers {
		sellers = append(sellers, s.TaxNum+"="+s.Provider)
	}
	info := cons.CachedInfo()
	log.Info().Str("stream", info.Stream).Str("consumer", info.Name).Str("filter", info.Config.FilterSubject).
		Int("workers", o.workers).Int("max_deliver", o.maxDeliver).Bool("jumdata_no_claim", o.noClaim).Str("sellers", strings.Join(sellers, ",")).
		Str("status_subject", subjects.Status()).Str("order_store", filepath.Join(o.dataDir, "orders.db")).Msg("consuming invoice requests")

	loopCtx, stopLoop := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLoop()
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop.Run(loopCtx) }()
	// Another instance started at the same moment as this one passed
	// ensureAlone too: the one that started first keeps the durable (the
	// later one, if the first could not read it for long meanwhile: its
	// successor). The other stands down and stands by.
	taken := make(chan error, 1)
	background.Go(func() {
		err := pipeline.WatchOwner(bgCtx, cons, pipeline.OwnerWatch{
			Me: me,
			Reclaim: func(ctx context.Context) error {
				_, err := topo.EnsureConsumer(ctx, js, settings)
				return err
			},
			OnError: func(err error) {
				if nc.IsConnected() { // an outage is logged as such already
					log.Warn().Err(err).Msg("request consumer owner")
				}
			},
		})
		if err != nil {
			taken <- err
		}
	})

	// Either way the loop stops pulling first, before this instance says
	// it is stopping (/readyz) and before anything that may wait (the
	// flush below, up to 2 s on a slow link): meanwhile it would go on
	// taking requests and submitting them to the providers. The requests
	// it took stay in flight and are finished below; those its pull
	// requests still bring are put back (pipeline.Loop.Run).
	select {
	case <-ctx.Done():
		stopLoop()
		draining.Store(true)
		log.Info().Dur("deadline", o.shutdownTO).Msg("shutting down: stop pulling, finish in-flight requests")
	case err := <-taken:
		stopLoop()
		stoodDown.Store(&err)
		// Standing by, it answers scrapes and /healthz as one that
		// consumes: the gauge tells an alert (InvoiceConsumerStoodDown)
		// that it takes nothing, whether or not the owner still runs,
		// which this instance cannot tell.
		metrics.StoodDown.Set(1)
		for _, g := range consumingGauges(metrics) {
			reg.Unregister(g)
		}
		// The status requests of the durable's sellers are the owner's
		// to answer from now on: this order store holds none of its
		// orders, and the queue group would hand this instance its share
		// of the requests while it finishes its own in flight.
		_ = status.Stop()
		// Stop queues the service's unsubscriptions and returns; once
		// the server has them (a flush's round trip), no status request
		// sent after this instance says it stood down reaches it. During
		// an outage the flush fails, and the server, which lost the
		// connection, holds no subscription of it.
		_ = nc.FlushTimeout(2 * time.Second)
		stopSweep()
		log.Error().Err(fmt.Errorf("%w. %s: this one stops taking requests", err, twoInstancesRisk)).Dur("deadline", o.shutdownTO).
			Msg("standing down: stop pulling, finish in-flight requests, then stand by until stopped")
	case err := <-loopDone:
		if err == nil {
			err = errors.New("stopped without being asked to")
		}
		return fmt.Errorf("consume loop: %w", err)
	}
	step.setFunc(func() string { return fmt.Sprintf("the requests in flight (%d) to finish", loop.InFlight()) })
	select {
	case err := <-loopDone:
		if err != nil {
			log.Error().Err(err).Msg("consume loop")
			break
		}
		// Nothing in flight: the next start need not look for requests
		// submitted without a claim and left unrecorded.
		step.set("the record of a clean stop in the order store (without it, the next start reads the requests delivered and not acknowledged)")
		cleanCtx, cancelClean := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.StoppedCleanly(cleanCtx, reqStream, db); err != nil {
			log.Warn().Err(err).Msg("could not record the clean stop: the next start reads the requests delivered and not acknowledged")
		}
		cancelClean()
	case <-time.After(o.shutdownTO):
		// The loop's workers still use NATS and the order store: they are
		// cancelled, and waited for before either is closed.
		log.Warn().Int64("in_flight", loop.InFlight()).Msg("in-flight requests did not finish in time: abandoning them (each is logged with \"abandoned\"; nothing is acknowledged, JetStream delivers them again) and waiting for the consume loop to stop")
		loop.Abandon()
		step.setFunc(func() string {
			return fmt.Sprintf("the abandoned requests still in flight (%d) to return to their cancelled contexts (an order-store write waiting for the disk does not): none of them was acknowledged, JetStream delivers them again", loop.InFlight())
		})
		if err := <-loopDone; err != nil {
			log.Error().Err(err).Msg("consume loop")
		}
	}
	if err := stoodDownErr(); err != nil && ctx.Err() == nil {
		// Not an exit: a restart policy (systemd's Restart=on-failure,
		// a pod's restartPolicy) would start this instance again, refused
		// while the other runs (standByRefused), or taking the durable
		// back, with an order store that lacks the other's orders, the
		// moment the other restarts. Which of the two keeps the
		// durable is an operator's choice (README, At 3 a.m.); meanwhile
		// this one serves /healthz, /metrics and, asking the owner, the
		// partner API, and /readyz says why it is not ready. Its document
		// keeper goes on: it keeps the PDFs of the orders this instance
		// issued, listed in its own order store, which no other
		// instance's keeper reads.
		log.Error().Err(err).Msg("standing by: taking no requests until stopped (/readyz answers 503), still keeping the PDFs of the orders this instance issued. Stop this instance, or stop the other one and restart this one: keep the one whose data directory holds the orders")
		<-ctx.Done()
	}
	stopKeeper(keeper, step)
	step.set("the NATS connection to drain")
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn().Err(err).Msg("drain NATS connection")
	}
	log.Info().Msg("stopped")
	return nil
}

// newRegistry returns the registry /metrics serves, with the Go, process,
// peak memory and order store (db) collectors registered.
func newRegistry(db *store.DB) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	// The Go collector with the scheduler's metrics too: GOMAXPROCS and
	// how long runnable goroutines waited to run (go_sched_*), which rises
	// when the consumer's CPU falls behind its requests. A P held in a
	// system call (the order store's fdatasync) shows in it only in part:
	// the goroutines waiting for the network are not runnable until the
	// scheduler polls for them.
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), newPeakRSSCollector(), pipeline.NewStoreCollector(db))
	return reg
}

// stopKeeper stops the document keeper, keeping step saying so: the
// documents being kept get a few seconds; the rest stay listed in the
// order store for the next start (and are fetched when asked for).
func stopKeeper(keeper *pipeline.DocumentKeeper, step *shutdownStep) {
	step.set("the document keeper to stop (the orders whose PDFs it had in hand stay listed for the next start)")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keeper.Stop(ctx)
}

// standByRefused stands by after a start that ensureAlone refused
// (refused, pipeline.ErrConsumerInUse: another instance pulls from the
// request consumer) until ctx ends, then returns nil, as an instance that
// stood down does (serve). Not an exit: a restart policy (systemd's
// Restart=on-failure, a pod's restartPolicy) would start this instance
// again and again, each start refused while the other runs, and the first
// one that finds the durable free for a moment (the other restarting)
// would take it with an order store that lacks the other's orders. It
// takes nothing and changes nothing (the streams, the durable and its
// owner record, the document bucket are left as the other has them), and
// never takes the durable by itself: which of the two keeps it is an
// operator's choice (README, At 3 a.m.). Meanwhile it serves /healthz,
// /metrics (invoice_consumer_stood_down 1, invoice_partitions, the
// document keeper's, the order store's and the process's metrics: nothing
// of the durable's work, which the other reports) and /readyz, 503 with
// the refusal; not the partner API, which this instance has not set up (a
// load balancer sends nothing to an instance that is not ready):
// --partner-http, when set, is listened on and answers 404.
//
// It keeps the PDFs of the orders it issued before (keepOwnDocuments), as
// an instance that stood down does. It keeps step saying what its stop
// waits for.
func standByRefused(ctx context.Context, o *options, log zerolog.Logger, nc *nats.Conn, db *store.DB, refused error, step *shutdownStep) error {
	reg := newRegistry(db)
	// The gauges of pipeline.Metrics that an instance that stood down
	// exports too, and the document keeper's; the others would read as
	// zeros of work this instance does not do.
	metrics := pipeline.NewMetrics(prometheus.NewRegistry())
	metrics.Partitions.Set(float64(max(o.partitions, 1)))
	metrics.StoodDown.Set(1)
	reg.MustRegister(metrics.Partitions, metrics.StoodDown, metrics.Documents, metrics.DocumentsPending)

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	defer func() {
		step.set("the HTTP servers to stop")
		stopBackground()
		background.Wait()
	}()
	ready := readiness{nc: nc, bound: func() bool { return false }, store: db.Healthy, stoodDown: func() error { return refused }}
	if err := startHTTP(bgCtx, o, ready, reg, nil, nil, &background, log); err != nil {
		return err
	}
	log.Error().Err(refused).Msg("start refused: standing by, taking no requests and changing nothing, until stopped (/readyz answers 503); this instance never takes the request consumer by itself. Keep the instance whose data directory holds the orders: stop this one, or stop the other one and restart this one")
	background.Go(func() { refreshDocumentsPending(bgCtx, metrics, db) })
	keeper := keepOwnDocuments(ctx, o, log, nc, db, metrics)
	<-ctx.Done()
	if keeper != nil {
		stopKeeper(keeper, step)
	}
	log.Info().Msg("stopped")
	return nil
}

// keepOwnDocuments starts the document keeper of a start refused
// (standByRefused): the PDFs of the orders this instance issued while it
// held the request consumer before, which its order store lists and no
// other instance's keeper reads, are kept while it stands by rather than
// when it holds the request consumer again. It opens the document bucket
// as the other instance set it up (pipeline.OpenExistingDocuments),
// changing nothing of it. What the keeper writes is this order store's
// orders' PDFs alone, each under its order's own name and marked with its
// order, and their removal from this order store's index: nothing another
// instance's keeper writes but the PDF of an order both issued (each
// instance's order store lacks the other's orders, so both may have
// answered one order's request in their few seconds on one durable), the
// same order's PDF under the same name either way. It returns nil, the
// PDFs waiting in the order store, when the bucket cannot be opened: the
// log says why, and invoice_documents_pending keeps counting them.
func keepOwnDocuments(ctx context.Context, o *options, log zerolog.Logger, nc *nats.Conn, db *store.DB, metrics *pipeline.Metrics) *pipeline.DocumentKeeper {
	dlog := log.With().Str("component", "documents").Logger()
	js, err := jetstream.New(nc)
	if err == nil {
		octx, cancel := context.WithTimeout(ctx, pipeline.SetupTimeout)
		var docs *pipeline.ObjectDocuments
		docs, err = pipeline.OpenExistingDocuments(octx, js, providers.NewHTTPClient(providers.HTTPConfig{Timeout: o.providerTO, MaxConns: o.workers}))
		cancel()
		if err == nil {
			return pipeline.NewDocumentKeeper(docs, db, pipeline.KeeperConfig{}, dlog, metrics)
		}
	}
	if ctx.Err() == nil {
		dlog.Error().Err(err).Msg("standing by without keeping the PDFs of the orders this instance issued: they wait in its order store until it takes the request consumer again")
	}
	return nil
}

// connectionName names the consumer's NATS connection after its host,
// data directory and partition, so that the server's connection list
// (`nats server report connections`, /connz) tells instances apart.
func connectionName(o *options) string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		dir = o.dataDir
	}
	name := "invoicer-consumer " + host + " " + dir
	if o.partitions > 1 {
		name += fmt.Sprintf(" partition %d of %d", o.partition, o.partitions)
	}
	return name
}

// connectNATS connects to the embedded server in process, or to --nats-url
// with the NATS conventions for credentials and TLS; on either, replies come
// under --inbox-prefix when it is set.
func connectNATS(o *options, ns *server.Server, log zerolog.Logger) (*nats.Conn, error) {
	nlog := log.With().Str("component", "nats").Logger()
	opts := []nats.Option{
		nats.Name(connectionName(o)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if c.IsClosed() || c.IsDraining() {
				return // our own shutdown, not an outage
			}
			nlog.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
		}),
		// redactURL, not ConnectedUrlRedacted: that hides a password only,
		// and would log the token of nats://TOKEN@host.
		nats.ReconnectHandler(func(c *nats.Conn) { nlog.Info().Str("url", redactURL(c.ConnectedUrl())).Msg("reconnected to NATS") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { nlog.Warn().Err(err).Msg("NATS error") }),
	}
	if o.inboxPrefix != "" {
		// Replies of every kind — JetStream API answers, PubAcks, pulled
		// messages, key-value and object reads, request replies — arrive
		// under this prefix, which the server can allow to this user only.
		opts = append(opts, nats.CustomInboxPrefix(o.inboxPrefix))
	}
	url := o.natsURL
	if ns != nil {
		url = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(ns))
	} else {
		if o.natsCreds != "" {
			opts = append(opts, nats.UserCredentials(o.natsCreds))
		}
		if o.tlsCert != "" {
			opts = append(opts, nats.ClientCert(o.tlsCert, o.tlsKey))
		}
		if o.tlsCA != "" {
			opts = append(opts, nats.RootCAs(o.tlsCA))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		// Not wrapped: nats.go's error may quote the URL as given (url.Parse
		// quotes it whole when it cannot read it, a mistyped port or a
		// password that is not URL-safe), password or token included.
		return nil, fmt.Errorf("connect to NATS at %s: %s", redactURL(url), scrub.URLs(err.Error(), url, redactURL))
	}
	return nc, nil
}

// redactURL hides passwords in a NATS URL list, or in a provider URL of the
// config file, for logs and errors.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "[redacted]" + p[at:]
			} else {
				parts[i] = "[redacted]" + p[at:] // user:password@host without a scheme
			}
		}
	}
	return strings.Join(parts, ",")
}

// The partner channel of the default mode, for trying the partner API.
const (
	demoPartnerChannel = "demo"
	demoPartnerSecret  = "demo-partner-secret"
)

// sandboxRunner is the in-process provider sandbox of the default mode.
type sandboxRunner struct {
	srv *http.Server
	sb  *sandbox.Server
	url string
}

func (s *sandboxRunner) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// loadSellers loads --config, or without it starts the in-process sandbox
// and returns its demo sellers.
func loadSellers(o *options, log zerolog.Logger) (*fileConfig, *sandboxRunner, error) {
	if o.configFile != "" {
		cfg, err := loadConfig(o.configFile)
		return cfg, nil, err
	}
	ln, err := net.Listen("tcp", o.sandboxAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("provider sandbox: listen on %s: %w", o.sandboxAddr, err)
	}
	sb := sandbox.New(sandbox.Config{Latency: o.sandboxDelay, Jumdata: sandbox.JumdataConfig{AnySeller: false}})
	url := "http://" + ln.Addr().String()
	sb.SetBaseURL(url)
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	runner := &sandboxRunner{srv: srv, sb: sb, url: url}
	cfg := &fileConfig{Partners: []partnerConfig{{Channel: demoPartnerChannel, Secret: demoPartnerSecret}}, Sellers: []sellerConfig{
		{TaxNum: sandbox.DefaultNuonuoSeller, Provider: "nuonuo", Nuonuo: &nuonuoConfig{
			BaseURL: url, AppKey: sandbox.DefaultNuonuoAppKey, AppSecret: sandbox.DefaultNuonuoAppSecret, Family: "ElectronInvoice",
		}},
		{TaxNum: sandbox.DefaultJumdataSeller, Provider: "jumdata", Jumdata: &jumdataConfig{
			BaseURL: url, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret, Token: sandbox.DefaultJumdataToken,
			DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm,
		}},
	}}
	log.Warn().Str("sandbox", url).Str("nuonuo_seller", sandbox.DefaultNuonuoSeller).Str("jumdata_seller", sandbox.DefaultJumdataSeller).
		Str("partner_channel", demoPartnerChannel).
		Msg("no --config: issuing through the in-process provider SANDBOX with demo sellers; these invoices are not real")
	return cfg, runner, nil
}

// busyDelay maps --store-busy-delay to store.Config.BusyBatchDelay, whose
// zero means the default: the flag's 0 means never waiting.
func busyDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// twoInstancesRisk says why two instances on one durable are stopped.
const twoInstancesRisk = "Each instance keeps its own order store, so two on one consumer could issue an invoice twice"

// ensureAlone refuses the start while another instance pulls from the same
// request consumer (pipeline.EnsureAlone: its ErrConsumerInUse, with the
// instance the durable's owner record names and the advice), and says so
// when the check has to watch the consumer for a few seconds.
func ensureAlone(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, s pipeline.ConsumerSettings, o *options, log zerolog.Logger) error {
	stream, durable := topo.WithDefaults().RequestStream, topo.Consumer(s).Durable
	cons, err := js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // the first start: nobody pulls from a durable that does not exist
	}
	if err != nil {
		return fmt.Errorf("request consumer %s on %s: %w", durable, stream, err)
	}
	check, err := pipeline.EnsureAlone(ctx, cons, pipeline.PullExpiry)
	if errors.Is(err, pipeline.ErrConsumerInUse) {
		fix := "stop the other instance, or run several with --partitions (deploy/README.md)"
		if o.partitions > 1 {
			fix = fmt.Sprintf("stop the other instance of partition %d, or give this one another --partition (INVOICE_PARTITION)", o.partition)
		}
		info, ierr := cons.Info(ctx)
		if ierr != nil {
			info = cons.CachedInfo()
		}
		return fmt.Errorf("%w%s. %s: %s. (An instance still finishing its last requests after it was told to stop acknowledges them too, for up to its --shutdown-timeout: if that is all that runs, restart this one once it has exited.)", err, ownerRecord(info), twoInstancesRisk, fix)
	}
	if err != nil {
		return err
	}
	if check.Waited > 0 {
		log.Info().Int("in_flight", check.InFlight).Dur("watched", check.Waited).
			Msg("the request consumer had pull requests waiting or deliveries under way when this instance started; watched until they expired: no other instance is pulling from it")
	}
	return nil
}

// ownerRecord names the instance that the request consumer's owner record
// (pipeline.OwnerMetadataKey, read by pipeline.ParseOwner) says took it
// last, as "; its owner record names NAME, started TIME", or "" when info
// holds no such record.
func ownerRecord(info *jetstream.ConsumerInfo) string {
	if info == nil {
		return ""
	}
	owner, ok := pipeline.ParseOwner(info.Config.Metadata[pipeline.OwnerMetadataKey])
	if !ok {
		return ""
	}
	return fmt.Sprintf("; its owner record names %s, started %s", owner.Name, owner.Started.Format(time.RFC3339))
}
