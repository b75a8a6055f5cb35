package main

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// restartable is a JetStream server that a test stops and starts again,
// with the same store or another, at an address that stays the same: its
// clients (the tails) connect to url, a loopback TCP proxy held for the
// whole test, which passes each connection on to the server running then
// and closes it at once while none runs, as a server that is down refuses
// it. Each start listens on a port of its own: a fixed port let go of
// while the server was stopped was anyone's meanwhile (a listener on port
// 0, of this test binary or of another process on the machine, could be
// given it, and the restart failed, "nats server not ready").
type restartable struct {
	t   *testing.T
	url string // the proxy's NATS URL, for the tails
	ns  *server.Server
	js  jetstream.JetStream

	mu      sync.Mutex
	backend string // the running server's host:port, "" while it is stopped
}

// newRestartable starts the proxy of a restartable, stopped when the test
// ends; start starts its server.
func newRestartable(t *testing.T) *restartable {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &restartable{t: t, url: "nats://" + l.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
		track = func(c net.Conn) bool { // false once the test ends
			mu.Lock()
			defer mu.Unlock()
			if conns == nil {
				return false
			}
			conns[c] = true
			return true
		}
	)
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		conns = nil
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				_ = c.Close()
				return
			}
			wg.Go(func() { r.pass(c, track) })
		}
	})
	return r
}

// pass passes the client connection c on to the running server until
// either side closes it; with no server running, or none reachable, it
// closes c.
func (r *restartable) pass(c net.Conn, track func(net.Conn) bool) {
	defer c.Close()
	r.mu.Lock()
	backend := r.backend
	r.mu.Unlock()
	if backend == "" {
		return
	}
	s, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer s.Close()
	if !track(s) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(s, c)
		_ = s.Close()
	}()
	_, _ = io.Copy(c, s)
	_ = c.Close()
	<-done
}

// start starts the server on storeDir; ensure creates the streams as the
// consumer does at its start.
func (r *restartable) start(storeDir string, ensure bool) {
	t := r.t
	ns, err := server.NewServer(&server.Options{ServerName: "tail-restart", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r.ns, r.js = ns, js
	r.mu.Lock()
	r.backend = strings.TrimPrefix(ns.ClientURL(), "nats://")
	r.mu.Unlock()
	if ensure {
		r.ensure()
	}
}

func (r *restartable) ensure() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := (pipeline.Topology{}).Ensure(ctx, r.js); err != nil {
		r.t.Fatal(err)
	}
}

func (r *restartable) stop() {
	r.mu.Lock()
	r.backend = ""
	r.mu.Unlock()
	r.ns.Shutdown()
	r.ns.WaitForShutdown()
}

func (r *restartable) publish(orderNo string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := tailResult(nuonuoSeller, orderNo, schemas.StatusIssued)
	if err := pipeline.NewJetStreamPublisher(r.js, schemas.Subjects{}).PublishResult(ctx, &res, "result:test:"+orderNo); err != nil {
		r.t.Fatal(err)
	}
}

type tailRun struct {
	out, errOut string
	code        int
}

// tail runs the publisher's tail with args against the server, and
// returns once it follows the results: its ordered consumer exists on the
// results stream, so that a result published from now on is one it shows.
// It fails the test when the tail ends first, or does not follow within
// 30 s.
func (r *restartable) tail(args ...string) <-chan tailRun {
	r.t.Helper()
	before := r.resultConsumers()
	done := make(chan tailRun, 1)
	go func() {
		out, errOut, code := runCLI(r.t, "", append([]string{"--server", r.url, "--timeout", "5s", "tail"}, args...)...)
		done <- tailRun{out, errOut, code}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for name := range r.resultConsumers() {
			if !before[name] {
				return done
			}
		}
		select {
		case run := <-done:
			r.t.Fatalf("tail ended before it followed the results: exit %d\n%s%s", run.code, run.out, run.errOut)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatal("tail did not follow the results within 30 s")
		}
	}
}

// resultConsumers returns the names of the results stream's consumers.
func (r *restartable) resultConsumers() map[string]bool {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := r.js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		r.t.Fatal(err)
	}
	names := stream.ConsumerNames(ctx)
	out := map[string]bool{}
	for name := range names.Name() {
		out[name] = true
	}
	if err := names.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// await returns the tail run done reports, failing the test with why when
// it has not ended within d.
func (r *restartable) await(done <-chan tailRun, d time.Duration, why string) tailRun {
	r.t.Helper()
	select {
	case run := <-done:
		return run
	case <-time.After(d):
		r.t.Fatal(why)
		return tailRun{}
	}
}

// TestRestartableKeepsItsAddress: while a restartable server is stopped,
// nothing else can listen at the address its clients reconnect to, and it
// starts again there.
func TestRestartableKeepsItsAddress(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	store := filepath.Join(t.TempDir(), "js")
	r.start(store, true)
	addr := strings.TrimPrefix(r.url, "nats://")
	r.stop()
	if l, err := net.Listen("tcp", addr); err == nil {
		// As a listener on port 0 may be given the port meanwhile.
		t.Cleanup(func() { l.Close() })
		t.Errorf("a listener could take %s while the server was stopped", addr)
	}
	if nc, err := nats.Connect(r.url, nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Errorf("connected to %s while the server was stopped", r.url)
	}
	r.start(store, false)
	r.publish("R-1")
	nc, err := nats.Connect(r.url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connect to %s once the server is back: %v", r.url, err)
	}
	defer nc.Close()
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatalf("a round trip through %s: %v", r.url, err)
	}
}

