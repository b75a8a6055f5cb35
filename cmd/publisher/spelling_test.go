package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestDLQSellerSpelling: a malformed message published on a seller's
// subject in lower case is dead-lettered under the seller token as
// published (invoice.dlq.malformed.<lower case>). dlq list / replay
// --seller must find it, whichever spelling the SRE types.
func TestDLQSellerSpelling(t *testing.T) {
	c := startConsumer(t, consumerOptions{pipeline: fast})
	lower := strings.ToLower(jumdataSeller)
	if lower == jumdataSeller {
		t.Skip("the demo seller has no letters")
	}
	ctx := context.Background()
	if _, err := c.js.Publish(ctx, schemas.Subjects{}.Request(lower), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter", 10*time.Second, func() bool { return len(dlqEntries(t, c)) == 1 })
	all := dlqEntries(t, c)
	for _, seller := range []string{jumdataSeller, lower} {
		if es := dlqEntries(t, c, "--seller", seller); len(es) != 1 {
			t.Errorf("dlq list --seller %s: %d dead letter(s), want the one on %s", seller, len(es), all[0].Subject)
		}
		out, _, _ := c.cli(t, "dlq", "replay", "--dry-run", "--seller", seller)
		if !strings.Contains(out, "#1 ") {
			t.Errorf("dlq replay --dry-run --seller %s does not select #1:\n%s", seller, out)
		}
	}
}

// TestTailSellerSpelling: the subject_spelling rejection of a request
// published on the lower-case subject is filed under that token; tail
// --seller must show it (the status command's own hint says to look there).
func TestTailSellerSpelling(t *testing.T) {
	c := startConsumer(t, consumerOptions{pipeline: fast})
	lower := strings.ToLower(jumdataSeller)
	if _, err := c.js.Publish(context.Background(), schemas.Subjects{}.Request(lower), issueRequest(t, jumdataSeller, "LOWER-1")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rejection", 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.all) == 1
	})
	for _, seller := range []string{jumdataSeller, lower} {
		out, errOut, code := c.cli(t, "tail", "--all", "--seller", seller, "--count", "1", "--for", "2s")
		if code != exitOK || !strings.Contains(out, "LOWER-1") {
			t.Errorf("tail --all --seller %s: exit %d\n%s%s", seller, code, out, errOut)
		}
	}
}

// TestEmptySellerIsAUsageError: an empty --seller, a script's unset
// "$SELLER" in the README's "publisher dlq replay --reason action_required
// --seller SELLER", must not widen the selection to every seller: every
// command whose --seller filters refuses it, and the replay republishes
// nothing.
func TestEmptySellerIsAUsageError(t *testing.T) {
	env := MustNATS(t)
	putExhaustedFor(t, env, nuonuoSeller, "N-1")
	putExhaustedFor(t, env, jumdataSeller, "J-1")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"dlq replay", []string{"dlq", "replay", "--reason", "exhausted", "--seller", ""}},
		{"dlq replay, blank", []string{"dlq", "replay", "--seller", "  "}},
		{"dlq replay --dry-run", []string{"dlq", "replay", "--dry-run", "--seller", ""}},
		{"dlq list", []string{"dlq", "list", "--seller", ""}},
		{"tail", []string{"tail", "--all", "--count", "1", "--for", "1s", "--seller", ""}},
		{"tail, an empty one of several", []string{"tail", "--all", "--count", "1", "--for", "1s", "--seller", jumdataSeller + ","}},
		{"bench", []string{"bench", "-n", "1", "--seller", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := env.cli(t, tc.args...)
			// The message quotes the empty value, not the flag's list.
			if code != exitUsage || !strings.Contains(errOut, "which would select every seller") || strings.Contains(errOut, `"[`) {
				t.Errorf("exit %d, want %d (usage)\n%s%s", code, exitUsage, out, errOut)
			}
		})
	}
	if n := len(env.requests()); n != 0 {
		t.Errorf("%d request(s) republished, want none", n)
	}
	// A seller given is still a filter.
	out, errOut, code := env.cli(t, "dlq", "replay", "--dry-run", "--seller", jumdataSeller)
	if code != exitOK || !strings.Contains(out, "would replay 1,") {
		t.Errorf("dlq replay --dry-run --seller %s: exit %d\n%s%s", jumdataSeller, code, out, errOut)
	}
}
