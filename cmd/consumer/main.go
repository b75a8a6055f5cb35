package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// defaultGCPercent is the consumer's GOGC when the environment sets none.
const defaultGCPercent = 200

// options are the consumer's flags.
type options struct {
	dataDir      string
	configFile   string
	natsURL      string
	natsCreds    string
	inboxPrefix  string
	tlsCert      string
	tlsKey       string
	tlsCA        string
	natsListen   string
	jsSync       string
	prefix       string
	replicas     int
	partitions   int
	reconfigure  bool
	partition    int
	partitionPod bool
	workers      int
	maxDeliver   int
	redWait      time.Duration
	noClaim      bool
	ackWait      time.Duration
	httpListen   string
	// partnerAddr is --partner-http: the partner API's own listener,
	// serving it alone; "" serves it on httpListen.
	partnerAddr  string
	partnerMax   int
	pprofListen  string
	sandboxAddr  string
	sandboxDelay time.Duration
	providerTO   time.Duration
	maxBytes     int
	strictTax    bool
	shutdownTO   time.Duration
	logFormat    string
	logLevel     string
	storeBatch   int
	storeDelay   time.Duration
	storeBusy    time.Duration

	// partitionHost is the host name --partition-from-hostname took the
	// partition from, for the errors that name it; "" without it.
	partitionHost string
	// warnings are for main to log once it has a logger: the variables
	// that their flags override and would refuse.
	warnings []string
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.LookupEnv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(2)
	}
	log, err := newLogger(opts.logFormat, opts.logLevel, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(2)
	}
	for _, w := range opts.warnings {
		log.Warn().Msg(w)
	}
	// A full file system or file size limit must surface as a write error
	// (the store then pauses and reports unready), never as a signal.
	signal.Ignore(syscall.SIGXFSZ)
	// The default mode runs NATS, the sandbox and the pipeline in one heap,
	// which the garbage collector marks on every cycle: letting the heap
	// grow to three times the live heap (GOGC 200) instead of twice costs
	// some memory and buys throughput (README, Performance). GOGC and
	// GOMEMLIMIT still apply when set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx := stopOnSignal(log)
	if err := run(ctx, opts, log); err != nil {
		log.Error().Err(err).Msg("consumer stopped")
		os.Exit(1)
	}
}

