package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// The request stream deleted and created again (by an operator, or by the
// consumer, which creates it again when it finds it missing) numbers its
// requests from 1 again. A request there gets its own result and dead
// letter, not ones the results and dead-letter streams drop as duplicates
// of the old stream's request of the same number (their message ids named
// the stream and the sequence alone): within the streams' duplicate window
// (10 minutes) the request was acknowledged and its result never reached
// anyone.
func TestARecreatedRequestStreamsRequestsGetTheirOwnResults(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "OLD-STREAM-1", nil), "")
	h.publish(nuonuoSeller, []byte("not json"), "")
	if r := h.waitResult(nuonuoSeller, "OLD-STREAM-1", 1, 10*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the old stream's request: %s", r.Status)
	}
	h.waitFor("the old stream's dead letter", 10*time.Second, func() bool { return len(h.deadLetters()) == 1 })
	h.waitFor("the old stream to empty", 10*time.Second, h.requestStreamEmpty)
	h.stop()

	if err := h.obs.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	if err := h.topo.Ensure(ctx, h.obs); err != nil {
		t.Fatal(err)
	}
	h.start()
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "NEW-STREAM-1", nil), "")
	h.publish(nuonuoSeller, []byte("not json either"), "")
	h.waitFor("the new stream to empty", 10*time.Second, h.requestStreamEmpty)
	for deadline := time.Now().Add(10 * time.Second); len(h.resultsFor(nuonuoSeller, "NEW-STREAM-1")) == 0 || len(h.deadLetters()) < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new stream's requests were acknowledged, and 10 s later their results are %d (want 1) and the dead letters %d (want 2, the old stream's and the new one's)",
				len(h.resultsFor(nuonuoSeller, "NEW-STREAM-1")), len(h.deadLetters()))
		}
	}
	if r := h.resultsFor(nuonuoSeller, "NEW-STREAM-1")[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("the new stream's request: %s", r.Status)
	}
	if dl := h.deadLetters()[1]; string(dl.Payload) != "not json either" || dl.OriginalSeq != 2 {
		t.Fatalf("the new stream's dead letter: #%d %q", dl.OriginalSeq, dl.Payload)
	}
}
