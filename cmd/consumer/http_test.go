package main

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/prometheus/client_golang/prometheus"
)

// /readyz is served beside the partner API, which partners reach: the
// causes of its problems (the order store's file, the other instance's
// host, process and data directory) are told only to a caller on the
// consumer's own host, not through a proxy; anyone else, a Kubernetes
// probe or a partner, gets the 503 and what is wrong without them.
func TestReadyzTellsCausesToOperatorsOnly(t *testing.T) {
	ready := readiness{bound: func() bool { return true },
		store: func() error {
			return fmt.Errorf("commit: %w", &fs.PathError{Op: "write", Path: "/var/lib/invoicer/orders.db", Err: syscall.ENOSPC})
		},
		stoodDown: func() error {
			return fmt.Errorf("%w (consumer invoicer-0 on stream INVOICE_REQUESTS): host-b.internal pid 4242 /var/lib/invoicer, started 2026-12-07T10:00:00Z, before this one",
				pipeline.ErrDurableTaken)
		}}
	h := newHTTPHandler(ready, prometheus.NewRegistry(), http.NotFoundHandler())
	get := func(remote string, header http.Header) string {
		r := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		r.RemoteAddr = remote
		for k, v := range header {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("/readyz from %s %v: HTTP %d, want 503", remote, header, w.Code)
		}
		return w.Body.String()
	}
	internals := []string{"/var/lib/invoicer", "host-b.internal", "4242", "INVOICE_REQUESTS"}
	for _, tc := range []struct {
		remote string
		header http.Header
	}{
		{"10.1.2.3:51234", nil}, // a kubelet's probe, or a partner
		{"203.0.113.7:443", nil},
		{"127.0.0.1:40000", http.Header{"X-Forwarded-For": {"203.0.113.7"}}}, // a partner through a proxy on the host
		{"127.0.0.1:40000", http.Header{"Forwarded": {"for=203.0.113.7"}}},
		{"[::1]:40000", http.Header{"X-Real-Ip": {"203.0.113.7"}}},
	} {
		body := get(tc.remote, tc.header)
		for _, s := range internals {
			if strings.Contains(body, s) {
				t.Errorf("/readyz from %s %v tells %q: %s", tc.remote, tc.header, s, body)
			}
		}
		if !strings.Contains(body, "order store cannot write") || !strings.Contains(body, "stood down") {
			t.Errorf("/readyz from %s %v does not say what is wrong: %s", tc.remote, tc.header, body)
		}
	}
	for _, remote := range []string{"127.0.0.1:40000", "[::1]:40000"} {
		body := get(remote, nil)
		for _, s := range internals {
			if !strings.Contains(body, s) {
				t.Errorf("/readyz from %s, an operator on the host, does not tell %q: %s", remote, s, body)
			}
		}
	}
}
