package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// testServer starts a NATS server with opts for the test, waits until it
// takes connections, and shuts it down when the test ends.
func testServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return ns
}

// sandboxSellers writes a sellers file for the test that configures the
// sandbox's default seller of provider ("nuonuo" or "jumdata") at baseURL
// with the sandbox's credentials, followed by more (a partners: list, or
// ""), and returns its path.
func sandboxSellers(t *testing.T, provider, baseURL, more string) string {
	t.Helper()
	var yaml string
	switch provider {
	case "nuonuo":
		yaml = fmt.Sprintf("sellers:\n  - taxNum: %q\n    provider: nuonuo\n    nuonuo: {baseURL: %q, appKey: %q, appSecret: %q, family: ElectronInvoice}\n",
			sandbox.DefaultNuonuoSeller, baseURL, sandbox.DefaultNuonuoAppKey, sandbox.DefaultNuonuoAppSecret)
	case "jumdata":
		yaml = fmt.Sprintf("sellers:\n  - taxNum: %q\n    provider: jumdata\n    jumdata: {baseURL: %q, appId: %q, appSecret: %q, token: %q, dq: %q, gryhm: %q}\n",
			sandbox.DefaultJumdataSeller, baseURL, sandbox.DefaultJumdataAppID, sandbox.DefaultJumdataSecret, sandbox.DefaultJumdataToken, sandbox.DefaultJumdataDQ, sandbox.DefaultJumdataGryhm)
	default:
		t.Fatalf("sandboxSellers: no provider %q", provider)
	}
	path := filepath.Join(t.TempDir(), "sellers.yaml")
	if err := os.WriteFile(path, []byte(yaml+more), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// gate holds the provider calls put to it until it is opened: a held call
// says so on called (without waiting for a reader) and waits until Open or
// until its request ends. It is opened when the test ends, at the latest.
type gate struct {
	called chan struct{}
	open   chan struct{}
	once   sync.Once
}

// newGate returns a closed gate, opened when the test ends.
func newGate(t *testing.T) *gate {
	g := &gate{called: make(chan struct{}, 1), open: make(chan struct{})}
	t.Cleanup(g.Open)
	return g
}

// Open lets the calls held, and those to come, go on.
func (g *gate) Open() { g.once.Do(func() { close(g.open) }) }

// hold holds r until the gate opens, reporting true, or r ends, false.
func (g *gate) hold(r *http.Request) bool {
	select {
	case g.called <- struct{}{}:
	default:
	}
	select {
	case <-g.open:
		return true
	case <-r.Context().Done():
		return false
	}
}

// waitCalled waits, at most within, until a call is held at the gate, and
// fails the test with the consumer's log otherwise.
func (g *gate) waitCalled(t *testing.T, within time.Duration, logs fmt.Stringer) {
	t.Helper()
	select {
	case <-g.called:
	case <-time.After(within):
		t.Fatalf("the request never reached the provider:\n%s", logs.String())
	}
}

// serveGated serves sb on a loopback server for the test, and sb's links
// name it: a call for which gateOf returns a gate is held there first
// (gate.hold); one it returns nil for goes through at once.
func serveGated(t *testing.T, sb *sandbox.Server, gateOf func(r *http.Request) *gate) *httptest.Server {
	t.Helper()
	h := sb.Handler()
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g := gateOf(r); g != nil && !g.hold(r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(prov.Close)
	sb.SetBaseURL(prov.URL)
	return prov
}

// jetStreamClient connects to the NATS server at url for the test, closed
// when it ends, and returns the connection and its JetStream context.
func jetStreamClient(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// runningConsumer is the consumer's run in a test's goroutine.
type runningConsumer struct {
	t *testing.T
	// o are the options run was given: o.httpListen, o.partnerAddr and
	// o.natsListen are the addresses the harness picked for freePort.
	o    *options
	logs *syncBuffer
	// done receives run's error once it returns.
	done chan error
	// stop ends run's context, as SIGTERM does.
	stop context.CancelFunc
}

// freePort, as the address of a listening flag given to startRun,
// startRunUntil or startRefused (--http, --partner-http, --nats-listen,
// --pprof), is a loopback address the harness picks (freeAddr) for each
// start: the test reads it from the options (runningConsumer.o).
//
// An address picked before the consumer listens is free when it is
// picked, not when the consumer listens on it: meanwhile the system may
// give it to another listener on port 0 — the consumer's own in-process
// sandbox, which listens first, a test's httptest server, another test's
// or another process's — and the consumer's start stops at once, "address
// already in use". The harness then starts it again on other addresses
// (the same data directory: the stopped start closed its order store and
// took no request), at most three times in all, as startConsumer does for
// the binary. A start refused because of an address the test gave itself
// (a taken one, on purpose) is not tried again. The harness does not give
// port 0 instead: the embedded NATS server logs the port it got, but the
// HTTP listeners log their addresses as given.
const freePort = "127.0.0.1:free"

// startTries is how many starts startRun and startRefused try when the
// addresses they picked were taken each time.
const startTries = 3

// pickAddrs returns args with each freePort replaced by an address of
// pick's, and the addresses picked.
func pickAddrs(t *testing.T, args []string, pick func(*testing.T) string) (picked []string, out []string) {
	t.Helper()
	out = slices.Clone(args)
	for i, a := range out {
		if a == freePort {
			out[i] = pick(t)
			picked = append(picked, out[i])
		}
	}
	return picked, out
}

// pickedTaken reports whether one of text's lines (run's error, or a log
// line: the embedded NATS server logs its own failure to listen) says that
// one of the addresses picked was in use.
func pickedTaken(text string, picked []string) bool {
	for line := range strings.Lines(text) {
		if !strings.Contains(line, "address already in use") {
			continue
		}
		for _, a := range picked {
			if containsAddr(line, a) {
				return true
			}
		}
	}
	return false
}

// containsAddr reports whether text names addr (host:port), and not
// another port that starts with addr's: 127.0.0.1:4000 is not in
// "127.0.0.1:40001".
func containsAddr(text, addr string) bool {
	for {
		i := strings.Index(text, addr)
		if i < 0 {
			return false
		}
		text = text[i+len(addr):]
		if text == "" || text[0] < '0' || text[0] > '9' {
			return true
		}
	}
}

// startRun runs the consumer with args (parseFlags, without the
// environment; freePort for a listening address the harness picks) until
// the test ends or stop is called, and waits until it consumes.
func startRun(t *testing.T, args []string) *runningConsumer {
	t.Helper()
	return startRunUntil(t, args, "consuming invoice requests", 30*time.Second)
}

// startRunUntil is startRun waiting, at most within, until the consumer
// has logged what instead.
func startRunUntil(t *testing.T, args []string, what string, within time.Duration) *runningConsumer {
	t.Helper()
	return startRunPicking(t, args, what, within, freeAddr)
}

// startRunPicking is startRunUntil with the addresses for freePort from
// pick: a test of the harness has it hand out a taken one.
func startRunPicking(t *testing.T, args []string, what string, within time.Duration, pick func(*testing.T) string) *runningConsumer {
	t.Helper()
	for try := 1; ; try++ {
		picked, tried := pickAddrs(t, args, pick)
		r, err := tryStartRun(t, tried, what, within)
		if r != nil {
			return r
		}
		if !pickedTaken(err, picked) {
			t.Fatal(err)
		}
		if try == startTries {
			t.Fatalf("the addresses picked for the consumer were taken at each of %d starts; the last one:\n%s", try, err)
		}
	}
}

// tryStartRun is one start of startRunPicking's: the running consumer, or
// nil and what went wrong (run's error and the consumer's log) when run
// returned before logging what. It fails the test when run neither
// returns nor logs what within within.
func tryStartRun(t *testing.T, args []string, what string, within time.Duration) (*runningConsumer, string) {
	t.Helper()
	o, err := parseFlags(args, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	r := &runningConsumer{t: t, o: o, logs: &syncBuffer{}, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- run(ctx, o, zerolog.New(r.logs)) }()
	if returned, err := r.untilLog(what, within); returned {
		cancel()
		return nil, fmt.Sprintf("run returned %v before logging %q:\n%s", err, what, r.logs.String())
	}
	return r, ""
}

// waitLog waits until the consumer has logged what, at most within, and
// fails the test if run returns first.
func (r *runningConsumer) waitLog(what string, within time.Duration) {
	r.t.Helper()
	if returned, err := r.untilLog(what, within); returned {
		r.t.Fatalf("run returned %v before logging %q:\n%s", err, what, r.logs.String())
	}
}

// untilLog waits until the consumer has logged what, at most within, or
// until run returns: then it reports returned, and run's error. It fails
// the test when neither happens within within.
func (r *runningConsumer) untilLog(what string, within time.Duration) (returned bool, err error) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.logs.String(), what) {
		select {
		case err := <-r.done:
			return true, err
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q logged within %s:\n%s", what, within, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false, nil
}

// stopAndWait stops the consumer (stop, as SIGTERM does) and returns run's
// error, failing the test when run does not return within within.
func (r *runningConsumer) stopAndWait(within time.Duration) error {
	r.t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		return err
	case <-time.After(within):
		r.t.Fatalf("the consumer did not stop within %s of being told to:\n%s", within, r.logs.String())
	}
	return nil
}

// pingHold is a loopback TCP proxy to a NATS server that, while held,
// keeps back the PINGs its clients send and passes everything else on at
// once: a flush (nats.Conn.Flush, FlushTimeout), which waits for the
// server's answer to its PING, waits as it does on a slow link, while
// publications, subscriptions and pull requests go on. It parses the
// client's side of the NATS protocol: a line per operation, and the
// payload of PUB and HPUB, whose size is the line's last field. It closes
// when the test ends.
type pingHold struct {
	t    *testing.T
	ln   net.Listener
	dest string

	mu      sync.Mutex
	holding bool
	held    []func() // each sends one PING held back
}

// newPingHold starts a pingHold to the NATS server at dest (host:port).
func newPingHold(t *testing.T, dest string) *pingHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pingHold{t: t, ln: ln, dest: dest}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Wait()
	})
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { p.serve(c) })
		}
	})
	return p
}

