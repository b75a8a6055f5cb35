package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"
	"github.com/synadia-io/orbit.go/natscontext"

	"github.com/fapiaohub/invoicer/cmd/internal/scrub"
	"github.com/fapiaohub/invoicer/schemas"
)

// globals are the connection flags every subcommand that talks to NATS
// shares. Their defaults come from the environment, as in the nats CLI.
type globals struct {
	server      string
	creds       string
	tlsCert     string // client certificate, with tlsKey
	tlsKey      string
	tlsCA       string // CA to verify the server with
	natsContext string // a nats CLI context: its name, or the path of its JSON file
	flags       *pflag.FlagSet
	inboxPrefix string // "": nats.go's _INBOX
	prefix      string
	timeout     time.Duration
}

// defaultTimeout bounds connecting, acknowledgements and requests.
const defaultTimeout = 5 * time.Second

func (g *globals) register(fs *pflag.FlagSet) {
	g.flags = fs
	fs.StringVar(&g.natsContext, "context", os.Getenv("NATS_CONTEXT"), "connect as the nats CLI context of this `name` says (a name that nats context ls lists, or the path of its JSON file): its server, credentials, TLS and inbox prefix; as in the nats CLI, --server or NATS_URL, --creds, --tls* and --inbox-prefix apply over it (NATS_CONTEXT)")
	fs.StringVarP(&g.server, "server", "s", envOr("NATS_URL", nats.DefaultURL), "NATS server URL(s), comma separated; given, or set in NATS_URL, used over a --context's server, as in the nats CLI (NATS_URL)")
	// The help prints the default, NATS_URL's value: without its password
	// or token, as errors name it.
	fs.Lookup("server").DefValue = redactURLs(g.server)
	fs.StringVar(&g.creds, "creds", os.Getenv("NATS_CREDS"), "NATS user credentials file (NATS_CREDS)")
	fs.StringVar(&g.tlsCert, "tlscert", os.Getenv("NATS_CERT"), "TLS client certificate file, with --tlskey (NATS_CERT)")
	fs.StringVar(&g.tlsKey, "tlskey", os.Getenv("NATS_KEY"), "TLS client key file (NATS_KEY)")
	fs.StringVar(&g.tlsCA, "tlsca", os.Getenv("NATS_CA"), "CA certificate file to verify the NATS server with (NATS_CA)")
	fs.StringVar(&g.inboxPrefix, "inbox-prefix", os.Getenv("INVOICE_INBOX_PREFIX"), `first token(s) of this client's reply subjects, the one its NATS user may read (e.g. _INBOX_orders); "" is nats.go's _INBOX (INVOICE_INBOX_PREFIX)`)
	fs.StringVar(&g.prefix, "prefix", envOr("INVOICE_PREFIX", schemas.DefaultPrefix), "first token(s) of every subject, as the consumer's --prefix (INVOICE_PREFIX)")
	fs.DurationVar(&g.timeout, "timeout", defaultTimeout, "how long to wait for NATS: connecting, each acknowledgement, the status service, publish --wait")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// subjects returns the subjects under the --prefix.
func (g *globals) subjects() schemas.Subjects { return schemas.Subjects{Prefix: g.prefix} }

// check validates the global flags; it is called before connecting.
func (g *globals) check() error {
	if g.timeout <= 0 {
		return usageError("--timeout must be positive, not %s", g.timeout)
	}
	if g.prefix == "" {
		return usageError("--prefix must not be empty")
	}
	if !schemas.ValidSubjectPrefix(g.prefix) {
		return usageError("--prefix %q is not a subject prefix: tokens separated by dots, without wildcards or spaces", g.prefix)
	}
	if g.inboxPrefix != "" && !schemas.ValidSubjectPrefix(g.inboxPrefix) {
		return usageError("--inbox-prefix %q is not a subject prefix: tokens separated by dots, without wildcards or spaces, such as _INBOX_orders", g.inboxPrefix)
	}
	if (g.tlsCert == "") != (g.tlsKey == "") {
		return usageError("--tlscert and --tlskey (NATS_CERT, NATS_KEY) go together")
	}
	return nil
}

// explicitServer is the server list given with --server or, without it, by
// NATS_URL; "" when neither gives one (--server's default is then
// nats.DefaultURL, which is no one's choice). The nats CLI connects to it
// instead of a context's server: its --server flag, which NATS_URL sets
// and which has no default, overrides the context's URL (natscli passes it
// to jsm.go's natscontext.WithServerURL over the context it loads).
func (g *globals) explicitServer() string {
	if (g.flags != nil && g.flags.Changed("server")) || os.Getenv("NATS_URL") != "" {
		return g.server
	}
	return ""
}

// servers is the nats.Option that connects to the comma-separated server
// list instead of the URL given to nats.Connect (which, with a context, is
// natscontext's, the context's URL): nats.Connect sets the servers from its
// URL before it applies the options, and nats.go has no option of its own
// for them.
func servers(list string) nats.Option {
	return func(o *nats.Options) error {
		o.Url, o.Servers = "", nil
		for _, u := range strings.Split(list, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.Servers = append(o.Servers, u)
			}
		}
		return nil
	}
}

