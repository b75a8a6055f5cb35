package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// binaries are the programs under test, built once per run.
type binaries struct {
	consumer, sandbox, natsServer string
}

// buildBinaries builds the consumer, the sandbox and nats-server (from the
// module's own nats-server dependency) into dir.
func buildBinaries(ctx context.Context, dir string, race bool) (binaries, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(gomod)) == 0 || string(bytes.TrimSpace(gomod)) == os.DevNull {
		return binaries{}, fmt.Errorf("run from inside the module (go env GOMOD: %v)", err)
	}
	root := filepath.Dir(string(bytes.TrimSpace(gomod)))
	b := binaries{
		consumer:   filepath.Join(dir, "consumer"),
		sandbox:    filepath.Join(dir, "sandbox"),
		natsServer: filepath.Join(dir, "nats-server"),
	}
	for _, t := range []struct{ out, pkg string }{
		{b.consumer, "./cmd/consumer"},
		{b.sandbox, "./cmd/sandbox"},
		{b.natsServer, "github.com/nats-io/nats-server/v2"},
	} {
		args := []string{"build", "-o", t.out}
		if race && t.out == b.consumer {
			args = append(args, "-race")
		}
		cmd := exec.CommandContext(ctx, "go", append(args, t.pkg)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", t.pkg, err, out)
		}
	}
	return b, nil
}

// freePort returns a loopback address nobody listens on.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// proc is one running program whose output is kept.
type proc struct {
	name string
	bin  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   bytes.Buffer
	exited chan struct{}
	err    error
	starts int
	kills  int
}

func newProc(name, bin string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args}
}

// start starts the program (again).
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	out, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.exited, p.err = cmd, make(chan struct{}), nil
	p.starts++
	fmt.Fprintf(&p.logs, "--- start #%d of %s\n", p.starts, p.name)
	exited := p.exited
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the program is up.
func (p *proc) running() bool {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// kill sends sig and waits (at most timeout) for the program to exit; a
// program that had exited by itself is an error.
func (p *proc) kill(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, ch := p.cmd, p.exited
	if sig == syscall.SIGKILL {
		p.kills++
	}
	p.mu.Unlock()
	if cmd == nil || ch == nil {
		return nil
	}
	select {
	case <-ch:
		// Exited by itself: the fault the scenario meant to inject hits
		// nothing, and the exit was a crash of its own.
		p.mu.Lock()
		err := p.err
		p.mu.Unlock()
		return fmt.Errorf("%s had exited by itself before the %s (%v): see its log", p.name, sig, err)
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-ch:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-ch
		return fmt.Errorf("%s did not exit within %s of %s; killed", p.name, timeout, sig)
	}
}

// pid returns the process id, or 0.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// logText returns everything the program wrote.
func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop ends the program for good.
func (p *proc) stop() {
	if p.running() {
		_ = p.kill(syscall.SIGTERM, 20*time.Second)
	}
}

// waitHTTP polls url until it answers want or the deadline passes.
func waitHTTP(ctx context.Context, url string, want int, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer %d within %s (last: %s)", url, want, within, last)
}

// waitTCP waits until addr accepts connections.
func waitTCP(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, within)
}

// panicked reports whether a log shows a Go panic or a data race.
func panicked(log string) error {
	for _, marker := range []string{"panic:", "WARNING: DATA RACE", "fatal error:"} {
		if i := strings.Index(log, marker); i >= 0 {
			end := min(len(log), i+2000)
			return errors.New(log[i:end])
		}
	}
	return nil
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}
