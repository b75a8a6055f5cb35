package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
)

// TestPublishWaitDuplicateIsNotAnsweredByAnotherRequest: publish --wait asks
// the status service about a duplicate whose first copy still waits in the
// request stream. The order's stored result there is that of an earlier,
// different request for the order (rejected; the one published now is its
// correction): it is not this request's, which is still to be processed.
func TestPublishWaitDuplicateIsNotAnsweredByAnotherRequest(t *testing.T) {
	env := MustNATS(t)
	const orderNo = "CORRECTED-1"
	// The status service: the order is stored rejected, for another body.
	sub, err := env.nc.Subscribe(schemas.Subjects{}.Status(), func(m *nats.Msg) {
		old := &schemas.Result{SchemaVersion: "1", SellerTaxNum: nuonuoSeller, OrderNo: orderNo, Kind: schemas.KindIssue,
			Status: schemas.StatusRejected, Fingerprint: "0123456789abcdef0123456789abcdef", CompletedAt: time.Now(),
			Invoices: []schemas.Invoice{}, Error: &schemas.ErrorInfo{Code: schemas.CodeProviderFailed, Message: "the earlier request's failure"}}
		b, _ := json.Marshal(pipeline.StatusReply{Found: true, Order: &schemas.OrderRecord{Seller: nuonuoSeller, OrderNo: orderNo, State: schemas.StateRejected}, Result: old})
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	f := writeFile(t, "b.json", issueRequest(t, nuonuoSeller, orderNo))
	// The corrected request is queued; no consumer takes it meanwhile.
	if out, errOut, code := runCLI(t, "", "--server", env.url, "publish", f); code != exitOK {
		t.Fatalf("publish: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := runCLI(t, "", "--server", env.url, "--timeout", "1s", "publish", "--wait", f)
	if !strings.Contains(out, "duplicate: the same request is in the stream already") {
		t.Fatalf("second publish: exit %d, not a waiting duplicate\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "rejected") || strings.Contains(out, "earlier request's failure") || !strings.Contains(out, "1 without a result within 1s") || code != exitFailed {
		t.Errorf("the queued request was reported with another request's result: exit %d\n%s%s", code, out, errOut)
	}
}
