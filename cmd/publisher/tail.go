package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

type tailOptions struct {
	asJSON   bool
	sellers  []string
	statuses []string
	since    time.Duration
	all      bool
	count    int
	forDur   time.Duration
}

func newTailCommand(g *globals) *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow result events as they arrive",
		Long: `tail follows the result stream (<prefix>.result.<status>.<seller>) with a
JetStream ordered consumer: nothing is acknowledged or changed, any number of
tails can run at once.

By default it shows results published from now on, one line each: time,
status, seller:orderNo, kind, then the invoice numbers and total, or the
error code, [field] and message. --json prints each result event as it is
on the wire, one per line.

--since or --all start from the stream's history instead. A tail outlives a
restart of NATS, and follows a results stream made anew (another store, or
the stream deleted and made again) from its start, within a few seconds.
--count stops after that many results and --for after that long, from the
command's start (exit 1 if --count was not reached); otherwise tail runs
until interrupted.`,
		Example: `  publisher tail
  publisher tail --status rejected --status failed
  publisher tail --seller 339902999999789113 --since 1h
  publisher tail --all --json | jq -c 'select(.status=="issued") | .invoices'
  publisher tail --count 1 --for 30s --seller 91330106MA2AYNWD8M`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSellerFilter(cmd.Flags()); err != nil {
				return err
			}
			return runTail(cmd, g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.asJSON, "json", false, "print the result events as JSON lines")
	f.StringSliceVar(&o.sellers, "seller", nil, "only this seller's results (repeatable)")
	f.StringSliceVar(&o.statuses, "status", nil, "only results with this status (repeatable): "+joinStatuses())
	f.DurationVar(&o.since, "since", 0, "start with the results of this long ago, e.g. 30m")
	f.BoolVar(&o.all, "all", false, "start with every result the stream holds")
	f.Var(intflag.NewInt(&o.count, 0), "count", "exit after this many results")
	f.DurationVar(&o.forDur, "for", 0, "exit after this long")
	return cmd
}

