package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// readiness says whether the consumer can do its job.
type readiness struct {
	nc    *nats.Conn
	bound func() bool
	// missing says why the request consumer does not exist (the request
	// stream or its durable deleted, and not created again yet), nil
	// while it does (pipeline.Loop.Missing).
	missing func() error
	store   func() error
	// draining reports whether the shutdown has begun: the consumer takes
	// no new requests then, while it finishes those in flight, and is not
	// ready however well the rest works.
	draining func() bool
	// stoodDown says why this instance stood down (another instance took
	// its request consumer, or its start was refused because another
	// pulls from it), nil while it has not: it takes no requests from
	// then on, and stands by until it is stopped.
	stoodDown func() error
}

// problems lists what keeps the consumer from being ready, with the
// causes when causes is set: the errors' texts, which name the order
// store's files, the other instance's host, process and data directory, and
// the like, for operators only (see fromThisHost).
func (r readiness) problems(causes bool) []string {
	var out []string
	if r.stoodDown != nil {
		if err := r.stoodDown(); err != nil {
			why := "another instance holds the request consumer"
			if causes {
				why = err.Error()
			}
			out = append(out, "stood down: "+why+"; taking no requests, standing by until stopped")
		}
	}
	if r.draining != nil && r.draining() {
		out = append(out, "draining: shutting down, finishing the requests in flight and taking no new ones")
	}
	if r.nc == nil || r.nc.Status() != nats.CONNECTED {
		out = append(out, "NATS is not connected")
	}
	var missing error
	if r.missing != nil {
		missing = r.missing()
	}
	switch {
	case missing != nil:
		p := "request consumer missing: the request stream or its durable was deleted; taking no requests until it is created again"
		if causes {
			p += ": " + missing.Error()
		}
		out = append(out, p)
	case r.bound == nil || !r.bound():
		out = append(out, "not bound to the request consumer")
	}
	if r.store == nil {
		out = append(out, "order store not open")
	} else if err := r.store(); err != nil {
		p := "order store cannot write"
		if causes {
			p += ": " + err.Error()
		}
		out = append(out, p)
	}
	return out
}

