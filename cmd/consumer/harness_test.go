package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
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

// runningConsumer is the consumer's run in a test's goroutine.
type runningConsumer struct {
	t    *testing.T
	o    *options
	logs *syncBuffer
	// done receives run's error once it returns.
	done chan error
	// stop ends run's context, as SIGTERM does.
	stop context.CancelFunc
}

// startRun runs the consumer with args (parseFlags, without the
// environment) until the test ends or stop is called, and waits until it
// consumes.
func startRun(t *testing.T, args []string) *runningConsumer {
	t.Helper()
	return startRunUntil(t, args, "consuming invoice requests", 30*time.Second)
}

// startRunUntil is startRun waiting, at most within, until the consumer
// has logged what instead.
func startRunUntil(t *testing.T, args []string, what string, within time.Duration) *runningConsumer {
	t.Helper()
	o, err := parseFlags(args, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	r := &runningConsumer{t: t, o: o, logs: &syncBuffer{}, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- run(ctx, o, zerolog.New(r.logs)) }()
	r.waitLog(what, within)
	return r
}

// waitLog waits until the consumer has logged what, at most within, and
// fails the test if run returns first.
func (r *runningConsumer) waitLog(what string, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.logs.String(), what) {
		select {
		case err := <-r.done:
			r.t.Fatalf("run returned %v before logging %q:\n%s", err, what, r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %q logged within %s:\n%s", what, within, r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
