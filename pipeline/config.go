package pipeline

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// Config configures a Pipeline. Zero fields take the documented defaults.
type Config struct {
	// Subjects names the request, result and dead-letter subjects.
	Subjects schemas.Subjects
	// MaxDeliver is the number of deliveries a request gets; on the last one
	// a request that is still waiting is given up: "failed" result, dead
	// letter, Term (one its provider answered "later", once its order has
	// also had MaxDeliver such answers: see order.exhausted). 0 means 20.
	// The JetStream consumer itself sets no limit (Topology.Consumer), so
	// that a crash during the give-up is repaired by one more delivery
	// instead of leaving the message stranded.
	MaxDeliver int
	// Retry is the backoff for transient provider answers: the n-th failure
	// in a row (schemas.OrderRecord.Failures, which an answer that the
	// provider has the order starts again) waits about RetryBase×2^(n-1)
	// with jitter, at most RetryMax, but at least the provider's hint
	// (providers.Outcome.RetryAfter), even beyond RetryMax: a Retry-After
	// header gives at most providers.MaxRetryAfter (5 minutes). The
	// consumer's own failures (the order store, publishing) count the
	// message's deliveries instead. 0 means 1s and 2m.
	RetryBase, RetryMax time.Duration
	// PollSchedule is how long to wait before asking again about an order the
	// provider accepted: the n-th time a delivery ends with the order still
	// accepted (schemas.OrderRecord.Polls), it waits PollSchedule[n-1] (the
	// last entry repeats). nil means 1s, 2s, 4s, 8s, 15s, 30s, 60s.
	PollSchedule []time.Duration
	// InlinePolls is how many times to ask right away, within the same
	// delivery, about an order the provider has just accepted; 0 means 1,
	// negative means never.
	InlinePolls int
	// RedConfirmWait is how long an order is polled while the provider waits
	// for someone outside it (providers.Outcome.AwaitingParty: the buyer
	// confirming a red confirmation form, Nuonuo billStatus 02/03, jumdata's
	// 202 on red-invoice/result): those polls do not count against
	// MaxDeliver, and the order is given up only once it has waited this
	// long (Nuonuo voids a form left unconfirmed for 72 h, a final answer).
	// After RedConfirmSlowAfter of waiting it is asked about at most every
	// RedConfirmSlowPoll. A form the provider is still processing (Nuonuo's
	// 15) keeps the MaxDeliver budget. 0 means 74h.
	RedConfirmWait time.Duration
	// HoldProbe is how often a seller whose provider needs a person to act
	// is probed with one of its orders; its other orders wait. 0 means 1m.
	HoldProbe time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultMaxDeliver = 20
	DefaultRetryBase  = time.Second
	DefaultRetryMax   = 2 * time.Minute
	DefaultHoldProbe  = time.Minute
	// DefaultRedConfirmWait is Config.RedConfirmWait's default: the 72 h a
	// buyer has to confirm a red confirmation form, and a margin.
	DefaultRedConfirmWait = 74 * time.Hour
	// RedConfirmSlowAfter is how long a red confirmation form waits for the
	// other party before it is polled at most every RedConfirmSlowPoll.
	RedConfirmSlowAfter = time.Hour
	// RedConfirmSlowPoll is the polling interval of a red confirmation form
	// that has waited RedConfirmSlowAfter: a day of polls is 144 queries,
	// not 1,440.
	RedConfirmSlowPoll = 10 * time.Minute
	// DefaultDocumentTimeout is KeeperConfig.Timeout's default.
	DefaultDocumentTimeout = 10 * time.Second
)

// DefaultPollSchedule is the polling schedule for accepted orders.
var DefaultPollSchedule = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.MaxDeliver < 0 {
		errs = append(errs, errors.New("max deliver must not be negative"))
	}
	if c.MaxDeliver == 1 {
		errs = append(errs, errors.New("max deliver 1 leaves no room to retry; use at least 2"))
	}
	if c.RetryBase < 0 || c.RetryMax < 0 || c.HoldProbe < 0 || c.RedConfirmWait < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryBase > c.RetryMax {
		errs = append(errs, fmt.Errorf("retry base %s is above retry max %s", c.RetryBase, c.RetryMax))
	}
	for _, d := range c.PollSchedule {
		if d <= 0 {
			errs = append(errs, errors.New("poll schedule entries must be positive"))
			break
		}
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if len(c.PollSchedule) == 0 {
		c.PollSchedule = DefaultPollSchedule
	}
	if c.InlinePolls == 0 {
		c.InlinePolls = 1
	}
	if c.HoldProbe == 0 {
		c.HoldProbe = DefaultHoldProbe
	}
	if c.RedConfirmWait == 0 {
		c.RedConfirmWait = DefaultRedConfirmWait
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// retryDelay is the wait before the next delivery after the n-th transient
// failure in a row: exponential with jitter in [d/2, d), capped at RetryMax,
// or hint where that is longer (hint is not capped here: the provider
// clients bound it).
func (c Config) retryDelay(n int, hint time.Duration) time.Duration {
	d := doubling(c.RetryBase, c.RetryMax, n)
	d = d/2 + rand.N(d/2+1)
	return min(max(d, hint), max(c.RetryMax, hint))
}

// doubling is base doubled n-1 times, at most max: the n-th step of an
// exponential backoff.
func doubling(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// pollDelay is the wait before asking again about an order accepted for
// the n-th time, at least the provider's hint, with a little jitter.
func (c Config) pollDelay(n int, hint time.Duration) time.Duration {
	i := min(max(n-1, 0), len(c.PollSchedule)-1)
	d := c.PollSchedule[i]
	d += rand.N(d/10 + 1)
	return max(d, hint)
}
