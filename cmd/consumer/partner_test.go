package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store/storetest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// docsFunc adapts functions to pipeline.Documents.
type docsFunc struct {
	keep func(ctx context.Context, key schemas.OrderKey, invoices []schemas.Invoice) ([]string, error)
	get  func(ctx context.Context, name string) ([]byte, error)
}

func (d docsFunc) Keep(ctx context.Context, key schemas.OrderKey, inv []schemas.Invoice) ([]string, error) {
	return d.keep(ctx, key, inv)
}
func (d docsFunc) Get(ctx context.Context, _ schemas.OrderKey, name string) ([]byte, error) {
	return d.get(ctx, name)
}

func TestPartnerAPI(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	put := func(no string, state schemas.OrderState, invoices []schemas.Invoice, docs []string) {
		rec := schemas.OrderRecord{Seller: "S1", OrderNo: no, Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now}
		stored, err := db.Put(ctx, rec)
		if err != nil {
			t.Fatal(err)
		}
		if state != schemas.StateSubmitting {
			stored.State, stored.Invoices, stored.Documents = state, invoices, docs
			if _, err := db.Put(ctx, stored); err != nil {
				t.Fatal(err)
			}
		}
	}
	two := []schemas.Invoice{
		{InvoiceCode: "033002600111", InvoiceNo: "00000001", PdfURL: "http://provider/1.pdf", TotalAmount: schemas.ParseAmount("1.00")},
		{DigitalInvoiceNo: "26332000000000000002", PdfURL: "http://provider/2.pdf", TotalAmount: schemas.ParseAmount("2.00")},
	}
	put("ISSUED", schemas.StateIssued, two, []string{"doc-0", ""})
	put("PENDING", schemas.StateSubmitting, nil, nil)
	put("REJECTED", schemas.StateRejected, nil, nil)
	put("NODOC", schemas.StateIssued, two[:1], nil)
	put("PART", schemas.StateRejected, two, []string{"doc-0", "doc-1"}) // a split order that failed in part
	put("PAPERRED", schemas.StateIssued, nil, nil)                      // a paper red confirmation form: issued, no invoice
	// An order issued an hour ago whose second PDF link is dead: past the
	// keeper's patience, answered without that PDF.
	old := schemas.OrderRecord{Seller: "S1", OrderNo: "DEADLINK", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now.Add(-time.Hour)}
	// And one whose PDFs cannot be kept because the object store is down:
	// 1006, however long ago it was issued.
	for _, no := range []string{"DEADLINK", "STOREDOWN", "GONEANDDOWN"} {
		old.OrderNo = no
		stored, err := db.Put(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		stored.State, stored.Invoices, stored.CompletedAt = schemas.StateIssued, two, now.Add(-time.Hour)
		if no == "DEADLINK" {
			stored.Documents = []string{"doc-0", ""}
		}
		if _, err := db.Put(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
	s2 := schemas.OrderRecord{Seller: "S2", OrderNo: "PENDING", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now}
	if _, err := db.Put(ctx, s2); err != nil {
		t.Fatal(err)
	}

	fetched, keeps := 0, 0
	docs := docsFunc{
		keep: func(_ context.Context, key schemas.OrderKey, inv []schemas.Invoice) ([]string, error) {
			switch key.OrderNo {
			case "NODOC":
				return []string{""}, errors.New("provider unreachable")
			case "DEADLINK":
				keeps++
				return []string{"doc-0", ""}, &pipeline.DocumentError{Key: key, Invoice: 1, Err: fmt.Errorf("download document: %w: HTTP 404", pipeline.ErrDocumentGone)}
			case "STOREDOWN":
				return []string{"", ""}, errors.Join(
					&pipeline.DocumentError{Key: key, Invoice: 0, Err: errors.New("look up S1/STOREDOWN/0.pdf: nats: timeout")},
					&pipeline.DocumentError{Key: key, Invoice: 1, Err: errors.New("look up S1/STOREDOWN/1.pdf: nats: timeout")})
			case "GONEANDDOWN":
				// One link gone, the other provider down: ask again.
				return []string{"", ""}, errors.Join(
					&pipeline.DocumentError{Key: key, Invoice: 0, Err: fmt.Errorf("download document: %w: HTTP 404", pipeline.ErrDocumentGone)},
					&pipeline.DocumentError{Key: key, Invoice: 1, Err: errors.New("download document: HTTP 503")})
			}
			fetched++
			names := make([]string, len(inv))
			for i := range inv {
				names[i] = "doc-" + string(rune('0'+i))
			}
			return names, nil
		},
		get: func(_ context.Context, name string) ([]byte, error) { return []byte("%PDF-1.4 " + name), nil },
	}
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte("acme-secret-0123456789"), "beta": []byte("beta-secret-0123456789")},
		sellers: map[string]map[string]bool{"beta": {"S2": true}},
		store:   db, docs: docs, window: 5 * time.Minute, now: func() time.Time { return now },
		answers: pipeline.NewMetrics(nil).PartnerAnswers}

	call := func(q map[string]string) (int, partnerAnswer) {
		r := httptest.NewRequest(http.MethodGet, "/partner/queryInvoice", nil)
		v := r.URL.Query()
		for k, x := range q {
			v.Set(k, x)
		}
		r.URL.RawQuery = v.Encode()
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		if w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			t.Error("a 503 without Retry-After")
		}
		var a partnerAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("not JSON: %s", w.Body)
		}
		return w.Code, a
	}
	signed := func(requestID string, at time.Time, secret string) map[string]string {
		q := partnerQuery("acme", secret, requestID, at)
		return map[string]string{"channel": q.Get("channel"), "timestamp": q.Get("timestamp"), "requestId": q.Get("requestId"), "sign": q.Get("sign")}
	}
	const secret = "acme-secret-0123456789"
	scoped := func(requestID string, at time.Time) map[string]string {
		q := partnerQuery("beta", "beta-secret-0123456789", requestID, at)
		return map[string]string{"channel": q.Get("channel"), "timestamp": q.Get("timestamp"), "requestId": q.Get("requestId"), "sign": q.Get("sign")}
	}

	code, a := call(signed("S1:ISSUED", now.Add(-time.Minute), secret))
	if code != 200 || a.Result != 0 || len(a.Data) != 2 {
		t.Fatalf("issued: %d %+v", code, a)
	}
	if a.Data[0].Status != 1 || a.Data[0].InvoiceCode != "033002600111" || a.Data[0].InvoiceNumber != "00000001" ||
		a.Data[1].InvoiceCode != "26332000000000000002" || a.Data[0].InvoiceID == a.Data[1].InvoiceID || a.Data[0].InvoiceID > 999_999_999_999_999 {
		t.Fatalf("issued entries %+v", a.Data)
	}
	pdf, _ := base64.StdEncoding.DecodeString(a.Data[0].InvoiceFile)
	if string(pdf) != "%PDF-1.4 doc-0" {
		t.Fatalf("stored document not served: %q", pdf)
	}
	if fetched != 1 {
		t.Fatalf("the missing second document should be fetched once, fetched %d", fetched)
	}
	// A split order that failed in part: its issued invoices, then the
	// failed rest.
	pcode, part := call(signed("S1:PART", now, secret))
	if pcode != 200 || len(part.Data) != 3 || part.Data[0].Status != 1 || part.Data[1].Status != 1 || part.Data[2].Status != 3 ||
		part.Data[1].InvoiceCode != "26332000000000000002" || part.Data[1].InvoiceFile == "" || part.Data[2].InvoiceNumber != "" {
		t.Fatalf("failed in part: %d %+v", pcode, part)
	}
	if ids := map[int64]bool{part.Data[0].InvoiceID: true, part.Data[1].InvoiceID: true, part.Data[2].InvoiceID: true}; len(ids) != 3 {
		t.Fatalf("failed in part: invoice ids %+v are not distinct", part.Data)
	}
	// A dead PDF link an hour after issuance: the issued order is answered,
	// the kept PDF with it and the dead one without, after one Keep.
	dcode, dead := call(signed("S1:DEADLINK", now, secret))
	if dcode != 200 || len(dead.Data) != 2 || dead.Data[0].Status != 1 || dead.Data[0].InvoiceFile == "" ||
		dead.Data[1].Status != 1 || dead.Data[1].InvoiceFile != "" || dead.Data[1].InvoiceCode != "26332000000000000002" || keeps != 1 {
		t.Fatalf("dead link an hour after issuance: %d %+v (Keep called %d times)", dcode, dead, keeps)
	}
	// The ids are stable.
	if _, again := call(signed("S1:ISSUED", now, secret)); again.Data[0].InvoiceID != a.Data[0].InvoiceID {
		t.Fatal("invoice id changed between queries")
	}

	cases := []struct {
		name   string
		q      map[string]string
		status int
		result int
		data   int // status of the single entry, when 200
	}{
		{"pending is applied (4)", signed("S1:PENDING", now, secret), 200, 0, 4},
		{"rejected is failed (3)", signed("S1:REJECTED", now, secret), 200, 0, 3},
		{"unknown request", signed("S1:NOPE", now, secret), 404, 1005, 0},
		{"document unavailable", signed("S1:NODOC", now, secret), 503, 1006, 0},
		{"store down an hour after issuance", signed("S1:STOREDOWN", now, secret), 503, 1006, 0},
		{"one link gone and one provider down, an hour after issuance", signed("S1:GONEANDDOWN", now, secret), 503, 1006, 0},
		{"seller with a NUL", signed("S\x001:ISSUED", now, secret), 400, 1001, 0},
		{"wrong signature", signed("S1:ISSUED", now, "another-secret-0123456789"), 401, 1004, 0},
		{"stale timestamp", signed("S1:ISSUED", now.Add(-6*time.Minute), secret), 401, 1003, 0},
		{"future timestamp", signed("S1:ISSUED", now.Add(6*time.Minute), secret), 401, 1003, 0},
		{"unknown channel", map[string]string{"channel": "evil", "timestamp": strconv.FormatInt(now.UnixMilli(), 10), "requestId": "S1:ISSUED", "sign": "00"}, 401, 1004, 0},
		{"missing sign", map[string]string{"channel": "acme", "timestamp": "1", "requestId": "S1:ISSUED"}, 400, 1001, 0},
		{"bad request id", signed("ISSUED", now, secret), 400, 1001, 0},
		{"a channel scoped to another seller", scoped("S1:ISSUED", now), 404, 1005, 0},
		{"a channel scoped to the seller", scoped("S2:PENDING", now), 200, 0, 4},
		{"order number with a NUL", signed("S1:A\x00B", now, secret), 400, 1001, 0},
		{"order number of 21 characters", signed("S1:"+strings.Repeat("A", 21), now, secret), 400, 1001, 0},
		{"order number with a space", signed("S1:A B", now, secret), 400, 1001, 0},
		{"seller number of 40000 characters", signed(strings.Repeat("9", 40000)+":ISSUED", now, secret), 400, 1001, 0},
	}
	counted := map[int]float64{}
	for _, tc := range cases {
		counted[tc.result]++
		t.Run(tc.name, func(t *testing.T) {
			code, a := call(tc.q)
			if code != tc.status || a.Result != tc.result {
				t.Fatalf("got %d %+v", code, a)
			}
			if tc.status == 200 && (len(a.Data) != 1 || a.Data[0].Status != tc.data) {
				t.Fatalf("data %+v", a.Data)
			}
			if tc.status != 200 && len(a.Data) != 0 {
				t.Fatalf("an error answer carries data: %+v", a)
			}
		})
	}
	// Every error answer is counted under its result code (the calls
	// before the cases all succeeded).
	for result, n := range counted {
		if got := testutil.ToFloat64(api.answers.WithLabelValues(strconv.Itoa(result))); result != 0 && got != n {
			t.Errorf("invoice_partner_answers_total{result=%q} = %v, want %v", strconv.Itoa(result), got, n)
		}
	}
}

