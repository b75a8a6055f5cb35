package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// Documents keeps the documents of issued invoices.
type Documents interface {
	// Keep fetches and stores the documents (PDFs) of an order's invoices
	// and returns their names in the same order as invoices ("" for an
	// invoice without a document URL). It is idempotent.
	Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error)
	// Get returns a stored document.
	Get(ctx context.Context, name string) ([]byte, error)
}

// DocumentBucket is the JetStream object store bucket of invoice documents.
const DocumentBucket = "INVOICE_DOCUMENTS"

// DefaultMaxDocumentBytes bounds one downloaded document.
const DefaultMaxDocumentBytes = 16 << 20

// ObjectDocuments downloads invoice PDFs from the provider's pdfUrl and keeps
// them in a JetStream object store bucket, named
// "<seller>/<orderNo>/<n>.pdf".
type ObjectDocuments struct {
	obj      jetstream.ObjectStore
	client   *http.Client
	maxBytes int64
}

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
	return &ObjectDocuments{obj: obj, client: client, maxBytes: DefaultMaxDocumentBytes}, nil
}

// DocumentName is the object name of an order's n-th invoice PDF.
func DocumentName(key schemas.OrderKey, n int) string {
	return fmt.Sprintf("%s/%s/%d.pdf", schemas.SubjectToken(key.Seller), schemas.SubjectToken(key.OrderNo), n)
}

// ErrNotPDF is returned when a document URL answers with something that is
// not a PDF.
var ErrNotPDF = errors.New("document is not a PDF")

// Keep implements Documents.
func (d *ObjectDocuments) Keep(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error) {
	names := make([]string, len(invoices))
	var errs []error
	for i, inv := range invoices {
		if inv.PdfURL == "" {
			continue
		}
		name := DocumentName(key, i)
		if _, err := d.obj.GetInfo(ctx, name); err == nil {
			names[i] = name // kept by an earlier delivery
			continue
		}
		pdf, err := d.download(ctx, inv.PdfURL)
		if err != nil {
			errs = append(errs, fmt.Errorf("invoice %d of %s: %w", i, key, err))
			continue
		}
		// One chunk of the document's own size: the default chunk size
		// would allocate 128 KiB for every small PDF.
		meta := jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: uint32(max(len(pdf), 1))}}
		if _, err := d.obj.Put(ctx, meta, bytes.NewReader(pdf)); err != nil {
			errs = append(errs, fmt.Errorf("store %s: %w", name, err))
			continue
		}
		names[i] = name
	}
	return names, errors.Join(errs...)
}

// Get implements Documents.
func (d *ObjectDocuments) Get(ctx context.Context, name string) ([]byte, error) {
	b, err := d.obj.GetBytes(ctx, name)
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
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download document: HTTP %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, d.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download document: %w", err)
	}
	if int64(len(b)) > d.maxBytes {
		return nil, fmt.Errorf("download document: larger than %d bytes", d.maxBytes)
	}
	if !bytes.HasPrefix(b, []byte("%PDF-")) {
		return nil, ErrNotPDF
	}
	return b, nil
}

// KeeperConfig configures a DocumentKeeper.
type KeeperConfig struct {
	// Workers is how many orders' documents are fetched at once; 0 means 4.
	Workers int
	// Queue is how many issued orders may wait for their documents; 0
	// means 16384. An order offered to a full queue is skipped: its
	// documents are fetched when first asked for (the partner API).
	Queue int
	// Timeout bounds keeping one order's documents; 0 means 10s.
	Timeout time.Duration
}

// DocumentKeeper keeps the documents of issued orders in the background, so
// that downloading a PDF and writing it to the object store never delays an
// invoice's result. What it has not kept (a full queue, a failure, a crash)
// is fetched on demand: Documents.Keep is idempotent.
type DocumentKeeper struct {
	docs    Documents
	cfg     KeeperConfig
	queue   chan docJob
	metrics *Metrics

	stopping atomic.Bool
	drain    chan struct{} // closed by Stop: work what is queued, then return
	abort    chan struct{} // closed when Stop's context ends: give up at once
	stopOnce sync.Once
	workers  sync.WaitGroup
}

type docJob struct {
	key      schemas.OrderKey
	invoices []schemas.Invoice
}

// NewDocumentKeeper starts a keeper of docs' documents; metrics may be nil.
// Stop it with Stop.
func NewDocumentKeeper(docs Documents, cfg KeeperConfig, metrics *Metrics) *DocumentKeeper {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 16384
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultDocumentTimeout
	}
	k := &DocumentKeeper{docs: docs, cfg: cfg, queue: make(chan docJob, cfg.Queue), metrics: metrics,
		drain: make(chan struct{}), abort: make(chan struct{})}
	for range cfg.Workers {
		k.workers.Go(k.work)
	}
	return k
}

// Offer queues an order's documents for keeping and reports whether they
// were queued. It never blocks; after Stop it queues nothing.
func (k *DocumentKeeper) Offer(key schemas.OrderKey, invoices []schemas.Invoice) bool {
	if !k.stopping.Load() {
		select {
		case k.queue <- docJob{key: key, invoices: invoices}:
			return true
		default:
		}
	}
	k.metrics.document("deferred")
	return false
}

// Stop lets the workers keep what is queued until ctx ends, then stops
// them; what is left is fetched on demand. It may be called more than
// once.
func (k *DocumentKeeper) Stop(ctx context.Context) {
	k.stopOnce.Do(func() {
		k.stopping.Store(true)
		close(k.drain)
		done := make(chan struct{})
		go func() { k.workers.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			close(k.abort)
			<-done
		}
	})
}

func (k *DocumentKeeper) work() {
	for {
		var job docJob
		select {
		case job = <-k.queue:
		case <-k.drain:
			select {
			case job = <-k.queue:
			default:
				return // stopped and nothing left
			}
		}
		select {
		case <-k.abort:
			k.metrics.document("deferred")
			continue
		default:
		}
		if err := k.keep(job); err != nil {
			k.metrics.document("failed")
		} else {
			k.metrics.document("kept")
		}
	}
}

// keep keeps one order's documents within the keeper's timeout, giving up
// early when Stop aborts.
func (k *DocumentKeeper) keep(job docJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.Timeout)
	defer cancel()
	go func() {
		select {
		case <-k.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err := k.docs.Keep(ctx, job.key, job.invoices)
	return err
}
