package sandbox

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfd is a one-shot timerfd(2) read through the Go runtime's poller:
// the poller's epoll wakes when the fd fires, to the microsecond, and the
// waiting goroutine holds no OS thread meanwhile (a nanosleep(2) would hold
// one, and the runtime's P with it, until sysmon takes the P back).
type timerfd struct {
	fd int
	f  *os.File
}

// timerfds keeps idle timerfds for reuse: a wait then costs a settime and
// a read instead of creating, registering and closing an fd.
var timerfds = make(chan *timerfd, 64)

// sleepFine sleeps until t on a timerfd, falling back to a Go timer if one
// cannot be had.
func sleepFine(until time.Time) {
	d := time.Until(until)
	if d <= 0 {
		return
	}
	var t *timerfd
	select {
	case t = <-timerfds:
	default:
		fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
		if err != nil {
			time.Sleep(d)
			return
		}
		// A non-blocking fd makes a pollable File. Its Fd method would
		// make it blocking again, so the fd is kept apart for settime.
		t = &timerfd{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	var expirations [8]byte
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		t.f.Close()
		time.Sleep(d)
		return
	}
	if _, err := t.f.Read(expirations[:]); err != nil {
		t.f.Close()
		time.Sleep(time.Until(until))
		return
	}
	select {
	case timerfds <- t:
	default:
		t.f.Close()
	}
}
