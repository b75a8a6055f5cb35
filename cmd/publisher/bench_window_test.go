package main

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// fakeFuture is a PubAckFuture the test completes by hand.
type fakeFuture struct {
	ok  chan *jetstream.PubAck
	err chan error
	msg *nats.Msg
}

func (f *fakeFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *fakeFuture) Err() <-chan error            { return f.err }
func (f *fakeFuture) Msg() *nats.Msg               { return f.msg }

// windowJS counts the publishes awaiting their acknowledgement; the
// acknowledgements come only when the test releases them.
type windowJS struct {
	jetstream.JetStream
	mu          sync.Mutex
	outstanding int
	most        int
	futures     chan *fakeFuture
}

func (j *windowJS) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := &fakeFuture{ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1), msg: m}
	j.mu.Lock()
	j.outstanding++
	j.most = max(j.most, j.outstanding)
	j.mu.Unlock()
	j.futures <- f
	return f, nil
}

func (j *windowJS) ack(f *fakeFuture) {
	j.mu.Lock()
	j.outstanding--
	j.mu.Unlock()
	f.ok <- &jetstream.PubAck{Stream: "INVOICE_REQUESTS"}
}

// TestBenchWindowBound: bench's --window is "most publishes awaiting
// their acknowledgement at once"; the closed loop must never have more.
func TestBenchWindowBound(t *testing.T) {
	for _, window := range []int{1, 4} {
		const n = 12
		gen, err := newBenchGen(1, "0000001", []string{demoNuonuo}, n, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		js := &windowJS{futures: make(chan *fakeFuture, n)}
		b := &bench{o: benchOptions{n: n, window: window}, s: &session{g: &globals{timeout: time.Second}, js: js}, gen: gen}
		rec := newBenchRecorder(n, time.Now())
		done := make(chan struct{})
		go func() {
			defer close(done)
			b.publish(context.Background(), schemas.Subjects{}, rec, &progress{})
		}()
		// The "server" acknowledges slowly, in order: the publisher runs
		// ahead as far as the window lets it.
		for range n {
			f := <-js.futures
			time.Sleep(20 * time.Millisecond)
			js.ack(f)
		}
		<-done
		if js.most > window {
			t.Errorf("--window %d: %d publishes awaited their acknowledgement at once", window, js.most)
		}
	}
}

// resultMsg is a result event as the reader sees it.
type resultMsg struct {
	jetstream.Msg
	h nats.Header
}

func (m resultMsg) Headers() nats.Header { return m.h }
func (m resultMsg) Data() []byte         { return nil }
func (m resultMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Timestamp: time.Now()}, nil
}

// sliceIter hands out msgs, then times out like an idle ordered consumer.
type sliceIter struct {
	jetstream.MessagesContext
	msgs []jetstream.Msg
}

func (it *sliceIter) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	if len(it.msgs) == 0 {
		time.Sleep(10 * time.Millisecond)
		return nil, nats.ErrTimeout
	}
	m := it.msgs[0]
	it.msgs = it.msgs[1:]
	return m, nil
}

// TestBenchReaderWaitsForEveryPublishedRequest: a publish whose acknowledgement timed out
// (ErrAsyncPublishTimeout: "it may still have been stored") is marked failed
// and no longer expected; when it was stored after all, its result must not
// stand in for another request's, or the reader stops before every published
// request has its result.
func TestBenchReaderWaitsForEveryPublishedRequest(t *testing.T) {
	const n = 3
	gen, err := newBenchGen(1, "0000001", []string{demoNuonuo}, n, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{o: benchOptions{n: n}, gen: gen}
	rec := newBenchRecorder(n, time.Now())
	for i := range n {
		rec.markSent(i, time.Now())
	}
	rec.markFailed(0) // its acknowledgement timed out; the stream kept it anyway
	msg := func(i int) jetstream.Msg {
		h := nats.Header{}
		h.Set(pipeline.HeaderSeller, gen.seller(i))
		h.Set(pipeline.HeaderOrderNo, gen.orderNo(i))
		h.Set(pipeline.HeaderStatus, string(schemas.StatusIssued))
		return resultMsg{h: h}
	}
	iter := &sliceIter{msgs: []jetstream.Msg{msg(0), msg(1), msg(2)}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b.read(ctx, iter, rec, &progress{})
	if s := rec.summary(); s.missing != 0 {
		t.Errorf("the reader stopped with %d published request(s) without a result although the result of every one was waiting (got %d, expected %d)", s.missing, rec.got, rec.expected())
	}
}
