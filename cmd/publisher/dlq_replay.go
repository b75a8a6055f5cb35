package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

type replayOptions struct {
	seqs           []uint
	reason, seller string
	all            bool
	since          time.Duration
	dryRun         bool
}

func newDLQReplayCommand(g *globals) *cobra.Command {
	var o replayOptions
	cmd := &cobra.Command{
		Use:   "replay (--seq N... | --reason R | --seller S | --all) [--dry-run]",
		Short: "Republish dead letters' requests to the consumer",
		Long: `replay republishes the request of each selected dead letter to
<prefix>.request.<seller>, the seller being the one of the dead letter's
original subject (its tax number in capitals), with the original headers
except:
  Nats-Msg-Id        replay:<dead-letter stream>:<dead-letter seq>:<its stored
                     time, Unix ns> (new, so the request stream does not drop it
                     as a duplicate of the original)
  Invoice-Replay-Of  <dead-letter seq>
  Invoice-Replay-Published
                     when the request first entered the request stream (the
                     dead letter's publishedAt; for the dead letter of a
                     replay, the time that replay carried): an order record
                     the replay starts keeps it, so that a copy of an older
                     request delivered later is not submitted over it
  Invoice-Replay-Position
                     where the request was in the request stream: its
                     stream, its sequence and the creation of the durable
                     that delivered it (the dead letter's header
                     Invoice-Original-Consumer-Created; for the dead letter
                     of a replay, the position that replay carried; left out
                     when not known), so that the consumer orders the replay
                     by stream sequence against a request the same durable
                     delivered, not by the servers' clocks
  Invoicer-Headers-Cut
                     left out: the consumer's mark, in a dead letter, that
                     some of the original headers did not fit; on the
                     replayed request it would mean nothing, and the
                     replay's own dead letter would say its headers were
                     cut when they were not
Then it marks the dead letter replayed in the key-value bucket
` + ReplayBucket + ` (key: the sequence; value: when, the new request's
sequence, who, and the dead letter's stored time, so that a dead-letter
stream deleted and created again, which numbers its dead letters afresh, does
not take a new dead letter for an old one). A dead letter already marked is
skipped: replaying twice does nothing. Of two replays racing on the same dead
letter, the request stream keeps one request (same Nats-Msg-Id) and only one
replay marks it; the replay whose request the stream kept reports it
replayed, the other that it was replayed already. A replay whose request the
stream already held (another replay published it and has not marked it, or
could not) publishes nothing, marks it and reports it replayed already.

Replaying is safe: the consumer's order store guarantees that an order never
gets a second invoice. A request whose order was issued meanwhile is answered
with its stored result; a "failed" order resumes, the consumer asking the
provider about it before submitting anything. A request that a later,
different request for its order replaced (a correction, started over since)
is not submitted: it gets a conflict result saying it was superseded.

A malformed message is dead-lettered again when replayed, unless what made
it unreadable changed (a consumer built since reads it); a replay scan stops
at the end of the stream as it was when it began, so it never replays what
it caused.

Dead letters whose payload was truncated (larger than the consumer's request
limit) cannot be replayed, even after the limit is raised: the dead letter
keeps the payload only up to the limit it broke. They are reported, and the
order system must send the request again. --reason and --seller may be combined, and --since narrows
any selection but --seq.

Exit status: 0 everything selected was replayed or had been, 1 something was
not replayable or could not be replayed, 2 usage error, 3 NATS unreachable.`,
		Example: `  publisher dlq replay --seq 42
  publisher dlq replay --seq 42 --seq 43
  publisher dlq replay --reason exhausted --seller 91330106MA2AYNWD8M --dry-run
  publisher dlq replay --all --since 2h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSellerFilter(cmd.Flags()); err != nil {
				return err
			}
			if err := o.check(); err != nil {
				return err
			}
			return runReplay(cmd.Context(), g, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.UintSliceVar(&o.seqs, "seq", nil, "the dead letter with this sequence (repeatable, or comma separated)")
	f.StringVar(&o.reason, "reason", "", "every dead letter with this reason: malformed, exhausted or action_required")
	f.StringVar(&o.seller, "seller", "", "every dead letter of this seller")
	f.BoolVar(&o.all, "all", false, "every dead letter")
	f.DurationVar(&o.since, "since", 0, "only dead letters of the last DURATION (with --reason, --seller or --all)")
	f.BoolVar(&o.dryRun, "dry-run", false, "list what would be replayed; publish and mark nothing")
	return cmd
}

func (o replayOptions) check() error {
	if err := checkReason(o.reason); err != nil {
		return err
	}
	byFilter := o.reason != "" || o.seller != ""
	switch {
	case len(o.seqs) > 0 && (o.all || byFilter || o.since > 0):
		return usageError("--seq selects dead letters by sequence: it does not combine with --all, --reason, --seller or --since")
	case o.all && byFilter:
		return usageError("--all selects every dead letter: drop --reason and --seller, or --all")
	case len(o.seqs) == 0 && !o.all && !byFilter:
		return usageError("say which dead letters to replay: --seq N, --reason R, --seller S or --all")
	case o.since < 0:
		return usageError("--since must not be negative")
	}
	for _, s := range o.seqs {
		if s == 0 {
			return usageError("--seq 0: sequences start at 1")
		}
	}
	return nil
}

// replayTally counts what happened to the selected dead letters.
type replayTally struct {
	replayed, already, unreplayable, failed int
}

func runReplay(ctx context.Context, g *globals, o replayOptions, out io.Writer) error {
	s, err := g.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	stream, err := s.dlqStream(ctx)
	if err != nil {
		return err
	}
	if _, err := s.stream(ctx, s.subjects.RequestFilter(), "requests"); err != nil {
		return err
	}
	kv, err := s.replayBook(ctx, stream, !o.dryRun)
	if err != nil {
		return err
	}
	r := &replayer{s: s, kv: kv, dlqName: stream.CachedInfo().Config.Name, dryRun: o.dryRun, out: out, by: whoAmI()}
	if err := r.run(ctx, stream, o); err != nil {
		// The run stopped short (NATS lost, interrupted): what it did so
		// far is counted all the same, before the error.
		r.summary()
		return err
	}
	if r.summary() {
		return &exitError{code: exitFailed}
	}
	return nil
}

// run replays the dead letters o selects.
func (r *replayer) run(ctx context.Context, stream jetstream.Stream, o replayOptions) error {
	s := r.s
	if len(o.seqs) > 0 {
		seen := map[uint]bool{}
		for _, seq := range o.seqs {
			if seen[seq] { // --seq 42 --seq 42: one dead letter, counted once
				continue
			}
			seen[seq] = true
			e, err := s.getDeadLetter(ctx, stream, uint64(seq))
			var ee *exitError
			if errors.As(err, &ee) && ee.code == exitFailed {
				fmt.Fprintf(r.out, "#%d: %v\n", seq, ee.err)
				r.t.failed++
				continue
			}
			if err != nil {
				return err
			}
			if err := r.replay(ctx, e); err != nil {
				return err
			}
		}
	} else {
		from := orderedFrom{all: o.since == 0, since: o.since}
		if err := s.scanDeadLetters(ctx, stream, dlqFilters(s.subjects, o.reason, o.seller), from, func(e deadEntry) error {
			return r.replay(ctx, e)
		}); err != nil {
			return err
		}
	}
	return nil
}

// summary prints the counts of the run and reports whether any dead letter
// was not replayable or failed.
func (r *replayer) summary() bool {
	verb := "replayed"
	if r.dryRun {
		verb = "would replay"
	}
	fmt.Fprintf(r.out, "%s %d, already replayed %d, not replayable %d, failed %d (%s on %s)\n", verb, r.t.replayed, r.t.already, r.t.unreplayable, r.t.failed, r.dlqName, r.s.where())
	return r.t.unreplayable > 0 || r.t.failed > 0
}

// replayer replays dead letters one at a time.
type replayer struct {
	s       *session
	kv      jetstream.KeyValue // nil in a dry run when the bucket does not exist
	dlqName string
	dryRun  bool
	out     io.Writer
	by      string
	t       replayTally
}

// replay replays one dead letter and reports it. Its error is returned only
// when the run cannot go on (NATS lost); problems with the dead letter are
// reported and counted.
func (r *replayer) replay(ctx context.Context, e deadEntry) error {
	head := fmt.Sprintf("#%d", e.Seq)
	dl := e.DL
	if dl == nil {
		fmt.Fprintf(r.out, "%s: not replayable: not a dead letter (%v)\n", head, e.DecodeErr)
		r.t.unreplayable++
		return nil
	}
	head += fmt.Sprintf(" %s %s:%s", dl.Reason, orEmpty(dl.SellerTaxNum), orEmpty(dl.OrderNo))
	mark, stale, err := r.s.markOf(ctx, r.kv, e.Seq, e.Stored)
	if err != nil {
		return err
	}
	if mark != nil {
		fmt.Fprintf(r.out, "%s: skipped: already replayed at %s\n", head, mark)
		r.t.already++
		return nil
	}
	if dl.PayloadTruncated {
		fmt.Fprintf(r.out, "%s: not replayable: the payload was truncated (%d of %d bytes kept); the order system must send the request again\n", head, len(dl.Payload), dl.PayloadSize)
		r.t.unreplayable++
		return nil
	}
	seller := r.s.subjects.SellerOf(dl.OriginalSubject)
	if seller == "" {
		fmt.Fprintf(r.out, "%s: not replayable: the original subject %q is not a request subject under --prefix %s\n", head, dl.OriginalSubject, r.s.g.prefix)
		r.t.unreplayable++
		return nil
	}
	// On the subject of the seller's tax number as the consumer writes it,
	// whatever spelling the original was published on.
	msg := &nats.Msg{Subject: r.s.subjects.Request(sellerToken(seller)), Data: dl.Payload, Header: replayHeaders(dl.Headers)}
	// The id names this dead letter, not only its number: a stream deleted
	// and created again numbers its dead letters afresh.
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("replay:%s:%d:%d", r.dlqName, e.Seq, e.Stored.UnixNano()))
	msg.Header.Set(pipeline.HeaderReplayOf, strconv.FormatUint(e.Seq, 10))
	// When the request first entered the request stream, which the
	// replay's own publication is not: the order record it starts keeps it.
	if published := pipeline.ReplayPublished(dl); published != "" {
		msg.Header.Set(pipeline.HeaderReplayPublished, published)
	}
	// And where it was, with the durable that delivered it, which the
	// dead letter's headers say: the consumer orders the replay against
	// the order's record by their stream sequences when the same durable
	// delivered both, not by the stream leaders' clocks.
	if position := pipeline.ReplayPosition(dl, e.Header); position != "" {
		msg.Header.Set(pipeline.HeaderReplayPosition, position)
	}
	if r.dryRun {
		fmt.Fprintf(r.out, "%s: would replay to %s (%d bytes)\n", head, msg.Subject, len(dl.Payload))
		r.t.replayed++
		return nil
	}

	pctx, cancel := r.s.ctx(ctx)
	ack, err := r.s.js.PublishMsg(pctx, msg)
	cancel()
	if err != nil {
		fmt.Fprintf(r.out, "%s: failed: publish to %s: %v\n", head, msg.Subject, r.s.pubError(err))
		r.t.failed++
		if errors.Is(err, nats.ErrConnectionClosed) {
			return r.s.jsError(err, "replay")
		}
		return nil
	}
	value, err := json.Marshal(replayMark{ReplayedAt: time.Now().UTC(), RequestSeq: ack.Sequence, By: r.by, DeadLetterStored: e.Stored})
	if err != nil {
		return err
	}
	kctx, cancel := r.s.ctx(ctx)
	if stale != 0 {
		// Another dead letter's mark under this number: replaced, unless
		// a concurrent replay replaced it first.
		_, err = r.kv.Update(kctx, replayKey(e.Seq), value, stale)
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			if m, _, gerr := r.s.markOf(ctx, r.kv, e.Seq, e.Stored); gerr == nil && m != nil {
				err = jetstream.ErrKeyExists
			}
		}
	} else {
		_, err = r.kv.Create(kctx, replayKey(e.Seq), value)
	}
	cancel()
	// Of two replays of this dead letter at once, the request stream keeps
	// the request published first (the other's publish is a duplicate of
	// its Nats-Msg-Id), and either may mark the dead letter first: the
	// replay whose request the stream kept is the one that replayed it.
	switch {
	case errors.Is(err, jetstream.ErrKeyExists) && !ack.Duplicate:
		by := "another replay"
		if mark, _ := r.s.getMark(ctx, r.kv, e.Seq, e.Stored); mark != nil {
			by = orEmpty(mark.By)
		}
		fmt.Fprintf(r.out, "%s: replayed to %s as %s #%d (marked replayed by a replay running at the same time, by %s)\n", head, msg.Subject, ack.Stream, ack.Sequence, by)
		r.t.replayed++
	case errors.Is(err, jetstream.ErrKeyExists):
		mark, _ := r.s.getMark(ctx, r.kv, e.Seq, e.Stored)
		when := "the same moment"
		if mark != nil {
			when = mark.String()
		}
		fmt.Fprintf(r.out, "%s: skipped: already replayed at %s (by a concurrent replay)\n", head, when)
		r.t.already++
	case err != nil:
		fmt.Fprintf(r.out, "%s: republished as %s #%d but not marked replayed: %v (replaying it again within the stream's duplicate window republishes nothing)\n", head, ack.Stream, ack.Sequence, err)
		r.t.failed++
	case ack.Duplicate:
		// The stream held this dead letter's request already: another
		// replay published it within the duplicate window and has not
		// marked it, because it is running now or because its mark
		// failed. This one published nothing, and marks it.
		fmt.Fprintf(r.out, "%s: skipped: already republished as %s #%d by another replay of it (one running at the same time, or an earlier one that could not mark it); the stream dropped this copy as a duplicate, and the dead letter is marked replayed now\n", head, ack.Stream, ack.Sequence)
		r.t.already++
	default:
		fmt.Fprintf(r.out, "%s: replayed to %s as %s #%d\n", head, msg.Subject, ack.Stream, ack.Sequence)
		r.t.replayed++
	}
	return nil
}

// replayHeaders copies a dead letter's original headers for the replayed
// request, without the JetStream publish expectations (Nats-Expected-*),
// which were for the original publish and would make this one fail,
// without the message id and the replay's own headers, which the replay
// sets anew, and without the dead letter's mark of headers cut
// (pipeline.HeadersCutHeader). That mark describes the dead letter, not
// the request: the consumer reads it nowhere on a request, but a dead
// letter keeps a request's headers as they are when they fit, and the
// replay's would say that bytes of its headers were left out when none
// were (the headers the first cut left out are gone all the same: the
// first dead letter says so).
func replayHeaders(h map[string][]string) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Nats-Expected-") || k == jetstream.MsgIDHeader || k == pipeline.HeaderReplayOf || k == pipeline.HeaderReplayPublished || k == pipeline.HeaderReplayPosition ||
			k == pipeline.HeadersCutHeader {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}
