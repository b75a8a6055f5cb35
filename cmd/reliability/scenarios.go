package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"golang.org/x/sys/unix"
)

// providerFaultsMinOrders is the fewest orders of provider-faults, in both
// modes: the sandbox's fault generator (--fault-seed 42, the same decisions
// for the same sequence of calls, whichever call each is) first delays a
// call past the client's timeout at the 87th call, and every order makes at
// least one call (TestProviderFaultsMinimumMeetsEveryFault); the rate
// limit's burst is passed by the first calls at once, from 50 orders in
// the full mode on in the runs tried.
const providerFaultsMinOrders = 100

// scenarios are run in this order; each gets fresh processes and data.
var scenarios = []scenario{
	{
		name: "sigkill",
		what: "the consumer killed with SIGKILL at random moments during the run, and restarted each time",
		cfg: func(s sizes) worldConfig {
			return worldConfig{sandboxArgs: []string{"--latency", "5ms", "--nuonuo-pending-queries", "1", "--jumdata-pending-polls", "1"}, consumerArgs: []string{"--workers", "16"}}
		},
		// The publishing spans about 2 s per kill (kills+1 spans in all,
		// whatever the number of orders): with an order published at least
		// every half second, each kill, 0.5 s or more after the one
		// before, finds orders arriving.
		minOrders: func(s sizes) int { return 4 * (s.kills + 1) },
		play: func(ctx context.Context, r *run) error {
			pause := time.Duration(int64(time.Second) * int64(r.sizes.kills+1) * 2 / int64(r.sizes.orders)) // spread over ~2 s per kill
			var wg sync.WaitGroup
			var pubErr error
			wg.Go(func() { pubErr = r.publishOrders(ctx, "K", r.sizes.orders, 4, pause*4) })
			for i := range r.sizes.kills {
				time.Sleep(time.Duration(500+r.rng.IntN(1500)) * time.Millisecond)
				r.log("SIGKILL #%d", i+1)
				if err := r.w.killConsumer(ctx); err != nil {
					return err
				}
			}
			wg.Wait()
			r.notes = append(r.notes, fmt.Sprintf("%d SIGKILLs", r.sizes.kills))
			return pubErr
		},
	},
	{
		name: "nats-restart",
		what: "the NATS server (external mode) stopped and restarted mid-run",
		cfg: func(s sizes) worldConfig {
			return worldConfig{sandboxArgs: []string{"--latency", "5ms"}, consumerArgs: []string{"--workers", "16"}}
		},
		// The publishing spans about 3 s per restart: with an order
		// published at least every half second, orders arrive before each
		// stop (0.7 s or more after the start), while the server is down
		// (2 s) and after it is back.
		minOrders: func(s sizes) int { return 6 * (s.restarts + 1) },
		play: func(ctx context.Context, r *run) error {
			var wg sync.WaitGroup
			var pubErr error
			pause := time.Duration(int64(time.Second) * int64(r.sizes.restarts+1) * 3 / int64(r.sizes.orders))
			wg.Go(func() { pubErr = r.publishOrders(ctx, "N", r.sizes.orders, 4, pause*4) })
			for i := range r.sizes.restarts {
				time.Sleep(time.Duration(700+r.rng.IntN(1000)) * time.Millisecond)
				r.log("stopping the NATS server (#%d)", i+1)
				if err := r.w.nats.kill(syscall.SIGTERM, 20*time.Second); err != nil {
					return err
				}
				time.Sleep(2 * time.Second)
				if err := r.w.nats.start(); err != nil {
					return err
				}
				if err := waitTCP(r.w.natsAddr, 20*time.Second); err != nil {
					return err
				}
			}
			wg.Wait()
			r.notes = append(r.notes, fmt.Sprintf("%d restarts", r.sizes.restarts))
			return pubErr
		},
	},
	{
		name: "provider-faults",
		what: "sandbox faults: 10% HTTP 5xx (Retry-After: 1), 5% accept-then-drop, latency spikes beyond the client timeout, bursts of 609/070201",
		cfg: func(s sizes) worldConfig {
			return worldConfig{
				sandboxArgs: []string{"--fault-seed", "42", "--fault-5xx", "0.10", "--fault-retry-after", "1s", "--fault-drop", "0.05", "--fault-spike-rate", "0.02",
					"--fault-spike", "3s", "--rate-limit", strconv.Itoa(s.rateLimit), "--rate-burst", strconv.Itoa(s.rateBurst), "--nuonuo-pending-queries", "1"},
				consumerArgs: []string{"--workers", "32", "--max-deliver", "100"},
			}
		},
		// Each kind of fault must be injected (check): see
		// providerFaultsMinOrders.
		minOrders: func(sizes) int { return providerFaultsMinOrders },
		play: func(ctx context.Context, r *run) error {
			return r.publishOrders(ctx, "F", r.sizes.orders, 8, 0)
		},
	},
	{
		name: "hostile",
		what: "a hostile-input corpus interleaved with valid requests",
		cfg: func(s sizes) worldConfig {
			return worldConfig{maxBytes: 256 << 10, consumerArgs: []string{"--workers", "16"}}
		},
		// A third of the orders are the valid ones among the corpus: at
		// least one for each seller.
		minOrders: func(sizes) int { return 3 * len(allSellers) },
		play: func(ctx context.Context, r *run) error {
			corpus := hostileCorpus(r.rng, allSellers[0], "H", 256<<10)
			type item struct {
				h     *hostileMessage
				valid int
			}
			var items []item
			for i := range corpus {
				items = append(items, item{h: &corpus[i]})
			}
			for i := range r.sizes.orders / 3 {
				items = append(items, item{valid: i + 1})
			}
			r.rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
			rng := rand.New(rand.NewPCG(7, 7))
			for _, it := range items {
				if it.h == nil {
					seller := allSellers[it.valid%len(allSellers)]
					if err := r.publishValid(ctx, seller, fmt.Sprintf("V-%05d", it.valid), rng); err != nil {
						return err
					}
					continue
				}
				subject := it.h.subject
				if subject == "" {
					subject = schemas.Subjects{}.Request(allSellers[0])
				}
				seq, err := r.w.publish(ctx, subject, it.h.data, "")
				if err != nil {
					return fmt.Errorf("hostile %q: %w", it.h.name, err)
				}
				r.l.mu.Lock()
				r.l.hostile[seq] = *it.h
				r.l.messages++
				r.l.mu.Unlock()
			}
			r.notes = append(r.notes, fmt.Sprintf("%d hostile messages", len(corpus)))
			return nil
		},
	},
	{
		name: "same-order",
		what: "the same order published 100 times concurrently, and again with a different body",
		cfg: func(s sizes) worldConfig {
			return worldConfig{sandboxArgs: []string{"--latency", "20ms"}, consumerArgs: []string{"--workers", "32"}}
		},
		// A third of the orders are the ordinary ones published alongside
		// the repeated ones: at least one for each seller.
		minOrders: func(sizes) int { return 3 * len(allSellers) },
		play: func(ctx context.Context, r *run) error {
			var bg sync.WaitGroup
			var bgErr error
			bg.Go(func() { bgErr = r.publishOrders(ctx, "B", r.sizes.orders/3, 2, 0) })
			for k := range r.sizes.sameKeys {
				seller := allSellers[k%len(allSellers)]
				orderNo := fmt.Sprintf("SAME-%02d", k)
				key := schemas.OrderKey{Seller: seller, OrderNo: orderNo}
				body := validRequest(rand.New(rand.NewPCG(uint64(k), 1)), seller, orderNo, "同一订单")
				// Half with the idempotency key (the stream keeps one), half
				// without (the stream keeps every copy; the order store must).
				var wg sync.WaitGroup
				errs := make(chan error, r.sizes.sameN)
				for i := range r.sizes.sameN {
					wg.Go(func() {
						id := ""
						if i%2 == 0 {
							id = seller + ":" + orderNo
						}
						seq, err := r.w.publish(ctx, schemas.Subjects{}.Request(seller), body, id)
						if err != nil {
							errs <- err
							return
						}
						r.l.addValid(key, seq)
					})
				}
				wg.Wait()
				close(errs)
				if err := <-errs; err != nil {
					return err
				}
			}
			// Once issued, the same order numbers again with a different body.
			deadline := time.Now().Add(r.sizes.timeout / 2)
			for k := range r.sizes.sameKeys {
				seller := allSellers[k%len(allSellers)]
				key := schemas.OrderKey{Seller: seller, OrderNo: fmt.Sprintf("SAME-%02d", k)}
				for {
					results, _, _, _ := r.w.col.snapshot()
					if hasStatus(results[key], schemas.StatusIssued) {
						break
					}
					if time.Now().After(deadline) {
						return fmt.Errorf("%s not issued in time", key)
					}
					time.Sleep(100 * time.Millisecond)
				}
				other := validRequest(rand.New(rand.NewPCG(uint64(k), 2)), seller, key.OrderNo, "另一个买方")
				var wg sync.WaitGroup
				for i := range r.sizes.sameN / 10 {
					wg.Go(func() {
						seq, err := r.w.publish(ctx, schemas.Subjects{}.Request(seller), other, "other-body-"+strconv.Itoa(i)+"-"+key.String())
						if err == nil {
							r.l.mu.Lock()
							r.l.conflict[key] = append(r.l.conflict[key], seq)
							r.l.messages++
							r.l.mu.Unlock()
						}
					})
				}
				wg.Wait()
			}
			bg.Wait()
			r.notes = append(r.notes, fmt.Sprintf("%d orders × %d copies, then %d different bodies each", r.sizes.sameKeys, r.sizes.sameN, r.sizes.sameN/10))
			return bgErr
		},
	},
	{
		name: "disk-full",
		what: "the order store's file cannot grow (RLIMIT_FSIZE): the consumer stops acking and reports unready, then recovers",
		cfg: func(s sizes) worldConfig {
			return worldConfig{sandboxArgs: []string{"--latency", "2ms"}, consumerArgs: []string{"--workers", "16"}}
		},
		// Half the orders are written to the store before the fault: at
		// least one for each seller.
		minOrders: func(sizes) int { return 2 * len(allSellers) },
		play: func(ctx context.Context, r *run) error {
			if err := r.publishOrders(ctx, "D1", r.sizes.orders/2, 4, 0); err != nil {
				return err
			}
			if err := r.waitSettled(ctx); err != nil {
				return fmt.Errorf("before the fault: %w", err)
			}
			db := filepath.Join(r.w.dir, "consumer", "orders.db")
			limit := uint64(fileSize(db))
			pid := r.w.consumer.pid()
			if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: unix.RLIM_INFINITY}, nil); err != nil {
				return fmt.Errorf("set RLIMIT_FSIZE of the consumer (needs CAP_SYS_RESOURCE or the same user): %w", err)
			}
			lifted := false
			lift := func() error {
				if lifted {
					return nil
				}
				lifted = true
				return unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil)
			}
			// A failed check below must not leave the consumer unable to
			// write: the scenario's invariants are checked after play.
			defer func() { _ = lift() }()
			r.log("order store limited to its current size, %d bytes", limit)
			// Keep sending until the store has to grow and fails.
			failed := false
			for i := 0; i < 50 && !failed; i++ {
				if err := r.publishOrders(ctx, fmt.Sprintf("D2%02d", i), 100, 4, 0); err != nil {
					return err
				}
				for j := 0; j < 20; j++ {
					if r.w.ready(ctx) == 503 {
						failed = true
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !failed {
				return fmt.Errorf("the store never failed to grow past %d bytes", limit)
			}
			// Work that was past the pause when the first commit failed may
			// still commit (in pages bbolt freed earlier) and publish its
			// result: that is durable and correct. Let it finish.
			time.Sleep(time.Second)
			_, before, _, _ := r.w.col.snapshot()
			pendingBefore, _ := r.w.requestsPending(ctx)
			time.Sleep(3 * time.Second)
			_, after, _, _ := r.w.col.snapshot()
			pendingAfter, _ := r.w.requestsPending(ctx)
			if len(after) != len(before) {
				return fmt.Errorf("results published while the store could not write: %d then %d", len(before), len(after))
			}
			if pendingAfter < pendingBefore || pendingAfter == 0 {
				return fmt.Errorf("requests acknowledged while the store could not write: %d pending, then %d", pendingBefore, pendingAfter)
			}
			if code := r.w.ready(ctx); code != 503 {
				return fmt.Errorf("/readyz answered %d while the store could not write", code)
			}
			r.notes = append(r.notes, fmt.Sprintf("unready with %d requests held", pendingAfter))
			if err := lift(); err != nil {
				return err
			}
			r.log("limit lifted")
			return waitHTTP(ctx, "http://"+r.w.httpAddr+"/readyz", 200, 30*time.Second)
		},
	},
}
