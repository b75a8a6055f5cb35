package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
)

// offsetClock is a clock for the sandbox and the jumdata client that a test
// moves forward (the tax bureau completing a task on its own, a taskId
// forgotten) while the pipeline runs on the real one.
type offsetClock struct{ d atomic.Int64 }

func (c *offsetClock) Now() time.Time           { return time.Now().Add(time.Duration(c.d.Load())) }
func (c *offsetClock) Advance(by time.Duration) { c.d.Add(int64(by)) }

// useJumdata replaces the harness's jumdata client by one built with edit.
func useJumdata(t *testing.T, h *harness, edit func(*jumdata.Config)) {
	t.Helper()
	cfg := jumdata.Config{BaseURL: h.sbURL, AppID: sandbox.DefaultJumdataAppID, AppSecret: sandbox.DefaultJumdataSecret,
		Token: sandbox.DefaultJumdataToken, SellerTaxNum: jumdataSeller, DQ: sandbox.DefaultJumdataDQ, Gryhm: sandbox.DefaultJumdataGryhm,
		HTTP: providers.HTTPConfig{Timeout: 5 * time.Second}, PollAfter: 50 * time.Millisecond}
	edit(&cfg)
	c, err := jumdata.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.provs[jumdataSeller] = c
}

// A repetition of a task that jumdata refuses (the data sent changed with
// the configuration while the task was under way) is not a rejection: the
// task may still issue, and a "rejected" would invite a corrected request
// under a taskId of its own, a second invoice. The order waits, and is
// found issued once the tax bureau completes the task.
func TestRefusedRepetitionIsNotARejection(t *testing.T) {
	clk := &offsetClock{}
	cfg := fast
	cfg.MaxDeliver = 1000
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Now: clk.Now, Jumdata: sandbox.JumdataConfig{PendingPolls: 1_000_000}}})
	h.start()
	ctx := context.Background()
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RS-REP-1"}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, nil), "")
	h.waitFor("the order accepted at jumdata", 10*time.Second, func() bool {
		rec, found, _ := h.db.Get(ctx, key)
		return found && rec.State == schemas.StateAccepted
	})
	h.stop()
	// The operator adds the seller's name (xsfmc) and restarts the consumer.
	useJumdata(t, h, func(c *jumdata.Config) { c.SellerName = "杭州示例销售有限公司" })
	h.start()
	h.waitFor("the refused repetitions", 10*time.Second, func() bool {
		rec, _, _ := h.db.Get(ctx, key)
		return rec.Attempts >= 4
	})
	h.caughtUp(10 * time.Second) // a result published so far is collected
	if res := h.resultsFor(jumdataSeller, key.OrderNo); len(res) != 0 {
		t.Fatalf("results while the task is under way: %+v", res)
	}
	if rec, _, _ := h.db.Get(ctx, key); rec.State.Finished() {
		t.Fatalf("stored %s while the task is under way: %+v", rec.State, rec.LastError)
	}

	clk.Advance(6 * time.Minute) // the tax bureau completes the task on its own
	r := h.waitResult(jumdataSeller, key.OrderNo, 1, 15*time.Second)[0]
	if r.Status != schemas.StatusIssued || len(r.Invoices) != 1 {
		t.Fatalf("result: %+v %+v", r, r.Error)
	}
	if st := h.orderStats(jumdataSeller, key.OrderNo); st.Issuances != 1 || st.Invoices != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// A look-up that jumdata refuses (400 to blue-invoice/query) says nothing of
// the order: it is asked again, not answered "rejected" while its invoice
// exists.
func TestRefusedSearchIsNotARejection(t *testing.T) {
	clk := &offsetClock{}
	cfg := fast
	cfg.MaxDeliver = 1000
	h := newHarness(t, harnessOptions{pipeline: cfg, sandbox: sandbox.Config{Now: clk.Now}})
	useJumdata(t, h, func(c *jumdata.Config) { c.Now = clk.Now })
	ctx := context.Background()
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RS-SEARCH-1"}
	h.sb.SetFaults(sandbox.Faults{Drop: 1, Seed: 3}) // every answer lost: issued, unknown to the pipeline
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, nil), "")
	h.waitFor("the order submitted and in doubt", 10*time.Second, func() bool {
		rec, found, _ := h.db.Get(ctx, key)
		return found && rec.Submissions > 0 && rec.Attempts >= 3
	})
	h.stop()
	if st := h.orderStats(jumdataSeller, key.OrderNo); st.Issuances != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
	clk.Advance(9 * time.Hour) // jumdata has forgotten the taskId: the search decides
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/query", Code: "400", Message: "参数错误", Times: 2}}})
	h.start()
	r := h.waitResult(jumdataSeller, key.OrderNo, 1, 15*time.Second)[0]
	if r.Status != schemas.StatusIssued || len(r.Invoices) != 1 {
		t.Fatalf("result: %+v %+v", r, r.Error)
	}
	if st := h.orderStats(jumdataSeller, key.OrderNo); st.Issuances != 1 || st.Invoices != 1 {
		t.Fatalf("sandbox: %+v", st)
	}
}

