package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDeletedResultsStreamIsCreatedAgain: an operator deletes the results
// stream while the consumer runs. The next result finds no stream to take
// it; the consumer creates the stream again, with its own settings, and the
// result goes out within seconds, instead of every request waiting for its
// result's acknowledgement until its processing times out (2 minutes) and
// then again, until the consumer is restarted.
func TestDeletedResultsStreamIsCreatedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	c := startConsumer(t, bin, t.TempDir())
	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	before, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
		t.Fatal(err)
	}

	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	const seller, orderNo = "339902999999789113", "20230113333207931231"
	if _, err := js.Publish(ctx, "invoice.request."+seller, req, jetstream.WithMsgID(seller+":"+orderNo)); err != nil {
		t.Fatal(err)
	}
	// Read from the stream, not with a subscription: a plain subscriber
	// on the results' subjects would take the publishes no stream
	// answers.
	var msg *jetstream.RawStreamMsg
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s, err := js.Stream(ctx, pipeline.DefaultResultStream); err == nil {
			if msg, err = s.GetLastMsgForSubject(ctx, "invoice.result.issued."+seller); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result in %s within 20 s of its deletion:\n%s", pipeline.DefaultResultStream, c.logText())
		}
	}
	var res schemas.Result
	if err := json.Unmarshal(msg.Data, &res); err != nil || res.OrderNo != orderNo || res.Status != schemas.StatusIssued {
		t.Fatalf("result %s: %v", msg.Data, err)
	}
	after, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	want, got := before.CachedInfo().Config, after.CachedInfo().Config
	if got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates || got.Retention != want.Retention ||
		got.Storage != want.Storage || got.Replicas != want.Replicas || strings.Join(got.Subjects, " ") != strings.Join(want.Subjects, " ") {
		t.Errorf("the stream created again: %+v; want the consumer's settings %+v", got, want)
	}
	if !strings.Contains(c.logText(), pipeline.DefaultResultStream) || !strings.Contains(c.logText(), "created again") {
		t.Errorf("the log does not say the stream was created again:\n%s", c.logText())
	}
}
