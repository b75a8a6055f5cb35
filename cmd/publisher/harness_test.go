package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const (
	nuonuoSeller  = sandbox.DefaultNuonuoSeller
	jumdataSeller = sandbox.DefaultJumdataSeller
)

// fast makes the pipeline's waits short enough for tests.
var fast = pipeline.Config{
	RetryBase:    20 * time.Millisecond,
	RetryMax:     200 * time.Millisecond,
	PollSchedule: []time.Duration{50 * time.Millisecond},
	HoldProbe:    300 * time.Millisecond,
}

// natsEnv is an embedded NATS server with JetStream listening on a random
// loopback port, the contract's streams, and the test's own connection.
type natsEnv struct {
	t   testing.TB
	dir string
	ns  *server.Server
	url string
	nc  *nats.Conn
	js  jetstream.JetStream
}

// The users of every MustNATS server: connections without a user are
// "test" and may do anything; inboxUser may publish anything but subscribe
// only to its own inbox, inboxPrefix.>, as each role of deploy/accounts.conf.
const (
	inboxUser, inboxPassword = "client", "client-test-password"
	inboxPrefix              = "_INBOX_client"
)

// ordersUser has the permissions of deploy/accounts.conf's orders: publish
// requests, find the request stream and read its info, replies under
// ordersInbox. It may not read the stream's messages.
const (
	ordersUser, ordersPassword = "orders", "orders-test-password"
	ordersInbox                = "_INBOX_orders"
)

// MustNATS starts the server and creates the streams as the consumer does.
func MustNATS(tb testing.TB) *natsEnv {
	tb.Helper()
	dir := tb.TempDir()
	ns, err := server.NewServer(&server.Options{
		ServerName: "publisher-test", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: filepath.Join(dir, "js"), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "test", Password: "test-password"},
			{Username: inboxUser, Password: inboxPassword, Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Allow: []string{inboxPrefix + ".>"}},
			}},
			{Username: ordersUser, Password: ordersPassword, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"invoice.request.*", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.INFO.INVOICE_REQUESTS"}},
				Subscribe: &server.SubjectPermission{Allow: []string{ordersInbox + ".>"}},
			}},
		},
		NoAuthUser: "test",
	})
	if err != nil {
		tb.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		tb.Fatal(err)
	}
	return &natsEnv{t: tb, dir: dir, ns: ns, url: ns.ClientURL(), nc: nc, js: js}
}

// inboxURL is the server's URL with inboxUser's name and password.
func (e *natsEnv) inboxURL() string {
	return strings.Replace(e.url, "nats://", "nats://"+inboxUser+":"+inboxPassword+"@", 1)
}

// ordersCLI runs the publisher against the server as ordersUser.
func (e *natsEnv) ordersCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	u := strings.Replace(e.url, "nats://", "nats://"+ordersUser+":"+ordersPassword+"@", 1)
	return runCLI(t, "", append([]string{"--server", u, "--inbox-prefix", ordersInbox, "--timeout", "10s"}, args...)...)
}

// cli runs the publisher against the server.
func (e *natsEnv) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runCLI(t, "", append([]string{"--server", e.url, "--timeout", "10s"}, args...)...)
}

// streamState returns the state of a stream.
func (e *natsEnv) streamState(name string) jetstream.StreamState {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State
}

// requests returns the messages held by the request stream.
func (e *natsEnv) requests() []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		e.t.Fatal(err)
	}
	st := e.streamState(pipeline.DefaultRequestStream)
	var out []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// unreachableURL is a loopback address where nothing listens, and nothing
// can until the test ends: a connection to it is refused. A port let go
// of (a listener's, closed) would be anyone's: a NATS server or httptest
// server of a parallel test, which listen on port 0, could be given it,
// and the publisher reached it. The port is the local end of a loopback
// connection the test holds: a port bound without SO_REUSEADDR, which no
// listener may bind and the system gives no listener on port 0, and on
// which nothing accepts.
func unreachableURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		c.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = c.Close()
		_ = s.Close()
	})
	return "nats://" + c.LocalAddr().String()
}

// consumer runs the whole consumer in process on a natsEnv, as the pipeline
// tests do: a real bbolt order store, the provider sandbox over real HTTP,
// the real provider clients, the consume loop and the status service.
type consumer struct {
	*natsEnv
	sb *sandbox.Server
	db *store.DB

	mu  sync.Mutex
	all map[schemas.OrderKey][]schemas.Result
	bad []string
}

type consumerOptions struct {
	sandbox  sandbox.Config
	pipeline pipeline.Config
	// maxBytes is the consumer's request size limit (0: the default).
	maxBytes int
	// metrics, when set, gets the consumer's metrics registered, as
	// cmd/consumer serves them on /metrics.
	metrics prometheus.Registerer
}