func TestReadinessProblems(t *testing.T) {
	r := readiness{bound: func() bool { return false }, store: func() error { return errors.New("disk full") }}
	if p := r.problems(true); len(p) != 3 {
		t.Fatalf("%v", p)
	}
	r.draining = func() bool { return true }
	if p := r.problems(true); len(p) != 4 || !strings.HasPrefix(p[0], "draining") {
		t.Fatalf("draining: %v", p)
	}
	r.stoodDown = func() error { return pipeline.ErrDurableTaken }
	if p := r.problems(true); len(p) != 5 || !strings.HasPrefix(p[0], "stood down: another instance took the request consumer") {
		t.Fatalf("stood down: %v", p)
	}
	if p := r.problems(false); len(p) != 5 || p[0] != "stood down: another instance holds the request consumer; taking no requests, standing by until stopped" ||
		p[4] != "order store cannot write" {
		t.Fatalf("without the causes: %v", p)
	}
}

// With partitions, an instance answers for another partition's seller by
// asking its owner (the status service), not "no such request" from its
// own store.
func TestPartnerAPIAsksTheOwnerOfAnotherPartition(t *testing.T) {
	ns, err := server.NewServer(&server.Options{ServerName: "partner-test", DontListen: true, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	const seller = "339902999999789113"
	owner := pipeline.PartitionOf(seller, 3)
	other := (owner + 1) % 3
	ownerStore, otherStore := storetest.Open(t), storetest.Open(t)
	ctx := context.Background()
	now := time.Now()
	rec := schemas.OrderRecord{Seller: seller, OrderNo: "P-1", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now}
	if _, err := ownerStore.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	for part, st := range map[int]pipeline.Store{owner: ownerStore, other: otherStore} {
		svc, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{Partitions: 3, Partition: part}, st)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	const secret = "acme-secret-0123456789"
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte(secret)}, store: otherStore, window: 5 * time.Minute, now: time.Now,
		partitions: 3, partition: other, remote: statusLookup(nc, schemas.Subjects{})}
	ask := func(requestID string) (int, partnerAnswer) {
		r := httptest.NewRequest(http.MethodGet, "/partner/queryInvoice?"+partnerQuery("acme", secret, requestID, now).Encode(), nil)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		var a partnerAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
			t.Fatalf("not JSON: %s", w.Body)
		}
		return w.Code, a
	}
	if code, a := ask(seller + ":P-1"); code != 200 || a.Result != 0 || len(a.Data) != 1 || a.Data[0].Status != 4 {
		t.Fatalf("instance %d asked about partition %d's order: %d %+v, want it applied (4)", other, owner, code, a)
	}
	if code, a := ask(seller + ":NONE"); code != 404 || a.Result != 1005 {
		t.Fatalf("an order the owner does not have: %d %+v, want 1005", code, a)
	}
}

