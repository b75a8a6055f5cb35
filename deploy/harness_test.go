package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

var update = flag.Bool("update", false, "rewrite the generated stream and consumer definitions under streams/")

// A role is one user of accounts.conf, the environment variable its
// password (here: its bcrypt hash) is read from, and the inbox prefix its
// clients use (the only inbox it may subscribe to; "" for nats.go's
// default).
type role struct{ user, env, inbox string }

var (
	ordersRole     = role{"orders", "INVOICE_NATS_ORDERS_PASSWORD", "_INBOX_orders"}
	consumerRole   = role{"invoicer", "INVOICE_NATS_CONSUMER_PASSWORD", "_INBOX_invoicer"}
	downstreamRole = role{"downstream", "INVOICE_NATS_DOWNSTREAM_PASSWORD", "_INBOX_downstream"}
	sreRole        = role{"sre", "INVOICE_NATS_SRE_PASSWORD", "_INBOX_sre"}
	sysRole        = role{"sys", "INVOICE_NATS_SYS_PASSWORD", ""}
	allRoles       = []role{ordersRole, consumerRole, downstreamRole, sreRole, sysRole}
)

// passwords holds each user's password for this run; the servers' environment
// holds only their bcrypt hashes, as README.md recommends.
var passwords = map[string]string{}

