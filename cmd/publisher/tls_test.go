package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/fapiaohub/invoicer/schemas"
)

// writePEM writes one PEM block to dir/name and returns its path.
func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testCA makes a CA and a certificate it signs for 127.0.0.1 (a server's or
// a client's), and returns the CA's PEM file and the pair of PEM files.
func testCA(t *testing.T, dir, name string, ext x509.ExtKeyUsage) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{ext}, KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+"-ca.pem", "CERTIFICATE", caDER), writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestTLSFlags: a NATS server behind TLS with client certificates, as
// deploy/README.md advises, is reached with --tlsca, --tlscert and --tlskey
// (or NATS_CA, NATS_CERT, NATS_KEY), and not without them.
func TestTLSFlags(t *testing.T) {
	dir := t.TempDir()
	serverCA, serverCert, serverKey := testCA(t, dir, "server", x509.ExtKeyUsageServerAuth)
	clientCA, clientCert, clientKey := testCA(t, dir, "client", x509.ExtKeyUsageClientAuth)
	url := startTLSServer(t, &server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey, CaFile: clientCA, Verify: true})

	// Connected: the status request finds no consumer (exit 3, said so).
	_, errOut, code := runCLI(t, "", "--server", url, "--timeout", "500ms", "--tlsca", serverCA, "--tlscert", clientCert, "--tlskey", clientKey, "status", nuonuoSeller, "X-1")
	if code != exitTrouble || !strings.Contains(errOut, "no consumer answered") {
		t.Fatalf("with the TLS flags: exit %d\n%s", code, errOut)
	}
	t.Setenv("NATS_CA", serverCA)
	t.Setenv("NATS_CERT", clientCert)
	t.Setenv("NATS_KEY", clientKey)
	if _, errOut, code := runCLI(t, "", "--server", url, "--timeout", "500ms", "status", nuonuoSeller, "X-1"); code != exitTrouble || !strings.Contains(errOut, "no consumer answered") {
		t.Fatalf("with NATS_CA, NATS_CERT, NATS_KEY: exit %d\n%s", code, errOut)
	}
	// Without a client certificate the server refuses the connection.
	if _, errOut, code := runCLI(t, "", "--server", url, "--timeout", "500ms", "--tlscert", "", "--tlskey", "", "status", nuonuoSeller, "X-1"); code != exitTrouble || !strings.Contains(errOut, "cannot reach NATS at "+url+" over TLS: ") || !strings.Contains(errOut, "(TLS failed: ") {
		t.Fatalf("without a client certificate: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "--server", url, "--tlskey", "", "status", nuonuoSeller, "X-1"); code != exitUsage || !strings.Contains(errOut, "--tlscert and --tlskey") {
		t.Fatalf("a certificate without its key: exit %d\n%s", code, errOut)
	}
}

// TestPubErrorOfALostAcknowledgement: a publish whose acknowledgement did not
// come (a timeout, Ctrl-C) says that the message may be stored all the same
// and how to finish safely, rather than only that it failed.
func TestPubErrorOfALostAcknowledgement(t *testing.T) {
	s := &session{g: &globals{timeout: time.Second}}
	for _, err := range []error{context.DeadlineExceeded, context.Canceled, nats.ErrTimeout} {
		if got := s.pubError(err).Error(); !strings.Contains(got, "may still have been stored") || !strings.Contains(got, "duplicate window") {
			t.Errorf("%v: %s", err, got)
		}
	}
}

