package pipeline_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A red confirmation form waits for the other party to confirm it, up to
// 72 h at Nuonuo: its polls do not count against MaxDeliver. With three
// deliveries allowed, forms that stay pending for many more polls at both
// providers are issued; an invoice the provider keeps "issuing" as long
// still fails after three, as before.
func TestRedConfirmationWaitsPastMaxDeliver(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 5
	// Nuonuo: six queries in 15 (the platform applying: about three
	// deliveries, within MaxDeliver), six in 02 (the buyer), then 04.
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{
		Nuonuo:  sandbox.NuonuoConfig{RedConfirmSteps: 6},
		Jumdata: sandbox.JumdataConfig{RedPendingPolls: 12},
	}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "BLUE-W-J", nil), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "BLUE-W-N", nil), "")
	blueJ := h.waitResult(jumdataSeller, "BLUE-W-J", 1, 10*time.Second)[0]
	blueN := h.waitResult(nuonuoSeller, "BLUE-W-N", 1, 10*time.Second)[0]
	if blueJ.Status != schemas.StatusIssued || blueN.Status != schemas.StatusIssued {
		t.Fatalf("blue invoices: %+v %+v", blueJ, blueN)
	}
	h.publish(jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-W-J", blueJ.Invoices[0]), "")
	h.publish(nuonuoSeller, redConfirmRequest(t, nuonuoSeller, "RC-W-N", blueN.Invoices[0]), "")
	for _, o := range []struct{ seller, no string }{{jumdataSeller, "RC-W-J"}, {nuonuoSeller, "RC-W-N"}} {
		res := h.waitResult(o.seller, o.no, 1, 30*time.Second)
		if res[0].Status != schemas.StatusIssued {
			t.Fatalf("%s: %s %+v", o.no, res[0].Status, res[0].Error)
		}
		rec := h.issuedRecord(schemas.OrderKey{Seller: o.seller, OrderNo: o.no})
		if rec.Polls < cfg.MaxDeliver || rec.WaitPolls == 0 || rec.WaitingSince.IsZero() {
			t.Fatalf("%s: %d polls, %d waiting since %v; want more polls than MaxDeliver allows deliveries", o.no, rec.Polls, rec.WaitPolls, rec.WaitingSince)
		}
	}
	// Every request acknowledged (or terminated, after its dead letter's
	// publish), the collectors then hold all there is.
	h.waitFor("request stream to empty", 10*time.Second, h.requestStreamEmpty)
	h.caughtUp(10 * time.Second)
	if dls := h.deadLetters(); len(dls) != 0 {
		t.Fatalf("dead letters: %+v", dls)
	}
}

// A form still unconfirmed after RedConfirmWait is given up as any request
// out of deliveries: failed, dead-lettered; the stored record starts its
// polling afresh for a replay. An invoice that stays "issuing" at Nuonuo
// keeps the MaxDeliver budget.
func TestRedConfirmationGivenUpAfterItsWait(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	cfg.RedConfirmWait = 400 * time.Millisecond
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{
		Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000},
		Nuonuo:  sandbox.NuonuoConfig{PendingQueries: 1000},
	}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "BLUE-G-J", nil), "")
	blue := h.waitResult(jumdataSeller, "BLUE-G-J", 1, 10*time.Second)[0]
	if blue.Status != schemas.StatusIssued {
		t.Fatalf("blue invoice: %+v", blue)
	}
	start := time.Now()
	h.publish(jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-G-J", blue.Invoices[0]), "")
	h.publish(nuonuoSeller, issueRequest(t, nuonuoSeller, "STUCK-N", nil), "")

	res := h.waitResult(jumdataSeller, "RC-G-J", 1, 20*time.Second)[0]
	if res.Status != schemas.StatusFailed || res.Error == nil || res.Error.Code != schemas.CodeRetriesExhausted {
		t.Fatalf("red confirmation: %s %+v", res.Status, res.Error)
	}
	if waited := time.Since(start); waited < cfg.RedConfirmWait {
		t.Fatalf("given up after %v, before its wait of %v", waited, cfg.RedConfirmWait)
	}
	rec, _, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-G-J"})
	if err != nil || rec.State != schemas.StateFailed || rec.Polls != 0 || rec.WaitPolls != 0 || !rec.WaitingSince.IsZero() {
		t.Fatalf("stored %s, %d polls, %d waiting since %v (%v); want failed and a fresh schedule", rec.State, rec.Polls, rec.WaitPolls, rec.WaitingSince, err)
	}

	stuck := h.waitResult(nuonuoSeller, "STUCK-N", 1, 20*time.Second)[0]
	if stuck.Status != schemas.StatusFailed {
		t.Fatalf("an invoice still issuing: %s", stuck.Status)
	}
	h.waitFor("two dead letters", 5*time.Second, func() bool { return len(h.deadLetters()) >= 2 })
	h.settled(10 * time.Second) // a third dead letter would be collected by now
	for _, dl := range h.exactDeadLetters(2) {
		if dl.Reason != schemas.ReasonExhausted {
			t.Errorf("%s: dead letter %s", dl.OrderNo, dl.Reason)
		}
		if dl.OrderNo == "STUCK-N" && dl.Deliveries != cfg.MaxDeliver {
			t.Errorf("the issuing invoice gave up after %d deliveries, want %d", dl.Deliveries, cfg.MaxDeliver)
		}
	}
}