// binDir holds the binaries built for this run (see bins).
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	for _, r := range allRoles {
		b := make([]byte, 12)
		if _, err := rand.Read(b); err != nil {
			panic(err)
		}
		passwords[r.user] = hex.EncodeToString(b)
		hash, err := bcrypt.GenerateFromPassword([]byte(passwords[r.user]), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		// Set once for the whole run (ProcessConfigFile and the nats-server
		// child processes read it), so that tests may run in parallel.
		if err := os.Setenv(r.env, string(hash)); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries are the programs the tests run as processes.
type binaries struct{ consumer, publisher, natsServer string }

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
)

// bins builds the consumer, the publisher and nats-server (the module's own
// dependency) once per test binary, without -race: they are the programs
// under test, not the test.
func bins(t *testing.T) binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the consumer, publisher and nats-server binaries")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "invoicer-deploy-bin-")
		if buildErr != nil {
			return
		}
		built = binaries{
			consumer:   filepath.Join(binDir, "consumer"),
			publisher:  filepath.Join(binDir, "publisher"),
			natsServer: filepath.Join(binDir, "nats-server"),
		}
		for _, b := range []struct{ out, pkg string }{
			{built.consumer, "./cmd/consumer"},
			{built.publisher, "./cmd/publisher"},
			{built.natsServer, "github.com/nats-io/nats-server/v2"},
		} {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			cmd.Dir = ".." // the module root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuffer) add(level, format string, v ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
	l.mu.Unlock()
}

func (l *logBuffer) Noticef(format string, v ...any) { l.add("[INF]", format, v...) }
func (l *logBuffer) Warnf(format string, v ...any)   { l.add("[WRN]", format, v...) }
func (l *logBuffer) Fatalf(format string, v ...any)  { l.add("[FTL]", format, v...) }
func (l *logBuffer) Errorf(format string, v ...any)  { l.add("[ERR]", format, v...) }
func (l *logBuffer) Debugf(format string, v ...any)  {}
func (l *logBuffer) Tracef(format string, v ...any)  {}

// matching returns the lines containing every one of subs.
func (l *logBuffer) matching(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// natsServer is a NATS server started in process from one of the
// configuration files.
type natsServer struct {
	ns  *server.Server
	url string
	log *logBuffer
}

// startServer loads conf exactly as nats-server -c would, moves it to a
// free loopback port and a temporary store (tweak may change more), and
// starts it.
func startServer(t *testing.T, conf string, tweak ...func(*server.Options)) *natsServer {
	t.Helper()
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("load %s: %v", conf, err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	for _, f := range tweak {
		f(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("server from %s: %v", conf, err)
	}
	log := &logBuffer{}
	ns.SetLoggerV2(log, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		t.Fatalf("server from %s not ready within 15s", conf)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return &natsServer{ns: ns, url: ns.ClientURL(), log: log}
}

// startCluster starts the three nodes of cluster/n1.conf … n3.conf, their
// routes moved to free loopback ports, and waits until JetStream has a
// meta leader and every node is healthy.
func startCluster(t *testing.T) []*natsServer {
	t.Helper()
	var addrs, routes []string
	for range 3 {
		a := freeAddr(t)
		addrs = append(addrs, a)
		routes = append(routes, "nats://"+a)
	}
	var nodes []*natsServer
	for i := range 3 {
		nodes = append(nodes, startServer(t, fmt.Sprintf("cluster/n%d.conf", i+1), func(o *server.Options) {
			host, port, _ := net.SplitHostPort(addrs[i])
			o.Cluster.Host = host
			o.Cluster.Port, _ = strconv.Atoi(port)
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}))
	}
	waitFor(t, 60*time.Second, "cluster healthy", func() (bool, string) {
		for i, n := range nodes {
			if h := n.ns.Healthz(nil); h.Status != "ok" {
				return false, fmt.Sprintf("n%d: %s %s", i+1, h.Status, h.Error)
			}
		}
		return true, ""
	})
	return nodes
}

// violations returns the permission violations the server logged for user.
func (s *natsServer) violations(user string) []string {
	return s.log.matching("Violation", "/user:"+user+`"`)
}

// client is one role's connection, with the errors the server sent it.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []error
}

// connect connects as r to urls (comma separated), with r's inbox prefix.
func connect(t *testing.T, urls string, r role, opts ...nats.Option) *client {
	t.Helper()
	c := &client{}
	if r.inbox != "" {
		opts = append([]nats.Option{nats.CustomInboxPrefix(r.inbox)}, opts...)
	}
	opts = append([]nats.Option{
		nats.Name("deploy-test-" + r.user),
		nats.UserInfo(r.user, passwords[r.user]),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(200 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}),
	}, opts...)
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r.user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// violation waits (at most 2s) for a permissions violation naming subject.
func (c *client) violation(subject string) error {
	return c.violationMatching(`"` + subject + `"`)
}

// violationMatching waits (at most 2s) for a permissions violation whose
// text contains s.
func (c *client) violationMatching(s string) error {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, err := range c.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), s) {
				c.mu.Unlock()
				return err
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// proc is a child process whose output is kept.
type proc struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   bytes.Buffer
	exited chan struct{}
}

// startProc starts bin with args and env (added to this process's), and
// stops it when the test ends.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	out, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("--- %s output (last 6000 bytes):\n%s", name, tail(p.logText(), 6000))
		}
	})
	return p
}

