package main

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillOfAnExitedProgramFails: a fault aimed at a program that had
// already exited by itself hits nothing, and its own exit was a crash the
// scenario must report, not a SIGKILL to count; a running one is killed.
func TestKillOfAnExitedProgramFails(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	p := newProc("quitter", sh, "-c", "exit 3")
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.running() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.kill(syscall.SIGKILL, time.Second); err == nil || !strings.Contains(err.Error(), "exited by itself") {
		t.Errorf("kill of an exited program: %v, want an error saying it had exited", err)
	}

	q := newProc("sleeper", sh, "-c", "exec sleep 30")
	if err := q.start(); err != nil {
		t.Fatal(err)
	}
	if err := q.kill(syscall.SIGKILL, 5*time.Second); err != nil {
		t.Errorf("kill of a running program: %v", err)
	}
}
