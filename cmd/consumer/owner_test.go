package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
	"github.com/fapiaohub/invoicer/store/storetest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStoodDownInstanceLeavesTheStatusToTheOwner runs the consumer (run)
// against an external server, lets another instance that started before it
// write itself into the durable's owner record, as one started at the same
// moment does, and checks that once this instance stands down it no longer
// answers status requests from its own order store while it finishes its
// request in flight: the owner answers for the durable's sellers, not an
// instance that is leaving, whose store does not have the owner's orders.
// Its partner API asks the owner too, as it does for another partition's
// seller. Once its request is done it stands by instead of exiting (a
// restart policy would start it again and again, each start refused while
// the owner runs): /healthz answers, /readyz answers 503 naming the owner,
// invoice_consumer_stood_down is 1 (0 while it held the durable), so that
// an alert sees an instance that runs and takes nothing, and the gauges of
// the request consumer's work (backlog, ack pending, backlog age, held
// sellers, the request consumer missing) are gone from /metrics: the owner
// reports the durable's, and this instance's would raise the same backlog
// alert a second time, or a hold that no probe of this instance ends any
// more, or InvoiceRequestStreamDeleted for an instance that no longer
// creates the durable again. It stops, exit status 0, when it is told to.
func TestStoodDownInstanceLeavesTheStatusToTheOwner(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "owner-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})

	// The provider holds the order's submission until its gate opens: the
	// request stays in flight while this instance stands down.
	sb := sandbox.New(sandbox.Config{})
	submission := newGate(t)
	prov := serveGated(t, sb, func(*http.Request) *gate { return submission })
	seller := sandbox.DefaultJumdataSeller
	const channel, secret = "acme", "acme-secret-0123456789"
	config := sandboxSellers(t, "jumdata", prov.URL, fmt.Sprintf("partners:\n  - {channel: %s, secret: %s}\n", channel, secret))

	c := startRun(t, []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", t.TempDir(), "--http", freePort,
		"--workers", "2", "--provider-timeout", "60s", "--shutdown-timeout", "60s"})
	httpAddr := c.o.httpListen

	nc, js := jetStreamClient(t, ns.ClientURL())
	const orderNo = "OWNER-1"
	if _, err := js.Publish(t.Context(), schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
		t.Fatal(err)
	}
	submission.waitCalled(t, 30*time.Second, c.logs)
	status := func() (*pipeline.StatusReply, error) {
		sctx, scancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer scancel()
		return pipeline.RequestStatus(sctx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: orderNo})
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	partner := func() partnerAnswer {
		t.Helper()
		_, body := get("/partner/queryInvoice?" + partnerQuery(channel, secret, seller+":"+orderNo, time.Now()).Encode())
		var a partnerAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("partner answer not JSON: %s", body)
		}
		return a
	}
	// The control: while it holds the durable, this instance answers,
	// from its own store: the order is applied (4).
	if reply, err := status(); err != nil || !reply.Found {
		t.Fatalf("status while the instance holds the durable: %+v %v", reply, err)
	}
	if a := partner(); a.Result != 0 || len(a.Data) != 1 || a.Data[0].Status != 4 {
		t.Fatalf("partner query while the instance holds the durable: %+v, want the order applied (4)", a)
	}
	// What it exports while it holds the durable.
	series := func() map[string]string {
		t.Helper()
		code, body := get("/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return metricValues(body)
	}
	consuming := []string{"invoice_consumer_backlog", "invoice_consumer_ack_pending", "invoice_consumer_backlog_age_seconds", "invoice_action_required_sellers",
		"invoice_request_consumer_missing", `invoice_unclaimed_mark_unknown{stream="` + pipeline.DefaultRequestStream + `"}`}
	before := series()
	if v := before["invoice_consumer_stood_down"]; v != "0" {
		t.Errorf("invoice_consumer_stood_down while the instance holds the durable: %q, want 0", v)
	}
	for _, name := range consuming {
		if _, ok := before[name]; !ok {
			t.Errorf("%s not exported while the instance holds the durable", name)
		}
	}

	// An instance that started an hour earlier writes itself as the
	// owner, as its watch does when it finds another instance there.
	first := pipeline.Owner{Started: time.Now().Add(-time.Hour).UTC(), Name: "the first instance"}
	if _, err := (pipeline.Topology{}).EnsureConsumer(t.Context(), js, pipeline.ConsumerSettings{Workers: c.o.workers, AckWait: c.o.ackWait, Owner: first}); err != nil {
		t.Fatal(err)
	}
	c.waitLog("another instance took the request consumer", 30*time.Second)

	// It stands down with its request in flight: the status requests
	// are the owner's to answer now.
	for range 5 {
		reply, err := status()
		if !errors.Is(err, pipeline.ErrStatusTimeout) {
			t.Fatalf("the instance that stood down answered a status request from its own order store: %+v %v", reply, err)
		}
	}
	// The owner's status service, whose store has the order rejected:
	// the partner API asks it, not this instance's store.
	ownerStore := storetest.Open(t)
	if _, err := ownerStore.Put(t.Context(), schemas.OrderRecord{Seller: seller, OrderNo: orderNo, Kind: schemas.KindIssue, State: schemas.StateRejected,
		Fingerprint: "owner", ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ownerNC, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer ownerNC.Close()
	svc, err := pipeline.StartStatusService(ownerNC, pipeline.StatusConfig{}, ownerStore)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	if a := partner(); a.Result != 0 || len(a.Data) != 1 || a.Data[0].Status != 3 {
		t.Fatalf("the instance that stood down answered a partner query from its own order store: %+v, want the owner's answer (failed, 3)", a)
	}

	submission.Open()
	c.waitLog("standing by", 60*time.Second)
	select {
	case err := <-c.done:
		t.Fatalf("run returned %v after standing down; want it to stand by until stopped", err)
	case <-time.After(2 * time.Second):
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of the instance standing by: %d, want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stood down") || !strings.Contains(body, "the first instance") {
		t.Errorf("/readyz of the instance standing by: %d %s, want 503 naming the owner", code, body)
	}
	if a := partner(); a.Result != 0 || len(a.Data) != 1 || a.Data[0].Status != 3 {
		t.Errorf("partner query while standing by: %+v, want the owner's answer (failed, 3)", a)
	}
	after := series()
	if v := after["invoice_consumer_stood_down"]; v != "1" {
		t.Errorf("invoice_consumer_stood_down while standing by: %q, want 1", v)
	}
	for _, name := range consuming {
		if v, ok := after[name]; ok {
			t.Errorf("%s = %s exported while standing by: the owner reports the durable's work, not an instance that takes none of it", name, v)
		}
	}
	if _, ok := after["invoice_partitions"]; !ok {
		t.Error("invoice_partitions not exported while standing by")
	}
	if err := c.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop, want nil", err)
	}
}

// metricValues reads a /metrics page in the text format: the value of each
// series, by its name and labels as written ("invoice_orders{state=\"issued\"}").
func metricValues(page string) map[string]string {
	out := map[string]string{}
	for line := range strings.SplitSeq(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

// ownerTestRequest returns a valid issue request (schematest.IssueRequest).
func ownerTestRequest(t *testing.T, seller, orderNo string) []byte {
	t.Helper()
	return schematest.IssueRequest(seller, orderNo, nil)
}

// TestStoodDownInstanceKeepsItsOwnDocuments: an instance that stands down
// with a Nuonuo request in flight issues it, and the PDF of that order, its
// own, is kept into the INVOICE_DOCUMENTS object store while it stands by:
// the document keeper works from this instance's order store, which no
// other instance's keeper reads, so stopping it with the request consumer
// would leave the order's PDF unkept for as long as the instance stands by
// (and InvoiceDocumentsNotKept firing). The provider's PDF link answers only
// once the instance stands by. The keeper stops with the instance, which
// exits 0 when told to.
func TestStoodDownInstanceKeepsItsOwnDocuments(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "owner-docs-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})

	// The provider holds the order's calls at one gate, so that the
	// request is in flight when the instance stands down, and its PDF
	// link at another, so that the PDF cannot be kept before the instance
	// stands by.
	sb := sandbox.New(sandbox.Config{})
	calls, pdf := newGate(t), newGate(t)
	prov := serveGated(t, sb, func(r *http.Request) *gate {
		switch {
		case r.URL.Path == "/open/v1/services":
			return calls
		case strings.HasPrefix(r.URL.Path, "/_sandbox/documents/"):
			return pdf
		}
		return nil
	})
	seller := sandbox.DefaultNuonuoSeller
	config := sandboxSellers(t, "nuonuo", prov.URL, "")
	c := startRun(t, []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", t.TempDir(), "--http", freePort,
		"--workers", "2", "--provider-timeout", "60s", "--shutdown-timeout", "60s"})
	httpAddr := c.o.httpListen

	_, js := jetStreamClient(t, ns.ClientURL())
	const orderNo = "OWNER-DOCS-1"
	if _, err := js.Publish(t.Context(), schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
		t.Fatal(err)
	}
	calls.waitCalled(t, 30*time.Second, c.logs)
	first := pipeline.Owner{Started: time.Now().Add(-time.Hour).UTC(), Name: "the first instance"}
	if _, err := (pipeline.Topology{}).EnsureConsumer(t.Context(), js, pipeline.ConsumerSettings{Workers: c.o.workers, AckWait: c.o.ackWait, Owner: first}); err != nil {
		t.Fatal(err)
	}
	c.waitLog("another instance took the request consumer", 30*time.Second)
	calls.Open()
	c.waitLog("standing by: taking no requests", 60*time.Second)
	if st := sb.Stats(); st.Issuances != 1 {
		t.Fatalf("%d issuances before the instance stood by, want the request in flight issued:\n%s", st.Issuances, c.logs.String())
	}
	pdf.Open()

	// The order's PDF lands in the object store, and the keeper counts it
	// on /metrics, while the instance stands by.
	docs, err := js.ObjectStore(t.Context(), pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	kept := func() (int, string) {
		t.Helper()
		infos, err := docs.List(t.Context())
		if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return len(infos), metricValues(string(body))[`invoice_documents_total{outcome="kept"}`]
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		objects, counted := kept()
		if objects == 1 && counted == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the instance stood by and the PDF link answered: %d object(s) in %s, invoice_documents_total{outcome=\"kept\"} %q; want the order's PDF kept:\n%s",
				objects, pipeline.DocumentBucket, counted, c.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop, want nil", err)
	}
}

// TestRefusedStartStandsBy starts a second instance (its own data
// directory) on the durable a first one consumes from. Its start is
// refused (ensureAlone), and it stands by instead of exiting: an exit
// would have a restart policy (systemd's Restart=on-failure, a pod's
// restartPolicy) start it again and again, and one of those starts could
// take the durable, with an order store that lacks the first one's orders,
// the moment the first restarts. Standing by, it logs the refusal and its
// advice, serves /healthz, /readyz 503 "stood down" naming the first one
// (to a caller on this host) and /metrics with invoice_consumer_stood_down
// 1, its own order store's documents still to be kept (none here) and none
// of the durable's gauges, no partner API (its --partner-http
// answers 404 to everything), takes nothing (the first one issues
// the request published meanwhile, and still owns the durable) and exits 0
// when told to stop.
func TestRefusedStartStandsBy(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "refused-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	sb := sandbox.New(sandbox.Config{})
	prov := serveGated(t, sb, func(*http.Request) *gate { return nil })
	seller := sandbox.DefaultJumdataSeller
	config := sandboxSellers(t, "jumdata", prov.URL, "")
	args := func(data, httpAddr string) []string {
		return []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", data, "--http", httpAddr, "--workers", "2"}
	}
	firstData := t.TempDir()
	first := startRun(t, args(firstData, ""))
	second := startRunUntil(t, append(args(t.TempDir(), freePort), "--partner-http", freePort), "start refused: standing by", 60*time.Second)
	httpAddr, partnerAddr := second.o.httpListen, second.o.partnerAddr
	select {
	case err := <-second.done:
		t.Fatalf("the refused start returned %v while standing by; want it to stand by until stopped:\n%s", err, second.logs.String())
	case <-time.After(2 * time.Second):
	}
	logs := second.logs.String()
	for _, want := range []string{"another client is pulling from the request consumer: consumer invoicer on stream INVOICE_REQUESTS",
		twoInstancesRisk, "stop the other instance, or run several with --partitions", "acknowledges them too, for up to its --shutdown-timeout"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the refused start's log does not say %q:\n%s", want, logs)
		}
	}

	getAt := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	get := func(path string) (int, string) { t.Helper(); return getAt(httpAddr, path) }
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of the refused start standing by: %d, want 200", code)
	}
	// No partner API, on either listener: the refused start set none up.
	// --partner-http is listened on, and answers 404.
	query := "/partner/queryInvoice?" + partnerQuery("acme", "acme-secret-0123456789", seller+":REFUSED-0", time.Now()).Encode()
	for _, at := range []struct{ addr, path string }{{httpAddr, query}, {partnerAddr, query}, {partnerAddr, "/metrics"}, {partnerAddr, "/readyz"}} {
		if code, body := getAt(at.addr, at.path); code != http.StatusNotFound || strings.Contains(body, "result") {
			t.Errorf("GET %s on %s of the refused start standing by: %d %s, want a plain 404", at.path, at.addr, code, body)
		}
	}
	if logs := second.logs.String(); !strings.Contains(logs, "serving nothing (404) on --partner-http") {
		t.Errorf("the refused start's log does not say what --partner-http serves:\n%s", logs)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "stood down") || !strings.Contains(body, firstData) {
		t.Errorf("/readyz of the refused start standing by: %d %s, want 503 stood down, naming the first instance (%s)", code, body, firstData)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics of the refused start standing by: %d", code)
	}
	series := metricValues(body)
	for name, want := range map[string]string{"invoice_consumer_stood_down": "1", "invoice_partitions": "1", "invoice_store_writable": "1", "invoice_documents_pending": "0"} {
		if got := series[name]; got != want {
			t.Errorf("%s of the refused start standing by: %q, want %s", name, got, want)
		}
	}
	for _, name := range []string{"invoice_consumer_backlog", "invoice_consumer_ack_pending", "invoice_consumer_backlog_age_seconds", "invoice_action_required_sellers"} {
		if v, ok := series[name]; ok {
			t.Errorf("%s = %s exported by the refused start standing by, which reads none of it", name, v)
		}
	}

	// The first instance goes on consuming, and owns the durable.
	_, js := jetStreamClient(t, ns.ClientURL())
	const orderNo = "REFUSED-1"
	if _, err := js.Publish(t.Context(), schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
		t.Fatal(err)
	}
	first.waitLog(`"order_no":"`+orderNo+`"`, 30*time.Second)
	if strings.Contains(second.logs.String(), `"order_no":"`+orderNo+`"`) {
		t.Errorf("the refused start took the request:\n%s", second.logs.String())
	}
	cons, err := js.Consumer(t.Context(), pipeline.DefaultRequestStream, "invoicer")
	if err != nil {
		t.Fatal(err)
	}
	if owner := cons.CachedInfo().Config.Metadata[pipeline.OwnerMetadataKey]; !strings.Contains(owner, firstData) {
		t.Errorf("the durable's owner record after the refused start: %q, want the first instance (%s)", owner, firstData)
	}

	if err := second.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once the refused start standing by was told to stop, want nil", err)
	}
}

// TestRefusedStartKeepsItsOwnDocuments: an instance that issued a Nuonuo
// order while it held the durable, and stopped before the order's PDF could
// be kept (the provider's PDF link held), leaves the order listed in its
// own order store. Started again while another instance holds the durable,
// its start is refused and it stands by; it keeps that PDF all the same,
// as an instance that stood down keeps its own: no other instance's keeper
// reads this order store, so without it the PDF would wait until this
// instance holds the durable again (and InvoiceDocumentsNotKept fire
// meanwhile). Its keeper keeps only its own orders: the order the owner
// issues meanwhile is the owner's to keep, and both PDFs land in the shared
// INVOICE_DOCUMENTS bucket, each named by and marked with its own order.
func TestRefusedStartKeepsItsOwnDocuments(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "refused-docs-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	sb := sandbox.New(sandbox.Config{})
	pdf := newGate(t)
	prov := serveGated(t, sb, func(r *http.Request) *gate {
		if strings.HasPrefix(r.URL.Path, "/_sandbox/documents/") {
			return pdf
		}
		return nil
	})
	seller := sandbox.DefaultNuonuoSeller
	config := sandboxSellers(t, "nuonuo", prov.URL, "")
	args := func(data, httpAddr string) []string {
		return []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", data, "--http", httpAddr, "--workers", "2"}
	}
	_, js := jetStreamClient(t, ns.ClientURL())
	publish := func(orderNo string) {
		t.Helper()
		if _, err := js.Publish(t.Context(), schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
			t.Fatal(err)
		}
	}

	// This instance, alone on the durable, issues its order; the keeper
	// is at the PDF link when it is stopped.
	secondData := t.TempDir()
	second := startRun(t, args(secondData, ""))
	const own, owners = "REFUSED-DOCS-OWN", "REFUSED-DOCS-OWNERS"
	publish(own)
	pdf.waitCalled(t, 30*time.Second, second.logs)
	if err := second.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop, want nil", err)
	}

	// Another instance takes the durable; this one, started again, is
	// refused and stands by. The owner issues an order of its own.
	first := startRun(t, args(t.TempDir(), ""))
	again := startRunUntil(t, args(secondData, freePort), "start refused: standing by", 60*time.Second)
	httpAddr := again.o.httpListen
	publish(owners)
	first.waitLog(`"order_no":"`+owners+`"`, 30*time.Second)
	pdf.Open()

	docs, err := js.ObjectStore(t.Context(), pipeline.DocumentBucket)
	if err != nil {
		t.Fatal(err)
	}
	// kept reports whether the object store holds the order's PDF, marked
	// with the order, and what is wrong otherwise.
	kept := func(orderNo string) (bool, string) {
		t.Helper()
		info, err := docs.GetInfo(t.Context(), pipeline.DocumentName(schemas.OrderKey{Seller: seller, OrderNo: orderNo}, 0))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return false, "not kept"
		}
		if err != nil {
			t.Fatal(err)
		}
		if info.Metadata["seller"] != seller || info.Metadata["order_no"] != orderNo {
			t.Fatalf("the PDF kept for %s is marked %v", orderNo, info.Metadata)
		}
		return true, ""
	}
	metrics := func() map[string]string {
		t.Helper()
		resp, err := http.Get("http://" + httpAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return metricValues(string(body))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ownKept, ownWhy := kept(own)
		ownersKept, ownersWhy := kept(owners)
		m := metrics()
		counted, pending := m[`invoice_documents_total{outcome="kept"}`], m["invoice_documents_pending"]
		if ownKept && ownersKept && counted == "1" && pending == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the PDF links answered: this instance's order %s %s, the owner's order %s %s; the refused start's invoice_documents_total{outcome=\"kept\"} %q and invoice_documents_pending %q, want 1 and 0 (its own order's PDF, kept while it stands by):\n%s",
				own, ownWhy, owners, ownersWhy, counted, pending, again.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := again.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once the refused start standing by was told to stop, want nil", err)
	}
}

