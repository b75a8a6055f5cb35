package schemas

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// OrderState is where an order stands in the consumer's order store.
type OrderState string

// The order states. The legal moves between them are given by CheckTransition.
const (
	// StateSubmitting: the order is claimed and a provider call may be in
	// flight. Found after a crash it means "in doubt": query the provider
	// before submitting anything.
	StateSubmitting OrderState = "submitting"
	// StateAccepted: the provider has the order and issuance is pending.
	StateAccepted OrderState = "accepted"
	// StateIssued: the invoice(s) exist. Final.
	StateIssued OrderState = "issued"
	// StateRejected: the provider (or the configuration) refused the order
	// permanently. A request with a different fingerprint may start over.
	StateRejected OrderState = "rejected"
	// StateFailed: the consumer gave up on the order after its delivery
	// limit. Not final: the same request (a replayed dead letter) resumes it,
	// querying the provider first; a different request may start over.
	StateFailed OrderState = "failed"
	// StateActionRequired: a person must act before the order can continue.
	StateActionRequired OrderState = "action_required"
)

// OrderStates lists every OrderState in a stable order.
var OrderStates = []OrderState{StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired}

// Valid reports whether s is one of the defined states.
func (s OrderState) Valid() bool {
	for _, v := range OrderStates {
		if s == v {
			return true
		}
	}
	return false
}

// Finished reports whether s is a state in which the order has its final
// answer (issued or rejected). Failed is not finished: a replay resumes it.
func (s OrderState) Finished() bool {
	return s == StateIssued || s == StateRejected
}

// ProviderRefs are the provider's references to an order, kept so that a
// later delivery can query instead of submitting again.
type ProviderRefs struct {
	// SerialNo is Nuonuo's invoiceSerialNum (fpqqlsh).
	SerialNo string `json:"serialNo,omitempty"`
	// TaskID is jumdata's blue-invoice taskId.
	TaskID string `json:"taskId,omitempty"`
	// BillID is the red confirmation application number (Nuonuo billId).
	BillID string `json:"billId,omitempty"`
	// BillNo is the red confirmation form id (Nuonuo result, jumdata uuid).
	BillNo string `json:"billNo,omitempty"`
	// ConfirmedForm is the jumdata red confirmation form (uuid) for which
	// the seller's confirmation, red-confirmation/confirm, was sent or
	// refused: it is sent once per form.
	ConfirmedForm string `json:"confirmedForm,omitempty"`
}

