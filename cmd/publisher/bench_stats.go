package main

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// benchRecorder is the per-request bookkeeping of one bench phase: about
// 17 bytes a request. sent is written by the publishing goroutines and read
// by the results reader (the network is the only order between them, which
// the race detector cannot see: hence atomics); the rest belongs to the
// reader until it has stopped.
type benchRecorder struct {
	t0 time.Time // a wall-clock reading, without the monotonic one
	// sent is the start of request i's latency in nanoseconds since t0,
	// plus one; 0 when it was not published, sentFailed when publishing
	// it failed.
	sent []atomic.Int64
	// done is when request i's first final result was stored in its
	// stream (the server's timestamp), in nanoseconds since t0.
	done []int64
	// status is request i's first final status, as an index into
	// statuses plus one; 0 while it has none.
	status   []uint8
	statuses []schemas.Status

	got      int // requests with a final result
	extra    int // final results beyond the first for a request
	nonFinal int // action_required results of our requests
	foreign  int // results of other orders (other runs, other tools)
	wrong    int // results of our order numbers with another seller
	skewed   int // results stored before their request was published
	failed   atomic.Int64
	// settled[i] is set once request i has a final result or its publish
	// failed, whichever came first; resolved counts them.
	settled   []atomic.Bool
	resolved  atomic.Int64
	firstDone int64 // earliest done, ns since t0
	lastDone  int64 // latest done
}

// sentFailed marks a request whose publish failed.
const sentFailed = -1

func newBenchRecorder(n int, t0 time.Time) *benchRecorder {
	return &benchRecorder{t0: t0.Round(0), sent: make([]atomic.Int64, n), done: make([]int64, n), status: make([]uint8, n), settled: make([]atomic.Bool, n)}
}

// markSent records the start of request i's latency. Only at's wall-clock
// reading counts: the results are timed by the server's wall clock, so the
// recorder keeps every time on that clock (see scheduledAt).
func (r *benchRecorder) markSent(i int, at time.Time) {
	r.sent[i].Store(int64(at.Round(0).Sub(r.t0)) + 1)
}

// markFailed records that publishing request i failed: no result is
// expected for it.
func (r *benchRecorder) markFailed(i int) {
	if !r.settled[i].CompareAndSwap(false, true) {
		return // its result is in: it was stored after all
	}
	r.resolved.Add(1)
	r.sent[i].Store(sentFailed)
	r.failed.Add(1)
}

// expected is how many results the phase waits for: every request whose
// publish did not fail.
func (r *benchRecorder) expected() int { return len(r.sent) - int(r.failed.Load()) }

// waiting reports whether some published request has neither a result nor
// a failed publish.
func (r *benchRecorder) waiting() bool { return r.resolved.Load() < int64(len(r.sent)) }

// result records a final result of request i stored at stored; it reports
// whether it was the request's first.
func (r *benchRecorder) result(i int, st schemas.Status, stored time.Time) bool {
	if r.status[i] != 0 {
		r.extra++
		return false
	}
	k := slices.Index(r.statuses, st)
	if k < 0 {
		if len(r.statuses) == math.MaxUint8 {
			k = len(r.statuses) - 1 // cannot happen: a handful of statuses exist
		} else {
			r.statuses = append(r.statuses, st)
			k = len(r.statuses) - 1
		}
	}
	r.status[i] = uint8(k + 1)
	if r.settled[i].CompareAndSwap(false, true) {
		r.resolved.Add(1)
	}
	d := int64(stored.Sub(r.t0))
	if s := r.sent[i].Load(); s > 0 && d < s-1 {
		r.skewed++
		d = s - 1 // a clock disagreement: count it and clamp to zero latency
	}
	r.done[i] = d
	if r.got == 0 || d < r.firstDone {
		r.firstDone = d
	}
	r.lastDone = max(r.lastDone, d)
	r.got++
	return true
}

// benchSummary is what a phase measured.
type benchSummary struct {
	n, published, failed, unsent, got, missing int
	counts                                     map[schemas.Status]int
	latency                                    latencyStats
	// firstSent and lastDone bound the phase: from the first request's
	// latency start to the last result.
	firstSent, lastDone time.Duration
	firstDone           time.Duration
}

// summary computes the phase's figures; call it once the reader and the
// publishers have stopped.
func (r *benchRecorder) summary() benchSummary {
	s := benchSummary{n: len(r.sent), got: r.got, counts: map[schemas.Status]int{}}
	lat := make([]time.Duration, 0, r.got)
	first := int64(-1)
	for i := range r.sent {
		sent := r.sent[i].Load()
		switch {
		case sent == 0:
			s.unsent++
			continue
		case sent == sentFailed:
			s.failed++
			continue
		}
		s.published++
		if first < 0 || sent-1 < first {
			first = sent - 1
		}
		if r.status[i] == 0 {
			s.missing++
			continue
		}
		s.counts[r.statuses[r.status[i]-1]]++
		lat = append(lat, time.Duration(r.done[i]-(sent-1)))
	}
	s.latency = latencyOf(lat)
	if first >= 0 {
		s.firstSent = time.Duration(first)
	}
	s.firstDone, s.lastDone = time.Duration(r.firstDone), time.Duration(r.lastDone)
	return s
}

// throughput is results per second from the first publish to the last
// result (drain: from the first result to the last); 0 when it cannot be
// told.
func (s benchSummary) throughput(drain bool) float64 {
	if drain {
		if s.got < 2 || s.lastDone <= s.firstDone {
			return 0
		}
		return float64(s.got-1) / (s.lastDone - s.firstDone).Seconds()
	}
	if s.got == 0 || s.lastDone <= s.firstSent {
		return 0
	}
	return float64(s.got) / (s.lastDone - s.firstSent).Seconds()
}

// latencyStats are the percentiles of a set of latencies.
type latencyStats struct {
	n                  int
	p50, p90, p99, max time.Duration
}

// latencyOf sorts lat in place and returns its percentiles.
func latencyOf(lat []time.Duration) latencyStats {
	slices.Sort(lat)
	if len(lat) == 0 {
		return latencyStats{}
	}
	return latencyStats{n: len(lat), p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99), max: lat[len(lat)-1]}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value that at least p percent of the
// values do not exceed. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// p·n first: for a whole p it is exact, and so is the division by
	// 100 whenever the rank is whole (p/100·n is not: 0.99·100 > 99).
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
