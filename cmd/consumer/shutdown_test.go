package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// TestShutdownWithATokenFetchThatNeverAnswers: a Nuonuo request waits for
// its seller's first access token from a token endpoint that never
// answers (within a --provider-timeout of 10 minutes) when SIGTERM comes.
// The shutdown waits --shutdown-timeout for it, abandons it, and run
// returns within that and a small margin: the token fetch, shared by the
// seller's requests, does not hold the process.
func TestShutdownWithATokenFetchThatNeverAnswers(t *testing.T) {
	ns, err := server.NewServer(&server.Options{ServerName: "shutdown-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
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
	o, err := parseFlags([]string{"--nats-url", ns.ClientURL(), "--config", config, "--data", t.TempDir(), "--http", "",
		"--workers", "2", "--provider-timeout", "10m", "--shutdown-timeout", shutdownTimeout.String()}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, zerolog.New(&logs)) }()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "consuming invoice requests"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not consuming within 30 s:\n%s", logs.String())
		}
	}

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Fatalf("the token endpoint was never asked:\n%s", logs.String())
	}

	cancel() // SIGTERM
	stopped := time.Now()
	const margin = 15 * time.Second
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v", err)
		}
		t.Logf("run returned %v after the signal", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(shutdownTimeout + margin):
		t.Fatalf("run still running %v after the signal, with --shutdown-timeout %v:\n%s", shutdownTimeout+margin, shutdownTimeout, logs.String())
	}
}
