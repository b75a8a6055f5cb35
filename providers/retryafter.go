package providers

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter is the longest wait a Retry-After header is honoured for
// (ParseRetryAfter): a broken or hostile header must not park a request, or
// a seller's calls, for hours. The pipeline's own backoff stops at
// 2 minutes (pipeline.DefaultRetryMax); a provider may ask for more, up to
// this.
const MaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads the value of an HTTP Retry-After header (RFC 9110
// §10.2.3): delay-seconds ("7") or an HTTP-date ("Fri, 20 Nov 2026
// 02:00:07 GMT", or the obsolete RFC 850 and asctime forms), the date
// counted from now. It returns 0, no hint, for an empty or unreadable value
// (a fraction, a sign, other text; surrounding blanks are ignored) and for a date that is not after now,
// and at most MaxRetryAfter (a number of seconds too large to represent
// included).
func ParseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if digits(value) {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) { // err: out of range
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(value)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), MaxRetryAfter)
}

// digits reports whether s is made of ASCII digits only.
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