// URL is the proxy's NATS URL.
func (p *pingHold) URL() string { return "nats://" + p.ln.Addr().String() }

// Hold keeps back the clients' PINGs from now on.
func (p *pingHold) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// Release sends the PINGs held back, and those to come at once.
func (p *pingHold) Release() {
	p.mu.Lock()
	held := p.held
	p.holding, p.held = false, nil
	p.mu.Unlock()
	for _, send := range held {
		send()
	}
}

// serve passes one client connection on to the server until either side
// closes it.
func (p *pingHold) serve(c net.Conn) {
	defer c.Close()
	s, err := net.Dial("tcp", p.dest)
	if err != nil {
		return
	}
	defer s.Close()
	go func() {
		_, _ = io.Copy(c, s)
		_ = c.Close()
	}()
	var wmu sync.Mutex // the client's goroutine and Release write to s
	write := func(b []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		_, _ = s.Write(b)
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		op, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
		switch strings.ToUpper(op) {
		case "PUB", "HPUB":
			fields := strings.Fields(string(line))
			n, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				p.t.Errorf("pingHold: cannot read %q", line)
				return
			}
			payload := make([]byte, n+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			write(append(line, payload...))
		case "PING":
			p.mu.Lock()
			if p.holding {
				p.held = append(p.held, func() { write(line) })
				p.mu.Unlock()
				continue
			}
			p.mu.Unlock()
			write(line)
		default:
			write(line)
		}
	}
}

