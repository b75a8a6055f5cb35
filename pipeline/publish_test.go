package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// TestPublishWaitsForTheStream: a result published while its stream is not
// there yet (JetStream still restoring after a restart) is published again
// until the stream answers, and kept once.
func TestPublishWaitsForTheStream(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	pub := pipeline.NewJetStreamPublisher(js, schemas.Subjects{})
	res := &schemas.Result{SchemaVersion: schemas.SchemaVersion, SellerTaxNum: nuonuoSeller, OrderNo: "LATE-1",
		Kind: schemas.KindIssue, Status: schemas.StatusIssued, Invoices: []schemas.Invoice{}}

	created := make(chan error, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		created <- (pipeline.Topology{}).Ensure(context.Background(), js)
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := pub.PublishResult(ctx, res, "result:TEST:1"); err != nil {
		t.Fatalf("publish before the stream existed: %v", err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishResult(ctx, res, "result:TEST:1"); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Msgs; n != 1 {
		t.Fatalf("%d results in the stream, want 1", n)
	}

	// A publish that cannot succeed ends with its context.
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	nowhere := pipeline.NewJetStreamPublisher(js, schemas.Subjects{Prefix: "nostream"})
	if err := nowhere.PublishResult(short, res, "result:TEST:2"); err == nil {
		t.Fatal("publish outside every stream succeeded")
	}
}