// After an hour of waiting for the other party, a red confirmation form is
// asked about every ten minutes instead of every minute.
func TestRedConfirmationPolledSlowlyAfterAnHour(t *testing.T) {
	var ahead atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	cfg := fast
	cfg.Now = clock
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-S-J", issuedBlue(t, h, p, "BLUE-S-J")))
	for i, tc := range []struct {
		advance  time.Duration
		atLeast  time.Duration
		lessThan time.Duration
	}{
		{0, 0, 5 * time.Second},                                   // the schedule's 50 ms
		{59 * time.Minute, 0, 5 * time.Second},                    // within the hour
		{2 * time.Minute, pipeline.RedConfirmSlowPoll, time.Hour}, // past it
		{10 * time.Hour, pipeline.RedConfirmSlowPoll, time.Hour},  // long past, within the wait
	} {
		ahead.Add(int64(tc.advance))
		out := deliverRaw(t, p, raw, i+1)
		if out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted || out.Delay < tc.atLeast || out.Delay >= tc.lessThan {
			t.Fatalf("delivery %d, %v after the first: %s %s in %v; want accepted, again in [%v, %v)", i+1, time.Duration(ahead.Load()), out.Action, out.Event, out.Delay, tc.atLeast, tc.lessThan)
		}
	}
}

// A form the platform is still processing (Nuonuo's 15, applying) does not
// wait for the buyer: it keeps the MaxDeliver budget, as an invoice still
// issuing does.
func TestRedConfirmationStillApplyingKeepsMaxDeliver(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Nuonuo: sandbox.NuonuoConfig{RedConfirmSteps: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	var blue pipeline.Outcome
	rawBlue := publishRaw(t, h, nuonuoSeller, issueRequest(t, nuonuoSeller, "BLUE-AP-N", nil))
	for d := 1; d <= 3 && blue.Status != schemas.StatusIssued; d++ {
		blue = deliverRaw(t, p, rawBlue, d)
	}
	rec, _, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: nuonuoSeller, OrderNo: "BLUE-AP-N"})
	if err != nil || len(rec.Invoices) != 1 {
		t.Fatalf("blue record: %+v %v", rec, err)
	}
	raw := publishRaw(t, h, nuonuoSeller, redConfirmRequest(t, nuonuoSeller, "RC-AP-N", rec.Invoices[0]))
	var out pipeline.Outcome
	d := 1
	for ; d <= cfg.MaxDeliver+2; d++ {
		if out = deliverRaw(t, p, raw, d); out.Action != pipeline.Nak {
			break
		}
	}
	if out.Action != pipeline.Term || d != cfg.MaxDeliver {
		t.Fatalf("a form still applying (15): %s %s at delivery %d; want given up at delivery %d", out.Action, out.Event, d, cfg.MaxDeliver)
	}
}

// A form waiting for the buyer past MaxDeliver deliveries is not given up
// because one read of its record failed: without the record, the pipeline
// cannot tell that it may go on, and puts it back.
func TestWaitingFormOutlivesAFailedRead(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	st := &failingGets{Store: h.db}
	p := firstRun(t, h, cfg, st, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-RF-J", issuedBlue(t, h, p, "BLUE-RF-J")))
	for d := 1; d <= 5; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	st.fail.Store(true)
	out := deliverRaw(t, p, raw, 6)
	st.fail.Store(false)
	if out.Action != pipeline.Nak {
		t.Fatalf("one failed read on delivery 6 of a waiting form: %s %s, dead letter %q", out.Action, out.Event, out.DeadLetter)
	}
	if out := deliverRaw(t, p, raw, 7); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
		t.Fatalf("delivery 7, the store readable again: %s %s", out.Action, out.Event)
	}
}

