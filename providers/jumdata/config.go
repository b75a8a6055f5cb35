package jumdata

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/schemas"
)

// Defaults of Config.
const (
	// DefaultTaskIDLife is how long jumdata keeps a taskId.
	DefaultTaskIDLife = 8 * time.Hour
	// DefaultPollAfter is the RetryAfter hint given with a 202 answer.
	DefaultPollAfter = 2 * time.Second
	// DefaultRedConfirmAfter is how long a red confirmation form may stay
	// in progress after its submission before the seller confirms it.
	DefaultRedConfirmAfter = time.Minute
)

// ErrConfig is wrapped by the errors of Config.Validate and New.
var ErrConfig = errors.New("invalid jumdata configuration")

// Config configures a Client bound to one seller. The zero value of every
// optional field is its documented default.
type Config struct {
	// BaseURL is jumdata's address, https://api.jumdata.com, or the
	// sandbox's (http://127.0.0.1:9100). Calls go to
	// BaseURL + "/tax/v3/makeout/<endpoint>". Required.
	BaseURL string
	// AppID and AppSecret are the account jumdata assigned (服务商分配的
	// appId and appSecret); they sign every call. Required.
	AppID, AppSecret string
	// Token is the login token (from configuration: the login endpoints are
	// not public). Required.
	Token string
	// SellerTaxNum is the seller's tax number (nsrsbh) the client is bound
	// to; requests for another seller are refused. Required.
	SellerTaxNum string
	// DQ (region code) and Gryhm (login account: ID card, phone or user name)
	// are the seller's taxpayer login fields. Required.
	DQ, Gryhm string
	// SellerName is the seller's name written into invoiceData (xsfmc);
	// empty leaves it to the tax bureau, which knows the seller from the
	// login.
	SellerName string
	// TaskIDLife is how long jumdata keeps a taskId; 0 means 8 hours, the
	// document's figure. Query repeats the submit within this life and
	// searches the issued invoices after it.
	TaskIDLife time.Duration
	// HTTPClient makes the calls; nil means providers.NewHTTPClient(HTTP).
	// The client never follows redirects.
	HTTPClient *http.Client
	// HTTP sets the client's timeout and pool when HTTPClient is nil, and
	// the answer size limit (MaxResponseBytes) in every case.
	HTTP providers.HTTPConfig
	// Limiter is the seller's rate limit; every call waits for it and the
	// "too frequent" answers (606, 609, HTTP 429) slow it down, pausing
	// the seller's calls for the answer's Retry-After (a second without
	// one). nil means unlimited.
	Limiter *providers.Limiter
	// Observer receives one report per HTTP call: provider "jumdata", the
	// endpoint ("blue-invoice/submit"), the code ("200", "http_502",
	// "transport", "timeout", "unreadable") and the latency. nil discards.
	Observer providers.Observer
	// PollAfter is the RetryAfter hint given with a 202 (in progress)
	// answer; 0 means 2 seconds. An answer's Retry-After header asking for
	// longer wins.
	PollAfter time.Duration
	// RedConfirmAfter is how long after its submission a red confirmation
	// form that red-invoice/result still answers 202 (in progress) waits
	// before the seller's confirmation, red-confirmation/confirm, is sent
	// for it: seed 004 §5 says that a form the tax bureau does not issue at
	// once is issued with its uuid (§5.6), and the 202 does not say
	// whether it waits for the seller or the buyer. The confirmation is
	// sent once per form; a refusal (the form waits for the buyer) is
	// kept and the form polled as before. 0 means
	// DefaultRedConfirmAfter; negative never sends it.
	RedConfirmAfter time.Duration
	// Now is the clock for timestamps, dates (a Retry-After date among
	// them) and the taskId life; nil means time.Now.
	Now func() time.Time
}

// Validate checks the configuration. Its errors wrap ErrConfig and never
// contain the secret, the token, or the user information (a password, or a
// token in the user's place) of a BaseURL they quote.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "":
		return fmt.Errorf("%w: BaseURL is required", ErrConfig)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%w: BaseURL %q is not an http(s) URL", ErrConfig, redactURL(c.BaseURL))
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: BaseURL %q must not carry a query or fragment", ErrConfig, redactURL(c.BaseURL))
	case c.AppID == "":
		return fmt.Errorf("%w: AppID is required", ErrConfig)
	case c.AppSecret == "":
		return fmt.Errorf("%w: AppSecret is required", ErrConfig)
	case c.Token == "":
		return fmt.Errorf("%w: Token is required", ErrConfig)
	case !schemas.ValidTaxNumber(c.SellerTaxNum):
		return fmt.Errorf("%w: SellerTaxNum %q is not 15 to 20 upper-case letters or digits", ErrConfig, c.SellerTaxNum)
	case c.DQ == "":
		return fmt.Errorf("%w: DQ (region code) is required", ErrConfig)
	case c.Gryhm == "":
		return fmt.Errorf("%w: Gryhm (login account) is required", ErrConfig)
	case c.TaskIDLife < 0:
		return fmt.Errorf("%w: TaskIDLife must not be negative", ErrConfig)
	case c.PollAfter < 0:
		return fmt.Errorf("%w: PollAfter must not be negative", ErrConfig)
	case c.HTTP.Timeout < 0 || c.HTTP.MaxConns < 0 || c.HTTP.MaxResponseBytes < 0:
		return fmt.Errorf("%w: HTTP settings must not be negative", ErrConfig)
	}
	return nil
}

// redactURL is s, a URL for an error message, without the user
// information before its host: a password, or a token in the user's
// place, which url.URL.Redacted would show. It cuts s at its last "@"
// instead of parsing it, as the URL of an error may be one url.Parse
// cannot read (a password that is not URL-safe, a mistyped port).
func redactURL(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	if scheme := strings.Index(s, "://"); scheme >= 0 && scheme < at {
		return s[:scheme+3] + "[redacted]" + s[at:]
	}
	return "[redacted]" + s[at:]
}
