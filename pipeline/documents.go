package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

// Documents keeps the documents of issued invoices.
type Documents interface {
	// Keep fetches and stores the documents (PDFs) of an order's invoices
	// and returns their names in the same order as invoices ("" for an
	// invoice without a document URL, or one that failed: its failure is
	// a *DocumentError in the error, see DocumentErrors). It is
	// idempotent.
	Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error)
	// Get returns the stored document name of the order key: a name Keep
	// returned for key, or one its record lists. It fails with
	// ErrForeignDocument when the object under name is not known to be
	// key's.
	Get(ctx context.Context, key schemas.OrderKey, name string) ([]byte, error)
}

// DocumentBucket is the JetStream object store bucket of invoice documents.
const DocumentBucket = "INVOICE_DOCUMENTS"

// DefaultMaxDocumentBytes bounds one downloaded document.
const DefaultMaxDocumentBytes = 16 << 20

// ObjectDocuments downloads invoice PDFs from the provider's pdfUrl and keeps
// them in a JetStream object store bucket, named
// "<seller>/<orderNo>/<n>.pdf" (DocumentName), each with its order's seller
// and order number in the object's metadata. A PDF is the order's only
// when its metadata names the order, or, for one kept without metadata
// (by the builds until 2026-12-07), when its name is one no other order's
// PDF could ever have had (see unsharedName): the names of before
// 2026-12-06 wrote '.', '*', '>' and spaces '_', and '%' and '/' as they
// are, so that the old name of order A.1 is the name of order A_1 today,
// and the old name of order A%2E1 is A.1's. Any other object under the
// order's name is not served, and is left as it is: it may be another
// order's only copy. The order's PDF is fetched again from the provider
// and kept beside it, under documentOwnName. A PDF lost with an expired
// link is better than another buyer's.
//
// Two keepers may keep one order's PDF at the same moment (a keeper and the
// partner API, or two instances' keepers for an order both issued): its
// writes are serialised by the object's metadata (see put), so that they
// leave no chunks in the bucket that no object names.
type ObjectDocuments struct {
	obj jetstream.ObjectStore
	// js and stream, the bucket's stream, write a PDF (put).
	js       jetstream.JetStream
	stream   jetstream.Stream
	client   *http.Client
	maxBytes int64
}

// documentStream is the stream of the document bucket, as the object
// store names a bucket's stream.
const documentStream = "OBJ_" + DocumentBucket

// OpenDocuments creates (or opens) the document bucket. client downloads the
// PDFs; replicas is the bucket's replica count.
func OpenDocuments(ctx context.Context, js jetstream.JetStream, client *http.Client, replicas int) (*ObjectDocuments, error) {
	obj, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      DocumentBucket,
		Description: "Invoice PDFs downloaded at issuance; served by the partner API",
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Compression: true,
	})
	if err != nil {
		return nil, fmt.Errorf("document bucket %s: %w", DocumentBucket, err)
	}
	return openedDocuments(ctx, js, obj, client)
}

// openedDocuments is the ObjectDocuments of obj, the document bucket
// opened on js.
func openedDocuments(ctx context.Context, js jetstream.JetStream, obj jetstream.ObjectStore, client *http.Client) (*ObjectDocuments, error) {
	stream, err := js.Stream(ctx, documentStream)
	if err != nil {
		return nil, fmt.Errorf("document bucket %s: %w", DocumentBucket, err)
	}
	return &ObjectDocuments{obj: obj, js: js, stream: stream, client: client, maxBytes: DefaultMaxDocumentBytes}, nil
}

// OpenExistingDocuments opens the document bucket as it is, changing
// nothing of it (OpenDocuments updates it to this instance's settings), for
// an instance that must leave the bucket as another instance set it up (a
// start refused because another instance pulls from the request consumer).
// client downloads the PDFs. It fails with an error wrapping
// jetstream.ErrBucketNotFound when the bucket does not exist.
func OpenExistingDocuments(ctx context.Context, js jetstream.JetStream, client *http.Client) (*ObjectDocuments, error) {
	obj, err := js.ObjectStore(ctx, DocumentBucket)
	if err != nil {
		return nil, fmt.Errorf("document bucket %s: %w", DocumentBucket, err)
	}
	return openedDocuments(ctx, js, obj, client)
}

