package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// lowerCaseTaken publishes a jumdata issue request on its seller's subject
// in lower case and has a run take it (the server counts it delivered)
// under a raised unclaimed mark, then crash; earlier says the run was of a
// build before schemas.RuleSubjectSpelling (whose store has no mark of the
// rule), submit that it submitted the request without a claim before the
// crash. It returns the request as the stream holds it and the pipeline of
// the next start, which has run RecoverUnclaimed.
func lowerCaseTaken(t *testing.T, h *harness, orderNo string, earlier, submit bool) (*jetstream.RawStreamMsg, *pipeline.Pipeline) {
	t.Helper()
	ctx := context.Background()
	if earlier {
		if err := h.db.SetMark(ctx, unclaimedMarkName(t, h)+":spelling", 0); err != nil {
			t.Fatal(err)
		}
	} else {
		firstRun(t, h, fast, h.db, nil, false) // the run that takes it starts
	}
	data := issueRequest(t, jumdataSeller, orderNo, nil)
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	if err := h.db.RaiseMark(ctx, unclaimedMarkName(t, h), raw.Sequence+10); err != nil {
		t.Fatal(err)
	}
	_, putBack := takeNext(t, h)
	if submit {
		a := h.provs[jumdataSeller].Submit(ctx, &providers.Call{Request: decodeReq(t, data), SubmittedAt: time.Now()})
		if a.Class != providers.Accepted && a.Class != providers.Issued {
			t.Fatalf("setup submit: %s %s", a.Class, a.Code)
		}
	}
	putBack()
	return raw, firstRun(t, h, fast, h.db, nil, false)
}

// A build that took requests on a lower-case seller subject, and submitted
// jumdata orders without a claim, crashed after submitting one and before
// saving anything. At the next start RecoverUnclaimed records that order,
// and its request is finished (issued once), not rejected while jumdata
// holds its invoice.
func TestLowerCaseClaimlessSubmissionAtUpgrade(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	raw, p := lowerCaseTaken(t, h, "LOWER-CL-1", true, true)
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "LOWER-CL-1"}
	if _, found, _ := h.db.Get(ctx, key); !found {
		t.Fatal("RecoverUnclaimed did not record the lower-case request that may have been submitted")
	}
	out := deliverRaw(t, p, raw, 2)
	if out.Status != schemas.StatusIssued {
		t.Fatalf("the in-flight request: %s %s %s (sandbox %+v)", out.Action, out.Event, out.Status, h.orderStats(jumdataSeller, "LOWER-CL-1"))
	}
	if st := h.orderStats(jumdataSeller, "LOWER-CL-1"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox %+v: want one submission, one issuance", st)
	}
}

