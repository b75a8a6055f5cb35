package providers

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a per-seller request rate limit that backs off when the
// provider says "too frequent" (Nuonuo 070201, jumdata 609) and recovers
// gradually, in the manner of TCP congestion control (additive increase,
// multiplicative decrease):
//
//   - A throttle pauses calls for the provider's hint and halves the rate
//     (down to Min). The pause holds every call, those already waiting for
//     their turn at the rate included. The refusals of calls that were
//     already in flight when the first one arrived (within the pause, at
//     least a second) are one event, not many: they do not cut the rate
//     again. Since no call goes out during the pause, a refusal after it
//     is a new event, however long the pause was, and cuts the rate again.
//   - Without a configured rate the limiter starts unlimited; the first
//     throttle takes the rate actually observed over the last second as the
//     provider's ceiling and halves that.
//   - Every RecoverAfter without a throttle the rate climbs a quarter of the
//     configured rate (or of the learned ceiling), up to the configured
//     rate; an unlimited one becomes unlimited again once it has climbed to
//     twice the ceiling without a refusal. A pause does not count towards
//     RecoverAfter: no call tests the rate while it lasts, so after a long
//     one (a Retry-After of minutes) calls resume at the rate that was cut,
//     and the first step up comes RecoverAfter after the pause ends.
//
// It is safe for concurrent use.
type Limiter struct {
	max, min     rate.Limit
	burst        int
	recoverAfter time.Duration

	mu          sync.Mutex
	lim         *rate.Limiter
	pausedUntil time.Time
	lastCut     time.Time     // the last throttle that cut the rate
	cutHold     time.Duration // throttles within this of lastCut do not cut again
	lastChange  time.Time     // the last change of the rate, cut or climb
	ceiling     rate.Limit    // the rate at which the provider last refused
	throttles   int
	// calls started in the current and the previous one-second window, for
	// the observed rate.
	winStart time.Time
	winCalls int
	prevRate float64
	now      func() time.Time
}

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Rate is the normal rate in requests per second; 0 means unlimited
	// until the provider first says "too frequent".
	Rate float64
	// Burst is the bucket size; 0 means max(1, Rate).
	Burst int
	// Min is the floor the rate backs off to; 0 means Rate/16, or 1 per
	// second without a Rate.
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
	return &Limiter{max: max, min: min, burst: burst, recoverAfter: ra, lim: rate.NewLimiter(max, burst), now: time.Now}
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Wait blocks until a call may go out or ctx ends.
//
// A call waits out any pause, then for its turn at the rate. A turn is
// booked when the call starts waiting for it (rate.Limiter's reservation),
// so a pause that began meanwhile would not hold it back: the call then
// waits out that pause too and takes a turn at the rate in force after it.
// Each round needs a new throttle, so the loop ends with the pauses, or
// with ctx.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		l.recover()
		pause := l.pausedUntil.Sub(l.now())
		lim := l.lim
		l.mu.Unlock()
		if err := Sleep(ctx, pause); err != nil {
			return err
		}
		if err := lim.Wait(ctx); err != nil {
			return err
		}
		l.mu.Lock()
		now := l.now()
		paused := now.Before(l.pausedUntil)
		if !paused {
			l.count(now)
		}
		l.mu.Unlock()
		if !paused {
			return nil
		}
	}
}

// Sleep waits for d, or until ctx ends, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// count records one call for the observed rate. Callers hold mu.
func (l *Limiter) count(now time.Time) {
	if elapsed := now.Sub(l.winStart); elapsed >= time.Second {
		if elapsed < 2*time.Second {
			l.prevRate = float64(l.winCalls) / elapsed.Seconds()
		} else {
			l.prevRate = 0 // a quiet spell: the old window says nothing now
		}
		l.winStart, l.winCalls = now, 0
	}
	l.winCalls++
}

// observed is the call rate of the last second or so. Callers hold mu.
func (l *Limiter) observed(now time.Time) rate.Limit {
	r := l.prevRate
	if elapsed := now.Sub(l.winStart); elapsed > 0 && elapsed < 2*time.Second {
		r = math.Max(r, float64(l.winCalls)/math.Max(elapsed.Seconds(), 1))
	}
	return rate.Limit(r)
}

// Throttled records a "too frequent" answer: calls pause for retryAfter (1
// second when 0) and, unless this answer belongs to the burst that was
// already refused, the rate halves.
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
	if !l.lastCut.IsZero() && now.Sub(l.lastCut) < l.cutHold {
		return // an answer to a call made before the last cut took effect
	}
	cur := l.lim.Limit()
	if cur == rate.Inf {
		cur = l.observed(now)
	}
	cur = max(cur, 2*l.min)
	l.ceiling = cur
	l.lim.SetLimitAt(now, max(cur/2, l.min))
	l.lim.SetBurstAt(now, l.burst)
	l.lastCut, l.lastChange = now, now
	l.cutHold = max(retryAfter, time.Second)
}

// recover raises the rate one step per RecoverAfter since the last change
// or the end of the pause, whichever is later: the climb is a probe of the
// provider, and while the seller is paused no call probes anything.
// Callers hold mu.
func (l *Limiter) recover() {
	cur := l.lim.Limit()
	if cur >= l.max || l.lastChange.IsZero() {
		return
	}
	now := l.now()
	if now.Sub(later(l.lastChange, l.pausedUntil)) < l.recoverAfter {
		return
	}
	var next rate.Limit
	if l.max == rate.Inf {
		next = cur + max(l.ceiling/4, l.min)
		if next >= 2*l.ceiling {
			next = rate.Inf
		}
	} else {
		next = min(cur+l.max/4, l.max)
	}
	l.lim.SetLimitAt(now, next)
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

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
