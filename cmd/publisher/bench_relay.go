package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The baseline relay's streams and durable.
const (
	relayRequestStream = "BENCH_RELAY_REQUESTS"
	relayResultStream  = "BENCH_RELAY_RESULTS"
	relayDurable       = "bench-relay"
)

// relaySubjects are the relay's subjects: the contract's under
// <prefix>.bench.relay, which no stream of the consumer's covers.
func relaySubjects(prefix string) schemas.Subjects {
	return schemas.Subjects{Prefix: prefix + ".bench.relay"}
}

// benchRelay is the baseline: on its own connection, it pulls requests
// with the consumer's worker count and pull buffer, and for each publishes
// a result (waiting for its acknowledgement, as the pipeline does) and
// acks it. No validation, store or provider.
type benchRelay struct {
	s        *session
	subjects schemas.Subjects
	workers  int
	cons     jetstream.Consumer
	results  jetstream.Stream

	iter    jetstream.MessagesContext
	jobs    chan jetstream.Msg
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    int
	lastErr error
}

// newBenchRelay creates the relay's streams, with the retention, storage,
// replicas, compression and deduplication window of the consumer's request
// and result streams (reqCfg, resCfg), and its durable as
// pipeline.Topology configures the consumer's. Delete them with delete.
func newBenchRelay(ctx context.Context, s *session, reqCfg, resCfg jetstream.StreamConfig, workers int) (*benchRelay, error) {
	r := &benchRelay{s: s, subjects: relaySubjects(s.g.prefix), workers: workers}
	like := func(name, desc, subject string, c jetstream.StreamConfig) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Description: desc, Subjects: []string{subject},
			Retention: c.Retention, Storage: c.Storage, Replicas: c.Replicas, Compression: c.Compression,
			Duplicates: c.Duplicates, Discard: c.Discard, MaxAge: c.MaxAge,
		}
	}
	cfgs := []jetstream.StreamConfig{
		like(relayRequestStream, "publisher bench: baseline relay requests (deleted after the run)", r.subjects.RequestFilter(), reqCfg),
		like(relayResultStream, "publisher bench: baseline relay results (deleted after the run)", r.subjects.ResultFilter(), resCfg),
	}
	r.deleteStreams(ctx) // left over from an interrupted run
	for _, cfg := range cfgs {
		cctx, cancel := s.ctx(ctx)
		st, err := s.js.CreateStream(cctx, cfg)
		cancel()
		if err != nil {
			r.deleteStreams(ctx)
			return nil, s.jsError(err, "create the baseline stream "+cfg.Name)
		}
		if cfg.Name == relayResultStream {
			r.results = st
		}
	}
	topo := pipeline.Topology{Subjects: r.subjects, RequestStream: relayRequestStream, Durable: relayDurable, Replicas: reqCfg.Replicas}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	cons, err := topo.EnsureConsumer(cctx, s.js, pipeline.ConsumerSettings{Workers: workers})
	if err != nil {
		r.deleteStreams(ctx)
		return nil, s.jsError(err, "create the baseline consumer")
	}
	r.cons = cons
	return r, nil
}

// start pulls and relays until stop.
func (r *benchRelay) start() error {
	// The consume loop's pull: a buffer of one message per worker.
	iter, err := r.cons.Messages(jetstream.PullMaxMessages(r.workers), jetstream.PullExpiry(2*time.Second))
	if err != nil {
		return r.s.jsError(err, "pull from the baseline consumer")
	}
	r.iter = iter
	r.jobs = make(chan jetstream.Msg)
	for range r.workers {
		r.wg.Go(func() {
			for m := range r.jobs {
				r.relay(m)
			}
		})
	}
	r.wg.Go(func() {
		defer close(r.jobs)
		for {
			m, err := iter.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				r.fail(err)
				if errors.Is(err, nats.ErrConnectionClosed) {
					return
				}
				continue
			}
			r.jobs <- m
		}
	})
	return nil
}

// relay answers one request: a result on <base>.result.issued.<seller>
// with the headers the pipeline sets, taken from the request's
// Nats-Msg-Id (<seller>:<orderNo>) instead of its body, then the ack.
func (r *benchRelay) relay(m jetstream.Msg) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	seller, orderNo, _ := strings.Cut(id, ":")
	res := &nats.Msg{Subject: r.subjects.Result(schemas.StatusIssued, schemas.SubjectToken(seller)), Data: m.Data(), Header: nats.Header{}}
	res.Header.Set(pipeline.HeaderSeller, seller)
	res.Header.Set(pipeline.HeaderOrderNo, orderNo)
	res.Header.Set(pipeline.HeaderStatus, string(schemas.StatusIssued))
	ctx, cancel := r.s.ctx(context.Background())
	defer cancel()
	if _, err := r.s.js.PublishMsg(ctx, res, jetstream.WithMsgID("relay-result:"+id)); err != nil {
		r.fail(err)
		_ = m.Nak()
		return
	}
	if err := m.Ack(); err != nil {
		r.fail(err)
	}
}

func (r *benchRelay) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs++
	r.lastErr = err
}

// stop stops pulling and waits for the workers; it returns a summary of
// the errors the relay met, or nil.
func (r *benchRelay) stop() error {
	if r.iter != nil {
		r.iter.Stop()
		r.wg.Wait()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs > 0 {
		return fmt.Errorf("the baseline relay met %d error(s), the last: %w", r.errs, r.lastErr)
	}
	return nil
}

// deleteStreams deletes the relay's streams (and with them its durable),
// even when ctx has ended.
func (r *benchRelay) deleteStreams(ctx context.Context) error {
	var errs []error
	for _, name := range []string{relayRequestStream, relayResultStream} {
		dctx, cancel := r.s.ctx(context.WithoutCancel(ctx))
		err := r.s.js.DeleteStream(dctx, name)
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete the baseline stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
