package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// ReplayBucket is the JetStream key-value bucket that records which dead
// letters were replayed: key = the dead letter's stream sequence, value = a
// replayMark.
const ReplayBucket = "INVOICE_DLQ_REPLAYS"

func newDLQCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show and replay dead letters",
		Long: `dlq works the dead-letter stream (<prefix>.dlq.<reason>.<seller>): requests
the consumer gave up on (reason exhausted or action_required, after its
delivery limit; each also got a "failed" result) and messages it could not
read at all (reason malformed).

Replays are recorded in the key-value bucket ` + ReplayBucket + `, so that
a dead letter is replayed once.`,
		Example: `  publisher dlq list --since 24h
  publisher dlq show 42
  publisher dlq replay --seq 42
  publisher dlq replay --reason exhausted --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError("dlq needs a subcommand: list, show or replay (see publisher dlq --help)")
		},
	}
	cmd.AddCommand(newDLQListCommand(g), newDLQShowCommand(g), newDLQReplayCommand(g))
	return cmd
}

// replayMark is the value stored in ReplayBucket for a replayed dead letter.
type replayMark struct {
	// ReplayedAt is when the request was republished.
	ReplayedAt time.Time `json:"replayedAt"`
	// RequestSeq is the republished request's sequence in the request stream.
	RequestSeq uint64 `json:"requestSeq"`
	// By is who replayed it: user@host.
	By string `json:"by"`
	// DeadLetterStored is when the dead letter replayed was stored: a mark
	// under the same sequence for another dead letter (the stream deleted
	// and created again) is not its. Zero in marks written before it was
	// kept; such a mark is not a dead letter's stored after it was made.
	DeadLetterStored time.Time `json:"deadLetterStored,omitzero"`
}

// of reports whether m marks the dead letter stored at stored.
func (m *replayMark) of(stored time.Time) bool {
	if !m.DeadLetterStored.IsZero() {
		return m.DeadLetterStored.Equal(stored)
	}
	return stored.IsZero() || !m.ReplayedAt.Before(stored)
}

func (m *replayMark) String() string {
	return fmt.Sprintf("%s (request #%d, by %s)", fmtTime(m.ReplayedAt), m.RequestSeq, orEmpty(m.By))
}

// deadEntry is one message of the dead-letter stream.
type deadEntry struct {
	Seq     uint64
	Stored  time.Time
	Subject string
	Header  nats.Header
	Data    []byte
	// DL is the decoded dead letter; nil when Data is not one (DecodeErr).
	DL        *schemas.DeadLetter
	DecodeErr error
}

func newDeadEntry(seq uint64, stored time.Time, subject string, h nats.Header, data []byte) deadEntry {
	e := deadEntry{Seq: seq, Stored: stored, Subject: subject, Header: h, Data: data}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(data, &dl); err != nil {
		e.DecodeErr = err
	} else {
		e.DL = &dl
	}
	return e
}

// dlqFilters are the dead-letter subjects for a reason and seller, ""
// meaning any; a seller's are those of each spelling of its tax number
// (sellerTokens).
func dlqFilters(subj schemas.Subjects, reason, seller string) []string {
	r := "*"
	if reason != "" {
		r = reason
	}
	if seller == "" {
		return []string{subj.DeadLetter(schemas.DeadLetterReason(r), "*")}
	}
	var filters []string
	for _, t := range sellerTokens(seller) {
		filters = append(filters, subj.DeadLetter(schemas.DeadLetterReason(r), t))
	}
	return filters
}

// checkReason validates a --reason value.
func checkReason(r string) error {
	if r == "" || slices.Contains(schemas.DeadLetterReasons, schemas.DeadLetterReason(r)) {
		return nil
	}
	names := make([]string, len(schemas.DeadLetterReasons))
	for i, x := range schemas.DeadLetterReasons {
		names[i] = string(x)
	}
	return usageError("--reason %q: not one of %v", r, names)
}

// dlqStream finds the dead-letter stream.
func (s *session) dlqStream(ctx context.Context) (jetstream.Stream, error) {
	return s.stream(ctx, s.subjects.DeadLetterFilter(), "dead letters")
}

// scanDeadLetters calls fn for every dead letter on filters (from the point
// from says) up to the end of the stream as it was when the scan began; it
// does not follow, so that dead letters appended meanwhile (a replayed
// malformed message comes back) are not visited.
func (s *session) scanDeadLetters(ctx context.Context, stream jetstream.Stream, filters []string, from orderedFrom, fn func(deadEntry) error) error {
	ictx, cancel := s.ctx(ctx)
	info, err := stream.Info(ictx)
	cancel()
	if err != nil {
		return s.jsError(err, "read the dead-letter stream's state")
	}
	end := info.State.LastSeq
	var start time.Time // the first dead letter's earliest time, with --since
	if !from.all && from.since > 0 {
		start = time.Now().Add(-from.since)
	}
	iter, pending, err := s.follow(ctx, stream, filters, from)
	if err != nil {
		return err
	}
	defer iter.Stop()
	var last uint64 // the last dead letter visited
	for pending > 0 {
		nctx, cancel := s.ctx(ctx)
		m, err := iter.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return &exitError{code: exitTrouble, err: fmt.Errorf("interrupted: %w", ctx.Err())}
			}
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				// Either the dead letters counted at the start were
				// removed since (max age), or the server was slow.
				return s.scanEnded(ctx, stream, filters, last, end, start)
			}
			return s.jsError(err, "read the dead letters")
		}
		meta, err := m.Metadata()
		if err != nil {
			return s.jsError(err, "read the dead letters")
		}
		last = meta.Sequence.Stream
		if meta.Sequence.Stream > end {
			return nil
		}
		if err := fn(newDeadEntry(meta.Sequence.Stream, meta.Timestamp, m.Subject(), m.Headers(), m.Data())); err != nil {
			return err
		}
		if meta.Sequence.Stream == end {
			return nil
		}
		pending = meta.NumPending
	}
	return nil
}

// scanEnded decides a scan whose read timed out after dead letter #last
// (0: none yet): nil when no dead letter of filters is left up to end (the
// rest was removed meanwhile), and an error naming the first one left
// otherwise, so that a list or a replay is never reported complete when
// it stopped short.
func (s *session) scanEnded(ctx context.Context, stream jetstream.Stream, filters []string, last, end uint64, start time.Time) error {
	for _, f := range filters {
		// Dead letters before start (--since) are not the scan's: look
		// past them, since one after them may be left.
		for seq := last + 1; seq <= end; {
			gctx, cancel := s.ctx(ctx)
			m, err := stream.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(f))
			cancel()
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return s.jsError(err, fmt.Sprintf("tell whether dead letters after #%d are left (reading them timed out; the scan stopped there)", last))
			}
			if m.Sequence > end {
				break
			}
			if !m.Time.Before(start) {
				return &exitError{code: exitTrouble, err: fmt.Errorf(
					"the server did not deliver dead letter #%d within --timeout %s: the scan stopped after #%d, before the end; run it again, or with a longer --timeout",
					m.Sequence, s.g.timeout, last)}
			}
			seq = m.Sequence + 1
		}
	}
	return nil
}

// getDeadLetter reads one dead letter by its stream sequence; an unknown
// sequence is an exitFailed error.
func (s *session) getDeadLetter(ctx context.Context, stream jetstream.Stream, seq uint64) (deadEntry, error) {
	rctx, cancel := s.ctx(ctx)
	defer cancel()
	m, err := stream.GetMsg(rctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return deadEntry{}, &exitError{code: exitFailed, err: fmt.Errorf("no dead letter #%d in %s (list them with: publisher dlq list)", seq, stream.CachedInfo().Config.Name)}
	}
	if err != nil {
		return deadEntry{}, s.jsError(err, fmt.Sprintf("read dead letter #%d", seq))
	}
	return newDeadEntry(m.Sequence, m.Time, m.Subject, m.Header, m.Data), nil
}

// replayBook opens the replay bucket. With create it is created when
// missing (replicated like the dead-letter stream); without, a missing
// bucket gives (nil, nil): nothing was ever replayed.
func (s *session) replayBook(ctx context.Context, dlq jetstream.Stream, create bool) (jetstream.KeyValue, error) {
	rctx, cancel := s.ctx(ctx)
	defer cancel()
	kv, err := s.js.KeyValue(rctx, ReplayBucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, s.jsError(err, "open the key-value bucket "+ReplayBucket)
	}
	if !create {
		return nil, nil
	}
	cfg := dlq.CachedInfo().Config
	kv, err = s.js.CreateOrUpdateKeyValue(rctx, jetstream.KeyValueConfig{
		Bucket:      ReplayBucket,
		Description: "Dead letters replayed by publisher dlq replay: key = sequence in " + cfg.Name,
		History:     1,
		TTL:         cfg.MaxAge, // a mark lives as long as its dead letter
		Storage:     cfg.Storage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, s.jsError(err, "create the key-value bucket "+ReplayBucket)
	}
	return kv, nil
}

// replayKey is the bucket key of a dead letter.
func replayKey(seq uint64) string { return strconv.FormatUint(seq, 10) }

// getMark returns the replay mark of the dead letter #seq stored at
// stored, nil when it was not replayed (or kv is nil).
func (s *session) getMark(ctx context.Context, kv jetstream.KeyValue, seq uint64, stored time.Time) (*replayMark, error) {
	m, _, err := s.markOf(ctx, kv, seq, stored)
	return m, err
}

// markOf is getMark, and the revision of a mark under the same key left by
// another dead letter (0 when there is none): the replay replaces it.
func (s *session) markOf(ctx context.Context, kv jetstream.KeyValue, seq uint64, stored time.Time) (*replayMark, uint64, error) {
	if kv == nil {
		return nil, 0, nil
	}
	rctx, cancel := s.ctx(ctx)
	defer cancel()
	e, err := kv.Get(rctx, replayKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, s.jsError(err, fmt.Sprintf("read the replay mark of #%d", seq))
	}
	var m replayMark
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return &replayMark{By: "(unreadable mark: " + err.Error() + ")"}, 0, nil
	}
	if !m.of(stored) {
		return nil, e.Revision(), nil
	}
	return &m, 0, nil
}

// whoAmI is user@host for replay marks.
func whoAmI() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return orEmpty(name) + "@" + orEmpty(host)
}

// entryJSON is the machine form of a dead letter: where it is, whether it
// was replayed, and the dead letter as stored.
type entryJSON struct {
	Seq        uint64          `json:"seq"`
	StoredAt   time.Time       `json:"storedAt"`
	Subject    string          `json:"subject"`
	Replay     *replayMark     `json:"replay,omitempty"`
	DeadLetter json.RawMessage `json:"deadLetter,omitempty"`
	// Raw holds the message when it is not JSON at all.
	Raw string `json:"raw,omitempty"`
}

func (e deadEntry) toJSON(mark *replayMark) entryJSON {
	j := entryJSON{Seq: e.Seq, StoredAt: e.Stored, Subject: e.Subject, Replay: mark}
	if json.Valid(e.Data) {
		j.DeadLetter = e.Data
	} else {
		j.Raw = string(e.Data)
	}
	return j
}
