package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPprofHandler: --pprof serves the runtime profiles, and nothing else.
func TestPprofHandler(t *testing.T) {
	srv := httptest.NewServer(newPprofHandler())
	defer srv.Close()
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/debug/pprof/", "goroutine", http.StatusOK},
		{"/debug/pprof/heap?debug=1", "heap profile", http.StatusOK},
		{"/metrics", "", http.StatusNotFound},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d, want %d with %q", tc.path, resp.StatusCode, tc.status, tc.want)
		}
	}
}
