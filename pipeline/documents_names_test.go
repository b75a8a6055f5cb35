package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// Order numbers are any printable ASCII: numbers that differ only in the
// characters a name part cannot hold as they are ('.' against '_', '%XX'
// written out) still get names, and PDFs, of their own; a number without
// them keeps the name it always had.
func TestDocumentNamesAreOneToOne(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("%PDF-1.4 " + r.URL.Query().Get("order")))
	}))
	defer srv.Close()
	docs, err := pipeline.OpenDocuments(ctx, js, srv.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	const seller = "91330106MA2AYNWD8M"
	if got := pipeline.DocumentName(schemas.OrderKey{Seller: seller, OrderNo: "ORD-7_b"}, 0); got != seller+"/ORD-7_b/0.pdf" {
		t.Errorf("name of ORD-7_b = %q, want it unchanged", got)
	}
	names := map[string]string{}
	for _, no := range []string{"A.1", "A_1", "A*1", "A>1", "A%2E1", "A/1", "A%1"} {
		key := schemas.OrderKey{Seller: seller, OrderNo: no}
		kept, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: srv.URL + "/pdf?order=" + url.QueryEscape(no)}})
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		if other, taken := names[kept[0]]; taken {
			t.Fatalf("orders %s and %s share the document name %q", other, no, kept[0])
		}
		names[kept[0]] = no
		pdf, err := docs.Get(ctx, key, kept[0])
		if err != nil || string(pdf) != "%PDF-1.4 "+no {
			t.Fatalf("order %s's document is %q (%v): another order's PDF", no, pdf, err)
		}
	}
}

// A PDF larger than the server's largest message (1 MiB by default, and in
// every configuration here) is kept in chunks.
func TestLargeDocumentIsKept(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	big := append([]byte("%PDF-1.7\n"), make([]byte, 2<<20)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) }))
	defer srv.Close()
	docs, err := pipeline.OpenDocuments(ctx, js, srv.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	key := schemas.OrderKey{Seller: "91330106MA2AYNWD8M", OrderNo: "BIG-1"}
	names, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: srv.URL + "/big.pdf"}})
	if err != nil {
		t.Fatalf("keep a %d-byte PDF: %v", len(big), err)
	}
	got, err := docs.Get(ctx, key, names[0])
	if err != nil || string(got) != string(big) {
		t.Fatalf("get: %d bytes of %d, %v", len(got), len(big), err)
	}
}

// A link that will not give a PDF (404, 410, something else) fails with
// ErrDocumentGone; a provider's outage (5xx) does not.
func TestDocumentGoneOrNot(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/404":
			w.WriteHeader(http.StatusNotFound)
		case "/410":
			w.WriteHeader(http.StatusGone)
		case "/403":
			w.WriteHeader(http.StatusForbidden) // an expired signed link
		case "/429":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("<html>login</html>"))
		}
	}))
	defer srv.Close()
	docs, err := pipeline.OpenDocuments(ctx, js, srv.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for path, gone := range map[string]bool{"/404": true, "/410": true, "/403": true, "/html": true, "/429": false, "/503": false} {
		_, err := docs.Keep(ctx, schemas.OrderKey{Seller: "91330106MA2AYNWD8M", OrderNo: "GONE" + path[1:]}, []schemas.Invoice{{PdfURL: srv.URL + path}})
		if err == nil || errors.Is(err, pipeline.ErrDocumentGone) != gone {
			t.Errorf("%s: %v; want ErrDocumentGone %v", path, err, gone)
		}
	}
	// A split order, one invoice's link gone and the other's provider
	// down: each failure under its invoice's position.
	names, err := docs.Keep(ctx, schemas.OrderKey{Seller: "91330106MA2AYNWD8M", OrderNo: "SPLIT"},
		[]schemas.Invoice{{PdfURL: srv.URL + "/404"}, {}, {PdfURL: srv.URL + "/503"}})
	failed := pipeline.DocumentErrors(err)
	if len(names) != 3 || names[0] != "" || names[2] != "" || len(failed) != 2 ||
		!errors.Is(failed[0], pipeline.ErrDocumentGone) || failed[2] == nil || errors.Is(failed[2], pipeline.ErrDocumentGone) {
		t.Errorf("split order: names %q, failures %v", names, failed)
	}
}