// An order rejected on a refusal that is not the tax bureau's refusal of its
// task keeps its taskId for a corrected request: jumdata may still hold a
// task under it.
func TestOnlyARefusedTaskRestarts(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	ctx := context.Background()
	key := schemas.OrderKey{Seller: jumdataSeller, OrderNo: "RS-400-1"}
	h.sb.SetFaults(sandbox.Faults{Script: []sandbox.ScriptedAnswer{{Provider: "jumdata", Method: "blue-invoice/submit", Code: "400", Message: "参数错误"}}})
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, nil), "")
	if r := h.waitResult(jumdataSeller, key.OrderNo, 1, 15*time.Second)[0]; r.Status != schemas.StatusRejected {
		t.Fatalf("first request: %+v", r)
	}
	if rec, _, _ := h.db.Get(ctx, key); rec.Refused {
		t.Fatalf("a 400 recorded as the task refused for good: %+v", rec)
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, key.OrderNo, func(o *schemas.Order) { o.Remark = "更正" }), "")
	if r := h.waitResult(jumdataSeller, key.OrderNo, 2, 15*time.Second)[1]; r.Status != schemas.StatusIssued {
		t.Fatalf("corrected request: %+v %+v", r, r.Error)
	}
	if rec := h.issuedRecord(key); rec.Restarts != 0 || rec.Refs.TaskID != jumdata.TaskID(key.Seller, key.OrderNo, 0) {
		t.Fatalf("corrected request: restarts %d, refs %+v; want the order's first taskId", rec.Restarts, rec.Refs)
	}
}

// A restarted order's taskId is never another order's: "CX" restarted once
// and an order "CX:1" go under different tasks.
func TestRestartedTaskIDIsNotAnotherOrders(t *testing.T) {
	h := newHarness(t, harnessOptions{pipeline: fast})
	h.start()
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "CX", func(o *schemas.Order) { o.Remark = "SANDBOX:FAIL" }), "")
	if r := h.waitResult(jumdataSeller, "CX", 1, 15*time.Second)[0]; r.Status != schemas.StatusRejected {
		t.Fatalf("CX: %+v", r)
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "CX:1", nil), "")
	if r := h.waitResult(jumdataSeller, "CX:1", 1, 15*time.Second)[0]; r.Status != schemas.StatusIssued {
		t.Fatalf("CX:1: %+v", r)
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "CX", nil), "")
	if c := h.waitResult(jumdataSeller, "CX", 2, 15*time.Second)[1]; c.Status != schemas.StatusIssued {
		t.Fatalf("corrected CX: %s %+v", c.Status, c.Error)
	}
}

// A held seller's probe that the client answers by itself, without calling
// the provider (jumdata cannot look up an earlier request by content),
// leaves the seller held: nobody has acted, and the seller's orders would
// reach jumdata again and open a second episode for the same face scan.
func TestLocalAnswerLeavesTheSellerHeld(t *testing.T) {
	h := startGivingUpSoon(t) // MaxDeliver 3
	failAfterSubmission(t, h, jumdataSeller, "HP-1")
	h.sb.SetFaults(sandbox.Faults{FaceAuthSellers: []string{jumdataSeller}})
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "HP-A", nil), "")
	h.waitFor("HP-A given up", 15*time.Second, func() bool {
		for _, r := range h.resultsFor(jumdataSeller, "HP-A") {
			if r.Status == schemas.StatusFailed {
				return true
			}
		}
		return false
	})
	if _, held := h.p.HeldSellers()[jumdataSeller]; !held {
		t.Fatal("the seller is not held after HP-A")
	}
	time.Sleep(2 * fast.HoldProbe) // the next probe is due
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "HP-1", func(o *schemas.Order) { o.Remark = "更正" }), "")
	if c := h.waitResult(jumdataSeller, "HP-1", 2, 15*time.Second)[1]; c.Status != schemas.StatusConflict {
		t.Fatalf("corrected HP-1: %+v", c)
	}
	if _, held := h.p.HeldSellers()[jumdataSeller]; !held {
		t.Fatal("the hold was released by a probe that never reached jumdata; the face scan is still missing")
	}
	h.publish(jumdataSeller, issueRequest(t, jumdataSeller, "HP-B", nil), "")
	h.waitResult(jumdataSeller, "HP-B", 1, 15*time.Second)
	h.settled(15 * time.Second) // a later action_required result would be collected by now
	var alerts []string
	for _, no := range []string{"HP-A", "HP-B"} {
		for _, r := range h.resultsFor(jumdataSeller, no) {
			if r.Status == schemas.StatusActionRequired {
				alerts = append(alerts, no)
			}
		}
	}
	if len(alerts) > 1 {
		t.Fatalf("action_required results for one face scan: %v", alerts)
	}
}
