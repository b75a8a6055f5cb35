package main

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// The check that --http and --partner-http do not take one port resolves
// host names other than localhost, when both give one port: a DNS server
// that never answers must not hold the start beyond the check's bound
// (listenCheckTimeout), which then leaves the two addresses to the
// listens, whose own error names the one that cannot be listened on.
//
// The DNS server here is a real UDP socket on loopback that reads the
// queries and answers none, as a server behind a dropping firewall does;
// net.DefaultResolver, which the check uses as net.Listen does, is pointed
// at it for the test's length (the package's tests that run in parallel
// start only once this one has ended). Without a bound of its own, the
// resolver gives up only after /etc/resolv.conf's timeout and attempts
// (5 s and 2 by default) for each name and each search domain: 20 s here
// for the two names, and far more in a pod with Kubernetes' search
// domains, during which the consumer has logged nothing at all. The limit
// the test waits for is several times the check's bound, for a loaded
// machine: it tells a bounded wait from the resolver's own, not a fast
// check from a slow one.
func TestListenerCheckDoesNotWaitForASilentDNS(t *testing.T) {
	queries := silentDNS(t)
	type parsed struct {
		o   *options
		err error
	}
	done := make(chan parsed, 1)
	start := time.Now()
	go func() {
		o, err := parseFlags([]string{"--http", "invoicer-a.example:8080", "--partner-http", "invoicer-b.example:8080"}, noEnv)
		done <- parsed{o, err}
	}()
	const limit = 10 * time.Second
	var p parsed
	select {
	case p = <-done:
	case <-time.After(limit):
		// Waited for before the test ends, which restores the resolver
		// the call reads: the resolver's own timeouts end it.
		select {
		case p = <-done:
			t.Fatalf("the flags were read after %v, waiting for a DNS server that never answers (%d queries sent); want the check given up within %v", time.Since(start).Round(time.Second), queries.Load(), limit)
		case <-time.After(5 * time.Minute):
			t.Fatalf("the flags were still not read after 5 minutes, waiting for a DNS server that never answers (%d queries sent)", queries.Load())
		}
	}
	if p.err != nil {
		t.Fatalf("refused: %v; want the check skipped when the names do not resolve in time, the listens naming an address they cannot listen on", p.err)
	}
	if queries.Load() == 0 {
		t.Fatal("no DNS query reached the test's server: the test did not test the check's resolution")
	}
}

// silentDNS points net.DefaultResolver, for the test's length, at a DNS
// server that never answers: a real UDP socket on loopback that reads the
// queries and answers none, as a server behind a dropping firewall does.
// It returns the count of the queries it read. The test must not run in
// parallel (the package's tests that do start only once it has ended).
func silentDNS(t *testing.T) *atomic.Int64 {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	queries := new(atomic.Int64)
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return // closed
			}
			queries.Add(1)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-read })
	// The resolver's lookups may outlive the call that gave up on them
	// (until their own timeout), and may dial after the test restored
	// net.DefaultResolver: the dial reads no resolver (net.Dialer would
	// read net.DefaultResolver), only the server's address.
	server := pc.LocalAddr().(*net.UDPAddr)
	saved := net.DefaultResolver
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return net.DialUDP("udp", nil, server)
	}}
	t.Cleanup(func() { net.DefaultResolver = saved })
	return queries
}
