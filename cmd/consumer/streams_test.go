package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestDeletedResultsStreamIsCreatedAgain: an operator deletes the results
// stream while the consumer runs. The next result finds no stream to take
// it; the consumer creates the stream again, with its own settings, and the
// result goes out within seconds, instead of every request waiting for its
// result's acknowledgement until its processing times out (2 minutes) and
// then again, until the consumer is restarted.
func TestDeletedResultsStreamIsCreatedAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	c := startConsumer(t, bin, t.TempDir())
	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	before, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(ctx, pipeline.DefaultResultStream); err != nil {
		t.Fatal(err)
	}

	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	const seller, orderNo = "339902999999789113", "20230113333207931231"
	if _, err := js.Publish(ctx, "invoice.request."+seller, req, jetstream.WithMsgID(seller+":"+orderNo)); err != nil {
		t.Fatal(err)
	}
	// Read from the stream, not with a subscription: a plain subscriber
	// on the results' subjects would take the publishes no stream
	// answers.
	var msg *jetstream.RawStreamMsg
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s, err := js.Stream(ctx, pipeline.DefaultResultStream); err == nil {
			if msg, err = s.GetLastMsgForSubject(ctx, "invoice.result.issued."+seller); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no result in %s within 20 s of its deletion:\n%s", pipeline.DefaultResultStream, c.logText())
		}
	}
	var res schemas.Result
	if err := json.Unmarshal(msg.Data, &res); err != nil || res.OrderNo != orderNo || res.Status != schemas.StatusIssued {
		t.Fatalf("result %s: %v", msg.Data, err)
	}
	after, err := js.Stream(ctx, pipeline.DefaultResultStream)
	if err != nil {
		t.Fatal(err)
	}
	want, got := before.CachedInfo().Config, after.CachedInfo().Config
	if got.MaxAge != want.MaxAge || got.Duplicates != want.Duplicates || got.Retention != want.Retention ||
		got.Storage != want.Storage || got.Replicas != want.Replicas || strings.Join(got.Subjects, " ") != strings.Join(want.Subjects, " ") {
		t.Errorf("the stream created again: %+v; want the consumer's settings %+v", got, want)
	}
	if !strings.Contains(c.logText(), pipeline.DefaultResultStream) || !strings.Contains(c.logText(), "created again") {
		t.Errorf("the log does not say the stream was created again:\n%s", c.logText())
	}
}

