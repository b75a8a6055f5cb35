package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
)

// TestCluster runs the three nodes of cluster/ and the consumer with
// --replicas 3 and the three URLs, issues orders, stops the node leading
// the request stream, issues more, and checks that no order was lost or
// issued twice.
func TestCluster(t *testing.T) {
	b := bins(t)
	nodes := startCluster(t)
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url)
	}
	all := strings.Join(urls, ",")
	sb, sbURL := startSandbox(t)
	cons := startConsumer(t, b, all, writeConfig(t, sbURL), "--replicas", "3")
	orders := connect(t, all, ordersRole)
	downstream := connect(t, all, downstreamRole)

	sellers := append(append([]string{}, nuonuoSellers...), jumdataSellers...)
	var want []string
	batch := func(name string) {
		for _, seller := range sellers {
			for n := range 2 {
				orderNo := fmt.Sprintf("%s-%d", name, n)
				publishRequest(t, orders, seller, orderNo)
				want = append(want, seller+":"+orderNo)
			}
		}
		waitFor(t, 90*time.Second, "batch "+name+" issued", func() (bool, string) {
			st := sb.Stats()
			return st.Issuances >= len(want), fmt.Sprintf("%d of %d issued", st.Issuances, len(want))
		})
	}
	batch("BEFORE")

	// Every stream is on the three nodes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := orders.js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	res, err := downstream.js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range []struct {
		name     string
		replicas int
		cluster  int
	}{
		{req.CachedInfo().Config.Name, req.CachedInfo().Config.Replicas, len(req.CachedInfo().Cluster.Replicas)},
		{res.CachedInfo().Config.Name, res.CachedInfo().Config.Replicas, len(res.CachedInfo().Cluster.Replicas)},
	} {
		if info.replicas != 3 || info.cluster != 2 {
			t.Errorf("%s: %d replicas configured, leader and %d peers; want 3, leader and 2", info.name, info.replicas, info.cluster)
		}
	}

	// An instance started without --replicas 3 beside the running one is
	// refused, before it changes anything: it would take the streams down
	// to one copy each, and the durable from the running instance. The
	// check for another instance on the durable comes first, so that is
	// the reason given (pipeline's TestSameShape covers the replica
	// count's own message), and the refused start stands by.
	stray := launchConsumer(t, b, all, writeConfig(t, sbURL))
	stray.waitRefused(t, 60*time.Second)
	if logs := stray.logText(); !strings.Contains(logs, "another client is pulling from the request consumer: consumer invoicer on stream INVOICE_REQUESTS") {
		t.Errorf("the refused consumer's log does not say why:\n%s", tail(logs, 2000))
	}
	stray.stop(syscall.SIGTERM)
	if code := stray.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the refused consumer standing by exited %d when told to stop, want 0", code)
	}
	again, err := orders.js.Stream(ctx, pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if r := again.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("after the refused start the request stream has %d replica(s)", r)
	}

	// Stop the node that leads the request stream.
	leader := req.CachedInfo().Cluster.Leader
	stopped := -1
	for i, n := range nodes {
		if n.ns.Name() == leader {
			n.ns.Shutdown()
			n.ns.WaitForShutdown()
			stopped = i
		}
	}
	if stopped < 0 {
		t.Fatalf("request stream leader %q is none of the nodes", leader)
	}
	t.Logf("stopped n%d, leader of %s", stopped+1, pipeline.DefaultRequestStream)

	batch("AFTER")
	checkExactlyOnce(t, sb, downstream, want)
	select {
	case <-cons.exited:
		t.Fatal("the consumer exited")
	default:
	}
	for i, n := range nodes {
		if i == stopped {
			continue
		}
		if v := n.violations(consumerRole.user); len(v) > 0 {
			t.Errorf("n%d refused the consumer: %v", i+1, v)
		}
	}
}