// session is a connection to NATS with its JetStream context.
type session struct {
	g        *globals
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects schemas.Subjects
	// connectedTo is the server first connected to, without a password or
	// token: where() while the connection is down.
	connectedTo string
	// refusals keeps the permissions violations the server reported.
	refusals *refusals
}

// refusals records the permissions violations that the server reported on
// a connection: nats.go reports them asynchronously, and the request that
// was refused (or whose reply subscription was) just times out.
//
// A refused publish concerns the one message: it explains the next
// operation that gets no answer, and is cleared once reported, so that a
// later timeout of another operation is not taken for it. A refused
// subscription stays in force for the connection (nats.go does not
// subscribe again, and every reply subscription of the publisher is under
// the same --inbox-prefix), so it explains every later timeout.
type refusals struct {
	mu           sync.Mutex
	publish      error // the last refused publish not yet reported
	subscription error // the last refused subscription
}

// handle is the connection's asynchronous error handler: it records a
// permissions violation and, as nats.go's default handler does, prints
// every error on standard error.
func (r *refusals) handle(nc *nats.Conn, sub *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		r.mu.Lock()
		if m := violationSubject.FindStringSubmatch(err.Error()); m != nil && m[1] == "Subscription" {
			r.subscription = err
		} else {
			r.publish = err
		}
		r.mu.Unlock()
	}
	if sub != nil {
		fmt.Fprintf(os.Stderr, "%v (subscription on %q)\n", err, sub.Subject)
		return
	}
	fmt.Fprintln(os.Stderr, err)
}

// take returns the violation that explains an operation without an
// answer, nil if none: a refused publish not reported yet (which it
// clears), else a refused subscription.
func (r *refusals) take() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.publish; v != nil {
		r.publish = nil
		return v
	}
	return r.subscription
}

// violationSubject finds what a permissions violation refused in its text,
// as the server words it: Permissions Violation for Publish to "SUBJECT",
// or for Subscription to "SUBJECT".
var violationSubject = regexp.MustCompile(`for (Publish|Subscription) to "([^"]*)"`)

// refused returns an error saying what the server refused this session,
// naming the subject and the user, for op that got no answer; nil when the
// server refused nothing that explains it (see refusals).
func (s *session) refused(op string) error {
	if s.refusals == nil {
		return nil
	}
	v := s.refusals.take()
	if v == nil {
		return nil
	}
	what := v.Error()
	if m := violationSubject.FindStringSubmatch(what); m != nil {
		what = strings.ToLower(m[1]) + " to " + strconv.Quote(m[2])
	}
	return &exitError{code: exitTrouble, err: fmt.Errorf(
		"%s: permission denied for %s (user %s) on NATS at %s, so no answer came: each role's permissions are in deploy/accounts.conf, and a role takes its replies under its own --inbox-prefix",
		op, what, s.user(), s.where())}
}

// user names the NATS user of the session for a message, never a secret:
// the user name given with a password (options or URL), or which
// credentials.
func (s *session) user() string {
	if s.nc.Opts.User != "" {
		return s.nc.Opts.User
	}
	if u, err := url.Parse(s.nc.ConnectedUrl()); err == nil && u.User != nil {
		if _, has := u.User.Password(); has { // without a password, the name is a token
			return u.User.Username()
		}
	}
	switch {
	case s.g.creds != "":
		return "of " + filepath.Base(s.g.creds)
	case s.nc.Opts.UserJWT != nil:
		return "of the context's credentials"
	}
	return "unnamed"
}

