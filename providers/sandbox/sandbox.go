package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/time/rate"
)

// Default credentials, the values the consumer's default mode and the README
// use. They are sandbox credentials, not secrets.
const (
	DefaultNuonuoAppKey    = "SandboxAppKey"
	DefaultNuonuoAppSecret = "SandboxAppSecret"
	DefaultNuonuoToken     = "sandbox-nuonuo-token"
	DefaultJumdataAppID    = "sandbox-app-id"
	DefaultJumdataSecret   = "sandbox-app-secret"
	DefaultJumdataToken    = "sandbox-jumdata-token"
	// DefaultNuonuoSeller is Nuonuo's documented sandbox seller tax number.
	DefaultNuonuoSeller = "339902999999789113"
	// DefaultJumdataSeller is the sandbox's jumdata seller.
	DefaultJumdataSeller = "91330106MA2AYNWD8M"
	// DefaultJumdataDQ and DefaultJumdataGryhm are the sandbox seller's login
	// fields at jumdata.
	DefaultJumdataDQ    = "330000"
	DefaultJumdataGryhm = "13800000000"
)

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// Nuonuo configures the Nuonuo open platform API.
	Nuonuo NuonuoConfig
	// Jumdata configures the jumdata tax/v3/makeout API.
	Jumdata JumdataConfig
	// Latency is added to every API call (not to /_sandbox endpoints).
	Latency time.Duration
	// Faults are injected into API calls; they can be changed at run time
	// with SetFaults or POST /_sandbox/faults.
	Faults Faults
	// BaseURL is the address clients reach the sandbox at, used in document
	// links (pdfUrl). Set it, or call SetBaseURL once listening.
	BaseURL string
	// Now is the clock; nil means time.Now. Tests move it to expire tokens.
	Now func() time.Time
}

// NuonuoConfig configures the Nuonuo side of the sandbox.
type NuonuoConfig struct {
	// AppKey, AppSecret identify the one app the sandbox knows.
	AppKey, AppSecret string
	// Token is an access token valid from the start (the "static token" of
	// configuration); tokens fetched from /accessToken are valid too.
	Token string
	// TokenTTL is the life of fetched tokens; 0 means 24 hours.
	TokenTTL time.Duration
	// TokenCallLimit is how many /accessToken calls are allowed (Nuonuo:
	// 50 per 30 days, then 070306); 0 means 50, negative means unlimited.
	TokenCallLimit int
	// PendingQueries is how many queryInvoiceResult calls answer status 20
	// (issuing) before an accepted invoice shows 2 (issued).
	PendingQueries int
	// SplitLimit is the largest total (tax included) of one invoice; larger
	// orders are split into several invoices, more than 10 is E9154. 0 means
	// 100000.
	SplitLimit decimal.Decimal
	// RedConfirmSteps is how many queryInvoiceRedConfirm calls a form spends
	// in each waiting status before it is confirmed.
	RedConfirmSteps int
}

// JumdataConfig configures the jumdata side of the sandbox.
type JumdataConfig struct {
	// AppID, AppSecret identify the one account the sandbox knows.
	AppID, AppSecret string
	// Token is the login token the business calls must carry.
	Token string
	// Logins maps a seller tax number to its login fields; nil means the
	// default seller with DefaultJumdataDQ and DefaultJumdataGryhm. Any
	// seller is accepted when Logins is empty and AnySeller is true.
	Logins map[string]Login
	// AnySeller accepts every seller with any dq and gryhm.
	AnySeller bool
	// PendingPolls is how many times a blue-invoice/submit answers 202 per
	// taskId before 200.
	PendingPolls int
	// RedPendingPolls is how many times red-invoice/result answers 202 per
	// form before 200.
	RedPendingPolls int
	// RedAwait says whose confirmation a red confirmation form waits for
	// when it is not issued at once (seed 004 §5): "" nobody's, the tax
	// bureau issues it after RedPendingPolls polls of red-invoice/result
	// or RedSettleAfter; RedAwaitSeller the seller's, red-invoice/result answers
	// 202 until red-confirmation/confirm issues it; RedAwaitBuyer the
	// buyer's, red-confirmation/confirm is refused (399) and the buyer
	// agrees after RedPendingPolls polls or RedSettleAfter.
	RedAwait string
	// RedSettleAfter is how long a pending red confirmation form waits
	// before it completes on its own; 0 means 5 minutes. A longer wait
	// models a form the buyer has not confirmed yet (the tax bureau gives
	// the buyer 72 hours), which stays pending while other forms are made
	// for the same blue invoice.
	RedSettleAfter time.Duration
}