// OrderRecord is the consumer's memory of one order, keyed by
// (Seller, OrderNo).
type OrderRecord struct {
	// Seller is the seller's tax number.
	Seller string `json:"seller"`
	// OrderNo is the order number.
	OrderNo string `json:"orderNo"`
	// Kind is the request kind.
	Kind Kind `json:"kind"`
	// State is where the order stands.
	State OrderState `json:"state"`
	// Fingerprint identifies the request body (see Fingerprint).
	Fingerprint string `json:"fingerprint"`
	// Provider names the seller's provider.
	Provider string `json:"provider,omitempty"`
	// Refs are the provider's references to the order.
	Refs ProviderRefs `json:"refs"`
	// Attempts counts provider calls made for the order.
	Attempts int `json:"attempts"`
	// Submissions counts submit calls (as opposed to queries).
	Submissions int `json:"submissions"`
	// Restarts counts how many times the order was started over after the
	// provider refused an earlier request for it for good: a corrected
	// request for an order whose record is Refused counts one more than that
	// record, which the pipeline passes on as providers.Call.Restarts
	// (jumdata derives a new taskId from it).
	Restarts int `json:"restarts,omitempty"`
	// Superseded lists the fingerprints of the requests for the order that
	// a different request replaced, starting the order over (a corrected
	// request after a rejection or a give-up), the latest last, up to
	// MaxSuperseded (Supersede): the replay of such a request's dead letter
	// is not submitted, as the order system sent another request since.
	Superseded []string `json:"superseded,omitempty"`
	// RequestPublishedAt is when the request that started this record (the
	// one Fingerprint names) entered the request stream, by the NATS
	// server's clock: a different request for the order published before
	// it (a copy of an older request delivered again late) is not
	// submitted, as the order system sent this one after it. The same
	// request published again later moves it (and the stream position
	// below) to that publication, the order system's latest word. A record
	// started by a replayed dead letter keeps when the request it
	// republished first entered the stream, which the replay carries
	// (pipeline.HeaderReplayPublished), not the replay's own publication.
	// Zero when not known: a record written before it was kept, or started
	// by a replay that did not carry it (an earlier build's).
	RequestPublishedAt time.Time `json:"requestPublishedAt,omitzero"`
	// RequestStream, RequestStreamSeq and RequestConsumerCreated say where
	// that request was in the request stream: the stream's name, the
	// request's sequence there, and when the durable consumer that
	// delivered it was created. A request delivered through the same
	// durable (the same stream and creation: the server deletes a durable
	// with its stream) is in the same stream, never one deleted and
	// created again, and the sequences order the two as they entered it;
	// the timestamps are the stream leaders' clocks, which a leader change
	// in a cluster may set back. Otherwise RequestPublishedAt orders them.
	// A record started by a replayed dead letter keeps the place of the
	// request it republished, which the replay carries
	// (pipeline.HeaderReplayPosition), never the replay's own. Empty when
	// not known: a record written before they were kept, or started by a
	// replay that did not carry it (an earlier build's, or of a dead
	// letter an earlier build wrote).
	RequestStream          string    `json:"requestStream,omitempty"`
	RequestStreamSeq       uint64    `json:"requestStreamSeq,omitempty"`
	RequestConsumerCreated time.Time `json:"requestConsumerCreated,omitzero"`
	// Refused says that the order was rejected because the provider refused
	// its submission for good (providers.ErrSubmissionRefused), so that a
	// corrected request starts over under a key of its own (Restarts).
	Refused bool `json:"refused,omitempty"`
	// Accepted says that the provider answered that it has this request's
	// submission (providers.Accepted), whatever State says since: an order
	// that moved on to action_required or failed is still accepted at the
	// provider, and a later query tells it so (providers.Call.Accepted),
	// so that a provider that cannot list the submission yet does not
	// answer NotFound and have it submitted again. A corrected request
	// starts a record without it.
	Accepted bool `json:"providerAccepted,omitempty"`
	// Polls counts the deliveries that ended with the provider still
	// working on the order (accepted): the position in the polling
	// schedule, which starts when the provider first accepts the order
	// however many transient failures came before.
	Polls int `json:"polls,omitempty"`
	// WaitPolls counts the deliveries that ended with the provider waiting
	// for someone outside it (providers.Outcome.AwaitingParty: the buyer
	// confirming a red confirmation form); they do not count against the
	// request's deliveries. WaitingSince is when it first said so. Both
	// start again when the order is given up, so that a replay starts
	// afresh (or at the replay, when the give-up could not write the
	// record); the order is polled until pipeline.Config.RedConfirmWait
	// after WaitingSince.
	WaitPolls    int       `json:"waitPolls,omitempty"`
	WaitingSince time.Time `json:"waitingSince,omitzero"`
	// Answers counts the deliveries that ended with the provider's answer
	// "later" (retry, in doubt, still working; not those of WaitPolls): a
	// request given such an answer is given up only once it has had
	// pipeline.Config.MaxDeliver of them, however many deliveries the
	// server counts. It starts again when the order is given up.
	Answers int `json:"answers,omitempty"`
	// ReplayPublishedAt is when the replayed request (a dead letter
	// republished, marked pipeline.HeaderReplayOf) that last started the
	// counts afresh was published, by the NATS server's clock (the request
	// stream's timestamp): a replay published later starts them afresh at
	// its first delivery, and the later deliveries of this one keep them.
	// Zero until a replay resumed the order.
	ReplayPublishedAt time.Time `json:"replayPublishedAt,omitzero"`
	// LegacyAcceptedAt is the "acceptedAt" of a record written by a build
	// before WaitPolls and WaitingSince: a red confirmation form's first
	// acceptance, with every poll since counted in Polls. It is only read:
	// CarryOverLegacyWait moves it into WaitingSince.
	LegacyAcceptedAt time.Time `json:"acceptedAt,omitzero"`
	// Failures counts the deliveries in a row that ended in a transient
	// failure (an error answer, an answer lost in transit, a refusal to
	// take more calls): the position in the retry backoff. It starts again
	// at 0 whenever the provider answers that it has the order, so an order
	// polled many times does not wait minutes after its first fault.
	Failures int `json:"failures,omitempty"`
	// LastError is the last error seen (the final one once rejected or failed).
	LastError *ErrorInfo `json:"lastError,omitempty"`
	// Invoices are the issued invoices.
	Invoices []Invoice `json:"invoices,omitempty"`
	// RedConfirm is the confirmation form state, for kind red_confirm.
	RedConfirm *RedConfirmState `json:"redConfirm,omitempty"`
	// Warnings are the request's non-blocking validation findings.
	Warnings []Violation `json:"warnings,omitempty"`
	// ActionEpisode counts action-required episodes; a result event is
	// published once per episode.
	ActionEpisode int `json:"actionEpisode,omitempty"`
	// Documents names stored invoice documents (object store keys), in
	// records written before documents were kept in the background; today
	// they are found by name (pipeline.DocumentName) and this stays empty.
	// These names are those of before 2026-12-06, one of which may name
	// another order's PDF today (A.1's was A_1/0.pdf): a PDF under one is
	// served only when it is known to be the order's (pipeline.ObjectDocuments).
	Documents []string `json:"documents,omitempty"`
	// ReceivedAt is when the consumer first saw the order.
	ReceivedAt time.Time `json:"receivedAt"`
	// SubmittedAt is when the order was first submitted to the provider.
	SubmittedAt time.Time `json:"submittedAt,omitzero"`
	// CompletedAt is when the order reached issued, rejected or failed.
	CompletedAt time.Time `json:"completedAt,omitzero"`
	// UpdatedAt is when the record was last written.
	UpdatedAt time.Time `json:"updatedAt"`
	// Version increases by one on every write; the store uses it for
	// optimistic concurrency. 0 means "not stored yet".
	Version uint64 `json:"version"`
}