// A request on a lower-case seller subject that this build took (and
// rejected) before a crash is not one an earlier build may have submitted:
// RecoverUnclaimed leaves it alone, and it is rejected again with nothing
// sent.
func TestLowerCaseTakenByThisBuildIsNotRecovered(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	raw, p := lowerCaseTaken(t, h, "LOWER-NS-1", false, false)
	if rec, found, _ := h.db.Get(ctx, schemas.OrderKey{Seller: jumdataSeller, OrderNo: "LOWER-NS-1"}); found {
		t.Fatalf("RecoverUnclaimed recorded a request only this build took: %+v", rec)
	}
	out := deliverRaw(t, p, raw, 2)
	if out.Action != pipeline.Ack || out.Status != schemas.StatusRejected {
		t.Fatalf("the lower-case request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
	if st := h.orderStats(jumdataSeller, "LOWER-NS-1"); st.Submissions != 0 || st.Queries != 0 {
		t.Fatalf("sandbox %+v: want nothing sent", st)
	}
}

// A jumdata order an earlier build claimed for a request on a lower-case
// seller subject two days ago (past the taskId's life, so jumdata is
// searched, not asked again), and crashed before submitting: the request
// comes again, and jumdata has no invoice for it. It is not submitted now
// (this build rejects that subject): it is rejected, the record says so as
// failed, and the same request on the subject in capitals is then issued
// once.
func TestLowerCaseClaimedButNeverSubmittedIsNotSent(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-NN-1", nil)
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "LOWER-NN-1"}
	claimedBefore(t, h, data, 48*time.Hour)
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	out := deliverRaw(t, p, raw, 1)
	if out.Action != pipeline.Ack || out.Status != schemas.StatusRejected {
		t.Fatalf("the lower-case request: %s %s %s; want rejected", out.Action, out.Event, out.Status)
	}
	if st := h.orderStats(jumdataSeller, "LOWER-NN-1"); st.Submissions != 0 {
		t.Fatalf("a request let through only as an earlier build's was submitted: sandbox %+v", st)
	}
	rec, _, _ := h.db.Get(ctx, key)
	if rec.State != schemas.StateFailed || rec.LastError == nil ||
		len(rec.LastError.Violations) != 1 || rec.LastError.Violations[0].Rule != schemas.RuleSubjectSpelling {
		t.Fatalf("the record left: %s %+v; want failed, %s", rec.State, rec.LastError, schemas.RuleSubjectSpelling)
	}
	if again := deliverRaw(t, p, raw, 2); again.Status != schemas.StatusRejected {
		t.Fatalf("again: %s %s", again.Event, again.Status)
	}
	right := publishRaw(t, h, jumdataSeller, data)
	out = deliverRaw(t, p, right, 1)
	for d := 2; out.Action == pipeline.Nak && d <= 5; d++ {
		out = deliverRaw(t, p, right, d)
	}
	if out.Status != schemas.StatusIssued {
		t.Fatalf("the request on the capitalised subject: %s %s %s", out.Action, out.Event, out.Status)
	}
	if st := h.orderStats(jumdataSeller, "LOWER-NN-1"); st.Issuances != 1 || st.Submissions != 1 {
		t.Fatalf("sandbox %+v: want one submission, one issuance", st)
	}
}

// queryFails makes a provider's queries fail transiently while fail is set.
type queryFails struct {
	providers.Provider
	fail atomic.Bool
}

func (q *queryFails) Query(ctx context.Context, c *providers.Call) providers.Outcome {
	if q.fail.Load() {
		return providers.Outcome{Class: providers.Retry, Code: "http_503", Message: "service unavailable"}
	}
	return q.Provider.Query(ctx, c)
}

// A red confirmation form that an earlier build kept waiting past
// MaxDeliver left its wait in "polls" and "acceptedAt". This build reads
// them as its own wait, so one transient failure of the form puts it back
// instead of giving it up.
func TestWaitingFormFromEarlierBuildSurvivesOneFailure(t *testing.T) {
	ctx := context.Background()
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	qf := &queryFails{Provider: h.provs[jumdataSeller]}
	h.provs[jumdataSeller] = qf
	p := firstRun(t, h, cfg, h.db, nil, false)
	blue := issuedBlue(t, h, p, "BLUE-LEG-J")
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-LEG-J", blue))
	for d := 1; d <= 6; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-LEG-J"}
	rec, _, _ := h.db.Get(ctx, key)

	// The record as the earlier build wrote it.
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, rec), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "waitPolls")
	delete(m, "waitingSince")
	m["acceptedAt"] = time.Now().Add(-time.Minute).Format(time.RFC3339Nano)
	var legacy schemas.OrderRecord
	if err := json.Unmarshal(mustJSON(t, m), &legacy); err != nil {
		t.Fatal(err)
	}
	if legacy.WaitPolls != 0 || !legacy.WaitingSince.IsZero() || legacy.Polls < 6 {
		t.Fatalf("legacy record read as %+v", legacy)
	}
	if _, err := h.db.Put(ctx, legacy); err != nil {
		t.Fatal(err)
	}

	qf.fail.Store(true)
	if out := deliverRaw(t, p, raw, 7); out.Action != pipeline.Nak {
		t.Fatalf("one transient failure of a form waiting %d polls (an earlier build's record): %s %s %q; want put back",
			legacy.Polls, out.Action, out.Event, out.Reason)
	}
	qf.fail.Store(false)
	got, _, _ := h.db.Get(ctx, key)
	if got.WaitPolls < 6 || got.WaitingSince.IsZero() {
		t.Fatalf("the wait was not carried over: waitPolls %d, waitingSince %s", got.WaitPolls, got.WaitingSince)
	}
	if b, _ := json.Marshal(got); strings.Contains(string(b), `"acceptedAt"`) {
		t.Fatalf("the legacy field is written back: %s", b)
	}
}