// A record that cannot be read at all past MaxDeliver deliveries does not
// keep its request going round for ever: once twice RedConfirmWait has
// passed since the request's publication, it is given up.
func TestUnreadableRecordPastTheWaitIsGivenUp(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	cfg.RedConfirmWait = 50 * time.Millisecond
	h := newHarness(t, harnessOptions{pipeline: cfg})
	st := &failingGets{Store: h.db}
	st.fail.Store(true)
	p := firstRun(t, h, cfg, st, nil, false)
	raw := publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, "UNREADABLE-1", nil))
	if out := deliverRaw(t, p, raw, cfg.MaxDeliver+1); out.Action != pipeline.Nak {
		t.Fatalf("within the wait: %s %s; want put back", out.Action, out.Event)
	}
	time.Sleep(time.Until(raw.Time.Add(2 * cfg.RedConfirmWait)))
	out := deliverRaw(t, p, raw, cfg.MaxDeliver+2)
	if out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("past the wait: %s %s, dead letter %q; want given up", out.Action, out.Event, out.DeadLetter)
	}
}

// A waiting form given up without its record written keeps the counts of
// the request given up: the order store could not be read for twice
// RedConfirmWait after the request's publication, or MaxDeliver of its
// deliveries panicked. Its dead letter, replayed once the cause is fixed and the
// old wait is over, waits for the buyer afresh, as the replay of any other
// give-up does, rather than being given up again at its first answer; the
// replay's own deliveries then count, and its own wait ends it.
func TestReplayOfAFormGivenUpUnrecordedWaitsAfresh(t *testing.T) {
	for _, cause := range []string{"the record unreadable", "a panic"} {
		t.Run(cause, func(t *testing.T) {
			cfg := fast
			cfg.MaxDeliver = 3
			cfg.RedConfirmWait = time.Second
			h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
			st := &failingGets{Store: h.db}
			p := firstRun(t, h, cfg, st, nil, false)
			key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-UNREC-J"}
			body := redConfirmRequest(t, jumdataSeller, key.OrderNo, issuedBlue(t, h, p, "BLUE-UNREC-J"))
			raw := publishRaw(t, h, jumdataSeller, body)
			d := 1
			for ; d <= cfg.MaxDeliver+1; d++ {
				if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
					t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
				}
			}
			buggy := p
			if cause == "a panic" {
				provs := pipeline.ProviderMap{jumdataSeller: panicky{h.provs[jumdataSeller]}}
				buggy = pipelineOverProviders(t, h, cfg, h.db, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), provs)
			} else {
				st.fail.Store(true)
				time.Sleep(time.Until(raw.Time.Add(2 * cfg.RedConfirmWait)))
			}
			var out pipeline.Outcome
			for ; out.Action != pipeline.Term; d++ {
				if d > 20 {
					t.Fatalf("not given up by delivery %d: %s %s", d, out.Action, out.Event)
				}
				out = deliverRaw(t, buggy, raw, d)
			}
			st.fail.Store(false)
			rec, _, err := h.db.Get(context.Background(), key)
			if err != nil || rec.State != schemas.StateAccepted || rec.WaitingSince.IsZero() {
				t.Fatalf("after the give-up: %s, waiting since %v (%v); want the record left as it was", rec.State, rec.WaitingSince, err)
			}
			time.Sleep(time.Until(rec.WaitingSince.Add(cfg.RedConfirmWait))) // the old wait is over

			replay := publishReplayed(t, h, jumdataSeller, body, 1)
			for r := 1; r <= 2; r++ {
				if out = deliverRaw(t, p, replay, r); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
					t.Fatalf("replay delivery %d: %s %s %q %s; want put back, waiting afresh", r, out.Action, out.Event, out.DeadLetter, out.Reason)
				}
				rec, _, _ = h.db.Get(context.Background(), key)
				if rec.WaitPolls != r || rec.WaitingSince.Before(replay.Time) {
					t.Fatalf("replay delivery %d: %d wait polls, waiting since %v; want %d since the replay (%v)", r, rec.WaitPolls, rec.WaitingSince, r, replay.Time)
				}
			}
			time.Sleep(time.Until(rec.WaitingSince.Add(cfg.RedConfirmWait)))
			if out = deliverRaw(t, p, replay, 3); out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
				t.Fatalf("the replay past its own wait: %s %s %q; want given up", out.Action, out.Event, out.DeadLetter)
			}
		})
	}
}