// connect opens a session; every connection the publisher makes (bench's
// relay connection too) is opened here, so all take their replies under
// --inbox-prefix. Its errors are exitErrors with exitTrouble (or
// exitUsage for bad flags) and say where it tried to connect, without the
// password of a URL.
func (g *globals) connect(extra ...nats.Option) (*session, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	refused := &refusals{}
	opts := []nats.Option{
		nats.Name("invoice-publisher"),
		nats.Timeout(g.timeout),
		nats.MaxReconnects(5),
		nats.ErrorHandler(refused.handle),
	}
	opts = append(opts, extra...) // later options override earlier ones
	if g.creds != "" {
		// Read it here, not only stat it: nats.go reads it while
		// connecting, and a file that exists but cannot be read (a
		// directory, one without read permission) would fail there as a
		// server that cannot be reached.
		if _, err := os.ReadFile(g.creds); err != nil {
			return nil, &exitError{code: exitTrouble, err: fmt.Errorf("credentials file (--creds, NATS_CREDS): %w", err)}
		}
		opts = append(opts, nats.UserCredentials(g.creds))
	}
	if g.inboxPrefix != "" {
		// JetStream API answers, PubAcks, pulled messages, key-value reads
		// and status replies all arrive under it.
		opts = append(opts, nats.CustomInboxPrefix(g.inboxPrefix))
	}
	if g.tlsCert != "" {
		opts = append(opts, nats.ClientCert(g.tlsCert, g.tlsKey))
	}
	if g.tlsCA != "" {
		opts = append(opts, nats.RootCAs(g.tlsCA))
	}
	var (
		nc       *nats.Conn
		err      error
		jsDomain string
	)
	if g.natsContext != "" {
		// The context's server, credentials, TLS and inbox prefix, with
		// the options above applied over them, and the server given with
		// --server or by NATS_URL over the context's, as the nats CLI
		// does.
		what, server := "nats context "+g.natsContext, g.explicitServer()
		if server != "" {
			opts = append(opts, servers(server))
			what += " with the server " + redactURLs(server) + " (--server or NATS_URL, over the context's)"
		}
		var settings natscontext.Settings
		nc, settings, err = natscontext.Connect(contextRef(g.natsContext), opts...)
		if err != nil { // the context could not be read, or the server not reached
			msg := fmt.Sprintf("%s: %s", what, scrub.URLs(err.Error(), server, redactURLs))
			switch {
			case credentialsTrouble(err):
				msg += " (" + credentialsHint + ")"
			case tlsTrouble(err):
				msg += " (" + tlsHint + ")"
			}
			return nil, &exitError{code: exitTrouble, err: errors.New(msg)}
		}
		jsDomain = settings.JSDomain
	} else {
		nc, err = nats.Connect(g.server, opts...)
	}
	if err != nil {
		where := redactURLs(g.server)
		// nats.go's error may quote a URL as given (url.Parse quotes one
		// it cannot read whole: a mistyped port, a password that is not
		// URL-safe), password or token included.
		// The error itself still classifies below; its text is scrubbed.
		msg := scrub.URLs(err.Error(), g.server, redactURLs)
		switch {
		case errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired):
			return nil, &exitError{code: exitTrouble, err: fmt.Errorf("NATS at %s refused the connection: %s (check --creds or NATS_CREDS)", where, msg)}
		case credentialsTrouble(err):
			return nil, &exitError{code: exitTrouble, err: fmt.Errorf("cannot log in to NATS at %s: %s (%s)", where, msg, credentialsHint)}
		case tlsTrouble(err):
			return nil, &exitError{code: exitTrouble, err: fmt.Errorf("cannot reach NATS at %s over TLS: %s (%s)", where, msg, tlsHint)}
		}
		hint := "is NATS running there, and is this the server you meant? (--server, NATS_URL, --context)"
		if loopbackOnly(g.server) {
			hint = "is the consumer running? (go run ./cmd/consumer)"
		}
		return nil, &exitError{code: exitTrouble, err: fmt.Errorf("cannot reach NATS at %s: %s: %s", where, hint, msg)}
	}
	jsOpts := []jetstream.JetStreamOpt{jetstream.WithPublishAsyncTimeout(g.timeout), jetstream.WithDefaultTimeout(g.timeout)}
	var js jetstream.JetStream
	if jsDomain != "" {
		js, err = jetstream.NewWithDomain(nc, jsDomain, jsOpts...)
	} else {
		js, err = jetstream.New(nc, jsOpts...)
	}
	if err != nil {
		where := redactURLs(nc.ConnectedUrl())
		nc.Close()
		return nil, &exitError{code: exitTrouble, err: fmt.Errorf("JetStream on %s: %w", where, err)}
	}
	return &session{g: g, nc: nc, js: js, subjects: g.subjects(), connectedTo: redactURLs(nc.ConnectedUrl()), refusals: refused}, nil
}

