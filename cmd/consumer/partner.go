package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The partner status query of seed 003, served at GET /partner/queryInvoice.
//
// Request: channel, timestamp (Unix milliseconds), requestId and sign, as
// query parameters. requestId is "<sellerTaxNum>:<orderNo>".
//
// Signature (this service's scheme; the seed leaves it open):
//
//	message = "channel=" + channel + "&requestId=" + requestId + "&timestamp=" + timestamp
//	sign    = lower-case hex( HMAC-SHA256(key = the channel's secret, message) )
//
// The parameters are sorted by name and the values are the decoded query
// values. The timestamp must be within 5 minutes of the server's clock.
//
// The checks run in this order: the parameters are there and the timestamp
// is a number (1001), the timestamp is within the window (1003), the channel
// exists and the signature is its secret's (1004), then the request. An
// unknown channel is answered as a wrong signature, after the same checks
// and the same work, so that a caller without a channel's secret cannot tell
// the channels that exist from those that do not (seed 003 gives no error
// codes or order of checks: both are this service's).
//
// Answer: {"result": 0, "message": "SUCCESS", "data": [...]} with one entry
// per invoice of the request. status is mapped from the order's state:
// issued → 1 (已开票, with invoiceFile, the PDF in base64; an order issued
// without an invoice has no entry); rejected and
// failed → 3 (开票失败); submitting, accepted, action required → 4 (已申请).
// With --partitions, an instance answers for every seller: it asks the
// instance that owns another partition's seller through the status service,
// as an instance that stood down (another took its request consumer) asks
// the owner of every seller.
// 2, 5 and 6 (voided, shipped, void requested) concern paper invoices and
// voids, which this service does not handle. Errors answer a non-zero result
// and nothing else:
//
//	1001 400  a parameter is missing or malformed
//	1002      not answered: an unknown channel is answered 1004 (above)
//	1003 401  timestamp outside the 5-minute window
//	1004 401  unknown channel or wrong signature
//	1005 404  no such request
//	1006 503  the invoice document is not available yet; ask again (a
//	          link that gives no PDF, partnerDocumentPatience after
//	          issuance, is answered without invoiceFile instead)
//	1007 429  too many queries at once (more than --partner-max-queries
//	          past the signature check, for partnerSlotWait); ask again
//	1500 500  internal error (the order store, or the owning instance,
//	          did not answer)
type partnerAPI struct {
	secrets map[string][]byte // channel → secret
	// sellers scopes a channel to its sellers (channel → seller tax
	// numbers); a channel not in it may ask about every seller. Another
	// seller's request is answered 1005, as one that does not exist.
	sellers map[string]map[string]bool
	store   pipeline.Store
	docs    partnerDocuments
	window  time.Duration
	now     func() time.Time
	// partitions and partition say whose orders store holds (with
	// --partitions); another partition's orders are asked of the instance
	// that owns them, through remote (the status service).
	partitions, partition int
	remote                func(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error)
	// stoodDown reports whether another instance took this one's request
	// consumer: every order is then asked of remote, as another
	// partition's is, since the owner's orders are not in store. nil
	// means never.
	stoodDown func() bool
	// answers counts the answers by result code (0 for success); nil
	// counts nothing.
	answers *prometheus.CounterVec
	// slots bounds the queries answered at once (each may read the order
	// store, ask another instance and fetch PDFs): a flood of queries
	// from one partner must not take the provider's PDF links, the object
	// store or the listener that /readyz and /metrics share (without
	// --partner-http) from everything else. nil means no bound.
	slots chan struct{}
	// log says why an order's documents were not available (1006); the
	// zero value logs nothing.
	log zerolog.Logger
}

// partnerSlotWait is how long a query waits for one of the slots before it
// is answered 1007.
const partnerSlotWait = time.Second

// newPartnerSlots returns the slots of at most n queries at once; n <= 0
// means no bound (nil).
func newPartnerSlots(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}

