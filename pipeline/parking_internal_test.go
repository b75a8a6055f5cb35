package pipeline

import (
	"context"
	"testing"
	"time"
)

// A delivery waiting for its order goes back to a worker when it is told
// that the order was let go, or when a check finds no one holding the
// order (the one told did not take it), not while someone holds it; a stop
// ends the wait without a try.
func TestParkingWaitsUntilTheOrderIsFree(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	lot := &parking{stopped: ctx, closing: make(chan struct{})}
	work := t.Context()

	freed := make(chan struct{})
	check := make(chan time.Time)
	held := make(chan bool)
	done := make(chan bool, 1)
	go func() {
		done <- lot.wait(work, freed, check, func() bool { return <-held })
	}()
	send := func(what string, f func()) {
		t.Helper()
		sent := make(chan struct{})
		go func() { f(); close(sent) }()
		select {
		case <-sent:
		case ok := <-done:
			t.Fatalf("the wait ended (%v) before %s", ok, what)
		case <-time.After(10 * time.Second):
			t.Fatalf("the wait did not take %s within 10s", what)
		}
	}
	send("a check", func() { check <- time.Now() })
	send("the check's answer", func() { held <- true }) // still held: it waits on
	send("a second check", func() { check <- time.Now() })
	select {
	case held <- false: // free, and no one told it
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not take the second check's answer within 10s")
	}
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the wait ended without a try on a free order")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end within 10s of a check that found the order free")
	}

	close(freed) // told
	if !lot.wait(work, freed, nil, nil) {
		t.Fatal("a delivery told that its order was let go does not try")
	}
	stop()
	if lot.wait(work, make(chan struct{}), nil, nil) {
		t.Fatal("a stop ended the wait with a try")
	}
}