// A PDF kept before 2026-12-06 under the old name of order A.1 (its '.'
// written '_') has the name order A_1 has now, and order A%2E1's old name
// is order A.1's now: such a PDF is no other order's document, neither
// when the keeper keeps that order's (its PDF is fetched and kept beside
// it) nor when it is read. An old PDF under a name no other order's could
// have had (no '_', no '%') is still the order's own, and is not fetched
// again; a PDF kept today is the order's by its metadata.
func TestOldDocumentNameIsNotAnotherOrders(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	var mu sync.Mutex
	fetched := map[string]int{}
	times := func(no string) int {
		mu.Lock()
		defer mu.Unlock()
		return fetched[no]
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		no := r.URL.Query().Get("order")
		mu.Lock()
		fetched[no]++
		mu.Unlock()
		_, _ = w.Write([]byte("%PDF-1.4 " + no))
	}))
	defer srv.Close()
	docs, err := pipeline.OpenDocuments(ctx, js, srv.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	const seller = "91330106MA2AYNWD8M"
	order := func(no string) schemas.OrderKey { return schemas.OrderKey{Seller: seller, OrderNo: no} }
	// As the builds before 2026-12-06 kept them: the name alone.
	for name, pdf := range map[string]string{
		seller + "/A_1/0.pdf":   "%PDF-1.4 A.1",
		seller + "/A%2E1/0.pdf": "%PDF-1.4 A%2E1",
		seller + "/ORD-7/0.pdf": "%PDF-1.4 ORD-7 old",
	} {
		if _, err := obj.PutBytes(ctx, name, []byte(pdf)); err != nil {
			t.Fatal(err)
		}
	}
	for _, no := range []string{"A_1", "A.1"} {
		if pdf, err := docs.Get(ctx, order(no), pipeline.DocumentName(order(no), 0)); !errors.Is(err, pipeline.ErrForeignDocument) {
			t.Fatalf("order %s's name before its PDF is kept: %q (%v), want ErrForeignDocument", no, pdf, err)
		}
	}
	for _, no := range []string{"A_1", "A.1", "A_1", "A.1"} {
		names, err := docs.Keep(ctx, order(no), []schemas.Invoice{{PdfURL: srv.URL + "/pdf?order=" + url.QueryEscape(no)}})
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		pdf, err := docs.Get(ctx, order(no), names[0])
		if err != nil || string(pdf) != "%PDF-1.4 "+no || times(no) != 1 {
			t.Fatalf("order %s's document %s is %q (%v), fetched %d times, want its own fetched once", no, names[0], pdf, err, times(no))
		}
	}
	// A.1's record of before names its PDF A_1/0.pdf, A_1's now.
	if pdf, err := docs.Get(ctx, order("A.1"), seller+"/A_1/0.pdf"); !errors.Is(err, pipeline.ErrForeignDocument) {
		t.Fatalf("A.1's old name read for A.1: %q (%v), want ErrForeignDocument", pdf, err)
	}
	key := order("ORD-7")
	names, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: srv.URL + "/pdf?order=ORD-7"}})
	if err != nil {
		t.Fatal(err)
	}
	if pdf, err := docs.Get(ctx, key, names[0]); err != nil || string(pdf) != "%PDF-1.4 ORD-7 old" || times("ORD-7") != 0 {
		t.Fatalf("ORD-7's old document: %q (%v), fetched %d times", pdf, err, times("ORD-7"))
	}
}

