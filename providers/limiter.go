package providers

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a per-seller request rate limit that backs off when the
// provider says "too frequent" (Nuonuo 070201, jumdata 609) and recovers
// gradually: each Throttled halves the rate (down to Min) and pauses calls
// for the provider's hint; every RecoverAfter without a throttle restores the
// rate by a quarter of Max, up to Max.
//
// It is safe for concurrent use.
type Limiter struct {
	max, min     rate.Limit
	recoverAfter time.Duration

	mu          sync.Mutex
	lim         *rate.Limiter
	pausedUntil time.Time
	lastChange  time.Time
	throttles   int
	now         func() time.Time
}

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Rate is the normal rate in requests per second; 0 means unlimited.
	Rate float64
	// Burst is the bucket size; 0 means max(1, Rate).
	Burst int
	// Min is the floor the rate backs off to; 0 means Rate/16.
	Min float64
	// RecoverAfter is how long without a throttle before the rate climbs a
	// step; 0 means 10 seconds.
	RecoverAfter time.Duration
}

// NewLimiter returns a Limiter for cfg.
func NewLimiter(cfg LimiterConfig) *Limiter {
	max := rate.Limit(cfg.Rate)
	if cfg.Rate <= 0 {
		max = rate.Inf
	}
	burst := cfg.Burst
	if burst <= 0 {
		burst = max1(int(cfg.Rate))
	}
	min := rate.Limit(cfg.Min)
	if min <= 0 {
		if max == rate.Inf {
			min = 1
		} else {
			min = max / 16
		}
	}
	ra := cfg.RecoverAfter
	if ra <= 0 {
		ra = 10 * time.Second
	}
	return &Limiter{max: max, min: min, recoverAfter: ra, lim: rate.NewLimiter(max, burst), now: time.Now}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Wait blocks until a call may go out or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	l.recover()
	pause := l.pausedUntil.Sub(l.now())
	lim := l.lim
	l.mu.Unlock()
	if pause > 0 {
		t := time.NewTimer(pause)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return lim.Wait(ctx)
}

// Throttled records a "too frequent" answer: the rate halves and calls pause
// for retryAfter (1 second when 0).
func (l *Limiter) Throttled(retryAfter time.Duration) {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.throttles++
	if until := now.Add(retryAfter); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	cur := l.lim.Limit()
	if cur == rate.Inf {
		cur = l.min * 16
	}
	next := cur / 2
	if next < l.min {
		next = l.min
	}
	l.lim.SetLimitAt(now, next)
	l.lastChange = now
}

// recover raises the rate one step per RecoverAfter since the last change.
// Callers hold mu.
func (l *Limiter) recover() {
	cur := l.lim.Limit()
	if cur >= l.max || l.lastChange.IsZero() {
		return
	}
	now := l.now()
	if now.Sub(l.lastChange) < l.recoverAfter {
		return
	}
	step := l.max / 4
	if l.max == rate.Inf {
		l.lim.SetLimitAt(now, rate.Inf)
	} else if next := cur + step; next >= l.max {
		l.lim.SetLimitAt(now, l.max)
	} else {
		l.lim.SetLimitAt(now, next)
	}
	l.lastChange = now
}

// Limit returns the rate currently in force, in requests per second
// (rate.Inf when unlimited).
func (l *Limiter) Limit() rate.Limit {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recover()
	return l.lim.Limit()
}

// Throttles returns how many times Throttled was called.
func (l *Limiter) Throttles() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.throttles
}
