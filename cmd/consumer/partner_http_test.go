package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestPartnerHTTPListener runs the consumer in its default mode (embedded
// NATS, the in-process sandbox and its demo partner channel) with and
// without --partner-http, and asks each listener over real HTTP what it
// serves. With --partner-http the partner API is served there and nowhere
// else, and that listener serves nothing else: /metrics, /readyz and
// /healthz are 404 there, as the partner API is on --http. Without it,
// --http serves all four, as it always has. Either way the partner API's
// answers are counted on --http's /metrics, and the start's log says which
// endpoints each listener serves.
func TestPartnerHTTPListener(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the consumer")
	}
	// A signed query of an order that does not exist: the partner API
	// checks the signature, looks for the order and answers 1005.
	query := "/partner/queryInvoice?" + partnerQuery(demoPartnerChannel, demoPartnerSecret, "339902999999789113:NO-SUCH-ORDER", time.Now()).Encode()
	operator := []string{"/healthz", "/readyz", "/metrics"}
	for _, tc := range []struct {
		name string
		own  bool // --partner-http given
	}{
		{"partner API on a listener of its own", true},
		{"partner API on --http, without --partner-http", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--data", t.TempDir(), "--nats-listen", freePort, "--http", freePort}
			if tc.own {
				args = append(args, "--partner-http", freePort)
			}
			c := startRun(t, args)
			httpAddr, partnerAddr := c.o.httpListen, c.o.partnerAddr
			get := func(addr, path string) (int, string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				body, code := doRequest(t, req)
				return code, body
			}
			// /readyz is 200 once the consume loop is bound, shortly
			// after the log says it consumes.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				if code, _ := get(httpAddr, "/readyz"); code == http.StatusOK {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("/readyz on --http never answered 200:\n%s", c.logs.String())
				}
			}
			for _, p := range operator {
				if code, body := get(httpAddr, p); code != http.StatusOK {
					t.Errorf("%s on --http: %d %s, want 200", p, code, body)
				}
			}

			partnerAt, notAt := httpAddr, partnerAddr
			if tc.own {
				partnerAt, notAt = partnerAddr, httpAddr
			}
			code, body := get(partnerAt, query)
			var a partnerAnswer
			if err := json.Unmarshal([]byte(body), &a); err != nil || code != http.StatusNotFound || a.Result != 1005 {
				t.Errorf("signed partner query on %s: %d %s, want 404 with result 1005", partnerAt, code, body)
			}
			if tc.own {
				if code, body := get(notAt, query); code != http.StatusNotFound || strings.Contains(body, "result") {
					t.Errorf("partner query on --http beside --partner-http: %d %s, want a plain 404", code, body)
				}
				for _, p := range append(operator, "/", "/debug/pprof/") {
					if code, body := get(partnerAddr, p); code != http.StatusNotFound {
						t.Errorf("%s on --partner-http: %d %s, want 404", p, code, body)
					}
				}
			} else if partnerAddr != "" || strings.Contains(c.logs.String(), "serving /partner/queryInvoice only") {
				// No listener of the partner API's own without
				// --partner-http. (Dialling an address picked for it and
				// left unused proved nothing the consumer could not
				// know, and failed when anything else took that port.)
				t.Errorf("--partner-http %q and a partner API listener of its own without the flag:\n%s", partnerAddr, c.logs.String())
			}
			// The partner API's answers stay on --http's /metrics.
			if _, page := get(httpAddr, "/metrics"); metricValues(page)[`invoice_partner_answers_total{result="1005"}`] != "1" {
				t.Errorf("invoice_partner_answers_total{result=\"1005\"} on --http's /metrics is %q, want 1", metricValues(page)[`invoice_partner_answers_total{result="1005"}`])
			}

			logs := c.logs.String()
			wantLogs := []string{`"addr":"` + httpAddr + `","partner_channels":["demo"],"message":"serving /healthz, /readyz, /metrics and /partner/queryInvoice"`}
			if tc.own {
				wantLogs = []string{
					`"addr":"` + httpAddr + `","message":"serving /healthz, /readyz and /metrics; the partner API is on --partner-http"`,
					`"addr":"` + partnerAddr + `","partner_channels":["demo"],"message":"serving /partner/queryInvoice only"`,
				}
			}
			for _, want := range wantLogs {
				if !strings.Contains(logs, want) {
					t.Errorf("the start's log lacks %s:\n%s", want, logs)
				}
			}
			if err := c.stopAndWait(30 * time.Second); err != nil {
				t.Fatalf("run = %v once told to stop", err)
			}
		})
	}
}