// TestDeletedRequestStreamIsCreatedAgain: an operator deletes the request
// stream while the consumer runs (nats stream rm), which deletes its
// durable too. The consumer creates both again with its settings and goes
// on: a request published since is issued, its result kept (not dropped
// as a duplicate of the deleted stream's request of the same number).
// Before, run returned "stopped without being asked to" when a pull of its
// was waiting at the server, and otherwise (its workers busy) pulled from
// nothing for ever, ready by /readyz, logging a missing heartbeat every
// 2 s. When the stream cannot be created again (another stream took its
// subjects), /readyz answers 503 saying the request consumer is missing
// and why, invoice_request_consumer_missing is 1, and the log says so
// twice (the first failure a warning, the second an error), not at every
// try; once the subjects are free it goes on.
func TestDeletedRequestStreamIsCreatedAgain(t *testing.T) {
	ns := testServer(t, &server.Options{ServerName: "request-stream-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir()})
	// The provider holds its calls while hold is set, until its gate opens.
	sb := sandbox.New(sandbox.Config{})
	var hold atomic.Bool
	held := newGate(t)
	prov := serveGated(t, sb, func(*http.Request) *gate {
		if hold.Load() {
			return held
		}
		return nil
	})
	seller := sandbox.DefaultJumdataSeller
	config := sandboxSellers(t, "jumdata", prov.URL, "")
	c := startRun(t, []string{"--nats-url", ns.ClientURL(), "--config", config, "--data", t.TempDir(), "--http", freePort,
		"--workers", "1", "--provider-timeout", "60s"})
	httpAddr := c.o.httpListen

	_, js := jetStreamClient(t, ns.ClientURL())
	ctx := t.Context()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, err.Error() // run returned: waitFor says so
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// waitFor polls cond every 100 ms for at most within, failing the test
	// if run returns meanwhile.
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
			ok := cond()
			select {
			case err := <-c.done:
				t.Fatalf("run returned %v while waiting for %s:\n%s", err, what, c.logs.String())
			default:
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within %s:\n%s", what, within, c.logs.String())
			}
		}
	}
	publish := func(orderNo string) {
		t.Helper()
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a loaded machine: more than the client's 5 s
		defer cancel()
		if _, err := js.Publish(pctx, schemas.Subjects{}.Request(seller), ownerTestRequest(t, seller, orderNo)); err != nil {
			t.Fatalf("publish %s: %v", orderNo, err)
		}
	}
	issued := func(orderNo string) {
		t.Helper()
		waitFor("issued result for "+orderNo, 20*time.Second, func() bool {
			s, err := js.Stream(ctx, pipeline.DefaultResultStream)
			if err != nil {
				return false
			}
			m, err := s.GetLastMsgForSubject(ctx, schemas.Subjects{}.Result(schemas.StatusIssued, seller))
			return err == nil && m.Header.Get(pipeline.HeaderOrderNo) == orderNo
		})
	}
	recreated := func() bool {
		_, err := js.Consumer(ctx, pipeline.DefaultRequestStream, pipeline.DefaultDurable)
		code, _ := get("/readyz")
		return err == nil && code == http.StatusOK
	}

	publish("REQ-STREAM-1")
	issued("REQ-STREAM-1")
	if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	waitFor("request stream and consumer created again, and /readyz 200", 20*time.Second, recreated)
	c.waitLog("the request stream was missing (deleted?): created again", 10*time.Second)
	publish("REQ-STREAM-2") // #1 of the new stream, as REQ-STREAM-1 was of the old
	issued("REQ-STREAM-2")

	// Its only worker held at the provider, the consumer has no pull
	// waiting, and finds the stream gone once the request is done: by
	// then another stream has taken its subjects.
	hold.Store(true)
	publish("REQ-STREAM-3")
	publish("REQ-STREAM-4")
	held.waitCalled(t, 20*time.Second, c.logs)
	if err := js.DeleteStream(ctx, pipeline.DefaultRequestStream); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SQUATTER", Subjects: []string{schemas.Subjects{}.RequestFilter()}}); err != nil {
		t.Fatal(err)
	}
	logsBefore := strings.Count(c.logs.String(), "\n")
	hold.Store(false)
	held.Open()
	// The first try comes a second after the consumer was found gone
	// (pipeline.RecreateSettle); /readyz says the cause once it failed.
	waitFor("/readyz 503 saying the request consumer is missing, and the cause (subjects overlap)", 20*time.Second, func() bool {
		code, body := get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "request consumer missing") && strings.Contains(body, "subjects overlap")
	})
	if v := metricValues(func() string { _, m := get("/metrics"); return m }())["invoice_request_consumer_missing"]; v != "1" {
		t.Errorf("invoice_request_consumer_missing %q while the stream cannot be created again; want 1", v)
	}
	time.Sleep(8 * time.Second) // tries at about 1, 2, 4 and 8 s
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d while the stream still cannot be created again", code)
	}
	logged := strings.Split(c.logs.String(), "\n")[logsBefore:]
	if n := len(logged) - 1; n > 5 {
		t.Errorf("%d log lines in 8 s of a missing request consumer, want a few (the requests done, the consumer gone, the first failure, a warning, and the second, an error):\n%s", n, strings.Join(logged, "\n"))
	}
	if err := js.DeleteStream(ctx, "SQUATTER"); err != nil {
		t.Fatal(err)
	}
	waitFor("request stream created again once its subjects are free, and /readyz 200", 70*time.Second, recreated)
	if v := metricValues(func() string { _, m := get("/metrics"); return m }())["invoice_request_consumer_missing"]; v != "0" {
		t.Errorf("invoice_request_consumer_missing %q once the stream was created again; want 0", v)
	}
	publish("REQ-STREAM-5")
	issued("REQ-STREAM-5")
}