// fromThisHost reports whether r comes from the consumer's own host (a
// loopback address) and not through a proxy (it names no client it is
// forwarded for): an operator's curl on the host, kubectl port-forward or
// exec. Without --partner-http the partner API shares the listener of
// /readyz, and partners reach it from elsewhere or through a proxy.
func fromThisHost(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip"} {
		if len(r.Header.Values(h)) > 0 {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// newHTTPHandler serves the operator endpoints, the partner API when
// partner is not nil:
//
//	GET /healthz                 200 while the process runs
//	GET /readyz                  200 when NATS is connected, the consumer bound and the store writable; 503 with the reasons otherwise, from the start of the shutdown on ("draining"), once another instance took the request consumer or from the start of one refused because another pulls from it ("stood down"), and while the request consumer is deleted and not created again ("request consumer missing")
//	GET /metrics                 Prometheus metrics
//	GET /partner/queryInvoice    the partner status query (seed 003)
//
// The partner API is exposed to partners, on this listener unless
// --partner-http gives it one of its own (newPartnerHandler), so /readyz
// gives the causes of its reasons (the errors, which name files, hosts and
// processes) only to a caller on the consumer's own host (fromThisHost);
// anyone else, a Kubernetes probe or a partner, gets the status and the
// reasons alone. The causes are in the consumer's log as well.
func newHTTPHandler(ready readiness, reg *prometheus.Registry, partner http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSONStatus(w, http.StatusOK, map[string]string{"status": "alive"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if p := ready.problems(fromThisHost(r)); len(p) > 0 {
			writeJSONStatus(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": p})
			return
		}
		writeJSONStatus(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if partner != nil {
		mux.Handle("GET /partner/queryInvoice", partner)
	}
	return mux
}

// newPartnerHandler serves the partner API alone, for --partner-http:
//
//	GET /partner/queryInvoice    the partner status query (seed 003)
//
// and 404 for every other path, the operator endpoints included: /metrics
// (the invoice volumes and outcomes, the providers' answer codes, the
// order store's disk), /readyz and /healthz are --http's only. A nil
// partner (a refused start, which sets none up) serves 404 for every path.
func newPartnerHandler(partner http.Handler) http.Handler {
	mux := http.NewServeMux()
	if partner != nil {
		mux.Handle("GET /partner/queryInvoice", partner)
	}
	return mux
}

// startHTTP serves the consumer's HTTP listeners until ctx ends, each
// waited for by wg: --http, the operator endpoints (newHTTPHandler) and the
// partner API with them, and --partner-http, when set, the partner API
// alone (newPartnerHandler), which --http then does not serve. partner is
// nil when this instance set no partner API up (a refused start), and
// channels are its partners' channels, for the log, which says what each
// listener serves. An address that cannot be listened on is an error
// naming its flag; a listener started before it stops when ctx ends.
func startHTTP(ctx context.Context, o *options, ready readiness, reg *prometheus.Registry, partner http.Handler, channels []string, wg *sync.WaitGroup, log zerolog.Logger) error {
	serve := func(what, addr string, h http.Handler) error {
		served, err := serveHTTP(ctx, addr, h)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		wg.Go(func() {
			if err := <-served; err != nil {
				log.Error().Err(err).Str("addr", addr).Msg("HTTP server")
			}
		})
		return nil
	}
	own := o.partnerAddr != ""
	if o.httpListen != "" {
		onHTTP := partner
		if own {
			onHTTP = nil
		}
		if err := serve("--http "+o.httpListen+" (INVOICE_HTTP)", o.httpListen, newHTTPHandler(ready, reg, onHTTP)); err != nil {
			return err
		}
		switch {
		case own:
			log.Info().Str("addr", o.httpListen).Msg("serving /healthz, /readyz and /metrics; the partner API is on --partner-http")
		case partner != nil:
			log.Info().Str("addr", o.httpListen).Strs("partner_channels", channels).Msg("serving /healthz, /readyz, /metrics and /partner/queryInvoice")
		default:
			log.Info().Str("addr", o.httpListen).Msg("serving /healthz, /readyz and /metrics; no partner API: this instance set none up")
		}
	}
	if own {
		if err := serve("--partner-http "+o.partnerAddr+" (INVOICE_PARTNER_HTTP)", o.partnerAddr, newPartnerHandler(partner)); err != nil {
			return err
		}
		if partner != nil {
			log.Info().Str("addr", o.partnerAddr).Strs("partner_channels", channels).Msg("serving /partner/queryInvoice only")
		} else {
			log.Info().Str("addr", o.partnerAddr).Msg("serving nothing (404) on --partner-http: this instance set no partner API up")
		}
	}
	return nil
}

// listenResolveTimeout bounds the name resolution of an HTTP listen
// (serveHTTP) whose address has a host name (--http, --partner-http,
// --pprof), which net.Listen resolves without a bound of its own: a DNS
// server that does not answer would hold the start, after the streams
// were set up and before the first request is taken, for the resolver's
// own timeouts (/etc/resolv.conf's, 5 s times 2 attempts by default, for
// each name and each search domain: over a minute in a pod with
// Kubernetes' search domains), deaf to a shutdown signal, and the listen
// would fail all the same, naming an i/o timeout. Bounded, the start
// fails in a few seconds, saying why. A name in /etc/hosts (localhost,
// a pod's own name) and an IP address need no DNS. A DNS server that
// answers at all answers well within it: 5 s is the resolver's default
// timeout of one query, after which it asks again; a listen that needs
// more than that is better given an IP address. Unlike
// listenCheckTimeout's, running out fails the start: the listen cannot go
// on without the address.
const listenResolveTimeout = 5 * time.Second

// serveHTTP listens on addr and serves h until ctx ends; it reports a
// listen failure at once. Resolving addr's host name ends with ctx, and
// after listenResolveTimeout.
func serveHTTP(ctx context.Context, addr string, h http.Handler) (done <-chan error, err error) {
	lctx, cancel := context.WithTimeout(ctx, listenResolveTimeout)
	defer cancel()
	ln, err := (&net.ListenConfig{}).Listen(lctx, "tcp", addr)
	if err != nil {
		if ctx.Err() == nil && errors.Is(lctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: the host name did not resolve within %v; give an IP address, or see to the DNS", err, listenResolveTimeout)
		}
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	ch := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		ch <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ch, nil
}

// newPprofHandler serves Go's runtime profiles (net/http/pprof) under
// /debug/pprof/, for --pprof: on its own address, so that it is never
// exposed by accident with the metrics and partner endpoints.
func newPprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprofCmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// pprofCmdline is net/http/pprof's Cmdline, the command line's arguments
// separated by NUL bytes, with the passwords of NATS URLs hidden as in the
// consumer's logs: "--nats-url nats://user:password@host" is a way to run it.
func pprofCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "-") {
			args[i] = k + "=" + redactURL(v)
		} else {
			args[i] = redactURL(a)
		}
	}
	_, _ = io.WriteString(w, strings.Join(args, "\x00"))
}