// The hints of connect errors that are not the server's absence.
const (
	credentialsHint = "the credentials file is not usable: --creds or NATS_CREDS, or the context's creds, must name a NATS user's .creds file (nsc generate creds) or a JWT with its nkey seed"
	tlsHint         = "TLS failed: --tlsca or NATS_CA must name the CA of the server's certificate, a server that asks for a client certificate needs --tlscert and --tlskey (NATS_CERT, NATS_KEY), and the URL's scheme (tls://, nats://) must match the server's"
)

// credentialsTrouble reports whether a connect error is the credentials
// file's: nkeys could not read the user's seed from it (nats.go wraps the
// nkeys error, or base32's for a damaged seed, while signing the server's
// nonce).
func credentialsTrouble(err error) bool {
	var b32 base32.CorruptInputError
	if errors.As(err, &b32) {
		return true
	}
	for _, e := range []error{
		nkeys.ErrNoSeedFound, nkeys.ErrInvalidSeed, nkeys.ErrInvalidSeedLen, nkeys.ErrInvalidNkeySeed, nkeys.ErrInvalidUserSeed,
		nkeys.ErrInvalidEncoding, nkeys.ErrInvalidChecksum, nkeys.ErrInvalidPrefixByte, nkeys.ErrInvalidKey, nkeys.ErrInvalidPrivateKey,
		nkeys.ErrCannotSign, nkeys.ErrPublicKeyOnly,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// tlsTrouble reports whether a connect error is a TLS one: the server's
// certificate not verified, the server refusing the client's (or its
// absence: an alert, or with TLS 1.3 the connection closed after the
// handshake, nats.ErrTLS), or TLS on one side only.
func tlsTrouble(err error) bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		header  tls.RecordHeaderError
	)
	// An alert received from the server (certificate required, bad
	// certificate) is a *net.OpError whose Op crypto/tls sets to "remote
	// error", around an unexported alert type.
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		return true
	}
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) ||
		errors.As(err, &header) ||
		errors.Is(err, nats.ErrTLS) || errors.Is(err, nats.ErrSecureConnRequired) || errors.Is(err, nats.ErrSecureConnWanted)
}

// following are the connection options of a command that follows a stream
// until stopped (tail): it reconnects for as long as it runs, and says on
// errw when NATS goes away and comes back. In the default mode NATS runs in
// the consumer's process, so a restart of the consumer is such an outage.
func following(errw io.Writer, reconnected func()) []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // closed by the command itself as it ends
			}
			if err == nil {
				err = errors.New("connection closed")
			}
			fmt.Fprintf(errw, "lost NATS (%v): reconnecting until it is back\n", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			fmt.Fprintf(errw, "reconnected to NATS at %s\n", redactURLs(nc.ConnectedUrl()))
			if reconnected != nil {
				reconnected()
			}
		}),
	}
}

// Close closes the connection, flushing what was published.
func (s *session) Close() {
	if s.nc.IsConnected() { // a tail ended during an outage does not wait --timeout
		_ = s.nc.FlushTimeout(s.g.timeout)
	}
	s.nc.Close()
}

// ctx returns a context bounded by --timeout, for one NATS round trip.
func (s *session) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.g.timeout)
}

