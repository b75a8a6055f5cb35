package providers

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// HTTPConfig configures the HTTP client a provider uses. The zero value is
// ready to use.
type HTTPConfig struct {
	// Timeout bounds one call, from dialling to the last byte of the answer;
	// 0 means 15 seconds.
	Timeout time.Duration
	// MaxConns is the connection pool size per host, sized to the
	// consumer's worker count; 0 means 128.
	MaxConns int
	// MaxResponseBytes bounds an answer's body; 0 means 4 MiB. A longer
	// answer is unreadable (and so in doubt).
	MaxResponseBytes int64
}

// Defaults of HTTPConfig.
const (
	DefaultTimeout          = 15 * time.Second
	DefaultMaxConns         = 128
	DefaultMaxResponseBytes = 4 << 20
)

// WithDefaults returns c with zero fields set to their defaults.
func (c HTTPConfig) WithDefaults() HTTPConfig {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return c
}

// NewHTTPClient returns a client with the timeout, a connection pool that
// keeps MaxConns idle connections per host for reuse, and no cookie jar. It
// speaks HTTP/1.1 only, as the providers' own SDKs do: HTTP/2 sends every
// header name in lower case, and Nuonuo asks for its headers (accessToken,
// userTax) in exactly the case it documents.
func NewHTTPClient(c HTTPConfig) *http.Client {
	c = c.WithDefaults()
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     false, // with a DialContext of its own: HTTP/1.1 only
		MaxIdleConns:          c.MaxConns * 4,
		MaxIdleConnsPerHost:   c.MaxConns,
		MaxConnsPerHost:       c.MaxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: c.Timeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: c.Timeout}
}

// ErrResponseTooLarge is returned by ReadBody when an answer exceeds the limit.
var ErrResponseTooLarge = errors.New("provider response too large")

// ReadBody reads at most limit bytes of resp.Body and closes it.
func ReadBody(resp *http.Response, limit int64) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
	}
	return b, nil
}
