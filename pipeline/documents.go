package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

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
		if _, err := d.obj.PutBytes(ctx, name, pdf); err != nil {
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
