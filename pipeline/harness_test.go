package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// The sellers of the harness: two Nuonuo sellers (so that one can be held
// while the other proceeds) and one jumdata seller.
const (
	nuonuoSeller  = sandbox.DefaultNuonuoSeller
	nuonuoSeller2 = "91440101MA5APD8X8J"
	jumdataSeller = sandbox.DefaultJumdataSeller
)

// MustJetStream starts an embedded NATS server with JetStream in dir and
// connects to it in process.
func MustJetStream(tb testing.TB, dir string) (*server.Server, *nats.Conn, jetstream.JetStream) {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "test", JetStream: true, StoreDir: dir, DontListen: true, NoSigs: true, NoLog: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns, nc, js
}

// harness runs the whole consumer in process: embedded JetStream, a real
// bbolt order store, the provider sandbox over real HTTP and the real
// provider clients.
type harness struct {
	t        testing.TB
	dir      string
	ns       *server.Server
	nc       *nats.Conn          // the consumer's connection (tests may cut it)
	js       jetstream.JetStream // on nc
	obs      jetstream.JetStream // the test's own connection: publishing and observing
	sb       *sandbox.Server
	sbURL    string
	db       *store.DB
	topo     pipeline.Topology
	cfg      pipeline.Config
	provs    pipeline.ProviderMap
	docs     pipeline.Documents
	docsTO   time.Duration
	wrapPub  func(pipeline.Publisher) pipeline.Publisher
	wrapDB   func(pipeline.Store) pipeline.Store
	paused   func() error
	backlog  pipeline.Backlog
	workers  int
	recreate bool
	// waiting is harnessOptions'.
	waiting int
	// beforeRecreate and metrics are harnessOptions'.
	beforeRecreate func(ctx context.Context)
	afterRecreate  func(rc pipeline.RecreatedConsumer, err error)
	metrics        *pipeline.Metrics
	// owner is harnessOptions'.
	owner    pipeline.Owner
	log      zerolog.Logger
	loop     *pipeline.Loop
	p        *pipeline.Pipeline // the pipeline of the last start
	stopLoop func()
	loopDone chan error

	mu      sync.Mutex
	results map[schemas.OrderKey][]schemas.Result
	dlq     []schemas.DeadLetter
	bad     []string // messages that broke their schema
	// seen is, by subject filter, the stream sequence of the last message
	// collect handed on (caughtUp).
	seen map[string]uint64

	// recovered is what the last start's RecoverUnclaimed recorded, and
	// cons the request consumer it started.
	recovered int
	cons      jetstream.Consumer
}