// oldDocuments opens the document bucket with PDFs kept as the builds
// before 2026-12-07 kept them, under the names given and without metadata,
// and a provider that serves each order's PDF ("%PDF-1.4 <order>") and
// counts how often each was fetched.
func oldDocuments(t *testing.T, old map[string]string) (docs *pipeline.ObjectDocuments, obj jetstream.ObjectStore, link func(no string) string, fetched func(no string) int) {
	t.Helper()
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := t.Context()
	var mu sync.Mutex
	count := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		no := r.URL.Query().Get("order")
		mu.Lock()
		count[no]++
		mu.Unlock()
		_, _ = w.Write([]byte("%PDF-1.4 " + no))
	}))
	t.Cleanup(srv.Close)
	docs, err := pipeline.OpenDocuments(ctx, js, srv.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	obj, err = js.ObjectStore(ctx, pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	for name, pdf := range old {
		if _, err := obj.PutBytes(ctx, name, []byte(pdf)); err != nil {
			t.Fatal(err)
		}
	}
	link = func(no string) string { return srv.URL + "/pdf?order=" + url.QueryEscape(no) }
	fetched = func(no string) int {
		mu.Lock()
		defer mu.Unlock()
		return count[no]
	}
	return docs, obj, link, fetched
}

// An old PDF under the name an order has today, which may be another
// order's (A.1's old name is A_1's today, A%2E1's is A.1's), stays as it
// is when that order's PDF is kept: the order's own is kept beside it,
// not over it, and the old one is served to neither.
func TestKeepLeavesAnOldDocumentInPlace(t *testing.T) {
	const seller = "91330106MA2AYNWD8M"
	old := map[string]string{
		seller + "/A_1/0.pdf":   "%PDF-1.4 A.1",
		seller + "/A%2E1/0.pdf": "%PDF-1.4 A%2E1",
	}
	docs, obj, link, fetched := oldDocuments(t, old)
	ctx := t.Context()
	order := func(no string) schemas.OrderKey { return schemas.OrderKey{Seller: seller, OrderNo: no} }
	kept := map[string]string{}
	for _, no := range []string{"A_1", "A.1", "A_1", "A.1"} {
		names, err := docs.Keep(ctx, order(no), []schemas.Invoice{{PdfURL: link(no)}})
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		if name, again := kept[no]; again && names[0] != name {
			t.Fatalf("order %s's document is kept as %s, then as %s", no, name, names[0])
		}
		kept[no] = names[0]
		pdf, err := docs.Get(ctx, order(no), names[0])
		if err != nil || string(pdf) != "%PDF-1.4 "+no || fetched(no) != 1 {
			t.Fatalf("order %s's document %s is %q (%v), fetched %d times, want its own fetched once", no, names[0], pdf, err, fetched(no))
		}
	}
	for name, pdf := range old {
		if got, err := obj.GetBytes(ctx, name); err != nil || string(got) != pdf {
			t.Errorf("the old PDF under %s is %q (%v), want %q as it was", name, got, err, pdf)
		}
	}
	if pdf, err := docs.Get(ctx, order("A.1"), seller+"/A_1/0.pdf"); !errors.Is(err, pipeline.ErrForeignDocument) {
		t.Errorf("A.1's old name read for A.1: %q (%v), want ErrForeignDocument", pdf, err)
	}
}

// A PDF kept before 2026-12-06 under a name no other order's could have
// had, old or new, is the order's own even when the order number holds a
// character that today's names write %XX ('/' and a '%' that starts no
// %XX of today's): it is served under the name the order's record lists,
// and found by Keep, rather than fetched again, even beside an object
// under the order's name today that may be another order's (A/1's is
// A%2F1's old name). A%2E1's old name is A.1's today, and is not.
func TestOldDocumentNameOfItsOwnIsServed(t *testing.T) {
	const seller = "91330106MA2AYNWD8M"
	old := map[string]string{
		seller + "/A/1/0.pdf":   "%PDF-1.4 A/1 old",
		seller + "/A%2F1/0.pdf": "%PDF-1.4 A%2F1 old",
		seller + "/50%/0.pdf":   "%PDF-1.4 50% old",
		seller + "/A%2E1/0.pdf": "%PDF-1.4 A%2E1 old",
	}
	docs, _, link, fetched := oldDocuments(t, old)
	ctx := t.Context()
	for _, no := range []string{"A/1", "50%"} {
		key := schemas.OrderKey{Seller: seller, OrderNo: no}
		name := seller + "/" + no + "/0.pdf"
		if pdf, err := docs.Get(ctx, key, name); err != nil || string(pdf) != old[name] {
			t.Errorf("order %s's record names %s: %q (%v), want its old PDF", no, name, pdf, err)
		}
		names, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: link(no)}})
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		if pdf, err := docs.Get(ctx, key, names[0]); err != nil || string(pdf) != old[name] || fetched(no) != 0 {
			t.Errorf("order %s's document %s is %q (%v), fetched %d times, want its old PDF, not fetched", no, names[0], pdf, err, fetched(no))
		}
	}
	key := schemas.OrderKey{Seller: seller, OrderNo: "A%2E1"}
	if pdf, err := docs.Get(ctx, key, seller+"/A%2E1/0.pdf"); !errors.Is(err, pipeline.ErrForeignDocument) {
		t.Errorf("A%%2E1's old name, A.1's today, read for A%%2E1: %q (%v), want ErrForeignDocument", pdf, err)
	}
	names, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: link("A%2E1")}})
	if err != nil {
		t.Fatal(err)
	}
	if pdf, err := docs.Get(ctx, key, names[0]); err != nil || string(pdf) != "%PDF-1.4 A%2E1" || fetched("A%2E1") != 1 {
		t.Errorf("order A%%2E1's document %s is %q (%v), fetched %d times, want its own fetched once", names[0], pdf, err, fetched("A%2E1"))
	}
}

