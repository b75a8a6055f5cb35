//go:build !linux

package sandbox

import "time"

// sleepFine sleeps for d on a Go timer where nanosleep(2) is not used.
func sleepFine(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}
