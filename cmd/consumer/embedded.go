package main

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// embeddedConfig configures the in-process NATS server of the default mode.
type embeddedConfig struct {
	// Listen is host:port for clients (the nats CLI, the publisher).
	Listen string
	// DataDir holds the JetStream store (DataDir/jetstream).
	DataDir string
	// SyncAlways fsyncs every JetStream write; otherwise SyncInterval applies.
	SyncAlways   bool
	SyncInterval time.Duration
}

// startEmbedded starts a NATS server with JetStream and waits until it
// accepts connections. Its logs go to log at the levels they are written at.
// An address it cannot listen on is refused naming the flag, its value and
// its variable, as the other flags' errors do. Port 0 is a port the system
// picks; the server's ClientURL says which.
func startEmbedded(cfg embeddedConfig, log zerolog.Logger) (*server.Server, error) {
	const named = "--nats-listen %q (INVOICE_NATS_LISTEN)"
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf(named+": %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf(named+": bad port", cfg.Listen)
	}
	// Fail with a plain message when the port is taken, instead of the
	// server's own retry loop.
	if l, err := net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf(named+": cannot listen there for the embedded NATS server (%v): another NATS server is probably running there; stop it, choose another --nats-listen, or use it with --nats-url (NATS_URL)", cfg.Listen, err)
	} else {
		_ = l.Close()
	}
	// Port 0 is, to nats-server, its default port (4222), not a port the
	// system picks as it is to net.Listen and to our other listeners: an
	// operator asking for any free port would get 4222, and a start that
	// fails when another NATS server runs there. RANDOM_PORT (-1) is the
	// server's way of asking for one; it then records the port it got in
	// its options, which ClientURL reads, and the start logs that URL.
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName:   "invoicer-embedded",
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:   cfg.SyncAlways,
		SyncInterval: cfg.SyncInterval,
		NoSigs:       true,
		MaxPayload:   1 << 20,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With().Str("component", "nats-server").Logger()}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready within 15s")
	}
	return ns, nil
}

// natsLogger adapts zerolog to the server's logger.
type natsLogger struct{ log zerolog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