// DocumentName is the object name of an order's n-th invoice PDF:
// "<seller>/<orderNo>/<n>.pdf", with the characters of the seller and the
// order number that a name part cannot hold as they are written %XX (see
// documentNamePart), so that two orders never share a name.
func DocumentName(key schemas.OrderKey, n int) string {
	return fmt.Sprintf("%s/%s/%d.pdf", documentNamePart(key.Seller), documentNamePart(key.OrderNo), n)
}

// documentNamePart writes '%', '/', '.', '*', '>', spaces, control
// characters and bytes outside ASCII as %XX, and every other byte as it is:
// one-to-one, and the same name as before 2026-12-06 (when '.', '*', '>'
// and spaces were written '_', and '%' and '/' as they are) for an order
// number without any of those characters. An order number with one now
// gets a name of its own. Its PDFs kept before under the old name stay
// there, named by its record or found by Keep, and are served when the old
// name is no other order's (see unsharedName: an order number whose only
// such characters are '/' and a '%' that starts no %XX of today's names);
// otherwise the order's PDFs are fetched again under the new name.
func documentNamePart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("%/.*>", c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// documentOwnName is the name of an order's n-th invoice PDF when
// DocumentName holds an object that is not known to be the order's (kept
// without metadata under what may be another order's old name, see
// ObjectDocuments): "<seller>/<orderNo>/<n>.own.pdf", kept with metadata
// beside that object rather than over it. No name of today or of before
// 2026-12-06 ends so: theirs end "/<n>.pdf".
func documentOwnName(key schemas.OrderKey, n int) string {
	return fmt.Sprintf("%s/%s/%d.own.pdf", documentNamePart(key.Seller), documentNamePart(key.OrderNo), n)
}

// The metadata of a kept PDF that names its order.
const (
	documentSellerMeta  = "seller"
	documentOrderNoMeta = "order_no"
)

// documentOf reports whether the object info describes, under name, a PDF
// of the order key: its metadata names key, or it has none (it was kept
// before PDFs carried their order) and name is unshared.
func documentOf(info *jetstream.ObjectInfo, key schemas.OrderKey, name string) bool {
	if seller, marked := info.Metadata[documentSellerMeta]; marked {
		return seller == key.Seller && info.Metadata[documentOrderNoMeta] == key.OrderNo
	}
	return unsharedName(key, name)
}

// unsharedName reports whether name is a name of key's PDFs that no other
// order's PDF can have had, under today's names or those of before
// 2026-12-06: "<seller>/<orderNo>/<n>.pdf" with the seller and the order
// number as they are, for an order whose name that is alone (unsharedKey).
// It is the order's name of before 2026-12-06, and its name today too when
// the order number holds no '%' or '/'. An object kept without metadata
// under such a name can be key's only; under any other, it may be another
// order's.
func unsharedName(key schemas.OrderKey, name string) bool {
	rest, ok := strings.CutPrefix(name, key.Seller+"/"+key.OrderNo+"/")
	if !ok || !unsharedKey(key) {
		return false
	}
	n, ok := strings.CutSuffix(rest, ".pdf")
	i, err := strconv.Atoi(n)
	return ok && err == nil && i >= 0 && strconv.Itoa(i) == n
}

// unsharedKey reports whether "<seller>/<orderNo>/<n>.pdf", the seller and
// the order number written as they are, was and is no other order's name:
// the seller is a plain name part; the order number is printable ASCII
// without '_' (which the names of before 2026-12-06 gave A.1, A*1 and A>1
// too), '.', '*' or '>' (which they wrote '_'); and it is no other order's
// name part today (A%2E1 is A.1's). Its '/' and a '%' that starts no %XX
// of today's names leave the name the order's alone: the old names wrote
// them as they are, and today's write them %XX.
func unsharedKey(key schemas.OrderKey) bool {
	if !plainNamePart(key.Seller) || key.OrderNo == "" {
		return false
	}
	for i := 0; i < len(key.OrderNo); i++ {
		if c := key.OrderNo[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("_.*>", c) >= 0 {
			return false
		}
	}
	other, ok := unescapeNamePart(key.OrderNo)
	return !ok || other == key.OrderNo || documentNamePart(other) != key.OrderNo
}

// unescapeNamePart undoes documentNamePart's %XX; it fails on a '%' that
// does not start two hexadecimal digits.
func unescapeNamePart(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		c, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), true
}

// plainNamePart reports whether s is not empty and every name of before
// 2026-12-06 and of today holds it as it is, without '_' or '%'.
func plainNamePart(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte("%/.*>_", c) >= 0 {
			return false
		}
	}
	return s != ""
}