// tail outlives an outage of NATS longer than the connection's default
// five reconnection attempts (in the default mode NATS runs in the
// consumer's process, so a restart of the consumer is such an outage):
// it says so on stderr and goes on with the results published after it.
func TestTailOutlivesARestartOfNATS(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "js")
	r := newRestartable(t)
	r.start(store, true)
	done := r.tail("--count", "2", "--for", "60s")
	r.publish("R-1")
	time.Sleep(500 * time.Millisecond)
	r.stop()
	time.Sleep(15 * time.Second) // longer than five reconnection attempts
	r.start(store, false)
	r.publish("R-2")
	run := r.await(done, 45*time.Second, "tail did not see the result published after NATS came back")
	if run.code != exitOK || !strings.Contains(run.out, "R-1") || !strings.Contains(run.out, "R-2") {
		t.Fatalf("exit %d\n%s%s", run.code, run.out, run.errOut)
	}
	if !strings.Contains(run.errOut, "lost NATS") || !strings.Contains(run.errOut, "reconnected to NATS") {
		t.Errorf("the outage is not said on stderr:\n%s", run.errOut)
	}
}

// A tail that has shown nothing yet when NATS restarts (the consumer, in
// the default mode) shows the results published between NATS coming back
// and the ordered consumer being recreated: it follows from where it
// began, not from "new results" taken afresh at the reset.
func TestTailKeepsTheResultsPublishedAsNATSComesBack(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	store := filepath.Join(t.TempDir(), "js")
	r.start(store, true)
	done := r.tail("--count", "2", "--for", "30s")
	r.stop()
	time.Sleep(3 * time.Second)
	r.start(store, false) // the streams are on disk
	r.publish("R-1")      // the restarted consumer answers a waiting request at once
	time.Sleep(3 * time.Second)
	r.publish("R-2")
	got := r.await(done, 45*time.Second, "tail did not end")
	if got.code != exitOK || !strings.Contains(got.out, "R-1") || !strings.Contains(got.out, "R-2") {
		t.Fatalf("exit %d\n%s%s", got.code, got.out, got.errOut)
	}
}

// --for ends tail while NATS is back but the results stream is not (yet),
// although the ordered consumer's reset retries for ever and does not see
// the command's context.
func TestTailForEndsWhileTheStreamIsMissing(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	r.start(filepath.Join(t.TempDir(), "js"), true)
	r.publish("R-1")
	done := r.tail("--for", "4s")
	r.stop()
	r.start(filepath.Join(t.TempDir(), "other"), false) // no streams
	defer r.ensure()                                    // let a stuck tail go at the end
	got := r.await(done, 20*time.Second, "tail --for 4s still running after 20s")
	if got.code != exitOK {
		t.Fatalf("exit %d\n%s%s", got.code, got.out, got.errOut)
	}
}

// On a server whose results stream is new (the data directory cleared,
// another store), a tail that has shown results follows the new stream from
// its start, not from after the old stream's last sequence.
func TestTailFollowsAResultsStreamMadeAnew(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	r.start(filepath.Join(t.TempDir(), "js"), true)
	done := r.tail("--count", "4", "--for", "20s")
	for _, no := range []string{"R-1", "R-2", "R-3"} {
		r.publish(no)
	}
	time.Sleep(500 * time.Millisecond)
	r.stop()
	r.start(filepath.Join(t.TempDir(), "fresh"), true)
	time.Sleep(3 * time.Second) // tail is back
	r.publish("N-1")
	got := r.await(done, 30*time.Second, "tail did not end")
	if got.code != exitOK || !strings.Contains(got.out, "N-1") {
		t.Fatalf("exit %d\n%s%s", got.code, got.out, got.errOut)
	}
}

// A tail that ends normally (--count, --for) says nothing on stderr.
func TestTailSaysNothingOnANormalEnd(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	r.start(filepath.Join(t.TempDir(), "js"), true)
	for i := 0; i < 4; i++ {
		done := r.tail("--count", "1", "--for", "3s")
		if i%2 == 0 {
			r.publish("Q-" + string(rune('a'+i)))
		}
		got := <-done
		if strings.Contains(got.errOut, "NATS") {
			t.Fatalf("run %d: exit %d, stderr %q", i, got.code, got.errOut)
		}
	}
}

// A results stream deleted and made again while NATS stays up (nats stream
// rm, then the consumer's start) starts its sequences again without a
// reconnection: tail still follows the new stream from its start.
func TestTailFollowsAResultsStreamRemadeWithoutAReconnection(t *testing.T) {
	t.Parallel()
	r := newRestartable(t)
	r.start(filepath.Join(t.TempDir(), "js"), true)
	done := r.tail("--count", "4", "--for", "30s")
	for _, no := range []string{"R-1", "R-2", "R-3"} {
		r.publish(no)
	}
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
		t.Fatal(err)
	}
	r.ensure()
	r.publish("N-1")
	got := r.await(done, 40*time.Second, "tail did not end")
	if got.code != exitOK || !strings.Contains(got.out, "N-1") {
		t.Fatalf("exit %d\n%s%s", got.code, got.out, got.errOut)
	}
}
