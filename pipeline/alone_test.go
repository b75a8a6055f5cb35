package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// aloneExpiry is the pull expiry of the clients of TestEnsureAlone (the
// shortest nats.go allows), so that each watched case takes 2.5 s.
const aloneExpiry = time.Second

// aloneConsumer returns a work-queue stream's durable consumer with n
// messages waiting, and the server, for other clients.
func aloneConsumer(t *testing.T, n int) (*server.Server, jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	ns, _, js := MustJetStream(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "REQ", Subjects: []string{"req.>"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, "REQ", jetstream.ConsumerConfig{Durable: "invoicer", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(ctx, "req.x", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	return ns, js, c
}

// otherClient connects another client to the consumer, as another
// instance would.
func otherClient(t *testing.T, ns *server.Server) (*nats.Conn, jetstream.Consumer) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := js.Consumer(context.Background(), "REQ", "invoicer")
	if err != nil {
		t.Fatal(err)
	}
	return nc, c
}

// TestEnsureAlone checks that a start is refused while another client
// pulls from the request consumer, idle or busy, and allowed after a
// predecessor stopped or crashed.
func TestEnsureAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("nobody else", func(t *testing.T) {
		_, _, c := aloneConsumer(t, 5)
		check, err := pipeline.EnsureAlone(ctx, c, aloneExpiry)
		if err != nil || check.Waited != 0 {
			t.Fatalf("EnsureAlone = %+v, %v; want no wait and no error", check, err)
		}
	})

	t.Run("another instance idle", func(t *testing.T) {
		ns, _, c := aloneConsumer(t, 0)
		_, other := otherClient(t, ns)
		it, err := other.Messages(jetstream.PullMaxMessages(8), jetstream.PullExpiry(aloneExpiry))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Stop()
		go func() {
			for {
				if _, err := it.Next(); err != nil {
					return
				}
			}
		}()
		waitWaiting(t, c)
		_, err = pipeline.EnsureAlone(ctx, c, aloneExpiry)
		if !errors.Is(err, pipeline.ErrConsumerInUse) {
			t.Fatalf("EnsureAlone = %v, want ErrConsumerInUse", err)
		}
	})

	t.Run("another instance busy", func(t *testing.T) {
		// A client that takes one message at a time and acknowledges it
		// at once: its pull requests are filled as soon as they arrive,
		// so that mostly none waits, but the deliveries go on.
		ns, _, c := aloneConsumer(t, 2000)
		_, other := otherClient(t, ns)
		wantRefusedWhile(ctx, t, c, func(busy context.Context) {
			for busy.Err() == nil {
				batch, err := other.Fetch(1, jetstream.FetchMaxWait(aloneExpiry))
				if err != nil {
					continue
				}
				for m := range batch.Messages() {
					_ = m.Ack()
					time.Sleep(2 * time.Millisecond)
				}
			}
		})
	})

	t.Run("another instance with its buffer full", func(t *testing.T) {
		// A client whose workers are all busy and whose pull buffer is
		// full, as pipeline.Loop's is under a backlog with a slow
		// provider: no pull request waits and nothing is delivered for
		// seconds, but its workers acknowledge what they finish.
		ns, _, c := aloneConsumer(t, 2000)
		_, other := otherClient(t, ns)
		batch, err := other.Fetch(200, jetstream.FetchMaxWait(aloneExpiry))
		if err != nil {
			t.Fatal(err)
		}
		wantRefusedWhile(ctx, t, c, func(busy context.Context) {
			for m := range batch.Messages() {
				if busy.Err() != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
				_ = m.Ack()
			}
		})
	})

	t.Run("a predecessor stopped", func(t *testing.T) {
		ns, _, c := aloneConsumer(t, 3)
		nc, other := otherClient(t, ns)
		it, err := other.Messages(jetstream.PullMaxMessages(8), jetstream.PullExpiry(aloneExpiry))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			m, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		it.Drain()
		nc.Close()
		if _, err := pipeline.EnsureAlone(ctx, c, aloneExpiry); err != nil {
			t.Fatalf("EnsureAlone = %v after a stop", err)
		}
	})

	t.Run("a predecessor crashed", func(t *testing.T) {
		// It took messages and never acknowledged them; the server saw its
		// connection close.
		ns, _, c := aloneConsumer(t, 4)
		nc, other := otherClient(t, ns)
		it, err := other.Messages(jetstream.PullMaxMessages(8), jetstream.PullExpiry(aloneExpiry))
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			if _, err := it.Next(); err != nil {
				t.Fatal(err)
			}
		}
		nc.Close()
		check, err := pipeline.EnsureAlone(ctx, c, aloneExpiry)
		if err != nil {
			t.Fatalf("EnsureAlone = %v after a crash", err)
		}
		if check.InFlight != 4 {
			t.Errorf("EnsureAlone = %+v, want the 4 messages in flight", check)
		}
	})

	t.Run("a predecessor's last pull request", func(t *testing.T) {
		// A predecessor whose connection the server believes open (its
		// host gone without a word) left a pull request, which waits
		// until it expires: EnsureAlone watches, and lets the start go on.
		ns, _, c := aloneConsumer(t, 0)
		nc, _ := otherClient(t, ns)
		inbox := nats.NewInbox()
		if _, err := nc.SubscribeSync(inbox); err != nil {
			t.Fatal(err)
		}
		req := fmt.Appendf(nil, `{"batch":8,"expires":%d}`, (aloneExpiry * 9 / 10).Nanoseconds())
		if err := nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT.REQ.invoicer", inbox, req); err != nil {
			t.Fatal(err)
		}
		waitWaiting(t, c)
		check, err := pipeline.EnsureAlone(ctx, c, aloneExpiry)
		if err != nil {
			t.Fatalf("EnsureAlone = %v with a pull request that expires", err)
		}
		if check.Waited < 2*aloneExpiry {
			t.Errorf("EnsureAlone = %+v, want a watch of two expiries", check)
		}
	})
}