// The values of JumdataConfig.RedAwait.
const (
	// RedAwaitSeller: a form is issued only by the seller's
	// red-confirmation/confirm.
	RedAwaitSeller = "seller"
	// RedAwaitBuyer: a form waits for the buyer, and the seller's
	// red-confirmation/confirm is refused.
	RedAwaitBuyer = "buyer"
)

// Login is a seller's login at jumdata.
type Login struct {
	// DQ is the region code, Gryhm the login account.
	DQ, Gryhm string
}

// Faults say which faults to inject into API calls, deterministically from
// Seed: the same seed and the same sequence of calls give the same faults.
type Faults struct {
	// Seed seeds the fault generator; changing Faults restarts it.
	Seed uint64 `json:"seed"`
	// Error5xx is the probability that a call is refused with HTTP 503
	// before it takes effect.
	Error5xx float64 `json:"error5xx"`
	// RetryAfter, when above 0, is sent with Error5xx's 503 answers as a
	// Retry-After header in whole seconds (rounded up), as a server in
	// maintenance may; 0 sends none, as neither provider documents one.
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// Reset is the probability that the connection is closed before the call
	// takes effect.
	Reset float64 `json:"reset"`
	// Drop is the probability of accept-then-drop: the call takes effect
	// (an invoice may be created) and the answer is lost.
	Drop float64 `json:"drop"`
	// Garbage is the probability that the call takes effect and the answer
	// is replaced by bytes that are not JSON.
	Garbage float64 `json:"garbage"`
	// SpikeRate is the probability that a call is delayed by SpikeLatency
	// (on top of Config.Latency), for example beyond the client's timeout.
	SpikeRate    float64       `json:"spikeRate"`
	SpikeLatency time.Duration `json:"spikeLatency"`
	// RateLimit answers "too frequent" (Nuonuo 070201, jumdata 609) to calls
	// above this many per second per seller; 0 means no limit.
	RateLimit float64 `json:"rateLimit"`
	// RateBurst is the rate limit's bucket size; 0 means max(1, RateLimit).
	RateBurst int `json:"rateBurst"`
	// FaceAuthSellers are jumdata sellers that must scan their face: their
	// calls answer 311 until auth/qrcode and auth/result are called.
	FaceAuthSellers []string `json:"faceAuthSellers,omitempty"`
	// Script answers chosen calls with a given code, before they take
	// effect: the way tests reach every row of a client's classification
	// table. Each entry is used Times times, in order.
	Script []ScriptedAnswer `json:"script,omitempty"`
}

// ScriptedAnswer makes the sandbox answer matching calls with a fixed code
// in the provider's envelope, or with a bare HTTP status.
type ScriptedAnswer struct {
	// Provider is "nuonuo" or "jumdata".
	Provider string `json:"provider"`
	// Method matches the call: the Nuonuo method header
	// ("nuonuo.ElectronInvoice.requestBillingNew") or the jumdata path below
	// /tax/v3/makeout/ ("blue-invoice/submit"); empty matches every call.
	Method string `json:"method,omitempty"`
	// Code is the provider code to answer ("E9338", "602").
	Code string `json:"code,omitempty"`
	// Message is the message to answer with; empty means a stock one.
	Message string `json:"message,omitempty"`
	// HTTPStatus, when not 0, answers with this bare HTTP status instead.
	HTTPStatus int `json:"httpStatus,omitempty"`
	// RetryAfter, when not empty, is sent as the answer's Retry-After
	// header, as it is (delay-seconds, an HTTP-date, or anything else a
	// test needs a client to cope with).
	RetryAfter string `json:"retryAfter,omitempty"`
	// AfterEffect, with HTTPStatus, lets the call take effect first (an
	// invoice may be created) and answers the bare status instead of the
	// handler's answer: a gateway's 503 for a call its service carried
	// out. Without it a scripted answer comes before the call has any
	// effect.
	AfterEffect bool `json:"afterEffect,omitempty"`
	// Times is how many calls the entry answers; 0 means 1.
	Times int `json:"times,omitempty"`
}

