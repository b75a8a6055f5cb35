package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The sellers of every scenario: two at Nuonuo, two at jumdata.
var (
	nuonuoSellers  = []string{sandbox.DefaultNuonuoSeller, "91440101MA5APD8X8J"}
	jumdataSellers = []string{sandbox.DefaultJumdataSeller, "91350100M000100Y43"}
	allSellers     = append(append([]string{}, nuonuoSellers...), jumdataSellers...)
)

// worldConfig says how to run one scenario's processes.
type worldConfig struct {
	sandboxArgs  []string // extra sandbox flags (faults, latency)
	consumerArgs []string // extra consumer flags
	maxBytes     int      // the consumer's --max-request-bytes
}

// faultFlags are the sandbox's fault flags (cmd/sandbox), by the kind its
// stats count the faults under (sandbox.Stats.Faults).
var faultFlags = map[string]string{
	"fault-5xx":        "error_5xx",
	"fault-reset":      "reset",
	"fault-drop":       "drop",
	"fault-garbage":    "garbage",
	"fault-spike-rate": "latency_spike",
	"rate-limit":       "rate_limited",
	"face-auth":        "face_auth",
}

// faultKinds returns the kinds of fault that the sandbox's arguments ask
// for, sorted: each fault flag given a value other than zero or empty.
func faultKinds(args []string) []string {
	var kinds []string
	for i := 0; i < len(args); i++ {
		name, value, inline := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		kind, ok := faultFlags[name]
		if !ok {
			continue
		}
		if !inline && i+1 < len(args) {
			i++
			value = args[i]
		}
		if f, err := strconv.ParseFloat(value, 64); value == "" || (err == nil && f == 0) {
			continue
		}
		kinds = append(kinds, kind)
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

// world is one scenario's processes: a NATS server (external mode), the
// provider sandbox and the consumer, each a separate process on loopback.
type world struct {
	dir        string
	bins       binaries
	nats       *proc
	sandbox    *proc
	consumer   *proc
	natsAddr   string
	sandboxURL string
	httpAddr   string
	faults     []string // the kinds of fault the sandbox was told to inject (faultKinds)

	nc  *nats.Conn
	js  jetstream.JetStream
	col *collector
}

func startWorld(ctx context.Context, bins binaries, dir string, cfg worldConfig) (*world, error) {
	w := &world{dir: dir, bins: bins, faults: faultKinds(cfg.sandboxArgs)}
	var err error
	if w.natsAddr, err = freePort(); err != nil {
		return nil, err
	}
	host, port, _ := strings.Cut(w.natsAddr, ":")
	natsConf := filepath.Join(dir, "nats.conf")
	if err := writeFile(natsConf, fmt.Sprintf("listen: %q\nmax_payload: 1MB\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n",
		host+":"+port, filepath.Join(dir, "jetstream"))); err != nil {
		return nil, err
	}
	w.nats = newProc("nats-server", bins.natsServer, "-c", natsConf)
	if err := w.nats.start(); err != nil {
		return nil, err
	}
	if err := waitTCP(w.natsAddr, 15*time.Second); err != nil {
		return nil, err
	}

	sbAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	w.sandboxURL = "http://" + sbAddr
	w.sandbox = newProc("sandbox", bins.sandbox, append([]string{"--listen", sbAddr, "--jumdata-any-seller", "--nuonuo-token-call-limit", "-1"}, cfg.sandboxArgs...)...)
	if err := w.sandbox.start(); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, w.sandboxURL+"/_sandbox/stats", 200, 15*time.Second); err != nil {
		return nil, err
	}

	var b strings.Builder
	b.WriteString("sellers:\n")
	for _, s := range nuonuoSellers {
		fmt.Fprintf(&b, "  - taxNum: %q\n    provider: nuonuo\n    nuonuo: {baseURL: %q, appKey: %q, appSecret: %q}\n",
			s, w.sandboxURL, sandbox.DefaultNuonuoAppKey, sandbox.DefaultNuonuoAppSecret)
	}
	for _, s := range jumdataSellers {
		fmt.Fprintf(&b, "  - taxNum: %q\n    provider: jumdata\n    jumdata: {baseURL: %q, appId: %q, appSecret: %q, token: %q, dq: %q, gryhm: %q}\n",
			s, w.sandboxURL, sandbox.DefaultJumdataAppID, sandbox.DefaultJumdataSecret, sandbox.DefaultJumdataToken, sandbox.DefaultJumdataDQ, sandbox.DefaultJumdataGryhm)
	}
	conf := filepath.Join(dir, "consumer.yaml")
	if err := writeFile(conf, b.String()); err != nil {
		return nil, err
	}
	if w.httpAddr, err = freePort(); err != nil {
		return nil, err
	}
	args := []string{"--nats-url", "nats://" + w.natsAddr, "--config", conf, "--data", filepath.Join(dir, "consumer"),
		"--http", w.httpAddr, "--log-format", "json", "--provider-timeout", "2s", "--ack-wait", "10s", "--shutdown-timeout", "15s"}
	if cfg.maxBytes > 0 {
		args = append(args, "--max-request-bytes", strconv.Itoa(cfg.maxBytes))
	}
	w.consumer = newProc("consumer", bins.consumer, append(args, cfg.consumerArgs...)...)
	if err := w.startConsumer(ctx); err != nil {
		return nil, err
	}

	w.nc, err = nats.Connect("nats://"+w.natsAddr, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	if w.js, err = jetstream.New(w.nc); err != nil {
		return nil, err
	}
	if w.col, err = collect(ctx, w.js); err != nil {
		return nil, err
	}
	return w, nil
}

// startConsumer starts (or restarts) the consumer and waits until it is
// ready.
func (w *world) startConsumer(ctx context.Context) error {
	if err := w.consumer.start(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+w.httpAddr+"/readyz", 200, 60*time.Second); err != nil {
		return fmt.Errorf("consumer: %w\n%s", err, tail(w.consumer.logText(), 3000))
	}
	return nil
}

// close stops everything and removes nothing (the directory is the caller's).
func (w *world) close() {
	if w.col != nil {
		w.col.stop()
	}
	if w.nc != nil {
		w.nc.Close()
	}
	for _, p := range []*proc{w.consumer, w.sandbox, w.nats} {
		if p != nil {
			p.stop()
		}
	}
}

// publish publishes a request with Nats-Msg-Id (msgID "" publishes without),
// retrying while the NATS server is away; it returns the stream sequence of
// the message the stream holds: for a duplicate by id, the one it kept.
func (w *world) publish(ctx context.Context, subject string, data []byte, msgID string) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithRetryAttempts(0)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := w.js.Publish(pctx, subject, data, opts...)
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, fmt.Errorf("publish %s: %w", subject, err)
		}
		time.Sleep(200 * time.Millisecond) // the server is restarting: try again with the same id
	}
}