// ErrForeignDocument is returned by Get when the object under the name
// asked for is not known to be the order's (see ObjectDocuments): it names
// another order, or it was kept without naming its order under a name
// another order's PDF may have had.
var ErrForeignDocument = errors.New("the stored document is not known to be the order's")

// maxDocumentChunk is the largest object-store chunk of a kept PDF: the
// object store's default chunk size.
const maxDocumentChunk = 128 << 10

// ErrNotPDF is returned when a document URL answers with something that is
// not a PDF. It wraps ErrDocumentGone.
var ErrNotPDF = fmt.Errorf("document is not a PDF: %w", ErrDocumentGone)

// ErrDocumentGone wraps the download failures that asking again will not
// mend: the link answers a client error (4xx but 408 and 429: not found,
// gone, an expired or refused signature), or something that is not a PDF
// (ErrNotPDF too), or a document over the size limit. An outage (the
// provider's 5xx, a timeout, the object store) is not one of them.
var ErrDocumentGone = errors.New("the document link gives no PDF")

// DocumentError is Keep's failure to keep one invoice's document; Keep
// joins one for each invoice that failed.
type DocumentError struct {
	Key     schemas.OrderKey
	Invoice int // the invoice's position in the order
	Err     error
}

func (e *DocumentError) Error() string {
	return fmt.Sprintf("invoice %d of %s: %v", e.Invoice, e.Key, e.Err)
}

// Unwrap returns the cause.
func (e *DocumentError) Unwrap() error { return e.Err }

// DocumentErrors returns the failures of Keep's error by invoice position.
func DocumentErrors(err error) map[int]error {
	out := map[int]error{}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, e := range errs {
		var de *DocumentError
		if errors.As(e, &de) {
			out[de.Invoice] = de.Err
		}
	}
	return out
}

// Keep implements Documents.
func (d *ObjectDocuments) Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	names := make([]string, len(invoices))
	var errs []error
	for i, inv := range invoices {
		if inv.PdfURL == "" {
			continue
		}
		name, kept, err := d.find(ctx, key, i)
		if err != nil {
			// The object store cannot say: downloading again would
			// not tell whether it holds the document already.
			errs = append(errs, &DocumentError{Key: key, Invoice: i, Err: err})
			continue
		}
		if kept {
			names[i] = name // kept by an earlier delivery, or before 2026-12-06
			continue
		}
		pdf, err := d.download(ctx, inv.PdfURL)
		if err != nil {
			errs = append(errs, &DocumentError{Key: key, Invoice: i, Err: err})
			continue
		}
		if err := d.put(ctx, key, name, pdf); err != nil {
			errs = append(errs, &DocumentError{Key: key, Invoice: i, Err: fmt.Errorf("store %s: %w", name, err)})
			continue
		}
		names[i] = name
	}
	return names, errors.Join(errs...)
}