// An earlier build claimed a jumdata order for a request on a lower-case
// seller subject a minute ago and crashed before submitting it. Within the
// taskId's life jumdata's query repeats the submission, which would submit
// it now: this build only looks at jumdata's issued invoices instead.
func TestLowerCaseClaimedWithinTaskLifeIsNotSent(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-TL-1", nil)
	claimedBefore(t, h, data, time.Minute)
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	out := deliverRaw(t, p, raw, 1)
	if st := h.orderStats(jumdataSeller, "LOWER-TL-1"); st.Submissions != 0 || st.Issuances != 0 {
		t.Fatalf("a request let through only as an earlier build's was submitted by this build (its query): sandbox %+v, outcome %s %s %s",
			st, out.Action, out.Event, out.Status)
	}
}

// The same through RecoverUnclaimed: an earlier build took a lower-case
// jumdata request (claimless) and crashed before submitting it.
// RecoverUnclaimed records it as possibly submitted; its deliveries only
// look at jumdata, the first and a later one alike (the first's look-up
// counts as a provider call in the record, and submitted nothing).
func TestLowerCaseRecoveredButNeverSubmittedIsNotSent(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	raw, p := lowerCaseTaken(t, h, "LOWER-RN-1", true, false)
	for d := 2; d <= 3; d++ {
		out := deliverRaw(t, p, raw, d)
		if st := h.orderStats(jumdataSeller, "LOWER-RN-1"); st.Submissions != 0 || st.Issuances != 0 {
			t.Fatalf("delivery %d: a recovered lower-case request the earlier build never submitted was submitted now: sandbox %+v, outcome %s %s %s",
				d, st, out.Action, out.Event, out.Status)
		}
		if out.Action != pipeline.Nak {
			t.Fatalf("delivery %d: %s %s %s; want put back until the taskId's life ends", d, out.Action, out.Event, out.Status)
		}
	}
}

// fullDiskMarks keeps marks that can be read but not written (a full disk).
type fullDiskMarks struct{ pipeline.Marks }

func (fullDiskMarks) RaiseMark(context.Context, string, uint64) error {
	return errors.New("order store write failed: no space left on device")
}

func (fullDiskMarks) SetMark(context.Context, string, uint64) error {
	return errors.New("order store write failed: no space left on device")
}

// A consumer that never submitted without a claim (no unclaimed mark, no
// opt-in) writes nothing it needs at its start, so it starts on a full disk
// (the loop then pauses until the store is healthy) even though it cannot
// set the subject-spelling mark.
func TestFirstStartOnAFullDiskWithoutClaimlessStillStarts(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(fast, v, h.db, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), h.provs)
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "FULL-1", nil))
	if _, err := recoverErr(t, h, p, fullDiskMarks{h.db}); err != nil {
		t.Fatalf("a consumer that never went without a claim cannot start on a full disk: %v", err)
	}
}

// A seller is held for a person to act; its next probe is a request let
// through as an earlier build's, whose provider query answers that the
// order is not there. The provider answered, so the hold ends, as it does
// on any answer but action_required.
func TestWithheldProbeReleasesTheSeller(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.provs[jumdataSeller] = needsPerson{h.provs[jumdataSeller].(*jumdata.Client)}
	p := firstRun(t, h, fast, h.db, nil, false)
	if out := deliverRaw(t, p, publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "HOLDER-J", nil)), 1); out.Event != pipeline.EventActionRequired {
		t.Fatalf("setup hold: %s %s", out.Action, out.Event)
	}
	if _, held := p.HeldSellers()[jumdataSeller]; !held {
		t.Fatal("setup: the seller is not held")
	}
	data := issueRequest(t, jumdataSeller, "LOWER-HP-1", nil)
	claimedBefore(t, h, data, 48*time.Hour)
	time.Sleep(fast.HoldProbe + 50*time.Millisecond) // the next delivery is the probe
	out := deliverRaw(t, p, publishRaw(t, h, strings.ToLower(jumdataSeller), data), 1)
	if out.Status != schemas.StatusRejected {
		t.Fatalf("the lower-case request: %s %s %s", out.Action, out.Event, out.Status)
	}
	if reason, held := p.HeldSellers()[jumdataSeller]; held {
		t.Fatalf("the provider answered the probe (not found), and the seller is still held: %s", reason)
	}
}