// doRequest sends req and returns the answer's body and status code.
func doRequest(t *testing.T, req *http.Request) (string, int) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return string(b), resp.StatusCode
}

// TestPartnerHTTPMustBeItsOwnAddress: --partner-http (INVOICE_PARTNER_HTTP)
// equal to --http is refused when the flags are read, naming both, and one
// the consumer cannot listen on stops the start with an error naming it.
func TestPartnerHTTPMustBeItsOwnAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag equal to --http", []string{"--http", "127.0.0.1:9090", "--partner-http", "127.0.0.1:9090"}, nil},
		{"variable equal to the default --http", nil, map[string]string{"INVOICE_PARTNER_HTTP": "127.0.0.1:8080"}},
		{"variable equal to INVOICE_HTTP", nil, map[string]string{"INVOICE_HTTP": "0.0.0.0:9090", "INVOICE_PARTNER_HTTP": "0.0.0.0:9090"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), "--partner-http") || !strings.Contains(err.Error(), "INVOICE_PARTNER_HTTP") || !strings.Contains(err.Error(), "--http") {
				t.Fatalf("error %v; want one naming --partner-http, INVOICE_PARTNER_HTTP and --http", err)
			}
		})
	}
	for _, ok := range [][]string{
		{"--partner-http", "127.0.0.1:8081"},
		{"--http", "", "--partner-http", "127.0.0.1:8081"},         // the partner API alone
		{"--http", "127.0.0.1:0", "--partner-http", "127.0.0.1:0"}, // two ports the system picks
	} {
		if _, err := parseFlags(ok, noEnv); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}

	if testing.Short() {
		return
	}
	taken := takenAddr(t)
	if err := startRefused(t, "--http", freePort, "--partner-http", taken); !strings.Contains(err.Error(), "--partner-http "+taken) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run = %v; want an error naming --partner-http %s and why it cannot listen", err, taken)
	}
}

