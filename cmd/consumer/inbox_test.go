package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store/storetest"
)

func TestInboxPrefixFlag(t *testing.T) {
	const bad = "is not a subject prefix"
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // the prefix parsed
		wantErr string // or a part of the error
	}{
		{"unset is nats.go's default", nil, nil, "", ""},
		{"flag", []string{"--inbox-prefix", "_INBOX_invoicer"}, nil, "_INBOX_invoicer", ""},
		{"environment", nil, map[string]string{"INVOICE_INBOX_PREFIX": "_INBOX_invoicer"}, "_INBOX_invoicer", ""},
		{"flag over environment", []string{"--inbox-prefix=_INBOX_a"}, map[string]string{"INVOICE_INBOX_PREFIX": "_INBOX_b"}, "_INBOX_a", ""},
		{"several tokens", []string{"--inbox-prefix", "replies.invoicer"}, nil, "replies.invoicer", ""},
		{"with --nats-url", []string{"--nats-url", "nats://127.0.0.1:4222", "--config", "sellers.yaml", "--inbox-prefix", "_INBOX_invoicer"}, nil, "_INBOX_invoicer", ""},
		{"embedded server too", []string{"--inbox-prefix", "_INBOX_invoicer", "--nats-listen", "127.0.0.1:0"}, nil, "_INBOX_invoicer", ""},
		{"full wildcard", []string{"--inbox-prefix", "_INBOX.>"}, nil, "", bad},
		{"token wildcard", []string{"--inbox-prefix", "_INBOX.*"}, nil, "", bad},
		{"wildcard inside a token", []string{"--inbox-prefix", "_INBOX_*"}, nil, "", bad},
		{"trailing dot", []string{"--inbox-prefix", "_INBOX_invoicer."}, nil, "", bad},
		{"leading dot", []string{"--inbox-prefix", "._INBOX"}, nil, "", bad},
		{"empty token", []string{"--inbox-prefix", "a..b"}, nil, "", bad},
		{"space", []string{"--inbox-prefix", "_INBOX invoicer"}, nil, "", bad},
		{"tab from the environment", nil, map[string]string{"INVOICE_INBOX_PREFIX": "_INBOX\tinvoicer"}, "", bad},
		{"newline", []string{"--inbox-prefix", "_INBOX\n"}, nil, "", bad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, envOf(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--inbox-prefix") {
					t.Fatalf("error %v, want one about --inbox-prefix containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.inboxPrefix != tc.want {
				t.Errorf("inbox prefix %q, want %q", o.inboxPrefix, tc.want)
			}
		})
	}
}

// syncBuffer is a log destination written by nats.go's callbacks and read
// by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// inboxServer is a JetStream server whose users may receive replies only
// under their own inbox prefix, as deploy/accounts.conf sets them up:
// invoicer (the consumer: JetStream, key-value, object store, the status
// service answered through allow_responses only) and asker (a client of the
// status service).
func inboxServer(t *testing.T) (*server.Server, func(user string) string) {
	t.Helper()
	const invoicerPW, askerPW = "invoicer-test-password", "asker-test-password"
	ns := testServer(t, &server.Options{
		ServerName: "inbox-test", Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "invoicer", Password: invoicerPW, Permissions: &server.Permissions{
				// No inbox of anybody: replies to the status service's
				// askers are allowed once per request received.
				Publish:   &server.SubjectPermission{Allow: []string{"$JS.>", "$KV.>", "$O.>", "test.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_invoicer.>", "invoice.status", "$SRV.>"}},
				Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: time.Minute},
			}},
			{Username: "asker", Password: askerPW, Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"invoice.status", "$SRV.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX_asker.>"}},
			}},
		},
	})
	pw := map[string]string{"invoicer": invoicerPW, "asker": askerPW}
	return ns, func(user string) string {
		u, _ := url.Parse(ns.ClientURL())
		u.User = url.UserPassword(user, pw[user])
		return u.String()
	}
}