// put keeps pdf, the PDF of the order key, under name, written as the
// object store's Put writes an object (its chunks under a subject of their
// own, then its metadata, which names them, replacing the object's
// metadata before; then the chunks that one named are removed), with one
// difference: the metadata is written only over the metadata that put
// read before it wrote the chunks (the server refuses it otherwise: the
// last sequence expected of the metadata's subject). The object store's
// Put writes its metadata over whatever is there: two keepers writing one
// order's PDF at the same moment both read no object (or the same one),
// both write their chunks and metadata, and each removes the chunks of
// the object it read; the chunks of the copy whose metadata the other's
// replaced stay in the bucket for good, named by no object, which neither
// the object store nor anything here ever removes. Here the keeper whose
// metadata is refused removes its own chunks, and finds the order's PDF
// kept by the other. It returns nil when the PDF is kept, by this call or
// by another keeper meanwhile.
//
// A failure after the chunks are written removes them, unless the
// metadata may have been written (its publication got no answer): the
// object would then name removed chunks. Chunks of a write cut short by a
// crash stay, as the object store's own leave them.
func (d *ObjectDocuments) put(ctx context.Context, key schemas.OrderKey, name string, pdf []byte) error {
	metaSubj := "$O." + DocumentBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name)) // the object store's names
	var last uint64
	var before *jetstream.ObjectInfo
	m, err := d.stream.GetLastMsgForSubject(ctx, metaSubj)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return fmt.Errorf("look up %s: %w", name, err)
	default:
		last, before = m.Sequence, &jetstream.ObjectInfo{}
		if err := json.Unmarshal(m.Data, before); err != nil {
			before = nil // written over, as the object store does; its chunks are unknown
		} else if !before.Deleted && documentOf(before, key, name) {
			return nil // kept meanwhile by another keeper
		}
	}

	id := rand.Text()
	chunkSubj := "$O." + DocumentBucket + ".C." + id
	drop := func(nuid string) {
		_ = d.stream.Purge(ctx, jetstream.WithPurgeSubject("$O."+DocumentBucket+".C."+nuid))
	}
	// Chunks of the document's own size, up to the default chunk size:
	// the default would allocate 128 KiB for every small PDF, and one
	// chunk of a large one would pass the server's largest message (1 MiB
	// in every configuration here).
	size := min(max(len(pdf), 1), maxDocumentChunk)
	digest := sha256.New()
	chunks := 0
	for off := 0; off < len(pdf); off += size {
		chunk := pdf[off:min(off+size, len(pdf))]
		digest.Write(chunk)
		if _, err := d.js.Publish(ctx, chunkSubj, chunk); err != nil {
			drop(id)
			return err
		}
		chunks++
	}
	info := jetstream.ObjectInfo{Bucket: DocumentBucket, NUID: id, Size: uint64(len(pdf)), Chunks: uint32(chunks),
		Digest: jetstream.GetObjectDigestValue(digest),
		ObjectMeta: jetstream.ObjectMeta{Name: name,
			Metadata: map[string]string{documentSellerMeta: key.Seller, documentOrderNoMeta: key.OrderNo},
			Opts:     &jetstream.ObjectMetaOptions{ChunkSize: uint32(size)}}}
	meta := nats.NewMsg(metaSubj)
	meta.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	if meta.Data, err = json.Marshal(info); err != nil {
		drop(id)
		return err
	}
	_, err = d.js.PublishMsg(ctx, meta, jetstream.WithExpectLastSequencePerSubject(last))
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) {
		drop(id) // refused: the object is as it was
		if apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
			return err
		}
		// Another keeper wrote the object since it was read.
		now, gerr := d.obj.GetInfo(ctx, name)
		if gerr == nil && documentOf(now, key, name) {
			return nil
		}
		return fmt.Errorf("%w; the object was written meanwhile, and is not the order's PDF (%v)", err, gerr)
	}
	if err != nil {
		return err // written or not: its chunks stay
	}
	if before != nil && !before.Deleted && before.NUID != "" {
		drop(before.NUID)
	}
	return nil
}

