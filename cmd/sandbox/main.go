package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(2)
	}
}

// settings are the sandbox's flags.
type settings struct {
	listen    string
	publicURL string
	faceAuth  string
	cfg       sandbox.Config
}

// flagSet returns the sandbox's flags, read into s.
func flagSet(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.StringVar(&s.listen, "listen", "127.0.0.1:9100", "address to serve on (loopback: the sandbox is for local use)")
	fs.StringVar(&s.publicURL, "public-url", "", "address clients use, for document links (default http://<listen>)")
	cfg := &s.cfg
	fs.StringVar(&cfg.Nuonuo.AppKey, "nuonuo-app-key", sandbox.DefaultNuonuoAppKey, "Nuonuo appKey the sandbox accepts")
	fs.StringVar(&cfg.Nuonuo.AppSecret, "nuonuo-app-secret", sandbox.DefaultNuonuoAppSecret, "Nuonuo appSecret that signs calls")
	fs.StringVar(&cfg.Nuonuo.Token, "nuonuo-token", sandbox.DefaultNuonuoToken, "static Nuonuo access token accepted from the start (tokens from /accessToken work too)")
	fs.DurationVar(&cfg.Nuonuo.TokenTTL, "nuonuo-token-ttl", 24*time.Hour, "life of tokens issued by /accessToken")
	fs.Var(intflag.NewInt(&cfg.Nuonuo.TokenCallLimit, 50), "nuonuo-token-call-limit", "the `number` of calls /accessToken allows before 070306 (negative: unlimited)")
	fs.Var(intflag.NewInt(&cfg.Nuonuo.PendingQueries, 0), "nuonuo-pending-queries", "queryInvoiceResult answers 20 (issuing) this `number` of times before 2 (issued)")
	fs.Var(intflag.NewInt(&cfg.Nuonuo.RedConfirmSteps, 0), "nuonuo-red-confirm-steps", "the `number` of queries a red confirmation form spends in each waiting status")
	fs.StringVar(&cfg.Jumdata.AppID, "jumdata-app-id", sandbox.DefaultJumdataAppID, "jumdata appId the sandbox accepts")
	fs.StringVar(&cfg.Jumdata.AppSecret, "jumdata-app-secret", sandbox.DefaultJumdataSecret, "jumdata appSecret that signs calls")
	fs.StringVar(&cfg.Jumdata.Token, "jumdata-token", sandbox.DefaultJumdataToken, "jumdata login token business calls must carry")
	fs.BoolVar(&cfg.Jumdata.AnySeller, "jumdata-any-seller", false, "accept every jumdata seller with any dq and gryhm (default: only "+sandbox.DefaultJumdataSeller+")")
	fs.Var(intflag.NewInt(&cfg.Jumdata.PendingPolls, 0), "jumdata-pending-polls", "blue-invoice/submit answers 202 this `number` of times per taskId before 200")
	fs.Var(intflag.NewInt(&cfg.Jumdata.RedPendingPolls, 0), "jumdata-red-pending-polls", "red-invoice/result answers 202 this `number` of times per form before 200")
	fs.StringVar(&cfg.Jumdata.RedAwait, "jumdata-red-await", "", "whose confirmation a red confirmation form not issued at once waits for: \"\" (nobody's: issued after the pending polls), seller (red-confirmation/confirm issues it) or buyer (the seller's confirm is refused)")
	fs.DurationVar(&cfg.Latency, "latency", 0, "latency added to every provider call")
	f := &cfg.Faults
	fs.Var(intflag.NewUint64(&f.Seed, 1), "fault-seed", "the `number` seeding the fault generator: the same seed gives the same faults")
	fs.Float64Var(&f.Error5xx, "fault-5xx", 0, "probability of HTTP 503 before the call takes effect")
	fs.DurationVar(&f.RetryAfter, "fault-retry-after", 0, "Retry-After sent with --fault-5xx's 503, in whole seconds (0: none, as neither provider documents one)")
	fs.Float64Var(&f.Reset, "fault-reset", 0, "probability of a connection reset before the call takes effect")
	fs.Float64Var(&f.Drop, "fault-drop", 0, "probability of accept-then-drop: the call takes effect and the answer is lost")
	fs.Float64Var(&f.Garbage, "fault-garbage", 0, "probability that the call takes effect and the answer is garbage")
	fs.Float64Var(&f.SpikeRate, "fault-spike-rate", 0, "probability of a latency spike")
	fs.DurationVar(&f.SpikeLatency, "fault-spike", 0, "length of a latency spike (make it longer than the client's timeout to test in-doubt calls)")
	fs.Float64Var(&f.RateLimit, "rate-limit", 0, "calls per second per seller above which 070201 / 609 is answered (0: no limit)")
	fs.Var(intflag.NewInt(&f.RateBurst, 0), "rate-burst", "burst of the rate limit, a `number` of calls (default: the rate)")
	fs.StringVar(&s.faceAuth, "face-auth", "", "comma-separated jumdata sellers that must pass face authentication (311) first")
	return fs
}

// parseFlags reads and checks the flags.
func parseFlags(args []string) (*settings, error) {
	s := &settings{}
	fs := flagSet(s)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	cfg, f := &s.cfg, &s.cfg.Faults
	switch cfg.Jumdata.RedAwait {
	case "", sandbox.RedAwaitSeller, sandbox.RedAwaitBuyer:
	default:
		return nil, fmt.Errorf("--jumdata-red-await is \"\", %s or %s, got %q", sandbox.RedAwaitSeller, sandbox.RedAwaitBuyer, cfg.Jumdata.RedAwait)
	}
	if s.faceAuth != "" {
		f.FaceAuthSellers = strings.Split(s.faceAuth, ",")
	}
	if f.RetryAfter < 0 {
		return nil, fmt.Errorf("--fault-retry-after must not be negative, got %s", f.RetryAfter)
	}
	for _, p := range []float64{f.Error5xx, f.Reset, f.Drop, f.Garbage, f.SpikeRate} {
		if p < 0 || p > 1 {
			return nil, fmt.Errorf("fault probabilities are between 0 and 1, got %v", p)
		}
	}
	return s, nil
}

func run(args []string) error {
	s, err := parseFlags(args)
	if err != nil {
		return err
	}
	cfg := s.cfg

	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	base := s.publicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	cfg.BaseURL = base
	sb := sandbox.New(cfg)
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "provider sandbox (not real invoices) on %s\n  nuonuo:  %s/open/v1/services  token %s/accessToken  appKey %s  seller %s\n  jumdata: %s/tax/v3/makeout/...  appId %s  seller %s (dq %s, gryhm %s)\n  stats:   %s/_sandbox/stats   faults: %s/_sandbox/faults\n",
		base, base, base, cfg.Nuonuo.AppKey, sandbox.DefaultNuonuoSeller, base, cfg.Jumdata.AppID, sandbox.DefaultJumdataSeller,
		sandbox.DefaultJumdataDQ, sandbox.DefaultJumdataGryhm, base, base)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