// After withhold (the provider has nothing for the order), a corrected
// request for the order on the seller's subject goes: it is not answered
// with a conflict that sends the user to an earlier request's dead letter
// that withhold never published.
func TestCorrectedRequestAfterWithholdIsNotSentToAMissingDeadLetter(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-CO-1", nil)
	claimedBefore(t, h, data, 48*time.Hour)
	if out := deliverRaw(t, p, publishRaw(t, h, strings.ToLower(jumdataSeller), data), 1); out.Status != schemas.StatusRejected {
		t.Fatalf("the lower-case request: %s %s %s", out.Action, out.Event, out.Status)
	}
	corrected := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "LOWER-CO-1", func(o *schemas.Order) { o.Clerk = "李四" }))
	out := deliverRaw(t, p, corrected, 1)
	h.caughtUp(10 * time.Second) // deliverRaw waited for its publishes: all collected
	if out.Status == schemas.StatusConflict && len(h.deadLetters()) == 0 {
		res := h.waitResult(jumdataSeller, "LOWER-CO-1", 1, 5*time.Second)
		t.Fatalf("the corrected request: conflict, with no dead letter to replay: %s", res[len(res)-1].Error.Message)
	}
}

// An earlier build claimed a jumdata order for a request on a lower-case
// seller subject a minute ago and crashed before submitting it. This
// build's first delivery only looks (searches issued invoices), but the
// search fails transiently (HTTP 503 on blue-invoice/query). The record
// now shows a provider call whose last error is not a look-only answer,
// so the next delivery must still only look: it must not repeat the task,
// which would submit it.
func TestLowerCaseLookOnlySurvivesAFailedSearch(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-FS-1", nil)
	claimedBefore(t, h, data, time.Minute)
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/query", HTTPStatus: 503}}})
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	if out := deliverRaw(t, p, raw, 1); out.Action != pipeline.Nak {
		t.Fatalf("delivery 1 (search fails): %s %s %s; want put back", out.Action, out.Event, out.Status)
	}
	for d := 2; d <= 3; d++ {
		out := deliverRaw(t, p, raw, d)
		if st := h.orderStats(jumdataSeller, "LOWER-FS-1"); st.Submissions != 0 || st.Issuances != 0 {
			t.Fatalf("delivery %d: a request let through only as an earlier build's was submitted after its look-up failed once: sandbox %+v, outcome %s %s %s",
				d, st, out.Action, out.Event, out.Status)
		}
	}
}