// publishReplayed publishes data as publisher dlq replay republishes the
// request of dead letter #deadLetter, and returns it as the stream holds it.
func publishReplayed(t *testing.T, h *harness, seller string, data []byte, deadLetter uint64) *jetstream.RawStreamMsg {
	t.Helper()
	m := &nats.Msg{Subject: schemas.Subjects{}.Request(seller), Data: data, Header: nats.Header{}}
	m.Header.Set(pipeline.HeaderReplayOf, strconv.FormatUint(deadLetter, 10))
	return publishRawMsg(t, h, m)
}

// publishReplayOf republishes the request of dl, dead letter #deadLetter,
// as publisher dlq replay does: on its original subject, marked
// HeaderReplayOf, and saying when the request first entered the request
// stream (HeaderReplayPublished, pipeline.ReplayPublished) and, when the
// dead letter's headers dlHeader say it, where
// (HeaderReplayPosition, pipeline.ReplayPosition). It returns it as the
// stream holds it.
func publishReplayOf(t *testing.T, h *harness, dl schemas.DeadLetter, dlHeader map[string][]string, deadLetter uint64) *jetstream.RawStreamMsg {
	t.Helper()
	m := &nats.Msg{Subject: dl.OriginalSubject, Data: dl.Payload, Header: nats.Header{}}
	m.Header.Set(pipeline.HeaderReplayOf, strconv.FormatUint(deadLetter, 10))
	if v := pipeline.ReplayPublished(&dl); v != "" {
		m.Header.Set(pipeline.HeaderReplayPublished, v)
	}
	if v := pipeline.ReplayPosition(&dl, dlHeader); v != "" {
		m.Header.Set(pipeline.HeaderReplayPosition, v)
	}
	return publishRawMsg(t, h, m)
}

// issuedBlue issues a jumdata blue invoice for orderNo through p and returns
// it, as a red confirmation reverses it.
func issuedBlue(t *testing.T, h *harness, p *pipeline.Pipeline, orderNo string) schemas.Invoice {
	t.Helper()
	if out := deliverRaw(t, p, publishRaw(t, h, jumdataSeller, issueRequest(t, jumdataSeller, orderNo, nil)), 1); out.Status != schemas.StatusIssued {
		t.Fatalf("blue invoice: %s %s", out.Event, out.Status)
	}
	rec, _, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: orderNo})
	if err != nil || len(rec.Invoices) != 1 {
		t.Fatalf("blue record: %+v %v", rec, err)
	}
	return rec.Invoices[0]
}

