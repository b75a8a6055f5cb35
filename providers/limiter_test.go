package providers

import (
	"context"
	"math"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(t *testing.T, cfg LimiterConfig) (*Limiter, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	l := NewLimiter(cfg)
	l.now = clk.now
	return l, clk
}

func wantLimit(t *testing.T, l *Limiter, step string, want rate.Limit) {
	t.Helper()
	if got := l.Limit(); got != want {
		t.Fatalf("%s: limit %v, want %v", step, got, want)
	}
}

// TestLimiterConfiguredRate: a burst of refusals cuts the rate once, a later
// refusal cuts it again, the floor holds, and the rate climbs back in
// quarters of the configured rate.
func TestLimiterConfiguredRate(t *testing.T) {
	l, clk := newTestLimiter(t, LimiterConfig{Rate: 100})
	wantLimit(t, l, "start", 100)

	for range 20 { // twenty calls in flight refused at once
		l.Throttled(0)
	}
	wantLimit(t, l, "after one burst of refusals", 50)
	if l.Throttles() != 20 {
		t.Fatalf("throttles %d, want 20", l.Throttles())
	}
	clk.advance(1500 * time.Millisecond)
	l.Throttled(0)
	wantLimit(t, l, "after a second refusal", 25)
	for range 5 {
		clk.advance(2 * time.Second)
		l.Throttled(0)
	}
	wantLimit(t, l, "at the floor", 100.0/16)

	clk.advance(9 * time.Second)
	wantLimit(t, l, "before RecoverAfter", 100.0/16)
	for _, want := range []rate.Limit{100.0/16 + 25, 100.0/16 + 50, 100.0/16 + 75, 100, 100} {
		clk.advance(10 * time.Second)
		wantLimit(t, l, "climbing", want)
	}
}

// TestLimiterLearnsTheCeiling: without a configured rate the first refusal
// halves the rate observed over the last second; the limiter climbs back in
// quarters of that ceiling and is unlimited again past twice the ceiling.
func TestLimiterLearnsTheCeiling(t *testing.T) {
	l, clk := newTestLimiter(t, LimiterConfig{})
	wantLimit(t, l, "start", rate.Inf)
	ctx := context.Background()
	// 60 calls a second for two seconds (an unlimited limiter never blocks).
	for range 120 {
		if err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Second / 60)
	}
	l.Throttled(2 * time.Second)
	got := l.Limit()
	if got < 28 || got > 32 {
		t.Fatalf("limit after the first refusal %v, want about 30 (half the observed 60/s)", got)
	}
	clk.advance(1500 * time.Millisecond)
	l.Throttled(0) // within the 2 s pause: the same burst
	if l.Limit() != got {
		t.Fatalf("a refusal within the pause cut the rate again: %v", l.Limit())
	}
	ceiling := 2 * got
	prev := got
	for i := 0; i < 10 && l.Limit() != rate.Inf; i++ {
		clk.advance(10 * time.Second)
		next := l.Limit()
		if step := next - prev; next != rate.Inf && math.Abs(float64(step-ceiling/4)) > 1e-6 {
			t.Fatalf("climb %d: %v → %v, want steps of %v", i, prev, next, ceiling/4)
		}
		prev = next
	}
	wantLimit(t, l, "recovered", rate.Inf)
}

// TestLimiterPauses: after a refusal, Wait holds calls for the provider's
// hint, and lets them go once it has passed.
func TestLimiterPauses(t *testing.T) {
	l, clk := newTestLimiter(t, LimiterConfig{Rate: 1000})
	l.Throttled(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Fatal("Wait returned during the pause")
	}
	clk.advance(time.Hour + time.Millisecond)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
