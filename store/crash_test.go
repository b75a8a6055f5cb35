//go:build linux

package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// The tests in this file re-execute the test binary: the child runs one
// test function in a mode selected by childEnv, with real fsync.
const (
	childEnv     = "STORE_TEST_CHILD"
	childPathEnv = "STORE_TEST_PATH"
)

// startChild starts the test binary running only test in child mode mode.
func startChild(t *testing.T, test, mode string, extra ...*os.File) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out := new(strings.Builder)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = extra
	return cmd, out
}

// limitFileSize lowers this process's limit on one file's size
// (RLIMIT_FSIZE) to size bytes, as a full disk would stop the store file's
// growth; the returned function puts the limit back.
func limitFileSize(t *testing.T, size int64) (restore func()) {
	t.Helper()
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	low := limit
	low.Cur = uint64(size)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &low); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatal(err)
		}
	}
}

// runChild runs cmd, a child started by startChild whose output is out,
// and fails the test unless the child succeeds and prints marker, which it
// prints once it has reached what it tests (what, for the failure); the
// lines with the marker, which carry the child's figures, are logged.
func runChild(t *testing.T, cmd *exec.Cmd, out *strings.Builder, marker, what string) {
	t.Helper()
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), marker) {
		t.Fatalf("child did not reach %s:\n%s", what, out)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, marker) {
			t.Log(strings.TrimSpace(line))
		}
	}
}

// TestKillAfterPut is the durability proof: a child process writes with 16
// goroutines and reports each Put the moment it returns; the parent kills it
// with SIGKILL in the middle of the writes, reopens the file, and must find
// every reported write. While the child runs, the parent also checks that
// the file lock keeps a second instance out.
func TestKillAfterPut(t *testing.T) {
	if os.Getenv(childEnv) == "kill" {
		childWriteUntilKilled(t)
		return
	}
	path := filepath.Join(t.TempDir(), "orders.db")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd, out := startChild(t, "TestKillAfterPut", "kill", w)
	cmd.Env = append(cmd.Env, childPathEnv+"="+path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer r.Close()

	const killAfter = 1500
	acked := make(map[string]uint64) // order number → highest version returned
	lines := bufio.NewScanner(r)
	killed := false
	for lines.Scan() {
		orderNo, v, ok := strings.Cut(lines.Text(), " ")
		version, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			t.Fatalf("bad line %q from child", lines.Text())
		}
		acked[orderNo] = max(acked[orderNo], version)
		if len(acked) == killAfter/3 && !killed {
			// The child holds the lock: a second instance must be refused.
			_, err := store.Open(store.Config{Path: path, LockTimeout: 50 * time.Millisecond})
			if !errors.Is(err, store.ErrLocked) {
				t.Errorf("Open while the child runs = %v, want ErrLocked", err)
			}
		}
		if len(acked) == killAfter && !killed {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Every line written before the kill has been read: they are all Puts
	// that returned.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before being killed: %v\n%s", err, out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}

	db := MustOpen(t, store.Config{Path: path})
	ahead := 0
	for orderNo, version := range acked {
		got := MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: orderNo})
		if got.Version < version {
			t.Errorf("%s: v%d on disk, but Put returned v%d before the kill", orderNo, got.Version, version)
		}
		if got.Version > version {
			ahead++ // committed, killed before it could report
		}
	}
	counts := MustCounts(t, db)
	total := 0
	for _, n := range counts {
		total += n
	}
	if total < len(acked) {
		t.Errorf("counts %v add up to %d, fewer than the %d acknowledged orders", counts, total, len(acked))
	}
	t.Logf("%d orders acknowledged before SIGKILL, all on disk; %d a version ahead, %d orders in the file", len(acked), ahead, total)
}

// childWriteUntilKilled is the child of TestKillAfterPut: it writes orders
// (create, then issue) from 16 goroutines and reports every returned Put
// on file descriptor 3, until it is killed.
func childWriteUntilKilled(t *testing.T) {
	db, err := store.Open(store.Config{Path: os.Getenv(childPathEnv)})
	if err != nil {
		t.Fatal(err)
	}
	report := os.NewFile(3, "report")
	var mu sync.Mutex
	ack := func(rec schemas.OrderRecord) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(report, "%s %d\n", rec.OrderNo, rec.Version); err != nil {
			os.Exit(3)
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec, err := db.Put(ctx, newRecord(fmt.Sprintf("K-%02d-%06d", w, i), schemas.StateSubmitting, fp("a")))
				if err != nil {
					t.Error(err)
					return
				}
				ack(rec)
				if rec, err = db.Put(ctx, issued(rec, i)); err != nil {
					t.Error(err)
					return
				}
				ack(rec)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done: // a writer failed
	case <-time.After(time.Minute):
		t.Error("not killed within a minute")
	}
}

