package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"
)

func TestInboxPrefixCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, prefix string
		ok           bool
	}{
		{"unset is nats.go's _INBOX", "", true},
		{"a role's inbox", "_INBOX_orders", true},
		{"several tokens", "replies.orders", true},
		{"full wildcard", "_INBOX.>", false},
		{"token wildcard", "_INBOX.*", false},
		{"wildcard inside a token", "_INBOX_*", false},
		{"trailing dot", "_INBOX_orders.", false},
		{"leading dot", "._INBOX", false},
		{"empty token", "a..b", false},
		{"space", "_INBOX orders", false},
		{"tab", "_INBOX\torders", false},
		{"no-break space", "_INBOX\u00a0orders", false},
		{"control character", "_INBOX\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &globals{server: "nats://127.0.0.1:4222", prefix: schemas.DefaultPrefix, timeout: time.Second, inboxPrefix: tc.prefix}
			err := g.check()
			if tc.ok {
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				return
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "--inbox-prefix") || !strings.Contains(err.Error(), "is not a subject prefix") {
				t.Fatalf("check: %v, want a usage error about --inbox-prefix", err)
			}
		})
	}

	t.Run("command line", func(t *testing.T) {
		// Refused before connecting: the address has no server.
		_, errOut, code := runCLI(t, "", "--server", unreachableURL(t), "--inbox-prefix", "_INBOX.>", "status", nuonuoSeller, "X-1")
		if code != exitUsage || !strings.Contains(errOut, `--inbox-prefix "_INBOX.>" is not a subject prefix`) {
			t.Fatalf("exit %d\n%s", code, errOut)
		}
	})
}

func TestInboxPrefixFromEnvironment(t *testing.T) {
	t.Setenv("INVOICE_INBOX_PREFIX", "_INBOX_sre")
	g := &globals{}
	fs := pflag.NewFlagSet("publisher", pflag.ContinueOnError)
	g.register(fs)
	if g.inboxPrefix != "_INBOX_sre" {
		t.Errorf("inbox prefix %q from INVOICE_INBOX_PREFIX, want _INBOX_sre", g.inboxPrefix)
	}
	if err := fs.Parse([]string{"--inbox-prefix", "_INBOX_orders"}); err != nil || g.inboxPrefix != "_INBOX_orders" {
		t.Errorf("--inbox-prefix over the environment: %q %v", g.inboxPrefix, err)
	}
}