// TestStartRunPicksAgainWhenAPortIsTaken: the address the harness picks for
// --http is taken by another listener before the consumer listens on it,
// as the in-process sandbox's port 0 or another test's listener may take
// it. The start stops, "address already in use", once its order store,
// embedded NATS server and streams are set up; startRun starts the
// consumer again on other addresses, with the same data directory, and
// the test reads where it listens from its options. Two starts, not more.
func TestStartRunPicksAgainWhenAPortIsTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the consumer")
	}
	var picks []string
	taken := takenAddr(t)
	pick := func(t *testing.T) string {
		a := freeAddr(t)
		if len(picks) == 1 { // the first start's --http
			a = taken
		}
		picks = append(picks, a)
		return a
	}
	c := startRunPicking(t, []string{"--data", t.TempDir(), "--nats-listen", freePort, "--http", freePort}, "consuming invoice requests", 30*time.Second, pick)
	if len(picks) != 4 {
		t.Fatalf("%d addresses picked (%v), want 4: two for each of two starts", len(picks), picks)
	}
	if c.o.httpListen != picks[3] || c.o.natsListen != picks[2] {
		t.Fatalf("the consumer runs with --http %s and --nats-listen %s, want the second start's %s and %s", c.o.httpListen, c.o.natsListen, picks[3], picks[2])
	}
	resp, err := http.Get("http://" + c.o.httpListen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz on %s: %d", c.o.httpListen, resp.StatusCode)
	}
	if err := c.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop", err)
	}
}

// TestPickedTaken: a start is tried again only when a line of its error or
// log says that an address the harness picked was in use.
func TestPickedTaken(t *testing.T) {
	picked := []string{"127.0.0.1:4000", "127.0.0.1:4100"}
	for _, tc := range []struct {
		name string
		text string
		want bool
	}{
		{"--http picked", "--http 127.0.0.1:4000 (INVOICE_HTTP): listen tcp 127.0.0.1:4000: bind: address already in use", true},
		{"the embedded server's own listener", `{"level":"error","component":"nats-server","message":"Error listening on port: 127.0.0.1:4100, \"listen tcp 127.0.0.1:4100: bind: address already in use\""}`, true},
		{"an address the test gave", "--partner-http 127.0.0.1:40001 (INVOICE_PARTNER_HTTP): listen tcp 127.0.0.1:40001: bind: address already in use", false},
		{"a picked address, in use on another line", "serving on 127.0.0.1:4000\n--partner-http 127.0.0.1:5000: address already in use", false},
		{"another error", "--http 127.0.0.1:4000 (INVOICE_HTTP): listen tcp 127.0.0.1:4000: bind: permission denied", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickedTaken(tc.text, picked); got != tc.want {
				t.Errorf("pickedTaken(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}
