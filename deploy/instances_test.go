package deploy_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTwoInstancesStartedTogether starts two consumers of the same durable
// (no partitions, each with its own data directory) at the same moment, as
// a Deployment with two replicas would. Both may pass the start-up check
// before either pulls; then the one that started first keeps the durable
// and the other stands down (pipeline.WatchOwner). Or the later one is
// refused at start (pipeline.EnsureAlone). Either way the other one stands
// by, not ready and taking nothing, until it is stopped (an exit would have
// a restart policy start it over and over), and exactly one is left
// consuming, which issues what is published.
func TestTwoInstancesStartedTogether(t *testing.T) {
	b := bins(t)
	srv := startServer(t, "nats-server.conf")
	sb, sbURL := startSandbox(t)
	config := writeConfig(t, sbURL)
	pair := [2]*consumer{}
	for i := range pair {
		pair[i] = launchConsumer(t, b, srv.url, config)
	}
	var gone, left *consumer
	refused := false
	deadline := time.Now().Add(60 * time.Second)
	for gone == nil {
		for i, c := range pair {
			select {
			case <-c.exited:
				t.Fatalf("%s exited (status %d); want one consuming and the other standing by:\n%s", c.name, c.cmd.ProcessState.ExitCode(), tail(c.logText(), 2000))
			default:
			}
			switch logs := c.logText(); {
			case strings.Contains(logs, "start refused: standing by"):
				gone, left, refused = c, pair[1-i], true
			case strings.Contains(logs, "standing by: taking no requests"):
				gone, left = c, pair[1-i]
			}
			if gone != nil {
				break
			}
		}
		if gone == nil && time.Now().After(deadline) {
			t.Fatal("two consumers of one durable ran side by side for a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if refused {
		t.Log("the later one was refused at start")
		if logs := gone.logText(); !strings.Contains(logs, "another client is pulling from the request consumer") {
			t.Errorf("the consumer that was refused does not say why:\n%s", tail(logs, 2000))
		}
	} else {
		t.Log("both passed the start-up check; the later one stood down when it saw the earlier one's owner record")
		if logs := gone.logText(); !strings.Contains(logs, "another instance took the request consumer") {
			t.Errorf("the consumer that stood down does not say why:\n%s", tail(logs, 2000))
		}
	}
	status := func(path string) (int, string) {
		resp, err := http.Get("http://" + gone.http + path)
		if err != nil {
			t.Fatalf("GET %s of the consumer standing by: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := status("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of the consumer standing by: %d", code)
	}
	if code, body := status("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stood down") {
		t.Errorf("/readyz of the consumer standing by: %d %s, want 503 stood down", code, body)
	}
	if v := gone.metric(t, "invoice_consumer_stood_down"); v != 1 {
		t.Errorf("invoice_consumer_stood_down of the consumer standing by: %v, want 1", v)
	}
	waitHTTP(t, "http://"+left.http+"/readyz", 30*time.Second, left.proc)
	// The one left keeps running: its watch sees itself as the owner; the
	// one standing by stays up.
	time.Sleep(6 * time.Second)
	for _, c := range []*consumer{left, gone} {
		select {
		case <-c.exited:
			t.Fatalf("%s exited:\n%s", c.name, tail(c.logText(), 2000))
		default:
		}
	}
	orders := connect(t, srv.url, ordersRole)
	publishRequest(t, orders, nuonuoSellers[0], "PAIR-1")
	waitFor(t, 30*time.Second, "the order issued", func() (bool, string) {
		st := sb.Stats()
		return st.Issuances == 1, fmt.Sprint(st.Issuances)
	})
	gone.stop(syscall.SIGTERM)
	if code := gone.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the consumer standing by exited %d when told to stop, want 0", code)
	}
}