// wantRefusedWhile runs work, another client's, until EnsureAlone has
// answered (then cancels its context and waits for it), and wants
// ErrConsumerInUse.
func wantRefusedWhile(ctx context.Context, t *testing.T, c jetstream.Consumer, work func(busy context.Context)) {
	t.Helper()
	busy, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(busy)
	}()
	defer func() { stop(); <-done }()
	if _, err := pipeline.EnsureAlone(ctx, c, aloneExpiry); !errors.Is(err, pipeline.ErrConsumerInUse) {
		t.Fatalf("EnsureAlone = %v, want ErrConsumerInUse", err)
	}
}

// waitWaiting waits until a pull request waits at the consumer.
func waitWaiting(t *testing.T, c jetstream.Consumer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ci, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumWaiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no pull request waits at the consumer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infoSequence is a consumer whose Info answers the given infos in turn.
type infoSequence struct {
	jetstream.Consumer
	infos []*jetstream.ConsumerInfo
}

func (s *infoSequence) Info(context.Context) (*jetstream.ConsumerInfo, error) {
	ci := s.infos[0]
	if len(s.infos) > 1 {
		s.infos = s.infos[1:]
	}
	return ci, nil
}

// TestEnsureAloneAcrossARecreatedDurable checks that a delivered count that
// goes down between the watch's two looks (the durable deleted and created
// again, or a new leader behind the old one) is not taken for deliveries.
func TestEnsureAloneAcrossARecreatedDurable(t *testing.T) {
	info := func(waiting int, delivered uint64) *jetstream.ConsumerInfo {
		return &jetstream.ConsumerInfo{Name: "invoicer", Stream: "REQ", NumWaiting: waiting, Delivered: jetstream.SequenceInfo{Consumer: delivered}}
	}
	c := &infoSequence{infos: []*jetstream.ConsumerInfo{info(1, 100), info(1, 100), info(0, 100), info(0, 5)}}
	check, err := pipeline.EnsureAlone(context.Background(), c, 8*time.Millisecond)
	if err != nil || check.Waited == 0 {
		t.Fatalf("EnsureAlone = %+v, %v; want a watch and no error", check, err)
	}
}

// durableOwners sets up the topology on a fresh server, js, for a test of
// the durable's owner: take makes the durable the owner's (as an
// instance's start does), owner reads the owner a consumer's metadata
// names. ctx ends with the test, within 30 s.
func durableOwners(t *testing.T) (ctx context.Context, js jetstream.JetStream, topo pipeline.Topology,
	take func(pipeline.Owner) jetstream.Consumer, owner func(jetstream.Consumer) string) {
	t.Helper()
	_, _, js = MustJetStream(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	topo = pipeline.Topology{MemoryStorage: true}
	if err := topo.Ensure(ctx, js); err != nil {
		t.Fatal(err)
	}
	take = func(o pipeline.Owner) jetstream.Consumer {
		c, err := topo.EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: 4, Owner: o})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	owner = func(c jetstream.Consumer) string {
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ci.Config.Metadata[pipeline.OwnerMetadataKey]
	}
	return ctx, js, topo, take, owner
}

// TestWatchOwner checks that of two instances that took the durable, the
// one that started first keeps it: it writes itself back, and the other's
// watch returns ErrDurableTaken naming it. A durable whose owner was
// edited away by hand is left alone.
func TestWatchOwner(t *testing.T) {
	ctx, js, topo, take, owner := durableOwners(t)
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	first := pipeline.Owner{Started: start, Name: "host-a /data pid 1"}
	second := pipeline.Owner{Started: start.Add(time.Second), Name: "host-b /data pid 2"}
	watch := func(c jetstream.Consumer, me pipeline.Owner) (chan error, context.CancelFunc) {
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- pipeline.WatchOwner(wctx, c, pipeline.OwnerWatch{Me: me, Interval: 50 * time.Millisecond,
				Reclaim: func(ctx context.Context) error {
					_, err := topo.EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: 4, Owner: me})
					return err
				},
				OnError: func(err error) { t.Logf("watch of %s: %v", me.Name, err) }}) // a slow look is no failure
		}()
		return done, stop
	}

	a := take(first)
	aDone, stopA := watch(a, first)
	defer stopA()
	b := take(second) // started at the same moment: it wrote itself over the first
	bDone, stopB := watch(b, second)
	defer stopB()
	select {
	case err := <-bDone:
		if !errors.Is(err, pipeline.ErrDurableTaken) || !strings.Contains(err.Error(), "host-a /data pid 1") {
			t.Fatalf("the later instance's watch = %v, want ErrDurableTaken naming the first", err)
		}
	case err := <-aDone:
		t.Fatalf("the first instance's watch returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the later instance's watch did not return")
	}
	deadline := time.Now().Add(5 * time.Second)
	for owner(a) != first.String() {
		if time.Now().After(deadline) {
			t.Fatalf("the durable's owner is %q, want the first instance written back", owner(a))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An owner removed by hand (nats consumer edit) is left as it is.
	if _, err := topo.EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: 4}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-aDone:
		t.Fatalf("the first instance's watch returned %v on a durable without owner", err)
	default:
	}
	if got := owner(a); got != "" {
		t.Errorf("the owner removed by hand was written back: %q", got)
	}
}