// Server serves the Nuonuo and jumdata APIs. Create it with New.
type Server struct {
	cfg   Config
	now   func() time.Time
	stats *statsBook
	docs  *documents

	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	limiters map[string]*rate.Limiter
	baseURL  string
	invoiceN uint64

	nuonuo  *nuonuoState
	jumdata *jumdataState
}

// New returns a Server for cfg with its defaults applied.
func New(cfg Config) *Server {
	n := &cfg.Nuonuo
	setDefault(&n.AppKey, DefaultNuonuoAppKey)
	setDefault(&n.AppSecret, DefaultNuonuoAppSecret)
	setDefault(&n.Token, DefaultNuonuoToken)
	if n.TokenTTL <= 0 {
		n.TokenTTL = 24 * time.Hour
	}
	if n.TokenCallLimit == 0 {
		n.TokenCallLimit = 50
	}
	if !n.SplitLimit.IsPositive() {
		n.SplitLimit = decimal.NewFromInt(100000)
	}
	j := &cfg.Jumdata
	setDefault(&j.AppID, DefaultJumdataAppID)
	setDefault(&j.AppSecret, DefaultJumdataSecret)
	setDefault(&j.Token, DefaultJumdataToken)
	if j.Logins == nil && !j.AnySeller {
		j.Logins = map[string]Login{DefaultJumdataSeller: {DQ: DefaultJumdataDQ, Gryhm: DefaultJumdataGryhm}}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		cfg:     cfg,
		now:     now,
		stats:   newStatsBook(),
		docs:    newDocuments(),
		baseURL: cfg.BaseURL,
	}
	s.setFaultsLocked(cfg.Faults)
	s.nuonuo = newNuonuoState()
	s.jumdata = newJumdataState()
	return s
}

func setDefault(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

// SetBaseURL sets the address used in document links.
func (s *Server) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = u
	s.mu.Unlock()
}

// SetFaults replaces the injected faults and restarts their generator.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.setFaultsLocked(f)
	s.mu.Unlock()
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

func (s *Server) setFaultsLocked(f Faults) {
	f.Script = append([]ScriptedAnswer(nil), f.Script...)
	s.faults = f
	s.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
	s.limiters = map[string]*rate.Limiter{}
}

// Stats returns what the sandbox has done so far.
func (s *Server) Stats() Stats { return s.stats.snapshot(true) }

// Handler returns the HTTP handler serving every endpoint:
//
//	POST /open/v1/services            Nuonuo open platform methods
//	POST /accessToken                 Nuonuo token endpoint
//	POST /tax/v3/makeout/...          jumdata
//	GET  /_sandbox/stats              accounting (JSON); ?summary=1 omits per-order detail
//	GET  /_sandbox/faults             the faults in force (JSON)
//	POST /_sandbox/faults             replace the faults (JSON body)
//	GET  /_sandbox/documents/{name}   invoice PDFs
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /open/v1/services", s.api(nuonuoSpec, s.nuonuoServices))
	mux.HandleFunc("POST /accessToken", s.nuonuoToken)
	mux.Handle("POST /tax/v3/makeout/", s.api(jumdataSpec, s.jumdataMakeout))
	mux.HandleFunc("GET /_sandbox/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.stats.snapshot(r.URL.Query().Get("summary") == ""))
	})
	mux.HandleFunc("GET /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sandbox/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		writeJSON(w, http.StatusOK, f)
	})
	mux.HandleFunc("GET /_sandbox/documents/{name}", s.serveDocument)
	return mux
}

// providerSpec tells the fault injector how a provider names the seller of a
// call and answers "too frequent".
type providerSpec struct {
	name        string
	seller      func(*http.Request) string
	method      func(*http.Request) string
	rateLimited func(http.ResponseWriter)
	// answer writes code and message in the provider's envelope.
	answer func(w http.ResponseWriter, code, message string)
}

