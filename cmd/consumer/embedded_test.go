package main

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
)

// --nats-listen's errors name the flag, its value and its variable, as
// every other flag's do ("--http 127.0.0.1:8080 (INVOICE_HTTP): ..."):
// the value may have come from INVOICE_NATS_LISTEN, and an SRE reading
// the error looks for it there too. An address the embedded server
// cannot listen on also says why (the listen's own error).
func TestNatsListenErrorsNameTheFlagAndItsVariable(t *testing.T) {
	taken := takenAddr(t)
	for _, tc := range []struct {
		name, addr string
		why        string // also in the error
	}{
		{"taken", taken, "address already in use"},
		{"no port", "127.0.0.1", "missing port"},
		{"port not a number", "127.0.0.1:nats", "bad port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := startRefused(t, "--nats-listen", tc.addr)
			want := "--nats-listen " + strconv.Quote(tc.addr) + " (INVOICE_NATS_LISTEN): "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("run = %v; want an error starting %q and saying %q", err, want, tc.why)
			}
		})
	}
}

// --nats-listen with port 0 asks for a port the system picks, as --http
// and --sandbox-listen do, and the log says which: the embedded server
// used to take port 0 as its own default, 4222, while the consumer logged
// nats://127.0.0.1:0, so that an operator asking for any free port got
// 4222 without being told (and a start that failed when another NATS
// server ran there). The URL logged is the server's: a client reaches it
// over TCP and finds this instance's durable there.
func TestNatsListenPortZeroIsAFreePortAndLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the consumer")
	}
	data := t.TempDir()
	c := startRun(t, []string{"--data", data, "--nats-listen", "127.0.0.1:0", "--http", ""})
	var url string
	for line := range strings.Lines(c.logs.String()) {
		var entry struct {
			Message string `json:"message"`
			URL     string `json:"url"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && strings.HasPrefix(entry.Message, "embedded NATS server with JetStream is running") {
			url = entry.URL
		}
	}
	if url == "" {
		t.Fatalf("no URL logged for the embedded NATS server:\n%s", c.logs.String())
	}
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "nats://"))
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("the embedded NATS server's URL logged is %q; want nats://127.0.0.1:PORT with the port it listens on, not 0", url)
	}
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatalf("connect to the URL logged, %s: %v", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(t.Context(), pipeline.DefaultRequestStream, "invoicer")
	if err != nil {
		t.Fatalf("the durable on the server at the URL logged, %s: %v", url, err)
	}
	if owner := cons.CachedInfo().Config.Metadata[pipeline.OwnerMetadataKey]; !strings.Contains(owner, data) {
		t.Fatalf("the durable at the URL logged, %s, is owned by %q, not this instance (%s): another NATS server", url, owner, data)
	}
	if err := c.stopAndWait(30 * time.Second); err != nil {
		t.Fatalf("run = %v once told to stop", err)
	}
}
