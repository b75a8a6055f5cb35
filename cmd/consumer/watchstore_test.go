package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// fakeStore fails its commits until its probes run out of errors.
type fakeStore struct {
	mu     sync.Mutex
	commit error   // Healthy's answer until a probe succeeds
	probes []error // each Probe's answer in turn; nil once they run out
}

func (f *fakeStore) Healthy() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.commit
}

func (f *fakeStore) Probe(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.probes) == 0 {
		f.commit = nil
		return nil
	}
	err := f.probes[0]
	f.probes = f.probes[1:]
	return err
}

// TestWatchStoreLogsEachNewReason checks that the log says why the order
// store is paused each time the reason changes, once per reason, and when
// it resumes: /readyz gives the reasons only to a caller on the host.
func TestWatchStoreLogsEachNewReason(t *testing.T) {
	full := errors.New("probe: write orders.db.probe: no space left on device")
	readOnly := errors.New("probe: open orders.db.probe: read-only file system")
	db := &fakeStore{commit: errors.New("commit of 3 writes: no space left on device"),
		probes: []error{full, full, full, readOnly, readOnly}}
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { watchStore(ctx, db, time.Millisecond, zerolog.New(&out)); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "resuming") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"commit of 3 writes: no space left on device", full.Error(), readOnly.Error(), "resuming"}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d (the failure, each new reason once, the resumption):\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("log line %d = %s, want it to say %q", i+1, lines[i], w)
		}
	}
}
