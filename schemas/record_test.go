package schemas_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

func TestDecide(t *testing.T) {
	rec := func(state schemas.OrderState) *schemas.OrderRecord {
		return &schemas.OrderRecord{State: state, Fingerprint: "f1"}
	}
	cases := []struct {
		name string
		rec  *schemas.OrderRecord
		fp   string
		want schemas.Decision
	}{
		{"new order", nil, "f1", schemas.DecideSubmit},
		{"issued, same request", rec(schemas.StateIssued), "f1", schemas.DecideReplay},
		{"rejected, same request", rec(schemas.StateRejected), "f1", schemas.DecideReplay},
		{"failed, same request: a replay resumes", rec(schemas.StateFailed), "f1", schemas.DecideResume},
		{"submitting, same request: in doubt", rec(schemas.StateSubmitting), "f1", schemas.DecideResume},
		{"accepted, same request", rec(schemas.StateAccepted), "f1", schemas.DecideResume},
		{"action required, same request", rec(schemas.StateActionRequired), "f1", schemas.DecideResume},
		{"issued, other request", rec(schemas.StateIssued), "f2", schemas.DecideConflict},
		{"submitting, other request", rec(schemas.StateSubmitting), "f2", schemas.DecideConflict},
		{"accepted, other request", rec(schemas.StateAccepted), "f2", schemas.DecideConflict},
		{"rejected, corrected request", rec(schemas.StateRejected), "f2", schemas.DecideSubmit},
		{"rejected with invoices issued in part, corrected request", &schemas.OrderRecord{State: schemas.StateRejected, Fingerprint: "f1", Invoices: []schemas.Invoice{{InvoiceNo: "00000001"}}}, "f2", schemas.DecideConflict},
		{"failed, corrected request", rec(schemas.StateFailed), "f2", schemas.DecideSubmit},
	}
	for _, tc := range cases {
		if got := schemas.Decide(tc.rec, tc.fp); got != tc.want {
			t.Errorf("%s: Decide = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckTransition(t *testing.T) {
	states := append([]schemas.OrderState{""}, schemas.OrderStates...)
	legal := map[[2]schemas.OrderState]bool{}
	for _, to := range schemas.OrderStates {
		legal[[2]schemas.OrderState{"", to}] = true // an order submitted without a claim is first saved with its answer
	}
	for _, from := range []schemas.OrderState{schemas.StateSubmitting, schemas.StateAccepted, schemas.StateActionRequired} {
		for _, to := range schemas.OrderStates {
			legal[[2]schemas.OrderState{from, to}] = true
		}
	}
	legal[[2]schemas.OrderState{schemas.StateRejected, schemas.StateSubmitting}] = true
	legal[[2]schemas.OrderState{schemas.StateRejected, schemas.StateRejected}] = true // the same request, written again
	for _, to := range schemas.OrderStates {
		legal[[2]schemas.OrderState{schemas.StateFailed, to}] = true // a replay resumes a failed order
	}

	for _, from := range states {
		for _, to := range schemas.OrderStates {
			var old *schemas.OrderRecord
			if from != "" {
				old = &schemas.OrderRecord{State: from, Fingerprint: "f1"}
			}
			fp := "f1"
			if from == schemas.StateRejected && to == schemas.StateSubmitting {
				fp = "f2" // starting over needs a corrected request
			}
			err := schemas.CheckTransition(old, &schemas.OrderRecord{State: to, Fingerprint: fp})
			if want := legal[[2]schemas.OrderState{from, to}]; (err == nil) != want {
				t.Errorf("%q → %q: err = %v, legal = %v", from, to, err, want)
			} else if err != nil && !errors.Is(err, schemas.ErrIllegalTransition) {
				t.Errorf("%q → %q: %v is not ErrIllegalTransition", from, to, err)
			}
		}
	}
	fingerprint := []struct {
		name     string
		from, to schemas.OrderState
		fp       string
	}{
		{"rejected restarts with the same request", schemas.StateRejected, schemas.StateSubmitting, "f1"},
		{"rejected written again for another request", schemas.StateRejected, schemas.StateRejected, "f2"},
		{"failed resumes into another request", schemas.StateFailed, schemas.StateIssued, "f2"},
		{"accepted changes request", schemas.StateAccepted, schemas.StateIssued, "f2"},
		{"submitting changes request", schemas.StateSubmitting, schemas.StateAccepted, "f2"},
	}
	for _, tc := range fingerprint {
		err := schemas.CheckTransition(&schemas.OrderRecord{State: tc.from, Fingerprint: "f1"}, &schemas.OrderRecord{State: tc.to, Fingerprint: tc.fp})
		if !errors.Is(err, schemas.ErrFingerprintMismatch) {
			t.Errorf("%s: err = %v, want ErrFingerprintMismatch", tc.name, err)
		}
	}
	if err := schemas.CheckTransition(nil, &schemas.OrderRecord{State: "done"}); !errors.Is(err, schemas.ErrIllegalTransition) {
		t.Errorf("unknown state: %v", err)
	}
}

func TestRecordResult(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	r := &schemas.OrderRecord{Seller: "S", OrderNo: "O", Kind: schemas.KindIssue, State: schemas.StateRejected, UpdatedAt: at,
		LastError: &schemas.ErrorInfo{Code: schemas.CodeProviderRejected, Message: "x", ProviderCode: "E9130"}}
	res := r.Result()
	if res.Status != schemas.StatusRejected || res.Error.ProviderCode != "E9130" || !res.CompletedAt.Equal(at) || res.Invoices == nil {
		t.Fatalf("Result = %+v", res)
	}
	r.State = schemas.StateIssued
	if res := r.Result(); res.Status != schemas.StatusIssued || res.Error != nil {
		t.Fatalf("issued Result = %+v", res)
	}
}

func TestSubjects(t *testing.T) {
	var s schemas.Subjects
	if got := s.Request("339902999999789113"); got != "invoice.request.339902999999789113" {
		t.Error(got)
	}
	if got := s.Result(schemas.StatusIssued, "S1"); got != "invoice.result.issued.S1" {
		t.Error(got)
	}
	if got := s.DeadLetter(schemas.ReasonMalformed, "S1"); got != "invoice.dlq.malformed.S1" {
		t.Error(got)
	}
	p := schemas.Subjects{Prefix: "acme.invoice"}
	for subj, want := range map[string]string{
		"acme.invoice.request.S1":   "S1",
		"acme.invoice.request.S1.3": "S1", // a partition token appended by a subject transform
		"acme.invoice.result.x.S1":  "",
		"invoice.request.S1":        "",
		"acme.invoice.request.":     "",
	} {
		if got := p.SellerOf(subj); got != want {
			t.Errorf("SellerOf(%q) = %q, want %q", subj, got, want)
		}
	}
	if got := schemas.SubjectToken("a.b *>\x01"); got != "a_b____" {
		t.Errorf("SubjectToken = %q", got)
	}
	if schemas.SubjectToken("") != "_" {
		t.Error("empty token")
	}
}

func TestValidSubjectPrefix(t *testing.T) {
	for p, want := range map[string]bool{
		"invoice": true, "acme.invoice": true, "_INBOX_orders": true,
		"": false, "a..b": false, ".a": false, "a.": false, "a.*": false, "a.>": false, "a b": false, "a\tb": false, "a\x01": false,
	} {
		if got := schemas.ValidSubjectPrefix(p); got != want {
			t.Errorf("ValidSubjectPrefix(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestSupersede(t *testing.T) {
	many := make([]string, schemas.MaxSuperseded)
	for i := range many {
		many[i] = fmt.Sprintf("s%d", i)
	}
	cases := []struct {
		name string
		old  schemas.OrderRecord
		fp   string
		want []string
	}{
		{"first correction", schemas.OrderRecord{Fingerprint: "f1"}, "f2", []string{"f1"}},
		{"a second correction", schemas.OrderRecord{Fingerprint: "f2", Superseded: []string{"f1"}}, "f3", []string{"f1", "f2"}},
		{"the first request sent again is the latest", schemas.OrderRecord{Fingerprint: "f2", Superseded: []string{"f1"}}, "f1", []string{"f2"}},
		{"a request superseded twice is listed once", schemas.OrderRecord{Fingerprint: "f1", Superseded: []string{"f1", "f2"}}, "f3", []string{"f2", "f1"}},
		{"a record without a fingerprint supersedes nothing", schemas.OrderRecord{}, "f1", []string{}},
		{"the oldest forgotten", schemas.OrderRecord{Fingerprint: "f1", Superseded: many}, "f2", append(slices.Clone(many[1:]), "f1")},
	}
	for _, tc := range cases {
		r := schemas.OrderRecord{Fingerprint: tc.fp}
		r.Supersede(&tc.old)
		if !slices.Equal(r.Superseded, tc.want) {
			t.Errorf("%s: Superseded = %q, want %q", tc.name, r.Superseded, tc.want)
		}
	}
}
