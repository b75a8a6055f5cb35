package main

import (
	"strconv"
	"strings"
	"testing"
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