// TestPartnerAPIBoundsTheQueriesAtOnce checks --partner-max-queries: with
// the slots taken by queries whose PDFs are slow to come, another signed
// query waits partnerSlotWait and is answered 1007 (HTTP 429, Retry-After),
// an unsigned one is still answered at once, and once a slot is free a
// query is answered again.
func TestPartnerAPIBoundsTheQueriesAtOnce(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	now := time.Now()
	rec := schemas.OrderRecord{Seller: "S1", OrderNo: "SLOW", Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now}
	stored, err := db.Put(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	stored.State, stored.CompletedAt = schemas.StateIssued, now
	stored.Invoices = []schemas.Invoice{{DigitalInvoiceNo: "26332000000000000001", PdfURL: "http://provider/1.pdf", TotalAmount: schemas.ParseAmount("1.00")}}
	stored.Documents = []string{"doc-0"}
	if _, err := db.Put(ctx, stored); err != nil {
		t.Fatal(err)
	}
	started, unblock := make(chan struct{}, 8), make(chan struct{})
	docs := docsFunc{
		keep: func(context.Context, schemas.OrderKey, []schemas.Invoice) ([]string, error) {
			return []string{"doc-0"}, nil
		},
		get: func(ctx context.Context, name string) ([]byte, error) {
			started <- struct{}{}
			select {
			case <-unblock:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return []byte("%PDF-1.4 " + name), nil
		},
	}
	const secret = "acme-secret-0123456789"
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte(secret)}, store: db, docs: docs, window: 5 * time.Minute,
		now: time.Now, answers: pipeline.NewMetrics(nil).PartnerAnswers, slots: newPartnerSlots(2)}
	srv := httptest.NewServer(api)
	defer srv.Close()
	query := func(secret string) (*http.Response, partnerAnswer) {
		q := partnerQuery("acme", secret, "S1:SLOW", time.Now())
		resp, err := http.Get(srv.URL + "/partner/queryInvoice?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a partnerAnswer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
			t.Fatal(err)
		}
		return resp, a
	}

	held := make(chan partnerAnswer, 2)
	for range 2 {
		go func() {
			_, a := query(secret)
			held <- a
		}()
	}
	<-started
	<-started // both slots taken
	begin := time.Now()
	resp, a := query(secret)
	if resp.StatusCode != http.StatusTooManyRequests || a.Result != 1007 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a third query at once: HTTP %d %+v (Retry-After %q), want 429, 1007 and Retry-After", resp.StatusCode, a, resp.Header.Get("Retry-After"))
	}
	if waited := time.Since(begin); waited < partnerSlotWait {
		t.Errorf("answered 1007 after %s, before the %s wait for a slot", waited, partnerSlotWait)
	}
	if !strings.Contains(a.Message, "at most 2") {
		t.Errorf("1007's message %q does not give the bound", a.Message)
	}
	// A partner that hangs up while it waits for a turn is not answered
	// or counted.
	gone, hangUp := context.WithCancel(ctx)
	r := httptest.NewRequestWithContext(gone, http.MethodGet, "/partner/queryInvoice?"+partnerQuery("acme", secret, "S1:SLOW", time.Now()).Encode(), nil)
	w := httptest.NewRecorder()
	time.AfterFunc(100*time.Millisecond, hangUp)
	api.ServeHTTP(w, r)
	if w.Body.Len() != 0 {
		t.Errorf("a partner that hung up was answered %s", w.Body)
	}
	// A query with a wrong signature takes no slot.
	if resp, a := query("wrong-secret-0123456789"); resp.StatusCode != http.StatusUnauthorized || a.Result != 1004 {
		t.Errorf("a wrongly signed query while the slots are taken: HTTP %d %+v, want 401 and 1004", resp.StatusCode, a)
	}
	close(unblock)
	for range 2 {
		if a := <-held; a.Result != 0 {
			t.Errorf("a held query was answered %+v", a)
		}
	}
	if resp, a := query(secret); resp.StatusCode != http.StatusOK || a.Result != 0 {
		t.Errorf("a query after the slots came free: HTTP %d %+v", resp.StatusCode, a)
	}
	if got := testutil.ToFloat64(api.answers.WithLabelValues("1007")); got != 1 {
		t.Errorf("invoice_partner_answers_total{result=\"1007\"} = %v, want 1", got)
	}
}

