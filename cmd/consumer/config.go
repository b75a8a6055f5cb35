package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"

	"github.com/fapiaohub/invoicer/providers/nuonuo"
	"github.com/fapiaohub/invoicer/schemas"
	"go.yaml.in/yaml/v3"
)

// fileConfig is the --config file: which provider and credentials serve each
// seller.
//
//	sellers:
//	  - taxNum: "339902999999789113"
//	    provider: nuonuo          # or jumdata, with a jumdata: block instead
//	    nuonuo: {baseURL: "...", appKey: "...", appSecret: "env:NUONUO_APP_SECRET", accessToken: "...", family: ElectronInvoice}
//	    rateLimit: 20             # requests per second
//	  - taxNum: "91330106MA2AYNWD8M"
//	    provider: jumdata
//	    jumdata: {baseURL: "...", appId: "...", appSecret: "file:/run/secrets/jumdata", token: "...", dq: "...", gryhm: "..."}
//
// A setting the seller would not use is refused, not ignored: the block of
// the provider it does not use, a tokenURL beside a static accessToken, a
// rateLimit that is NaN, infinite or negative.
//
// Every secret (appSecret, accessToken, token) may be written literally,
// as "env:NAME" (read from the environment) or as "file:PATH" (read from a
// file, trailing newline removed). Secrets never reach a log line.
//
// Partners of the status query (GET /partner/queryInvoice) are listed with
// their channel and secret:
//
//	partners:
//	  - channel: "acme"
//	    secret: "env:ACME_PARTNER_SECRET"
//	    sellers: ["91330106MA2AYNWD8M"]   # optional: the only sellers it may ask about
type fileConfig struct {
	Sellers  []sellerConfig  `yaml:"sellers"`
	Partners []partnerConfig `yaml:"partners"`
}

// partnerConfig is one channel of the partner status query.
type partnerConfig struct {
	Channel string `yaml:"channel"`
	Secret  string `yaml:"secret"`
	// Sellers, when given, are the only sellers whose orders the channel
	// may ask about; without the key, every seller's. An empty list, or the
	// key without a value, is refused.
	Sellers []string `yaml:"sellers"`
}

// sellerConfig is one seller of the config file.
type sellerConfig struct {
	TaxNum    string         `yaml:"taxNum"`
	Provider  string         `yaml:"provider"`
	Nuonuo    *nuonuoConfig  `yaml:"nuonuo"`
	Jumdata   *jumdataConfig `yaml:"jumdata"`
	RateLimit float64        `yaml:"rateLimit"`
}

// nuonuoConfig holds a seller's Nuonuo credentials. When accessToken is
// empty, tokens are fetched from tokenURL (default: nuonuo.TokenURLFor
// baseURL, https://open.nuonuo.com/accessToken for production)
// and shared by every instance through a JetStream key-value bucket, and by
// every seller of the app (its appKey at that token URL), which must give
// the app's one appSecret. A tokenURL beside an accessToken, which would
// never be used, is refused.
type nuonuoConfig struct {
	BaseURL     string `yaml:"baseURL"`
	TokenURL    string `yaml:"tokenURL"`
	AppKey      string `yaml:"appKey"`
	AppSecret   string `yaml:"appSecret"`
	AccessToken string `yaml:"accessToken"`
	Family      string `yaml:"family"`
}

// tokenEndpoint is where the seller's tokens are fetched when it has no
// static accessToken: tokenURL, or the one that goes with baseURL.
func (n *nuonuoConfig) tokenEndpoint() string {
	if n.TokenURL != "" {
		return n.TokenURL
	}
	return nuonuo.TokenURLFor(n.BaseURL)
}

// jumdataConfig holds a seller's jumdata credentials and taxpayer login.
type jumdataConfig struct {
	BaseURL   string `yaml:"baseURL"`
	AppID     string `yaml:"appId"`
	AppSecret string `yaml:"appSecret"`
	Token     string `yaml:"token"`
	DQ        string `yaml:"dq"`
	Gryhm     string `yaml:"gryhm"`
}