// MaxSuperseded is how many fingerprints OrderRecord.Superseded keeps: an
// order started over more often than that forgets its oldest requests.
const MaxSuperseded = 16

// Supersede records in r, the record of a different request that starts
// over the order old holds, that old's request was replaced: r's
// Superseded is old's, with old's fingerprint last, and without r's own
// (a request sent again after the one that replaced it is the latest
// again), up to MaxSuperseded.
func (r *OrderRecord) Supersede(old *OrderRecord) {
	list := make([]string, 0, len(old.Superseded)+1)
	for _, fp := range old.Superseded {
		if fp != r.Fingerprint && fp != old.Fingerprint {
			list = append(list, fp)
		}
	}
	if old.Fingerprint != "" && old.Fingerprint != r.Fingerprint {
		list = append(list, old.Fingerprint)
	}
	if len(list) > MaxSuperseded {
		list = list[len(list)-MaxSuperseded:]
	}
	r.Superseded = list
}

// Key returns the record's store key.
func (r *OrderRecord) Key() OrderKey { return OrderKey{Seller: r.Seller, OrderNo: r.OrderNo} }

// ValidOrderNo reports whether no is an order number a request may carry
// (invoice-request.schema.json: 1 to 20 printable ASCII characters without
// spaces), and so one the order store can hold.
func ValidOrderNo(no string) bool {
	return no != "" && len(no) <= 20 && !strings.ContainsFunc(no, func(r rune) bool { return r < '!' || r > '~' })
}

// OrderKey identifies an order: order numbers are unique per seller.
type OrderKey struct {
	Seller  string
	OrderNo string
}

// String returns "<seller>:<orderNo>", the form used in message ids, logs and
// the partner API's requestId.
func (k OrderKey) String() string { return k.Seller + ":" + k.OrderNo }

// Errors returned by CheckTransition.
var (
	// ErrIllegalTransition: the state machine does not allow the move.
	ErrIllegalTransition = errors.New("illegal order state transition")
	// ErrFingerprintMismatch: the move needs the stored fingerprint and got another.
	ErrFingerprintMismatch = errors.New("order fingerprint mismatch")
)

// transitions lists, for each state, the states it may move to. A missing
// record ("") may be created in any state but issued's successors: an order
// submitted without a claim (pipeline.Backlog) is first saved with the
// provider's answer.
var transitions = map[OrderState][]OrderState{
	"":                  {StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired},
	StateSubmitting:     {StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired},
	StateAccepted:       {StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired},
	StateActionRequired: {StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired},
	StateRejected:       {StateSubmitting, StateRejected},
	StateFailed:         {StateSubmitting, StateAccepted, StateIssued, StateRejected, StateFailed, StateActionRequired},
	StateIssued:         nil,
}

// CheckTransition reports whether an order stored as old (nil: not stored)
// may be overwritten by next. It enforces the state machine and the
// fingerprint rules:
//   - issued is final;
//   - rejected may only start over (submitting) with a different
//     fingerprint: the same request gets its stored answer instead; it
//     may be written again, rejected, with its own fingerprint (the
//     pipeline keeps where its request was last published);
//   - failed may start over with a different fingerprint, or resume with
//     the same one (a replayed dead letter);
//   - every other move keeps the fingerprint.
//
// The errors wrap ErrIllegalTransition or ErrFingerprintMismatch.
func CheckTransition(old, next *OrderRecord) error {
	if !next.State.Valid() {
		return fmt.Errorf("%w: unknown state %q", ErrIllegalTransition, next.State)
	}
	var from OrderState
	if old != nil {
		from = old.State
	}
	allowed := false
	for _, s := range transitions[from] {
		if s == next.State {
			allowed = true
			break
		}
	}
	if !allowed {
		if from == "" {
			from = "(none)"
		}
		return fmt.Errorf("%w: %s → %s", ErrIllegalTransition, from, next.State)
	}
	if old == nil {
		return nil
	}
	restart := (from == StateRejected || from == StateFailed) && next.State == StateSubmitting
	switch {
	case restart && from == StateRejected && next.Fingerprint == old.Fingerprint:
		return fmt.Errorf("%w: a rejected order can only start over with a different request", ErrFingerprintMismatch)
	case !restart && next.Fingerprint != old.Fingerprint:
		return fmt.Errorf("%w: %s order keeps its fingerprint", ErrFingerprintMismatch, from)
	}
	return nil
}

