package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// defaultBenchTimeout bounds a whole bench run when --timeout is not given.
const defaultBenchTimeout = 10 * time.Minute

// benchOptions are the bench subcommand's flags.
type benchOptions struct {
	n        int
	rate     float64
	workers  int
	window   int
	baseline bool
	backlog  bool
	metrics  string
	trace    string
	seller   string
	seed     uint64
	// timeout bounds the whole run: the global --timeout when given, else
	// defaultBenchTimeout.
	timeout time.Duration
}

func newBenchCommand(g *globals) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [-n N] [--rate R | --backlog] [--baseline] [--metrics URL] [--trace URL]",
		Short: "Measure the consumer: throughput and publish-to-result latency",
		Long: `bench publishes N valid issue requests for the sandbox's demo sellers (the
generator behind publisher demo; a consumer started without --config serves
them), waits for every result and reports the throughput, the latency from
publish to result (p50, p90, p99, max) and the results by status.

Order numbers are B<run>-NNNNNNN, unique per run: the run tag comes from
the clock, so that two runs never share an order number (the request stream
would drop a repeated one as a duplicate within its 10-minute window, and
the consumer answer it from its order store after that). --seed N repeats a
run's requests: the same N gives the same bodies, byte for byte but for the
run tag (every request's invoiceDate is ` + benchDate.Format(timeLayout) + ` for that);
bench prints the seed it used. The results are read with
a JetStream ordered consumer on the result stream, opened before the first
publish: a reader that falls behind lags, it never loses a result.

Modes:
  closed loop (default)  publish as fast as the server acknowledges, at most
                         --window publishes awaiting their acknowledgement;
                         latency runs from each publish to its result
  --rate R               open loop: request i is due at start + i/R; latency
                         runs from that scheduled time, so a publisher that
                         falls behind shows in the latency (and how far
                         behind the schedule it was is reported: p50, p99
                         and the largest)
  --backlog              publish everything first, then wait: start or
                         resume the consumer once the requests are in (with
                         an external NATS server; the default consumer's
                         server stops with it). Throughput then runs from
                         the first result to the last

Throughput is results per second from the first publish to the last result.
The result's time is the result stream's timestamp (the server's clock):
the figures do not depend on how fast bench reads, but assume bench's clock
agrees with the server's (the same host, or NTP).

--baseline also measures a bare relay on the same server, once before the
pipeline and once after it: bench creates the streams ` + relayRequestStream + `
(<prefix>.bench.relay.request.*) and ` + relayResultStream + ` like the
consumer's streams, pulls with --workers workers and as big a pull buffer,
and for each request publishes a result (awaiting its acknowledgement) and
acks it: no validation, store or provider. It publishes the same N bodies
the same way and waits the same way, then deletes its streams; the consumer
gets no requests meanwhile. baseline is the mean of the two relay runs and ratio is
pipeline/baseline: a machine whose speed drifts during the run (a shared
host) moves both relay runs, and bench says so when they differ by more
than a quarter.

--metrics URL samples the consumer's /metrics every second:
` + metricRSS + ` (the largest is reported) and
` + metricPeakRSS + ` (the consumer's VmHWM: the peak
since the consumer started, between samples too), and ` + metricCPU + `
from the first sample (taken before the first publish; or from the
consumer's start, ` + metricStartTime + `, when it started
during the run, as in a backlog run) to the last (reported in all and per
result: steadier than latency when other processes share the machine).
From the consumer's own counters over the same span it also reports where
the time went: the mean processing time of a message, the order-store
writes a result needed and their mean latency (the wait for the group
commit included; the writes before the result apart from the patient
ones saved while it is published) with the writes a commit carried and
the share of the run the store was committing, and the provider calls
a result needed and their mean latency; and, from the consumer's native
histograms (read in the protobuf format), the p99 of the processing time,
of the writes before the result and of the provider calls, as the upper
bound of the bucket that holds it (buckets about 9% wide). The last
reading waits (at most 5 s) until the consumer has acked the run's
requests, so that it counts the writes that end after their result.
After the last result bench also waits until ` + metricDocumentsPending + ` is 0: the
consumer keeps invoice PDFs in the background and yields to the requests
while they are behind, so a closed-loop run leaves PDFs to keep; bench
reports how long that took, and the relay run after the pipeline starts
only once it is done.

--trace URL (the consumer's --pprof address, such as http://127.0.0.1:6060)
records the consumer with Go's execution tracer for ` + defaultTraceLength.String() + ` during the run
(from a quarter of an open loop's schedule, 1s into a closed loop, or 1s
after a backlog is published; not at all in a run that is over by then)
and says how many goroutines ran at once, how long runnable goroutines
waited for a P, and how much of the time some waited while none ran, by
the system call in progress then: with GOMAXPROCS 1 a
goroutine in a system call (the order store's fdatasync) keeps the one P
until the runtime takes it away. The tracer costs the consumer some CPU
and latency while it runs: leave --trace out of the runs whose figures
count.

--timeout bounds the whole run here (default ` + defaultBenchTimeout.String() + `); connecting and
each JetStream API call or acknowledgement wait at most 5s of it.

The last line of standard output is for scripts:
  throughput=<n>/s p50=<ms> p99=<ms> baseline=<n>/s ratio=<x>
with baseline=- and ratio=- without --baseline, and - for any figure
that could not be measured (no results).

Exit status: 0 every request got a result, 1 some did not within
--timeout or could not be published, 2 usage error, 3 NATS or the
consumer's streams unreachable.`,
		Example: `  go run ./cmd/consumer --http 127.0.0.1:8080 &
  publisher bench -n 50000 --baseline --metrics http://127.0.0.1:8080/metrics
  publisher bench --rate 1000 -n 20000
  publisher bench -n 200000 --backlog --timeout 30m   # then start the consumer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSellerFilter(cmd.Flags()); err != nil {
				return err
			}
			if !cmd.Flags().Changed("seed") {
				o.seed = rand.Uint64() % 1_000_000
			}
			o.timeout = defaultBenchTimeout
			if cmd.Flags().Changed("timeout") {
				o.timeout = g.timeout
			}
			return runBench(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.VarP(intflag.NewInt(&o.n, 1000), "count", "n", "number of requests")
	f.Float64Var(&o.rate, "rate", 0, "open loop: publish this many requests per second on a fixed schedule (default: closed loop, as fast as acknowledged)")
	f.BoolVar(&o.backlog, "backlog", false, "publish every request first, then wait for the results (start the consumer after)")
	f.Var(intflag.NewInt(&o.window, defaultWindow), "window", "most publishes awaiting their acknowledgement at once")
	f.BoolVar(&o.baseline, "baseline", false, "also measure a bare relay on the same server, before and after the pipeline, and print the ratio")
	f.Var(intflag.NewInt(&o.workers, pipeline.DefaultWorkers), "workers", "the baseline relay's workers and pull buffer: pass the consumer's --workers")
	f.StringVar(&o.metrics, "metrics", "", "the consumer's /metrics URL, to report its memory, its CPU time and where its time went")
	f.StringVar(&o.trace, "trace", "", "the consumer's --pprof address (http://host:port), to record it with Go's execution tracer during the run and say where its goroutines waited")
	f.StringVar(&o.seller, "seller", "", "only requests for this demo seller (nuonuo, jumdata or its tax number; default both)")
	f.Var(intflag.NewUint64(&o.seed, 0), "seed", "random seed of the request bodies: the same seed, the same bodies but for the run tag in their order numbers (default: a random one, printed)")
	return cmd
}

// benchSellers resolves --seller.
func benchSellers(s string) ([]string, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "":
		return []string{demoNuonuo, demoJumdata}, nil
	case "NUONUO", demoNuonuo:
		return []string{demoNuonuo}, nil
	case "JUMDATA", strings.ToUpper(demoJumdata):
		return []string{demoJumdata}, nil
	}
	return nil, usageError("--seller %q: want nuonuo (%s) or jumdata (%s), the sandbox's demo sellers", s, demoNuonuo, demoJumdata)
}

func (o benchOptions) check() error {
	switch {
	case o.n < 1 || o.n > maxBenchRequests:
		return usageError("-n %d: want 1 to %d requests", o.n, maxBenchRequests)
	case o.rate < 0:
		return usageError("--rate %g: want a positive rate", o.rate)
	case o.rate > 0 && o.backlog:
		return usageError("--rate and --backlog do not go together: --backlog publishes as fast as it can")
	case o.window < 1:
		return usageError("--window must be at least 1")
	case o.workers < 1 || o.workers > 4096:
		return usageError("--workers %d: must be 1 to 4096, as the consumer's", o.workers)
	case o.timeout <= 0:
		return usageError("--timeout must be positive")
	case o.metrics != "" && !strings.HasPrefix(o.metrics, "http://") && !strings.HasPrefix(o.metrics, "https://"):
		return usageError("--metrics %q: want the consumer's metrics URL, such as http://127.0.0.1:8080/metrics", o.metrics)
	case o.trace != "" && !strings.HasPrefix(o.trace, "http://") && !strings.HasPrefix(o.trace, "https://"):
		return usageError("--trace %q: want the consumer's --pprof address as a URL, such as http://127.0.0.1:6060", o.trace)
	}
	return nil
}

// bench is one run of the bench subcommand.
type bench struct {
	o    benchOptions
	s    *session
	gen  *benchGen
	out  io.Writer
	errw io.Writer
	slow atomic.Bool // the connection reported a slow consumer
}

// benchTarget is what one phase publishes to and reads results from.
type benchTarget struct {
	name     string
	subjects schemas.Subjects
	results  jetstream.Stream
	// requests, when set, is the request stream, whose consumers the phase
	// waits for before its last metrics sample.
	requests jetstream.Stream
	// start, when set, starts the consumer of the phase (the relay): before
	// publishing, or after it with --backlog.
	start func() error
	// metrics is the consumer's /metrics URL, or "".
	metrics string
	// trace is the consumer's pprof address (--trace), or "".
	trace string
}

// benchPhase is what one phase measured.
type benchPhase struct {
	benchSummary
	name        string
	rec         *benchRecorder
	dups        int
	pubErr      error
	publishTook time.Duration // first publish to last acknowledgement
	lag         latencyStats  // open loop: how far behind the schedule the publishes were
	memory      string
	cpu         string // the consumer's CPU time over the phase, "" when unknown
	breakdown   string // where the consumer's time went, "" when unknown
	trace       string // what the consumer's execution trace showed, "" without --trace
	throughput  float64
}

func runBench(ctx context.Context, g *globals, o benchOptions, out, errw io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	sellers, err := benchSellers(o.seller)
	if err != nil {
		return err
	}
	run := benchRunTag(time.Now())
	gen, err := newBenchGen(o.seed, run, sellers, o.n, out)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// Connecting and each API call wait at most 5s of the run's bound.
	cg := *g
	cg.timeout = min(o.timeout, defaultTimeout)
	s, err := cg.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	b := &bench{o: o, s: s, gen: gen, out: out, errw: errw}
	s.nc.SetErrorHandler(b.natsError)
	reqStream, err := s.stream(ctx, s.subjects.RequestFilter(), "requests")
	if err != nil {
		return err
	}
	resStream, err := s.stream(ctx, s.subjects.ResultFilter(), "results")
	if err != nil {
		return err
	}

	mode := fmt.Sprintf("closed loop, at most %d publishes awaiting their acknowledgement; latency from each publish to its result", o.window)
	switch {
	case o.rate > 0:
		mode = fmt.Sprintf("open loop at %g/s; latency from each request's scheduled publish time to its result", o.rate)
	case o.backlog:
		mode = "backlog: publish everything, then wait; throughput from the first result to the last, latency from each publish to its result"
	}
	fmt.Fprintf(out, "bench run %s, seed %d: %d issue requests for %s\n", run, o.seed, o.n, strings.Join(sellers, ", "))
	fmt.Fprintf(out, "%s (the result's stream timestamp)\n", mode)

	var before, after *benchPhase
	if o.baseline {
		b.workersHint(ctx, reqStream)
		if before, err = b.baselinePhase(ctx, &cg, reqStream, resStream, "baseline"); err != nil {
			return err
		}
	}
	delivered, countErr := deliveries(ctx, reqStream)
	pipe := b.phase(ctx, benchTarget{name: "pipeline", subjects: s.subjects, results: resStream, requests: reqStream, metrics: o.metrics, trace: o.trace})
	b.print(pipe)
	if now, err := deliveries(ctx, reqStream); err == nil && countErr == nil {
		// Every request is delivered once; more deliveries are redeliveries:
		// requests put back (polls, retries) or left unacknowledged past the
		// ack wait, for example in a client buffer.
		fmt.Fprintf(out, "pipeline: the request consumers made %d deliveries for %d requests: %d redelivered\n",
			now-delivered, pipe.published, int64(now-delivered)-int64(pipe.published))
	}
	if o.metrics != "" && ctx.Err() == nil {
		// The consumer's document keeper yields to the requests during a
		// run and catches up after it: let it finish before anything else
		// is measured on this machine, and say how long it took.
		switch pending, took, err := waitDocuments(ctx, o.metrics); {
		case err != nil:
			fmt.Fprintf(out, "pipeline: could not wait for the consumer's documents: %v\n", err)
		case pending > 0:
			fmt.Fprintf(out, "pipeline: the consumer then kept the PDFs of the %.0f issued orders still waiting for them in %.1fs (%s, refreshed every 5 s)\n",
				pending, took.Seconds(), metricDocumentsPending)
		}
	}
	if o.baseline && ctx.Err() == nil {
		// The pipeline's figures are in; a second relay that cannot run
		// leaves the ratio to the first one rather than losing them.
		if after, err = b.baselinePhase(ctx, &cg, reqStream, resStream, "baseline-after"); err != nil {
			fmt.Fprintf(out, "baseline-after: %v; the ratio uses the relay run before the pipeline alone\n", err)
		}
	}
	base := meanBaseline(before, after)
	if before != nil && after != nil && before.throughput > 0 && after.throughput > 0 {
		lo, hi := min(before.throughput, after.throughput), max(before.throughput, after.throughput)
		fmt.Fprintf(out, "baseline: the relay did %.1f/s before the pipeline and %.1f/s after it; the ratio uses their mean, %.1f/s\n",
			before.throughput, after.throughput, base.throughput)
		if hi > 1.25*lo {
			fmt.Fprintln(out, "baseline: the two relay runs differ by more than a quarter: the machine's speed changed during the run, so the ratio is uncertain; run again")
		}
	}

	failed := false
	for _, p := range []*benchPhase{before, pipe, after} {
		if p != nil && (p.missing > 0 || p.failed > 0 || p.unsent > 0) {
			failed = true
		}
	}
	if b.slow.Load() {
		fmt.Fprintln(out, "the NATS connection reported a slow consumer: messages were dropped and the figures are not reliable")
		failed = true
	}
	if ctx.Err() != nil {
		fmt.Fprintf(out, "stopped: %v (--timeout %s)\n", context.Cause(ctx), o.timeout)
	}
	fmt.Fprintln(out, machineLine(pipe, base))
	if failed {
		return &exitError{code: exitFailed}
	}
	return nil
}

// natsError notes a slow consumer on the connection: a subscription that
// dropped messages. The ordered consumers bench reads with pull their
// messages and should never meet one.
func (b *bench) natsError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.slow.Store(true)
	}
}

// meanBaseline returns the baseline the ratio is taken against: the mean
// throughput of the relay runs before and after the pipeline, or the one
// that has a figure; nil without a baseline.
func meanBaseline(before, after *benchPhase) *benchPhase {
	switch {
	case before == nil:
		return nil
	case after == nil || after.throughput <= 0:
		return before
	case before.throughput <= 0:
		return after
	}
	return &benchPhase{name: "baseline", throughput: (before.throughput + after.throughput) / 2}
}

// baselinePhase runs a relay phase called name on its own connection and
// deletes its streams.
func (b *bench) baselinePhase(ctx context.Context, cg *globals, reqStream, resStream jetstream.Stream, name string) (*benchPhase, error) {
	rs, err := cg.connect()
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	rs.nc.SetErrorHandler(b.natsError)
	relay, err := newBenchRelay(ctx, rs, reqStream.CachedInfo().Config, resStream.CachedInfo().Config, b.o.workers)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "%s: a bare relay with %d workers on %s → %s\n", name, b.o.workers, relayRequestStream, relayResultStream)
	p := b.phase(ctx, benchTarget{name: name, subjects: relay.subjects, results: relay.results, start: relay.start})
	relayErr := relay.stop()
	if err := relay.deleteStreams(ctx); err != nil {
		fmt.Fprintln(b.out, name+":", err)
	}
	b.print(p)
	if relayErr != nil {
		fmt.Fprintln(b.out, name+":", relayErr)
	}
	return p, nil
}

// workersHint says so when the consumer's durable looks sized for another
// worker count than --workers (topology: MaxAckPending = 2×workers +
// waiting room).
func (b *bench) workersHint(ctx context.Context, reqStream jetstream.Stream) {
	cctx, cancel := b.s.ctx(ctx)
	defer cancel()
	c, err := reqStream.Consumer(cctx, pipeline.DefaultDurable)
	if err != nil {
		return
	}
	mp := c.CachedInfo().Config.MaxAckPending
	if w := (mp - pipeline.DefaultWaiting) / 2; w > 0 && w != b.o.workers && mp == 2*w+pipeline.DefaultWaiting {
		fmt.Fprintf(b.out, "note: the consumer's durable %s is sized for %d workers (MaxAckPending %d); the baseline uses --workers %d\n", pipeline.DefaultDurable, w, mp, b.o.workers)
	}
}

// phase publishes the N requests to t and waits for their results, in the
// same way for the pipeline and the baseline.
func (b *bench) phase(ctx context.Context, t benchTarget) *benchPhase {
	rec := newBenchRecorder(b.o.n, time.Now())
	p := &benchPhase{name: t.name, rec: rec}
	toks := make([]string, len(b.gen.sellers))
	for i, s := range b.gen.sellers {
		toks[i] = sellerToken(s)
	}
	// Follow the results before the first publish, from shortly before
	// now: none is missed (the ordered consumer pulls, so a reader that
	// falls behind only lags), and the results of other orders are told
	// apart by their order numbers.
	iter, _, err := b.s.follow(ctx, t.results, resultFilters(t.subjects, nil, toks), orderedFrom{since: 2 * time.Second})
	if err != nil {
		p.pubErr = err
		p.benchSummary = rec.summary()
		return p
	}
	defer iter.Stop()

	var bg sync.WaitGroup
	sctx, stopSampling := context.WithCancel(ctx)
	var sampler *memorySampler
	if t.metrics != "" {
		sampler = newMemorySampler(t.metrics)
		sampler.sample(sctx) // before the first publish: the counters start from here
		bg.Go(func() { sampler.run(sctx) })
	}
	// traceRun starts --trace's recording, its delay counted from now.
	traceRun := func() {
		if t.trace != "" {
			bg.Go(func() { p.trace = b.traceConsumer(ctx, sctx, t.trace) })
		}
	}
	start := func() {
		if t.start == nil {
			return
		}
		if err := t.start(); err != nil && p.pubErr == nil {
			p.pubErr = err
		}
	}
	var reader sync.WaitGroup
	read := func(bar *progress) {
		reader.Go(func() {
			b.read(ctx, iter, rec, bar)
			bar.finish()
		})
	}

	if b.o.backlog {
		// Everything first, then the consumer; the ordered consumer keeps
		// the results until they are read.
		bar := newProgress(b.errw, b.o.n, t.name+": publishing")
		p.dups, p.lag, p.publishTook, err = b.publish(ctx, t.subjects, rec, bar)
		bar.finish()
		fmt.Fprintf(b.out, "%s: published %d request(s) in %s; waiting for their results (start the consumer now if it is stopped)\n",
			t.name, rec.expected(), p.publishTook.Round(time.Millisecond))
		traceRun()
		start()
		read(newProgress(b.errw, rec.expected(), t.name+": results"))
	} else {
		traceRun()
		read(newProgress(b.errw, b.o.n, t.name+": results"))
		start()
		p.dups, p.lag, p.publishTook, err = b.publish(ctx, t.subjects, rec, &progress{})
	}
	if err != nil && p.pubErr == nil {
		p.pubErr = err
	}
	reader.Wait()
	if sampler != nil && t.requests != nil {
		// The consumer acknowledges a request once its result is out and
		// its record saved, which can end after the result arrives: the
		// last sample waits for the acknowledgements, so that it counts
		// the run's last writes.
		awaitAcks(ctx, t.requests, settleWait)
	}
	stopSampling()
	bg.Wait()
	p.benchSummary = rec.summary()
	if sampler != nil {
		p.memory = sampler.report()
		p.cpu = sampler.cpuReport(p.benchSummary.got)
		p.breakdown = sampler.breakdownReport(p.benchSummary.got)
	}
	p.throughput = p.benchSummary.throughput(b.o.backlog)
	return p
}

// readWait is how long the reader waits for a result before it checks
// whether it is done.
const readWait = 500 * time.Millisecond

// read takes results until every request that was published has one, or
// ctx ends.
func (b *bench) read(ctx context.Context, iter jetstream.MessagesContext, rec *benchRecorder, bar *progress) {
	for ctx.Err() == nil && rec.waiting() {
		m, err := iter.Next(jetstream.NextMaxWait(readWait))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			continue // a timeout: check again; the ordered consumer recovers from the rest
		}
		if b.take(m, rec) {
			bar.step()
		}
	}
}

// take records one result event; it reports whether it was the first final
// result of one of the run's requests. The pipeline's headers say whose
// result it is; without them the body does.
func (b *bench) take(m jetstream.Msg, rec *benchRecorder) bool {
	h := m.Headers()
	seller, orderNo, status := h.Get(pipeline.HeaderSeller), h.Get(pipeline.HeaderOrderNo), schemas.Status(h.Get(pipeline.HeaderStatus))
	if orderNo == "" || status == "" {
		var res struct {
			SellerTaxNum string         `json:"sellerTaxNum"`
			OrderNo      string         `json:"orderNo"`
			Status       schemas.Status `json:"status"`
		}
		if json.Unmarshal(m.Data(), &res) != nil {
			rec.foreign++
			return false
		}
		seller, orderNo, status = res.SellerTaxNum, res.OrderNo, res.Status
	}
	i, ok := b.gen.index(orderNo)
	if !ok || i >= len(rec.sent) {
		rec.foreign++
		return false
	}
	if seller != b.gen.seller(i) {
		rec.wrong++
		return false
	}
	if !finalStatus(status) {
		rec.nonFinal++
		return false
	}
	stored := time.Now()
	if meta, err := m.Metadata(); err == nil {
		stored = meta.Timestamp
	}
	return rec.result(i, status, stored)
}

// publish publishes the requests, closed loop or on the --rate schedule,
// with at most --window awaiting their acknowledgement: one goroutine
// publishes, one awaits the acknowledgements in order. It returns the
// duplicates the stream reported, how far behind the schedule the publishes
// were (open loop), how long it took from the first publish to the last
// acknowledgement, and the first publish error.
func (b *bench) publish(ctx context.Context, subj schemas.Subjects, rec *benchRecorder, bar *progress) (dups int, lag latencyStats, took time.Duration, firstErr error) {
	type inflight struct {
		i int
		f jetstream.PubAckFuture
	}
	pending := make(chan inflight, b.o.window)
	// slots holds one token per publish awaiting its acknowledgement: taken
	// before the publish, given back once the acknowledgement is in.
	slots := make(chan struct{}, b.o.window)
	var mu sync.Mutex
	fail := func(i int, err error) {
		rec.markFailed(i)
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("publish %s: %w", b.gen.orderNo(i), b.s.pubError(err))
		}
	}
	var acks sync.WaitGroup
	acks.Go(func() {
		for p := range pending {
			select {
			case ack := <-p.f.Ok():
				if ack.Duplicate {
					dups++
				}
			case err := <-p.f.Err():
				fail(p.i, err)
			case <-ctx.Done():
				fail(p.i, fmt.Errorf("interrupted before the acknowledgement: %w", context.Cause(ctx)))
			}
			<-slots
			bar.step()
		}
	})

	var lags []time.Duration
	if b.o.rate > 0 {
		lags = make([]time.Duration, 0, b.o.n)
	}
	start := time.Now()
publishing:
	for i := range b.o.n {
		m := b.gen.msg(subj, i)
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break publishing
		}
		at := time.Now()
		if b.o.rate > 0 {
			due := start.Add(time.Duration(float64(i) * float64(time.Second) / b.o.rate))
			if !sandbox.SleepUntil(ctx, due) {
				break publishing
			}
			now := time.Now()
			at = scheduledAt(now, due)
			lags = append(lags, max(now.Sub(due), 0))
		}
		if ctx.Err() != nil {
			break
		}
		rec.markSent(i, at)
		f, err := b.s.js.PublishMsgAsync(m)
		if err != nil {
			<-slots
			fail(i, err)
			continue
		}
		select {
		case pending <- inflight{i, f}:
		case <-ctx.Done():
			<-slots
			fail(i, fmt.Errorf("interrupted before the acknowledgement: %w", context.Cause(ctx)))
			break publishing
		}
	}
	close(pending)
	acks.Wait()
	return dups, latencyOf(lags), time.Since(start), firstErr
}

// scheduledAt returns the wall-clock time at which a request due at due
// (on the monotonic clock, now or earlier) should have been published: now's
// wall-clock reading less how late now is. The results' times are the
// server's wall clock, and due's own wall reading is start's plus the
// schedule's offset, which drifts from the wall clock while that is slewed
// (a virtual machine's clock catching up after a pause drifted 3,250 ppm
// here, 65 ms over a 20 s run, and made every latency look 0–100 ms longer).
// A latency taken between two wall-clock readings moments apart stays right.
func scheduledAt(now, due time.Time) time.Time {
	return now.Add(-now.Sub(due)).Round(0)
}

// print writes a phase's figures.
func (b *bench) print(p *benchPhase) {
	w, name := b.out, p.name
	fmt.Fprintf(w, "%s: published %d of %d (duplicates %d, failed %d, not published %d) in %s",
		name, p.published, p.n, p.dups, p.failed, p.unsent, p.publishTook.Round(time.Millisecond))
	if p.publishTook > 0 {
		fmt.Fprintf(w, ", %.0f/s", float64(p.published)/p.publishTook.Seconds())
	}
	if b.o.rate > 0 {
		// The open-loop latencies count from the schedule: this much of
		// them is the publisher's own delay (its CPU, its timer).
		fmt.Fprintf(w, "; behind the schedule p50 %s, p99 %s, at most %s ms", ms(p.lag.p50), ms(p.lag.p99), ms(p.lag.max))
	}
	fmt.Fprintln(w)
	if p.pubErr != nil {
		fmt.Fprintf(w, "%s: %v\n", name, p.pubErr)
	}
	span, from := p.lastDone-p.firstSent, "first publish"
	if b.o.backlog {
		span, from = p.lastDone-p.firstDone, "first result"
	}
	fmt.Fprintf(w, "%s: %d result(s), %s from the %s to the last result: %.1f/s\n", name, p.got, span.Round(time.Millisecond), from, p.throughput)
	if l := p.latency; l.n > 0 {
		fmt.Fprintf(w, "%s: latency ms: p50 %s, p90 %s, p99 %s, max %s\n", name, ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max))
	}
	fmt.Fprintf(w, "%s: results: %s", name, countLine(p.counts, schemas.Statuses))
	if p.missing > 0 {
		fmt.Fprintf(w, "; %d request(s) without a result", p.missing)
	}
	fmt.Fprintln(w)
	r := p.rec
	var notes []string
	if r.extra > 0 {
		notes = append(notes, fmt.Sprintf("%d repeated final result(s)", r.extra))
	}
	if r.nonFinal > 0 {
		notes = append(notes, fmt.Sprintf("%d %s result(s) before the final one", r.nonFinal, schemas.StatusActionRequired))
	}
	if r.wrong > 0 {
		notes = append(notes, fmt.Sprintf("%d result(s) of this run's order numbers with another seller", r.wrong))
	}
	if r.skewed > 0 {
		notes = append(notes, fmt.Sprintf("%d result(s) stored before their publish by this host's clock (counted as 0 ms: are the clocks apart?)", r.skewed))
	}
	if r.foreign > 0 {
		notes = append(notes, fmt.Sprintf("%d result(s) of other orders ignored", r.foreign))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "%s: %s\n", name, strings.Join(notes, "; "))
	}
	if p.memory != "" {
		fmt.Fprintf(w, "%s: %s\n", name, p.memory)
	}
	if p.cpu != "" {
		fmt.Fprintf(w, "%s: %s\n", name, p.cpu)
	}
	if p.breakdown != "" {
		fmt.Fprintf(w, "%s: %s\n", name, p.breakdown)
	}
	if p.trace != "" {
		fmt.Fprintf(w, "%s: %s\n", name, p.trace)
	}
}

// ms formats a duration in milliseconds, as the last line has them.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// machineLine is the last line of the output:
// "throughput=<n>/s p50=<ms> p99=<ms> baseline=<n>/s ratio=<x>", with "-"
// for what was not measured.
func machineLine(pipe, base *benchPhase) string {
	rate := func(p *benchPhase) string {
		if p == nil || p.throughput <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f/s", p.throughput)
	}
	p50, p99 := "-", "-"
	if pipe.latency.n > 0 {
		p50, p99 = ms(pipe.latency.p50), ms(pipe.latency.p99)
	}
	ratio := "-"
	if base != nil && base.throughput > 0 && pipe.throughput > 0 {
		ratio = fmt.Sprintf("%.3f", pipe.throughput/base.throughput)
	}
	return fmt.Sprintf("throughput=%s p50=%s p99=%s baseline=%s ratio=%s", rate(pipe), p50, p99, rate(base), ratio)
}

// settleWait bounds how long a phase waits for the consumer's last
// acknowledgements before its last metrics sample.
const settleWait = 5 * time.Second

// awaitAcks waits, for at most within, until no consumer of the request
// stream has a request delivered and not yet acknowledged, or one still to
// deliver.
func awaitAcks(ctx context.Context, stream jetstream.Stream, within time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		settled := true
		lister := stream.ListConsumers(ctx)
		for info := range lister.Info() {
			settled = settled && info.NumAckPending == 0 && info.NumPending == 0
		}
		if settled && lister.Err() == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// deliveries sums the deliveries made so far by every consumer of the
// request stream (their consumer sequences).
func deliveries(ctx context.Context, stream jetstream.Stream) (uint64, error) {
	var n uint64
	lister := stream.ListConsumers(ctx)
	for info := range lister.Info() {
		n += info.Delivered.Consumer
	}
	return n, lister.Err()
}

// traceConsumer records the consumer at base (--trace) with Go's execution
// tracer for defaultTraceLength, from a quarter of an open loop's schedule
// (else 1 s after it is called: the start of the run, or the end of a
// backlog's publish), and returns the line to print. run ends with the run: one
// that ends before the delay is over is not traced, and the line says so
// when it ended during the trace.
func (b *bench) traceConsumer(ctx, run context.Context, base string) string {
	delay, length := time.Second, defaultTraceLength
	if b.o.rate > 0 {
		d := time.Duration(float64(b.o.n) / b.o.rate * float64(time.Second))
		delay, length = d/4, min(length, max(d/2, 100*time.Millisecond))
	}
	select {
	case <-ctx.Done():
		return ""
	case <-run.Done():
		return fmt.Sprintf("consumer trace (%s): none, the run ended before the trace was to begin %s into it", base, delay.Round(time.Millisecond))
	case <-time.After(delay):
	}
	var ended atomic.Int64 // when the run ended, in nanoseconds from began
	began := time.Now()
	stop := context.AfterFunc(run, func() { ended.Store(int64(time.Since(began))) })
	defer stop()
	tctx, cancel := context.WithTimeout(ctx, length+10*time.Second)
	defer cancel()
	s, err := fetchTrace(tctx, base, length)
	into := "into the run"
	if b.o.backlog {
		into = "after the backlog was published"
	}
	head := fmt.Sprintf("consumer trace (%s from %s %s, %s): ", length, delay.Round(time.Millisecond), into, base)
	if err != nil {
		return head + err.Error()
	}
	line := head + s.String()
	if e := time.Duration(ended.Load()); e > 0 && e < length {
		line += fmt.Sprintf(" (the run ended %s into the trace: the rest is the consumer after it)", e.Round(time.Millisecond))
	}
	return line
}
