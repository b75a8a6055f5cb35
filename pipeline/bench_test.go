package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkPipeline pushes b.N requests through the whole consumer in
// process (embedded JetStream with file storage, bbolt with fsync, the
// sandbox over HTTP at zero latency) and reports requests per second. The
// requests are published before the clock starts: it measures draining a
// backlog.
func BenchmarkPipeline(b *testing.B) {
	h := newHarness(b, harnessOptions{workers: pipeline.DefaultWorkers})
	h.cfg = pipeline.Config{}
	sellers := []string{nuonuoSeller, jumdataSeller}
	reqs := make([][]byte, b.N)
	for i := range b.N {
		s := sellers[i%2]
		reqs[i] = issueRequest(b, s, fmt.Sprintf("B%07d", i), nil)
	}
	for i, r := range reqs {
		if _, err := h.obs.PublishAsync(schemas.Subjects{}.Request(sellers[i%2]), r); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-h.obs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish timed out")
	}
	var done atomic.Int64
	sub, err := h.nc.Subscribe(schemas.Subjects{}.ResultFilter(), func(*nats.Msg) { done.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	b.ResetTimer()
	start := time.Now()
	h.start()
	for done.Load() < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d done", done.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	h.stop()
}

// BenchmarkRelay is the bare relay on the same kind of server: pull, publish
// a result, ack; no validation, store or provider. The ratio of the two is
// what the pipeline costs.
func BenchmarkRelay(b *testing.B) {
	_, _, js := MustJetStream(b, b.TempDir())
	ctx := context.Background()
	if err := (pipeline.Topology{}).Ensure(ctx, js); err != nil {
		b.Fatal(err)
	}
	body := issueRequest(b, nuonuoSeller, "RELAY", nil)
	for range b.N {
		if _, err := js.PublishAsync(schemas.Subjects{}.Request(nuonuoSeller), body); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish timed out")
	}
	cons, err := (pipeline.Topology{}).EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: pipeline.DefaultWorkers})
	if err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	b.ResetTimer()
	start := time.Now()
	iter, err := cons.Messages(jetstream.PullMaxMessages(64))
	if err != nil {
		b.Fatal(err)
	}
	jobs := make(chan jetstream.Msg)
	var workers sync.WaitGroup
	for range 64 {
		workers.Go(func() {
			for m := range jobs {
				md, err := m.Metadata()
				if err != nil {
					b.Error(err)
					continue
				}
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "invoice.result.issued." + nuonuoSeller, Data: m.Data()},
					jetstream.WithMsgID(fmt.Sprintf("result:%d", md.Sequence.Stream))); err != nil {
					b.Error(err)
				}
				if err := m.Ack(); err != nil {
					b.Error(err)
				}
				done.Add(1)
			}
		})
	}
	var dispatcher sync.WaitGroup
	dispatcher.Go(func() {
		for {
			m, err := iter.Next()
			if err != nil {
				close(jobs)
				return
			}
			jobs <- m
		}
	})
	for done.Load() < int64(b.N) {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("only %d of %d relayed", done.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	iter.Stop()
	dispatcher.Wait()
	workers.Wait()
}
