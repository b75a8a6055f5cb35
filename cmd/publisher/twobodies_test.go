package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestPublishWaitTwoRequestsForOneOrder: one run publishes two bodies for
// the same order (a request and its corrected copy). The consumer answers
// each: the first processed is issued, the other is a conflict (the order
// number is taken by another body). publish --wait matches each result to
// its request by fingerprint, shows both and counts each once; the conflict
// fails the run. The first result received is not the answer of both.
func TestPublishWaitTwoRequestsForOneOrder(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	const orderNo = "TWO-BODIES"
	first := issueRequest(t, nuonuoSeller, orderNo)
	corrected := []byte(strings.Replace(string(first), `"pushMode"`, `"remark":"corrected","pushMode"`, 1))
	f := writeFile(t, "two.ndjson", first, corrected)
	out, errOut, code := c.cli(t, "publish", "--wait", "--timeout", "20s", f)
	if !strings.Contains(out, "published 2, duplicates 0") {
		t.Fatalf("exit %d, not both published\n%s%s", code, out, errOut)
	}
	waitFor(t, "both results", 10*time.Second, func() bool { return len(c.resultsFor(nuonuoSeller, orderNo)) >= 2 })
	results := c.resultsFor(nuonuoSeller, orderNo)
	statuses := make([]schemas.Status, len(results))
	for i, r := range results {
		statuses[i] = r.Status
	}
	slices.Sort(statuses)
	if !slices.Equal(statuses, []schemas.Status{"conflict", "issued"}) {
		t.Fatalf("the consumer answered %v, want one issued and one conflict", statuses)
	}
	lines := regexp.MustCompile(`(?m)^\S+ \S+  (issued|conflict) +  339902999999789113:TWO-BODIES `).FindAllStringSubmatch(out, -1)
	var shown []string
	for _, l := range lines {
		shown = append(shown, l[1])
	}
	slices.Sort(shown)
	if code != exitFailed || !strings.Contains(out, "results: issued 1, conflict 1\n") || !slices.Equal(shown, []string{"conflict", "issued"}) {
		t.Errorf("exit %d (want %d), results shown %q; want each request's own result shown and counted once (issued 1, conflict 1)\n%s%s",
			code, exitFailed, shown, out, errOut)
	}
}