type harnessOptions struct {
	sandbox    sandbox.Config
	pipeline   pipeline.Config
	workers    int
	httpTimout time.Duration
	docs       pipeline.Documents // kept in the background when set
	docsTO     time.Duration      // the keeper's timeout
	// wrapPub, when set, wraps the publisher the pipeline uses.
	wrapPub func(pipeline.Publisher) pipeline.Publisher
	// wrapDB, when set, wraps the order store the pipeline uses.
	wrapDB func(pipeline.Store) pipeline.Store
	// paused, when set, is the loop's Paused instead of the store's Healthy.
	paused func() error
	// backlog, when set, is the pipeline's Backlog; streamBacklog gives it
	// the request stream's (refreshed every 50 ms).
	backlog       pipeline.Backlog
	streamBacklog bool
	// redConfirmAfter is the jumdata client's RedConfirmAfter (0: its
	// default).
	redConfirmAfter time.Duration
	// recreate makes the loop create its request consumer again, with
	// its stream, when they are deleted (LoopConfig.Recreate), as the
	// consumer binary does.
	recreate bool
	// beforeRecreate, when set, is called at each of the loop's tries to
	// create its request consumer again, on the try's context, before
	// the creation: a test holds a try there, as a server slow to answer
	// does, or lets another party act first.
	beforeRecreate func(ctx context.Context)
	// afterRecreate, when set, is called at each of the loop's tries to
	// create its request consumer again, after the creation, with what it
	// returned: a test acts on the server's files there, as the server's
	// removal of a deleted stream's does a moment after the creation.
	afterRecreate func(rc pipeline.RecreatedConsumer, err error)
	// metrics, when set, are the loop's metrics (nil otherwise).
	metrics *pipeline.Metrics
	// owner, when set, is the instance the request consumer's settings
	// name (ConsumerSettings.Owner), as the consumer binary's do: it
	// marks what the loop creates again as this instance's.
	owner pipeline.Owner
	// waiting, when set, is the request consumer's room for requests
	// waiting between deliveries (ConsumerSettings.Waiting; 0: its
	// default), which with the workers makes its MaxAckPending.
	waiting int
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, workers: o.workers, recreate: o.recreate, beforeRecreate: o.beforeRecreate, afterRecreate: o.afterRecreate, metrics: o.metrics, owner: o.owner, waiting: o.waiting}
	if h.workers == 0 {
		h.workers = 8
	}
	h.ns, _, h.obs = MustJetStream(t, filepath.Join(dir, "js"))
	var err error
	if h.nc, err = natsReconnect(h); err != nil {
		t.Fatal(err)
	}

	h.sb = sandbox.New(o.sandbox)
	srv := httptest.NewServer(h.sb.Handler())
	t.Cleanup(srv.Close)
	h.sbURL = srv.URL
	h.sb.SetBaseURL(srv.URL)

	h.topo = pipeline.Topology{MemoryStorage: false}
	ctx := context.Background()
	if err := h.topo.Ensure(ctx, h.obs); err != nil {
		t.Fatal(err)
	}
	h.cfg = o.pipeline
	h.docs, h.docsTO, h.wrapPub, h.wrapDB, h.backlog = o.docs, o.docsTO, o.wrapPub, o.wrapDB, o.backlog
	h.paused = o.paused
	if o.streamBacklog {
		stream, err := h.obs.Stream(ctx, pipeline.DefaultRequestStream)
		if err != nil {
			t.Fatal(err)
		}
		sb := pipeline.NewStreamBacklog(stream)
		if err := sb.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		bctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go sb.Run(bctx, 50*time.Millisecond, nil)
		h.backlog = sb
	}
	timeout := o.httpTimout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	httpCfg := providers.HTTPConfig{Timeout: timeout}
	client := providers.NewHTTPClient(httpCfg)
	var ts *nuonuo.TokenSource
	ts, err = nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{
		TokenURL: srv.URL + "/accessToken", AppKey: sandbox.DefaultNuonuoAppKey, AppSecret: sandbox.DefaultNuonuoAppSecret,
		Store: &nuonuo.MemoryTokenStore{}, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.provs = pipeline.ProviderMap{}
	for _, seller := range []string{nuonuoSeller, nuonuoSeller2} {
		c, err := nuonuo.New(nuonuo.Config{BaseURL: srv.URL, SellerTaxNum: seller, AppKey: sandbox.DefaultNuonuoAppKey,
			AppSecret: sandbox.DefaultNuonuoAppSecret, Tokens: ts, HTTPClient: client, HTTP: httpCfg, PollAfter: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		h.provs[seller] = c
	}
	jc, err := jumdata.New(jumdata.Config{BaseURL: srv.URL, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret,
		Token: sandbox.DefaultJumdataToken, SellerTaxNum: jumdataSeller, DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm,
		HTTPClient: client, HTTP: httpCfg, PollAfter: 50 * time.Millisecond, RedConfirmAfter: o.redConfirmAfter})
	if err != nil {
		t.Fatal(err)
	}
	h.provs[jumdataSeller] = jc

	if os.Getenv("PIPELINE_TEST_LOG") != "" {
		h.log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	} else {
		h.log = zerolog.Nop()
	}
	h.results = map[schemas.OrderKey][]schemas.Result{}
	h.seen = map[string]uint64{}
	h.collect(schemas.Subjects{}.ResultFilter(), func(data []byte) {
		if err := schemas.CheckResultJSON(data); err != nil {
			h.bad = append(h.bad, fmt.Sprintf("result breaks the schema: %v\n%s", err, data))
		}
		var res schemas.Result
		if err := json.Unmarshal(data, &res); err != nil {
			h.bad = append(h.bad, err.Error())
			return
		}
		k := schemas.OrderKey{Seller: res.SellerTaxNum, OrderNo: res.OrderNo}
		h.results[k] = append(h.results[k], res)
	})
	h.collect(schemas.Subjects{}.DeadLetterFilter(), func(data []byte) {
		if err := schemas.CheckDeadLetterJSON(data); err != nil {
			h.bad = append(h.bad, fmt.Sprintf("dead letter breaks the schema: %v", err))
		}
		var dl schemas.DeadLetter
		if err := json.Unmarshal(data, &dl); err != nil {
			h.bad = append(h.bad, err.Error())
			return
		}
		h.dlq = append(h.dlq, dl)
	})
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, b := range h.bad {
			t.Error(b)
		}
	})
	h.openStore()
	return h
}