// TestInboxPrefix runs the subcommands as a user that may subscribe only
// to _INBOX_client.>: with --inbox-prefix _INBOX_client every one of them
// gets its replies — stream lookups, PubAcks (synchronous and bench's
// asynchronous ones), status replies, pulled results and dead letters,
// key-value reads of the replay marks, and bench's second connection for
// the baseline relay — and without it the user is refused.
func TestInboxPrefix(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	as := func(t *testing.T, args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, "", append([]string{"--server", c.inboxURL(), "--inbox-prefix", inboxPrefix, "--timeout", "10s"}, args...)...)
	}

	t.Run("without the prefix the user is refused", func(t *testing.T) {
		out, errOut, code := runCLI(t, "", "--server", c.inboxURL(), "--timeout", "1s", "status", nuonuoSeller, "X-1")
		if code != exitTrouble {
			t.Fatalf("status without --inbox-prefix: exit %d, want %d\n%s%s", code, exitTrouble, out, errOut)
		}
	})

	t.Run("publish and follow results", func(t *testing.T) {
		if out, errOut, code := as(t, "publish", writeFile(t, "p.json", issueRequest(t, jumdataSeller, "INBOX-1"))); code != exitOK || !strings.Contains(out+errOut, "published 1,") {
			t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := as(t, "publish", "--wait", writeFile(t, "w.json", issueRequest(t, nuonuoSeller, "INBOX-2"))); code != exitOK || !strings.Contains(out+errOut, "issued") {
			t.Fatalf("publish --wait: exit %d\n%s%s", code, out, errOut)
		}
		c.waitStatus(t, jumdataSeller, "INBOX-1", schemas.StatusIssued, 15*time.Second)
		if out, errOut, code := as(t, "tail", "--all", "--count", "2", "--for", "10s", "--json"); code != exitOK || strings.Count(out, `"status":"issued"`) != 2 {
			t.Fatalf("tail: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := as(t, "status", jumdataSeller, "INBOX-1"); code != exitOK || !strings.Contains(out, "issued") {
			t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("dead letters", func(t *testing.T) {
		if _, err := c.js.Publish(t.Context(), schemas.Subjects{}.Request(nuonuoSeller), []byte(`{"kind":`)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a dead letter", 10*time.Second, func() bool { return c.streamState(pipeline.DefaultDeadLetterStream).Msgs == 1 })
		if out, errOut, code := as(t, "dlq", "list", "--json"); code != exitOK || !strings.Contains(out, `"reason":"malformed"`) {
			t.Fatalf("dlq list: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := as(t, "dlq", "show", "1"); code != exitOK {
			t.Fatalf("dlq show: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := as(t, "dlq", "replay", "--seq", "1"); code != exitOK || !strings.Contains(out+errOut, "replayed 1,") {
			t.Fatalf("dlq replay: exit %d\n%s%s", code, out, errOut)
		}
		if out, errOut, code := as(t, "dlq", "replay", "--seq", "1"); code != exitOK || !strings.Contains(out+errOut, "already replayed 1,") {
			t.Fatalf("second replay: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("bench with its baseline relay", func(t *testing.T) {
		out, errOut, code := as(t, "bench", "-n", "20", "--baseline", "--workers", "2", "--window", "8", "--timeout", "1m")
		if code != exitOK || !strings.Contains(out, "baseline: published 20 of 20") || !strings.Contains(out, "pipeline: published 20 of 20") {
			t.Fatalf("bench: exit %d\n%s%s", code, out, errOut)
		}
	})
}

// TestPermissionViolationIsReported: a request the server refused (here the
// reply subscription of a user left on nats.go's default inbox) times out;
// the publisher reports the permissions violation, naming the subject and
// the user, instead of a server that did not answer.
func TestPermissionViolationIsReported(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	for _, args := range [][]string{
		{"status", nuonuoSeller, "X-1"},
		{"dlq", "list"},
	} {
		t.Run(args[0], func(t *testing.T) {
			out, errOut, code := runCLI(t, "", append([]string{"--server", env.inboxURL(), "--timeout", "1s"}, args...)...)
			if code != exitTrouble || !strings.Contains(errOut, `permission denied for subscription to "_INBOX.`) || !strings.Contains(errOut, "(user "+inboxUser+")") ||
				strings.Contains(errOut, "did not answer") || strings.Contains(errOut, "no consumer answered") || strings.Contains(errOut, inboxPassword) {
				t.Errorf("exit %d, want %d and the permissions violation\n%s%s", code, exitTrouble, out, errOut)
			}
		})
	}

	t.Run("a refused publish", func(t *testing.T) {
		g := &globals{server: env.inboxURL(), inboxPrefix: inboxPrefix, prefix: schemas.DefaultPrefix, timeout: time.Second}
		s, err := g.connect()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		const op = "read the state of the request stream INVOICE_REQUESTS"
		if msg := s.jsError(context.DeadlineExceeded, op).Error(); !strings.Contains(msg, "did not answer") {
			t.Errorf("nothing refused: %s", msg)
		}
		s.refusals.handle(s.nc, nil, fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "$JS.API.STREAM.INFO.INVOICE_REQUESTS"`))
		want := op + `: permission denied for publish to "$JS.API.STREAM.INFO.INVOICE_REQUESTS" (user client) on NATS at ` + s.where()
		if msg := s.jsError(context.DeadlineExceeded, op).Error(); !strings.HasPrefix(msg, want) {
			t.Errorf("got  %s\nwant %s...", msg, want)
		}
		// Reported once: a later timeout of another operation in the same
		// session is not that refusal.
		if msg := s.jsError(context.DeadlineExceeded, "read the dead letters").Error(); !strings.Contains(msg, "did not answer") || strings.Contains(msg, "permission denied") {
			t.Errorf("a later timeout: %s", msg)
		}
		if msg := s.pubError(jetstream.ErrAsyncPublishTimeout).Error(); strings.Contains(msg, "permission denied") {
			t.Errorf("a later publish: %s", msg)
		}
		s.refusals.handle(s.nc, nil, fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Publish to "invoice.request.X.0"`))
		if msg := s.pubError(jetstream.ErrAsyncPublishTimeout).Error(); !strings.Contains(msg, `permission denied for publish to "invoice.request.X.0"`) {
			t.Errorf("publish: %s", msg)
		}
	})

	t.Run("a refused subscription stays in force", func(t *testing.T) {
		g := &globals{server: env.inboxURL(), inboxPrefix: inboxPrefix, prefix: schemas.DefaultPrefix, timeout: time.Second}
		s, err := g.connect()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.refusals.handle(s.nc, nil, fmt.Errorf("%w: %s", nats.ErrPermissionViolation, `Permissions Violation for Subscription to "_INBOX.abc.*"`))
		for _, op := range []string{"find the stream of requests", "read the dead letters"} {
			if msg := s.jsError(context.DeadlineExceeded, op).Error(); !strings.HasPrefix(msg, op+`: permission denied for subscription to "_INBOX.abc.*"`) {
				t.Errorf("%s: %s", op, msg)
			}
		}
	})
}
