package schemas

import "time"

// Status is the outcome a result event reports; it is also the second token
// of the result subject, invoice.result.<status>.<sellerTaxNum>.
type Status string

// The result statuses.
const (
	// StatusIssued: the provider issued the invoice(s); Invoices lists them.
	StatusIssued Status = "issued"
	// StatusRejected: the request is invalid or the provider refused it
	// permanently; it must change before it is sent again.
	StatusRejected Status = "rejected"
	// StatusFailed: the consumer gave up after its delivery limit; the request
	// was dead-lettered and can be replayed.
	StatusFailed Status = "failed"
	// StatusActionRequired: a person must act (credentials, login, face
	// authentication) before the seller's work can continue. Not final: the
	// order is retried and a later result follows.
	StatusActionRequired Status = "action_required"
	// StatusConflict: the order number was already used for a different
	// request body; nothing was sent to the provider.
	StatusConflict Status = "conflict"
)

// Statuses lists every Status in a stable order.
var Statuses = []Status{StatusIssued, StatusRejected, StatusFailed, StatusActionRequired, StatusConflict}

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if s == v {
			return true
		}
	}
	return false
}

// ErrorCode is the machine-readable reason in a result's or a dead letter's
// error.
type ErrorCode string

// The error codes.
const (
	// CodeInvalidRequest: the request broke the contract; Violations lists every problem.
	CodeInvalidRequest ErrorCode = "invalid_request"
	// CodeMalformed: the message is not a readable JSON request at all.
	CodeMalformed ErrorCode = "malformed"
	// CodeSellerNotConfigured: no provider is configured for the seller.
	CodeSellerNotConfigured ErrorCode = "seller_not_configured"
	// CodeUnsupported: the seller's provider cannot perform this kind of request.
	CodeUnsupported ErrorCode = "unsupported"
	// CodeProviderRejected: the provider refused the request permanently.
	CodeProviderRejected ErrorCode = "provider_rejected"
	// CodeProviderFailed: the provider accepted the request and then reported
	// that issuance failed.
	CodeProviderFailed ErrorCode = "provider_failed"
	// CodeConflict: the order number was used for a different request body.
	CodeConflict ErrorCode = "conflict"
	// CodeRetriesExhausted: the delivery limit was reached while the provider
	// kept answering "later".
	CodeRetriesExhausted ErrorCode = "retries_exhausted"
	// CodeActionRequired: credentials, login or face authentication must be
	// fixed by a person.
	CodeActionRequired ErrorCode = "action_required"
)

// ErrorInfo describes why a request did not end in StatusIssued.
type ErrorInfo struct {
	// Code is the machine-readable reason.
	Code ErrorCode `json:"code"`
	// Message is for people.
	Message string `json:"message"`
	// Field is the path of the offending field, like order.invoiceDetail[2].tax.
	Field string `json:"field,omitempty"`
	// ProviderCode is the provider's code (E9130, 399, ...) where there is one.
	ProviderCode string `json:"providerCode,omitempty"`
	// Violations lists every validation problem when Code is invalid_request.
	Violations []Violation `json:"violations,omitempty"`
}

// Invoice is one invoice issued for a request. One order may become up to 10
// invoices when the provider splits it.
type Invoice struct {
	// SerialNo is the provider's serial number for the invoice request
	// (Nuonuo invoiceSerialNum, jumdata taskId).
	SerialNo string `json:"serialNo,omitempty"`
	// InvoiceCode is the code of a VAT invoice; empty for fully digital ones.
	InvoiceCode string `json:"invoiceCode,omitempty"`
	// InvoiceNo is the invoice number.
	InvoiceNo string `json:"invoiceNo,omitempty"`
	// DigitalInvoiceNo is the 20-digit fully digital invoice number (全电发票号码).
	DigitalInvoiceNo string `json:"digitalInvoiceNo,omitempty"`
	// IssuedAt is when the tax authority issued the invoice.
	IssuedAt time.Time `json:"issuedAt"`
	// ExTaxAmount is the total excluding tax, and TaxAmount the total tax;
	// absent when the provider does not report them (jumdata's red invoice
	// results carry the total only).
	ExTaxAmount Amount `json:"exTaxAmount,omitzero"`
	TaxAmount   Amount `json:"taxAmount,omitzero"`
	// TotalAmount is the total including tax.
	TotalAmount Amount `json:"totalAmount"`
	// PdfURL, OfdURL and XMLURL locate the invoice documents at the provider.
	PdfURL string `json:"pdfUrl,omitempty"`
	OfdURL string `json:"ofdUrl,omitempty"`
	XMLURL string `json:"xmlUrl,omitempty"`
}

// Number is the number people quote for an invoice: the fully digital
// number, or code/number of a VAT invoice, else its serial number.
func (inv Invoice) Number() string {
	switch {
	case inv.DigitalInvoiceNo != "":
		return inv.DigitalInvoiceNo
	case inv.InvoiceCode != "" && inv.InvoiceNo != "":
		return inv.InvoiceCode + "/" + inv.InvoiceNo
	case inv.InvoiceNo != "":
		return inv.InvoiceNo
	}
	serial := inv.SerialNo
	if serial == "" {
		serial = "-"
	}
	return "(serial " + serial + ")"
}

// RedConfirmState is the state of a red-letter confirmation form.
type RedConfirmState struct {
	// BillID is the application number (saveInvoiceRedConfirm billId).
	BillID string `json:"billId,omitempty"`
	// BillNo is the provider's form id (Nuonuo result, jumdata uuid).
	BillNo string `json:"billNo,omitempty"`
	// BillStatus is the provider's form status (Nuonuo 01..16).
	BillStatus string `json:"billStatus,omitempty"`
	// Message is the provider's description of the status.
	Message string `json:"message,omitempty"`
}

