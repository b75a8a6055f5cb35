package deploy_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// TestPartitions runs two consumers on one server, --partitions 2
// --partition 0 and 1 with their own data directories, as the Kubernetes
// StatefulSet does with --partition-from-hostname, and checks that every
// order of sellers on both partitions is issued exactly once, by the
// instance owning its seller, with one result each, and that the status
// service and the partner API answer for every seller; and that an
// instance started without the partition count, or as a second instance of
// a running partition, is refused (the second instance stands by).
func TestPartitions(t *testing.T) {
	b := bins(t)
	srv := startServer(t, "nats-server.conf")
	sb, sbURL := startSandbox(t)
	config := writeConfig(t, sbURL)
	const partitions = 2
	var cons [partitions]*consumer
	for k := range partitions {
		cons[k] = startConsumer(t, b, srv.url, config, "--partitions", strconv.Itoa(partitions), "--partition", strconv.Itoa(k))
	}

	orders := connect(t, srv.url, ordersRole)
	downstream := connect(t, srv.url, downstreamRole)
	const perSeller = 5
	var want []string
	var perPartition [partitions]int
	for _, seller := range append(append([]string{}, nuonuoSellers...), jumdataSellers...) {
		k := pipeline.PartitionOf(seller, partitions)
		for n := range perSeller {
			orderNo := fmt.Sprintf("PART-%d", n)
			publishRequest(t, orders, seller, orderNo)
			want = append(want, seller+":"+orderNo)
			perPartition[k]++
		}
	}
	for k, n := range perPartition {
		if n == 0 {
			t.Fatalf("no test seller falls on partition %d: choose other sellers", k)
		}
	}

	waitFor(t, 60*time.Second, "every order issued", func() (bool, string) {
		st := sb.Stats()
		return st.Issuances >= len(want), fmt.Sprintf("%d of %d issued", st.Issuances, len(want))
	})
	checkExactlyOnce(t, sb, downstream, want)

	// Each instance issued exactly its own sellers' orders: the stream's
	// {{partition(2,1)}} transform and pipeline.PartitionOf agree.
	for k, c := range cons {
		got := c.metric(t, `invoice_messages_total{event="issued"}`)
		if got != float64(perPartition[k]) {
			t.Errorf("partition %d issued %v orders, want %d", k, got, perPartition[k])
		}
	}

	// The status service: the owner of each seller answers.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, seller := range []string{nuonuoSellers[0], nuonuoSellers[1]} {
		reply, err := pipeline.RequestStatus(ctx, downstream.nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: "PART-0"})
		if err != nil || !reply.Found || reply.Order.State != schemas.StateIssued {
			t.Errorf("status of %s:PART-0 (partition %d): %+v %v", seller, pipeline.PartitionOf(seller, partitions), reply, err)
		}
	}
	// The partner API: every instance answers for every seller, asking the
	// owner of another partition's seller over the status service.
	for _, seller := range []string{nuonuoSellers[0], nuonuoSellers[1]} {
		other := cons[1-pipeline.PartitionOf(seller, partitions)]
		checkPartnerPDF(t, other, seller+":PART-0")
	}
	// An instance started with the partition count forgotten (an env file
	// without INVOICE_PARTITIONS, a debugging run) is refused: it would
	// remove the stream's partitioning under the running instances and
	// take every seller's requests.
	stray := launchConsumer(t, b, srv.url, config)
	select {
	case <-stray.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("a consumer without --partitions started beside partitioned ones")
	}
	if logs := stray.logText(); !strings.Contains(logs, "stream INVOICE_REQUESTS is partitioned 2 ways, and this consumer is configured for no partitions") ||
		!strings.Contains(logs, "--reconfigure-streams") {
		t.Errorf("the refused consumer's log does not say why:\n%s", tail(logs, 2000))
	}
	if stray.cmd.ProcessState.ExitCode() == 0 {
		t.Error("the refused consumer exited 0")
	}
	// A second instance of a partition that runs (another data
	// directory, as a copy of the StatefulSet or a debugging run would
	// have) is refused: it would take the running instance's requests
	// with an order store that has none of its orders. It stands by,
	// taking nothing, until it is stopped.
	twin := launchConsumer(t, b, srv.url, config, "--partitions", strconv.Itoa(partitions), "--partition", "1", "--prefix", "twin")
	twin.waitRefused(t, 60*time.Second)
	if logs := twin.logText(); !strings.Contains(logs, "another client is pulling from the request consumer") ||
		!strings.Contains(logs, "consumer invoicer-1 on stream INVOICE_REQUESTS") ||
		!strings.Contains(logs, "stop the other instance of partition 1") {
		t.Errorf("the second instance's log does not say why it was refused:\n%s", tail(logs, 2000))
	}
	publishRequest(t, orders, nuonuoSellers[0], "PART-AFTER")
	owner := cons[pipeline.PartitionOf(nuonuoSellers[0], partitions)]
	waitFor(t, 30*time.Second, "the owner issues a request published after the refusal", func() (bool, string) {
		got := owner.metric(t, `invoice_messages_total{event="issued"}`)
		return got == float64(perPartition[pipeline.PartitionOf(nuonuoSellers[0], partitions)]+1), fmt.Sprint(got)
	})
	twin.stop(syscall.SIGTERM)
	if code := twin.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the refused second instance standing by exited %d when told to stop, want 0", code)
	}
	if v := srv.violations(consumerRole.user); len(v) > 0 {
		t.Errorf("the consumers were refused: %v", v)
	}
}
