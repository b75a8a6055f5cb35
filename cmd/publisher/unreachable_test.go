package main

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUnreachableURLStaysUnreachable: nothing can listen at unreachableURL's
// address while the test runs — not a NATS server or httptest server of a
// parallel test, which listen on port 0 — and a connection to it is
// refused at once.
func TestUnreachableURLStaysUnreachable(t *testing.T) {
	t.Parallel()
	addr := strings.TrimPrefix(unreachableURL(t), "nats://")
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("a listener could take %s, unreachableURL's address, while the test runs", addr)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want the connection refused", addr, err)
	}
}
