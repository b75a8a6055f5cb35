package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// skewedStore is the order store of a consumer whose clock is skew off the
// NATS server's: the records' UpdatedAt, which the store stamps with the
// consumer's clock, reads skew later than the server's clock would have it.
type skewedStore struct {
	pipeline.Store
	skew time.Duration
}

func (s skewedStore) Get(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	rec, found, err := s.Store.Get(ctx, key)
	if found {
		rec.UpdatedAt = rec.UpdatedAt.Add(s.skew)
	}
	return rec, found, err
}

func (s skewedStore) Put(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	stored, err := s.Store.Put(ctx, rec)
	stored.UpdatedAt = stored.UpdatedAt.Add(s.skew)
	return stored, err
}

func (s skewedStore) PutPatient(ctx context.Context, rec schemas.OrderRecord) (schemas.OrderRecord, error) {
	stored, err := s.Store.PutPatient(ctx, rec)
	stored.UpdatedAt = stored.UpdatedAt.Add(s.skew)
	return stored, err
}

// A replayed dead letter starts its order's counts afresh at its first
// delivery, and its later deliveries keep them, whatever the consumer's
// clock says against the NATS server's. Here a request polled twice is
// given up after a panic (its record left as it was, two polls), and its
// dead letter is replayed at once: with the consumer's clock minutes ahead,
// the record's last write looked younger than the replay and the replay
// kept the old polls; with it minutes behind, each of the replay's own
// writes looked older than the replay and every delivery started the polls
// again, so that the replay's backoff and budget never advanced and it was
// never given up.
func TestReplayRestartsItsCountsOnceWhateverTheClocks(t *testing.T) {
	for _, skew := range []time.Duration{0, 5 * time.Minute, -5 * time.Minute} {
		t.Run(fmt.Sprintf("consumer clock off by %s", skew), func(t *testing.T) {
			cfg := fast
			cfg.MaxDeliver = 3
			h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1000}}})
			st := skewedStore{Store: h.db, skew: skew}
			p := firstRun(t, h, cfg, st, nil, false)
			key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "SKEW-REPLAY"}
			body := issueRequest(t, nuonuoSeller, key.OrderNo, nil)
			polls := func() int {
				t.Helper()
				rec, _, err := h.db.Get(context.Background(), key)
				if err != nil {
					t.Fatal(err)
				}
				return rec.Polls
			}
			raw := publishRaw(t, h, nuonuoSeller, body)
			for d := 1; d < cfg.MaxDeliver; d++ {
				if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
					t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
				}
			}
			buggy := pipelineOverProviders(t, h, cfg, st, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}),
				pipeline.ProviderMap{nuonuoSeller: panicky{h.provs[nuonuoSeller]}})
			if out := deliverRaw(t, buggy, raw, cfg.MaxDeliver); out.Action != pipeline.Term {
				t.Fatalf("last delivery, panicking: %s %s; want given up", out.Action, out.Event)
			}
			if n := polls(); n != cfg.MaxDeliver-1 {
				t.Fatalf("after the give-up: %d polls; want the record left as it was, %d", n, cfg.MaxDeliver-1)
			}

			replay := publishReplayed(t, h, nuonuoSeller, body, 1)
			for r := 1; r < cfg.MaxDeliver; r++ {
				if out := deliverRaw(t, p, replay, r); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
					t.Fatalf("replay delivery %d: %s %s", r, out.Action, out.Event)
				}
				if n := polls(); n != r {
					t.Fatalf("replay delivery %d: %d polls; want %d, counted from the replay's first delivery", r, n, r)
				}
			}
			if out := deliverRaw(t, p, replay, cfg.MaxDeliver); out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
				t.Fatalf("replay delivery %d: %s %s %q; want given up, the replay's own deliveries spent", cfg.MaxDeliver, out.Action, out.Event, out.DeadLetter)
			}
		})
	}
}