// TestNATSContext: --context (or NATS_CONTEXT) connects as a nats CLI context
// says: here a context file whose user may read only its own inbox prefix,
// so a status request answers only if the context's inbox prefix is used.
func TestNATSContext(t *testing.T) {
	c := startConsumer(t, consumerOptions{pipeline: fast})
	ctxFile := filepath.Join(t.TempDir(), "invoicer.json")
	body := fmt.Sprintf(`{"url": %q, "user": %q, "password": %q, "inbox_prefix": %q}`, c.url, inboxUser, inboxPassword, inboxPrefix)
	if err := os.WriteFile(ctxFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "--context", ctxFile, "--timeout", "2s", "status", nuonuoSeller, "NO-SUCH")
	if code != exitFailed || !strings.Contains(errOut, "unknown to the consumer") {
		t.Fatalf("status through the context: exit %d\n%s%s", code, out, errOut)
	}
	// A relative path is a file too, not a context name.
	rel, err := filepath.Rel(mustGetwd(t), ctxFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, "", "--context", rel, "--timeout", "2s", "status", nuonuoSeller, "NO-SUCH"); code != exitFailed || !strings.Contains(errOut, "unknown to the consumer") {
		t.Fatalf("status through the context at %s: exit %d\n%s%s", rel, code, out, errOut)
	}
	t.Setenv("NATS_CONTEXT", ctxFile)
	if out, errOut, code := runCLI(t, "", "--timeout", "2s", "dlq", "list"); code != exitOK || !strings.Contains(errOut, "on "+c.url) {
		t.Fatalf("dlq list through NATS_CONTEXT: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("NATS_CONTEXT", filepath.Join(t.TempDir(), "missing.json"))
	if _, errOut, code := runCLI(t, "", "status", nuonuoSeller, "X-1"); code != exitTrouble || !strings.Contains(errOut, "nats context") {
		t.Fatalf("a missing context: exit %d\n%s", code, errOut)
	}
}

// TestExplicitServerOverridesTheContext: as in the nats CLI, a server given
// with --server, or by NATS_URL (--server's default), is connected to
// instead of the context's, with the context's other settings: here its
// user, whose replies come only under the context's inbox prefix. Without
// either, the context's server is used, not --server's default.
func TestExplicitServerOverridesTheContext(t *testing.T) {
	c := startConsumer(t, consumerOptions{pipeline: fast})
	elsewhere := unreachableURL(t)
	ctxFile := filepath.Join(t.TempDir(), "elsewhere.json")
	body := fmt.Sprintf(`{"url": %q, "user": %q, "password": %q, "inbox_prefix": %q}`, elsewhere, inboxUser, inboxPassword, inboxPrefix)
	if err := os.WriteFile(ctxFile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATS_URL", "")
	if out, errOut, code := runCLI(t, "", "--context", ctxFile, "--server", c.url, "--timeout", "2s", "status", nuonuoSeller, "NO-SUCH"); code != exitFailed || !strings.Contains(errOut, "unknown to the consumer") {
		t.Errorf("--server over the context's server: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("NATS_URL", c.url)
	if out, errOut, code := runCLI(t, "", "--context", ctxFile, "--timeout", "2s", "status", nuonuoSeller, "NO-SUCH"); code != exitFailed || !strings.Contains(errOut, "unknown to the consumer") {
		t.Errorf("NATS_URL over the context's server: exit %d\n%s%s", code, out, errOut)
	}
	// --server over NATS_URL too: the context's server, named here, is
	// not reached.
	if out, errOut, code := runCLI(t, "", "--context", ctxFile, "--server", elsewhere, "--timeout", "1s", "status", nuonuoSeller, "NO-SUCH"); code != exitTrouble || !strings.Contains(errOut, elsewhere) {
		t.Errorf("--server over NATS_URL and the context: exit %d, want %d naming %s\n%s%s", code, exitTrouble, elsewhere, out, errOut)
	}
	// Neither: the context's server.
	t.Setenv("NATS_URL", "")
	if out, errOut, code := runCLI(t, "", "--context", ctxFile, "--timeout", "1s", "status", nuonuoSeller, "NO-SUCH"); code != exitTrouble || !strings.Contains(errOut, "nats context") {
		t.Errorf("the context's own server: exit %d, want %d\n%s%s", code, exitTrouble, out, errOut)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestErrorsNameTheServerConnectedTo: with --context, an error names the
// server connected to: the context's, not --server's default, and
// NATS_URL's when it is set (it is used over the context's, as in the
// nats CLI); one after the connection closed names the server it was
// connected to.
func TestErrorsNameTheServerConnectedTo(t *testing.T) {
	// Servers with JetStream but without the invoice streams.
	ns := runServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	other := runServer(t, &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	ctxFile := filepath.Join(t.TempDir(), "prod.json")
	if err := os.WriteFile(ctxFile, []byte(fmt.Sprintf(`{"url": %q}`, ns.ClientURL())), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATS_URL", "")
	_, errOut, code := runCLI(t, "", "--context", ctxFile, "--timeout", "2s", "dlq", "list")
	if code != exitTrouble || !strings.Contains(errOut, "no stream on NATS at "+ns.ClientURL()) || strings.Contains(errOut, "at "+nats.DefaultURL+":") {
		t.Errorf("exit %d; the error should name the context's server %s, not --server's default %s:\n%s", code, ns.ClientURL(), nats.DefaultURL, errOut)
	}
	t.Setenv("NATS_URL", other.ClientURL())
	_, errOut, code = runCLI(t, "", "--context", ctxFile, "--timeout", "2s", "dlq", "list")
	if code != exitTrouble || !strings.Contains(errOut, "no stream on NATS at "+other.ClientURL()) || strings.Contains(errOut, ns.ClientURL()) {
		t.Errorf("exit %d; the error should name NATS_URL's server %s, not the context's %s:\n%s", code, other.ClientURL(), ns.ClientURL(), errOut)
	}

	g := &globals{server: ns.ClientURL(), prefix: schemas.DefaultPrefix, timeout: time.Second}
	s, err := g.connect()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if msg := s.jsError(nats.ErrConnectionClosed, "read").Error(); !strings.Contains(msg, "lost the connection to NATS at "+ns.ClientURL()+":") {
		t.Errorf("after the connection closed: %s", msg)
	}
}

// TestATokenInTheURLStaysOutOfErrors: a server URL with a token
// (nats://TOKEN@host) is named in errors as nats://xxxxx@host, as one with
// a password is. nats.go's ConnectedUrlRedacted hides a password only.
func TestATokenInTheURLStaysOutOfErrors(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-token-value"
	ns := runServer(t, &server.Options{
		ServerName: "token-test", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js"), NoSigs: true, NoLog: true,
		Authorization: token,
	})
	u := strings.Replace(ns.ClientURL(), "nats://", "nats://"+token+"@", 1)
	named := strings.Replace(ns.ClientURL(), "nats://", "nats://xxxxx@", 1)
	// No invoice streams on this server: the errors name it.
	f := writeFile(t, "t.json", issueRequest(t, nuonuoSeller, "TOK-1"))
	for _, args := range [][]string{{"publish", f}, {"dlq", "show", "1"}} {
		_, errOut, code := runCLI(t, "", append([]string{"--server", u, "--timeout", "1s"}, args...)...)
		if code != exitTrouble || strings.Contains(errOut, token) || !strings.Contains(errOut, "no stream on NATS at "+named+":") {
			t.Errorf("%v: exit %d, want %d and the server named %s:\n%s", args, code, exitTrouble, named, errOut)
		}
	}
	// The connection closed: the server first connected to.
	g := &globals{server: u, prefix: schemas.DefaultPrefix, timeout: time.Second}
	s, err := g.connect()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if msg := s.jsError(nats.ErrConnectionClosed, "read").Error(); strings.Contains(msg, token) || !strings.Contains(msg, "lost the connection to NATS at "+named+":") {
		t.Errorf("after the connection closed: %s", msg)
	}
}

// TestConnectErrorHints: a connection that fails for its credentials file
// or for TLS says so, rather than asking whether the consumer is running.
func TestConnectErrorHints(t *testing.T) {
	env := MustNATS(t)
	dir := t.TempDir()
	badCreds := filepath.Join(dir, "bad.creds")
	if err := os.WriteFile(badCreds, []byte("not a credentials file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serverCA, serverCert, serverKey := testCA(t, dir, "server", x509.ExtKeyUsageServerAuth)
	otherCA, _, _ := testCA(t, dir, "other", x509.ExtKeyUsageServerAuth)
	tlsURL := startTLSServer(t, &server.TLSConfigOpts{CertFile: serverCert, KeyFile: serverKey})
	ctxFile := filepath.Join(dir, "bad-creds.json")
	if err := os.WriteFile(ctxFile, []byte(fmt.Sprintf(`{"url": %q, "creds": %q}`, env.url, badCreds)), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		credsHint = "the credentials file is not usable"
		tlsHint   = "TLS failed: --tlsca or NATS_CA"
	)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"a file that is not credentials", []string{"--server", env.url, "--creds", badCreds}, "cannot log in to NATS at " + env.url + ": "},
		{"a context's credentials", []string{"--context", ctxFile}, credsHint},
		{"the server's certificate of another CA", []string{"--server", tlsURL, "--tlsca", otherCA}, "cannot reach NATS at " + tlsURL + " over TLS: "},
		{"no CA for the server's certificate", []string{"--server", "nats://" + strings.TrimPrefix(tlsURL, "tls://")}, "x509: certificate signed by unknown authority (" + tlsHint},
		{"TLS to a server without it", []string{"--server", "tls://" + env.ns.Addr().String()}, "secure connection not available (" + tlsHint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runCLI(t, "", append(tc.args, "--timeout", "2s", "status", nuonuoSeller, "X-1")...)
			if code != exitTrouble || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "is the consumer running") {
				t.Errorf("exit %d, want %d and %q:\n%s", code, exitTrouble, tc.want, errOut)
			}
		})
	}
	// Connected over TLS with the right CA: no hint, the status service is
	// simply not there.
	if _, errOut, code := runCLI(t, "", "--server", tlsURL, "--tlsca", serverCA, "--timeout", "500ms", "status", nuonuoSeller, "X-1"); code != exitTrouble || !strings.Contains(errOut, "no consumer answered") {
		t.Errorf("the right CA: exit %d\n%s", code, errOut)
	}
}

// startTLSServer starts a NATS server on loopback that speaks TLS with
// opts (client certificates required when opts.Verify), and returns its
// tls:// URL.
func startTLSServer(t *testing.T, opts *server.TLSConfigOpts) string {
	t.Helper()
	tc, err := server.GenTLSConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	tc.MinVersion = tls.VersionTLS12
	ns := runServer(t, &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, TLS: true, TLSVerify: opts.Verify, TLSConfig: tc, TLSTimeout: 2})
	return "tls://" + ns.Addr().String()
}

// runServer starts a NATS server with opts, stopped when the test ends,
// and waits until it takes connections.
func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return ns
}

// TestUnreadableCredentialsFile: a --creds (NATS_CREDS) path that exists but
// cannot be read, here a directory, is an error naming the file and the
// flag, not a server that cannot be reached.
func TestUnreadableCredentialsFile(t *testing.T) {
	env := MustNATS(t)
	dir := t.TempDir()
	for _, args := range [][]string{{"--creds", dir}, {}} {
		if len(args) == 0 {
			t.Setenv("NATS_CREDS", dir)
		}
		_, errOut, code := runCLI(t, "", append(args, "--server", env.url, "--timeout", "2s", "status", nuonuoSeller, "X-1")...)
		if code != exitTrouble || !strings.Contains(errOut, "credentials file (--creds, NATS_CREDS)") || !strings.Contains(errOut, dir) || strings.Contains(errOut, "is the consumer running") {
			t.Errorf("%v: exit %d, want %d and the credentials file named:\n%s", args, code, exitTrouble, errOut)
		}
	}
}