// sandboxStats reads the sandbox's accounting.
func (w *world) sandboxStats(ctx context.Context) (sandbox.Stats, error) {
	var st sandbox.Stats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, w.sandboxURL+"/_sandbox/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// requestsPending returns how many requests are still in the request stream
// (a work queue: acknowledged and terminated ones are removed).
func (w *world) requestsPending(ctx context.Context) (uint64, error) {
	s, err := w.js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// ready returns the consumer's /readyz status code (0 when unreachable).
func (w *world) ready(ctx context.Context) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.httpAddr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// killConsumer kills the consumer the hard way (SIGKILL) and starts it again.
func (w *world) killConsumer(ctx context.Context) error {
	if err := w.consumer.kill(syscall.SIGKILL, 10*time.Second); err != nil {
		return err
	}
	return w.startConsumer(ctx)
}

// event is one message read back from the result or dead-letter stream.
type event struct {
	subject string
	msgID   string
	seq     uint64 // the request's stream sequence, from the result's message id
	result  *schemas.Result
	dead    *schemas.DeadLetter
}

// collector reads every result and dead letter from the start of their
// streams (ordered consumers: a message the stream deduplicated is seen
// once).
type collector struct {
	mu      sync.Mutex
	results map[schemas.OrderKey][]event
	bySeq   map[uint64][]event
	dead    []event
	stops   []func()
	bad     []string
}

func collect(ctx context.Context, js jetstream.JetStream) (*collector, error) {
	c := &collector{results: map[schemas.OrderKey][]event{}, bySeq: map[uint64][]event{}}
	for _, s := range []struct{ stream, filter string }{
		{pipeline.DefaultResultStream, schemas.Subjects{}.ResultFilter()},
		{pipeline.DefaultDeadLetterStream, schemas.Subjects{}.DeadLetterFilter()},
	} {
		cons, err := js.OrderedConsumer(ctx, s.stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{s.filter}})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", s.stream, err)
		}
		cc, err := cons.Consume(c.add)
		if err != nil {
			return nil, err
		}
		c.stops = append(c.stops, cc.Stop)
	}
	return c, nil
}

func (c *collector) add(m jetstream.Msg) {
	e := event{subject: m.Subject(), msgID: m.Headers().Get(jetstream.MsgIDHeader)}
	if id, ok := strings.CutPrefix(e.msgID, "result:"+pipeline.DefaultRequestStream+":"); ok {
		seq, _, _ := strings.Cut(id, ":") // result:<stream>:<seq>:<status>:<t>
		e.seq, _ = strconv.ParseUint(seq, 10, 64)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(e.subject, "invoice.dlq.") {
		var dl schemas.DeadLetter
		if err := json.Unmarshal(m.Data(), &dl); err != nil || schemas.CheckDeadLetterJSON(m.Data()) != nil {
			c.bad = append(c.bad, "dead letter breaks its schema: "+string(m.Data()))
			return
		}
		e.dead, e.seq = &dl, dl.OriginalSeq
		c.dead = append(c.dead, e)
		return
	}
	var res schemas.Result
	if err := json.Unmarshal(m.Data(), &res); err != nil || schemas.CheckResultJSON(m.Data()) != nil {
		c.bad = append(c.bad, "result breaks its schema: "+string(m.Data()))
		return
	}
	e.result = &res
	k := schemas.OrderKey{Seller: res.SellerTaxNum, OrderNo: res.OrderNo}
	c.results[k] = append(c.results[k], e)
	if e.seq != 0 {
		c.bySeq[e.seq] = append(c.bySeq[e.seq], e)
	}
}

func (c *collector) stop() {
	for _, s := range c.stops {
		s()
	}
}

// snapshot returns copies of what was collected.
func (c *collector) snapshot() (map[schemas.OrderKey][]event, map[uint64][]event, []event, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := make(map[schemas.OrderKey][]event, len(c.results))
	for k, v := range c.results {
		res[k] = append([]event(nil), v...)
	}
	bySeq := make(map[uint64][]event, len(c.bySeq))
	for k, v := range c.bySeq {
		bySeq[k] = append([]event(nil), v...)
	}
	return res, bySeq, append([]event(nil), c.dead...), append([]string(nil), c.bad...)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