func joinStatuses() string {
	s := make([]string, len(schemas.Statuses))
	for i, st := range schemas.Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

func runTail(cmd *cobra.Command, g *globals, o tailOptions) error {
	switch {
	case o.all && o.since > 0:
		return usageError("--all and --since exclude each other")
	case o.since < 0 || o.forDur < 0 || o.count < 0:
		return usageError("--since, --for and --count must not be negative")
	}
	var statuses []schemas.Status
	for _, st := range o.statuses {
		if !schemas.Status(st).Valid() {
			return usageError("--status %q: not one of %s", st, joinStatuses())
		}
		if !slices.Contains(statuses, schemas.Status(st)) {
			statuses = append(statuses, schemas.Status(st))
		}
	}
	var sellers []string
	for _, s := range o.sellers {
		for _, t := range sellerTokens(s) {
			if !slices.Contains(sellers, t) {
				sellers = append(sellers, t)
			}
		}
	}

	ctx := cmd.Context()
	if o.forDur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.forDur)
		defer cancel()
	}
	// ended is how tail ends after n results: with --count not reached,
	// exit 1 saying why.
	ended := func(n int) error {
		if o.count > 0 && n < o.count {
			why := "interrupted"
			if o.forDur > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = "--for " + o.forDur.String() + " elapsed"
			}
			return &exitError{code: exitFailed, err: fmt.Errorf("%s after %d of %d results", why, n, o.count)}
		}
		return nil
	}
	// forUp reports whether --for's time is up (not the command's own
	// context's). --for bounds the whole run, its start included: a start
	// it cuts short (a slow server, a loaded machine) ends tail as --for
	// does later, not as a server that did not answer.
	forUp := func() bool {
		return o.forDur > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && cmd.Context().Err() == nil
	}
	reconnected := make(chan struct{}, 1)
	s, err := g.connect(following(cmd.ErrOrStderr(), func() {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	})...)
	if err != nil {
		return err
	}
	defer s.Close()
	stream, err := s.stream(ctx, s.subjects.ResultFilter(), "results")
	if err != nil {
		if forUp() {
			return ended(0)
		}
		return err
	}
	filters := resultFilters(s.subjects, statuses, sellers)
	iter, _, err := s.follow(ctx, stream, filters, orderedFrom{all: o.all, since: o.since})
	if err != nil {
		if forUp() {
			return ended(0)
		}
		return err
	}
	// Stopping waits for a reset of the ordered consumer in progress, which
	// may retry for as long as the stream is missing.
	defer func() { go iter.Stop() }()
	created := stream.CachedInfo().Created
	// The results stream may be made anew (another store after a restart
	// of NATS, or deleted and made again while NATS stays up): its
	// sequences start again, and the ordered consumer would go on after
	// the old stream's last one. watchStream looks at it after each
	// reconnection and every streamCheckEvery.
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	remade := make(chan jetstream.Stream, 1)
	go watchStream(watchCtx, s, reconnected, remade)

	type nextMsg struct {
		m   jetstream.Msg
		err error
	}
	var next chan nextMsg
	out := cmd.OutOrStdout()
	n := 0
	for o.count == 0 || n < o.count {
		if next == nil {
			// Next does not return on ctx while it recreates the ordered
			// consumer (NATS back, the stream not): wait for ctx beside it.
			next = make(chan nextMsg, 1)
			go func(it jetstream.MessagesContext, c chan<- nextMsg) {
				m, err := it.Next(jetstream.NextContext(ctx))
				c <- nextMsg{m, err}
			}(iter, next)
		}
		var r nextMsg
		select {
		case r = <-next:
			next = nil
		case <-ctx.Done():
			r.err = ctx.Err()
		case st := <-remade:
			if st.CachedInfo().Created.Equal(created) {
				continue
			}
			// Its sequences start again: follow it from its start.
			go iter.Stop()
			created = st.CachedInfo().Created
			if iter, _, err = s.follow(ctx, st, filters, orderedFrom{all: true}); err != nil {
				if forUp() {
					return ended(n)
				}
				return err
			}
			next = nil
			continue
		}
		m, err := r.m, r.err
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				// Not stopped by the user: the connection closed.
				return &exitError{code: exitTrouble, err: fmt.Errorf("stopped following the results after %d: the connection to NATS closed (%v)", n, s.nc.LastError())}
			}
			return s.jsError(err, "follow the results")
		}
		n++
		if o.asJSON {
			if _, err := out.Write(append(m.Data(), '\n')); err != nil {
				return err
			}
			continue
		}
		var res schemas.Result
		var stored time.Time
		if meta, err := m.Metadata(); err == nil {
			stored = meta.Timestamp
		}
		if err := json.Unmarshal(m.Data(), &res); err != nil {
			fmt.Fprintf(out, "%s  (unreadable result on %s: %v) %s\n", fmtTime(stored), m.Subject(), err, cut(string(m.Data()), 200))
			continue
		}
		fmt.Fprintln(out, resultLine(&res, stored))
	}
	return ended(n)
}

// streamCheckEvery is how often tail looks for a results stream made anew
// without a reconnection.
const streamCheckEvery = 5 * time.Second

// watchStream sends the results stream's current state to remade after
// each signal on reconnected and every streamCheckEvery, retrying each
// second while it cannot be read (NATS away, the stream not made yet),
// until ctx ends. A send that finds remade full is dropped: the next look
// sends again.
func watchStream(ctx context.Context, s *session, reconnected <-chan struct{}, remade chan<- jetstream.Stream) {
	tick := time.NewTicker(streamCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
		case <-tick.C:
		}
		for {
			st, err := s.stream(ctx, s.subjects.ResultFilter(), "results")
			if err == nil {
				select {
				case remade <- st:
				default:
				}
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}