// doneSignal is a request's context that says when it is first asked for
// its Done channel: when the handler derives a context from it or starts
// to wait on it.
type doneSignal struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func (c *doneSignal) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

// TestPartnerAPIWaitCountsInTheQueryTime checks that partnerQueryTimeout
// bounds a query from before its wait for a turn: a query that waited for
// a slot has that much less left for its look-up.
func TestPartnerAPIWaitCountsInTheQueryTime(t *testing.T) {
	const secret, seller = "acme-secret-0123456789", "S1"
	left := make(chan time.Duration, 1)
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte(secret)}, window: 5 * time.Minute, now: time.Now,
		partitions: 2, partition: 1 - pipeline.PartitionOf(seller, 2), slots: newPartnerSlots(1),
		remote: func(ctx context.Context, _ schemas.OrderKey) (schemas.OrderRecord, bool, error) {
			d, ok := ctx.Deadline()
			if !ok {
				d = time.Now().Add(time.Hour)
			}
			left <- time.Until(d)
			return schemas.OrderRecord{}, false, nil
		}}
	api.slots <- struct{}{} // the only slot is taken
	ctx := &doneSignal{Context: t.Context(), asked: make(chan struct{})}
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/partner/queryInvoice?"+partnerQuery("acme", secret, seller+":W-1", time.Now()).Encode(), nil)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		api.ServeHTTP(w, r)
	}()
	<-ctx.asked // the handler waits for a turn (or has set its deadline)
	const waited = 300 * time.Millisecond
	time.Sleep(waited)
	<-api.slots // a turn comes free
	<-done
	if w.Code != http.StatusNotFound {
		t.Fatalf("HTTP %d %s, want 404 (1005) after the wait", w.Code, w.Body)
	}
	if got := <-left; got > partnerQueryTimeout-waited {
		t.Errorf("the look-up had %s left after a %s wait for a turn, want at most %s", got, waited, partnerQueryTimeout-waited)
	}
}

