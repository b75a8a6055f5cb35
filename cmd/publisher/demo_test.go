package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

func TestDemoOut(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gen := func(name string, seed string, n string) []byte {
		t.Helper()
		p := filepath.Join(dir, name)
		// No server is needed: --out does not connect.
		out, errOut, code := runCLI(t, "", "--server", unreachableURL(t), "demo", "-n", n, "--seed", seed, "--run", "T1", "--date", "2026-11-20 10:15:00", "--out", p)
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := gen("a.ndjson", "7", "200")
	if b := gen("b.ndjson", "7", "200"); !bytes.Equal(a, b) {
		t.Fatal("the same seed, run and date gave different requests")
	}
	if c := gen("c.ndjson", "8", "200"); bytes.Equal(a, c) {
		t.Fatal("another seed gave the same requests")
	}

	lines := bytes.Split(bytes.TrimSuffix(a, []byte("\n")), []byte("\n"))
	if want := 200 - planFor(200).phase2(); len(lines) != want {
		t.Fatalf("%d phase-1 requests, want %d", len(lines), want)
	}
	sellers := map[string]int{}
	var numbers, discounts, paper, fails, special int
	for i, l := range lines {
		d, err := v.Decode(l, "")
		if err != nil || !d.Valid() {
			t.Fatalf("request %d: %v %v\n%s", i+1, err, d.Violations, l)
		}
		for _, w := range d.Warnings {
			// Nuonuo's sandbox seller fails the check character; the
			// demo's buyers do not.
			if !strings.Contains(w.Message, nuonuoSeller) {
				t.Errorf("request %d: warning %s", i+1, w)
			}
		}
		r := d.Request
		sellers[r.SellerTaxNum]++
		if bytes.Contains(l, []byte(`"price":`)) && !bytes.Contains(l, []byte(`"price":"`)) {
			numbers++
		}
		for _, line := range r.Order.InvoiceDetail {
			if line.Property() == schemas.LineDiscount {
				discounts++
				break
			}
		}
		switch {
		case r.Order.InvoiceLine == "c":
			paper++
		case r.Order.InvoiceLine == "bs":
			special++
		}
		if strings.Contains(r.Order.Remark, sandboxFail) {
			fails++
			if r.SellerTaxNum != nuonuoSeller {
				t.Errorf("%s: %s on a jumdata order", r.OrderNo, sandboxFail)
			}
		}
	}
	if sellers[nuonuoSeller] == 0 || sellers[jumdataSeller] == 0 || numbers == 0 || discounts == 0 || paper == 0 || fails == 0 || special == 0 {
		t.Fatalf("not a mix: sellers %v, JSON numbers %d, with discounts %d, paper %d, %s %d, special %d", sellers, numbers, discounts, paper, sandboxFail, fails, special)
	}

	// The validate subcommand agrees, and standard output works too.
	if out, _, code := runCLI(t, "", "validate", filepath.Join(dir, "a.ndjson")); code != exitOK {
		t.Fatalf("validate: exit %d\n%s", code, out)
	}
	out, _, code := runCLI(t, "", "demo", "-n", "3", "--out", "-")
	if code != exitOK || strings.Count(out, "\n") != 3 || !json.Valid([]byte(strings.Split(out, "\n")[0])) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestDemoGeneratesValidPhaseTwo checks the requests built on phase 1's
// invoices without a consumer.
func TestDemoGeneratesValidPhaseTwo(t *testing.T) {
	t.Parallel()
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	gen := newDemoGen(1, "X", time.Date(2026, 11, 20, 10, 15, 0, 0, cst))
	inv := schemas.Invoice{InvoiceCode: "033002600111", InvoiceNo: "00000042", DigitalInvoiceNo: "26332000000000000042",
		IssuedAt: time.Date(2026, 11, 20, 2, 15, 0, 0, time.UTC), TotalAmount: schemas.ParseAmount("1.00")}
	for range 50 {
		var items []*demoItem
		for _, it := range gen.phase1(40) {
			switch it.role {
			case roleFail:
				items = append(items, gen.reissue(it))
			case roleDigital:
				items = append(items, gen.redConfirm(it, inv))
			case rolePaper:
				items = append(items, gen.redPaper(it, inv))
			}
		}
		for _, it := range items {
			d, err := v.Decode(it.data, "")
			if err != nil || !d.Valid() {
				t.Fatalf("%s: %v %v\n%s", it.what, err, d.Violations, it.data)
			}
		}
	}
}

func TestDemoEndToEnd(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast})
	out, errOut, code := c.cli(t, "demo", "-n", "20", "--seed", "3", "--results-timeout", "45s")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	plan := planFor(20)
	for _, want := range []string{
		"demo run ", ", seed 3: 20 requests, 13 in phase 1 and 7 once their invoices exist",
		"phase 1: publishing 13 request(s)", "phase 2: publishing 7 request(s)",
		"published 20, duplicates 0, invalid 0, failed 0",
		"all 20 requests ended as expected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every request has its result, and the kinds are all there. The
	// demo stopped when its own subscription had them all; this test's
	// subscription may still be a result behind.
	waitFor(t, "the test's subscription to see results for 20 orders", 10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.all) >= 20
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.all) != 20 {
		t.Errorf("results for %d orders, want 20", len(c.all))
	}
	kinds := map[schemas.Kind]int{}
	statuses := map[schemas.Status]int{}
	red := 0
	for k, rs := range c.all {
		last := rs[len(rs)-1]
		kinds[last.Kind]++
		statuses[last.Status]++
		if last.Status == schemas.StatusFailed {
			t.Errorf("%s failed: %+v", k, last.Error)
		}
		if last.Kind == schemas.KindIssue && len(last.Invoices) > 0 {
			if total, ok := sumTotals(last.Invoices); ok && total.IsNegative() {
				red++
			}
		}
	}
	if kinds[schemas.KindRedConfirm] != plan.redConfirm || kinds[schemas.KindReissue] != plan.reissue || red != plan.redPaper {
		t.Errorf("kinds %v, red invoices %d; plan %+v", kinds, red, plan)
	}
	if statuses[schemas.StatusRejected] != plan.reissue || statuses[schemas.StatusIssued] != 20-plan.reissue {
		t.Errorf("statuses %v", statuses)
	}
	if !strings.Contains(out, "results: issued 18, rejected 2") {
		t.Errorf("no count by status:\n%s", out)
	}
}

