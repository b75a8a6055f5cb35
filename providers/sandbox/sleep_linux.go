package sandbox

import (
	"time"

	"golang.org/x/sys/unix"
)

// sleepFine sleeps for d in nanosleep(2), whose wake-up is not rounded to
// the millisecond, resuming after signals (the Go runtime preempts with
// SIGURG).
func sleepFine(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}