// Result is the invoice-result event published on
// invoice.result.<status>.<sellerTaxNum>, described by
// invoice-result.schema.json.
type Result struct {
	// SchemaVersion is "1".
	SchemaVersion string `json:"schemaVersion"`
	// SellerTaxNum is the seller (from the request, or the subject when the
	// request could not be read).
	SellerTaxNum string `json:"sellerTaxNum"`
	// OrderNo is the request's order number; empty when it could not be read.
	OrderNo string `json:"orderNo"`
	// Kind is the request's kind; empty when it could not be read.
	Kind Kind `json:"kind,omitempty"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Provider is "nuonuo" or "jumdata": the order's provider, also on a
	// conflict (which calls none) when the order's record names it, and on
	// a request given up before one was chosen (its order unreadable, or a
	// bug), the seller's configured one; empty when no provider is known
	// (a request rejected before one was chosen: invalid, or for a seller
	// not configured).
	Provider string `json:"provider,omitempty"`
	// Attempts is the number of provider calls made for the order.
	Attempts int `json:"attempts"`
	// ReceivedAt is when the consumer first saw the order.
	ReceivedAt time.Time `json:"receivedAt"`
	// CompletedAt is when the outcome was reached.
	CompletedAt time.Time `json:"completedAt"`
	// Fingerprint is the canonical fingerprint of the request.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Invoices lists the invoices issued: empty unless Status is issued, but
	// for an order split into several invoices that failed in part (status
	// rejected, error provider_failed), whose issued invoices it lists.
	Invoices []Invoice `json:"invoices"`
	// RedConfirm is the confirmation form, for kind red_confirm.
	RedConfirm *RedConfirmState `json:"redConfirm,omitempty"`
	// Error says why, for every status but issued.
	Error *ErrorInfo `json:"error,omitempty"`
	// Warnings lists checks that did not block the request (for example a
	// tax number whose check character does not match, or an amount a line
	// gives that Nuonuo sets aside for one it computes 0.01 to 0.06 away,
	// RuleComputedAmount).
	Warnings []Violation `json:"warnings,omitempty"`
}

// DeadLetterReason is why a message was dead-lettered; it is the third token
// of invoice.dlq.<reason>.<sellerTaxNum>.
type DeadLetterReason string

// The dead-letter reasons.
const (
	// ReasonMalformed: the message is not a readable JSON request.
	ReasonMalformed DeadLetterReason = "malformed"
	// ReasonExhausted: the delivery limit was reached.
	ReasonExhausted DeadLetterReason = "exhausted"
	// ReasonActionRequired: the delivery limit was reached while the seller
	// needed a person to act.
	ReasonActionRequired DeadLetterReason = "action_required"
)

// DeadLetterReasons lists every DeadLetterReason.
var DeadLetterReasons = []DeadLetterReason{ReasonMalformed, ReasonExhausted, ReasonActionRequired}

// DeadLetter is what lands on invoice.dlq.<reason>.<sellerTaxNum>: the
// original message and everything needed to understand and replay it,
// described by invoice-deadletter.schema.json.
type DeadLetter struct {
	// SchemaVersion is "1".
	SchemaVersion string `json:"schemaVersion"`
	// Reason is why the message was dead-lettered.
	Reason DeadLetterReason `json:"reason"`
	// SellerTaxNum is the seller token of the original subject.
	SellerTaxNum string `json:"sellerTaxNum"`
	// OrderNo is the request's order number when it could be read.
	OrderNo string `json:"orderNo,omitempty"`
	// Error says what went wrong.
	Error ErrorInfo `json:"error"`
	// Deliveries is how many times the message was delivered.
	Deliveries int `json:"deliveries"`
	// OriginalSubject is the subject the request was published on.
	OriginalSubject string `json:"originalSubject"`
	// OriginalStream and OriginalSeq locate the request in its stream.
	OriginalStream string `json:"originalStream"`
	OriginalSeq    uint64 `json:"originalSeq"`
	// PublishedAt is when the request entered the stream.
	PublishedAt time.Time `json:"publishedAt"`
	// OriginalConsumerCreated is when the durable consumer that delivered
	// the request was created, zero when not known. It is not in the body
	// (the dead-letter schema admits no member it does not list, and
	// subscribers that validate against it would refuse one): the
	// consumer publishes it as the dead letter's header
	// Invoice-Original-Consumer-Created (pipeline), where publisher dlq
	// replay reads it.
	OriginalConsumerCreated time.Time `json:"-"`
	// FirstSeen is when the consumer first saw the order (PublishedAt when
	// the consumer kept no record of it).
	FirstSeen time.Time `json:"firstSeen"`
	// DeadAt is when the message was dead-lettered.
	DeadAt time.Time `json:"deadAt"`
	// Headers are the original message's headers.
	Headers map[string][]string `json:"headers,omitempty"`
	// Payload is the original message body (base64 in JSON). It is cut at
	// the request size limit when the original was larger.
	Payload []byte `json:"payload"`
	// PayloadSize is the original body's size in bytes.
	PayloadSize int `json:"payloadSize"`
	// PayloadTruncated says Payload was cut.
	PayloadTruncated bool `json:"payloadTruncated,omitempty"`
	// PayloadSHA256 is the hex SHA-256 of the original body.
	PayloadSHA256 string `json:"payloadSha256"`
}
