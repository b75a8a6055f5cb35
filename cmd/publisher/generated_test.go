package main

import (
	"bytes"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// TestGeneratedRequestsPassForEitherProviderAndAreIssued: every request the
// publisher generates, 1,500 of the demo's blue orders and the bench's 1,024
// templates, passes the validator as a Nuonuo seller's and as a jumdata
// seller's (but for a Nuonuo seller's paper invoice, which jumdata does not
// issue: refused as unsupported, and for nothing else), with no warning but the Nuonuo sandbox seller's tax number
// check, and the sandbox issues it for its seller's provider. The demo and
// the bench check their requests with the default (Nuonuo's) rules only,
// and the consumer validates a jumdata seller's by jumdata's.
func TestGeneratedRequestsPassForEitherProviderAndAreIssued(t *testing.T) {
	t.Parallel()
	date := time.Date(2026, 11, 20, 10, 15, 0, 0, cst)
	var reqs [][]byte
	g := newDemoGen(11, "G", date)
	for i := range 1500 {
		seller, line := nuonuoSeller, []string{"pc", "bs", "c"}[g.rng.IntN(3)]
		if i%2 == 1 {
			seller, line = jumdataSeller, []string{"pc", "bs"}[g.rng.IntN(2)]
		}
		o := g.order(seller, line, 1+g.rng.IntN(3), g.rng.IntN(2) == 0)
		req := &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: o.OrderNo, Order: o}
		reqs = append(reqs, encodeRequest(req, g.rng.IntN(4) == 0))
	}
	var problems bytes.Buffer
	b, err := newBenchGen(12, "G", []string{nuonuoSeller, jumdataSeller}, benchTemplates, &problems)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, problems.String())
	}
	for _, tm := range b.tmpl {
		reqs = append(reqs, tm.data)
	}

	validators := map[string]*schemas.Validator{}
	for _, p := range []string{"nuonuo", "jumdata"} {
		v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{nuonuoSeller: p, jumdataSeller: p}})
		if err != nil {
			t.Fatal(err)
		}
		validators[p] = v
	}
	sb := sandbox.New(sandbox.Config{})
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	sb.SetBaseURL(srv.URL)
	provs := sandboxProviders(t, srv.URL, nil)

	issued := map[string]int{}
	for i, data := range reqs {
		var own *schemas.Decoded
		for p, v := range validators {
			d, err := v.Decode(data, "")
			if err != nil {
				t.Fatalf("request %d as a %s seller's: %v\n%s", i+1, p, err, data)
			}
			// A Nuonuo seller's paper invoice (invoiceLine c) is one
			// jumdata does not issue: as a jumdata seller's it is refused
			// as unsupported, and only so.
			unsupported := p == "jumdata" && d.Request.SellerTaxNum == nuonuoSeller && !d.Valid() &&
				!slices.ContainsFunc(d.Violations, func(v schemas.Violation) bool { return v.Rule != schemas.RuleUnsupported })
			if !d.Valid() && !unsupported {
				t.Fatalf("request %d as a %s seller's: %v\n%s", i+1, p, d.Violations, data)
			}
			for _, w := range d.Warnings {
				if !strings.Contains(w.Message, nuonuoSeller) {
					t.Fatalf("request %d as a %s seller's: warning %s\n%s", i+1, p, w, data)
				}
			}
			if (p == "nuonuo") == (d.Request.SellerTaxNum == nuonuoSeller) {
				own = d
			}
		}
		seller := own.Request.SellerTaxNum
		call := &providers.Call{Request: own.Request}
		out := provs[seller].Submit(t.Context(), call)
		if seller == nuonuoSeller && out.Class == providers.Accepted {
			call.Refs = out.Refs
			out = provs[seller].Query(t.Context(), call)
		}
		if out.Class != providers.Issued {
			t.Fatalf("request %d: the sandbox answered %v %s %s\n%s", i+1, out.Class, out.Code, out.Message, data)
		}
		issued[seller]++
	}
	if issued[nuonuoSeller] < 1000 || issued[jumdataSeller] < 1000 {
		t.Fatalf("issued %v: not a few thousand requests of either seller", issued)
	}
	t.Logf("issued %v", issued)
}