// TestDemoHeldSeller: an order whose last result is action_required (the
// jumdata seller must scan its face) waits for a person; the summary says
// so rather than "no result".
func TestDemoHeldSeller(t *testing.T) {
	t.Parallel()
	c := startConsumer(t, consumerOptions{pipeline: fast, sandbox: sandbox.Config{Faults: sandbox.Faults{FaceAuthSellers: []string{jumdataSeller}}}})
	out, errOut, code := c.cli(t, "demo", "-n", "6", "--seed", "3", "--results-timeout", "3s")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	held := regexp.MustCompile(`(?m)^unexpected: (\S+):(\S+): action_required \(waiting for a person\): `).FindAllStringSubmatch(out, -1)
	if len(held) == 0 || !regexp.MustCompile(`results: .*action_required [1-9]`).MatchString(out) {
		t.Fatalf("no order waiting for a person:\n%s", out)
	}
	for _, m := range held {
		if m[1] != jumdataSeller {
			t.Errorf("%s:%s said to wait for a person", m[1], m[2])
		}
		if strings.Contains(out, m[1]+":"+m[2]+": no result") {
			t.Errorf("%s:%s also without a result:\n%s", m[1], m[2], out)
		}
		rs := c.resultsFor(m[1], m[2])
		if len(rs) == 0 || rs[len(rs)-1].Status != schemas.StatusActionRequired {
			t.Errorf("%s:%s: results %+v", m[1], m[2], rs)
		}
	}
}