// Decision is what to do with a request for an order, given what the store
// holds.
type Decision int

// The decisions of Decide.
const (
	// DecideSubmit: the order is new, or starts over after rejected/failed with
	// a corrected request. Claim it and submit.
	DecideSubmit Decision = iota
	// DecideResume: the order is in flight, in doubt or given up (submitting,
	// accepted, action_required, failed) with this fingerprint: query the
	// provider first, if it was ever submitted.
	DecideResume
	// DecideReplay: the order is issued or rejected with this fingerprint:
	// publish the stored result again, call no provider.
	DecideReplay
	// DecideConflict: the order number is taken by a different request that is
	// issued, issued in part (rejected with invoices) or still in flight:
	// answer conflict, call no provider.
	DecideConflict
)

// String names the decision for logs.
func (d Decision) String() string {
	switch d {
	case DecideSubmit:
		return "submit"
	case DecideResume:
		return "resume"
	case DecideReplay:
		return "replay"
	case DecideConflict:
		return "conflict"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Decide applies the fingerprint rules to a stored record (nil: none) and a
// request's fingerprint.
func Decide(rec *OrderRecord, fingerprint string) Decision {
	switch {
	case rec == nil:
		return DecideSubmit
	case rec.Fingerprint == fingerprint && rec.State.Finished():
		return DecideReplay
	case rec.Fingerprint == fingerprint:
		return DecideResume
	case rec.State == StateRejected && len(rec.Invoices) > 0:
		// A split order that failed in part: some of its invoices exist,
		// and its order number is taken at the provider. A reissue issues
		// the rest; a different request cannot start it over.
		return DecideConflict
	case rec.State == StateRejected || rec.State == StateFailed:
		return DecideSubmit
	default:
		return DecideConflict
	}
}

// RestartCounts sets the counts of an order's deliveries to zero (the
// backoff's Failures, the polling schedule's Polls, the wait's WaitPolls and
// WaitingSince, the Answers budget), as when the order is given up, so that
// a later request for it starts them afresh, or as when a replayed dead
// letter resumes an order whose give-up could not write its record.
func (r *OrderRecord) RestartCounts() {
	r.Failures, r.Polls, r.WaitPolls, r.WaitingSince, r.Answers = 0, 0, 0, time.Time{}, 0
}

// CarryOverLegacyWait gives a record written by a build before WaitPolls
// and WaitingSince the wait that build kept (LegacyAcceptedAt and Polls), so
// that a red confirmation form already polled past the delivery limit is
// not given up at its first transient failure, and clears
// LegacyAcceptedAt so that it is not written again.
func (r *OrderRecord) CarryOverLegacyWait() {
	if r.LegacyAcceptedAt.IsZero() {
		return
	}
	if r.Kind == KindRedConfirm && r.WaitingSince.IsZero() {
		r.WaitPolls, r.WaitingSince = r.Polls, r.LegacyAcceptedAt
	}
	r.LegacyAcceptedAt = time.Time{}
}

// Result builds the result event for a finished or action-required record.
func (r *OrderRecord) Result() *Result {
	res := &Result{
		SchemaVersion: SchemaVersion,
		SellerTaxNum:  r.Seller,
		OrderNo:       r.OrderNo,
		Kind:          r.Kind,
		Provider:      r.Provider,
		Attempts:      r.Attempts,
		ReceivedAt:    r.ReceivedAt,
		CompletedAt:   r.CompletedAt,
		Fingerprint:   r.Fingerprint,
		Invoices:      r.Invoices,
		RedConfirm:    r.RedConfirm,
		Warnings:      r.Warnings,
	}
	if res.Invoices == nil {
		res.Invoices = []Invoice{}
	}
	switch r.State {
	case StateIssued:
		res.Status = StatusIssued
	case StateRejected:
		res.Status = StatusRejected
	case StateFailed:
		res.Status = StatusFailed
	default:
		res.Status = StatusActionRequired
	}
	if res.CompletedAt.IsZero() {
		res.CompletedAt = r.UpdatedAt
	}
	if res.Status != StatusIssued {
		res.Error = r.LastError
		if res.Error == nil {
			res.Error = &ErrorInfo{Code: CodeProviderFailed, Message: "no error was recorded"}
		}
	}
	return res
}