// api wraps a provider handler with latency and fault injection. Faults that
// strike before the handler (5xx, reset, rate limit) leave no effect; drop
// and garbage let the handler run and then lose or spoil its answer.
func (s *Server) api(p providerSpec, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.request(p.name)
		if a, ok := s.scripted(p.name, p.method(r)); ok {
			s.stats.fault("scripted")
			if a.RetryAfter != "" {
				w.Header().Set("Retry-After", a.RetryAfter)
			}
			if a.HTTPStatus != 0 {
				if a.AfterEffect {
					h(&recorder{header: http.Header{}}, r) // its answer is lost
				}
				http.Error(w, http.StatusText(a.HTTPStatus)+" (sandbox script)", a.HTTPStatus)
				return
			}
			p.answer(w, a.Code, a.Message)
			return
		}
		seller := p.seller(r)
		f := s.draw(seller)
		delay := s.cfg.Latency
		if f.spike {
			delay += s.Faults().SpikeLatency
			s.stats.fault("latency_spike")
		}
		if delay > 0 && !SleepUntil(r.Context(), time.Now().Add(delay)) {
			return
		}
		switch {
		case f.limited:
			s.stats.fault("rate_limited")
			p.rateLimited(w)
			return
		case f.error5xx:
			s.stats.fault("error_5xx")
			if ra := s.Faults().RetryAfter; ra > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10))
			}
			http.Error(w, "503 Service Unavailable (sandbox fault)", http.StatusServiceUnavailable)
			return
		case f.reset:
			s.stats.fault("reset")
			hangUp(w)
			return
		}
		if !f.drop && !f.garbage {
			h(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		h(rec, r)
		if f.drop {
			s.stats.fault("drop")
			hangUp(w)
			return
		}
		s.stats.fault("garbage")
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>\x00\xff"))
	})
}

// scripted takes the next scripted answer for a call, if any.
func (s *Server) scripted(provider, method string) (ScriptedAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults.Script {
		a := &s.faults.Script[i]
		if a.Provider != provider || (a.Method != "" && a.Method != method) {
			continue
		}
		if a.Times <= 0 {
			a.Times = 1
		}
		got := *a
		a.Times--
		if a.Times == 0 {
			s.faults.Script = append(s.faults.Script[:i], s.faults.Script[i+1:]...)
		}
		return got, true
	}
	return ScriptedAnswer{}, false
}

type drawn struct {
	limited, error5xx, reset, drop, garbage, spike bool
}

// draw decides the faults of one call. The generator is shared and guarded,
// so a given seed yields the same sequence of decisions.
func (s *Server) draw(seller string) drawn {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	var d drawn
	if f.RateLimit > 0 {
		lim := s.limiters[seller]
		if lim == nil {
			burst := f.RateBurst
			if burst <= 0 {
				burst = max(1, int(f.RateLimit))
			}
			lim = rate.NewLimiter(rate.Limit(f.RateLimit), burst)
			s.limiters[seller] = lim
		}
		d.limited = !lim.AllowN(s.now(), 1)
	}
	roll := func(p float64) bool { return p > 0 && s.rng.Float64() < p }
	d.spike = roll(f.SpikeRate)
	d.error5xx = roll(f.Error5xx)
	d.reset = roll(f.Reset)
	d.drop = roll(f.Drop)
	d.garbage = roll(f.Garbage)
	return d
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err != nil {
		// HTTP/2 cannot hijack: abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST rather than FIN: a reset, as the fault says
	}
	_ = conn.Close()
}

// recorder buffers a handler's answer so that a fault can discard it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// nextInvoiceNumbers returns the numbers of a new invoice: a 12-digit VAT
// code, an 8-digit number and a 20-digit fully digital number, all unique in
// this sandbox.
func (s *Server) nextInvoiceNumbers() (code, number, digital string) {
	s.mu.Lock()
	s.invoiceN++
	n := s.invoiceN
	s.mu.Unlock()
	return "033002600111", fmt.Sprintf("%08d", n%100000000), fmt.Sprintf("2633200000%010d", n)
}

// documentURL is the address of a stored document.
func (s *Server) documentURL(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL + "/_sandbox/documents/" + name
}
