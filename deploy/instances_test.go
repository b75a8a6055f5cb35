package deploy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestTwoInstancesStartedTogether starts two consumers of the same durable
// (no partitions, each with its own data directory) at the same moment, as
// a Deployment with two replicas would. Both may pass the start-up check
// before either pulls; then the one that started first keeps the durable
// and the other stops (pipeline.WatchOwner), or the later one is refused at
// start (pipeline.EnsureAlone). Either way exactly one is left running, and
// it issues what is published.
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
	select {
	case <-pair[0].exited:
		gone, left = pair[0], pair[1]
	case <-pair[1].exited:
		gone, left = pair[1], pair[0]
	case <-time.After(60 * time.Second):
		t.Fatal("two consumers of one durable ran side by side for a minute")
	}
	if logs := gone.logText(); !strings.Contains(logs, "another client is pulling from the request consumer") &&
		!strings.Contains(logs, "another instance took the request consumer") {
		t.Errorf("the consumer that stopped does not say why:\n%s", tail(logs, 2000))
	}
	if strings.Contains(gone.logText(), "another instance took the request consumer") {
		t.Log("both passed the start-up check; the later one stopped when it saw the earlier one's owner record")
	} else {
		t.Log("the later one was refused at start")
	}
	if gone.cmd.ProcessState.ExitCode() == 0 {
		t.Error("the consumer that stopped exited 0")
	}
	waitHTTP(t, "http://"+left.http+"/readyz", 30*time.Second, left.proc)
	// The one left keeps running: its watch sees itself as the owner.
	time.Sleep(6 * time.Second)
	select {
	case <-left.exited:
		t.Fatalf("the consumer left stopped too:\n%s", tail(left.logText(), 2000))
	default:
	}
	orders := connect(t, srv.url, ordersRole)
	publishRequest(t, orders, nuonuoSellers[0], "PAIR-1")
	waitFor(t, 30*time.Second, "the order issued", func() (bool, string) {
		st := sb.Stats()
		return st.Issuances == 1, fmt.Sprint(st.Issuances)
	})
}