// find looks for the order's n-th invoice PDF under DocumentName, then
// under the order's name of before 2026-12-06 when that is the order's
// alone (unsharedName), and under documentOwnName when DocumentName holds
// an object not known to be the order's (see ObjectDocuments). It returns
// the name the PDF is kept under and true, or the name to keep it under
// and false: DocumentName, or documentOwnName beside the object that
// DocumentName holds, which is left as it is.
func (d *ObjectDocuments) find(ctx context.Context, key schemas.OrderKey, n int) (name string, kept bool, err error) {
	name = DocumentName(key, n)
	info, err := d.obj.GetInfo(ctx, name)
	if err == nil && documentOf(info, key, name) {
		return name, true, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", false, fmt.Errorf("look up %s: %w", name, err)
	}
	taken := err == nil
	var others []string
	if old := fmt.Sprintf("%s/%s/%d.pdf", key.Seller, key.OrderNo, n); old != name && unsharedName(key, old) {
		others = append(others, old)
	}
	if taken {
		name = documentOwnName(key, n)
		others = append(others, name)
	}
	for _, other := range others {
		info, err := d.obj.GetInfo(ctx, other)
		if err == nil && documentOf(info, key, other) {
			return other, true, nil
		}
		if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return "", false, fmt.Errorf("look up %s: %w", other, err)
		}
	}
	return name, false, nil
}

// Get implements Documents. The object is checked by the metadata its
// chunks are read by, so that a PDF replaced meanwhile is never served on
// the strength of another's metadata.
func (d *ObjectDocuments) Get(ctx context.Context, key schemas.OrderKey, name string) ([]byte, error) {
	r, err := d.obj.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", name, err)
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", name, err)
	}
	if !documentOf(info, key, name) {
		return nil, fmt.Errorf("document %s of %s: %w", name, key, ErrForeignDocument)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("document %s: %w", name, err)
	}
	return b, nil
}

func (d *ObjectDocuments) download(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("document url: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download document: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return nil, fmt.Errorf("download document: %w: HTTP %d", ErrDocumentGone, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download document: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, d.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download document: %w", err)
	}
	if int64(len(b)) > d.maxBytes {
		return nil, fmt.Errorf("download document: %w: larger than %d bytes", ErrDocumentGone, d.maxBytes)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		return nil, ErrNotPDF
	}
	return b, nil
}

// DocumentIndex is what the keeper needs of the order store: the issued
// orders whose documents have yet to be kept. *store.DB implements it.
type DocumentIndex interface {
	// PendingDocuments returns up to n such orders in key order after
	// after (the zero key: from the first), passing over the keys skip
	// returns true for; next is the last key looked at, the zero key once
	// there are no more.
	PendingDocuments(ctx context.Context, after schemas.OrderKey, n int, skip func(schemas.OrderKey) bool) (docs []store.PendingDocument, next schemas.OrderKey, err error)
	// DocumentsKept removes orders whose documents are kept.
	DocumentsKept(ctx context.Context, keys []schemas.OrderKey) error
}

// KeeperConfig configures a DocumentKeeper.
type KeeperConfig struct {
	// Workers is how many orders' documents are kept at once; 0 means 4.
	Workers int
	// Timeout bounds keeping one order's documents; 0 means 10s.
	Timeout time.Duration
	// Busy, when set, reports that the requests are behind (Loop.Behind).
	// While it does, the keeper keeps one order's documents at a time, one
	// every BusyEvery, and leaves the disk and the CPU to the requests; the
	// orders it has not reached wait in the order store's index.
	Busy func() bool
	// BusyEvery is the keeper's pace while Busy; 0 means 100ms.
	BusyEvery time.Duration
	// PassEvery is the least time between the starts of two passes through
	// the index when the keeper is woken: the wakes in between are served
	// by one pass. A pass reads the whole index, including the orders that
	// wait out a failure's backoff, so back-to-back passes while orders are
	// issued steadily would read those again and again. 0 means 100ms.
	PassEvery time.Duration
	// Rescan is how often the keeper reads the index without being woken:
	// orders left by a restart, and orders whose documents failed, are
	// found this way. 0 means 30s.
	Rescan time.Duration
	// RetryBase and RetryMax bound the wait before an order whose documents
	// could not be kept is tried again, doubling from RetryBase; 0 means
	// 10s and 1h.
	RetryBase, RetryMax time.Duration
}

