package sandbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
)

func TestSleepUntil(t *testing.T) {
	ctx := t.Context()
	for _, d := range []time.Duration{-time.Millisecond, 0, 300 * time.Microsecond, 3 * time.Millisecond, 25 * time.Millisecond} {
		until := time.Now().Add(d)
		if !sandbox.SleepUntil(ctx, until) {
			t.Fatalf("SleepUntil(%s) reported the context done", d)
		}
		if now := time.Now(); now.Before(until) {
			t.Errorf("SleepUntil(%s) returned %s before its time", d, until.Sub(now))
		}
	}
}

func TestSleepUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if sandbox.SleepUntil(ctx, time.Now().Add(time.Millisecond)) {
		t.Error("a done context reached a short wait's end")
	}
	ctx, cancel = context.WithCancel(t.Context())
	go func() {
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	done := make(chan bool)
	go func() { done <- sandbox.SleepUntil(ctx, time.Now().Add(time.Hour)) }()
	select {
	case reached := <-done:
		if reached {
			t.Error("an hour's wait reported its end after the context was cancelled")
		}
	case <-time.After(time.Minute):
		t.Fatal("an hour's wait did not end when its context was cancelled")
	}
}

// TestSleepUntilConcurrent: more waits at once than the pool of timerfds
// keeps, each ending at its own time, none before it.
func TestSleepUntilConcurrent(t *testing.T) {
	ctx := t.Context()
	const n = 200
	early := make(chan time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			until := time.Now().Add(time.Duration(i%7) * 300 * time.Microsecond)
			if !sandbox.SleepUntil(ctx, until) {
				t.Error("SleepUntil reported the context done")
			}
			if now := time.Now(); now.Before(until) {
				early <- until.Sub(now)
			}
		})
	}
	wg.Wait()
	close(early)
	for d := range early {
		t.Errorf("a wait ended %s early", d)
	}
}
