package providers_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fapiaohub/invoicer/providers"
)

// The providers' client speaks HTTP/1.1 to a TLS server that offers
// HTTP/2, so that header names keep the case Nuonuo asks for (HTTP/2 sends
// them in lower case).
func TestHTTPClientSpeaksHTTP11(t *testing.T) {
	var proto string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto = r.Proto
		_, _ = io.WriteString(w, "ok")
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	c := providers.NewHTTPClient(providers.HTTPConfig{})
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header["accessToken"] = []string{"t"}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := providers.ReadBody(resp, 1<<10); err != nil {
		t.Fatal(err)
	}
	if resp.Proto != "HTTP/1.1" || proto != "HTTP/1.1" {
		t.Fatalf("answered over %s, asked over %s; want HTTP/1.1", resp.Proto, proto)
	}
}
