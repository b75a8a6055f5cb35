package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// defaultTraceLength is how long bench's --trace records the consumer.
const defaultTraceLength = 3 * time.Second

// traceSummary is what a Go execution trace says about where a process's
// goroutines waited: how many ran at once, how long runnable goroutines
// waited for a P, and the time in which some waited while none ran, by the
// system call in progress then (a goroutine in a system call keeps its P
// until the runtime's sysmon takes it away, and with GOMAXPROCS 1 nothing
// else runs meanwhile).
type traceSummary struct {
	span      time.Duration            // from the first event to the last
	running   time.Duration            // goroutines running, summed over time (running × time)
	runnable  time.Duration            // time in which some goroutine was runnable
	stalled   time.Duration            // time in which some goroutine was runnable and none ran
	stalledBy map[string]time.Duration // stalled, by the call site of the system call in progress
	waits     []time.Duration          // each time a goroutine was runnable, from a transition the trace saw
}

// goTrack is one goroutine's state as the trace reader follows it.
type goTrack struct {
	state trace.GoState
	since trace.Time
	seen  bool // the state came from a transition, not the trace's announcement
}

// nobodyInSyscall names the stalled time with no system call in progress
// (the runtime stopping the world, or a P on its way to another thread).
const nobodyInSyscall = "no system call"

// readTrace reads a Go execution trace (runtime/trace, /debug/pprof/trace).
func readTrace(r io.Reader) (*traceSummary, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	a := newTraceAccount()
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read trace: %w", err)
		}
		a.advance(ev.Time())
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceGoroutine:
			from, to := st.Goroutine()
			a.transition(ev.Time(), st.Resource.Goroutine(), ev.Proc(), from, to, func() string { return callSite(ev.Stack()) })
		case trace.ResourceProc:
			// A P that goes idle from another P's or no P's context was
			// taken from a goroutine in a system call (sysmon's retake).
			if _, to := st.Proc(); to == trace.ProcIdle && st.Resource.Proc() != ev.Proc() {
				a.stolen(st.Resource.Proc())
			}
		}
	}
	return a.summary(), nil
}

// traceAccount follows the goroutines' states through a trace's events
// and sums the time in each.
type traceAccount struct {
	s  *traceSummary
	gs map[trace.GoID]*goTrack
	// insys holds the goroutines in a system call entered during the
	// trace that still hold their P. One that began before it (a signal
	// handler's wait, announced at every generation of the trace) is
	// never counted, and one whose P was taken from it no longer is.
	insys             map[trace.GoID]syscallTrack
	runnable, running int
	first, last       trace.Time
}

func newTraceAccount() *traceAccount {
	return &traceAccount{s: &traceSummary{stalledBy: map[string]time.Duration{}}, gs: map[trace.GoID]*goTrack{}, insys: map[trace.GoID]syscallTrack{}}
}

// syscallTrack is a system call in progress: its call site, and the P the
// goroutine held when it entered it.
type syscallTrack struct {
	site string
	proc trace.ProcID
}

// advance accounts for the time from the last event to now, an event's
// time (the reader's are in order).
func (a *traceAccount) advance(now trace.Time) {
	if a.first == 0 {
		a.first = now
	}
	if a.last != 0 && now > a.last {
		d := now.Sub(a.last)
		a.s.running += time.Duration(a.running) * d
		if a.runnable > 0 {
			a.s.runnable += d
			if a.running == 0 {
				a.s.stalled += d
				a.s.attribute(a.insys, d)
			}
		}
	}
	a.last = now
}

// transition follows goroutine id from state from to state to at now, on
// P proc; site gives the call site of the system call it enters.
func (a *traceAccount) transition(now trace.Time, id trace.GoID, proc trace.ProcID, from, to trace.GoState, site func() string) {
	g := a.gs[id]
	if g != nil && from == to {
		// The trace announces every goroutine's state again at each of
		// its generations (about every second): not a transition, and
		// a runnable wait or a system call goes on through it.
		return
	}
	if g == nil {
		// First sight: the state it had until now is from, as far as
		// the trace knows (GoUndetermined when it began before the
		// trace, which then announces it).
		g = &goTrack{state: from, since: now}
		a.gs[id] = g
		switch from {
		case trace.GoRunnable:
			a.runnable++
		case trace.GoRunning:
			a.running++
		}
	}
	switch g.state {
	case trace.GoRunnable:
		a.runnable--
		if g.seen {
			a.s.waits = append(a.s.waits, now.Sub(g.since))
		}
	case trace.GoRunning:
		a.running--
	}
	switch to {
	case trace.GoRunnable:
		a.runnable++
	case trace.GoRunning:
		a.running++
	}
	delete(a.insys, id)
	if from == trace.GoRunning && to == trace.GoSyscall {
		a.insys[id] = syscallTrack{site: site(), proc: proc}
	}
	g.seen = from != trace.GoUndetermined && from != to
	g.state, g.since = to, now
}