// acquire takes a slot, waiting up to partnerSlotWait; it returns the
// function that gives it back, or false when none came free.
func (p *partnerAPI) acquire(ctx context.Context) (func(), bool) {
	if p.slots == nil {
		return func() {}, true
	}
	release := func() { <-p.slots }
	select {
	case p.slots <- struct{}{}:
		return release, true
	default:
	}
	t := time.NewTimer(partnerSlotWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// count counts an answer.
func (p *partnerAPI) count(result int) {
	if p.answers != nil {
		p.answers.WithLabelValues(strconv.Itoa(result)).Inc()
	}
}

// partnerQueryTimeout bounds a partner query from its signature check to
// its answer: the wait for a turn, the order's look-up (in this instance's
// store or another's) and its PDFs.
const partnerQueryTimeout = 10 * time.Second

// partnerDocumentPatience is how long after an order's completion PDFs
// whose links give none (pipeline.ErrDocumentGone: a 4xx, not a PDF) are
// answered 1006 (ask again): the provider may not serve them yet. After
// that their entries are answered without invoiceFile, rather than hiding
// the issued order behind links that will not work. An order one of whose
// missing PDFs failed otherwise (the object store, the provider's 5xx, a
// timeout) is answered 1006.
const partnerDocumentPatience = 10 * time.Minute

// partnerDocuments is what the partner API needs of the document store.
type partnerDocuments interface {
	pipeline.Documents
}

// partnerInvoice is one entry of the answer's data.
type partnerInvoice struct {
	InvoiceID     int64  `json:"invoiceId"`
	InvoiceCode   string `json:"invoiceCode,omitempty"`
	InvoiceNumber string `json:"invoiceNumber,omitempty"`
	Status        int    `json:"status"`
	InvoiceFile   string `json:"invoiceFile,omitempty"`
	InvoiceXML    string `json:"invoiceXml,omitempty"`
}

type partnerAnswer struct {
	Result  int              `json:"result"`
	Message string           `json:"message"`
	Data    []partnerInvoice `json:"data,omitempty"`
}

// noChannelSecret is what a query of a channel that does not exist is
// signed with for the comparison that refuses it: a query is refused then
// whatever its signature, by the same work as a wrong signature.
var noChannelSecret = []byte("no channel has this secret")

// partnerSign computes the signature of a partner query.
func partnerSign(secret []byte, channel, requestID, timestamp string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("channel=" + channel + "&requestId=" + requestID + "&timestamp=" + timestamp))
	return hex.EncodeToString(m.Sum(nil))
}

func (p *partnerAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Answers carry invoices and their PDFs, and change as the order does:
	// no cache or proxy keeps them.
	w.Header().Set("Cache-Control", "no-store")
	q := r.URL.Query()
	channel, ts, sign, requestID := q.Get("channel"), q.Get("timestamp"), q.Get("sign"), q.Get("requestId")
	if channel == "" || ts == "" || sign == "" || requestID == "" {
		p.fail(w, http.StatusBadRequest, 1001, "channel, timestamp, sign and requestId are required")
		return
	}
	// A channel that does not exist is refused with the signature below,
	// checked against a secret no channel has: an answer of its own, or
	// one before the timestamp's, would tell which channels exist.
	secret, known := p.secrets[channel]
	if !known {
		secret = noChannelSecret
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		p.fail(w, http.StatusBadRequest, 1001, "timestamp must be Unix milliseconds")
		return
	}
	if d := p.now().Sub(time.UnixMilli(ms)); d > p.window || d < -p.window {
		p.fail(w, http.StatusUnauthorized, 1003, fmt.Sprintf("timestamp is %s away from the server's clock; the window is %s", d.Round(time.Second).Abs(), p.window))
		return
	}
	want := partnerSign(secret, channel, requestID, ts)
	if !hmac.Equal([]byte(strings.ToLower(sign)), []byte(want)) || !known {
		p.fail(w, http.StatusUnauthorized, 1004, "unknown channel or wrong signature: sign = hex(HMAC-SHA256(the channel's secret, \"channel=…&requestId=…&timestamp=…\"))")
		return
	}
	seller, orderNo, ok := strings.Cut(requestID, ":")
	if !ok || seller == "" || len(schemas.NormalizeTaxNumber(seller)) > 20 || !schemas.ValidOrderNo(orderNo) {
		p.fail(w, http.StatusBadRequest, 1001, "requestId must be <sellerTaxNum>:<orderNo>, the tax number at most 20 characters, the order number 1 to 20 printable ASCII characters without spaces")
		return
	}
	key := schemas.OrderKey{Seller: schemas.NormalizeTaxNumber(seller), OrderNo: orderNo}
	if allowed, scoped := p.sellers[channel]; scoped && !allowed[key.Seller] {
		p.fail(w, http.StatusNotFound, 1005, "no such request")
		return
	}
	// The wait for a turn counts in the query's time.
	ctx, cancel := context.WithTimeout(r.Context(), partnerQueryTimeout)
	defer cancel()
	release, ok := p.acquire(ctx)
	if !ok && r.Context().Err() != nil {
		return // the partner hung up while it waited for a turn: nobody to answer
	}
	if !ok {
		w.Header().Set("Retry-After", "1")
		p.fail(w, http.StatusTooManyRequests, 1007, fmt.Sprintf("too many queries at once (at most %d); ask again shortly", cap(p.slots)))
		return
	}
	defer release()
	rec, found, err := p.lookup(ctx, key)
	if errors.Is(err, store.ErrInvalidKey) {
		p.fail(w, http.StatusBadRequest, 1001, "requestId names an order no request can have")
		return
	}
	if errors.Is(err, pipeline.ErrStatusTimeout) {
		p.fail(w, http.StatusInternalServerError, 1500, "the consumer instance that owns this seller did not answer; ask again later")
		return
	}
	if err != nil {
		p.fail(w, http.StatusInternalServerError, 1500, "order store unavailable")
		return
	}
	if !found {
		p.fail(w, http.StatusNotFound, 1005, "no such request")
		return
	}
	data, err := p.entries(ctx, &rec)
	if err != nil {
		// A link that gives no PDF yet, shortly after the order completed,
		// is the provider's usual delay; the rest (the object store, the
		// provider's 5xx, a timeout) is worth the SRE's eye.
		ev := p.log.Warn()
		if errors.Is(err, pipeline.ErrDocumentGone) {
			ev = p.log.Info()
		}
		ev.Err(err).Str("seller", key.Seller).Str("order_no", key.OrderNo).Str("channel", channel).
			Msg("partner query answered 1006: the order's invoice documents are not available")
		w.Header().Set("Retry-After", "30")
		p.fail(w, http.StatusServiceUnavailable, 1006, "the invoice document is not available yet; ask again shortly")
		return
	}
	p.count(0)
	writeJSONStatus(w, http.StatusOK, partnerAnswer{Result: 0, Message: "SUCCESS", Data: data})
}

// lookup reads the order from this instance's store, or, with partitions,
// asks the instance that owns its seller; once this instance stood down,
// it asks the owner of every seller.
func (p *partnerAPI) lookup(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	if p.remote != nil && (p.stoodDown != nil && p.stoodDown() ||
		p.partitions > 1 && pipeline.PartitionOf(key.Seller, p.partitions) != p.partition) {
		return p.remote(ctx, key)
	}
	return p.store.Get(ctx, key)
}

// statusLookup asks the status service for an order: what the partner API
// answers with for the sellers of other partitions. A request the service
// refuses as unreadable is an order no request can have
// (store.ErrInvalidKey).
func statusLookup(nc *nats.Conn, subjects schemas.Subjects) func(context.Context, schemas.OrderKey) (schemas.OrderRecord, bool, error) {
	return func(ctx context.Context, key schemas.OrderKey) (schemas.OrderRecord, bool, error) {
		reply, err := pipeline.RequestStatus(ctx, nc, subjects, pipeline.StatusRequest{Seller: key.Seller, OrderNo: key.OrderNo})
		var se *pipeline.StatusError
		switch {
		case errors.As(err, &se) && se.Code == "400":
			return schemas.OrderRecord{}, false, fmt.Errorf("%w: %s", store.ErrInvalidKey, se.Description)
		case err != nil:
			return schemas.OrderRecord{}, false, err
		case !reply.Found || reply.Order == nil:
			return schemas.OrderRecord{}, false, nil
		}
		return *reply.Order, true, nil
	}
}

// entries maps an order to the answer's data: one entry per invoice, and
// for a split order that failed in part (rejected, with the invoices that
// were issued) those invoices and then one failed entry for the rest. An
// order issued without an invoice (a confirmed red confirmation form of a
// paper invoice, for which the platform issues none) has no entry.
func (p *partnerAPI) entries(ctx context.Context, rec *schemas.OrderRecord) ([]partnerInvoice, error) {
	switch rec.State {
	case schemas.StateIssued:
	case schemas.StateRejected, schemas.StateFailed:
		if len(rec.Invoices) == 0 {
			return []partnerInvoice{{InvoiceID: invoiceID(rec.Key(), 0), Status: 3}}, nil
		}
	default:
		return []partnerInvoice{{InvoiceID: invoiceID(rec.Key(), 0), Status: 4}}, nil
	}
	var pdfs [][]byte
	if p.docs != nil {
		var err error
		var gone bool
		pdfs, gone, err = p.documents(ctx, rec)
		completed := rec.CompletedAt
		if completed.IsZero() {
			completed = rec.ReceivedAt
		}
		if err != nil && (!gone || p.now().Sub(completed) < partnerDocumentPatience) {
			return nil, err
		}
	}
	out := make([]partnerInvoice, 0, len(rec.Invoices)+1)
	for i, inv := range rec.Invoices {
		e := partnerInvoice{InvoiceID: invoiceID(rec.Key(), i), Status: 1, InvoiceCode: inv.InvoiceCode, InvoiceNumber: inv.InvoiceNo, InvoiceXML: inv.XMLURL}
		if e.InvoiceNumber == "" {
			e.InvoiceNumber = inv.DigitalInvoiceNo
		}
		if e.InvoiceCode == "" { // 数电发票无发票代码可以传发票号码
			e.InvoiceCode = e.InvoiceNumber
		}
		if i < len(pdfs) && pdfs[i] != nil {
			e.InvoiceFile = base64.StdEncoding.EncodeToString(pdfs[i])
		}
		out = append(out, e)
	}
	if rec.State != schemas.StateIssued {
		out = append(out, partnerInvoice{InvoiceID: invoiceID(rec.Key(), len(rec.Invoices)), Status: 3})
	}
	return out, nil
}

// documents returns the PDFs of an order's invoices by position (nil for
// an invoice without a PDF link, or one that cannot be had: the error says
// which), and whether every one that cannot be had is gone
// (pipeline.ErrDocumentGone: its link gives no PDF), none of them for an
// outage. Those not kept at issuance are fetched and kept now, with one
// Keep for the order.
func (p *partnerAPI) documents(ctx context.Context, rec *schemas.OrderRecord) (pdfs [][]byte, gone bool, err error) {
	pdfs = make([][]byte, len(rec.Invoices))
	missing := false
	for i, inv := range rec.Invoices {
		if inv.PdfURL == "" {
			continue
		}
		// A name the record lists is the order's name of before
		// 2026-12-06, which may be another order's today (A.1's was
		// A_1's): Get serves the object only when it is known to be the
		// order's, and Keep fetches the others again.
		if i < len(rec.Documents) && rec.Documents[i] != "" {
			if pdf, err := p.docs.Get(ctx, rec.Key(), rec.Documents[i]); err == nil {
				pdfs[i] = pdf
				continue
			}
		}
		missing = true
	}
	if !missing {
		return pdfs, false, nil
	}
	names, keepErr := p.docs.Keep(ctx, rec.Key(), rec.Invoices)
	failed := pipeline.DocumentErrors(keepErr)
	var errs []error
	gone = true
	for i, inv := range rec.Invoices {
		if inv.PdfURL == "" || pdfs[i] != nil {
			continue
		}
		var err error
		if i < len(names) && names[i] != "" {
			pdfs[i], err = p.get(ctx, rec.Key(), names[i])
		} else if err = failed[i]; err == nil {
			err = errors.Join(errors.New("document unavailable"), keepErr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("invoice %d: %w", i, err))
			gone = gone && failed[i] != nil && errors.Is(failed[i], pipeline.ErrDocumentGone)
		}
	}
	return pdfs, gone && len(errs) > 0, errors.Join(errs...)
}

// get reads a kept document. The background keeper may be storing the same
// document at this moment, replacing it while it is read: give it a moment,
// a few times.
func (p *partnerAPI) get(ctx context.Context, key schemas.OrderKey, name string) ([]byte, error) {
	var err error
	for try := 0; try < 3; try++ {
		var pdf []byte
		if pdf, err = p.docs.Get(ctx, key, name); err == nil {
			return pdf, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, err
}

// invoiceID derives the stable numeric invoice id the seed asks for (at
// most 15 digits) from the order and the invoice's position.
func invoiceID(key schemas.OrderKey, i int) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key.String() + ":" + strconv.Itoa(i)))
	return int64(h.Sum64()%999_999_999_999_999) + 1
}

func (p *partnerAPI) fail(w http.ResponseWriter, status, code int, msg string) {
	p.count(code)
	writeJSONStatus(w, status, partnerAnswer{Result: code, Message: msg})
}

func writeJSONStatus(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