// An earlier build submitted a jumdata order for a request on a lower-case
// seller subject, and jumdata refused the submission before it took effect
// (609, too frequent: Retry, "the request did not take effect"). The record
// counts that call (Attempts 1); repeating the task would submit it, and
// that would be this build's first submission of the request: it only
// looks.
func TestLowerCaseEarlierSubmitRefusedIsNotSent(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	p := firstRun(t, h, fast, h.db, nil, false)
	data := issueRequest(t, jumdataSeller, "LOWER-RF-1", nil)
	req := decodeReq(t, data)
	then := time.Now().Add(-time.Minute)
	claim := schemas.OrderRecord{Seller: req.SellerTaxNum, OrderNo: req.OrderNo, Kind: schemas.KindIssue, Fingerprint: decodeFingerprint(t, data),
		Provider: "jumdata", ReceivedAt: then, State: schemas.StateSubmitting, Submissions: 1, SubmittedAt: then, Attempts: 1, Failures: 1,
		LastError: &schemas.ErrorInfo{Code: schemas.CodeRetriesExhausted, ProviderCode: "609", Message: "请求过于频繁,请稍候再试"}}
	if _, err := h.db.Put(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	raw := publishRaw(t, h, strings.ToLower(jumdataSeller), data)
	out := deliverRaw(t, p, raw, 1)
	if st := h.orderStats(jumdataSeller, "LOWER-RF-1"); st.Submissions != 0 || st.Issuances != 0 {
		t.Fatalf("a request let through only as an earlier build's, which jumdata never took, was submitted by this build: sandbox %+v, outcome %s %s %s",
			st, out.Action, out.Event, out.Status)
	}
}

// claimedBefore saves the claim an earlier build left for the jumdata
// issue request data, submitted (or about to be) ago, when it crashed.
func claimedBefore(t *testing.T, h *harness, data []byte, ago time.Duration) {
	t.Helper()
	req := decodeReq(t, data)
	then := time.Now().Add(-ago)
	claim := schemas.OrderRecord{Seller: req.SellerTaxNum, OrderNo: req.OrderNo, Kind: schemas.KindIssue, Fingerprint: decodeFingerprint(t, data),
		Provider: "jumdata", ReceivedAt: then, State: schemas.StateSubmitting, Submissions: 1, SubmittedAt: then}
	if _, err := h.db.Put(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
}

// earlierBuildKeys are the keys of an order record that asEarlierBuild
// leaves out.
var earlierBuildKeys = []string{"superseded", "replayPublishedAt", "requestPublishedAt", "requestStream", "requestStreamSeq", "requestConsumerCreated"}

// asEarlierBuild rewrites the order's record as a build before
// OrderRecord.Superseded, ReplayPublishedAt, RequestPublishedAt and the
// request's place in the stream (RequestStream, RequestStreamSeq,
// RequestConsumerCreated) wrote it: without those keys. It returns the
// record as the store then holds it.
func asEarlierBuild(t *testing.T, h *harness, key schemas.OrderKey) schemas.OrderRecord {
	t.Helper()
	ctx := context.Background()
	rec, found, err := h.db.Get(ctx, key)
	if err != nil || !found {
		t.Fatalf("order %s: %v %v", key, found, err)
	}
	var m map[string]any
	if err := json.Unmarshal(mustJSON(t, rec), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range earlierBuildKeys {
		delete(m, k)
	}
	var legacy schemas.OrderRecord
	if err := json.Unmarshal(mustJSON(t, m), &legacy); err != nil {
		t.Fatal(err)
	}
	stored, err := h.db.Put(ctx, legacy)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range earlierBuildKeys {
		if b := mustJSON(t, stored); strings.Contains(string(b), `"`+k+`"`) {
			t.Fatalf("the earlier build's record has %s: %s", k, b)
		}
	}
	return stored
}

// A replayed dead letter of a request still under way in an earlier
// build's record (its counts left by a give-up that could not write it, a
// panic, and no ReplayPublishedAt): the replay's first delivery starts the
// counts afresh, its later deliveries keep them, and it is given up after
// its own MaxDeliver deliveries, the order submitted once.
func TestReplayOverAnEarlierBuildsRecordCountsItsOwnDeliveries(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{PendingQueries: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "LEGACY-REPLAY"}
	body := issueRequest(t, nuonuoSeller, key.OrderNo, nil)
	raw := publishRaw(t, h, nuonuoSeller, body)
	for d := 1; d < cfg.MaxDeliver; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	buggy := pipelineOverProviders(t, h, cfg, h.db, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}),
		pipeline.ProviderMap{nuonuoSeller: panicky{h.provs[nuonuoSeller]}})
	if out := deliverRaw(t, buggy, raw, cfg.MaxDeliver); out.Action != pipeline.Term {
		t.Fatalf("last delivery, panicking: %s %s; want given up", out.Action, out.Event)
	}
	if legacy := asEarlierBuild(t, h, key); legacy.Polls != cfg.MaxDeliver-1 || legacy.State != schemas.StateAccepted {
		t.Fatalf("the earlier build's record: %s, %d polls; want accepted, %d", legacy.State, legacy.Polls, cfg.MaxDeliver-1)
	}

	replay := publishReplayed(t, h, nuonuoSeller, body, 1)
	for r := 1; r < cfg.MaxDeliver; r++ {
		if out := deliverRaw(t, p, replay, r); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("replay delivery %d: %s %s", r, out.Action, out.Event)
		}
		rec, _, err := h.db.Get(context.Background(), key)
		if err != nil || rec.Polls != r || !rec.ReplayPublishedAt.Equal(replay.Time) {
			t.Fatalf("replay delivery %d: %d polls, replay published %s (%v); want %d, counted from the replay's first delivery, and %s",
				r, rec.Polls, rec.ReplayPublishedAt, err, r, replay.Time)
		}
	}
	if out := deliverRaw(t, p, replay, cfg.MaxDeliver); out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("replay delivery %d: %s %s %q; want given up, the replay's own deliveries spent", cfg.MaxDeliver, out.Action, out.Event, out.DeadLetter)
	}
	if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Submissions != 1 {
		t.Fatalf("sandbox %+v: want the order submitted once", st)
	}
}