// loadConfig reads and checks a config file, resolving env: and file:
// secrets. Unknown keys are errors, so a misspelt setting is not silently
// ignored, and so is a second YAML document, for the same reason.
func loadConfig(path string) (*fileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var cfg fileConfig
	// A file without a document (empty, or comments only) is the empty
	// configuration, which resolve refuses for its want of sellers.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// The decoder reads the first document only: the sellers and partners
	// of another one after --- would be left out without a word. An empty
	// one (a trailing ---) lists nothing.
	for {
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if len(more.Content) > 0 && more.Content[0].Tag != "!!null" {
			return nil, fmt.Errorf("config %s: line %d: a second YAML document (after ---): put every seller and partner in one document", path, more.Content[0].Line)
		}
	}
	// A partner's sellers: key written without a value (null, or its list
	// commented out) decodes as no key at all, which opens every seller to
	// the channel: it is taken for the empty list it is, which resolve
	// refuses.
	var keys struct {
		Partners []map[string]yaml.Node `yaml:"partners"`
	}
	if err := yaml.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	for i, p := range keys.Partners {
		if _, ok := p["sellers"]; ok && i < len(cfg.Partners) && cfg.Partners[i].Sellers == nil {
			cfg.Partners[i].Sellers = []string{}
		}
	}
	if err := cfg.resolve(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &cfg, nil
}

// resolve normalizes tax numbers, reads env: and file: secrets and checks
// every seller, refusing the settings it would not use, reporting all
// problems at once.
func (c *fileConfig) resolve() error {
	var errs []error
	if len(c.Sellers) == 0 {
		errs = append(errs, errors.New("no sellers: add at least one under the sellers: key"))
	}
	seen := map[string]bool{}
	apps := map[string]int{} // the first Nuonuo seller fetching the tokens of each app
	for i := range c.Sellers {
		s := &c.Sellers[i]
		where := fmt.Sprintf("sellers[%d]", i)
		s.TaxNum = schemas.NormalizeTaxNumber(s.TaxNum)
		if s.TaxNum == "" {
			errs = append(errs, fmt.Errorf("%s: taxNum is required", where))
		} else {
			where += " (" + s.TaxNum + ")"
			// A seller whose number no request can carry would start,
			// and every request for it would find no provider.
			if !schemas.ValidTaxNumber(s.TaxNum) {
				errs = append(errs, fmt.Errorf("%s: taxNum %q is not a tax number of 15 to 20 letters or digits, which no request could carry", where, s.TaxNum))
			}
			if seen[s.TaxNum] {
				errs = append(errs, fmt.Errorf("%s: seller listed twice", where))
			}
			seen[s.TaxNum] = true
		}
		// NaN passes every comparison (.nan is a YAML float), and an
		// infinite rate limits nothing: neither is a rate the limiter can
		// keep to.
		if s.RateLimit < 0 || math.IsNaN(s.RateLimit) || math.IsInf(s.RateLimit, 0) {
			errs = append(errs, fmt.Errorf("%s: rateLimit %v: must be a number of requests per second, 0 (no limit) or more", where, s.RateLimit))
		}
		switch s.Provider {
		case "nuonuo":
			// The other provider's block is never read: its credentials
			// would be left unused without a word (most likely, provider:
			// is the mistake).
			if s.Jumdata != nil {
				errs = append(errs, fmt.Errorf("%s: jumdata: block beside provider nuonuo, which never reads it: remove the block, or set provider: jumdata", where))
			}
			if s.Nuonuo == nil {
				errs = append(errs, fmt.Errorf("%s: provider nuonuo needs a nuonuo: block", where))
				continue
			}
			n := s.Nuonuo
			errs = append(errs, checkBaseURL(where+": nuonuo.baseURL", n.BaseURL), checkURL(where+": nuonuo.tokenURL", n.TokenURL, false))
			secretErr := resolveSecret(where+": nuonuo.appSecret", &n.AppSecret, true)
			errs = append(errs, secretErr, resolveSecret(where+": nuonuo.accessToken", &n.AccessToken, false))
			if n.AppKey == "" {
				errs = append(errs, fmt.Errorf("%s: nuonuo.appKey is required", where))
			}
			// A static token is used as it is: no token is fetched, from
			// tokenURL or anywhere, and a tokenURL meant to be used would
			// be ignored.
			if n.AccessToken != "" && n.TokenURL != "" {
				errs = append(errs, fmt.Errorf("%s: nuonuo.tokenURL beside a static nuonuo.accessToken, which is used instead: no token is ever fetched from tokenURL; remove one of the two", where))
			}
			if n.Family != "" && n.Family != "ElectronInvoice" && n.Family != "OpeMplatform" {
				errs = append(errs, fmt.Errorf("%s: nuonuo.family %q: use ElectronInvoice or OpeMplatform", where, n.Family))
			}
			// The sellers of one app that fetch tokens share one token
			// source, built with the first one's secret (buildProviders):
			// another secret would not fetch the tokens it signs with, and
			// one of the two is wrong.
			if n.AccessToken == "" && n.AppKey != "" && secretErr == nil {
				app := n.tokenEndpoint() + "|" + n.AppKey
				if first, ok := apps[app]; !ok {
					apps[app] = i
				} else if c.Sellers[first].Nuonuo.AppSecret != n.AppSecret {
					errs = append(errs, fmt.Errorf("%s: nuonuo.appSecret is not that of sellers[%d], on the same app (appKey %q, tokens from %s): an app has one secret, and both sellers' tokens would be fetched with sellers[%d]'s", where, first, n.AppKey, redactURL(n.tokenEndpoint()), first))
				}
			}
		case "jumdata":
			if s.Nuonuo != nil {
				errs = append(errs, fmt.Errorf("%s: nuonuo: block beside provider jumdata, which never reads it: remove the block, or set provider: nuonuo", where))
			}
			if s.Jumdata == nil {
				errs = append(errs, fmt.Errorf("%s: provider jumdata needs a jumdata: block", where))
				continue
			}
			j := s.Jumdata
			errs = append(errs, checkBaseURL(where+": jumdata.baseURL", j.BaseURL))
			errs = append(errs, resolveSecret(where+": jumdata.appSecret", &j.AppSecret, true), resolveSecret(where+": jumdata.token", &j.Token, true))
			for name, v := range map[string]string{"appId": j.AppID, "dq": j.DQ, "gryhm": j.Gryhm} {
				if v == "" {
					errs = append(errs, fmt.Errorf("%s: jumdata.%s is required", where, name))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("%s: provider %q: use nuonuo or jumdata", where, s.Provider))
		}
	}
	channels := map[string]bool{}
	for i := range c.Partners {
		p := &c.Partners[i]
		where := fmt.Sprintf("partners[%d]", i)
		if p.Channel == "" {
			errs = append(errs, fmt.Errorf("%s: channel is required", where))
		} else if channels[p.Channel] {
			errs = append(errs, fmt.Errorf("%s: channel %q listed twice", where, p.Channel))
		}
		channels[p.Channel] = true
		for j, tn := range p.Sellers {
			if p.Sellers[j] = schemas.NormalizeTaxNumber(tn); p.Sellers[j] == "" {
				errs = append(errs, fmt.Errorf("%s: sellers[%d] is empty", where, j))
			} else if !schemas.ValidTaxNumber(p.Sellers[j]) {
				errs = append(errs, fmt.Errorf("%s: sellers[%d] %q is not a tax number of 15 to 20 letters or digits, which no query could carry", where, j, p.Sellers[j]))
			}
		}
		if p.Sellers != nil && len(p.Sellers) == 0 {
			// Read as "no list", it would open every seller to a channel
			// its operator meant to close.
			errs = append(errs, fmt.Errorf("%s: sellers is an empty list (or has no value): list the sellers the channel may ask about, or leave the key out to let it ask about every seller", where))
		}
		if err := resolveSecret(where+": secret", &p.Secret, true); err != nil {
			errs = append(errs, err)
		} else if len(p.Secret) < 16 {
			errs = append(errs, fmt.Errorf("%s: secret is shorter than 16 characters", where))
		}
	}
	return errors.Join(errs...)
}

// providerNames maps each seller's tax number to its provider, for the
// validator's rules that differ between providers
// (schemas.ValidatorConfig.Providers).
func (c *fileConfig) providerNames() map[string]string {
	m := make(map[string]string, len(c.Sellers))
	for _, s := range c.Sellers {
		m[s.TaxNum] = s.Provider
	}
	return m
}

func checkURL(what, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%s is required", what)
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may carry a user and password: the error names it
		// without them.
		return fmt.Errorf("%s %q is not an http(s) URL", what, redactURL(s))
	}
	return nil
}

// checkBaseURL is checkURL for a required base URL, which the provider's
// paths are appended to: a query or fragment would swallow them, and every
// call of a Nuonuo seller would go to the base URL's own path (jumdata's
// client refuses one too, but only once the streams are set up).
func checkBaseURL(what, s string) error {
	if err := checkURL(what, s, true); err != nil {
		return err
	}
	// redactURL, not u.Redacted: that hides a password only, and would
	// show the token of https://TOKEN@host.
	if u, _ := url.Parse(s); u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s %q must not carry a query or fragment", what, redactURL(s))
	}
	return nil
}

// resolveSecret replaces an "env:NAME" or "file:PATH" reference by the
// secret it names, less the line ending that ends it (a file's, or a
// variable's set from one: a Kubernetes secret made from a file that ends
// in a newline keeps it in the variable). Errors name the setting and the
// reference, never the secret.
func resolveSecret(what string, v *string, required bool) error {
	switch {
	case strings.HasPrefix(*v, "env:"):
		name := strings.TrimPrefix(*v, "env:")
		val, ok := os.LookupEnv(name)
		if val = strings.TrimRight(val, "\r\n"); !ok || val == "" {
			return fmt.Errorf("%s: environment variable %s is not set", what, name)
		}
		*v = val
	case strings.HasPrefix(*v, "file:"):
		path := strings.TrimPrefix(*v, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: read secret file: %w", what, err)
		}
		*v = strings.TrimRight(string(b), "\r\n")
		if *v == "" {
			return fmt.Errorf("%s: secret file %s is empty", what, path)
		}
	case *v == "" && required:
		return fmt.Errorf("%s is required (literal, env:NAME or file:PATH)", what)
	}
	return nil
}