// sandboxProviders returns the clients of the sandbox's two demo sellers,
// Nuonuo's and jumdata's, for the sandbox served at url, reporting to obs
// (nil: nowhere), as cmd/consumer wires them.
func sandboxProviders(t *testing.T, url string, obs providers.Observer) pipeline.ProviderMap {
	t.Helper()
	httpCfg := providers.HTTPConfig{Timeout: 5 * time.Second}
	client := providers.NewHTTPClient(httpCfg)
	ts, err := nuonuo.NewTokenSource(nuonuo.TokenSourceConfig{
		TokenURL: url + "/accessToken", AppKey: sandbox.DefaultNuonuoAppKey, AppSecret: sandbox.DefaultNuonuoAppSecret,
		Store: &nuonuo.MemoryTokenStore{}, HTTPClient: client,
	})
	if err != nil {
		t.Fatal(err)
	}
	nn, err := nuonuo.New(nuonuo.Config{BaseURL: url, SellerTaxNum: nuonuoSeller, AppKey: sandbox.DefaultNuonuoAppKey,
		AppSecret: sandbox.DefaultNuonuoAppSecret, Tokens: ts, HTTPClient: client, HTTP: httpCfg, PollAfter: 50 * time.Millisecond, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	jc, err := jumdata.New(jumdata.Config{BaseURL: url, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret,
		Token: sandbox.DefaultJumdataToken, SellerTaxNum: jumdataSeller, DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm,
		HTTPClient: client, HTTP: httpCfg, PollAfter: 50 * time.Millisecond, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.ProviderMap{nuonuoSeller: nn, jumdataSeller: jc}
}

func startConsumer(t *testing.T, o consumerOptions) *consumer {
	t.Helper()
	env := MustNATS(t)
	c := &consumer{natsEnv: env, all: map[schemas.OrderKey][]schemas.Result{}}

	c.sb = sandbox.New(o.sandbox)
	srv := httptest.NewServer(c.sb.Handler())
	t.Cleanup(srv.Close)
	c.sb.SetBaseURL(srv.URL)

	var (
		metrics *pipeline.Metrics
		obs     providers.Observer
	)
	if o.metrics != nil {
		metrics = pipeline.NewMetrics(o.metrics)
		obs = metrics
	}
	provs := sandboxProviders(t, srv.URL, obs)

	var err error
	c.db, err = store.Open(store.Config{Path: filepath.Join(env.dir, "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if o.metrics != nil {
		o.metrics.MustRegister(pipeline.NewStoreCollector(c.db))
	}
	v, err := schemas.NewValidator(schemas.ValidatorConfig{MaxBytes: o.maxBytes})
	if err != nil {
		t.Fatal(err)
	}

	// The consumer's own connection, as cmd/consumer has.
	cnc, err := nats.Connect(env.url)
	if err != nil {
		t.Fatal(err)
	}
	cjs, err := jetstream.New(cnc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(o.pipeline, v, metrics.TimedStore(c.db), pipeline.NewJetStreamPublisher(cjs, schemas.Subjects{}), provs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cons, err := (pipeline.Topology{}).EnsureConsumer(ctx, cjs, pipeline.ConsumerSettings{Workers: 8, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Through Orders, as cmd/consumer serves it: a status read waits for
	// an issued record whose result is already published.
	svc, err := pipeline.StartStatusService(cnc, pipeline.StatusConfig{}, p.Orders())
	if err != nil {
		t.Fatal(err)
	}
	c.collectResults()

	log := zerolog.Nop()
	if os.Getenv("PUBLISHER_TEST_LOG") != "" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	loop := pipeline.NewLoop(pipeline.LoopConfig{Workers: 8, AckWait: 5 * time.Second, ProcessTimeout: 20 * time.Second, Paused: c.db.Healthy}, p, cons, log, metrics)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- loop.Run(lctx) }()
	// Cleanups run last-in first-out: stop the loop, the status service,
	// then the connection and the store; the server goes after (MustNATS).
	t.Cleanup(func() { _ = c.db.Close() })
	t.Cleanup(cnc.Close)
	t.Cleanup(func() { _ = svc.Stop() })
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("consume loop: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("consume loop did not stop within 30s")
		}
	})
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, b := range c.bad {
			t.Error(b)
		}
		if d := c.sb.Stats().Duplicates; len(d) != 0 {
			t.Errorf("the sandbox issued orders twice: %v", d)
		}
	})
	return c
}

// collectResults records every result event, checking it against the
// contract.
func (c *consumer) collectResults() {
	ctx := context.Background()
	oc, err := c.js.OrderedConsumer(ctx, pipeline.DefaultResultStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		c.t.Fatal(err)
	}
	cc, err := oc.Consume(func(m jetstream.Msg) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := schemas.CheckResultJSON(m.Data()); err != nil {
			c.bad = append(c.bad, fmt.Sprintf("result breaks the schema: %v\n%s", err, m.Data()))
		}
		var res schemas.Result
		if err := json.Unmarshal(m.Data(), &res); err != nil {
			c.bad = append(c.bad, err.Error())
			return
		}
		k := schemas.OrderKey{Seller: res.SellerTaxNum, OrderNo: res.OrderNo}
		c.all[k] = append(c.all[k], res)
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cc.Stop)
}

// resultsFor returns the results of an order so far.
func (c *consumer) resultsFor(seller, orderNo string) []schemas.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all[schemas.OrderKey{Seller: seller, OrderNo: orderNo}])
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus waits until the order's latest result has the status and
// returns it.
func (c *consumer) waitStatus(t testing.TB, seller, orderNo string, st schemas.Status, within time.Duration) schemas.Result {
	t.Helper()
	var last schemas.Result
	waitFor(t, fmt.Sprintf("a %s result for %s:%s", st, seller, orderNo), within, func() bool {
		res := c.resultsFor(seller, orderNo)
		if len(res) == 0 {
			return false
		}
		last = res[len(res)-1]
		return last.Status == st
	})
	return last
}

// issueRequest builds a valid issue request (schematest.IssueRequest).
func issueRequest(t testing.TB, seller, orderNo string) []byte {
	t.Helper()
	return schematest.IssueRequest(seller, orderNo, nil)
}

// writeFile writes lines as a file in a temporary directory.
func writeFile(t testing.TB, name string, lines ...[]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
