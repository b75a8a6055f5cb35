package sandbox

import (
	"context"
	"time"
)

// fineSpan is how much of a wait SleepUntil spends in the operating system's
// sleep rather than on a Go timer. Only that much holds an OS thread.
const fineSpan = 2 * time.Millisecond

// SleepUntil waits until t, or until ctx is done, and reports whether t was
// reached. A t in the past returns at once.
//
// It is more exact than a Go timer. On Linux the Go runtime's poller waits in
// whole milliseconds, so a timer that is the process's next event fires up
// to 1 ms late: waits of under a millisecond, one after another, ended
// 0.55 ms late at the median and 1.1–1.5 ms late at p99 on the project's
// machine, against 0.08–0.10 and 0.12–0.6 ms with nanosleep(2). That error
// would count in every latency the sandbox's --latency adds and every
// open-loop schedule bench keeps. So SleepUntil waits on a Go timer until
// the last 2 ms and sleeps the rest in the operating system, where the
// context is not watched.
func SleepUntil(ctx context.Context, t time.Time) bool {
	if coarse := time.Until(t) - fineSpan; coarse > 0 {
		timer := time.NewTimer(coarse)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	} else if ctx.Err() != nil {
		return false
	}
	sleepFine(time.Until(t))
	return true
}