// parseFlags reads the flags, with environment variables as defaults:
// NATS_URL and NATS_CREDS as in every NATS tool, INVOICE_* for the rest.
// lookupEnv is os.LookupEnv's kind. A flag given overrides its variable. A
// variable that is set but cannot be read as its flag's type is an error,
// as the same value given as the flag is, instead of falling back to the
// default, unless the flag is given too: the variable, which the start
// would not use, is then only a warning (options.warnings).
func parseFlags(args []string, lookupEnv func(string) (string, bool)) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	getenv := func(name string) string { v, _ := lookupEnv(name); return v }
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	// envOrOff is env for a setting that "" switches off: a variable set
	// to "" switches it off too.
	envOrOff := func(name, def string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return def
	}
	// The number, duration and boolean flags read their variables with
	// the flag's own Set (envFlag), before the command line, so that -h
	// shows a variable's value as its flag's default: a value is read alike
	// from both, spaces around it ignored. A variable the flag refuses is
	// kept in envErrs until the command line says whether the flag
	// overrides it.
	type envErr struct {
		flag string
		err  error
	}
	var envErrs []envErr
	envVar := func(v envValue, name, usage string) {
		if s, _ := lookupEnv(v.variable()); strings.TrimSpace(s) != "" {
			if err := v.setEnv(s); err != nil {
				envErrs = append(envErrs, envErr{name, fmt.Errorf("%s=%q (--%s): %w", v.variable(), s, name, err)})
			}
		}
		fs.Var(v, name, usage)
	}
	// Every integer flag is read in base 10, as its variable is
	// (intflag): flag.IntVar would read --workers 010 as octal 8, and the
	// systemd unit's --partition %i of an instance @010 would consume
	// partition 8, beside the instance of partition 8, and leave 10's
	// sellers to nobody. Its usage names the value a `number`, and a
	// duration's a `duration`, which -h shows instead of flag's "value"
	// for a type of our own.
	intVar := func(p *int, name, variable string, def int, usage string) {
		envVar(intValue(p, def, variable), name, usage)
	}
	durVar := func(p *time.Duration, name, variable string, def time.Duration, usage string) {
		envVar(durationValue(p, def, variable), name, usage)
	}
	boolVar := func(p *bool, name, variable, usage string) {
		envVar(boolValue(p, variable), name, usage)
	}
	fs.StringVar(&o.dataDir, "data", env("INVOICE_DATA", "./data"), "directory of the order store and the embedded JetStream store (INVOICE_DATA); one consumer per directory")
	fs.StringVar(&o.configFile, "config", env("INVOICE_CONFIG", ""), "YAML file mapping sellers to providers and credentials (INVOICE_CONFIG); without it the in-process sandbox serves demo sellers")
	// NATS_URL is applied after parsing, not as the flag's default: a URL
	// may carry a password, and the usage text prints defaults.
	fs.StringVar(&o.natsURL, "nats-url", "", "external NATS server(s) to use instead of the embedded one (NATS_URL)")
	fs.StringVar(&o.natsCreds, "creds", env("NATS_CREDS", ""), "NATS credentials file for --nats-url (NATS_CREDS)")
	fs.StringVar(&o.inboxPrefix, "inbox-prefix", env("INVOICE_INBOX_PREFIX", ""), `first token(s) of this client's reply subjects, e.g. _INBOX_invoicer, so that the NATS server can let each user read only its own replies; "" is nats.go's _INBOX (INVOICE_INBOX_PREFIX)`)
	fs.StringVar(&o.tlsCert, "tls-cert", env("INVOICE_TLS_CERT", ""), "client certificate for --nats-url (INVOICE_TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", env("INVOICE_TLS_KEY", ""), "client key for --nats-url (INVOICE_TLS_KEY)")
	fs.StringVar(&o.tlsCA, "tls-ca", env("INVOICE_TLS_CA", ""), "CA certificate to verify the NATS server (INVOICE_TLS_CA)")
	fs.StringVar(&o.natsListen, "nats-listen", env("INVOICE_NATS_LISTEN", "127.0.0.1:4222"), "where the embedded NATS server listens (INVOICE_NATS_LISTEN)")
	fs.StringVar(&o.jsSync, "js-sync", env("INVOICE_JS_SYNC", "always"), `embedded JetStream fsync: "always" or an interval such as 100ms (INVOICE_JS_SYNC)`)
	fs.StringVar(&o.prefix, "prefix", env("INVOICE_PREFIX", schemas.DefaultPrefix), "first token of every subject (INVOICE_PREFIX)")
	intVar(&o.replicas, "replicas", "INVOICE_REPLICAS", 1, "the `number` of stream replicas on a JetStream cluster (INVOICE_REPLICAS)")
	intVar(&o.partitions, "partitions", "INVOICE_PARTITIONS", 0, "split requests by seller into this `number` of partitions, one consumer instance each (INVOICE_PARTITIONS)")
	intVar(&o.partition, "partition", "INVOICE_PARTITION", 0, "the partition this instance consumes, a `number` 0..partitions-1 in base 10 (INVOICE_PARTITION)")
	boolVar(&o.reconfigure, "reconfigure-streams", "INVOICE_RECONFIGURE_STREAMS", "let this start change the partition count, the replica count or the subjects (--prefix) of streams that exist already; without it such a start is refused (INVOICE_RECONFIGURE_STREAMS=true)")
	boolVar(&o.partitionPod, "partition-from-hostname", "INVOICE_PARTITION_FROM_HOSTNAME", "take --partition from the number ending the host name, as a Kubernetes StatefulSet pod invoicer-2 has partition 2; not with --partition (INVOICE_PARTITION) (INVOICE_PARTITION_FROM_HOSTNAME=true)")
	intVar(&o.workers, "workers", "INVOICE_WORKERS", pipeline.DefaultWorkers, "the `number` of requests processed at once (INVOICE_WORKERS)")
	boolVar(&o.noClaim, "jumdata-no-claim", "INVOICE_JUMDATA_NO_CLAIM", "submit new jumdata orders without a durable claim first, relying on jumdata's 8-hour taskId: lower latency; needs --nats-url; a crash's unrecorded submissions are recorded at the next start; see the README for what it costs (INVOICE_JUMDATA_NO_CLAIM=true)")
	intVar(&o.maxDeliver, "max-deliver", "INVOICE_MAX_DELIVER", pipeline.DefaultMaxDeliver, "the `number` of deliveries before a waiting request is failed and dead-lettered; at least 2 (INVOICE_MAX_DELIVER)")
	durVar(&o.redWait, "red-confirm-wait", "INVOICE_RED_CONFIRM_WAIT", pipeline.DefaultRedConfirmWait, "the `duration` for which a red confirmation form the provider accepted is polled while the other party has to confirm it; its polls do not count against --max-deliver (INVOICE_RED_CONFIRM_WAIT)")
	durVar(&o.ackWait, "ack-wait", "INVOICE_ACK_WAIT", pipeline.DefaultAckWait, "JetStream ack wait of the request consumer, a `duration` such as 30s (INVOICE_ACK_WAIT)")
	fs.StringVar(&o.httpListen, "http", envOrOff("INVOICE_HTTP", "127.0.0.1:8080"), `health, metrics and (without --partner-http) partner API address; "" disables it, as INVOICE_HTTP set to "" does (INVOICE_HTTP)`)
	fs.StringVar(&o.partnerAddr, "partner-http", env("INVOICE_PARTNER_HTTP", ""), `serve the partner API (/partner/queryInvoice) on this address of its own, and nothing else there, instead of on --http: for partners who reach the consumer from outside; off when "". Refused when it would take --http's port: the same address however spelt (localhost is 127.0.0.1), or either on a wildcard host (:8080, 0.0.0.0:8080, [::]:8080) (INVOICE_PARTNER_HTTP)`)
	intVar(&o.partnerMax, "partner-max-queries", "INVOICE_PARTNER_MAX_QUERIES", 32, "the `number` of partner API queries answered at once; more wait up to 1 s, then get 1007 (HTTP 429); 0 means no bound (INVOICE_PARTNER_MAX_QUERIES)")
	fs.StringVar(&o.pprofListen, "pprof", env("INVOICE_PPROF", ""), `serve Go's /debug/pprof profiles on this address, e.g. 127.0.0.1:6060; off when "" (INVOICE_PPROF)`)
	fs.StringVar(&o.sandboxAddr, "sandbox-listen", env("INVOICE_SANDBOX_LISTEN", "127.0.0.1:0"), "where the in-process provider sandbox listens when there is no --config (INVOICE_SANDBOX_LISTEN)")
	durVar(&o.sandboxDelay, "sandbox-latency", "INVOICE_SANDBOX_LATENCY", 0, "the latency, a `duration`, that the in-process sandbox adds to every provider call (INVOICE_SANDBOX_LATENCY)")
	durVar(&o.providerTO, "provider-timeout", "INVOICE_PROVIDER_TIMEOUT", 15*time.Second, "timeout of one provider HTTP call, a `duration` more than 0 (INVOICE_PROVIDER_TIMEOUT)")
	intVar(&o.maxBytes, "max-request-bytes", "INVOICE_MAX_REQUEST_BYTES", schemas.DefaultMaxBytes, "largest request accepted, a `number` of bytes more than 0; larger ones are dead-lettered as malformed (INVOICE_MAX_REQUEST_BYTES)")
	boolVar(&o.strictTax, "strict-tax-numbers", "INVOICE_STRICT_TAX_NUMBERS", "reject 18-character tax numbers whose check character is wrong instead of warning (INVOICE_STRICT_TAX_NUMBERS=true)")
	durVar(&o.shutdownTO, "shutdown-timeout", "INVOICE_SHUTDOWN_TIMEOUT", 30*time.Second, fmt.Sprintf("the `duration` SIGINT/SIGTERM waits for in-flight requests, which are then abandoned; the consumer exits %v after it at the latest, whatever is left; more than 0 (INVOICE_SHUTDOWN_TIMEOUT)", shutdownMargin))
	fs.StringVar(&o.logFormat, "log-format", env("INVOICE_LOG_FORMAT", "auto"), `log format: auto (console on a terminal, JSON otherwise), console or json (INVOICE_LOG_FORMAT)`)
	fs.StringVar(&o.logLevel, "log-level", env("INVOICE_LOG_LEVEL", "info"), "log level: debug, info, warn, error (INVOICE_LOG_LEVEL)")
	intVar(&o.storeBatch, "store-batch", "INVOICE_STORE_BATCH", 0, "the most order-store writes committed together, a `number` (one commit, its two fdatasyncs); 0 means the store's default (INVOICE_STORE_BATCH)")
	durVar(&o.storeDelay, "store-batch-delay", "INVOICE_STORE_BATCH_DELAY", 0, "the `duration` the order store waits to fill every commit; 0 leaves it to --store-busy-delay (INVOICE_STORE_BATCH_DELAY)")
	durVar(&o.storeBusy, "store-busy-delay", "INVOICE_STORE_BUSY_DELAY", store.DefaultBusyBatchDelay, "the `duration` the order store waits to fill a commit while writes keep arriving together, trading that much latency per write under load for fewer fsyncs; 0 never waits (INVOICE_STORE_BUSY_DELAY)")
	if err := fs.Parse(args); err != nil {
		return nil, err // -h shows the help whatever the environment holds
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	// A flag given overrides its variable, as it overrides one that reads:
	// the start does not use the variable, and refusing it would stop the
	// instance given the flag to get round a shared environment file's
	// mistake. It is not silent either: the other instances, which read
	// it, will not start.
	var errs []error
	for _, e := range envErrs {
		if given[e.flag] {
			o.warnings = append(o.warnings, fmt.Sprintf("%v: not used, --%s overrides it; correct or remove it, as an instance started without the flag refuses it", e.err, e.flag))
		} else {
			errs = append(errs, e.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// A string flag is taken as given, but for those whose value is one
	// of a few words (or, for --js-sync, a duration), which no space can
	// belong to: their spaces are ignored, as a number's, a duration's and
	// a boolean's are, so that a ConfigMap's "json " is json and not a
	// format refused. A free-text value, a path (--data, --config, the TLS
	// files), an address (--http, --nats-listen, ...), a URL or a subject
	// prefix, is taken as written: a space may belong to a path, and
	// trimming would make a value other than the one given; a stray space
	// in an address or a prefix makes its listen, connection or check
	// fail, naming the value.
	o.jsSync = strings.TrimSpace(o.jsSync)
	o.logFormat = strings.TrimSpace(o.logFormat)
	o.logLevel = strings.TrimSpace(o.logLevel)
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (the consumer takes flags only)", fs.Args())
	}
	if !given["nats-url"] {
		o.natsURL = getenv("NATS_URL")
	}
	if o.partitionPod {
		// Two sources of one number: whichever won, the operator meant
		// the other one somewhere (a StatefulSet's manifest that also sets
		// INVOICE_PARTITION, a unit's --partition %i with the variable in
		// the shared environment file), so the start names both instead.
		if given["partition"] || strings.TrimSpace(getenv("INVOICE_PARTITION")) != "" {
			return nil, errors.New("--partition (INVOICE_PARTITION) and --partition-from-hostname (INVOICE_PARTITION_FROM_HOSTNAME) both give the partition: set one of them, not both")
		}
		host := getenv("HOSTNAME")
		if host == "" {
			host, _ = os.Hostname()
		}
		k, err := ordinalOf(host)
		if err != nil {
			return nil, fmt.Errorf("--partition-from-hostname (INVOICE_PARTITION_FROM_HOSTNAME): %w: it takes the partition from a StatefulSet pod's host name, <name>-<ordinal> (invoicer-2 consumes partition 2); elsewhere, give the partition with --partition (INVOICE_PARTITION) instead", err)
		}
		o.partition = k
		o.partitionHost = host
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// listenCheckTimeout bounds the name resolution of listenersCollide, which
// runs before the consumer has logged anything: a DNS server that does not
// answer would otherwise hold the start, silent, for the resolver's own
// timeouts (/etc/resolv.conf's, 5 s times 2 attempts by default, for each
// name and each search domain: over a minute in a pod with Kubernetes'
// search domains). A healthy DNS answers well within it; past it the check
// gives up, and the listens, which resolve the names again, name the
// address they cannot listen on.
const listenCheckTimeout = 2 * time.Second

// listenersCollide says why listeners on the addresses a and b could not
// both listen, or returns "" when they can (or either is "", off). Port 0
// is no port: the system picks two. On one port they collide when their
// hosts overlap: a wildcard host ("", 0.0.0.0, ::) overlaps every host, as
// Go listens on it for IPv4 and IPv6 alike, and a name stands for the
// address Go listens on for it (localhost: 127.0.0.1), so that only two
// distinct specific addresses share a port. A port or host that does not
// resolve, or not within listenCheckTimeout, is left to the listen, which
// names it, unless a and b are one spelling.
func listenersCollide(a, b string) string {
	if a == "" || b == "" {
		return ""
	}
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if a == b {
		if errA == nil && pa == "0" {
			return ""
		}
		return "are one address"
	}
	if errA != nil || errB != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenCheckTimeout)
	defer cancel()
	na, errA := net.DefaultResolver.LookupPort(ctx, "tcp", pa)
	nb, errB := net.DefaultResolver.LookupPort(ctx, "tcp", pb)
	if errA != nil || errB != nil || na == 0 || na != nb {
		return ""
	}
	for _, h := range []struct{ addr, host string }{{a, ha}, {b, hb}} {
		if h.host == "" || net.ParseIP(h.host).IsUnspecified() {
			return fmt.Sprintf("would both listen on port %d, which %q takes on every address", na, h.addr)
		}
	}
	ipA, errA := listenIP(ctx, ha)
	ipB, errB := listenIP(ctx, hb)
	if errA != nil || errB != nil || ipA != ipB {
		return ""
	}
	return "would both listen on " + netip.AddrPortFrom(ipA, uint16(na)).String()
}

// listenIP returns the address that net.Listen("tcp", host:port) listens
// on: host when it is an IP address (an IPv4-mapped one as IPv4), else the
// first IPv4 address the name resolves to, else its first address, as
// net.Listen picks it. Unlike net.Listen's, the resolution ends with ctx.
func listenIP(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("lookup %s: no address", host)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return ips[0], nil
}

func (o *options) validate() error {
	var errs []error
	if o.workers < 1 || o.workers > 4096 {
		errs = append(errs, fmt.Errorf("--workers %d (INVOICE_WORKERS): must be 1 to 4096", o.workers))
	}
	// One address twice, however spelt, would fail to listen only once
	// the streams are set up, in the system's words.
	if why := listenersCollide(o.httpListen, o.partnerAddr); why != "" {
		errs = append(errs, fmt.Errorf("--partner-http %q (INVOICE_PARTNER_HTTP) and --http %q (INVOICE_HTTP, default 127.0.0.1:8080) %s: give the partner API a port of its own, or leave --partner-http unset to serve it on --http", o.partnerAddr, o.httpListen, why))
	}
	if o.partnerMax < 0 {
		errs = append(errs, fmt.Errorf("--partner-max-queries %d (INVOICE_PARTNER_MAX_QUERIES): must be 0 (no bound) or more", o.partnerMax))
	}
	if o.partitions > 1 && (o.partition < 0 || o.partition >= o.partitions) {
		if o.partitionHost != "" {
			// More pods than partitions, most likely; or a host name
			// that is not a StatefulSet pod's and only ends in digits (a
			// Deployment pod's suffix may be all digits, 24567).
			errs = append(errs, fmt.Errorf("--partition %d, from --partition-from-hostname's host name %q: must be 0 to %d: more pods than --partitions (INVOICE_PARTITIONS)? Outside a StatefulSet, give the partition with --partition (INVOICE_PARTITION) instead of --partition-from-hostname", o.partition, o.partitionHost, o.partitions-1))
		} else {
			errs = append(errs, fmt.Errorf("--partition %d (INVOICE_PARTITION): must be 0 to %d, below --partitions (INVOICE_PARTITIONS)", o.partition, o.partitions-1))
		}
	}
	if o.partitions <= 1 && (o.partition != 0 || o.partitionPod) {
		// Without partitions every instance pulls every seller's requests,
		// each into an order store of its own: a seller's orders would be
		// spread across stores that cannot see each other's claims.
		errs = append(errs, fmt.Errorf("--partition %d (INVOICE_PARTITION), or --partition-from-hostname (INVOICE_PARTITION_FROM_HOSTNAME), needs --partitions greater than 1 (INVOICE_PARTITIONS): without it this instance would take every seller's requests beside the others", o.partition))
	}
	if o.natsURL != "" && o.configFile == "" {
		errs = append(errs, errors.New("--nats-url needs --config (INVOICE_CONFIG): without it the consumer serves only the in-process sandbox's demo sellers and would answer every other seller's request rejected (seller_not_configured). To try the demo sellers on an external server, run the sandbox (go run ./cmd/sandbox --listen 127.0.0.1:9100) and pass --config deploy/sandbox-sellers.yaml"))
	}
	if o.noClaim && o.natsURL == "" {
		errs = append(errs, errors.New("--jumdata-no-claim needs --nats-url: what a crash leaves submitted without a claim is found by the server's record of the requests delivered, and the embedded server stops with the consumer and can forget the last deliveries (about 100 ms) before a kill"))
	}
	if o.natsURL == "" && (o.natsCreds != "" || o.tlsCert != "" || o.tlsCA != "") {
		errs = append(errs, errors.New("--creds and --tls-* apply to --nats-url only"))
	}
	// Unlike --creds and --tls-*, the inbox prefix applies to the embedded
	// server too (it is harmless there), so one environment may set it for
	// both modes.
	if o.inboxPrefix != "" && !schemas.ValidSubjectPrefix(o.inboxPrefix) {
		errs = append(errs, fmt.Errorf("--inbox-prefix %q is not a subject prefix: tokens separated by dots, without wildcards or spaces, such as _INBOX_invoicer", o.inboxPrefix))
	}
	if !schemas.ValidSubjectPrefix(o.prefix) {
		errs = append(errs, fmt.Errorf("--prefix %q is not a subject prefix: tokens separated by dots, without wildcards or spaces", o.prefix))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if o.jsSync != "always" {
		// 0 would be nats-server's default of 2 minutes, not "at once".
		if d, err := time.ParseDuration(o.jsSync); err != nil || d < time.Millisecond {
			errs = append(errs, fmt.Errorf(`--js-sync %q (INVOICE_JS_SYNC): "always" or an interval of at least 1ms`, o.jsSync))
		}
	}
	if o.storeDelay < 0 {
		errs = append(errs, fmt.Errorf("--store-batch-delay %v (INVOICE_STORE_BATCH_DELAY): must not be negative", o.storeDelay))
	}
	if o.storeBusy < 0 {
		errs = append(errs, fmt.Errorf("--store-busy-delay %v (INVOICE_STORE_BUSY_DELAY): must not be negative", o.storeBusy))
	}
	if o.redWait < time.Minute {
		errs = append(errs, fmt.Errorf("--red-confirm-wait %v (INVOICE_RED_CONFIRM_WAIT): must be at least 1m", o.redWait))
	}
	if o.ackWait < time.Second {
		errs = append(errs, fmt.Errorf("--ack-wait %v (INVOICE_ACK_WAIT): must be at least 1s", o.ackWait))
	}
	// The pipeline and the validator refuse these too, but only once the
	// streams and the durable have been updated to this start's settings,
	// and in words that name neither the flag nor its variable: their
	// checks, here, before anything touches NATS. Both take 0 for their
	// default, which the flags give already: a 0 given here was meant as
	// something else ("no limit", "no retries") and is refused rather
	// than quietly taken for the default.
	if o.maxDeliver == 0 {
		errs = append(errs, fmt.Errorf("--max-deliver 0 (INVOICE_MAX_DELIVER): must be at least 2; there is no \"no limit\" (a request's last delivery dead-letters it) and 1 leaves no room to retry; leave it unset for the default, %d", pipeline.DefaultMaxDeliver))
	} else if err := (pipeline.Config{MaxDeliver: o.maxDeliver}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--max-deliver %d (INVOICE_MAX_DELIVER): %w", o.maxDeliver, err))
	}
	if o.maxBytes <= 0 { // schemas.ValidatorConfig.Validate's "validator limits must not be negative", and 0
		errs = append(errs, fmt.Errorf("--max-request-bytes %d (INVOICE_MAX_REQUEST_BYTES): must be more than 0; there is no \"no limit\"; leave it unset for the default, %d", o.maxBytes, schemas.DefaultMaxBytes))
	}
	if o.providerTO <= 0 {
		// The provider clients would take it for their default of 15s
		// (jumdata's refuses a negative one, but only once the streams
		// are set up): not "no limit", which a call must not go without.
		errs = append(errs, fmt.Errorf("--provider-timeout %v (INVOICE_PROVIDER_TIMEOUT): must be more than 0", o.providerTO))
	}
	if o.shutdownTO <= 0 {
		// Not "no limit": the shutdown would not wait at all, and would
		// abandon the requests in flight at once, cutting short provider
		// calls that may have gone out (delivered again, each asks its
		// provider first). A second signal stops at once already.
		errs = append(errs, fmt.Errorf("--shutdown-timeout %v (INVOICE_SHUTDOWN_TIMEOUT): must be more than 0; it is how long the first SIGINT or SIGTERM waits for the requests in flight, and %v would not wait for them at all (to stop at once, send the signal twice)", o.shutdownTO, o.shutdownTO))
	}
	return errors.Join(errs...)
}

// newLogger builds the one logger of the process: console format on a
// terminal, JSON otherwise, unless format says which.
func newLogger(format, level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || lvl == zerolog.NoLevel {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q (INVOICE_LOG_LEVEL): use debug, info, warn or error", level)
	}
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = false
	console := false
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			console = true
		}
	case "console":
		console = true
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q (INVOICE_LOG_FORMAT): use auto, console or json", format)
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// ordinalOf returns the number after the last "-" of a host name
// ("invoicer-2" → 2), the ordinal of a StatefulSet pod. The error names the
// host name; the caller says what to do about it.
func ordinalOf(host string) (int, error) {
	i := strings.LastIndexByte(host, '-')
	if i < 0 {
		return 0, fmt.Errorf("host name %q does not end in -<ordinal>", host)
	}
	k, err := strconv.Atoi(host[i+1:])
	if err != nil || k < 0 {
		return 0, fmt.Errorf("host name %q does not end in -<ordinal>", host)
	}
	return k, nil
}

// stopOnSignal returns a context that SIGINT or SIGTERM cancels: the
// consumer then stops pulling and finishes the requests in flight, for up
// to --shutdown-timeout, after which it abandons those left, and it exits
// shutdownMargin later whatever its shutdown still waits for (run). A
// second signal ends the process at once (the signal's default action):
// nothing is acknowledged before its outcome is durable, so the requests
// it cuts short are delivered again.
func stopOnSignal(log zerolog.Logger) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		log.Info().Str("signal", s.String()).Msg("signal received; send it again to stop at once (the requests in flight are then delivered again)")
		cancel()
	}()
	return ctx
}