// stream finds the stream that holds subject (the consumer creates the
// streams when it starts; this tool never creates or changes them). what
// names the subjects for the error message ("requests").
func (s *session) stream(parent context.Context, subject, what string) (jetstream.Stream, error) {
	ctx, cancel := s.ctx(parent)
	defer cancel()
	name, err := s.js.StreamNameBySubject(ctx, subject)
	if err == nil {
		var st jetstream.Stream
		if st, err = s.js.Stream(ctx, name); err == nil {
			return st, nil
		}
	}
	return nil, s.jsError(err, fmt.Sprintf("find the stream of %s (%s)", what, subject))
}

// jsError turns a JetStream API error into an exitError with a hint. It
// names the server the session is connected to (with --context, the
// context's, not --server's default).
func (s *session) jsError(err error, op string) error {
	where := s.where()
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &exitError{code: exitTrouble, err: fmt.Errorf("%s: no stream on NATS at %s: the consumer creates the streams when it starts; has it run against this server with --prefix %s? (go run ./cmd/consumer)", op, where, s.g.prefix)}
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return &exitError{code: exitTrouble, err: fmt.Errorf("%s: JetStream is not enabled on NATS at %s for this account", op, where)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, nats.ErrNoResponders):
		if rerr := s.refused(op); rerr != nil {
			return rerr
		}
		return &exitError{code: exitTrouble, err: fmt.Errorf("%s: NATS at %s did not answer within %s: %v", op, where, s.g.timeout, err)}
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected):
		return &exitError{code: exitTrouble, err: fmt.Errorf("%s: lost the connection to NATS at %s: %v", op, where, err)}
	}
	return &exitError{code: exitTrouble, err: fmt.Errorf("%s: %w", op, err)}
}

// redactURLs removes passwords and tokens from a comma-separated URL list,
// so that it can appear in an error message.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		// nats.go reads a URL without a scheme ("user:pass@host:4222") as
		// a nats:// one; read it so too, or its password would pass as
		// the scheme's opaque part, or the URL fail to parse, unredacted.
		schemeless := !strings.Contains(p, "://")
		full := p
		if schemeless {
			full = "nats://" + p
		}
		u, err := url.Parse(full)
		if err != nil {
			if at := strings.LastIndex(p, "@"); at >= 0 {
				scheme := ""
				if j := strings.Index(p, "://"); j >= 0 && j < at {
					scheme = p[:j+3]
				}
				parts[i] = scheme + "xxxxx@" + p[at+1:]
			} else {
				parts[i] = p
			}
			continue
		}
		if u.User == nil {
			parts[i] = p
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else {
			u.User = url.User("xxxxx") // a token
		}
		parts[i] = u.String()
		if schemeless {
			parts[i] = strings.TrimPrefix(parts[i], "nats://")
		}
	}
	return strings.Join(parts, ",")
}

// loopbackOnly reports whether every server of a comma-separated URL list
// is on this machine, where the consumer's embedded NATS listens.
func loopbackOnly(servers string) bool {
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil {
			return false
		}
		switch h := u.Hostname(); {
		case h == "localhost":
		case net.ParseIP(h) != nil && net.ParseIP(h).IsLoopback():
		default:
			return false
		}
	}
	return true
}

// where names the server the session is connected to, without a password
// or token, so that an operator sees which NATS a listing, a replay or an
// error came from; while the connection is down, the server it was
// connected to. It uses redactURLs: nats.go's ConnectedUrlRedacted hides a
// password only, and would print the token of nats://TOKEN@host.
func (s *session) where() string {
	if u := s.nc.ConnectedUrl(); u != "" {
		return redactURLs(u)
	}
	return s.connectedTo
}

// contextRef is the reference natscontext.Connect takes for a --context
// value: a name as it is, a file path (one with a path separator or ending
// in .json) made absolute, since natscontext reads only absolute paths as
// files and would take "./prod.json" for a name.
func contextRef(v string) string {
	if strings.ContainsRune(v, filepath.Separator) || strings.HasSuffix(v, ".json") {
		if abs, err := filepath.Abs(v); err == nil {
			return abs
		}
	}
	return v
}
