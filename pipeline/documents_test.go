package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// gateDocuments blocks every Keep until the gate opens.
type gateDocuments struct {
	entered chan schemas.OrderKey
	gate    chan struct{}
	kept    atomic.Int32
}

func (d *gateDocuments) Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	d.entered <- key
	select {
	case <-d.gate:
		d.kept.Add(1)
		return make([]string, len(invoices)), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *gateDocuments) Get(context.Context, string) ([]byte, error) { return nil, nil }

// TestDocumentKeeperQueue: offers never block; what the queue cannot hold is
// refused (and fetched on demand later); Stop lets the queue drain.
func TestDocumentKeeperQueue(t *testing.T) {
	docs := &gateDocuments{entered: make(chan schemas.OrderKey, 10), gate: make(chan struct{})}
	k := pipeline.NewDocumentKeeper(docs, pipeline.KeeperConfig{Workers: 1, Queue: 1, Timeout: time.Minute}, nil)
	inv := []schemas.Invoice{{PdfURL: "http://127.0.0.1:1/x.pdf"}}
	key := func(n string) schemas.OrderKey { return schemas.OrderKey{Seller: nuonuoSeller, OrderNo: n} }

	if !k.Offer(key("D-1"), inv) {
		t.Fatal("first offer refused")
	}
	if got := <-docs.entered; got.OrderNo != "D-1" { // the worker holds D-1
		t.Fatalf("worker took %v", got)
	}
	if !k.Offer(key("D-2"), inv) {
		t.Fatal("second offer refused with room in the queue")
	}
	if k.Offer(key("D-3"), inv) {
		t.Fatal("third offer accepted beyond the queue")
	}
	close(docs.gate)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	k.Stop(ctx)
	if n := docs.kept.Load(); n != 2 {
		t.Fatalf("kept %d orders' documents, want 2", n)
	}
}

// TestDocumentKeeperStopGivesUp: Stop does not wait past its context for a
// document server that does not answer.
func TestDocumentKeeperStopGivesUp(t *testing.T) {
	docs := &gateDocuments{entered: make(chan schemas.OrderKey, 10), gate: make(chan struct{})}
	k := pipeline.NewDocumentKeeper(docs, pipeline.KeeperConfig{Workers: 1, Timeout: time.Hour}, nil)
	k.Offer(schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "S-1"}, []schemas.Invoice{{}})
	<-docs.entered
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { k.Stop(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for a hung document server")
	}
	if docs.kept.Load() != 0 {
		t.Fatal("a document was kept through a closed gate")
	}
}

// TestDocumentKeeperOfferAfterStop: an offer after Stop (an in-flight
// message finishing after a shutdown deadline) is refused, not a panic.
func TestDocumentKeeperOfferAfterStop(t *testing.T) {
	docs := &gateDocuments{entered: make(chan schemas.OrderKey, 10), gate: make(chan struct{})}
	close(docs.gate)
	k := pipeline.NewDocumentKeeper(docs, pipeline.KeeperConfig{}, nil)
	k.Stop(t.Context())
	if k.Offer(schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "LATE-1"}, []schemas.Invoice{{}}) {
		t.Fatal("an offer after Stop was queued")
	}
	k.Stop(t.Context()) // twice is fine
}
