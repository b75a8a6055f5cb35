package pipeline

import (
	"sync"
	"time"
)

// holds tracks sellers whose provider needs a person to act (credentials,
// login, face authentication). While a seller is held, its orders wait
// without calling the provider, except one probe per interval; other
// sellers carry on. An episode starts when a seller is first held and ends
// when a probe gets any other answer.
type holds struct {
	mu      sync.Mutex
	sellers map[string]*hold
	last    int64 // the latest episode given out
}

type hold struct {
	// episode names the episode in its action_required result's message
	// id: the wall-clock nanoseconds of its start, stable across probes and
	// greater than every episode this process gave out before, so that an
	// episode that starts as soon as the last one ended (in the same second,
	// or on a clock that has not moved) is not dropped by the result stream
	// as a duplicate of it.
	episode   int64
	nextProbe time.Time
	reason    string
}

// holdStatus is what check says about a seller.
type holdStatus struct {
	held      bool
	probe     bool      // this caller is the probe and may call the provider
	nextProbe time.Time // when the next probe may go
	reason    string
}

// check tells whether seller is held and, when the next probe is due, makes
// this caller the probe.
func (h *holds) check(seller string, now time.Time, interval time.Duration) holdStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sellers[seller]
	if s == nil {
		return holdStatus{}
	}
	if !now.Before(s.nextProbe) {
		s.nextProbe = now.Add(interval)
		return holdStatus{held: true, probe: true, nextProbe: s.nextProbe, reason: s.reason}
	}
	return holdStatus{held: true, nextProbe: s.nextProbe, reason: s.reason}
}

// enter holds seller (or keeps holding it) and reports the episode and
// whether it has just started.
func (h *holds) enter(seller, reason string, now time.Time, interval time.Duration) (episode int64, started bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sellers == nil {
		h.sellers = map[string]*hold{}
	}
	s := h.sellers[seller]
	if s == nil {
		h.last = max(h.last+1, now.UnixNano())
		s = &hold{episode: h.last}
		h.sellers[seller] = s
		started = true
	}
	s.reason = reason
	s.nextProbe = now.Add(interval)
	return s.episode, started
}

// release ends seller's episode, if any.
func (h *holds) release(seller string) {
	h.mu.Lock()
	delete(h.sellers, seller)
	h.mu.Unlock()
}

// list returns the held sellers and their reasons.
func (h *holds) list() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]string, len(h.sellers))
	for s, v := range h.sellers {
		out[s] = v.reason
	}
	return out
}
