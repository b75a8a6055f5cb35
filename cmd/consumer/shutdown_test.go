package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/nats-io/nats-server/v2/server"
)

// TestShutdownWithATokenFetchThatNeverAnswers: a Nuonuo request waits for
// its seller's first access token from a token endpoint that never
// answers (within a --provider-timeout of 10 minutes) when SIGTERM comes.
// The shutdown waits --shutdown-timeout for it, abandons it, and run
// returns within that and a small margin: the token fetch, shared by the
// seller's requests, does not hold the process.
func TestShutdownWithATokenFetchThatNeverAnswers(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "shutdown-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	asked, over := make(chan struct{}, 1), make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select { // never answers
		case <-r.Context().Done():
		case <-over:
		}
	}))
	t.Cleanup(hung.Close)
	t.Cleanup(func() { close(over) }) // before Close, which waits for the handlers

	config := filepath.Join(t.TempDir(), "sellers.yaml")
	yaml := "sellers:\n  - taxNum: \"" + sandbox.DefaultNuonuoSeller + "\"\n    provider: nuonuo\n    nuonuo: {baseURL: \"" + hung.URL + "\", tokenURL: \"" + hung.URL + "/accessToken\", appKey: \"" + sandbox.DefaultNuonuoAppKey + "\", appSecret: \"" + sandbox.DefaultNuonuoAppSecret + "\", family: ElectronInvoice}\n"
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	const shutdownTimeout = time.Second
	c := startRun(t, []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", t.TempDir(), "--http", "",
		"--workers", "2", "--provider-timeout", "10m", "--shutdown-timeout", shutdownTimeout.String()})

	_, js := jetStreamClient(t, ns.ClientURL())
	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "invoice.request."+sandbox.DefaultNuonuoSeller, req); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatalf("the token endpoint was never asked:\n%s", c.logs.String())
	}

	c.stop() // SIGTERM
	stopped := time.Now()
	const margin = 15 * time.Second
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
		t.Logf("run returned %v after the signal", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(shutdownTimeout + margin):
		t.Fatalf("run still running %v after the signal, with --shutdown-timeout %v:\n%s", shutdownTimeout+margin, shutdownTimeout, c.logs.String())
	}
}

// TestBoundShutdown: run's shutdown, once ctx ends, is waited for at most
// its limit (--shutdown-timeout and shutdownMargin); past it, boundShutdown
// returns an error saying what the shutdown still waits for, here a
// commit that a hung disk holds, and leaves it. A serve that ends in
// time, or before the signal, is waited for and its error returned.
func TestBoundShutdown(t *testing.T) {
	hung := make(chan struct{})
	defer close(hung)
	failed := errors.New("consume loop failed")
	for _, tc := range []struct {
		name    string
		stop    bool // the signal comes
		limit   time.Duration
		serve   func(step *shutdownStep) error
		want    error
		wantMsg string
	}{
		{"ends before the signal", false, time.Millisecond, func(*shutdownStep) error { time.Sleep(10 * time.Millisecond); return failed }, failed, ""},
		{"ends in time", true, time.Minute, func(*shutdownStep) error { time.Sleep(10 * time.Millisecond); return nil }, nil, ""},
		{"a commit that never returns", true, 50 * time.Millisecond, func(step *shutdownStep) error {
			step.setFunc(func() string { return fmt.Sprintf("%d commit waiting for the disk", 1) })
			<-hung
			return nil
		}, nil, "the shutdown did not finish within 50ms of the signal: exiting without waiting any longer for 1 commit waiting for the disk"},
		{"hung before any step", true, 50 * time.Millisecond, func(*shutdownStep) error { <-hung; return nil }, nil, "waiting any longer for the start to end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.stop {
				cancel()
			}
			var step shutdownStep
			done := make(chan error, 1)
			go func() { done <- boundShutdown(ctx, tc.limit, &step, func() error { return tc.serve(&step) }) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("boundShutdown still waiting 30 s after the signal, with a limit of %v", tc.limit)
			}
			switch {
			case tc.wantMsg != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %v, want one saying %q", err, tc.wantMsg)
				}
			case !errors.Is(err, tc.want) || (tc.want == nil && err != nil):
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}
