package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// An HTTP listener on a host name (--http, --partner-http, --pprof)
// resolves it before it listens: a DNS server that never answers must
// neither hold the start beyond the listen's bound (listenResolveTimeout),
// after which the start fails naming the flag and saying why, nor keep a
// shutdown signal waiting. Without a bound of its own, net.Listen waits
// for the resolver's own timeouts, /etc/resolv.conf's (5 s and 2 attempts
// by default, for each search domain: over a minute in a pod with
// Kubernetes' search domains), after the streams were set up and before
// the consumer takes a request, and ignores the signal meanwhile; then it
// fails all the same, with "i/o timeout".
//
// The DNS server is silentDNS's. The tests tell the bounded listen by
// what its error says, not by how long it took; the limit they wait for
// only ends them.
func TestListenDoesNotWaitForASilentDNS(t *testing.T) {
	// listen runs startHTTP on addr as --http, ended by ctx, and returns
	// its error.
	listen := func(ctx context.Context, addr string) error {
		var wg sync.WaitGroup
		defer wg.Wait()
		ctx, stop := context.WithCancel(ctx)
		defer stop() // a listener started after all stops before the wait
		done := make(chan error, 1)
		go func() {
			done <- startHTTP(ctx, &options{httpListen: addr}, readiness{}, prometheus.NewRegistry(), nil, nil, &wg, zerolog.Nop())
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Minute):
			t.Fatalf("--http %s still not listening after 5 minutes, waiting for a DNS server that never answers", addr)
			return nil
		}
	}

	t.Run("bounded", func(t *testing.T) {
		queries := silentDNS(t)
		err := listen(context.Background(), "invoicer-a.example:8080")
		if err == nil {
			t.Fatal("listening on a name that does not resolve")
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "--http invoicer-a.example:8080 (INVOICE_HTTP): ") || !strings.Contains(msg, "did not resolve within "+listenResolveTimeout.String()) {
			t.Errorf("error %q; want it to name the flag and say that the name did not resolve within %v", msg, listenResolveTimeout)
		}
		if queries.Load() == 0 {
			t.Fatal("no DNS query reached the test's server: the test did not test the listen's resolution")
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		queries := silentDNS(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The shutdown signal arrives while the name is being resolved.
		go func() {
			for deadline := time.Now().Add(time.Minute); queries.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
		}()
		err := listen(ctx, "invoicer-b.example:8080")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v; want the listen given up as the shutdown began (context.Canceled)", err)
		}
		if queries.Load() == 0 {
			t.Fatal("no DNS query reached the test's server: the test did not test the listen's resolution")
		}
	})
}