// The owner record that pipeline writes into the durable is the one the
// consumer's refusal names (ownerRecord, read with pipeline.ParseOwner):
// the instance's name and its start, read back from the server. A durable
// without a record, or with one edited by hand, names nobody.
func TestOwnerRecordReadsWhatPipelineWrites(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "owner-record-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	_, js := jetStreamClient(t, ns.ClientURL())
	topo := pipeline.Topology{}.WithDefaults()
	if err := topo.Ensure(t.Context(), js); err != nil {
		t.Fatal(err)
	}
	info := func(owner pipeline.Owner) *jetstream.ConsumerInfo {
		t.Helper()
		cons, err := topo.EnsureConsumer(t.Context(), js, pipeline.ConsumerSettings{Workers: 2, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		ci, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ci
	}
	started := time.Date(2026, 12, 7, 3, 4, 5, 678, time.UTC)
	const name = "invoicer-consumer host-a /var/lib/invoicer pid 7"
	if got, want := ownerRecord(info(pipeline.Owner{Started: started, Name: name})), "; its owner record names "+name+", started 2026-12-07T03:04:05Z"; got != want {
		t.Errorf("ownerRecord of the record pipeline wrote = %q, want %q", got, want)
	}
	if got := ownerRecord(info(pipeline.Owner{})); got != "" {
		t.Errorf("ownerRecord of a durable without a record = %q, want \"\"", got)
	}
	edited := info(pipeline.Owner{})
	edited.Config.Metadata = map[string]string{pipeline.OwnerMetadataKey: "host-a pid 7"}
	if got := ownerRecord(edited); got != "" {
		t.Errorf("ownerRecord of a record edited by hand = %q, want \"\"", got)
	}
	if got := ownerRecord(nil); got != "" {
		t.Errorf("ownerRecord(nil) = %q, want \"\"", got)
	}
}

// TestStandingDownStopsPullingFirst: an instance that finds another one in
// the durable's owner record stops pulling before anything else, before it
// says it stood down (/readyz 503) and before its status service's
// unsubscriptions are flushed, which on a slow link takes up to 2 s
// (pingHold keeps the flush's PING back while pull requests go on). A
// request published once /readyz says it stood down is not taken by it,
// not submitted to its provider: it stays in the request stream for the
// owner.
func TestStandingDownStopsPullingFirst(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "stand-down-pull-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	link := newPingHold(t, ns.Addr().String())
	sb := sandbox.New(sandbox.Config{})
	prov := serveGated(t, sb, func(*http.Request) *gate { return nil })
	seller := sandbox.DefaultJumdataSeller
	config := sandboxSellers(t, "jumdata", prov.URL, "")
	c := startRun(t, []string{"--nats-url", link.URL(), "--config", config, "--data", t.TempDir(), "--http", freePort,
		"--workers", "2", "--shutdown-timeout", "60s"})
	httpAddr := c.o.httpListen

	_, js := jetStreamClient(t, ns.ClientURL())
	link.Hold()
	first := pipeline.Owner{Started: time.Now().Add(-time.Hour).UTC(), Name: "the first instance"}
	if _, err := (pipeline.Topology{}).EnsureConsumer(t.Context(), js, pipeline.ConsumerSettings{Workers: c.o.workers, AckWait: c.o.ackWait, Owner: first}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "stood down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s 30 s after another instance wrote itself as the owner:\n%s", resp.StatusCode, body, c.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	const orderNo = "STOOD-DOWN-LATE-1"
	if _, err := js.Publish(t.Context(), schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
		t.Fatal(err)
	}
	// The flush of the status service's unsubscriptions gives up after
	// 2 s; then the instance says it stands down, and, once the PINGs go
	// on again, stands by.
	c.waitLog("standing down: stop pulling", 30*time.Second)
	link.Release()
	c.waitLog("standing by: taking no requests", 60*time.Second)
	if st := sb.Stats(); st.Issuances != 0 || strings.Contains(c.logs.String(), orderNo) {
		t.Fatalf("the request published after /readyz said the instance stood down was taken by it: %d issuance(s) at its provider:\n%s", st.Issuances, c.logs.String())
	}
	stream, err := js.Stream(t.Context(), pipeline.DefaultRequestStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(t.Context()); err != nil || info.State.Msgs != 1 {
		t.Fatalf("request stream after the instance stood by: %+v %v; want the request still there for the owner", info, err)
	}
	if err := c.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop, want nil", err)
	}
}