func (c KeeperConfig) withDefaults() KeeperConfig {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultDocumentTimeout
	}
	if c.BusyEvery <= 0 {
		c.BusyEvery = 100 * time.Millisecond
	}
	if c.PassEvery <= 0 {
		c.PassEvery = 100 * time.Millisecond
	}
	if c.Rescan <= 0 {
		c.Rescan = 30 * time.Second
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	return c
}

// keeperChunk is how many index keys the keeper reads at a time.
const keeperChunk = 64

// DocumentKeeper keeps the documents of issued orders in the background, so
// that downloading a PDF and writing it to the object store never delays an
// invoice's result. It works from the order store's pending-documents index
// (DocumentIndex), which the order store fills in the same transaction that
// saves an order as issued: nothing is lost to a full queue, a failure or a
// crash, and an order whose documents fail is tried again with backoff.
// While the requests are behind (KeeperConfig.Busy) it slows to a trickle
// and catches up once the backlog is gone. What it has not kept yet is
// fetched when first asked for: Documents.Keep is idempotent.
type DocumentKeeper struct {
	docs    Documents
	index   DocumentIndex
	cfg     KeeperConfig
	metrics *Metrics
	log     zerolog.Logger

	wake     chan struct{}      // a new issued order: read the index again
	stop     chan struct{}      // closed by Stop: keep no more orders
	aborted  context.Context    // ended when Stop's context ends: give up the orders in hand
	abort    context.CancelFunc // ends aborted
	stopOnce sync.Once
	done     chan struct{} // closed when run returns

	// failed holds the orders whose documents could not be kept, until
	// their next try. Only run's goroutine uses it.
	failed map[schemas.OrderKey]docRetry
}

// docRetry is when an order whose documents failed is tried again.
type docRetry struct {
	failures int
	at       time.Time
}

// NewDocumentKeeper starts a keeper of the documents that index lists,
// kept with docs; metrics may be nil. Stop it with Stop.
func NewDocumentKeeper(docs Documents, index DocumentIndex, cfg KeeperConfig, log zerolog.Logger, metrics *Metrics) *DocumentKeeper {
	k := &DocumentKeeper{docs: docs, index: index, cfg: cfg.withDefaults(), metrics: metrics, log: log,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		failed: map[schemas.OrderKey]docRetry{}}
	k.aborted, k.abort = context.WithCancel(context.Background())
	go k.run()
	return k
}

// Wake tells the keeper that an order was saved as issued with documents
// to keep. It never blocks.
func (k *DocumentKeeper) Wake() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Stop makes the keeper take no more orders and lets it finish the ones in
// hand until ctx ends, when it gives them up; what it has not kept stays in
// the index for the next start. It may be called more than once.
func (k *DocumentKeeper) Stop(ctx context.Context) {
	k.stopOnce.Do(func() {
		close(k.stop)
		select {
		case <-k.done:
		case <-ctx.Done():
			k.abort()
			<-k.done
		}
		k.abort()
	})
}

func (k *DocumentKeeper) stopped() bool {
	select {
	case <-k.stop:
		return true
	default:
		return false
	}
}

// run reads the index once at the start, and again whenever woken (at most
// once every PassEvery) or every Rescan, until Stop.
func (k *DocumentKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(k.cfg.Rescan)
	defer t.Stop()
	for {
		started := time.Now()
		k.pass()
		select {
		case <-k.stop:
			return
		case <-k.wake:
		case <-t.C:
		}
		if wait := k.cfg.PassEvery - time.Since(started); wait > 0 {
			select {
			case <-k.stop:
				return
			case <-time.After(wait):
			}
		}
	}
}