// TestDiskFull is the disk failure proof: a child process lowers its file
// size limit (RLIMIT_FSIZE) to the store file's size and writes rounds of 8
// concurrent Puts, committed together, until a commit fails with EFBIG.
// Every Put of the failed batch must report ErrWriteFailed and its record
// must not be readable; Healthy must report the failure; the earlier writes
// must be intact. Once the limit is raised the same writes succeed and
// Healthy clears.
func TestDiskFull(t *testing.T) {
	if os.Getenv(childEnv) == "diskfull" {
		childDiskFull(t)
		return
	}
	cmd, out := startChild(t, "TestDiskFull", "diskfull")
	runChild(t, cmd, out, "DISKFULL-OK", "the disk failure")
}

func childDiskFull(t *testing.T) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of dying
	const writers = 8
	// A batch closes when all the round's writers are in it.
	cfg := store.Config{Path: filepath.Join(t.TempDir(), "orders.db"), MaxBatch: writers, MaxBatchDelay: 10 * time.Second}
	db := MustOpen(t, cfg)
	ctx := t.Context()
	big := strings.Repeat("x", 2000)
	type result struct {
		rec schemas.OrderRecord
		err error
	}
	// round writes orders first..first+writers-1 concurrently.
	round := func(first int) []result {
		res := make([]result, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				rec := newRecord(fmt.Sprintf("FULL-%05d", first+i), schemas.StateSubmitting, fp("a"))
				rec.LastError = &schemas.ErrorInfo{Code: "provider_failed", Message: big}
				res[i].rec, res[i].err = db.Put(ctx, rec)
			})
		}
		wg.Wait()
		return res
	}
	var ok []schemas.OrderRecord
	for _, r := range round(0) {
		if r.err != nil {
			t.Fatal(r.err)
		}
		ok = append(ok, r.rec)
	}

	fi, err := os.Stat(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	low := fi.Size()
	restoreLimit := limitFileSize(t, low)

	statsBefore := db.Stats()
	var failed []int // order numbers of failed Puts
	var putErr error
	for first := writers; failed == nil && first < 100*writers; first += writers {
		for i, r := range round(first) {
			switch {
			case r.err == nil:
				ok = append(ok, r.rec)
			case !errors.Is(r.err, store.ErrWriteFailed):
				t.Fatalf("Put = %v, want ErrWriteFailed", r.err)
			default:
				failed, putErr = append(failed, first+i), r.err
			}
		}
	}
	if failed == nil {
		t.Fatal("no write failed under the file size limit")
	}
	// bbolt formats its truncate error with %s, which drops EFBIG from the
	// chain; its text is all that is left of the cause.
	if !errors.Is(putErr, syscall.EFBIG) && !strings.Contains(putErr.Error(), syscall.EFBIG.Error()) {
		t.Fatalf("failed Put = %v, want EFBIG as the cause", putErr)
	}
	st := db.Stats()
	if fc := st.FailedCommits - statsBefore.FailedCommits; fc != 1 || len(failed) < 2 {
		t.Fatalf("%d failed commits answered %d Puts with the error; want one batch failing several Puts", fc, len(failed))
	}
	if h := db.Healthy(); !errors.Is(h, store.ErrWriteFailed) {
		t.Fatalf("Healthy after the failed commit = %v, want ErrWriteFailed", h)
	}
	for _, no := range failed {
		MustMissing(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("FULL-%05d", no)})
	}
	for _, rec := range ok {
		if got := MustGet(t, db, rec.Key()); got.Version != rec.Version {
			t.Fatalf("%s: v%d, want v%d", rec.Key(), got.Version, rec.Version)
		}
	}

	// While the file cannot grow, a probe fails on its headroom write even
	// when a small heartbeat commit would fit in freed pages.
	if err := db.Probe(ctx); !errors.Is(err, store.ErrWriteFailed) || !strings.Contains(err.Error(), "room for the store to grow") {
		t.Fatalf("Probe under the file size limit = %v, want a headroom failure", err)
	}
	if h := db.Healthy(); !errors.Is(h, store.ErrWriteFailed) {
		t.Fatalf("Healthy after the failed probe = %v, want ErrWriteFailed", h)
	}

	// The disk recovers: the failed round goes through, but only a probe
	// clears Healthy.
	restoreLimit()
	for _, r := range round(failed[0] - failed[0]%writers) {
		if r.err == nil {
			ok = append(ok, r.rec)
		} else if !errors.Is(r.err, store.ErrVersionConflict) { // the round's successes
			t.Fatalf("write after the limit was raised: %v", r.err)
		}
	}
	if h := db.Healthy(); !errors.Is(h, store.ErrWriteFailed) {
		t.Fatalf("Healthy after a successful commit but no probe = %v, want the failure still reported", h)
	}
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("Probe after the limit was raised: %v", err)
	}
	if h := db.Healthy(); h != nil {
		t.Fatalf("Healthy after a successful probe = %v", h)
	}
	if _, err := os.Stat(cfg.Path + ".probe"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the probe left its scratch file behind: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, cfg)
	for _, no := range failed {
		MustGet(t, db, schemas.OrderKey{Seller: testSeller, OrderNo: fmt.Sprintf("FULL-%05d", no)})
	}
	checkCounts(t, db, map[schemas.OrderState]int{schemas.StateSubmitting: len(ok)})
	fmt.Printf("DISKFULL-OK %d writes fit under a %d-byte file size limit; then one commit failed for %d Puts: %v\n", len(ok)-len(failed), low, len(failed), putErr)
}