// An order whose request and its correction were both given up, in an
// earlier build's record, which lists no superseded request and does not
// know when its request was published: a replay of the older request's
// dead letter, or a copy of the older request delivered again, starts the
// order over as that build did. Nothing is invoiced twice: the correction
// was submitted, so the provider is asked about it first, the older
// request is issued once, and the correction's replay then gets a
// conflict. The record written since lists the correction as superseded.
func TestOlderRequestOverAnEarlierBuildsRecord(t *testing.T) {
	for _, replayed := range []bool{true, false} {
		name := "copy delivered again"
		if replayed {
			name = "replayed dead letter"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cfg := fast
			cfg.MaxDeliver = 3
			h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Faults: sandbox.Faults{Script: []sandbox.ScriptedAnswer{
				{Provider: "nuonuo", Method: "nuonuo.ElectronInvoice.requestBillingNew", HTTPStatus: 503, Times: 2 * cfg.MaxDeliver},
			}}}})
			p := firstRun(t, h, cfg, h.db, nil, false)
			key := schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "LEGACY-SUPERSEDED"}
			older := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, key.OrderNo, nil))
			corrected := issueRequest(t, nuonuoSeller, key.OrderNo, func(o *schemas.Order) { o.BuyerName = "更正后的买方" })
			for _, raw := range []*jetstream.RawStreamMsg{older, publishRaw(t, h, nuonuoSeller, corrected)} {
				out := deliverRaw(t, p, raw, 1)
				for d := 2; out.Action == pipeline.Nak && d <= cfg.MaxDeliver; d++ {
					out = deliverRaw(t, p, raw, d)
				}
				if out.Action != pipeline.Term || out.Status != schemas.StatusFailed {
					t.Fatalf("request #%d: %s %s %s; want given up", raw.Sequence, out.Action, out.Event, out.Status)
				}
			}
			legacy := asEarlierBuild(t, h, key)
			if legacy.State != schemas.StateFailed || legacy.Submissions == 0 {
				t.Fatalf("the earlier build's record: %s, %d submissions; want failed after a submission", legacy.State, legacy.Submissions)
			}

			again := older
			if replayed {
				again = publishReplayed(t, h, nuonuoSeller, older.Data, 1)
			}
			if out := deliverRaw(t, p, again, 2); out.Status != schemas.StatusIssued {
				t.Fatalf("the older request: %s %s %s; want issued, as the earlier build had it", out.Action, out.Event, out.Status)
			}
			rec, _, err := h.db.Get(ctx, key)
			if err != nil || len(rec.Superseded) != 1 || rec.Superseded[0] != legacy.Fingerprint {
				t.Fatalf("stored: superseded %q (%v); want the correction's %.12s…", rec.Superseded, err, legacy.Fingerprint)
			}
			if out := deliverRaw(t, p, publishReplayed(t, h, nuonuoSeller, corrected, 2), 1); out.Status != schemas.StatusConflict {
				t.Fatalf("the correction's replay: %s %s %s; want a conflict", out.Action, out.Event, out.Status)
			}
			if st := h.orderStats(nuonuoSeller, key.OrderNo); st.Issuances != 1 {
				t.Fatalf("sandbox %+v: want one issuance", st)
			}
		})
	}
}
