package providers

import (
	"context"
	"fmt"
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
// quarters of that ceiling, every RecoverAfter from the end of the pause,
// and is unlimited again past twice the ceiling.
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
	// That refusal extended the pause by its own second; the climb counts
	// from the pause's end.
	clk.advance(time.Second)
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

// TestLimiterDoesNotRecoverDuringThePause: a pause is not time without a
// refusal. No call goes out while the seller is paused, so it proves
// nothing about the rate: after a provider's long Retry-After (up to
// MaxRetryAfter) calls resume at the halved rate, and the rate climbs a
// step only RecoverAfter after the pause has ended. Before, every caller
// that arrived during a five-minute pause raised the rate a step (every
// 10 s), and calls resumed at the very rate the provider had refused.
func TestLimiterDoesNotRecoverDuringThePause(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  LimiterConfig
	}{
		{name: "configured rate", cfg: LimiterConfig{Rate: 100}},
		{name: "learned ceiling", cfg: LimiterConfig{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, clk := newTestLimiter(t, tt.cfg)
			for range 120 { // 60 calls a second for two seconds
				if err := l.Wait(context.Background()); err != nil {
					t.Fatal(err)
				}
				clk.advance(time.Second / 60)
			}
			l.Throttled(MaxRetryAfter)
			cut := l.Limit()
			if cut == rate.Inf || cut >= 60 {
				t.Fatalf("limit after the refusal %v: not cut", cut)
			}
			// Callers keep arriving during the pause (they ask for the
			// limit, as Wait does on entry, and are held).
			for waited := time.Duration(0); waited < MaxRetryAfter; waited += 10 * time.Second {
				clk.advance(10 * time.Second)
				wantLimit(t, l, fmt.Sprintf("%v into the pause", waited+10*time.Second), cut)
			}
			clk.advance(time.Millisecond)
			wantLimit(t, l, "as the pause ends", cut)
			clk.advance(l.recoverAfter - 2*time.Millisecond)
			wantLimit(t, l, "just short of RecoverAfter after the pause", cut)
			clk.advance(time.Millisecond)
			if got := l.Limit(); got <= cut {
				t.Fatalf("RecoverAfter after the pause: limit %v, want a step above %v", got, cut)
			}
		})
	}
}

// TestLimiterPauseHoldsCallsAlreadyWaitingForTheirTurn: a call that was
// waiting for its turn at the rate when the provider asked for a pause
// does not go out during the pause. Before, its turn was booked already
// (rate.Limiter's reservation) and it went out at that time, seconds into
// a pause of a minute. The limiter runs on the real clock here: the rate's
// turns do.
func TestLimiterPauseHoldsCallsAlreadyWaitingForTheirTurn(t *testing.T) {
	l := NewLimiter(LimiterConfig{Rate: 0.5, Burst: 1}) // a turn every 2 s
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Wait(ctx) }()
	// The second call has booked its turn, 2 s from now, once the bucket
	// owes a token; look for that (a bounded number of times).
	booked := false
	for i := 0; i < 200 && !booked; i++ {
		l.mu.Lock()
		booked = l.lim.Tokens() < -0.4
		l.mu.Unlock()
		if !booked {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if !booked {
		t.Fatal("the second call did not book its turn within a second")
	}
	l.Throttled(time.Minute)
	if err := <-done; err == nil {
		t.Fatal("a call waiting for its turn went out during a minute's pause")
	}
}

// TestLimiterCutsAgainAfterALongPause: the refusals of calls in flight when
// a long pause began do not cut the rate again, however late in the pause
// they arrive; the first refusal after the pause is a new event and does,
// however long the pause was (no call went out during it).
func TestLimiterCutsAgainAfterALongPause(t *testing.T) {
	l, clk := newTestLimiter(t, LimiterConfig{Rate: 100})
	l.Throttled(MaxRetryAfter)
	wantLimit(t, l, "the first refusal", 50)
	clk.advance(30 * time.Second)
	l.Throttled(0) // a slow call's answer
	wantLimit(t, l, "a refusal in flight before the pause", 50)
	clk.advance(MaxRetryAfter - 30*time.Second + 500*time.Millisecond)
	l.Throttled(MaxRetryAfter)
	wantLimit(t, l, "the first refusal after the pause", 25)
}
