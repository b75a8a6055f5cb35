package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// OrphanSweeper removes requests that the server left in the work-queue
// request stream although the consumer acknowledged them. A work-queue
// stream deletes a message once its consumer has acknowledged it; when the
// server stops between recording an acknowledgement and deleting the
// message, the message can survive the restart below the consumer's ack
// floor (nats-server issues 5148, 7680): it is never delivered again, yet
// it stays in the stream for good and makes the stream look unfinished.
//
// The sweeper deletes such a message only when the order store proves that
// the request was answered: the order is issued, rejected or failed, for
// the same request body. Anything else below the ack floor (an invalid or
// malformed request, which is answered without a record) is left alone and
// counted as kept, for an operator to look at.
type OrphanSweeper struct {
	// Stream is the request stream and Consumer its durable consumer (the
	// partition's, when partitioned).
	Stream   jetstream.Stream
	Consumer jetstream.Consumer
	// Store and Validator are the consumer's own.
	Store     Store
	Validator *schemas.Validator
	Subjects  schemas.Subjects
	// Max bounds the messages looked at in one sweep; 0 means 1000.
	Max int

	// next is the first sequence the next sweep looks at: a message kept
	// once is counted and reported once, not again every sweep. A sweep
	// leaves it at most one past the ack floor it read; a floor below
	// that went back (Sweep starts over).
	next uint64
}

// SweepReport says what one sweep did.
type SweepReport struct {
	// Deleted counts acknowledged requests removed from the stream.
	Deleted int
	// Kept counts acknowledged requests left in the stream because the
	// store cannot prove they were answered.
	Kept int
}

// Sweep looks at the messages of the consumer's subjects below its ack
// floor, oldest first, and deletes the proven orphans. It is safe to run at
// any time: messages above the ack floor (pending, in flight, waiting for a
// redelivery) are never touched. Each sweep carries on where the last one
// stopped, so a kept message is looked at (and counted) once; a consumer
// whose ack floor went back (deleted and created again, with its stream or
// alone) is swept from its stream's start again. Sweep is not safe for
// concurrent use.
func (s *OrphanSweeper) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	info, err := s.Consumer.Info(ctx)
	if err != nil {
		return rep, fmt.Errorf("sweep: consumer info: %w", err)
	}
	floor := info.AckFloor.Stream
	filter := info.Config.FilterSubject
	if filter == "" {
		filter = s.Subjects.RequestFilter()
	}
	limit := s.Max
	if limit <= 0 {
		limit = 1000
	}
	if s.next > floor+1 {
		// The ack floor went back: the durable, or the request stream
		// with it, was deleted and created again (the consume loop does
		// so, LoopConfig.Recreate), and the sequences start over. Carried
		// on from the old position, the sweep would look at nothing until
		// the new floor passed it.
		s.next = 0
	}
	seq := max(s.next, 1)
	defer func() { s.next = seq }()
	for range limit {
		if seq > floor {
			break
		}
		m, err := s.Stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return rep, fmt.Errorf("sweep: read request stream from #%d: %w", seq, err)
		}
		if m.Sequence > floor {
			break // the first message not yet acknowledged: nothing older is left
		}
		seq = m.Sequence + 1
		if !s.answered(ctx, m) {
			rep.Kept++
			continue
		}
		if err := s.Stream.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			seq = m.Sequence // the next sweep tries it again
			return rep, fmt.Errorf("sweep: delete acknowledged request #%d: %w", m.Sequence, err)
		}
		rep.Deleted++
	}
	return rep, nil
}

// answered reports whether the order store holds the final answer to the
// request m carries.
func (s *OrphanSweeper) answered(ctx context.Context, m *jetstream.RawStreamMsg) bool {
	d, err := s.Validator.Decode(m.Data, s.Subjects.SellerOf(m.Subject))
	if err != nil || !d.Valid() {
		return false
	}
	rec, found, err := s.Store.Get(ctx, schemas.OrderKey{Seller: d.Request.SellerTaxNum, OrderNo: d.Request.OrderNo})
	if err != nil || !found || rec.Fingerprint != d.Fingerprint {
		return false
	}
	switch rec.State {
	case schemas.StateIssued, schemas.StateRejected, schemas.StateFailed:
		return true
	}
	return false
}