// TestPartnerAPILogsWhyItAnswers1006 checks that a 1006 says why in the
// log: a warning for an outage, information for a link that gives no PDF
// yet.
func TestPartnerAPILogsWhyItAnswers1006(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	const secret = "acme-secret-0123456789"
	inv := []schemas.Invoice{{InvoiceNo: "00000001", PdfURL: "http://provider/1.pdf", TotalAmount: schemas.ParseAmount("1.00")}}
	for _, no := range []string{"DOWN", "NOTYET"} {
		stored, err := db.Put(ctx, schemas.OrderRecord{Seller: "S1", OrderNo: no, Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		stored.State, stored.Invoices, stored.CompletedAt = schemas.StateIssued, inv, time.Now()
		if _, err := db.Put(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
	docs := docsFunc{
		keep: func(_ context.Context, key schemas.OrderKey, _ []schemas.Invoice) ([]string, error) {
			err := errors.New("store doc: nats: timeout")
			if key.OrderNo == "NOTYET" {
				err = fmt.Errorf("download document: %w: HTTP 404", pipeline.ErrDocumentGone)
			}
			return []string{""}, &pipeline.DocumentError{Key: key, Invoice: 0, Err: err}
		},
		get: func(context.Context, string) ([]byte, error) { return nil, errors.New("unused") },
	}
	var logs bytes.Buffer
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte(secret)}, store: db, docs: docs, window: 5 * time.Minute, now: time.Now,
		log: zerolog.New(&logs)}
	for _, tc := range []struct{ no, level, cause string }{
		{"DOWN", `"level":"warn"`, "nats: timeout"},
		{"NOTYET", `"level":"info"`, "HTTP 404"},
	} {
		logs.Reset()
		r := httptest.NewRequest(http.MethodGet, "/partner/queryInvoice?"+partnerQuery("acme", secret, "S1:"+tc.no, time.Now()).Encode(), nil)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"result":1006`) {
			t.Fatalf("%s: HTTP %d %s, want 503 (1006)", tc.no, w.Code, w.Body)
		}
		line := logs.String()
		for _, want := range []string{tc.level, tc.cause, `"order_no":"` + tc.no + `"`, `"seller":"S1"`, `"channel":"acme"`} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: the log %q has no %s", tc.no, line, want)
			}
		}
	}
}

// Records written before the PDFs were kept in the background name their
// PDFs, by the names of before 2026-12-06: orders A.1 and A_1 both name
// S1/A_1/0.pdf, which holds the PDF of whichever was issued first (here
// A.1). Each order is answered with its own PDF, fetched from its link
// when the kept one is not known to be the order's.
func TestPartnerAPIServesNoOtherOrdersOldDocument(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "partner-docs-test", DontListen: true, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()})
	nc, err := nats.Connect(ns.ClientURL(), nats.InProcessServer(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("%PDF-1.4 " + r.URL.Query().Get("order")))
	}))
	defer provider.Close()
	ctx := context.Background()
	docs, err := pipeline.OpenDocuments(ctx, js, provider.Client(), 1)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := js.ObjectStore(ctx, pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.PutBytes(ctx, "S1/A_1/0.pdf", []byte("%PDF-1.4 A.1")); err != nil {
		t.Fatal(err)
	}
	db := storetest.Open(t)
	now := time.Now()
	for _, no := range []string{"A.1", "A_1"} {
		stored, err := db.Put(ctx, schemas.OrderRecord{Seller: "S1", OrderNo: no, Kind: schemas.KindIssue, State: schemas.StateSubmitting, Fingerprint: "f", ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		stored.State, stored.CompletedAt, stored.Documents = schemas.StateIssued, now, []string{"S1/A_1/0.pdf"}
		stored.Invoices = []schemas.Invoice{{DigitalInvoiceNo: "2633200000000000000" + no[1:2], PdfURL: provider.URL + "/pdf?order=" + no, TotalAmount: schemas.ParseAmount("1.00")}}
		if _, err := db.Put(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
	const secret = "acme-secret-0123456789"
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte(secret)}, store: db, docs: docs, window: 5 * time.Minute, now: time.Now}
	// A_1 first: its own PDF is kept beside A.1's under S1/A_1/0.own.pdf,
	// as S1/A_1/0.pdf holds a PDF that may be another order's.
	for _, no := range []string{"A_1", "A.1", "A_1", "A.1"} {
		r := httptest.NewRequest(http.MethodGet, "/partner/queryInvoice?"+partnerQuery("acme", secret, "S1:"+no, now).Encode(), nil)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		var a partnerAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a.Data) != 1 {
			t.Fatalf("%s: HTTP %d %s", no, w.Code, w.Body)
		}
		if pdf, _ := base64.StdEncoding.DecodeString(a.Data[0].InvoiceFile); string(pdf) != "%PDF-1.4 "+no {
			t.Fatalf("order %s is answered with the PDF %q", no, pdf)
		}
	}
}
