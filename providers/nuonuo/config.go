package nuonuo

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/fapiaohub/invoicer/providers"
)

// Method families of requestBillingNew and queryInvoiceResult. Which one a
// seller uses depends on the products the seller's app subscribes to.
const (
	// FamilyElectronInvoice is nuonuo.ElectronInvoice.*, the default.
	FamilyElectronInvoice = "ElectronInvoice"
	// FamilyOpeMplatform is nuonuo.OpeMplatform.* (诺税通 SaaS).
	FamilyOpeMplatform = "OpeMplatform"
)

// DefaultPollAfter is the RetryAfter hint of Accepted outcomes.
const DefaultPollAfter = 2 * time.Second

// servicesPath is the one endpoint of the open platform.
const servicesPath = "/open/v1/services"

// Config configures a Client for one seller. Zero fields take the documented
// defaults.
type Config struct {
	// BaseURL is the platform's address, e.g. https://sdk.nuonuo.com, the
	// provider's sandbox https://sandbox.nuonuocs.cn, or the local sandbox
	// http://127.0.0.1:9100. The client posts to BaseURL + "/open/v1/services".
	// Required.
	BaseURL string
	// SellerTaxNum is the seller this client is bound to; it is sent as the
	// userTax header. Required.
	SellerTaxNum string
	// AppKey and AppSecret are the app's credentials; AppSecret signs every
	// call and never leaves the process. Required.
	AppKey, AppSecret string
	// AccessToken is a static token. When empty, Tokens must be set.
	AccessToken string
	// Tokens hands out the app's shared, refreshed token; nil when
	// AccessToken is set. One TokenSource serves every seller of an app.
	Tokens *TokenSource
	// Family is the method family of requestBillingNew and
	// queryInvoiceResult for this seller: FamilyElectronInvoice (default) or
	// FamilyOpeMplatform. reInvoice and the red confirmation methods exist
	// only as OpeMplatform.
	Family string
	// HTTPClient makes the calls; nil means providers.NewHTTPClient(HTTP).
	HTTPClient *http.Client
	// HTTP sets the timeout, pool size and answer size limit.
	HTTP providers.HTTPConfig
	// Limiter is the seller's rate limit; nil means unlimited. It backs off
	// when the platform answers 070201 (too frequent), pausing the
	// seller's calls for a second, or for the answer's Retry-After where
	// that asks for longer.
	Limiter *providers.Limiter
	// Observer receives one report per HTTP call: provider "nuonuo", the
	// method's short name ("requestBillingNew"), the answer's code and the
	// latency.
	Observer providers.Observer
	// PollAfter is the RetryAfter hint of Accepted outcomes; 0 means
	// DefaultPollAfter.
	PollAfter time.Duration
	// Now is the clock of the signed timestamp and of a Retry-After date;
	// nil means time.Now.
	Now func() time.Time
}

// Validate reports a missing or contradictory setting. Its errors never
// contain a credential.
func (c Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("BaseURL is required"))
	} else if err := checkURL(c.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("BaseURL: %w", err))
	}
	if c.SellerTaxNum == "" {
		errs = append(errs, errors.New("SellerTaxNum is required"))
	}
	if c.AppKey == "" {
		errs = append(errs, errors.New("AppKey is required"))
	}
	if c.AppSecret == "" {
		errs = append(errs, errors.New("AppSecret is required"))
	}
	switch {
	case c.AccessToken == "" && c.Tokens == nil:
		errs = append(errs, errors.New("one of AccessToken and Tokens is required"))
	case c.AccessToken != "" && c.Tokens != nil:
		errs = append(errs, errors.New("AccessToken and Tokens are exclusive"))
	case c.Tokens != nil && c.Tokens.cfg.AppKey != c.AppKey:
		errs = append(errs, errors.New("the Tokens source belongs to another AppKey"))
	}
	switch c.Family {
	case "", FamilyElectronInvoice, FamilyOpeMplatform:
	default:
		errs = append(errs, fmt.Errorf("the Family %q is neither %s nor %s", c.Family, FamilyElectronInvoice, FamilyOpeMplatform))
	}
	if c.PollAfter < 0 {
		errs = append(errs, errors.New("PollAfter must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("nuonuo config: %w", errors.Join(errs...))
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	return nil
}