// stop sends sig and waits (at most 20s, then kills) for the process to end.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers 200, at most within.
func waitHTTP(t *testing.T, url string, within time.Duration, p *proc) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before %s answered 200", p.name, url)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within %s", url, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The sellers of the tests: the sandbox accepts any Nuonuo seller (the
// userTax header names it) and, with AnySeller, any jumdata seller.
var (
	nuonuoSellers  = []string{sandbox.DefaultNuonuoSeller, "91440101MA5APD8X8J"}
	jumdataSellers = []string{sandbox.DefaultJumdataSeller, "91350100M000100Y43"}
)

// Partner channel of the consumer configuration written by writeConfig.
const partnerChannel, partnerSecret = "deploy-test", "deploy-test-partner-secret"

// startSandbox serves both provider sandboxes over real HTTP in process.
func startSandbox(t *testing.T) (*sandbox.Server, string) {
	t.Helper()
	sb := sandbox.New(sandbox.Config{
		Jumdata: sandbox.JumdataConfig{AnySeller: true},
		Nuonuo:  sandbox.NuonuoConfig{TokenCallLimit: -1},
	})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	sb.SetBaseURL(srv.URL)
	return sb, srv.URL
}

// writeConfig writes the consumer's --config: every test seller on the
// sandbox; Nuonuo sellers without a static token, so that tokens go
// through the INVOICE_TOKENS bucket.
func writeConfig(t *testing.T, sandboxURL string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("sellers:\n")
	for _, s := range nuonuoSellers {
		fmt.Fprintf(&b, "  - taxNum: %q\n    provider: nuonuo\n    nuonuo: {baseURL: %q, appKey: %q, appSecret: %q}\n",
			s, sandboxURL, sandbox.DefaultNuonuoAppKey, sandbox.DefaultNuonuoAppSecret)
	}
	for _, s := range jumdataSellers {
		fmt.Fprintf(&b, "  - taxNum: %q\n    provider: jumdata\n    jumdata: {baseURL: %q, appId: %q, appSecret: %q, token: %q, dq: %q, gryhm: %q}\n",
			s, sandboxURL, sandbox.DefaultJumdataAppID, sandbox.DefaultJumdataSecret, sandbox.DefaultJumdataToken, sandbox.DefaultJumdataDQ, sandbox.DefaultJumdataGryhm)
	}
	fmt.Fprintf(&b, "partners:\n  - channel: %q\n    secret: %q\n", partnerChannel, partnerSecret)
	path := filepath.Join(t.TempDir(), "sellers.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// consumer is a running consumer binary.
type consumer struct {
	*proc
	http string
}

// startConsumer runs the consumer as the invoicer user against urls (comma
// separated), the password in NATS_URL and its inbox prefix in
// INVOICE_INBOX_PREFIX as consumer.env.example sets them, and waits until it
// is ready.
func startConsumer(t *testing.T, b binaries, urls, config string, args ...string) *consumer {
	t.Helper()
	c := launchConsumer(t, b, urls, config, args...)
	waitHTTP(t, "http://"+c.http+"/readyz", 60*time.Second, c.proc)
	return c
}

// launchConsumer starts the consumer as startConsumer does, without waiting
// for it to be ready.
func launchConsumer(t *testing.T, b binaries, urls, config string, args ...string) *consumer {
	t.Helper()
	var withAuth []string
	for _, u := range strings.Split(urls, ",") {
		withAuth = append(withAuth, strings.Replace(u, "nats://", "nats://"+consumerRole.user+":"+passwords[consumerRole.user]+"@", 1))
	}
	c := &consumer{http: freeAddr(t)}
	args = append([]string{"--config", config, "--data", t.TempDir(), "--http", c.http, "--log-format", "json",
		"--workers", "4", "--shutdown-timeout", "10s", "--provider-timeout", "5s"}, args...)
	c.proc = startProc(t, "consumer "+strings.Join(args[len(args)-4:], " "), b.consumer,
		[]string{"NATS_URL=" + strings.Join(withAuth, ","), "INVOICE_INBOX_PREFIX=" + consumerRole.inbox}, args...)
	return c
}

// waitRefused waits, at most within, until the consumer logs that its start
// was refused and that it stands by instead of exiting (a restart policy
// would start it over and over), and checks that it says so to an
// operator and an alert: /readyz 503 "stood down", /metrics
// invoice_consumer_stood_down 1. It fails the test if the consumer exits.
func (c *consumer) waitRefused(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(c.logText(), "start refused: standing by") {
		select {
		case <-c.exited:
			t.Fatalf("%s exited (status %d) instead of standing by after its start was refused:\n%s", c.name, c.cmd.ProcessState.ExitCode(), tail(c.logText(), 2000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s neither started nor stood by within %s:\n%s", c.name, within, tail(c.logText(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + c.http + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz of %s standing by: %v", c.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "stood down") {
		t.Errorf("/readyz of %s standing by: %d %s, want 503 stood down", c.name, resp.StatusCode, body)
	}
	if v := c.metric(t, "invoice_consumer_stood_down"); v != 1 {
		t.Errorf("invoice_consumer_stood_down of %s standing by: %v, want 1", c.name, v)
	}
}

// metric returns the value of one sample line of the consumer's /metrics
// ("invoice_messages_total{event=\"issued\"}"), 0 when absent.
func (c *consumer) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}

// issueRequest returns a valid issue request (schematest.IssueRequest).
func issueRequest(seller, orderNo string) []byte {
	return schematest.IssueRequest(seller, orderNo, nil)
}

// publishRequest publishes an order's request with its Nats-Msg-Id,
// retrying (same id, so never twice in the stream) while the servers are
// away, for at most 60s.
func publishRequest(t *testing.T, c *client, seller, orderNo string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.js.Publish(ctx, "invoice.request."+seller, issueRequest(seller, orderNo),
			jetstream.WithMsgID(seller+":"+orderNo), jetstream.WithRetryAttempts(0))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s:%s: %v", seller, orderNo, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// results reads every result event in INVOICE_RESULTS (as the caller's
// role) and counts them per "<seller>:<orderNo>" and status. A read that
// fails (a stream leader moving after a node stopped) starts over, at most
// five times.
func results(t *testing.T, c *client) map[string]map[schemas.Status]int {
	t.Helper()
	var err error
	for range 5 {
		var out map[string]map[schemas.Status]int
		if out, err = readResults(c); err == nil {
			return out
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("read the results: %v", err)
	return nil
}

func readResults(c *client) (map[string]map[schemas.Status]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.js.Stream(ctx, "INVOICE_RESULTS")
	if err != nil {
		return nil, fmt.Errorf("results stream: %w", err)
	}
	total := s.CachedInfo().State.Msgs
	out := map[string]map[schemas.Status]int{}
	if total == 0 {
		return out, nil
	}
	oc, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on results: %w", err)
	}
	for n := uint64(0); n < total; n++ {
		m, err := oc.Next(jetstream.FetchContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("result %d of %d: %w", n+1, total, err)
		}
		var res schemas.Result
		if err := json.Unmarshal(m.Data(), &res); err != nil {
			return nil, fmt.Errorf("result on %s: %w", m.Subject(), err)
		}
		key := res.SellerTaxNum + ":" + res.OrderNo
		if out[key] == nil {
			out[key] = map[schemas.Status]int{}
		}
		out[key][res.Status]++
	}
	return out, nil
}

// waitFor polls cond every 200ms until it is true or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, within, state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExactlyOnce checks that the sandbox issued every order of want
// exactly once and nothing else, and that the result stream holds exactly
// one result, issued, for each.
func checkExactlyOnce(t *testing.T, sb *sandbox.Server, c *client, want []string) {
	t.Helper()
	st := sb.Stats()
	if len(st.Duplicates) > 0 {
		t.Errorf("orders issued twice: %v", st.Duplicates)
	}
	if st.Orders != len(want) || st.Issuances != len(want) {
		t.Errorf("sandbox: %d orders, %d issuances; want %d each", st.Orders, st.Issuances, len(want))
	}
	// A result is published after the provider issues: wait (a bounded
	// while) until every wanted order has one.
	got := results(t, c)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); got = results(t, c) {
		complete := true
		for _, key := range want {
			if len(got[key]) == 0 {
				complete = false
				break
			}
		}
		if complete {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, key := range want {
		seller, orderNo, _ := strings.Cut(key, ":")
		if o := st.Sellers[seller][orderNo]; o.Issuances != 1 {
			t.Errorf("%s: issued %d times at the provider", key, o.Issuances)
		}
		if r := got[key]; len(r) != 1 || r[schemas.StatusIssued] != 1 {
			t.Errorf("%s: results %v, want one issued", key, r)
		}
		delete(got, key)
	}
	if len(got) > 0 {
		t.Errorf("results of orders never sent: %v", got)
	}
}
