package deploy_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// runPublisher runs the publisher binary as r against url, with r's inbox
// prefix in INVOICE_INBOX_PREFIX, and returns its standard output and error
// and its exit code.
func runPublisher(t *testing.T, b binaries, r role, url string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.publisher, args...)
	cmd.Env = append(os.Environ(), "NATS_URL="+strings.Replace(url, "nats://", "nats://"+r.user+":"+passwords[r.user]+"@", 1),
		"INVOICE_INBOX_PREFIX="+r.inbox)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("publisher %v: %v", args, err)
	}
	return string(out), code
}

// TestPermissions runs a server from nats-server.conf and checks each role
// with the real programs, each client on its role's own inbox prefix: the
// consumer issues invoices as the invoicer user, the publisher publishes as
// an order system, tails and asks status as a downstream service, and lists
// and replays dead letters as an SRE — none of them refused anything — and
// then that each role is refused what it must not do, by the server's
// permissions violation: among it, reading any inbox but its own.
func TestPermissions(t *testing.T) {
	b := bins(t)
	srv := startServer(t, "nats-server.conf")
	sb, sbURL := startSandbox(t)
	cons := startConsumer(t, b, srv.url, writeConfig(t, sbURL))

	orders := connect(t, srv.url, ordersRole)
	downstream := connect(t, srv.url, downstreamRole)
	sre := connect(t, srv.url, sreRole)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Downstream: live results on a core subscription.
	live, err := downstream.nc.SubscribeSync("invoice.result.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := downstream.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Order systems: one request with nats.go, one with `publisher publish`.
	nuonuoSeller, jumdataSeller := nuonuoSellers[0], jumdataSellers[0]
	ack, err := orders.js.Publish(ctx, "invoice.request."+nuonuoSeller, issueRequest(nuonuoSeller, "PERM-1"), jetstream.WithMsgID(nuonuoSeller+":PERM-1"))
	if err != nil {
		t.Fatalf("order system publish: %v", err)
	}
	if ack.Stream != pipeline.DefaultRequestStream || ack.Sequence == 0 {
		t.Fatalf("PubAck %+v", ack)
	}
	reqFile := filepath.Join(t.TempDir(), "order.json")
	if err := os.WriteFile(reqFile, issueRequest(jumdataSeller, "PERM-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := runPublisher(t, b, ordersRole, srv.url, "publish", reqFile); code != 0 || !strings.Contains(out, "published 1,") {
		t.Fatalf("publisher publish as orders: exit %d\n%s", code, out)
	}

	// Downstream: both results, live and from the stream.
	for range 2 {
		m, err := live.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("live result: %v\n%s", err, tail(cons.logText(), 3000))
		}
		if !strings.HasPrefix(m.Subject, "invoice.result.issued.") {
			t.Errorf("live result on %s: %s", m.Subject, m.Data)
		}
	}
	if out, code := runPublisher(t, b, downstreamRole, srv.url, "tail", "--all", "--count", "2", "--for", "20s", "--json"); code != 0 || strings.Count(out, `"status":"issued"`) != 2 {
		t.Errorf("publisher tail as downstream: exit %d\n%s", code, out)
	}
	checkExactlyOnce(t, sb, downstream, []string{nuonuoSeller + ":PERM-1", jumdataSeller + ":PERM-2"})

	// Order systems: the same request again, answered already, is dropped
	// by the stream; the publisher reads the stream's state (its first,
	// last and deleted sequences) to say so, which orders may.
	if out, code := runPublisher(t, b, ordersRole, srv.url, "publish", reqFile); code != 1 || !strings.Contains(out, "answered already") {
		t.Errorf("publisher publish of an answered request as orders: exit %d, want 1\n%s", code, out)
	}

	// Downstream: the status service, with nats.go and the publisher.
	reply, err := pipeline.RequestStatus(ctx, downstream.nc, schemas.Subjects{}, pipeline.StatusRequest{Seller: nuonuoSeller, OrderNo: "PERM-1"})
	if err != nil || !reply.Found || reply.Order.State != schemas.StateIssued {
		t.Errorf("status as downstream: %+v %v", reply, err)
	}
	if out, code := runPublisher(t, b, downstreamRole, srv.url, "status", jumdataSeller, "PERM-2"); code != 0 || !strings.Contains(out, "issued") {
		t.Errorf("publisher status as downstream: exit %d\n%s", code, out)
	}

	// The consumer reads its object store back: the partner API serves the
	// PDF kept at issuance.
	checkPartnerPDF(t, cons, nuonuoSeller+":PERM-1")

	// SRE: a malformed request is dead-lettered; list, read, replay it.
	if _, err := orders.js.Publish(ctx, "invoice.request."+nuonuoSeller, []byte(`{"kind":`), jetstream.WithMsgID("broken-1")); err != nil {
		t.Fatal(err)
	}
	dlq := func() uint64 {
		s, err := sre.js.Stream(ctx, pipeline.DefaultDeadLetterStream)
		if err != nil {
			t.Fatalf("dead-letter stream as SRE: %v", err)
		}
		return s.CachedInfo().State.Msgs
	}
	waitFor(t, 30*time.Second, "malformed request dead-lettered", func() (bool, string) {
		n := dlq()
		return n == 1, strconv.FormatUint(n, 10) + " dead letters"
	})
	if out, code := runPublisher(t, b, sreRole, srv.url, "dlq", "list", "--json"); code != 0 || !strings.Contains(out, `"reason":"malformed"`) {
		t.Errorf("publisher dlq list as SRE: exit %d\n%s", code, out)
	}
	s, err := sre.js.Stream(ctx, pipeline.DefaultDeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.GetMsg(ctx, 1); err != nil || !strings.HasPrefix(m.Subject, "invoice.dlq.malformed.") {
		t.Errorf("read dead letter #1 as SRE: %v", err)
	}
	if out, code := runPublisher(t, b, sreRole, srv.url, "dlq", "replay", "--seq", "1"); code != 0 || !strings.Contains(out, "replayed 1,") {
		t.Errorf("publisher dlq replay as SRE: exit %d\n%s", code, out)
	}
	if out, code := runPublisher(t, b, sreRole, srv.url, "dlq", "replay", "--seq", "1"); code != 0 || !strings.Contains(out, "already replayed 1,") {
		t.Errorf("second replay as SRE: exit %d\n%s", code, out)
	}
	if out, code := runPublisher(t, b, sreRole, srv.url, "status", nuonuoSeller, "PERM-1"); code != 0 || !strings.Contains(out, "issued") {
		t.Errorf("publisher status as SRE: exit %d\n%s", code, out)
	}
	// The replayed request is still malformed: the consumer dead-letters it
	// again, which proves the replay reached the request stream.
	waitFor(t, 30*time.Second, "replayed request dead-lettered again", func() (bool, string) {
		n := dlq()
		return n == 2, strconv.FormatUint(n, 10) + " dead letters"
	})

	// The system account answers server requests.
	sys := connect(t, srv.url, sysRole)
	if _, err := sys.nc.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second); err != nil {
		t.Errorf("server ping as sys: %v", err)
	}

	// Nobody was refused anything so far: the permissions are sufficient.
	for _, r := range []role{consumerRole, ordersRole, downstreamRole, sreRole} {
		if v := srv.violations(r.user); len(v) > 0 {
			t.Errorf("%s was refused:\n%s", r.user, strings.Join(v, "\n"))
		}
	}
	if strings.Contains(cons.logText(), "Permissions Violation") {
		t.Errorf("the consumer logged a permissions violation")
	}

	t.Run("refused", func(t *testing.T) { checkRefusals(t, srv) })
}

// checkPartnerPDF asks the consumer's partner API for an order and checks
// it answers the invoice PDF.
func checkPartnerPDF(t *testing.T, c *consumer, requestID string) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(partnerSecret))
	mac.Write([]byte("channel=" + partnerChannel + "&requestId=" + requestID + "&timestamp=" + ts))
	q := url.Values{"channel": {partnerChannel}, "timestamp": {ts}, "requestId": {requestID}, "sign": {hex.EncodeToString(mac.Sum(nil))}}
	resp, err := http.Get("http://" + c.http + "/partner/queryInvoice?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ans struct {
		Result int `json:"result"`
		Data   []struct {
			InvoiceFile string `json:"invoiceFile"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != 200 || ans.Result != 0 || len(ans.Data) == 0 {
		t.Fatalf("partner API %d: %s", resp.StatusCode, body)
	}
	pdf, err := base64.StdEncoding.DecodeString(ans.Data[0].InvoiceFile)
	if err != nil || !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Errorf("partner API invoiceFile is not a PDF: %.40q", pdf)
	}
}

// TestOrdersCannotReadWaitingRequests: an order system (user orders) must
// not read the waiting requests of the request stream, which are every
// seller's, the other order systems' too. A scan needs no sequence: a
// message get with next_by_subj over the request subjects returns the
// first waiting one. The server must refuse it.
func TestOrdersCannotReadWaitingRequests(t *testing.T) {
	srv := startServer(t, "nats-server.conf")
	inv := connect(t, srv.url, consumerRole)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := (pipeline.Topology{}).Ensure(ctx, inv.js); err != nil {
		t.Fatal(err)
	}
	a := connect(t, srv.url, ordersRole) // seller A's order system
	b := connect(t, srv.url, ordersRole) // another order system
	if _, err := a.js.Publish(ctx, "invoice.request."+nuonuoSellers[1], issueRequest(nuonuoSellers[1], "SECRET-1")); err != nil {
		t.Fatal(err)
	}
	st, err := b.js.Stream(ctx, pipeline.DefaultRequestStream) // allowed: the stream's info
	if err != nil {
		t.Fatal(err)
	}
	gctx, gcancel := context.WithTimeout(ctx, 2*time.Second)
	defer gcancel()
	if m, err := st.GetMsg(gctx, 1, jetstream.WithGetMsgSubject("invoice.request.>")); err == nil {
		t.Fatalf("order system B read seller %s's waiting request #%d: %.200s", nuonuoSellers[1], m.Sequence, m.Data)
	}
	if b.violation("$JS.API.STREAM.MSG.GET."+pipeline.DefaultRequestStream) == nil {
		t.Error("no permissions violation for the message get")
	}
}

// checkRefusals checks, one connection per case, that each role is refused
// what it must not do and allowed the harmless reads it needs. A refusal is
// the server's permissions violation (-ERR, seen by the client before the
// answer to its next PING), never a timeout.
func checkRefusals(t *testing.T, srv *natsServer) {
	const seller = "91440101MA5APD8X8J"
	tests := []struct {
		name    string
		role    role
		sub     bool // subscribe to subject instead of publishing to it
		subject string
		allowed bool
	}{
		{"order system forges a result", ordersRole, false, "invoice.result.issued." + seller, false},
		{"order system reads results", ordersRole, true, "invoice.result.>", false},
		{"order system forges a dead letter", ordersRole, false, "invoice.dlq.malformed." + seller, false},
		{"order system pulls requests", ordersRole, false, "$JS.API.CONSUMER.MSG.NEXT.INVOICE_REQUESTS.invoicer", false},
		{"order system deletes the request stream", ordersRole, false, "$JS.API.STREAM.DELETE.INVOICE_REQUESTS", false},
		{"order system asks status", ordersRole, false, "invoice.status", false},
		{"order system publishes below a seller", ordersRole, false, "invoice.request." + seller + ".0", false},
		{"order system looks up the request stream", ordersRole, false, "$JS.API.STREAM.INFO.INVOICE_REQUESTS", true},
		// Not MSG.GET: it would read any seller's waiting request (the
		// publisher reads the stream's info instead).
		{"order system reads a waiting request", ordersRole, false, "$JS.API.STREAM.MSG.GET.INVOICE_REQUESTS", false},
		{"order system reads a waiting request directly", ordersRole, false, "$JS.API.DIRECT.GET.INVOICE_REQUESTS", false},
		{"order system deletes a request", ordersRole, false, "$JS.API.STREAM.MSG.DELETE.INVOICE_REQUESTS", false},
		{"downstream publishes a request", downstreamRole, false, "invoice.request." + seller, false},
		{"downstream reads dead letters", downstreamRole, true, "invoice.dlq.>", false},
		{"downstream purges results", downstreamRole, false, "$JS.API.STREAM.PURGE.INVOICE_RESULTS", false},
		{"downstream pulls requests", downstreamRole, false, "$JS.API.CONSUMER.MSG.NEXT.INVOICE_REQUESTS.invoicer", false},
		{"downstream reads the token bucket", downstreamRole, false, "$JS.API.DIRECT.GET.KV_INVOICE_TOKENS.$KV.INVOICE_TOKENS.x", false},
		{"downstream subscribes to results", downstreamRole, true, "invoice.result.>", true},
		{"downstream reads the result stream", downstreamRole, false, "$JS.API.STREAM.INFO.INVOICE_RESULTS", true},
		{"SRE deletes the dead-letter stream", sreRole, false, "$JS.API.STREAM.DELETE.INVOICE_DLQ", false},
		{"SRE purges the dead-letter stream", sreRole, false, "$JS.API.STREAM.PURGE.INVOICE_DLQ", false},
		{"SRE deletes the request stream", sreRole, false, "$JS.API.STREAM.DELETE.INVOICE_REQUESTS", false},
		{"SRE forges a result", sreRole, false, "invoice.result.issued." + seller, false},
		{"SRE changes the result stream", sreRole, false, "$JS.API.STREAM.UPDATE.INVOICE_RESULTS", false},
		{"SRE reads the dead-letter stream", sreRole, false, "$JS.API.STREAM.INFO.INVOICE_DLQ", true},
		{"consumer publishes a request", consumerRole, false, "invoice.request." + seller, false},
		{"consumer deletes the result stream", consumerRole, false, "$JS.API.STREAM.DELETE.INVOICE_RESULTS", false},
		{"consumer purges the request stream", consumerRole, false, "$JS.API.STREAM.PURGE.INVOICE_REQUESTS", false},
		{"consumer reads the replay marks", consumerRole, false, "$KV.INVOICE_DLQ_REPLAYS.1", false},
		{"consumer deletes an orphaned request", consumerRole, false, "$JS.API.STREAM.MSG.DELETE.INVOICE_REQUESTS", true},
		{"SRE deletes a request", sreRole, false, "$JS.API.STREAM.MSG.DELETE.INVOICE_REQUESTS", false},
		{"consumer subscribes to results", consumerRole, true, "invoice.result.>", false},

		// Replies: each role reads its own inbox only, and nobody
		// publishes into one (the consumer answers through allow_responses).
		{"order system reads every inbox", ordersRole, true, "_INBOX.>", false},
		{"order system reads the consumer's inbox", ordersRole, true, "_INBOX_invoicer.>", false},
		{"order system reads one consumer reply", ordersRole, true, "_INBOX_invoicer.abc.*", false},
		{"order system reads everything", ordersRole, true, ">", false},
		{"order system forges a reply to the consumer", ordersRole, false, "_INBOX_invoicer.abc.def", false},
		{"order system reads its own inbox", ordersRole, true, "_INBOX_orders.>", true},
		{"downstream reads every inbox", downstreamRole, true, "_INBOX.>", false},
		{"downstream reads the consumer's inbox", downstreamRole, true, "_INBOX_invoicer.>", false},
		{"downstream reads the SREs' inbox", downstreamRole, true, "_INBOX_sre.>", false},
		{"downstream reads its own inbox", downstreamRole, true, "_INBOX_downstream.>", true},
		{"SRE reads every inbox", sreRole, true, "_INBOX.>", false},
		{"SRE reads the consumer's inbox", sreRole, true, "_INBOX_invoicer.>", false},
		{"SRE reads downstream's inbox", sreRole, true, "_INBOX_downstream.>", false},
		{"SRE reads its own inbox", sreRole, true, "_INBOX_sre.>", true},
		{"consumer reads every inbox", consumerRole, true, "_INBOX.>", false},
		{"consumer reads downstream's inbox", consumerRole, true, "_INBOX_downstream.>", false},
		{"consumer publishes into downstream's inbox", consumerRole, false, "_INBOX_downstream.abc.def", false},
		{"consumer reads its own inbox", consumerRole, true, "_INBOX_invoicer.>", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, srv.url, tt.role)
			if tt.sub {
				if _, err := c.nc.SubscribeSync(tt.subject); err != nil {
					t.Fatal(err)
				}
			} else if err := c.nc.Publish(tt.subject, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			err := c.nc.LastError()
			switch {
			case tt.allowed && err != nil:
				t.Errorf("%s %s: %v, want allowed", tt.role.user, tt.subject, err)
			case !tt.allowed && (!errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"`+tt.subject+`"`)):
				t.Errorf("%s %s: last error %v, want a permissions violation", tt.role.user, tt.subject, err)
			}
		})
	}

	// The refusals above are in the server's log under each user, as the
	// check that nobody was refused before relies on.
	for _, r := range []role{consumerRole, ordersRole, downstreamRole, sreRole} {
		if len(srv.violations(r.user)) == 0 {
			t.Errorf("the server logged no violation for %s", r.user)
		}
	}

	t.Run("a client without its inbox prefix", func(t *testing.T) {
		// The role's password is right, but nats.go's default inbox is not
		// its own: the first reply subscription is refused and the
		// request gets no answer.
		b := bins(t)
		noPrefix := downstreamRole
		noPrefix.inbox = ""
		out, code := runPublisher(t, b, noPrefix, srv.url, "status", "--timeout", "1s", nuonuoSellers[0], "PERM-1")
		if code != 3 {
			t.Errorf("publisher status as downstream without INVOICE_INBOX_PREFIX: exit %d, want 3\n%s", code, out)
		}
		if !strings.Contains(out, `Permissions Violation for Subscription to "_INBOX.`) {
			t.Errorf("no permissions violation for _INBOX:\n%s", out)
		}
		c := connect(t, srv.url, noPrefix)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := c.js.Stream(ctx, pipeline.DefaultResultStream); err == nil {
			t.Error("a JetStream answer reached _INBOX")
		}
		if err := c.violationMatching(`Subscription to "_INBOX.`); err == nil {
			t.Error("no permissions violation for the _INBOX subscription")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		nc, err := nats.Connect(srv.url, nats.UserInfo(sreRole.user, "not-the-password"), nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatal("connected with a wrong password")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("wrong password: %v, want an authorization violation", err)
		}
	})

	t.Run("SRE cannot delete a stream through the API", func(t *testing.T) {
		c := connect(t, srv.url, sreRole)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := c.js.DeleteStream(ctx, pipeline.DefaultDeadLetterStream); err == nil {
			t.Fatal("SRE deleted the dead-letter stream")
		}
		if err := c.violation("$JS.API.STREAM.DELETE." + pipeline.DefaultDeadLetterStream); err == nil {
			t.Error("no permissions violation for the delete request")
		}
		if _, err := c.js.Stream(context.Background(), pipeline.DefaultDeadLetterStream); err != nil {
			t.Errorf("dead-letter stream after the attempt: %v", err)
		}
	})
}