// TestPartnerHTTPMustNotShareHTTPsPort: two spellings of one address for
// --http and --partner-http (localhost and 127.0.0.1, a wildcard host and
// any other, an IPv4-mapped address and its IPv4 one) are refused when the
// flags or their variables are read, naming both flags, both variables and
// both spellings, as the same spelling twice is; pairs that can both listen
// (other ports, two distinct specific addresses, port 0) are not. Each pair
// is then listened on for real, so that the rule is the system's.
func TestPartnerHTTPMustNotShareHTTPsPort(t *testing.T) {
	// ports returns two distinct ports free on every address, each held
	// by a listener until free is called. Picked one after the other, each
	// listener closed at once, the second could be the first again (the
	// system may give a port just let go of to the next listener on port
	// 0), and a pair meant to be on two ports was on one.
	ports := func() (p, q string, free func()) {
		var held []net.Listener
		free = func() {
			for _, l := range held {
				_ = l.Close()
			}
		}
		for range 2 {
			l, err := net.Listen("tcp", ":0")
			if err != nil {
				free()
				t.Fatal(err)
			}
			held = append(held, l)
		}
		_, p, _ = net.SplitHostPort(held[0].Addr().String())
		_, q, _ = net.SplitHostPort(held[1].Addr().String())
		return p, q, free
	}
	v6 := true
	if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
		v6 = false
	} else {
		_ = l.Close()
	}
	for _, tc := range []struct {
		http, partner string // P and Q stand for two free ports
		collide       bool
		v6            bool // needs IPv6 on loopback
	}{
		{"localhost:P", "127.0.0.1:P", true, false},
		{"127.0.0.1:P", "localhost:P", true, false},
		{":P", "127.0.0.1:P", true, false},
		{"127.0.0.1:P", ":P", true, false},
		{"0.0.0.0:P", "localhost:P", true, false},
		{"localhost:P", "0.0.0.0:P", true, false},
		{"127.0.0.1:P", "[::]:P", true, true},
		{"[::]:P", "[::1]:P", true, true},
		{"0.0.0.0:P", "[::1]:P", true, true},
		{":P", "[::]:P", true, true},
		{"[::ffff:127.0.0.1]:P", "127.0.0.1:P", true, false},
		{"127.0.0.1:P", "127.0.0.2:P", false, false},
		{"127.0.0.1:P", "[::1]:P", false, true},
		{"127.0.0.1:P", "127.0.0.1:Q", false, false},
		{":P", ":Q", false, false},
		{"localhost:P", "0.0.0.0:Q", false, false},
		{"localhost:0", "127.0.0.1:0", false, false},
		{":0", ":0", false, false},
	} {
		t.Run(tc.http+" "+tc.partner, func(t *testing.T) {
			if tc.v6 && !v6 {
				t.Skip("no IPv6 on loopback")
			}
			p, q, free := ports()
			defer free()
			httpAddr := strings.NewReplacer("P", p, "Q", q).Replace(tc.http)
			partnerAddr := strings.NewReplacer("P", p, "Q", q).Replace(tc.partner)
			for _, given := range []struct {
				how  string
				args []string
				env  map[string]string
			}{
				{"flags", []string{"--http", httpAddr, "--partner-http", partnerAddr}, nil},
				{"variables", nil, map[string]string{"INVOICE_HTTP": httpAddr, "INVOICE_PARTNER_HTTP": partnerAddr}},
			} {
				_, err := parseFlags(given.args, envOf(given.env))
				switch {
				case !tc.collide && err != nil:
					t.Errorf("%s: refused: %v", given.how, err)
				case tc.collide && err == nil:
					t.Errorf("%s: accepted", given.how)
				case tc.collide:
					for _, want := range []string{"--http " + strconv.Quote(httpAddr), "(INVOICE_HTTP", "--partner-http " + strconv.Quote(partnerAddr), "(INVOICE_PARTNER_HTTP)"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("%s: error %q, want it to say %s", given.how, err, want)
						}
					}
				}
			}
			// What the system says: the second listen fails exactly when
			// the pair collides. The ports are let go of just before.
			free()
			a, err := net.Listen("tcp", httpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := net.Listen("tcp", partnerAddr)
			if err == nil {
				_ = b.Close()
			}
			if (err != nil) != tc.collide {
				t.Errorf("listening on %s, then on %s: %v; the rule says collide %v", httpAddr, partnerAddr, err, tc.collide)
			}
		})
	}
	// --http left at its default, 127.0.0.1:8080.
	for _, partner := range []string{"localhost:8080", "[::]:8080", ":8080"} {
		_, err := parseFlags(nil, envOf(map[string]string{"INVOICE_PARTNER_HTTP": partner}))
		if err == nil || !strings.Contains(err.Error(), `--http "127.0.0.1:8080"`) || !strings.Contains(err.Error(), "INVOICE_PARTNER_HTTP") {
			t.Errorf("INVOICE_PARTNER_HTTP=%s beside the default --http: %v; want an error naming both", partner, err)
		}
	}
}

// --http on an address already in use stops the start with an error that
// names the flag, its variable and why.
func TestHTTPListenErrorNamesTheFlag(t *testing.T) {
	taken := takenAddr(t)
	if err := startRefused(t, "--http", taken); !strings.Contains(err.Error(), "--http "+taken+" (INVOICE_HTTP)") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("run = %v; want an error naming --http %s, INVOICE_HTTP and why it cannot listen", err, taken)
	}
}

// takenAddr returns a loopback address that a listener of the test's holds
// until it ends.
func takenAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

// startRefused runs the consumer in its default mode with args (freePort
// for an address the harness picks; the embedded NATS server's is one) and
// returns the error its start stops with, failing the test when it does
// not stop with one within 60 s. A start stopped because an address the
// harness picked was taken meanwhile is tried again (startTries), as
// startRun's are: the error returned is about an address the test gave.
func startRefused(t *testing.T, args ...string) error {
	t.Helper()
	for try := 1; ; try++ {
		picked, tried := pickAddrs(t, append([]string{"--data", t.TempDir(), "--nats-listen", freePort}, args...), freeAddr)
		o, err := parseFlags(tried, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		done := make(chan error, 1)
		go func() { done <- run(t.Context(), o, zerolog.New(logs)) }()
		select {
		case err = <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("run %v did not stop within 60 s:\n%s", tried, logs.String())
		}
		if err == nil {
			t.Fatalf("run %v returned without an error", tried)
		}
		if !pickedTaken(err.Error()+"\n"+logs.String(), picked) {
			return err
		}
		if try == startTries {
			t.Fatalf("the addresses picked for the consumer were taken at each of %d starts; the last one: %v\n%s", try, err, logs.String())
		}
	}
}