// pass goes through the index once, keeping the documents of every order
// that is not waiting for its next try.
func (k *DocumentKeeper) pass() {
	now := time.Now()
	waiting := func(key schemas.OrderKey) bool {
		r, ok := k.failed[key]
		return ok && now.Before(r.at)
	}
	var after schemas.OrderKey
	failures, failed := 0, error(nil)
	defer func() {
		if failures > 0 {
			k.log.Warn().Err(failed).Int("orders", failures).Msg("invoice documents could not be kept; they are tried again later, and fetched from the provider when asked for meanwhile")
		}
	}()
	for !k.stopped() {
		ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
		pending, next, err := k.index.PendingDocuments(ctx, after, keeperChunk, waiting)
		cancel()
		if err != nil {
			k.log.Warn().Err(err).Msg("read the orders whose documents are still to be kept")
			return
		}
		errs := k.keepAll(pending)
		var kept []schemas.OrderKey
		for i, err := range errs {
			key := pending[i].Key
			switch {
			case errors.Is(err, errNotTried):
			case err == nil:
				kept = append(kept, key)
				delete(k.failed, key)
				k.metrics.document("kept")
			default:
				if pending[i].Damaged != nil {
					k.log.Error().Err(err).Str("order", key.String()).Msg("the order store's entry for this order is damaged: its invoice documents cannot be kept until orders.db is repaired or restored; the other orders are kept as usual")
				}
				r := k.failed[key]
				r.failures++
				r.at = time.Now().Add(doubling(k.cfg.RetryBase, k.cfg.RetryMax, r.failures))
				k.failed[key] = r
				k.metrics.document("failed")
				failures++
				if failed == nil {
					failed = err
				}
			}
		}
		if len(kept) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
			err := k.index.DocumentsKept(ctx, kept)
			cancel()
			if err != nil {
				// They stay listed; the next pass finds them kept.
				k.log.Warn().Err(err).Int("orders", len(kept)).Msg("record that invoice documents are kept")
			}
		}
		if next == (schemas.OrderKey{}) {
			return
		}
		after = next
	}
}

// errNotTried marks the orders of a chunk that Stop overtook or gave up.
var errNotTried = errors.New("not tried")

// keepAll keeps the documents of pending, Workers orders at a time, or one
// at a time at the busy pace while the requests are behind, and returns
// each one's error.
func (k *DocumentKeeper) keepAll(pending []store.PendingDocument) []error {
	errs := make([]error, len(pending))
	sem := make(chan struct{}, k.cfg.Workers)
	var wg sync.WaitGroup
	for i := range pending {
		if k.stopped() {
			errs[i] = errNotTried
			continue
		}
		if k.cfg.Busy != nil && k.cfg.Busy() {
			wg.Wait()
			errs[i] = k.keep(&pending[i])
			select {
			case <-time.After(k.cfg.BusyEvery):
			case <-k.stop:
			}
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = k.keep(&pending[i])
		})
	}
	wg.Wait()
	return errs
}

// keep keeps one order's documents within the keeper's timeout, giving up
// early when Stop aborts. An order whose index entry and record are both
// damaged fails at once, and is tried again with the others that failed.
func (k *DocumentKeeper) keep(d *store.PendingDocument) error {
	if d.Damaged != nil {
		return d.Damaged
	}
	ctx, cancel := context.WithTimeout(k.aborted, k.cfg.Timeout)
	defer cancel()
	// Documents.Keep needs only each invoice's PDF link and position.
	invoices := make([]schemas.Invoice, len(d.PdfURLs))
	for i, u := range d.PdfURLs {
		invoices[i].PdfURL = u
	}
	_, err := k.docs.Keep(ctx, d.Key, invoices)
	if err != nil && k.aborted.Err() != nil {
		return errNotTried // given up by Stop: not the documents' failure
	}
	return err
}
