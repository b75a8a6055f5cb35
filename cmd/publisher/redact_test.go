package main

import (
	"strings"
	"testing"
)

// TestSchemelessURLSecretStaysOutOfTheMessage: nats.go reads a server URL
// without a scheme ("user:pass@host:4222", "token@host:4222") as a nats://
// one, and so must the redaction of the error that names it.
func TestSchemelessURLSecretStaysOutOfTheMessage(t *testing.T) {
	hostPort := strings.TrimPrefix(unreachableURL(t), "nats://")
	for _, u := range []string{"ops:s3cret@" + hostPort, "s3cret@" + hostPort} {
		_, msg, code := runCLI(t, "", "--server", u, "--timeout", "1s", "status", nuonuoSeller, "X")
		if code != exitTrouble || strings.Contains(msg, "s3cret") || !strings.Contains(msg, "cannot reach NATS") {
			t.Errorf("--server %s: exit %d, message %q", u, code, msg)
		}
	}
}

// TestUnreadableURLSecretStaysOutOfTheMessage: nats.go's error for a server
// URL that url.Parse cannot read (a mistyped port) quotes the URL whole,
// password or token included; the message does not.
func TestUnreadableURLSecretStaysOutOfTheMessage(t *testing.T) {
	for _, u := range []string{"nats://ops:s3cret@127.0.0.1:42x2", "nats://s3cret@127.0.0.1:42x2", "ops:s3cret@127.0.0.1:42x2"} {
		_, msg, code := runCLI(t, "", "--server", u, "--timeout", "1s", "status", nuonuoSeller, "X")
		if code != exitTrouble || strings.Contains(msg, "s3cret") {
			t.Errorf("--server %s: exit %d, message %q", u, code, msg)
		}
	}
}

// TestNATSURLSecretStaysOutOfTheHelp: NATS_URL is --server's default, and
// the help prints defaults: a password or token in it is hidden there as
// in errors.
func TestNATSURLSecretStaysOutOfTheHelp(t *testing.T) {
	for _, u := range []string{"nats://ops:s3cret@127.0.0.1:4222", "nats://s3cret@127.0.0.1:4222"} {
		t.Setenv("NATS_URL", u)
		out, errOut, code := runCLI(t, "", "status", "--help")
		if code != exitOK || strings.Contains(out+errOut, "s3cret") || !strings.Contains(out, "127.0.0.1:4222") {
			t.Errorf("NATS_URL=%s: exit %d, help:\n%s%s", u, code, out, errOut)
		}
	}
}

// TestURLRedactedOnceInTheMessage: each URL in nats.go's error is replaced
// by its redacted form once. A token that the redacted form ends with
// ("x" in xxxxx@host) was replaced again inside the replacement, and the
// message named a server "xxxxxxxxx@host" that was never given.
func TestURLRedactedOnceInTheMessage(t *testing.T) {
	_, msg, code := runCLI(t, "", "--server", "x@127.0.0.1:42x2", "--timeout", "1s", "status", nuonuoSeller, "X")
	if code != exitTrouble || !strings.Contains(msg, `"nats://xxxxx@127.0.0.1:42x2"`) || strings.Contains(msg, "xxxxxx") {
		t.Errorf("exit %d, message %q; want the URL as nats://xxxxx@127.0.0.1:42x2", code, msg)
	}
}
