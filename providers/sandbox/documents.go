package sandbox

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// documents keeps the invoices' PDFs as the lines of text they show, and
// renders a PDF when it is downloaded: an issued invoice costs its lines,
// not a rendered document, and a PDF nobody fetches is never rendered.
// InvoicePDF renders the same lines to the same bytes every time.
type documents struct {
	mu    sync.RWMutex
	lines map[string][]string
}

func newDocuments() *documents { return &documents{lines: map[string][]string{}} }

func (d *documents) put(name string, lines []string) {
	d.mu.Lock()
	d.lines[name] = lines
	d.mu.Unlock()
}

func (d *documents) get(name string) ([]byte, bool) {
	d.mu.RLock()
	lines, ok := d.lines[name]
	d.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return InvoicePDF(lines...), true
}

// storeInvoicePDF keeps the PDF of an invoice, shown as lines, and returns
// its URL.
func (s *Server) storeInvoicePDF(name string, lines ...string) string {
	s.docs.put(name, lines)
	return s.documentURL(name)
}

func (s *Server) serveDocument(w http.ResponseWriter, r *http.Request) {
	pdf, ok := s.docs.get(r.PathValue("name"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", fmt.Sprint(len(pdf)))
	_, _ = w.Write(pdf)
}

// InvoicePDF renders a one-page PDF (version 1.4, Helvetica) showing lines of
// ASCII text: a real, small document that PDF readers open. Characters
// outside printable ASCII are replaced by '?'.
func InvoicePDF(lines ...string) []byte {
	var content bytes.Buffer
	content.WriteString("BT /F1 12 Tf 56 780 Td 16 TL\n")
	for _, l := range lines {
		content.WriteString("(" + pdfEscape(l) + ") Tj T*\n")
	}
	content.WriteString("ET\n")

	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

func pdfEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