// TestConnectNATSInboxPrefix connects as the consumer does, with
// --inbox-prefix, as a user that may subscribe only under that prefix, and
// uses every kind of reply the consumer depends on: JetStream API answers,
// synchronous and asynchronous PubAcks, pull requests and acknowledgements,
// ordered consumers, key-value reads and compare-and-swap writes, object
// store writes and reads, and the status service (nats micro) answering a
// client on its own prefix. A reply subject under another prefix would be
// refused by the server, and its violation logged by connectNATS.
func TestConnectNATSInboxPrefix(t *testing.T) {
	ns, userURL := inboxServer(t)
	var logs syncBuffer
	log := zerolog.New(&logs)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	t.Run("without the prefix the user is refused", func(t *testing.T) {
		// The control: the server restricts replies, so the test below can
		// fail.
		var refused syncBuffer
		nc, err := connectNATS(&options{natsURL: userURL("invoicer")}, nil, zerolog.New(&refused))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		defer acancel()
		if _, err := js.AccountInfo(actx); err == nil {
			t.Fatal("a JetStream request answered on _INBOX, which the user may not subscribe to")
		}
		_ = nc.Flush()
		if !strings.Contains(refused.String(), `Permissions Violation for Subscription to \"_INBOX.`) {
			t.Errorf("no violation for _INBOX logged:\n%s", refused.String())
		}
	})

	const prefix = "_INBOX_invoicer"
	nc, err := connectNATS(&options{natsURL: userURL("invoicer"), inboxPrefix: prefix}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.NewInbox(); !strings.HasPrefix(got, prefix+".") {
		t.Fatalf("NewInbox %q, want it under %s", got, prefix)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("stream API, PubAcks and async PubAcks", func(t *testing.T) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TEST", Subjects: []string{"test.req.>"}}); err != nil {
			t.Fatalf("create stream: %v", err)
		}
		if _, err := js.Publish(ctx, "test.req.0", []byte("0")); err != nil {
			t.Fatalf("publish: %v", err)
		}
		var futures []jetstream.PubAckFuture
		for i := 1; i <= 20; i++ {
			f, err := js.PublishAsync("test.req."+strconv.Itoa(i), []byte{byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			t.Fatal("async PubAcks did not arrive")
		}
		for i, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Stream != "TEST" {
					t.Errorf("PubAck %d: %+v", i, ack)
				}
			case err := <-f.Err():
				t.Errorf("async publish %d: %v", i, err)
			}
		}
	})

	t.Run("pull consumer: Fetch, Messages, acks", func(t *testing.T) {
		c, err := js.CreateOrUpdateConsumer(ctx, "TEST", jetstream.ConsumerConfig{Durable: "invoicer", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("create consumer: %v", err)
		}
		batch, err := c.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := m.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if batch.Error() != nil || n != 10 {
			t.Fatalf("fetched %d of 10: %v", n, batch.Error())
		}
		// The other 11, as the consume loop pulls them: a short expiry, and
		// a missed heartbeat is not fatal, as in pipeline.Loop (the
		// iterator sends a fresh pull request after one). It happened once
		// in CI, with a 30 s expiry, and could not be reproduced since.
		it, err := c.Messages(jetstream.PullMaxMessages(4), jetstream.PullExpiry(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Stop()
		nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
		defer ncancel()
		for i := 0; i < 11; {
			m, err := it.Next(jetstream.NextContext(nctx))
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				t.Logf("message %d: %v; pulling again", i, err)
				continue
			}
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("double ack %d: %v", i, err)
			}
			i++
		}
	})

	t.Run("ordered consumer", func(t *testing.T) {
		oc, err := js.OrderedConsumer(ctx, "TEST", jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 21 {
			if _, err := oc.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
				t.Fatalf("ordered message %d: %v", i, err)
			}
		}
	})

	t.Run("key-value: create, put, get, compare-and-swap", func(t *testing.T) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "TOKENS"})
		if err != nil {
			t.Fatalf("create bucket: %v", err)
		}
		rev, err := kv.Put(ctx, "seller", []byte("token-1"))
		if err != nil {
			t.Fatal(err)
		}
		e, err := kv.Get(ctx, "seller")
		if err != nil || string(e.Value()) != "token-1" {
			t.Fatalf("get: %v %v", e, err)
		}
		if _, err := kv.Update(ctx, "seller", []byte("token-2"), rev); err != nil {
			t.Fatalf("update: %v", err)
		}
		if _, err := kv.Update(ctx, "seller", []byte("token-3"), rev); !errors.Is(err, jetstream.ErrKeyExists) {
			t.Fatalf("stale update: %v, want ErrKeyExists", err)
		}
	})

	t.Run("object store: put, info, get", func(t *testing.T) {
		obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "DOCS"})
		if err != nil {
			t.Fatalf("create object store: %v", err)
		}
		doc := make([]byte, 3<<20) // 24 chunks, read back by an ordered push consumer
		_, _ = rand.Read(doc)
		if _, err := obs.PutBytes(ctx, "invoice.pdf", doc); err != nil {
			t.Fatal(err)
		}
		if _, err := obs.GetInfo(ctx, "invoice.pdf"); err != nil {
			t.Fatal(err)
		}
		got, err := obs.GetBytes(ctx, "invoice.pdf")
		if err != nil || !bytes.Equal(got, doc) {
			t.Fatalf("read back %d of %d bytes: %v", len(got), len(doc), err)
		}
	})

	// Still subscribed: the request/reply multiplexer and the async PubAck
	// subscription, both under the prefix.
	connz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true, User: "invoicer"})
	if err != nil {
		t.Fatal(err)
	}
	inboxes := 0
	for _, c := range connz.Conns {
		for _, sub := range c.Subs {
			if strings.HasPrefix(sub, "_INBOX") {
				inboxes++
				if !strings.HasPrefix(sub, prefix+".") {
					t.Errorf("subscribed to %s", sub)
				}
			}
		}
	}
	if inboxes < 2 {
		t.Errorf("%d inbox subscriptions, want the request multiplexer's and the async PubAcks'", inboxes)
	}

	t.Run("status service answers on the asker's prefix", func(t *testing.T) {
		db := storetest.Open(t)
		svc, err := pipeline.StartStatusService(nc, pipeline.StatusConfig{}, db)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = svc.Stop() }()
		asker, err := nats.Connect(userURL("asker"), nats.CustomInboxPrefix("_INBOX_asker"))
		if err != nil {
			t.Fatal(err)
		}
		defer asker.Close()
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		reply, err := pipeline.RequestStatus(sctx, asker, schemas.Subjects{}, pipeline.StatusRequest{Seller: "339902999999789113", OrderNo: "X-1"})
		if err != nil || reply.Found {
			t.Fatalf("status: %+v %v", reply, err)
		}
		// nats micro discovery is answered the same way.
		if _, err := asker.Request("$SRV.PING."+pipeline.StatusServiceName, nil, 5*time.Second); err != nil {
			t.Fatalf("$SRV.PING: %v", err)
		}
	})

	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "Violation") {
		t.Errorf("the connection was refused something:\n%s", logs.String())
	}
}