// cutOff is a consumer whose Info fails while off is set, as it does for an
// instance cut off from the server (a network partition, a frozen VM).
type cutOff struct {
	jetstream.Consumer
	off atomic.Bool
}

func (c *cutOff) Info(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	if c.off.Load() {
		return nil, nats.ErrConnectionClosed
	}
	return c.Consumer.Info(ctx)
}

// TestWatchOwnerLeavesTheDurableToASuccessor checks that an instance that
// was cut off from the server for long, and finds on its return that
// another instance has taken the durable meanwhile (its successor, started
// because it was gone), leaves the durable to it, although it started
// first: it does not write itself back, and its watch returns
// ErrDurableTaken naming the successor. An instance cut off for a moment
// still writes itself back over one that started later.
func TestWatchOwnerLeavesTheDurableToASuccessor(t *testing.T) {
	ctx, js, topo, take, owner := durableOwners(t)
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	zombie := pipeline.Owner{Started: start, Name: "host-a /data pid 1"}
	successor := pipeline.Owner{Started: start.Add(time.Hour), Name: "host-b /data pid 2"}
	c := &cutOff{Consumer: take(zombie)}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- pipeline.WatchOwner(wctx, c, pipeline.OwnerWatch{Me: zombie, Interval: 50 * time.Millisecond,
			Reclaim: func(ctx context.Context) error {
				_, err := topo.EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: 4, Owner: zombie})
				return err
			},
		})
	}()
	time.Sleep(200 * time.Millisecond) // it finds itself the owner
	c.off.Store(true)
	take(successor)
	time.Sleep(time.Second) // twenty looks fail
	c.off.Store(false)
	select {
	case err := <-done:
		if !errors.Is(err, pipeline.ErrDurableTaken) || !strings.Contains(err.Error(), "host-b /data pid 2") {
			t.Fatalf("the watch of the instance that was away = %v, want ErrDurableTaken naming its successor", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the instance that was away kept the durable from its successor: the owner is %q", owner(c.Consumer))
	}
	if got := owner(c.Consumer); got != successor.String() {
		t.Fatalf("the durable's owner is %q, want the successor %q", got, successor.String())
	}

	// Cut off for less than Away: the other is no successor (it started
	// beside this one), and this one writes itself back.
	c = &cutOff{Consumer: take(zombie)}
	wctx, stop = context.WithCancel(ctx)
	defer stop()
	go func() {
		done <- pipeline.WatchOwner(wctx, c, pipeline.OwnerWatch{Me: zombie, Interval: 50 * time.Millisecond, Away: time.Minute,
			Reclaim: func(ctx context.Context) error {
				_, err := topo.EnsureConsumer(ctx, js, pipeline.ConsumerSettings{Workers: 4, Owner: zombie})
				return err
			},
		})
	}()
	c.off.Store(true)
	take(successor)
	time.Sleep(time.Second)
	c.off.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for owner(c.Consumer) != zombie.String() {
		select {
		case err := <-done:
			t.Fatalf("the watch of an instance cut off for less than Away returned %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the durable's owner is %q, want the first instance written back", owner(c.Consumer))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ParseOwner reads back what Owner.String writes, names with spaces and
// nanoseconds included, and nothing else: a record edited by hand into
// another form is no owner.
func TestParseOwner(t *testing.T) {
	started := time.Date(2026, 12, 7, 3, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	written := pipeline.Owner{Started: started, Name: "invoicer-consumer host-a /var/lib/invoicer pid 7"}.String()
	got, ok := pipeline.ParseOwner(written)
	if !ok || !got.Started.Equal(started) || got.Name != "invoicer-consumer host-a /var/lib/invoicer pid 7" {
		t.Errorf("ParseOwner(%q) = %+v, %v; want the owner written", written, got, ok)
	}
	for name, record := range map[string]string{
		"none":           "",
		"no name":        "2026-12-06T19:00:00.123456789Z",
		"an empty name":  "2026-12-06T19:00:00.123456789Z ",
		"no time":        "host-a pid 7",
		"another format": "2026-12-06 19:00:00 host-a pid 7",
	} {
		if got, ok := pipeline.ParseOwner(record); ok {
			t.Errorf("%s: ParseOwner(%q) = %+v, want no owner", name, record, got)
		}
	}
}