func (h *harness) openStore() {
	db, err := store.Open(store.Config{Path: filepath.Join(h.dir, "orders.db"), NoSync: os.Getenv("BENCH_NOSYNC") != ""})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	h.t.Cleanup(func() { _ = h.db.Close() })
}

// collect hands every message of a stream subject to add (under h.mu)
// through an ordered consumer, so that duplicates suppressed by the stream
// are not counted twice, and notes how far it got (h.seen).
func (h *harness) collect(filter string, add func([]byte)) {
	ctx := context.Background()
	stream, err := h.obs.StreamNameBySubject(ctx, filter)
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.obs.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		h.t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		h.mu.Lock()
		defer h.mu.Unlock()
		add(m.Data())
		if meta, err := m.Metadata(); err == nil {
			h.seen[filter] = meta.Sequence.Stream
		}
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(cc.Stop)
}

// start runs the consume loop with a fresh pipeline.
func (h *harness) start() {
	h.t.Helper()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		h.t.Fatal(err)
	}
	var pub pipeline.Publisher = pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{})
	if h.wrapPub != nil {
		pub = h.wrapPub(pub)
	}
	var db pipeline.Store = h.db
	if h.wrapDB != nil {
		db = h.wrapDB(db)
	}
	p, err := pipeline.New(h.cfg, v, db, pub, h.provs)
	if err != nil {
		h.t.Fatal(err)
	}
	h.p = p
	if h.backlog != nil {
		p.WatchBacklog(h.backlog, h.db)
	}
	if h.docs != nil {
		keeper := pipeline.NewDocumentKeeper(h.docs, h.db, pipeline.KeeperConfig{Timeout: h.docsTO}, h.log, nil)
		h.t.Cleanup(func() { keeper.Stop(context.Background()) })
		p.KeepDocuments(keeper)
	}
	settings := h.settings()
	cons, err := h.topo.EnsureConsumer(context.Background(), h.js, settings)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cons = cons
	// As the consumer does: requests a crash left submitted without a
	// claim are recorded before any is taken.
	stream, err := h.obs.Stream(context.Background(), pipeline.DefaultRequestStream)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.recovered, err = p.RecoverUnclaimed(context.Background(), stream, cons, h.db); err != nil {
		h.t.Fatal(err)
	}
	paused := h.paused
	if paused == nil {
		paused = h.db.Healthy
	}
	lc := pipeline.LoopConfig{Workers: h.workers, AckWait: 5 * time.Second, ProcessTimeout: 20 * time.Second, Paused: paused}
	if h.recreate {
		lc.Recreate = func(ctx context.Context) (pipeline.RecreatedConsumer, error) {
			if h.beforeRecreate != nil {
				h.beforeRecreate(ctx)
			}
			rc, err := h.topo.RecreateRequestConsumer(ctx, h.js, settings)
			if h.afterRecreate != nil {
				h.afterRecreate(rc, err)
			}
			return rc, err
		}
	}
	loop := pipeline.NewLoop(lc, p, cons, h.log, h.metrics)
	h.loop = loop
	ctx, cancel := context.WithCancel(context.Background())
	h.stopLoop = cancel
	h.loopDone = make(chan error, 1)
	go func() { h.loopDone <- loop.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// settings are the request consumer's settings of the loop start runs.
func (h *harness) settings() pipeline.ConsumerSettings {
	return pipeline.ConsumerSettings{Workers: h.workers, AckWait: 5 * time.Second, Owner: h.owner, Waiting: h.waiting}
}

// crashed waits for a loop whose connection the test closed under it: it
// returns the error that ends it, and nothing is recorded as a clean stop.
func (h *harness) crashed() error {
	h.t.Helper()
	if h.stopLoop == nil {
		return nil
	}
	stop := h.stopLoop
	h.stopLoop = nil
	defer stop()
	select {
	case err := <-h.loopDone:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("loop did not return within 30s of its connection's close")
		return nil
	}
}

// stop shuts the loop down gracefully.
func (h *harness) stop() {
	if h.stopLoop == nil {
		return
	}
	h.stopLoop()
	select {
	case err := <-h.loopDone:
		if err != nil {
			h.t.Errorf("loop: %v", err)
			break
		}
		// As the consumer does after a graceful stop.
		stream, err := h.obs.Stream(context.Background(), pipeline.DefaultRequestStream)
		if err == nil {
			err = h.p.StoppedCleanly(context.Background(), stream, h.db)
		}
		if err != nil && !errors.Is(err, store.ErrClosed) {
			h.t.Errorf("record the clean stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Error("loop did not stop within 30s")
	}
	h.stopLoop = nil
}

// halt stops the loop and returns Run's error, without recording a clean
// stop as stop does (which needs the request stream a test may have
// deleted).
func (h *harness) halt() error {
	h.t.Helper()
	if h.stopLoop == nil {
		return nil
	}
	h.stopLoop()
	h.stopLoop = nil
	select {
	case err := <-h.loopDone:
		return err
	case <-time.After(30 * time.Second):
		h.t.Fatal("loop did not stop within 30s")
		return nil
	}
}

// publish publishes a request on its seller's subject; msgID "" publishes
// without a Nats-Msg-Id.
func (h *harness) publish(seller string, data []byte, msgID string) {
	h.t.Helper()
	opts := []jetstream.PublishOpt{}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	if _, err := h.obs.Publish(context.Background(), schemas.Subjects{}.Request(seller), data, opts...); err != nil {
		h.t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (h *harness) waitFor(what string, within time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// caughtUp waits until the result and the dead-letter collectors have
// handed on every message their streams hold when it is called. Each
// collector reads its stream through a consumer of its own, and on a
// loaded machine one may trail the other by far: a dead letter received
// says nothing yet of the result published before it, nor a result of the
// dead letter. Called once the publishes a test expects were acknowledged
// (deliverRaw returns after its delivery's, a result's included), and
// after waiting for what must arrive (waitResult, waitFor), it lets the
// test assert what both streams hold, what is not there included (no
// second result, no dead letter), without sleeping on it. It does not
// follow a stream deleted and created again, which numbers its messages
// afresh.
func (h *harness) caughtUp(within time.Duration) {
	h.t.Helper()
	ctx := context.Background()
	for _, filter := range []string{schemas.Subjects{}.ResultFilter(), schemas.Subjects{}.DeadLetterFilter()} {
		name, err := h.obs.StreamNameBySubject(ctx, filter)
		if err != nil {
			h.t.Fatal(err)
		}
		stream, err := h.obs.Stream(ctx, name)
		if err != nil {
			h.t.Fatal(err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		last := info.State.LastSeq
		h.waitFor(fmt.Sprintf("the collector of %s to reach #%d", name, last), within, func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.seen[filter] >= last
		})
	}
}

// settled waits until every request published so far was acknowledged or
// terminated (the request stream, a work queue, is empty), then until the
// collectors hold all that the result and dead-letter streams do
// (caughtUp). A request leaves the stream only once its results and dead
// letter were published and acknowledged by their streams, so the
// collectors then hold every result and dead letter the requests published
// so far will have: a test checks after it how many arrived, or that one
// did not. It is for tests whose loop (start) ends every request; one that
// calls Process itself (deliverRaw, which waits for its publishes) calls
// caughtUp once its deliveries returned.
func (h *harness) settled(within time.Duration) {
	h.t.Helper()
	h.waitFor("request stream to empty", within, h.requestStreamEmpty)
	h.caughtUp(within)
}

// exactDeadLetters returns the dead letters collected, failing the test
// unless there are n. Called after settled or caughtUp, it counts every
// dead letter published by then, a late one included.
func (h *harness) exactDeadLetters(n int) []schemas.DeadLetter {
	h.t.Helper()
	dls := h.deadLetters()
	if len(dls) != n {
		h.t.Fatalf("%d dead letters, want %d: %+v", len(dls), n, dls)
	}
	return dls
}

// issuedRecord waits for the order's record to be issued and returns it: an
// issued result is published while its record is saved, so the record may
// not be issued yet when the result arrives.
func (h *harness) issuedRecord(key schemas.OrderKey) schemas.OrderRecord {
	h.t.Helper()
	var rec schemas.OrderRecord
	h.waitFor("order "+key.String()+"'s record issued", 10*time.Second, func() bool {
		r, found, err := h.db.Get(context.Background(), key)
		rec = r
		return err == nil && found && r.State == schemas.StateIssued
	})
	return rec
}

// resultsFor returns the results of one order, in arrival order.
func (h *harness) resultsFor(seller, orderNo string) []schemas.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.results[schemas.OrderKey{Seller: seller, OrderNo: orderNo}])
}

// deadLetters returns the dead letters received so far.
func (h *harness) deadLetters() []schemas.DeadLetter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.dlq)
}

// waitResult waits until the order has n results and returns them.
func (h *harness) waitResult(seller, orderNo string, n int, within time.Duration) []schemas.Result {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d result(s) for %s:%s", n, seller, orderNo), within, func() bool {
		return len(h.resultsFor(seller, orderNo)) >= n
	})
	return h.resultsFor(seller, orderNo)
}

// orderStats returns the sandbox's account of one order.
func (h *harness) orderStats(seller, orderNo string) sandbox.OrderStats {
	return h.sb.Stats().Sellers[seller][orderNo]
}

// requestStreamEmpty reports whether every request was acknowledged or
// terminated (the request stream is a work queue).
func (h *harness) requestStreamEmpty() bool {
	s, err := h.obs.Stream(context.Background(), pipeline.DefaultRequestStream)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs == 0
}

// streamDir is where an embedded server whose StoreDir is storeDir keeps
// a file-storage stream's files (of the default account's streams).
func streamDir(storeDir, name string) string {
	return filepath.Join(storeDir, "jetstream", "$G", "streams", name)
}

// streamDir is where the harness's server keeps a file-storage stream's
// files.
func (h *harness) streamDir(name string) string { return streamDir(filepath.Join(h.dir, "js"), name) }

// natsReconnect opens a new in-process connection for the consumer and
// points h.js at it.
func natsReconnect(h *harness) (*nats.Conn, error) {
	nc, err := nats.Connect(h.ns.ClientURL(), nats.InProcessServer(h.ns))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	h.js = js
	h.t.Cleanup(nc.Close)
	return nc, nil
}