// stolen follows P proc taken from the goroutine in a system call that
// held it: from then on that call keeps no goroutine from running.
func (a *traceAccount) stolen(proc trace.ProcID) {
	for id, sc := range a.insys {
		if sc.proc == proc {
			delete(a.insys, id)
		}
	}
}

// summary is what the events so far say.
func (a *traceAccount) summary() *traceSummary {
	s := a.s
	if a.last > a.first {
		s.span = a.last.Sub(a.first)
	}
	slices.Sort(s.waits)
	return s
}

// attribute adds d of stalled time to the system calls in progress that
// hold their P, split evenly, or to nobodyInSyscall.
func (s *traceSummary) attribute(insys map[trace.GoID]syscallTrack, d time.Duration) {
	if len(insys) == 0 {
		s.stalledBy[nobodyInSyscall] += d
		return
	}
	for _, sc := range insys {
		s.stalledBy[sc.site] += d / time.Duration(len(insys))
	}
}

// callSite is the innermost frame of stk outside the packages that only
// pass a system call on (runtime, syscall, os, net and the standard
// library's internal ones): the code that made it, such as
// go.etcd.io/bbolt.fdatasync or nats.go's writer.
func callSite(stk trace.Stack) string {
	site := "?"
	for f := range stk.Frames() {
		if slices.ContainsFunc(passOn, func(p string) bool { return strings.HasPrefix(f.Func, p) }) {
			continue
		}
		site = f.Func
		break
	}
	return site
}

// passOn are the prefixes of the functions that callSite passes over.
var passOn = []string{"runtime.", "syscall.", "internal/", "os.", "net."}

// waitQuantile is the q-quantile of the runnable waits, 0 without any:
// the nearest rank, as bench's latency percentiles are.
func (s *traceSummary) waitQuantile(q float64) time.Duration {
	return percentile(s.waits, 100*q)
}

// String is the summary in one line: goroutines running on average, the
// share of the time some goroutine was runnable and its waits' p50 and p99,
// and the share in which some was runnable and none ran, with the system
// calls in progress then (the three largest shares).
func (s *traceSummary) String() string {
	if s.span <= 0 {
		return "an empty trace"
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(s.span) }
	line := fmt.Sprintf("goroutines running %.2f on average; some goroutine runnable %.0f%% of the time (waits p50 %.3f ms, p99 %s ms); runnable and none running %.0f%% of the time",
		float64(s.running)/float64(s.span), pct(s.runnable), float64(s.waitQuantile(0.5))/float64(time.Millisecond), ms(s.waitQuantile(0.99)), pct(s.stalled))
	type share struct {
		site string
		d    time.Duration
	}
	var shares []share
	for site, d := range s.stalledBy {
		shares = append(shares, share{site, d})
	}
	sort.Slice(shares, func(i, j int) bool {
		if shares[i].d != shares[j].d {
			return shares[i].d > shares[j].d
		}
		return shares[i].site < shares[j].site
	})
	var parts []string
	for _, sh := range shares[:min(3, len(shares))] {
		if pct(sh.d) < 0.5 {
			break
		}
		parts = append(parts, fmt.Sprintf("%.0f%% in %s", pct(sh.d), sh.site))
	}
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	return line
}

// maxTraceBytes bounds the trace fetchTrace reads: a 3 s trace of a
// consumer at 1,000 requests a second is about 2 MB, and one that is cut
// short fails to parse rather than filling bench's memory.
const maxTraceBytes = 256 << 20

// fetchTrace records the process at base (its net/http/pprof address, such
// as http://127.0.0.1:6060) for length and summarizes the trace.
func fetchTrace(ctx context.Context, base string, length time.Duration) (*traceSummary, error) {
	url := strings.TrimSuffix(base, "/") + fmt.Sprintf("/debug/pprof/trace?seconds=%g", length.Seconds())
	var s *traceSummary
	err := getOK(ctx, http.DefaultClient, url, "", func(resp *http.Response) error {
		var err error
		s, err = readTrace(io.LimitReader(resp.Body, maxTraceBytes))
		return err
	})
	return s, err
}