// TestProbeUnderFileSizeLimit: a limit on the size of one file (the
// process's RLIMIT_FSIZE here; the file system's largest file alike) above
// the probe's headroom stops the store file from growing while leaving room
// for a scratch file of that headroom. The probe must still fail while the
// store file cannot grow, or Healthy would clear on a heartbeat that fits
// in freed pages and the consumer would take work its next commit fails.
func TestProbeUnderFileSizeLimit(t *testing.T) {
	if os.Getenv(childEnv) == "sizelimit" {
		childSizeLimit(t)
		return
	}
	cmd, out := startChild(t, "TestProbeUnderFileSizeLimit", "sizelimit")
	runChild(t, cmd, out, "SIZELIMIT-OK", "the file size limit")
}

func childSizeLimit(t *testing.T) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of dying
	const headroom = 64 << 10
	cfg := store.Config{Path: filepath.Join(t.TempDir(), "orders.db"), ProbeHeadroom: headroom}
	db := MustOpen(t, cfg)
	ctx := t.Context()
	n := 0
	put := func() error {
		n++
		rec := newRecord(fmt.Sprintf("SIZE-%05d", n), schemas.StateSubmitting, fp("a"))
		msg := make([]byte, 2000)
		for i := range msg {
			msg[i] = byte('!' + rand.IntN(94)) // hardly compressible
		}
		rec.LastError = &schemas.ErrorInfo{Code: "provider_failed", Message: string(msg)}
		_, err := db.Put(ctx, rec)
		return err
	}
	size := func() int64 {
		fi, err := os.Stat(cfg.Path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for size() < 4*headroom {
		if err := put(); err != nil {
			t.Fatal(err)
		}
	}

	low := int64(size())
	restoreLimit := limitFileSize(t, low)
	var putErr error
	for i := 0; putErr == nil && i < 10_000; i++ {
		putErr = put()
	}
	if !errors.Is(putErr, store.ErrWriteFailed) {
		t.Fatalf("Put under the file size limit = %v, want ErrWriteFailed", putErr)
	}

	probeErr := db.Probe(ctx)
	if !errors.Is(probeErr, store.ErrWriteFailed) || !strings.Contains(probeErr.Error(), "room for the store file to grow") {
		healthy := db.Healthy()
		t.Fatalf("Probe while the store file cannot grow past %d bytes = %v, want its headroom to fail (Healthy then: %v; the next Put: %v)",
			low, probeErr, healthy, put())
	}
	if h := db.Healthy(); !errors.Is(h, store.ErrWriteFailed) {
		t.Fatalf("Healthy after the failed probe = %v, want ErrWriteFailed", h)
	}

	restoreLimit()
	if err := db.Probe(ctx); err != nil {
		t.Fatalf("Probe after the limit was raised: %v", err)
	}
	if err := put(); err != nil {
		t.Fatalf("Put after the limit was raised: %v", err)
	}
	fmt.Printf("SIZELIMIT-OK the store file stopped at %d bytes (%v); the probe failed until the limit was raised: %v\n", low, putErr, probeErr)
}
