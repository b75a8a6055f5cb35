package main

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MustJetStream starts an embedded NATS server with JetStream and the
// consumer's streams, and returns a connection to it.
func MustJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	ns, err := server.NewServer(&server.Options{
		ServerName: "reliability-test", DontListen: true,
		JetStream: true, StoreDir: filepath.Join(tb.TempDir(), "js"), NoSigs: true, NoLog: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ns.Start()
	tb.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		tb.Fatal("the embedded NATS server is not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := (pipeline.Topology{}).WithDefaults().Ensure(tb.Context(), js); err != nil {
		tb.Fatal(err)
	}
	return js
}

// TestARetriedPublishKeepsItsMessageChecked: a publish whose message was
// stored but whose ack was lost (the NATS server stopped, the 3 s timeout)
// is retried with the same message id, and the stream answers the retry
// as a duplicate of the stored message, with its sequence. That message is
// the order's only one, and its answer must be checked like any other's.
func TestARetriedPublishKeepsItsMessageChecked(t *testing.T) {
	js := MustJetStream(t)
	r := &run{w: &world{js: js}, l: newLedger()}
	seller, orderNo := allSellers[0], "LOST-ACK-1"
	subject := schemas.Subjects{}.Request(seller)
	data := validRequest(rand.New(rand.NewPCG(1, 1)), seller, orderNo, "可靠性测试买方")
	// The first attempt, whose ack the publisher never saw.
	first, err := js.Publish(t.Context(), subject, data, jetstream.WithMsgID(seller+":"+orderNo))
	if err != nil {
		t.Fatal(err)
	}
	// The retry, as publishValid makes it.
	if err := r.publishValid(t.Context(), seller, orderNo, rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	key := schemas.OrderKey{Seller: seller, OrderNo: orderNo}
	if got := r.l.valid[key]; !slices.Equal(got, []uint64{first.Sequence}) {
		t.Errorf("the order's messages to check: %v, want the stored one, #%d", got, first.Sequence)
	}
	if r.l.messages != 1 {
		t.Errorf("%d messages counted, want 1", r.l.messages)
	}

	// Copies published at once, some of them duplicates by id: each
	// message the stream kept is checked once.
	copies := schemas.OrderKey{Seller: seller, OrderNo: "COPIES-1"}
	r.l.addValid(copies, 7) // a duplicate's ack may come before the first copy's
	r.l.addValid(copies, 7)
	r.l.addValid(copies, 7)
	r.l.addValid(copies, 9) // a copy without an id
	if got := r.l.valid[copies]; !slices.Equal(got, []uint64{7, 9}) {
		t.Errorf("the copies' messages to check: %v, want [7 9]", got)
	}
}
