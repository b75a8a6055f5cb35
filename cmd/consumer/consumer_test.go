package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// consumerProcess is the real consumer binary running in its default mode.
type consumerProcess struct {
	cmd      *exec.Cmd
	natsAddr string
	httpAddr string
	mu       sync.Mutex
	logs     bytes.Buffer
	exited   chan error
}

func (c *consumerProcess) logText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logs.String()
}

// startConsumer builds and starts the consumer with the given data directory
// and waits until /readyz answers 200.
func startConsumer(t *testing.T, bin, data string, extra ...string) *consumerProcess {
	t.Helper()
	// freeAddr's ports are free when it returns, not when the consumer
	// listens: the system may meanwhile give one of them to a listener on
	// port 0 (the in-process sandbox's, by default), and the consumer
	// stops at once, "address already in use". Such a start is tried
	// again with other ports, at most three times in all.
	for try := 1; ; try++ {
		c, inUse := tryStartConsumer(t, bin, data, extra...)
		if !inUse {
			return c
		}
		if try == 3 {
			t.Fatalf("the consumer's ports were taken at each of %d starts; the last one's logs:\n%s", try, c.logText())
		}
	}
}

// tryStartConsumer starts the consumer binary on ports of freeAddr's and
// waits until it is ready. It reports inUse, and returns the stopped
// process, when the consumer stopped at once because one of its ports was
// taken meanwhile.
func tryStartConsumer(t *testing.T, bin, data string, extra ...string) (c *consumerProcess, inUse bool) {
	t.Helper()
	c = &consumerProcess{natsAddr: freeAddr(t), httpAddr: freeAddr(t), exited: make(chan error, 1)}
	args := append([]string{"--data", data, "--nats-listen", c.natsAddr, "--http", c.httpAddr, "--log-format", "json", "--workers", "8"}, extra...)
	c.cmd = exec.Command(bin, args...)
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.logs.Write(sc.Bytes())
			c.logs.WriteByte('\n')
			c.mu.Unlock()
		}
		c.exited <- c.cmd.Wait()
	}()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + c.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, false
			}
		}
		select {
		case err := <-c.exited:
			c.exited <- err // for the caller, as the reader's send left it
			if strings.Contains(c.logText(), "address already in use") {
				return c, true
			}
			t.Fatalf("consumer exited before it was ready (%v); logs:\n%s", err, c.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer not ready within 30s; logs:\n%s", c.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func buildConsumer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "consumer")
	out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestConsumerBinaryDefaultMode runs the real binary with no configuration —
// embedded NATS, in-process sandbox, demo sellers — publishes the seed 001
// example, and checks the result, the metrics, the partner API, the status
// service and a graceful stop.
func TestConsumerBinaryDefaultMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	data := t.TempDir()
	c := startConsumer(t, bin, data)
	for _, want := range []string{"in-process provider SANDBOX", "embedded NATS server with JetStream is running", "consuming invoice requests"} {
		if !strings.Contains(c.logText(), want) {
			t.Errorf("first log lines lack %q", want)
		}
	}

	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	const seller, orderNo = "339902999999789113", "20230113333207931231"
	sub, err := nc.SubscribeSync("invoice.result.*." + seller)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "invoice.request."+seller, req, jetstream.WithMsgID(seller+":"+orderNo)); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no result: %v\n%s", err, c.logText())
	}
	var res schemas.Result
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		t.Fatal(err)
	}
	if res.Status != schemas.StatusIssued || len(res.Invoices) == 0 || msg.Subject != "invoice.result.issued."+seller {
		t.Fatalf("result on %s: %+v", msg.Subject, res)
	}

	// The status service.
	reply, err := pipeline.RequestStatus(ctx, nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: seller, OrderNo: orderNo})
	if err != nil || !reply.Found || reply.Order.State != schemas.StateIssued {
		t.Fatalf("status: %+v %v", reply, err)
	}

	// The partner API: the PDF, base64. The consumer keeps PDFs in the
	// background after the result, and until then the API answers 503
	// (1006, ask again shortly): ask again for at most 20 s, as long as
	// the result was waited for (once, in a CI run beside the other
	// packages' tests, 10 s were not enough).
	var body []byte
	var status int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		q := partnerQuery(demoPartnerChannel, demoPartnerSecret, seller+":"+orderNo, time.Now())
		body, status = httpGet(t, "http://"+c.httpAddr+"/partner/queryInvoice?"+q.Encode())
		if status != 503 || !strings.Contains(string(body), `"result":1006`) || time.Now().After(deadline) {
			break
		}
	}
	var ans partnerAnswer
	if err := json.Unmarshal(body, &ans); err != nil || status != 200 || ans.Result != 0 || len(ans.Data) != len(res.Invoices) {
		t.Fatalf("partner API %d: %s\n%s", status, body, c.logText())
	}
	pdf, err := base64.StdEncoding.DecodeString(ans.Data[0].InvoiceFile)
	if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) || ans.Data[0].Status != 1 {
		t.Fatalf("invoiceFile is not a PDF: %.40q", pdf)
	}
	bad := partnerQuery(demoPartnerChannel, "wrong-secret-wrong-secret", seller+":"+orderNo, time.Now())
	if body, status := httpGet(t, "http://"+c.httpAddr+"/partner/queryInvoice?"+bad.Encode()); status != 401 || !strings.Contains(string(body), "1004") {
		t.Fatalf("bad signature: %d %s", status, body)
	}

	// The validator knows the jumdata seller's provider: jumdata issues
	// invoiceLine p as a fully digital invoice, whose remark has at most 200
	// characters, and the rejection names the field.
	jdBase, err := os.ReadFile(filepath.Join("..", "..", "schemas", "testdata", "requests", "issue-discount.json"))
	if err != nil {
		t.Fatal(err)
	}
	var jd map[string]any
	if err := json.Unmarshal(jdBase, &jd); err != nil {
		t.Fatal(err)
	}
	const jdSeller, jdOrderNo = sandbox.DefaultJumdataSeller, "JD-REMARK-210"
	jd["sellerTaxNum"], jd["orderNo"] = jdSeller, jdOrderNo
	jdOrder := jd["order"].(map[string]any)
	jdOrder["salerTaxNum"], jdOrder["orderNo"], jdOrder["invoiceLine"], jdOrder["remark"] = jdSeller, jdOrderNo, "p", strings.Repeat("备", 210)
	jdReq, err := json.Marshal(jd)
	if err != nil {
		t.Fatal(err)
	}
	jdSub, err := nc.SubscribeSync("invoice.result.*." + jdSeller)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "invoice.request."+jdSeller, jdReq, jetstream.WithMsgID(jdSeller+":"+jdOrderNo)); err != nil {
		t.Fatal(err)
	}
	msg, err = jdSub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no result for the jumdata order: %v\n%s", err, c.logText())
	}
	var jdRes schemas.Result
	if err := json.Unmarshal(msg.Data, &jdRes); err != nil {
		t.Fatal(err)
	}
	if jdRes.Status != schemas.StatusRejected || jdRes.Error == nil || jdRes.Error.Code != schemas.CodeInvalidRequest ||
		jdRes.Error.Field != "order.remark" || jdRes.Error.ProviderCode != "400" {
		t.Fatalf("jumdata order with a 210-character remark on invoiceLine p: %s", msg.Data)
	}

	// Metrics.
	metrics, _ := httpGet(t, "http://"+c.httpAddr+"/metrics")
	for _, want := range []string{`invoice_messages_total{event="issued"} 1`, `invoice_provider_call_seconds_count{code="E0000",method="requestBillingNew",provider="nuonuo"} 1`, "invoice_consumer_backlog",
		`invoice_order_save_seconds_count{patient="false"}`, `invoice_order_save_seconds_count{patient="true"}`,
		"go_sched_gomaxprocs_threads ", "go_sched_latencies_seconds_count "} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// One JSON log line per message, with the fixed keys.
	var line map[string]any
	for _, l := range strings.Split(c.logText(), "\n") {
		if strings.Contains(l, `"message":"processed"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for _, k := range []string{"seller", "order_no", "stream_seq", "attempt", "action", "status", "provider_code", "took"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %q: %v", k, line)
		}
	}

	// A second instance on the same data directory refuses to start.
	second := exec.Command(bin, "--data", data, "--nats-listen", freeAddr(t), "--http", "")
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another consumer instance") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}

	// Graceful stop.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, c.logText())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
	if !strings.Contains(c.logText(), `"message":"stopped"`) {
		t.Errorf("no stopped line:\n%s", c.logText())
	}
}

func partnerQuery(channel, secret, requestID string, at time.Time) url.Values {
	ts := strconv.FormatInt(at.UnixMilli(), 10)
	return url.Values{"channel": {channel}, "timestamp": {ts}, "requestId": {requestID}, "sign": {partnerSign([]byte(secret), channel, requestID, ts)}}
}

func httpGet(t *testing.T, u string) ([]byte, int) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// TestASecondSignalStopsAtOnce: the first SIGTERM waits for the requests in
// flight (here a provider call of 30 s); a second one ends the process at
// once instead of being swallowed.
func TestASecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	c := startConsumer(t, bin, t.TempDir(), "--sandbox-latency", "30s", "--shutdown-timeout", "2m")
	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "invoice.request.339902999999789113", req); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the request is at the sandbox, which answers in 30 s
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.logText(), "send it again to stop at once"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no word of the first signal:\n%s", c.logText())
		}
	}
	select {
	case err := <-c.exited:
		t.Fatalf("exited before the second signal, with a request in flight: %v\n%s", err, c.logText())
	case <-time.After(500 * time.Millisecond):
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("still running 5 s after the second SIGTERM:\n%s", c.logText())
	}
}

// TestReadyzIsNotReadyWhileDraining: from the first SIGTERM on, the
// consumer takes no new requests while it finishes those in flight (here a
// provider call of 30 s): /readyz answers 503 saying it is draining, so
// that Kubernetes and the SRE do not count it as ready, while /healthz and
// /metrics are served as before.
func TestReadyzIsNotReadyWhileDraining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	c := startConsumer(t, bin, t.TempDir(), "--sandbox-latency", "30s", "--shutdown-timeout", "2m")
	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "invoice.request.339902999999789113", req); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		metrics, _ := httpGet(t, "http://"+c.httpAddr+"/metrics")
		if strings.Contains(string(metrics), "invoice_in_flight 1") {
			break // the request is at the sandbox, which answers in 30 s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request never went in flight:\n%s", c.logText())
		}
	}
	if body, status := httpGet(t, "http://"+c.httpAddr+"/readyz"); status != http.StatusOK {
		t.Fatalf("/readyz before the signal: %d %s", status, body)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.logText(), "shutting down: stop pulling"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no word of the shutdown:\n%s", c.logText())
		}
	}
	body, status := httpGet(t, "http://"+c.httpAddr+"/readyz")
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "draining") {
		t.Errorf("/readyz while draining: %d %s; want 503 saying it is draining", status, body)
	}
	if body, status := httpGet(t, "http://"+c.httpAddr+"/healthz"); status != http.StatusOK {
		t.Errorf("/healthz while draining: %d %s; want 200", status, body)
	}
	if metrics, status := httpGet(t, "http://"+c.httpAddr+"/metrics"); status != http.StatusOK || !strings.Contains(string(metrics), "invoice_in_flight 1") {
		t.Errorf("/metrics while draining: %d, in flight 1: %v; want it served", status, strings.Contains(string(metrics), "invoice_in_flight 1"))
	}
	select {
	case err := <-c.exited:
		t.Fatalf("exited with a request in flight: %v\n%s", err, c.logText())
	default:
	}
}

// TestShutdownTimeoutAbandonsAndWaits: when --shutdown-timeout runs out
// with a request in flight (here a provider call of 30 s), the consumer
// cancels it and waits for the consume loop before it closes NATS and the
// order store: the request is logged as abandoned and put back while the
// connection is still open, before the "stopped" line, and it is
// delivered again to the next start (nothing was acknowledged).
func TestShutdownTimeoutAbandonsAndWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the consumer binary")
	}
	bin := buildConsumer(t)
	data := t.TempDir()
	c := startConsumer(t, bin, data, "--sandbox-latency", "30s", "--shutdown-timeout", "1s")
	nc, err := nats.Connect("nats://" + c.natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	req, err := os.ReadFile(filepath.Join("..", "..", "schemas", "examples", "seed001.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const seller, orderNo = "339902999999789113", "20230113333207931231"
	if _, err := js.Publish(ctx, "invoice.request."+seller, req); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		metrics, _ := httpGet(t, "http://"+c.httpAddr+"/metrics")
		if strings.Contains(string(metrics), "invoice_in_flight 1") {
			break // the request is at the sandbox, which answers in 30 s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the request never went in flight:\n%s", c.logText())
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, c.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM with a 1 s shutdown timeout:\n%s", c.logText())
	}

	// The abandoned request's line, put back before the stop, with NATS
	// still open.
	abandoned, stopped := -1, -1
	var line map[string]any
	for i, l := range strings.Split(c.logText(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		switch {
		case m["message"] == "processed" && m["order_no"] == orderNo && abandoned < 0:
			abandoned, line = i, m
		case m["message"] == "stopped":
			stopped = i
		}
	}
	if abandoned < 0 || stopped < 0 || abandoned > stopped {
		t.Fatalf("want the request's \"processed\" line before \"stopped\" (lines %d and %d): the consumer stopped with the request still in flight\n%s", abandoned, stopped, c.logText())
	}
	if line["abandoned"] != true || line["action"] != "nak" {
		t.Errorf("the request's line: %v; want it abandoned and put back (nak)", line)
	}
	if e, _ := line["error"].(string); strings.Contains(e, "closed") {
		t.Errorf("the request was put back after a close: %q", e)
	}

	// Nothing was acknowledged: the next start gets the request again.
	c2 := startConsumer(t, bin, data)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if strings.Contains(c2.logText(), `"order_no":"`+orderNo+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned request was not delivered again to the next start:\n%s", c2.logText())
		}
	}
}
