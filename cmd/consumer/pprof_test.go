package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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

// TestPprofCmdlineHidesPasswords: /debug/pprof/cmdline shows the command
// line, which may carry a NATS URL with its password (--nats-url
// nats://user:password@host, or --nats-url=...): the password is hidden,
// as in the consumer's logs, and the rest is shown as given.
func TestPprofCmdlineHidesPasswords(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"consumer", "--nats-url", "nats://svc:s3cret-one@nats-a:4222,nats://svc:s3cret-two@nats-b:4222",
		"--nats-url=tls://svc:s3cret-three@nats-c:4222", "--workers", "64"}
	srv := httptest.NewServer(newPprofHandler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := strings.Split(string(body), "\x00")
	if strings.Contains(string(body), "s3cret") || len(got) != 6 || got[0] != "consumer" || got[4] != "--workers" || got[5] != "64" ||
		!strings.Contains(got[2], "@nats-a:4222") || !strings.HasPrefix(got[3], "--nats-url=tls://") {
		t.Fatalf("cmdline %q", got)
	}
}
