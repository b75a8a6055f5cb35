package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// Class is what a provider's answer means for the pipeline. Every provider
// code, HTTP status and transport error maps to exactly one class, in one
// table per provider.
type Class int

// The classes of Outcome.
const (
	// Issued: the invoice(s) exist; Outcome.Invoices lists 1..N of them.
	Issued Class = iota + 1
	// Accepted: the provider has the request and is working on it; ask again
	// later with Query.
	Accepted
	// Retry: a transient refusal (rate limit, maintenance, 202 "in progress",
	// E9613); the request did not take effect or is safe to repeat as it
	// was. Outcome.RetryAfter carries the provider's hint, if any.
	Retry
	// Rejected: a permanent refusal; the request must change. Outcome.Code,
	// Message and Field say why.
	Rejected
	// ActionRequired: credentials, login or face authentication: a person must
	// act before this seller's work can go on.
	ActionRequired
	// Unknown: the call may or may not have taken effect (timeout, transport
	// error, 5xx, unreadable answer). Query before submitting again.
	Unknown
	// NotFound: only from Query: the provider has no record of the order, so
	// submitting it is safe.
	NotFound
)

// String names the class for logs and metrics.
func (c Class) String() string {
	switch c {
	case Issued:
		return "issued"
	case Accepted:
		return "accepted"
	case Retry:
		return "retry"
	case Rejected:
		return "rejected"
	case ActionRequired:
		return "action_required"
	case Unknown:
		return "unknown"
	case NotFound:
		return "not_found"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Outcome is a provider's answer to one Submit or Query.
type Outcome struct {
	// Class is what the answer means.
	Class Class
	// Invoices are the issued invoices: every one for Class Issued; for a
	// Rejected outcome wrapping ErrIssuanceFailed, those of a split order
	// that were issued before another of its invoices failed (none when the
	// order failed as a whole).
	Invoices []schemas.Invoice
	// Refs are the references the provider gave (serial number, task id,
	// form id). The pipeline stores them and passes them back in later Calls.
	Refs schemas.ProviderRefs
	// RedConfirm is the state of a red confirmation form, for kind red_confirm.
	RedConfirm *schemas.RedConfirmState
	// RetryAfter is the provider's hint of when to ask again (Accepted,
	// Retry, Unknown); 0 means no hint. A provider's HTTP Retry-After
	// header gives one through ParseRetryAfter, so at most MaxRetryAfter.
	RetryAfter time.Duration
	// AwaitingParty, on an Accepted outcome, says that the provider waits
	// for someone outside it, and may for days: the buyer confirming a red
	// confirmation form (Nuonuo billStatus 02/03, jumdata's 202 on
	// red-invoice/result). The pipeline polls such an order for
	// pipeline.Config.RedConfirmWait, those polls not counted against its
	// deliveries.
	AwaitingParty bool
	// Code is the provider's code ("E9130", "202", "070601") or, where the
	// provider gave none, "http_<status>", "transport" or "unreadable".
	Code string
	// Message is the provider's message, or a description of the failure.
	Message string
	// Field is the request field the provider blamed, as a path like
	// order.invoiceDetail[0].tax, where known.
	Field string
	// Err is the underlying error for transport failures; nil otherwise.
	Err error
	// Local says that the client answered without any call reaching the
	// provider: a request it cannot express (unsupported, invalid), a call
	// its rate limiter never let out, a look-up it cannot make. Such an
	// answer says nothing of the provider's state, so the pipeline does not
	// take it for the provider's answer to a held seller's probe.
	Local bool
}

// Call is what a provider needs to submit or query one request.
type Call struct {
	// Request is the validated request.
	Request *schemas.Request
	// Refs are the references stored from earlier calls; zero for a first
	// submission.
	Refs schemas.ProviderRefs
	// SubmittedAt is when the request was first submitted; zero if never.
	// On the first Submit it is already set (to the time of that Submit):
	// whether a Submit repeats an earlier one is Resubmission's to say.
	SubmittedAt time.Time
	// Resubmission says that the request was submitted, or may have been,
	// before the current submission (the order's record counts more than
	// one): a Submit refused because of what an earlier submission did
	// (an invoice already reversed, an order number already taken) may be
	// the provider's answer to that earlier submission. False on a first
	// Submit.
	Resubmission bool
	// Earlier says that Refs and SubmittedAt belong to an earlier request
	// for the same order with other content: one that was submitted and
	// then given up as failed, while Request is a corrected request for
	// the order. Query then asks after what the earlier request left at
	// the provider, and answers NotFound only when it is sure that nothing
	// was issued for it, whatever its content; a provider that can only
	// look an order up by its content answers Rejected wrapping
	// ErrUnsupported instead.
	Earlier bool
	// Accepted says that the provider accepted a submission of this request
	// (the order's record is accepted): a Query that finds nothing may
	// only mean that the provider does not show it yet, and a provider
	// whose submission has no key to repeat it by answers Retry then, not
	// NotFound, which would have the request submitted again.
	Accepted bool
	// LookOnly says that the request must not be submitted, not even as a
	// repetition of an earlier submission (a request the pipeline only
	// finishes, pipeline's subject_spelling exception): a Query that would
	// repeat the submission to learn the order's state looks only at what
	// the provider shows, and answers Retry, not NotFound, while an earlier
	// submission may still be under way.
	LookOnly bool
	// Restarts counts how many times the order was started over after the
	// provider refused an earlier request for it for good (a corrected
	// request after a rejection wrapping ErrSubmissionRefused;
	// schemas.OrderRecord.Restarts). A provider that names a
	// submission by a key derived from the order and keeps that key for a
	// while (jumdata's taskId, 8 hours) derives another key for each start,
	// so that the corrected request is neither refused as a different
	// request under the refused one's key nor answered with its refusal.
	Restarts int
}

// CodeLookOnly is the code of the Retry a Query made with Call.LookOnly
// answers when it cannot tell yet whether the order exists.
const CodeLookOnly = "look_only"

// Provider is an invoicing provider bound to one seller's credentials.
//
// Implementations are safe for concurrent use. They never log; they report
// every call to the Observer they were configured with.
type Provider interface {
	// Name is the provider's name as it appears in results ("nuonuo", "jumdata").
	Name() string
	// Submit sends the request to the provider. It is not idempotent by
	// itself: the pipeline calls it only for an order that is new, or that
	// Query reported NotFound. An Unknown outcome means the call may have
	// taken effect.
	Submit(ctx context.Context, call *Call) Outcome
	// Query asks for the state of a request submitted earlier (or possibly
	// submitted, after an Unknown outcome or a crash). It never creates an
	// invoice. NotFound means submitting is safe.
	Query(ctx context.Context, call *Call) Outcome
}

// RepeatableSubmitter is implemented by a provider whose Submit names a
// request with a key derived from the order (jumdata's taskId), so that the
// same request submitted again within some time of its first submission is
// answered from that first submission instead of creating a second invoice.
// The pipeline then need not claim a new order durably before submitting it
// (see pipeline.Backlog).
type RepeatableSubmitter interface {
	// RepeatableFor returns how long after a first submission of call's
	// request a repeat of it is answered from the first, safety margin for
	// clock skew taken off; 0 when a repeat may create another invoice.
	RepeatableFor(call *Call) time.Duration
}

// Observer receives one report per HTTP call a provider makes, for metrics.
// Implementations must be safe for concurrent use and fast.
type Observer interface {
	// ObserveCall reports a call to method that answered code after took.
	ObserveCall(provider, method, code string, took time.Duration)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(provider, method, code string, took time.Duration)

// ObserveCall calls f.
func (f ObserverFunc) ObserveCall(provider, method, code string, took time.Duration) {
	f(provider, method, code, took)
}

// nopObserver discards reports.
type nopObserver struct{}

func (nopObserver) ObserveCall(string, string, string, time.Duration) {}

// ObserverOrNop returns o, or an Observer that discards reports when o is nil.
func ObserverOrNop(o Observer) Observer {
	if o == nil {
		return nopObserver{}
	}
	return o
}

// ErrIssuanceFailed is wrapped by Outcome.Err of a Rejected outcome when the
// provider had accepted the request and then failed to issue it (Nuonuo
// status 22): the request itself may be fine, and a reissue may succeed.
// Outcome.Invoices lists any of the order's invoices that were issued all
// the same (a split order that failed in part): they exist, and a reissue
// issues only the rest.
var ErrIssuanceFailed = errors.New("the provider failed to issue the invoice")

// ErrSubmissionRefused is wrapped by Outcome.Err of a Rejected outcome when
// the provider took the submission as a task of its own and then refused
// it for good (jumdata's tax bureau answering 399 to a blue task): nothing
// was or will be issued for it, and the provider may keep it under the
// order's key. A corrected request for the order then starts over under a
// key of its own (Call.Restarts). No other rejection does: one that does not
// say so may leave a task under way (a refused repetition, an unknown
// code), and a new key beside it could issue a second invoice.
var ErrSubmissionRefused = errors.New("the provider refused the submission for good")

// ErrUnsupported is wrapped by Outcome.Err when a provider cannot perform a
// kind of request at all (for example a reissue at jumdata).
var ErrUnsupported = errors.New("not supported by this provider")
