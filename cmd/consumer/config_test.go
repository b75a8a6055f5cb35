package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/store"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	secretFile := writeFile(t, "secret", "file-secret-value\n")
	// A variable set from a file keeps the file's last newline (a
	// Kubernetes secret made from a file): it is not part of the secret,
	// as it is not in a file: reference.
	t.Setenv("TEST_NUONUO_SECRET", "env-secret-value\n")
	t.Setenv("TEST_PARTNER_SECRET", "partner-secret-0123456789")
	good := `
sellers:
  - taxNum: " 339902999999789113 "
    provider: nuonuo
    nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: "k", appSecret: "env:TEST_NUONUO_SECRET", family: OpeMplatform}
    rateLimit: 20
  - taxNum: "91330106ma2aynwd8m"
    provider: jumdata
    jumdata: {baseURL: "https://api.jumdata.com", appId: "a", appSecret: "file:` + secretFile + `", token: "t", dq: "330000", gryhm: "13800000000"}
partners:
  - channel: acme
    secret: env:TEST_PARTNER_SECRET
    sellers: [" 91330106ma2aynwd8m "]
`
	cfg, err := loadConfig(writeFile(t, "good.yaml", good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sellers[0].TaxNum != "339902999999789113" || cfg.Sellers[1].TaxNum != "91330106MA2AYNWD8M" {
		t.Errorf("tax numbers not normalized: %+v", cfg.Sellers)
	}
	if cfg.Sellers[0].Nuonuo.AppSecret != "env-secret-value" || cfg.Sellers[1].Jumdata.AppSecret != "file-secret-value" || cfg.Partners[0].Secret != "partner-secret-0123456789" {
		t.Errorf("secrets not resolved")
	}
	if p := cfg.Partners[0]; len(p.Sellers) != 1 || p.Sellers[0] != "91330106MA2AYNWD8M" {
		t.Errorf("partner sellers not normalized: %q", p.Sellers)
	}
	// The validator learns each seller's provider, for its provider-specific rules.
	if got := cfg.providerNames(); len(got) != 2 || got["339902999999789113"] != "nuonuo" || got["91330106MA2AYNWD8M"] != "jumdata" {
		t.Errorf("providerNames() = %v", got)
	}
	if err := (schemas.ValidatorConfig{Providers: cfg.providerNames()}).Validate(); err != nil {
		t.Errorf("validator config: %v", err)
	}

	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "sellers:\n  - taxNum: X\n    provder: nuonuo\n", []string{"provder"}},
		{"no sellers", "sellers: []\n", []string{"no sellers"}},
		{"a partner's empty sellers list", "sellers:\n  - taxNum: S1\n    provider: jumdata\n    jumdata: {baseURL: \"https://api.jumdata.com\", appId: a, appSecret: b, token: c, dq: d, gryhm: e}\npartners:\n  - channel: c\n    secret: 0123456789abcdef\n    sellers: []\n",
			[]string{"partners[0]: sellers is an empty list"}},
		{"every problem at once", `
sellers:
  - taxNum: "S1"
    provider: nuonuo
    nuonuo: {baseURL: "ftp://x", appSecret: "env:TEST_MISSING_VAR", family: Other}
  - taxNum: "S1"
    provider: jumdata
    jumdata: {baseURL: "https://api.jumdata.com", appId: "a", appSecret: "file:/does/not/exist"}
  - taxNum: "S2"
    provider: baiwang
partners:
  - channel: c
    secret: short
    sellers: ["S1", " "]
`, []string{
			"sellers[0] (S1): nuonuo.baseURL \"ftp://x\" is not an http(s) URL",
			"environment variable TEST_MISSING_VAR is not set",
			"nuonuo.appKey is required",
			"nuonuo.family \"Other\"",
			"sellers[1] (S1): seller listed twice",
			"read secret file",
			"jumdata.token is required",
			"jumdata.dq is required",
			"provider \"baiwang\": use nuonuo or jumdata",
			"partners[0]: secret is shorter than 16 characters",
			"partners[0]: sellers[1] is empty",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeFile(t, "c.yaml", tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	t.Setenv("TEST_SECRET", "s3cr3t-do-not-print")
	_, err := loadConfig(writeFile(t, "c.yaml", `
sellers:
  - taxNum: "S1"
    provider: jumdata
    jumdata: {baseURL: "not a url", appId: "", appSecret: "env:TEST_SECRET", token: "s3cr3t-token-do-not-print"}
`))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("a secret reached the error: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"NATS_URL": "nats://a:4222", "INVOICE_CONFIG": "sellers.yaml", "INVOICE_WORKERS": "12", "HOSTNAME": "invoicer-3"}
	o, err := parseFlags([]string{"--partitions", "4", "--partition-from-hostname"}, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	if o.natsURL != "nats://a:4222" || o.workers != 12 || o.partition != 3 {
		t.Fatalf("%+v", o)
	}
	for _, bad := range [][]string{
		{"--workers", "0"},
		{"--partitions", "2", "--partition", "2"},
		{"--creds", "x.creds"},
		{"--js-sync", "sometimes"},
		{"--store-busy-delay", "-1ms"},
		{"--store-batch-delay", "-1ms"},
		{"--jumdata-no-claim"}, // needs --nats-url
		{"extra"},
		{"--nats-url", "nats://a:4222"}, // needs --config
		{"--partition", "1"},            // needs --partitions
		{"--partitions", "1", "--partition", "1"},
		{"--partition-from-hostname"},
		{"--js-sync", "0"},
		{"--js-sync", "-1s"},
	} {
		if _, err := parseFlags(bad, noEnv); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if o.storeBusy != store.DefaultBusyBatchDelay || busyDelay(o.storeBusy) != store.DefaultBusyBatchDelay {
		t.Errorf("--store-busy-delay defaults to %v (store %v), want the store's %v", o.storeBusy, busyDelay(o.storeBusy), store.DefaultBusyBatchDelay)
	}
	off, err := parseFlags([]string{"--store-busy-delay", "0"}, noEnv)
	if err != nil || busyDelay(off.storeBusy) >= 0 {
		t.Errorf("--store-busy-delay 0: %v, store delay %v; want a negative store delay (never waits)", err, busyDelay(off.storeBusy))
	}
	if nc, err := parseFlags([]string{"--nats-url", "nats://a:4222", "--config", "sellers.yaml", "--jumdata-no-claim"}, noEnv); err != nil || !nc.noClaim {
		t.Errorf("--jumdata-no-claim with --nats-url: %v", err)
	}
	if _, err := ordinalOf("invoicer"); err == nil {
		t.Error("ordinal of a name without a number")
	}
}

// TestEnvironmentValuesAreRead: a variable set to something its flag would
// refuse is an error naming it, not a silent default; a boolean reads as
// strconv.ParseBool does; INVOICE_HTTP set to "" switches HTTP off.
func TestEnvironmentValuesAreRead(t *testing.T) {
	for _, bad := range []map[string]string{
		{"INVOICE_PARTITIONS": "3x"},
		{"INVOICE_WORKERS": "many"},
		{"INVOICE_SHUTDOWN_TIMEOUT": "60"},
		{"INVOICE_ACK_WAIT": "45"},
		{"INVOICE_PARTITION_FROM_HOSTNAME": "yes"},
		{"INVOICE_STRICT_TAX_NUMBERS": "on"},
	} {
		_, err := parseFlags(nil, envOf(bad))
		for name := range bad {
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%v: error %v, want one naming %s", bad, err, name)
			}
		}
	}
	o, err := parseFlags(nil, envOf(map[string]string{"INVOICE_WORKERS": " 64", "INVOICE_STRICT_TAX_NUMBERS": "1", "INVOICE_SHUTDOWN_TIMEOUT": "60s", "INVOICE_HTTP": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if o.workers != 64 || !o.strictTax || o.shutdownTO != time.Minute || o.httpListen != "" {
		t.Fatalf("workers %d, strict %v, shutdown %v, http %q", o.workers, o.strictTax, o.shutdownTO, o.httpListen)
	}
	if o, err := parseFlags(nil, noEnv); err != nil || o.httpListen != "127.0.0.1:8080" {
		t.Fatalf("HTTP unset: %q, %v", o.httpListen, err)
	}
}

// TestNATSURLPasswordStaysOutOfTheUsage: NATS_URL is not the flag's
// default, so the usage text that a mistyped flag prints does not show a
// password it carries; the URL still applies, and the flag wins over it.
func TestNATSURLPasswordStaysOutOfTheUsage(t *testing.T) {
	env := envOf(map[string]string{"NATS_URL": "nats://invoicer:S3CRET-PW@127.0.0.1:4222", "INVOICE_CONFIG": "sellers.yaml"})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	_, perr := parseFlags([]string{"--no-such-flag"}, env)
	os.Stderr = stderr
	w.Close()
	usage, _ := io.ReadAll(r)
	if perr == nil {
		t.Fatal("a mistyped flag was taken")
	}
	if !strings.Contains(string(usage), "-nats-url") || strings.Contains(string(usage), "S3CRET") {
		t.Fatalf("usage text:\n%s", usage)
	}
	o, err := parseFlags(nil, env)
	if err != nil || o.natsURL != "nats://invoicer:S3CRET-PW@127.0.0.1:4222" {
		t.Fatalf("NATS_URL not applied: %+v %v", o, err)
	}
	if o, err := parseFlags([]string{"--nats-url", "nats://other:4222"}, env); err != nil || o.natsURL != "nats://other:4222" {
		t.Fatalf("--nats-url over NATS_URL: %+v %v", o, err)
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://user:pw@h1:4222,nats://h2:4222")
	if strings.Contains(got, "pw") || !strings.Contains(got, "h2:4222") {
		t.Fatal(got)
	}
	if got := redactURL("invoicer:PW123@127.0.0.1:1"); strings.Contains(got, "PW123") || !strings.Contains(got, "127.0.0.1:1") {
		t.Fatalf("a URL without a scheme: %s", got)
	}
}

// TestSandboxSellersFile: deploy/sandbox-sellers.yaml, the README's config
// for a consumer without the in-process sandbox, loads and names the
// sandbox's own credentials.
func TestSandboxSellersFile(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "deploy", "sandbox-sellers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sellers) != 2 || cfg.Sellers[0].TaxNum != sandbox.DefaultNuonuoSeller || cfg.Sellers[1].TaxNum != sandbox.DefaultJumdataSeller {
		t.Fatalf("sellers %+v", cfg.Sellers)
	}
	n, j := cfg.Sellers[0].Nuonuo, cfg.Sellers[1].Jumdata
	if n.AppKey != sandbox.DefaultNuonuoAppKey || n.AppSecret != sandbox.DefaultNuonuoAppSecret || n.AccessToken != sandbox.DefaultNuonuoToken ||
		j.AppID != sandbox.DefaultJumdataAppID || j.AppSecret != sandbox.DefaultJumdataSecret || j.Token != sandbox.DefaultJumdataToken ||
		j.DQ != sandbox.DefaultJumdataDQ || j.Gryhm != sandbox.DefaultJumdataGryhm {
		t.Fatalf("credentials differ from the sandbox's defaults: %+v %+v", n, j)
	}
}

// TestPrefixFlagIsChecked: a --prefix that cannot start a subject is a
// usage error at start, not a stream-creation failure later.
func TestPrefixFlagIsChecked(t *testing.T) {
	for _, p := range []string{"acme.invoice", "invoice"} {
		if _, err := parseFlags([]string{"--prefix", p}, noEnv); err != nil {
			t.Errorf("--prefix %q: %v", p, err)
		}
	}
	for _, p := range []string{"", "in voice", "invoice.>", "a..b"} {
		if _, err := parseFlags([]string{"--prefix", p}, noEnv); err == nil || !strings.Contains(err.Error(), "--prefix") {
			t.Errorf("--prefix %q: error %v, want one naming --prefix", p, err)
		}
	}
}

// TestShutdownTimeoutMustBePositive: --shutdown-timeout 0 (or less) would
// not wait for the requests in flight at all, closing NATS and the order
// store under them; it is refused at start, naming the flag and its
// variable, whichever of them gave it.
func TestShutdownTimeoutMustBePositive(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag 0", []string{"--shutdown-timeout", "0"}, nil},
		{"flag negative", []string{"--shutdown-timeout", "-1s"}, nil},
		{"variable 0s", nil, map[string]string{"INVOICE_SHUTDOWN_TIMEOUT": "0s"}},
		{"variable negative", nil, map[string]string{"INVOICE_SHUTDOWN_TIMEOUT": "-30s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), "--shutdown-timeout") || !strings.Contains(err.Error(), "INVOICE_SHUTDOWN_TIMEOUT") {
				t.Fatalf("error %v; want one naming --shutdown-timeout and INVOICE_SHUTDOWN_TIMEOUT", err)
			}
		})
	}
	if o, err := parseFlags([]string{"--shutdown-timeout", "1ms"}, noEnv); err != nil || o.shutdownTO != time.Millisecond {
		t.Fatalf("--shutdown-timeout 1ms: %v", err)
	}
}

// envOf is a lookupEnv over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// noEnv is an empty environment.
func noEnv(string) (string, bool) { return "", false }

// TestURLPasswordsNeverInErrors: a provider URL that carries a user and
// password and is refused (its scheme, its host) is named without the
// password.
func TestURLPasswordsNeverInErrors(t *testing.T) {
	_, err := loadConfig(writeFile(t, "c.yaml", `
sellers:
  - taxNum: "339902999999789113"
    provider: nuonuo
    nuonuo: {baseURL: "htps://invoicer:s3cr3t-base@sdk.nuonuo.com", tokenURL: "ftp://invoicer:s3cr3t-token@open.nuonuo.com/accessToken", appKey: k, appSecret: s}
  - taxNum: "91330106MA2AYNWD8M"
    provider: jumdata
    jumdata: {baseURL: "https://invoicer:s3cr3t-jumdata@", appId: a, appSecret: b, token: c, dq: d, gryhm: e}
`))
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("a password reached the error: %v", err)
	}
	for _, want := range []string{"nuonuo.baseURL", "sdk.nuonuo.com", "nuonuo.tokenURL", "open.nuonuo.com/accessToken", "jumdata.baseURL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestJumdataBaseURLWithAQueryIsRefused: jumdata's client refuses a base
// URL with a query or fragment; the config loader refuses it first, naming
// the file and the key and not the password (nor a token in the user's
// place), instead of a start that sets up the streams and then stops on the
// client's error.
func TestJumdataBaseURLWithAQueryIsRefused(t *testing.T) {
	for _, u := range []string{"https://invoicer:s3cr3t@api.jumdata.com/?env=test", "https://invoicer:s3cr3t@api.jumdata.com/#v2", "https://s3cr3t-token@api.jumdata.com/?env=test"} {
		path := writeFile(t, "c.yaml", "sellers:\n  - taxNum: 91330106MA2AYNWD8M\n    provider: jumdata\n    jumdata: {baseURL: \""+u+"\", appId: a, appSecret: b, token: c, dq: d, gryhm: e}\n")
		_, err := loadConfig(path)
		if err == nil {
			t.Fatalf("%s: loaded", u)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "sellers[0] (91330106MA2AYNWD8M): jumdata.baseURL") || !strings.Contains(err.Error(), "query or fragment") {
			t.Errorf("%s: error does not name the file, the key and what is wrong: %v", u, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("a password reached the error: %v", err)
		}
	}
}

// TestNuonuoBaseURLWithAQueryIsRefused: Nuonuo's endpoints are the base URL
// with their paths appended (/open/v1/services, /accessToken), which a
// query or fragment would swallow: the seller would start and every call
// would go to the base URL's own path (action_required http_404).
func TestNuonuoBaseURLWithAQueryIsRefused(t *testing.T) {
	for _, u := range []string{"https://invoicer:s3cr3t@sdk.nuonuo.com/?env=test", "https://sdk.nuonuo.com#v2"} {
		path := writeFile(t, "c.yaml", "sellers:\n  - taxNum: \"339902999999789113\"\n    provider: nuonuo\n    nuonuo: {baseURL: \""+u+"\", appKey: k, appSecret: s}\n")
		_, err := loadConfig(path)
		if err == nil {
			t.Fatalf("%s: loaded", u)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "sellers[0] (339902999999789113): nuonuo.baseURL") || !strings.Contains(err.Error(), "query or fragment") {
			t.Errorf("%s: error does not name the file, the key and what is wrong: %v", u, err)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("a password reached the error: %v", err)
		}
	}
}

// TestProviderTimeoutMustBePositive: the provider clients take a timeout of
// 0 or less for their default of 15s (jumdata's refuses a negative one, but
// only once the streams are set up, naming neither the flag nor the
// variable): --provider-timeout refuses it instead of ignoring it.
func TestProviderTimeoutMustBePositive(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag 0", []string{"--provider-timeout", "0"}, nil},
		{"flag negative", []string{"--provider-timeout", "-5s"}, nil},
		{"variable 0s", nil, map[string]string{"INVOICE_PROVIDER_TIMEOUT": "0s"}},
		{"variable negative", nil, map[string]string{"INVOICE_PROVIDER_TIMEOUT": "-5s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, envOf(tc.env))
			if err == nil {
				t.Fatalf("accepted: provider timeout %v", o.providerTO)
			}
			if !strings.Contains(err.Error(), "--provider-timeout") || !strings.Contains(err.Error(), "INVOICE_PROVIDER_TIMEOUT") {
				t.Errorf("error names neither the flag nor the variable: %v", err)
			}
		})
	}
	if o, err := parseFlags([]string{"--provider-timeout", "1ms"}, noEnv); err != nil || o.providerTO != time.Millisecond {
		t.Fatalf("1ms: %v, %v", o, err)
	}
}

// TestDeliveryAndSizeLimitsAreCheckedWithTheFlags: a --max-deliver or
// --max-request-bytes that the pipeline or the validator refuses is refused
// with the other flags, naming the flag and its variable, before anything
// touches NATS: pipeline.New and schemas.NewValidator would refuse it only
// once the streams and the durable had been updated to this start's
// settings, in words that name neither. 0 is refused too, not taken for
// the default as pipeline.Config and schemas.ValidatorConfig take it: an
// operator setting INVOICE_MAX_DELIVER=0 may mean "no limit" or "no
// retries", and would get 20 deliveries without a word.
func TestDeliveryAndSizeLimitsAreCheckedWithTheFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		env        map[string]string
		flag, vari string
	}{
		{"max deliver 1", []string{"--max-deliver", "1"}, nil, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"max deliver negative", []string{"--max-deliver", "-1"}, nil, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"variable max deliver 1", nil, map[string]string{"INVOICE_MAX_DELIVER": "1"}, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"max request bytes negative", []string{"--max-request-bytes", "-1"}, nil, "--max-request-bytes", "INVOICE_MAX_REQUEST_BYTES"},
		{"variable max request bytes negative", nil, map[string]string{"INVOICE_MAX_REQUEST_BYTES": "-5"}, "--max-request-bytes", "INVOICE_MAX_REQUEST_BYTES"},
		{"max deliver 0", []string{"--max-deliver", "0"}, nil, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"variable max deliver 0", nil, map[string]string{"INVOICE_MAX_DELIVER": "0"}, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"variable max deliver 00", nil, map[string]string{"INVOICE_MAX_DELIVER": "00"}, "--max-deliver", "INVOICE_MAX_DELIVER"},
		{"max request bytes 0", []string{"--max-request-bytes", "0"}, nil, "--max-request-bytes", "INVOICE_MAX_REQUEST_BYTES"},
		{"variable max request bytes 0", nil, map[string]string{"INVOICE_MAX_REQUEST_BYTES": "0"}, "--max-request-bytes", "INVOICE_MAX_REQUEST_BYTES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, envOf(tc.env))
			if err == nil {
				t.Fatalf("accepted: max deliver %d, max request bytes %d", o.maxDeliver, o.maxBytes)
			}
			if !strings.Contains(err.Error(), tc.flag) || !strings.Contains(err.Error(), tc.vari) {
				t.Errorf("error names neither %s nor %s: %v", tc.flag, tc.vari, err)
			}
		})
	}
	o, err := parseFlags([]string{"--max-deliver", "2", "--max-request-bytes", "1024"}, noEnv)
	if err != nil || o.maxDeliver != 2 || o.maxBytes != 1024 {
		t.Fatalf("--max-deliver 2 --max-request-bytes 1024: %+v, %v", o, err)
	}
}
