package nuonuo

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/fapiaohub/invoicer/providers"
)

// DefaultTokenURL is the production token endpoint of self-use apps.
const DefaultTokenURL = "https://open.nuonuo.com/accessToken"

// productionHost is the host of the production API (BaseURL), whose
// tokens come from DefaultTokenURL, on another host.
const productionHost = "sdk.nuonuo.com"

// TokenURLFor returns the token endpoint that goes with the platform at
// baseURL: DefaultTokenURL for production (https://sdk.nuonuo.com), else
// baseURL + "/accessToken", where this project's sandbox serves it. Any
// other platform's token endpoint (Nuonuo's own sandbox, a gateway) must be
// configured.
func TokenURLFor(baseURL string) string {
	if u, err := url.Parse(baseURL); err == nil && strings.EqualFold(u.Hostname(), productionHost) {
		return DefaultTokenURL
	}
	return strings.TrimRight(baseURL, "/") + "/accessToken"
}

// Token is an access token as kept in a TokenStore, with the lease an
// instance takes while it fetches the next one.
type Token struct {
	// AccessToken is the token itself: a secret.
	AccessToken string `json:"accessToken,omitempty"`
	// IssuedAt and ExpiresAt bound the token's life; a zero ExpiresAt marks
	// a token that must not be used (invalidated).
	IssuedAt  time.Time `json:"issuedAt,omitzero"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// LeaseOwner is the instance fetching a new token, until LeaseUntil.
	// While the lease holds, other instances keep using AccessToken if it
	// has not expired, or wait for the new one.
	LeaseOwner string    `json:"leaseOwner,omitempty"`
	LeaseUntil time.Time `json:"leaseUntil,omitzero"`
}

// usable reports whether the token may be sent at now.
func (t Token) usable(now time.Time) bool {
	return t.AccessToken != "" && now.Before(t.ExpiresAt)
}

// refreshAt is when the token should be replaced: refreshBefore ahead of
// expiry, but never earlier than half its life, so that a short-lived token
// is not refreshed on every call.
func (t Token) refreshAt(refreshBefore time.Duration) time.Time {
	ahead := refreshBefore
	if life := t.ExpiresAt.Sub(t.IssuedAt); !t.IssuedAt.IsZero() && ahead > life/2 {
		ahead = life / 2
	}
	return t.ExpiresAt.Add(-ahead)
}

// leased reports whether someone other than owner holds the lease at now.
func (t Token) leased(owner string, now time.Time) bool {
	return t.LeaseOwner != "" && t.LeaseOwner != owner && now.Before(t.LeaseUntil)
}

// Errors of a TokenStore.
var (
	// ErrNoToken is returned by TokenStore.Load when nothing is stored
	// under the key.
	ErrNoToken = errors.New("no nuonuo token stored")
	// ErrTokenConflict is returned by TokenStore.Store when the stored
	// revision is not the expected one: someone else wrote first.
	ErrTokenConflict = errors.New("nuonuo token store conflict")
)

// Errors of a TokenSource.
var (
	// ErrTokenRefused is wrapped by a *TokenError when the token endpoint
	// refused the credentials (070304, 070305, 070307, 070315, ...).
	ErrTokenRefused = errors.New("nuonuo token endpoint refused the request")
	// ErrTokenLimit is wrapped by a *TokenError when the token endpoint's
	// call limit (50 per 30 days) is reached: 070306.
	ErrTokenLimit = errors.New("nuonuo token call limit reached")
	// ErrTokenWait is returned when another instance held the refresh lease
	// and no token appeared in time.
	ErrTokenWait = errors.New("timed out waiting for another instance to refresh the nuonuo token")
	// ErrTokenMismatch is returned by Token while a 070301 incident holds:
	// the platform refused a token (070301), the one fetched to replace it
	// was refused too, and fetching more would only spend the token
	// endpoint's 50 calls per 30 days. An operator must check the app's
	// credentials and authorization. The Client wraps it in the Err of the
	// ActionRequired outcomes of such calls.
	ErrTokenMismatch = errors.New("nuonuo refused a freshly fetched access token (070301)")
)

// TokenError is the token endpoint's refusal. It never carries a secret:
// bracketed values in the provider's description are removed.
type TokenError struct {
	// Code is the provider's code ("070306") or "http_<status>".
	Code string
	// Message is the provider's description, redacted.
	Message string
}

// Error implements error.
func (e *TokenError) Error() string {
	return fmt.Sprintf("nuonuo token endpoint: %s %s", e.Code, e.Message)
}

// Unwrap returns ErrTokenLimit for 070306, else ErrTokenRefused.
func (e *TokenError) Unwrap() error {
	if e.Code == codeTokenLimit {
		return ErrTokenLimit
	}
	return ErrTokenRefused
}

// TokenStore keeps one Token per key where every consumer instance sees it.
// The consumer backs it with a JetStream KV bucket; MemoryTokenStore serves
// tests and single-process use.
//
// Implementations are safe for concurrent use.
type TokenStore interface {
	// Load returns the token stored under key and its revision, or
	// ErrNoToken when there is none.
	Load(ctx context.Context, key string) (Token, uint64, error)
	// Store writes tok under key if the stored revision is rev (0: nothing
	// may be stored yet) and returns the new revision. It returns
	// ErrTokenConflict when someone else wrote first; nothing is written
	// then.
	Store(ctx context.Context, key string, tok Token, rev uint64) (uint64, error)
}

// MemoryTokenStore is a TokenStore in memory, for tests and single-process
// use. The zero value is ready to use. It is safe for concurrent use.
type MemoryTokenStore struct {
	mu   sync.Mutex
	toks map[string]memEntry
	rev  uint64
}

type memEntry struct {
	tok Token
	rev uint64
}

// Load implements TokenStore.
func (m *MemoryTokenStore) Load(_ context.Context, key string) (Token, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.toks[key]
	if !ok {
		return Token{}, 0, ErrNoToken
	}
	return e.tok, e.rev, nil
}

// Store implements TokenStore.
func (m *MemoryTokenStore) Store(_ context.Context, key string, tok Token, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.toks == nil {
		m.toks = map[string]memEntry{}
	}
	if m.toks[key].rev != rev {
		return 0, ErrTokenConflict
	}
	m.rev++
	m.toks[key] = memEntry{tok: tok, rev: m.rev}
	return m.rev, nil
}

// TokenSourceConfig configures a TokenSource. Zero fields take the
// documented defaults.
type TokenSourceConfig struct {
	// TokenURL is the token endpoint; empty means DefaultTokenURL. The
	// sandbox serves it at <sandbox>/accessToken.
	TokenURL string
	// AppKey and AppSecret are the app's credentials (client_id and
	// client_secret). Required.
	AppKey, AppSecret string
	// Store shares the token between instances; nil means a private
	// MemoryTokenStore (one process only).
	Store TokenStore
	// Key is the store key; empty means "nuonuo." + AppKey with characters
	// outside [A-Za-z0-9_-] replaced by '_' (a valid JetStream KV key),
	// followed, for any TokenURL but DefaultTokenURL, by "." and 16 hex
	// characters of the TokenURL's SHA-256. One app key may be configured
	// against production and a sandbox, whose tokens differ; production's
	// key is the one it always was, so that a token stored before the
	// key named the endpoint is still used, not fetched again.
	Key string
	// RefreshBefore is how long before expiry the token is replaced; 0
	// means 1 hour. It is capped at half the token's life.
	RefreshBefore time.Duration
	// LeaseTTL is how long an instance may take to fetch a token before
	// another may try; 0 means 30 seconds. Keep it above the HTTP timeout.
	LeaseTTL time.Duration
	// PollInterval is how often a waiting instance reads the store; 0 means
	// 100 milliseconds.
	PollInterval time.Duration
	// WaitTimeout bounds one Token call that waits for another instance;
	// 0 means twice LeaseTTL.
	WaitTimeout time.Duration
	// RefusalHold is how long a failed call of the token endpoint (a
	// refusal such as bad credentials or 070306, an answer without a
	// token, a timeout) is answered from memory instead of calling the
	// endpoint again, which would spend another of its 50 calls; 0 means 1
	// minute. Each further failure in a row doubles the hold, up to
	// maxRefusalHold (or RefusalHold, if longer), and a token fetched
	// starts it again. An early refresh (RefreshBefore) that fails in any
	// way is tried again after as long, the token in hand used meanwhile.
	RefusalHold time.Duration
	// MismatchHold is how long Token fails fast with ErrTokenMismatch once
	// a token fetched to replace one refused with 070301 was refused too.
	// After it, one call is let through with the token in hand, to see
	// whether the platform takes it now; refused, the hold starts again.
	// No token is fetched because of 070301 until a call is accepted again
	// or the process restarts; the usual refresh ahead of expiry still
	// happens. 0 means 1 minute.
	MismatchHold time.Duration
	// HTTPClient calls the token endpoint; nil means
	// providers.NewHTTPClient(providers.HTTPConfig{}).
	HTTPClient *http.Client
	// Observer receives one report per token endpoint call, method
	// "accessToken".
	Observer providers.Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Owner names this instance in leases; empty means a random id.
	Owner string
}

// Validate reports a missing or malformed setting.
func (c TokenSourceConfig) Validate() error {
	if c.AppKey == "" {
		return errors.New("nuonuo token source: AppKey is required")
	}
	if c.AppSecret == "" {
		return errors.New("nuonuo token source: AppSecret is required")
	}
	if c.TokenURL != "" {
		if err := checkURL(c.TokenURL); err != nil {
			return fmt.Errorf("nuonuo token source: TokenURL: %w", err)
		}
	}
	if c.RefreshBefore < 0 || c.LeaseTTL < 0 || c.PollInterval < 0 || c.WaitTimeout < 0 || c.RefusalHold < 0 || c.MismatchHold < 0 {
		return errors.New("nuonuo token source: durations must not be negative")
	}
	return nil
}

// TokenSource hands out the app's access token, shared by every worker of
// every instance: the token endpoint allows only 50 calls per 30 days.
//
// It refreshes ahead of expiry, once: in process through a single flight, and
// across instances through a short lease taken in the TokenStore with
// compare-and-swap. While one instance fetches, the others keep using the
// still-valid old token, or, when there is none, wait by polling the store.
//
// A token the platform refuses (070301) is replaced once per incident; if
// the replacement is refused too, Token fails fast with ErrTokenMismatch
// (see TokenSourceConfig.MismatchHold) instead of fetching again. This state
// is kept per process: each instance spends at most one 070301-driven token
// call per incident.
//
// It is safe for concurrent use.
type TokenSource struct {
	cfg    TokenSourceConfig
	key    string
	store  TokenStore
	client *http.Client
	obs    providers.Observer
	now    func() time.Time
	owner  string
	group  singleflight.Group

	mu           sync.Mutex
	cached       Token     // the last token this instance read or fetched
	bad          string    // a token known not to match (Invalidate)
	refused      error     // the endpoint's last failure (a *TokenError, or no token in its answer) ...
	refusedUntil time.Time // ... answered from memory until then
	failures     int       // the endpoint's failures in a row, for the hold's doubling
	// refreshFailed: an early refresh failed (the endpoint unreachable or
	// refusing) while the token in hand still works; until then that token
	// is used without trying again.
	refreshFailed time.Time

	// The 070301 incident (see mismatched and accepted).
	replaced      string      // the token last replaced because of 070301, until a call is accepted
	mismatch      bool        // the replacement was refused too: no more 070301-driven fetches
	mismatchUntil time.Time   // while mismatch: Token fails fast until then
	watching      atomic.Bool // replaced != "" || mismatch: accepted has work to do
}

// NewTokenSource returns a TokenSource for cfg.
func NewTokenSource(cfg TokenSourceConfig) (*TokenSource, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.RefreshBefore == 0 {
		cfg.RefreshBefore = time.Hour
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.WaitTimeout == 0 {
		cfg.WaitTimeout = 2 * cfg.LeaseTTL
	}
	if cfg.RefusalHold == 0 {
		cfg.RefusalHold = time.Minute
	}
	if cfg.MismatchHold == 0 {
		cfg.MismatchHold = time.Minute
	}
	ts := &TokenSource{
		cfg:    cfg,
		key:    cfg.Key,
		store:  cfg.Store,
		client: cfg.HTTPClient,
		obs:    providers.ObserverOrNop(cfg.Observer),
		now:    cfg.Now,
		owner:  cfg.Owner,
	}
	if ts.key == "" {
		ts.key = "nuonuo." + keySafe.ReplaceAllString(cfg.AppKey, "_")
		if cfg.TokenURL != DefaultTokenURL {
			sum := sha256.Sum256([]byte(cfg.TokenURL))
			ts.key += "." + hex.EncodeToString(sum[:8])
		}
	}
	if ts.store == nil {
		ts.store = &MemoryTokenStore{}
	}
	if ts.client == nil {
		ts.client = providers.NewHTTPClient(providers.HTTPConfig{})
	}
	ts.client = noRedirects(ts.client)
	if ts.now == nil {
		ts.now = time.Now
	}
	if ts.owner == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		ts.owner = hex.EncodeToString(b[:])
	}
	return ts, nil
}

var keySafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// Token returns a token to send. It calls the token endpoint only when the
// stored token is missing, invalidated or due for refresh, and then once for
// all callers of all instances sharing the store.
//
// While a 070301 incident holds (a replacement token was refused too), Token
// returns ErrTokenMismatch without calling anything, except for one caller
// per MismatchHold, which gets the token in hand to probe the platform with.
//
// Errors: a *TokenError (wrapping ErrTokenLimit or ErrTokenRefused) when the
// endpoint refused; ErrTokenMismatch during a 070301 incident; ErrTokenWait
// when another instance's refresh did not finish in time; a store or
// transport error otherwise; ctx's error when it ends first.
func (ts *TokenSource) Token(ctx context.Context) (string, error) {
	now := ts.now()
	ts.mu.Lock()
	if ts.mismatch {
		if now.Before(ts.mismatchUntil) {
			ts.mu.Unlock()
			return "", ErrTokenMismatch
		}
		ts.mismatchUntil = now.Add(ts.cfg.MismatchHold) // this caller probes
	}
	tok := ts.cached
	ts.mu.Unlock()
	if tok.AccessToken != "" && now.Before(tok.refreshAt(ts.cfg.RefreshBefore)) {
		return tok.AccessToken, nil
	}
	// The shared work must not die with the first caller's ctx: the others
	// wait for it too. It is bounded by WaitTimeout.
	ch := ts.group.DoChan(ts.key, func() (any, error) {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ts.cfg.WaitTimeout)
		defer cancel()
		return ts.obtain(wctx)
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

// obtain reads the store and, when needed, takes the lease and fetches a
// token. It runs once per instance at a time (single flight).
func (ts *TokenSource) obtain(ctx context.Context) (string, error) {
	for {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("%w: %w", ErrTokenWait, err)
		}
		now := ts.now()
		ts.mu.Lock()
		bad, cached := ts.bad, ts.cached
		ts.mu.Unlock()
		stored, rev, err := ts.store.Load(ctx, ts.key)
		switch {
		case errors.Is(err, ErrNoToken):
			stored, rev = Token{}, 0
		case err != nil && cached.usable(now) && cached.AccessToken != bad:
			// The store is unavailable; the token in hand still works.
			return cached.AccessToken, nil
		case err != nil:
			return "", fmt.Errorf("load nuonuo token: %w", err)
		}
		good := stored.usable(now) && stored.AccessToken != bad
		if good && now.Before(stored.refreshAt(ts.cfg.RefreshBefore)) {
			ts.remember(stored)
			return stored.AccessToken, nil
		}
		if stored.leased(ts.owner, now) {
			if good {
				// Someone is fetching the next one; this one still works.
				return stored.AccessToken, nil
			}
			if err := providers.Sleep(ctx, ts.cfg.PollInterval); err != nil {
				return "", fmt.Errorf("%w: %w", ErrTokenWait, err)
			}
			continue
		}
		if good && now.Before(ts.refreshRetry()) {
			// An early refresh failed a moment ago: keep the token in
			// hand, and do not spend another call yet.
			return stored.AccessToken, nil
		}
		if held := ts.refusal(now); held != nil {
			// The endpoint refused a moment ago: do not spend another call.
			if good {
				return stored.AccessToken, nil
			}
			return "", held
		}
		lease := stored
		lease.LeaseOwner, lease.LeaseUntil = ts.owner, now.Add(ts.cfg.LeaseTTL)
		leaseRev, err := ts.store.Store(ctx, ts.key, lease, rev)
		if errors.Is(err, ErrTokenConflict) {
			continue // someone else wrote first: read again
		}
		if err != nil {
			return "", fmt.Errorf("lease nuonuo token: %w", err)
		}
		fresh, err := ts.fetch(ctx)
		if err != nil {
			// Release the lease so that another instance may try; if this
			// fails too, the lease expires by itself.
			_, _ = ts.store.Store(ctx, ts.key, stored, leaseRev)
			// Every failure is held, not only a refusal: an answer
			// without a token or a timeout may have spent a call too, and
			// calling again at once for each request would spend the
			// endpoint's 50 calls in minutes.
			ts.mu.Lock()
			ts.failures++
			hold := refusalHold(ts.cfg.RefusalHold, ts.failures)
			ts.refused, ts.refusedUntil = err, ts.now().Add(hold)
			if good {
				ts.refreshFailed = ts.now().Add(hold)
			}
			ts.mu.Unlock()
			if good {
				// An early refresh: the token in hand works until it
				// expires, and the refresh is tried again after the hold.
				ts.remember(stored)
				return stored.AccessToken, nil
			}
			return "", err
		}
		ts.mu.Lock()
		ts.bad = "" // the endpoint's new token is good, whatever it looks like
		ts.failures = 0
		ts.mu.Unlock()
		// A conflict here means the lease expired and someone else took
		// over; the token fetched is valid all the same.
		_, _ = ts.store.Store(ctx, ts.key, fresh, leaseRev)
		ts.remember(fresh)
		return fresh.AccessToken, nil
	}
}

// maxRefusalHold bounds the doubling of RefusalHold over failures in a row
// of the token endpoint: at most one call an hour while it keeps failing.
const maxRefusalHold = time.Hour

// refusalHold is how long the endpoint is left alone after the n-th failure
// in a row: base, doubled for each failure before, up to maxRefusalHold
// (or base, if longer).
func refusalHold(base time.Duration, n int) time.Duration {
	hold := base
	for i := 1; i < n && hold < maxRefusalHold; i++ {
		hold *= 2
	}
	return max(base, min(hold, maxRefusalHold))
}

// refreshRetry is when an early refresh that failed may be tried again.
func (ts *TokenSource) refreshRetry() time.Time {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.refreshFailed
}

// refusal returns the endpoint's last refusal while it is held.
func (ts *TokenSource) refusal(now time.Time) error {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if now.Before(ts.refusedUntil) {
		return ts.refused
	}
	return nil
}

func (ts *TokenSource) remember(t Token) {
	t.LeaseOwner, t.LeaseUntil = "", time.Time{}
	ts.mu.Lock()
	ts.cached = t
	ts.mu.Unlock()
}

// mismatched records that the platform answered 070301 to tok and reports
// whether the caller should repeat its call with a new token. It is true
// the first time in an incident (tok is invalidated: the next Token fetches
// a replacement, once for all workers) and for late callers that still sent
// the token already replaced. It is false, and the incident starts or goes
// on, when the refused token is not the one replaced: the replacement was
// refused too, so another fetch would be refused as well and would only
// spend the endpoint's 50 calls per 30 days. Token then fails fast with
// ErrTokenMismatch for MismatchHold.
func (ts *TokenSource) mismatched(ctx context.Context, tok string) bool {
	now := ts.now()
	ts.mu.Lock()
	if ts.mismatch || (ts.replaced != "" && tok != ts.replaced) {
		ts.mismatch, ts.mismatchUntil = true, now.Add(ts.cfg.MismatchHold)
		ts.watching.Store(true)
		ts.mu.Unlock()
		return false
	}
	ts.replaced = tok
	ts.watching.Store(true)
	ts.mu.Unlock()
	// Idempotent: a late caller finds tok already replaced and changes
	// nothing, but is sure not to be handed tok again.
	ts.Invalidate(ctx, tok)
	return true
}

// replacement is Token for repeating a call whose token, refused, the
// platform answered 070301 and mismatched invalidated; with refused empty it
// is Token. A refresh under way when the refusal was recorded had read the
// store before it, and may still hand refused out to everyone waiting for
// it (a refresh ahead of expiry that fails keeps the token in hand). Sent
// again, it would be refused again, and that second refusal of the same
// token would be taken for the replacement's: the call would answer
// action-required and its seller be held for a person, though no
// replacement was tried. So refused is invalidated again and Token asked
// once more: a refresh begun after the refusal was recorded never returns
// it, and fetches no more tokens than the incident's one.
func (ts *TokenSource) replacement(ctx context.Context, refused string) (string, error) {
	tok, err := ts.Token(ctx)
	if err != nil || refused == "" || tok != refused {
		return tok, err
	}
	ts.Invalidate(ctx, refused)
	return ts.Token(ctx)
}

// accepted records that the platform took tok: a 070301 incident, if any,
// is over, and the next 070301 may refresh once again. It costs an atomic
// load when there is no incident.
func (ts *TokenSource) accepted(tok string) {
	if !ts.watching.Load() {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if tok == ts.replaced {
		return // a late answer to the refused token tells nothing
	}
	ts.replaced, ts.mismatch, ts.mismatchUntil = "", false, time.Time{}
	ts.watching.Store(false)
}

// Invalidate records that bad was refused (070301): the next Token fetches a
// new one, unless someone already replaced bad in the store. It is safe to
// call from many workers at once: only the first changes the store.
//
// A Client does not call it on every 070301: only for the first refusal of
// an incident (see TokenSource). Calling it directly bypasses that limit.
func (ts *TokenSource) Invalidate(ctx context.Context, bad string) {
	if bad == "" {
		return
	}
	ts.mu.Lock()
	ts.bad = bad
	if ts.cached.AccessToken == bad {
		ts.cached = Token{}
	}
	ts.mu.Unlock()
	for range 5 {
		stored, rev, err := ts.store.Load(ctx, ts.key)
		if err != nil || stored.AccessToken != bad || stored.ExpiresAt.IsZero() {
			return // nothing stored, already replaced, or already invalidated
		}
		stored.ExpiresAt = time.Time{}
		if _, err := ts.store.Store(ctx, ts.key, stored, rev); !errors.Is(err, ErrTokenConflict) {
			return
		}
	}
}

// fetch calls the token endpoint once.
func (ts *TokenSource) fetch(ctx context.Context) (Token, error) {
	form := url.Values{
		"client_id":     {ts.cfg.AppKey},
		"client_secret": {ts.cfg.AppSecret},
		"grant_type":    {"client_credentials"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return Token{}, fmt.Errorf("nuonuo token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=UTF-8")
	start := time.Now()
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.obs.ObserveCall(providerName, "accessToken", codeTransport, time.Since(start))
		return Token{}, fmt.Errorf("nuonuo token endpoint: %w", err)
	}
	body, err := providers.ReadBody(resp, providers.DefaultMaxResponseBytes)
	if err != nil {
		ts.obs.ObserveCall(providerName, "accessToken", codeUnreadable, time.Since(start))
		return Token{}, fmt.Errorf("nuonuo token endpoint: %w", err)
	}
	var a tokenAnswer
	decodeErr := json.Unmarshal(body, &a)
	code := string(a.Error)
	if code == "" && a.AccessToken == "" {
		code = string(a.Code)
	}
	if code == "" && resp.StatusCode != http.StatusOK {
		code = "http_" + strconv.Itoa(resp.StatusCode)
	}
	switch {
	case code != "":
		ts.obs.ObserveCall(providerName, "accessToken", code, time.Since(start))
		msg := a.ErrorDescription
		if msg == "" {
			msg = a.Describe
		}
		return Token{}, &TokenError{Code: code, Message: redact(msg)}
	case decodeErr != nil || a.AccessToken == "":
		ts.obs.ObserveCall(providerName, "accessToken", codeUnreadable, time.Since(start))
		return Token{}, errors.New("nuonuo token endpoint: answer has no access_token")
	}
	ts.obs.ObserveCall(providerName, "accessToken", "ok", time.Since(start))
	// A token lives 24 hours. An expires_in beyond maxTokenLife is not
	// believed (past about 292 years in seconds it would overflow into a
	// token already expired, fetched again on every call): the documented
	// life is taken instead, as for one that cannot be read.
	life := 24 * time.Hour
	if n, err := strconv.ParseInt(strings.TrimSpace(string(a.ExpiresIn)), 10, 64); err == nil && n > 0 && n <= int64(maxTokenLife/time.Second) {
		life = time.Duration(n) * time.Second
	}
	now := ts.now()
	return Token{AccessToken: a.AccessToken, IssuedAt: now, ExpiresAt: now.Add(life)}, nil
}

// maxTokenLife is the longest expires_in believed.
const maxTokenLife = 30 * 24 * time.Hour

// bracketed matches the "[xxxx]" in descriptions such as
// "Incorrect clientSecret[xxxx]", which may echo a credential.
var bracketed = regexp.MustCompile(`\[[^\]]*\]`)

func redact(s string) string {
	s = bracketed.ReplaceAllString(s, "[…]")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
