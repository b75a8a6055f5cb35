package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// TestNATSConnectErrorHidesThePassword: a NATS_URL that nats.go cannot
// parse (a mistyped port, a password with a character that is not
// URL-safe) fails the start with an error that main logs ("consumer
// stopped"); url.Parse's error quotes the whole URL, password included.
func TestNATSConnectErrorHidesThePassword(t *testing.T) {
	for _, u := range []string{
		"nats://invoicer:S3CRET-PW@nats.example:42x2",       // mistyped port
		"nats://invoicer:S3CRET-PW%zz@127.0.0.1:4222",       // a password that is not URL-safe
		"invoicer:S3CRET-PW@nats.example:42x2",              // no scheme: nats.go adds nats://
		"nats://h1:4222, nats://invoicer:S3CRET-PW@h2:42x2", // the second of a list
		"nats://S3CRET-PW@nats.example:42x2",                // a token
	} {
		nc, err := connectNATS(&options{natsURL: u, dataDir: t.TempDir()}, nil, zerolog.Nop())
		if err == nil {
			nc.Close()
			t.Fatalf("%s: connected", u)
		}
		if strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%s: the error shows the secret: %v", u, err)
		}
	}
}

// TestReconnectLogHidesTheToken: NATS_URL may carry a token instead of a
// user and password (nats://TOKEN@host:4222, the NATS convention); the
// "reconnected to NATS" line that every NATS outage logs must not show it.
// nats.go's ConnectedUrlRedacted hides a password only.
func TestReconnectLogHidesTheToken(t *testing.T) {
	const token = "S3CRET-TOKEN-4f9a"
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Authorization: token})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	defer ns.Shutdown()
	var logs syncBuffer
	u := fmt.Sprintf("nats://%s@%s", token, ns.Addr().String())
	nc, err := connectNATS(&options{natsURL: u, dataDir: t.TempDir()}, nil, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	id, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(logs.String(), "reconnected to NATS") {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnection logged:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(logs.String(), token) {
		t.Fatalf("the log shows the token:\n%s", logs.String())
	}
}

// TestNATSConnectErrorRedactsEachURLOnce: each URL in nats.go's error is
// replaced by its redacted form once, not again inside the replacement
// (an empty user information, "@host", is the end of its redacted form
// "[redacted]@host").
func TestNATSConnectErrorRedactsEachURLOnce(t *testing.T) {
	nc, err := connectNATS(&options{natsURL: "@nats.example:42x2", dataDir: t.TempDir()}, nil, zerolog.Nop())
	if err == nil {
		nc.Close()
		t.Fatal("connected")
	}
	if msg := err.Error(); !strings.Contains(msg, `"nats://[redacted]@nats.example:42x2"`) || strings.Contains(msg, "[redacted][redacted]") {
		t.Errorf("error %q; want the URL as nats://[redacted]@nats.example:42x2", msg)
	}
}
