package jumdata_test

import (
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/sandbox"
)

// A buyer name with a space at either end, which the validator accepts and
// invoiceData sends as it is, must not hide the order's own invoice from the
// search past the taskId's life: reading the list trims the listed gmfmc, so
// comparing it with the untrimmed name found nothing, answered NotFound, and
// the pipeline's next Submit issued a second invoice under the forgotten
// taskId.
func TestSearchFindsInvoiceOfBuyerNameWithSpaces(t *testing.T) {
	e := newEnv(t, sandbox.Config{}, nil)
	call := &providers.Call{Request: issueRequest(t, "ORD-SP",
		`"buyerName": "杭州示例科技有限公司"`, `"buyerName": "杭州示例科技有限公司 "`)}
	call.SubmittedAt = e.clock.Now()
	wantClass(t, "submit", e.client.Submit(t.Context(), call), providers.Issued, "200")

	// The answer was lost and nobody asked for 9 hours: jumdata forgot the taskId.
	e.clock.Advance(9 * time.Hour)
	out := e.client.Query(t.Context(), call)
	if out.Class == providers.NotFound {
		// What the pipeline does with NotFound: submit again.
		e.client.Submit(t.Context(), call)
		e.noDuplicates()
	}
	wantClass(t, "query", out, providers.Issued, "")
}
