//go:build !linux

package sandbox

import "time"

// sleepFine sleeps until t on a Go timer: the timerfd(2) wait is Linux's.
func sleepFine(until time.Time) {
	time.Sleep(time.Until(until))
}
