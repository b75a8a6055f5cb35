package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store/storetest"
)

// TestOrphanSweeper stands in for the server's lost deletions with a
// limits-retention request stream, where acknowledged messages stay: the
// sweeper deletes the acknowledged requests the store shows answered, keeps
// the acknowledged ones it cannot prove answered, and never touches a
// request that is not acknowledged yet.
func TestOrphanSweeper(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := t.Context()
	subjects := schemas.Subjects{}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: pipeline.DefaultRequestStream, Subjects: []string{subjects.RequestFilter()}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: pipeline.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t)
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}

	answered := issueRequest(t, nuonuoSeller, "ORPHAN-1", nil)
	changed := issueRequest(t, nuonuoSeller, "ORPHAN-2", nil) // the store holds a different body
	invalid := []byte(`{"schemaVersion":"1","kind":"issue"}`)
	pending := issueRequest(t, nuonuoSeller, "ORPHAN-4", nil)
	for _, body := range [][]byte{answered, changed, invalid, pending} {
		if _, err := js.Publish(ctx, subjects.Request(nuonuoSeller), body); err != nil {
			t.Fatal(err)
		}
	}
	// The store: ORPHAN-1 issued for its body, ORPHAN-2 issued for another.
	for _, o := range []struct {
		body []byte
		fp   string
	}{{answered, ""}, {changed, "0000000000000000000000000000000000000000000000000000000000000000"}} {
		d, err := v.Decode(o.body, nuonuoSeller)
		if err != nil || !d.Valid() {
			t.Fatalf("decode: %v %v", err, d)
		}
		fp := d.Fingerprint
		if o.fp != "" {
			fp = o.fp
		}
		rec := schemas.OrderRecord{Seller: nuonuoSeller, OrderNo: d.Request.OrderNo, Kind: schemas.KindIssue, State: schemas.StateSubmitting,
			Fingerprint: fp, Provider: "nuonuo", ReceivedAt: time.Now()}
		if rec, err = db.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.State = schemas.StateIssued
		if _, err = db.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	// Acknowledge the first three; the fourth stays pending.
	ackNext(t, cons, 3)

	sw := &pipeline.OrphanSweeper{Stream: stream, Consumer: cons, Store: db, Validator: v, Subjects: subjects}
	rep, err := sw.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 || rep.Kept != 2 {
		t.Fatalf("swept %+v, want 1 deleted and 2 kept", rep)
	}
	left := map[uint64]bool{}
	for seq := uint64(1); seq <= 4; seq++ {
		if _, err := stream.GetMsg(ctx, seq); err == nil {
			left[seq] = true
		}
	}
	if left[1] || !left[2] || !left[3] || !left[4] {
		t.Fatalf("left in the stream: %v; want #2, #3 (unproven) and #4 (pending)", left)
	}
	// A second sweep finds nothing more to delete.
	if rep, err := sw.Sweep(context.Background()); err != nil || rep.Deleted != 0 {
		t.Fatalf("second sweep %+v %v", rep, err)
	}
}

// The request stream deleted and created again while the consumer runs
// (the consume loop creates it again, LoopConfig.Recreate) numbers its
// requests from 1 again, and its durable's ack floor starts over. The same
// sweeper, which carried on from where it stopped in the old stream, sweeps
// the new stream from its start: it looked no lower than its old position,
// and left the new stream's orphans alone until the new ack floor passed
// the old stream's last sequence.
func TestOrphanSweeperAfterTheStreamIsCreatedAgain(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := t.Context()
	subjects := schemas.Subjects{}
	// A limits-retention stream stands in for the server's lost deletions,
	// as in TestOrphanSweeper; in memory, since a file stream created again
	// at once under its name may be refused its store for a moment.
	cfg := jetstream.StreamConfig{Name: pipeline.DefaultRequestStream, Subjects: []string{subjects.RequestFilter()}, Storage: jetstream.MemoryStorage}
	stream, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	durable := jetstream.ConsumerConfig{Durable: pipeline.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy}
	cons, err := stream.CreateOrUpdateConsumer(ctx, durable)
	if err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t)
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// issued records an issued order for body and returns body.
	issued := func(body []byte) []byte {
		t.Helper()
		d, err := v.Decode(body, nuonuoSeller)
		if err != nil || !d.Valid() {
			t.Fatalf("decode: %v %v", err, d)
		}
		rec := schemas.OrderRecord{Seller: nuonuoSeller, OrderNo: d.Request.OrderNo, Kind: schemas.KindIssue, State: schemas.StateSubmitting,
			Fingerprint: d.Fingerprint, Provider: "nuonuo", ReceivedAt: time.Now()}
		if rec, err = db.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		rec.State = schemas.StateIssued
		if _, err = db.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return body
	}
	// acknowledged publishes bodies and acknowledges them all through the
	// durable.
	acknowledged := func(bodies ...[]byte) {
		t.Helper()
		for _, body := range bodies {
			if _, err := js.Publish(ctx, subjects.Request(nuonuoSeller), body); err != nil {
				t.Fatal(err)
			}
		}
		ackNext(t, cons, len(bodies))
	}

	var old [][]byte
	for i := range 5 {
		old = append(old, issued(issueRequest(t, nuonuoSeller, fmt.Sprintf("OLD-ORPHAN-%d", i), nil)))
	}
	acknowledged(old...)
	sw := &pipeline.OrphanSweeper{Stream: stream, Consumer: cons, Store: db, Validator: v, Subjects: subjects}
	if rep, err := sw.Sweep(ctx); err != nil || rep.Deleted != 5 {
		t.Fatalf("the old stream's sweep: %+v %v, want 5 deleted", rep, err)
	}

	// Deleted and created again, with its durable, as the consume loop
	// does; the sweeper's handles name the same stream and durable.
	if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	fresh, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.CreateOrUpdateConsumer(ctx, durable); err != nil {
		t.Fatal(err)
	}
	acknowledged(issued(issueRequest(t, nuonuoSeller, "NEW-ORPHAN-1", nil)), issued(issueRequest(t, nuonuoSeller, "NEW-ORPHAN-2", nil)))
	rep, err := sw.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := 0
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := fresh.GetMsg(ctx, seq); err == nil {
			left++
		}
	}
	if rep.Deleted != 2 || left != 0 {
		t.Fatalf("the new stream's sweep: %+v, %d of its 2 acknowledged and answered requests left; want both deleted", rep, left)
	}
}

// ackNext fetches the next n requests from cons (waiting at most 5 s) and
// acknowledges each, failing the test unless n came.
func ackNext(t *testing.T, cons jetstream.Consumer, n int) {
	t.Helper()
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Fatalf("fetched %d of %d", got, n)
	}
}
