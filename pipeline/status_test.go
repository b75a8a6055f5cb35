package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/fapiaohub/invoicer/store/storetest"
)

// TestPartitionOfMatchesTheServer publishes requests through a partitioned
// request stream and checks that the server put each seller in the
// partition PartitionOf computes.
func TestPartitionOfMatchesTheServer(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	topo := pipeline.Topology{Partitions: 5}
	ctx := context.Background()
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	sellers := []string{"339902999999789113", "91330106MA2AYNWD8M", "91440101MA5APD8X8J", "150301199811285326", "A1", "B2", "C3", "D4", "E5", "F6"}
	seen := map[int]bool{}
	for _, s := range sellers {
		ack, err := js.Publish(ctx, schemas.Subjects{}.Request(s), []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		stream, _ := js.Stream(ctx, pipeline.DefaultRequestStream)
		m, err := stream.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("invoice.request.%s.%d", s, pipeline.PartitionOf(s, 5))
		if m.Subject != want {
			t.Errorf("seller %s stored as %s, PartitionOf says %s", s, m.Subject, want)
		}
		seen[pipeline.PartitionOf(s, 5)] = true
	}
	if len(seen) < 3 {
		t.Errorf("sellers spread over only %d partitions", len(seen))
	}
}

func TestStatusServiceAnswersFromTheOwner(t *testing.T) {
	_, nc, _ := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	seller := "339902999999789113"
	var stores [3]*store.DB
	for k := range stores {
		db := storetest.Open(t)
		stores[k] = db
		svc, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{Partitions: 3, Partition: k}, db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	owner := pipeline.PartitionOf(seller, 3)
	rec := schemas.OrderRecord{Seller: seller, OrderNo: "S-1", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: time.Now()}
	if _, err := stores[owner].Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	reply, err := pipeline.RequestStatus(reqCtx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: "S-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Found || reply.Order.State != schemas.StateSubmitting || reply.Result != nil {
		t.Fatalf("reply %+v", reply)
	}
	// Asked many times, the owner always answers: the others stay silent.
	for range 20 {
		r, err := pipeline.RequestStatus(reqCtx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: "S-1"})
		if err != nil || !r.Found {
			t.Fatalf("%+v %v", r, err)
		}
	}
	r, err := pipeline.RequestStatus(reqCtx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: "NOPE"})
	if err != nil || r.Found {
		t.Fatalf("unknown order: %+v %v", r, err)
	}
	_, err = pipeline.RequestStatus(reqCtx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller})
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("bad request: %v", err)
	}
	// No consumer for the prefix: a clear error, not a hang.
	_, err = pipeline.RequestStatus(reqCtx, nc, schemas.Subjects{Prefix: "other"}, pipeline.StatusRequest{Seller: seller, OrderNo: "S-1"})
	if !errors.Is(err, pipeline.ErrStatusTimeout) {
		t.Fatalf("no service: %v", err)
	}
}

// TestStatusServiceReachableOnReturn asks, from another connection, the
// moment StartStatusService returns: the endpoint must already be known to
// the server, not still on its way there (which a client would see as "no
// responders").
func TestStatusServiceReachableOnReturn(t *testing.T) {
	ns, nc, _ := MustJetStream(t, t.TempDir())
	asker, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	defer asker.Close()
	db := storetest.Open(t)
	for i := range 50 {
		subjects := schemas.Subjects{Prefix: fmt.Sprintf("reach%d", i)}
		svc, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{Subjects: subjects}, db)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = pipeline.RequestStatus(ctx, asker, subjects, pipeline.StatusRequest{Seller: nuonuoSeller, OrderNo: "R-1"})
		cancel()
		_ = svc.Stop()
		if err != nil {
			t.Fatalf("request %d, sent once the service started: %v", i, err)
		}
	}
}

// statusOnAnEmptyStore starts a status service on an empty order store, and
// returns the connection to ask it on.
func statusOnAnEmptyStore(t *testing.T) (*nats.Conn, micro.Service) {
	t.Helper()
	_, nc, _ := MustJetStream(t, t.TempDir())
	svc, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{}, storetest.Open(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	return nc, svc
}

// An order number or seller no request can carry (a NUL byte, 40,000
// characters) is a bad status request, not an order-store failure.
func TestStatusServiceRefusesImpossibleOrderNumbers(t *testing.T) {
	nc, _ := statusOnAnEmptyStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, no := range []string{"A\x00B", "A B", strings.Repeat("9", 40000)} {
		_, err := pipeline.RequestStatus(ctx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: "339902999999789113", OrderNo: no})
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Errorf("order number of %d bytes: %.160v; want a 400", len(no), err)
		}
	}
	if _, err := pipeline.RequestStatus(ctx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: "A\x00B", OrderNo: "R-1"}); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a seller with a NUL byte: %v; want a 400", err)
	}
}

// A loop whose NATS connection is closed under it returns an error, not
// nil as after a graceful stop.
func TestLoopReportsAClosedConnection(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.waitFor("the loop to pull", 5*time.Second, h.loop.Bound)
	time.Sleep(200 * time.Millisecond) // its first pull request out
	h.nc.Close()
	if err := h.crashed(); err == nil {
		t.Fatal("the loop returned nil after its connection was closed")
	}
}

// The errors the status service answers are counted in its micro stats
// (`nats micro stats invoice-status`).
func TestStatusServiceCountsItsErrors(t *testing.T) {
	nc, svc := statusOnAnEmptyStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 5 {
		if _, err := pipeline.RequestStatus(ctx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: "A\x00B", OrderNo: "R-1"}); err == nil {
			t.Fatal("a seller with a NUL byte was answered")
		}
	}
	// micro counts an answer once the handler has returned, which may be
	// just after the reply arrived.
	var st micro.Stats
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st = svc.Stats(); len(st.Endpoints) == 1 && st.Endpoints[0].NumRequests == 5 {
			break
		}
	}
	if len(st.Endpoints) != 1 || st.Endpoints[0].NumErrors != 5 || st.Endpoints[0].NumRequests != 5 {
		t.Fatalf("endpoint stats %+v: want 5 requests and their 5 errors", st.Endpoints)
	}
}
