//go:build linux

package store_test

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// nobody is the user a child runs as when the tests run as root, who may
// write into any directory.
const nobody = 65534

// TestProbeInReadOnlyDirectory: a data directory that does not let the
// consumer create files (its mode) holding a store file it has open for
// writing. Commits succeed there; so must the probe that decides when the
// store may take work again, or one failed commit (a full disk, since
// freed) would pause the consumer for good. The probe cannot write its
// scratch file: it must still tell a disk or a file size limit without
// room for the store's next growth, and say so.
func TestProbeInReadOnlyDirectory(t *testing.T) {
	if os.Getenv(childEnv) == "readonly" {
		childReadOnlyDirectory(t)
		return
	}
	dir := t.TempDir()
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) }) // before TempDir removes it
	if os.Geteuid() == 0 {
		// The child drops to nobody, who must reach the directory and
		// own it (to make it read-only).
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd, out := startChild(t, "TestProbeInReadOnlyDirectory", "readonly")
	cmd.Env = append(cmd.Env, childPathEnv+"="+filepath.Join(dir, "orders.db"))
	runChild(t, cmd, out, "READONLY-OK", "the end")
}

func childReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		if err := syscall.Setgid(nobody); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setuid(nobody); err != nil {
			t.Fatal(err)
		}
	}
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of dying
	path := os.Getenv(childPathEnv)
	dir := filepath.Dir(path)
	cfg := store.Config{Path: path}
	db := MustOpen(t, cfg)
	ctx := t.Context()
	n := 0
	put := func() error {
		n++
		rec := newRecord(fmt.Sprintf("RO-%05d", n), schemas.StateSubmitting, fp("a"))
		rec.LastError = &schemas.ErrorInfo{Code: "provider_failed", Message: strings.Repeat("x", 2000)}
		_, err := db.Put(ctx, rec)
		return err
	}
	if err := put(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Chmod(dir, 0o755) }()
	if f, err := os.Create(filepath.Join(dir, "other")); err == nil {
		f.Close()
		t.Fatal("a file was created in the read-only directory: the test cannot tell anything")
	}
	if err := put(); err != nil {
		t.Fatalf("Put in a read-only directory: %v", err)
	}
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("Probe in a read-only directory, where commits succeed: %v", err)
	}
	if err := db.Healthy(); err != nil {
		t.Fatalf("Healthy after the probe: %v", err)
	}

	// The store file cannot grow: commits fail, and so must the probe.
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	low := fi.Size()
	restoreLimit := limitFileSize(t, low)
	var putErr error
	for i := 0; putErr == nil && i < 10_000; i++ {
		putErr = put()
	}
	if !errors.Is(putErr, store.ErrWriteFailed) {
		t.Fatalf("Put under the file size limit = %v, want ErrWriteFailed", putErr)
	}
	probeErr := db.Probe(ctx)
	if !errors.Is(probeErr, store.ErrWriteFailed) || !strings.Contains(probeErr.Error(), "file size limit") {
		t.Fatalf("Probe while the store file cannot grow = %v, want a failure naming the file size limit", probeErr)
	}
	restoreLimit()
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("Probe once the limit was raised: %v", err)
	}
	if err := put(); err != nil {
		t.Fatalf("Put once the limit was raised: %v", err)
	}

	// A disk without room for the store's next growth fails it too.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	big := cfg
	big.ProbeHeadroom = 1 << 50 // a PiB: more than this disk has
	db = MustOpen(t, big)
	diskErr := db.Probe(ctx)
	if !errors.Is(diskErr, store.ErrWriteFailed) || !strings.Contains(diskErr.Error(), "bytes free on its disk") {
		t.Fatalf("Probe on a disk without room for the headroom = %v, want a failure saying how much is free", diskErr)
	}
	fmt.Printf("READONLY-OK commits and the probe succeed in a read-only directory; under the file size limit: %v; on a disk without room: %v\n", probeErr, diskErr)
}