// OpenExistingDocuments opens the bucket as another instance set it up,
// changing nothing of it, and keeps and serves PDFs through it; without a
// bucket it fails with jetstream.ErrBucketNotFound rather than create one.
func TestOpenExistingDocumentsChangesNothing(t *testing.T) {
	_, _, js := MustJetStream(t, t.TempDir())
	ctx := t.Context()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("%PDF-1.4 kept"))
	}))
	defer srv.Close()
	if _, err := pipeline.OpenExistingDocuments(ctx, js, srv.Client()); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("OpenExistingDocuments without a bucket = %v, want jetstream.ErrBucketNotFound", err)
	}
	if _, err := js.ObjectStore(ctx, pipeline.DocumentBucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Fatalf("after OpenExistingDocuments without a bucket, the bucket: %v, want none created", err)
	}
	// The bucket as another instance set it up, with settings of its own.
	const theirs = "set up by another instance"
	if _, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: pipeline.DocumentBucket, Description: theirs, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	docs, err := pipeline.OpenExistingDocuments(ctx, js, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	key := schemas.OrderKey{Seller: "91330106MA2AYNWD8M", OrderNo: "EXISTING-1"}
	names, err := docs.Keep(ctx, key, []schemas.Invoice{{PdfURL: srv.URL + "/pdf"}})
	if err != nil {
		t.Fatal(err)
	}
	if pdf, err := docs.Get(ctx, key, names[0]); err != nil || string(pdf) != "%PDF-1.4 kept" {
		t.Fatalf("the PDF kept through the existing bucket: %q %v", pdf, err)
	}
	obj, err := js.ObjectStore(ctx, pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := obj.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Description() != theirs || st.IsCompressed() {
		t.Errorf("the bucket after OpenExistingDocuments: description %q, compressed %v; want the other instance's (%q, uncompressed)", st.Description(), st.IsCompressed(), theirs)
	}
}

// Two keepers that keep one order's PDF at the same moment (two
// instances' keepers, for an order both issued in their few seconds on one
// durable; or a keeper and the partner API in one instance) write it
// under one name: the bucket ends with one copy, and no chunks that no
// object names. The object store's Put writes its chunks under a subject
// of its own, then the object's meta, and removes the chunks of the meta
// it read before it wrote (none, here, for both): the chunks of the copy
// whose meta the other's replaced were left in the bucket for good,
// which neither the object store nor the keepers ever remove. Before, the
// bucket held one copy's chunks more for each such order.
func TestTwoKeepersOfOneOrderLeaveNoChunksBehind(t *testing.T) {
	ns, _, js := MustJetStream(t, t.TempDir())
	ctx := context.Background()
	// Each PDF in several chunks, each download answered once both
	// keepers asked for it (or after 5 s): their writes overlap.
	pdf := append([]byte("%PDF-1.7\n"), make([]byte, 300<<10)...)
	var mu sync.Mutex
	arrived := map[string]chan struct{}{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		both, second := arrived[r.URL.Path]
		if !second {
			both = make(chan struct{})
			arrived[r.URL.Path] = both
		}
		mu.Unlock()
		if second {
			close(both)
		}
		select {
		case <-both:
		case <-time.After(5 * time.Second):
		}
		_, _ = w.Write(pdf)
	}))
	defer srv.Close()
	var keepers [2]*pipeline.ObjectDocuments
	for i := range keepers {
		nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		own, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if keepers[i], err = pipeline.OpenDocuments(ctx, own, srv.Client(), 1); err != nil {
			t.Fatal(err)
		}
	}
	const orders = 8
	var wg sync.WaitGroup
	for n := range orders {
		key := schemas.OrderKey{Seller: "91330106MA2AYNWD8M", OrderNo: fmt.Sprintf("RACE-%d", n)}
		for _, k := range keepers {
			wg.Go(func() {
				kctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				defer cancel()
				names, err := k.Keep(kctx, key, []schemas.Invoice{{PdfURL: srv.URL + "/" + key.OrderNo + ".pdf"}})
				if err != nil {
					t.Errorf("%s: %v", key.OrderNo, err)
					return
				}
				if got, err := k.Get(kctx, key, names[0]); err != nil || !bytes.Equal(got, pdf) {
					t.Errorf("%s: read back %d bytes of %d (%v)", key.OrderNo, len(got), len(pdf), err)
				}
			})
		}
	}
	wg.Wait()

	obj, err := js.ObjectStore(ctx, pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := obj.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(0) // each object's chunks and its meta
	for _, info := range infos {
		want += uint64(info.Chunks) + 1
	}
	s, err := js.Stream(ctx, "OBJ_"+pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != orders || s.CachedInfo().State.Msgs != want {
		t.Fatalf("the bucket holds %d objects in %d messages (%d bytes); want %d objects in %d: %d chunks no object names",
			len(infos), s.CachedInfo().State.Msgs, s.CachedInfo().State.Bytes, orders, want, s.CachedInfo().State.Msgs-want)
	}
}
