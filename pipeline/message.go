package pipeline

import (
	"context"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// Message is one delivery of a request, as the pipeline sees it: the
// JetStream message's subject, body, headers and metadata.
type Message struct {
	// Subject is the subject the request was published on.
	Subject string
	// Data is the body.
	Data []byte
	// Header holds the message headers (may be nil).
	Header map[string][]string
	// Stream and StreamSeq locate the message in its stream.
	Stream    string
	StreamSeq uint64
	// Deliveries is how many times the message has been delivered, this
	// delivery included.
	Deliveries int
	// PublishedAt is when the message entered the stream.
	PublishedAt time.Time
	// ConsumerCreated is when the durable consumer that delivered the
	// message was created, zero when not known. The server deletes a
	// durable with its stream, so two messages delivered through the same
	// durable (the same Stream and ConsumerCreated) are in the same stream,
	// not one deleted and created again, whose sequences start over: their
	// StreamSeq order them as they entered it, whatever the servers'
	// clocks said (PublishedAt is the stream leader's clock, which a leader
	// change in a cluster may set back). The consume loop knows a durable
	// of the same name that replaced its own unseen (deleted and created
	// again by another party while no pull request of the loop waited on
	// it) by its deliveries' consumer sequences, which start over, and
	// reads its creation again then; and by its creation, which it reads
	// at the first delivery after it binds to a durable (a new one has
	// delivered nothing, and sequences cannot tell then), and, when that
	// read fails, again at a later delivery (zero until one succeeds).
	ConsumerCreated time.Time
}

// Action is what the consume loop does with a message once processed.
type Action int

// The actions.
const (
	// Ack: the outcome is durable (stored and published); the request is done.
	Ack Action = iota + 1
	// Nak: deliver the message again after Outcome.Delay.
	Nak
	// Term: never deliver it again; it has been dead-lettered.
	Term
)

// String names the action for logs.
func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Nak:
		return "nak"
	case Term:
		return "term"
	}
	return "none"
}

// Outcome is the result of processing one message: the action for the
// consume loop, and what happened, for the log line and the metrics.
type Outcome struct {
	// Action is what to do with the message.
	Action Action
	// Delay is the redelivery delay of a Nak.
	Delay time.Duration
	// Reason is the Term reason.
	Reason string

	// Seller and OrderNo identify the order, when known.
	Seller, OrderNo string
	// Kind is the request kind, when known.
	Kind schemas.Kind
	// Decision is what the order store said about the request.
	Decision string
	// Event names what happened: issued, rejected, conflict, replayed,
	// malformed, failed, accepted, retry, in_doubt, held, action_required,
	// busy (another delivery of the order was being processed: the
	// consume loop keeps the delivery until that one is done, and a stop
	// puts it back unprocessed), error.
	Event string
	// Status is the status of the result published, if one was.
	Status schemas.Status
	// DeadLetter is the reason of the dead letter published, if one was.
	DeadLetter schemas.DeadLetterReason
	// Provider names the order's provider (for a conflict, the one the
	// order's record names, though nothing was sent to it), and
	// ProviderCode is the last provider answer's code.
	Provider, ProviderCode string
	// Attempts counts the provider calls made for the order so far.
	Attempts int
	// Err is the error behind an "error" event or a failed publish.
	Err error
	// Unprocessed says that a Nak puts the message back without anything
	// done for it (its order was busy with another delivery): the loop does
	// not count the delivery against MaxDeliver, as it does not count the
	// deliveries put back while it is paused (LoopConfig.Paused). The
	// consume loop does not put back a delivery whose order was busy: it
	// keeps it until the other delivery is done and processes it again
	// (Loop.park); only a stop puts it back.
	Unprocessed bool
	// Published, when set, waits for the acknowledgement of the result
	// published asynchronously for an Ack: the message may be acknowledged
	// only once it has returned nil. On an error the message must be put
	// back instead. An issued result is published while its record is
	// saved, and Published is set from the start: a Nak whose save failed
	// may carry it too, and need not wait for it.
	Published func(ctx context.Context) error

	// waitPolls is the order record's WaitPolls as the delivery read it:
	// the deliveries that did not count against MaxDeliver, which
	// Pipeline.panicked leaves out as order.exhausted does.
	waitPolls int
	// busyKey is the lock key of the order another delivery was working
	// on (event busy), for the loop to wait on (keyLocks.await); empty
	// otherwise.
	busyKey string
	// busyWaits is how many times the loop kept the delivery waiting for
	// its order before this outcome (logged as busy_waits).
	busyWaits int
}

// The events of Outcome.Event.
const (
	EventIssued         = "issued"
	EventRejected       = "rejected"
	EventConflict       = "conflict"
	EventReplayed       = "replayed"
	EventMalformed      = "malformed"
	EventFailed         = "failed"
	EventAccepted       = "accepted"
	EventRetry          = "retry"
	EventInDoubt        = "in_doubt"
	EventHeld           = "held"
	EventActionRequired = "action_required"
	EventBusy           = "busy"
	EventError          = "error"
)
