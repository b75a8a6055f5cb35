package main

import (
	"strings"
	"testing"

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