// A form's wait runs RedConfirmWait from WaitingSince, which may come long
// after the request's publication (a backlog, an outage, a held seller, a
// form still being applied for). One failed read of its record past
// MaxDeliver, after RedConfirmWait since publication but within its wait,
// puts it back.
func TestWaitingFormThatBeganLateOutlivesAFailedRead(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	cfg.RedConfirmWait = time.Second
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	st := &failingGets{Store: h.db}
	p := firstRun(t, h, cfg, st, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-LATE-J", issuedBlue(t, h, p, "BLUE-LATE-J")))
	time.Sleep(600 * time.Millisecond) // the request waits before it is taken
	for d := 1; d <= 5; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	rec, _, _ := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-LATE-J"})
	time.Sleep(time.Until(raw.Time.Add(cfg.RedConfirmWait + 100*time.Millisecond)))
	if left := time.Until(rec.WaitingSince.Add(cfg.RedConfirmWait)); left < 200*time.Millisecond {
		t.Skipf("too slow: the wait has only %s left", left)
	}
	st.fail.Store(true)
	out := deliverRaw(t, p, raw, 6)
	st.fail.Store(false)
	if out.Action != pipeline.Nak {
		t.Fatalf("one failed read of a form with %s of its wait left: %s %s, dead letter %q; want put back",
			time.Until(rec.WaitingSince.Add(cfg.RedConfirmWait)), out.Action, out.Event, out.DeadLetter)
	}
}

// A waiting form passes through its MaxDeliver-th delivery like any other:
// its polls did not count, so that delivery is not its last. One failed read
// of its record on exactly that delivery puts it back, as it does on the
// deliveries before and after it; it is not given up.
func TestWaitingFormOutlivesAFailedReadAtMaxDeliver(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	st := &failingGets{Store: h.db}
	p := firstRun(t, h, cfg, st, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-RF-MAX", issuedBlue(t, h, p, "BLUE-RF-MAX")))
	for d := 1; d < cfg.MaxDeliver; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	st.fail.Store(true)
	out := deliverRaw(t, p, raw, cfg.MaxDeliver)
	st.fail.Store(false)
	if out.Action != pipeline.Nak {
		t.Fatalf("one failed read on delivery %d (MaxDeliver) of a form that waited %d polls: %s %s, dead letter %q; want put back",
			cfg.MaxDeliver, cfg.MaxDeliver-1, out.Action, out.Event, out.DeadLetter)
	}
	if out := deliverRaw(t, p, raw, cfg.MaxDeliver+1); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
		t.Fatalf("delivery %d, the store readable again: %s %s", cfg.MaxDeliver+1, out.Action, out.Event)
	}
}

// A jumdata red confirmation form that waits for the seller's confirmation
// is confirmed once it has waited RedConfirmAfter, and issued: the record
// keeps the confirmed form, so that later polls do not confirm it again.
// Before, it was polled until RedConfirmWait and given up as failed.
func TestJumdataRedFormAwaitingTheSellerIsIssued(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast, redConfirmAfter: 200 * time.Millisecond,
		sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedAwait: sandbox.RedAwaitSeller}}})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "BLUE-S-J", nil), "")
	blue := h.waitResult(jumdataSeller, "BLUE-S-J", 1, 10*time.Second)[0]
	if blue.Status != schemas.StatusIssued {
		t.Fatalf("blue invoice: %+v", blue)
	}
	h.publish(jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-S-J", blue.Invoices[0]), "")
	res := h.waitResult(jumdataSeller, "RC-S-J", 1, 20*time.Second)[0]
	if res.Status != schemas.StatusIssued || len(res.Invoices) != 1 || !res.Invoices[0].TotalAmount.Decimal().IsNegative() {
		t.Fatalf("red confirmation: %s %+v %+v", res.Status, res.Invoices, res.Error)
	}
	// An issued result is published while its record is saved.
	var rec schemas.OrderRecord
	h.waitFor("the issued red confirmation's record", 10*time.Second, func() bool {
		r, _, err := h.db.Get(context.Background(), schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RC-S-J"})
		rec = r
		return err == nil && r.State == schemas.StateIssued
	})
	if rec.Refs.BillNo == "" || rec.Refs.ConfirmedForm != rec.Refs.BillNo {
		t.Fatalf("record refs %+v: want the form confirmed", rec.Refs)
	}
	if st := h.sb.Stats(); len(st.Duplicates) != 0 {
		t.Fatalf("duplicates %v", st.Duplicates)
	}
}

// A form waiting for the buyer is past MaxDeliver deliveries, its polls not
// counted; a delivery that panics (a bug) is put back as any other
// failure, and the request is given up only once MaxDeliver deliveries
// that were not polls have panicked.
func TestAWaitingFormIsNotGivenUpAtItsFirstPanic(t *testing.T) {
	cfg := fast
	cfg.MaxDeliver = 3
	cfg.RedConfirmWait = time.Hour
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Jumdata: sandbox.JumdataConfig{RedPendingPolls: 1000}}})
	p := firstRun(t, h, cfg, h.db, nil, false)
	raw := publishRaw(t, h, jumdataSeller, redConfirmRequest(t, jumdataSeller, "RC-PANIC-W", issuedBlue(t, h, p, "BLUE-PANIC-W")))
	d := 1
	for ; d <= cfg.MaxDeliver+2; d++ {
		if out := deliverRaw(t, p, raw, d); out.Action != pipeline.Nak || out.Event != pipeline.EventAccepted {
			t.Fatalf("delivery %d: %s %s", d, out.Action, out.Event)
		}
	}
	provs := pipeline.ProviderMap{jumdataSeller: panicky{h.provs[jumdataSeller]}}
	buggy := pipelineOverProviders(t, h, cfg, h.db, pipeline.NewJetStreamPublisher(h.js, schemas.Subjects{}), provs)
	for i := 1; i < cfg.MaxDeliver; i, d = i+1, d+1 {
		if out := deliverRaw(t, buggy, raw, d); out.Action != pipeline.Nak || out.DeadLetter != "" {
			t.Fatalf("panic %d (delivery %d): %s %s, dead letter %q; want put back", i, d, out.Action, out.Event, out.DeadLetter)
		}
	}
	if out := deliverRaw(t, buggy, raw, d); out.Action != pipeline.Term || out.DeadLetter != schemas.ReasonExhausted {
		t.Fatalf("panic %d (delivery %d): %s %s, dead letter %q; want given up", cfg.MaxDeliver, d, out.Action, out.Event, out.DeadLetter)
	}
}
