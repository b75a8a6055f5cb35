package main

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
)

// publishResult publishes a result event as the consumer does.
func (e *natsEnv) publishResult(t *testing.T, res schemas.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub := pipeline.NewJetStreamPublisher(e.js, schemas.Subjects{})
	if err := pub.PublishResult(ctx, &res, "result:test:"+res.OrderNo); err != nil {
		t.Fatal(err)
	}
}

func tailResult(seller, orderNo string, st schemas.Status) schemas.Result {
	at := time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC)
	r := schemas.Result{
		SchemaVersion: "1", SellerTaxNum: seller, OrderNo: orderNo, Kind: schemas.KindIssue, Status: st,
		Provider: "nuonuo", Attempts: 1, ReceivedAt: at, CompletedAt: at.Add(time.Second), Invoices: []schemas.Invoice{},
	}
	switch st {
	case schemas.StatusIssued:
		r.Invoices = []schemas.Invoice{
			{SerialNo: "1", InvoiceCode: "033002600111", InvoiceNo: "00000001", IssuedAt: at, TotalAmount: schemas.ParseAmount("106.00")},
			{SerialNo: "1", DigitalInvoiceNo: "26332000000000000002", IssuedAt: at, TotalAmount: schemas.ParseAmount("10.50")},
		}
	default:
		r.Error = &schemas.ErrorInfo{Code: schemas.CodeProviderRejected, Message: "发票号码或发票代码不正确", Field: "order.invoiceCode", ProviderCode: "E9102"}
	}
	return r
}

func TestTail(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	env.publishResult(t, tailResult(nuonuoSeller, "T-1", schemas.StatusIssued))
	env.publishResult(t, tailResult(jumdataSeller, "T-2", schemas.StatusRejected))
	env.publishResult(t, tailResult(jumdataSeller, "T-3", schemas.StatusIssued))

	cases := []struct {
		name   string
		args   []string
		code   int
		orders []string // in order, one line each
	}{
		{"all history", []string{"--all", "--count", "3"}, exitOK, []string{"T-1", "T-2", "T-3"}},
		{"count stops early", []string{"--all", "--count", "2"}, exitOK, []string{"T-1", "T-2"}},
		{"by seller", []string{"--all", "--seller", jumdataSeller, "--count", "2"}, exitOK, []string{"T-2", "T-3"}},
		{"by status", []string{"--all", "--status", "rejected", "--count", "1"}, exitOK, []string{"T-2"}},
		{"by seller and status", []string{"--all", "--seller", " " + strings.ToLower(jumdataSeller), "--status", "issued", "--status", "conflict", "--count", "1"}, exitOK, []string{"T-3"}},
		{"since", []string{"--since", "1h", "--count", "3"}, exitOK, []string{"T-1", "T-2", "T-3"}},
		{"for ends a count not reached", []string{"--all", "--status", "failed", "--count", "1", "--for", "300ms"}, exitFailed, nil},
		{"new only, for ends it", []string{"--for", "300ms"}, exitOK, nil},
		{"bad status", []string{"--status", "done"}, exitUsage, nil},
		{"all and since", []string{"--all", "--since", "1h"}, exitUsage, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := env.cli(t, append([]string{"tail"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if out == "" {
				lines = nil
			}
			if len(lines) != len(tc.orders) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.orders), out)
			}
			for i, no := range tc.orders {
				if !strings.Contains(lines[i], ":"+no+" ") {
					t.Errorf("line %d is not %s: %s", i, no, lines[i])
				}
			}
		})
	}

	t.Run("readable lines", func(t *testing.T) {
		out, _, _ := env.cli(t, "tail", "--all", "--count", "2")
		lines := strings.Split(out, "\n")
		for _, want := range []string{"issued", nuonuoSeller + ":T-1", "issue", "033002600111/00000001,26332000000000000002 total 116.50"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("line %q lacks %q", lines[0], want)
			}
		}
		for _, want := range []string{"rejected", jumdataSeller + ":T-2", "provider_rejected [order.invoiceCode] 发票号码或发票代码不正确 (E9102)"} {
			if !strings.Contains(lines[1], want) {
				t.Errorf("line %q lacks %q", lines[1], want)
			}
		}
	})

	t.Run("json lines follow the result schema", func(t *testing.T) {
		out, _, code := env.cli(t, "tail", "--all", "--json", "--count", "3")
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines:\n%s", len(lines), out)
		}
		for _, l := range lines {
			if err := schemas.CheckResultJSON([]byte(l)); err != nil {
				t.Errorf("%v: %s", err, l)
			}
		}
	})

	t.Run("follows new results", func(t *testing.T) {
		var wg sync.WaitGroup
		var out string
		var code int
		wg.Go(func() {
			out, _, code = env.cli(t, "tail", "--seller", nuonuoSeller, "--count", "1", "--for", "20s")
		})
		// Publish once the tail's consumer exists: it starts with new results.
		filter := schemas.Subjects{}.Result("*", nuonuoSeller)
		waitFor(t, "the tail's consumer", 10*time.Second, func() bool { return env.hasConsumer(t, pipeline.DefaultResultStream, filter) })
		env.publishResult(t, tailResult(jumdataSeller, "T-5", schemas.StatusIssued)) // another seller: filtered out
		env.publishResult(t, tailResult(nuonuoSeller, "T-4", schemas.StatusRejected))
		wg.Wait()
		if code != exitOK || strings.Count(out, "\n") != 1 || !strings.Contains(out, nuonuoSeller+":T-4") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// TestTailForEndsDuringItsStart: --for bounds the whole tail, its start
// included. One that elapses before the tail follows the results (a slow
// server, a loaded machine; here after 1µs) ends it as --for does later:
// without --count, exit 0 and nothing said; with it, exit 1 saying that
// --for elapsed after 0 results. Not as a server that did not answer.
func TestTailForEndsDuringItsStart(t *testing.T) {
	t.Parallel()
	env := MustNATS(t)
	for _, tc := range []struct {
		args   []string
		code   int
		errOut string
	}{
		{[]string{"--for", "1us"}, exitOK, ""},
		{[]string{"--all", "--count", "1", "--for", "1us"}, exitFailed, "publisher: --for 1µs elapsed after 0 of 1 results\n"},
	} {
		out, errOut, code := env.cli(t, append([]string{"tail"}, tc.args...)...)
		if code != tc.code || errOut != tc.errOut || out != "" {
			t.Errorf("tail %v: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", tc.args, code, out, errOut, tc.code, tc.errOut)
		}
	}
}

// hasConsumer reports whether a consumer of stream filters on filter only.
func (e *natsEnv) hasConsumer(t *testing.T, stream, filter string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	l := s.ListConsumers(ctx)
	found := false
	for info := range l.Info() {
		if info.Config.FilterSubject == filter || slices.Equal(info.Config.FilterSubjects, []string{filter}) {
			found = true
		}
	}
	return found
}
