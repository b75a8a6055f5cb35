package pipeline_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/fapiaohub/invoicer/schemas/schematest"
)

// issueRequest builds a valid "issue" request for seller
// (schematest.IssueRequest); edit may change the order before it is
// encoded.
func issueRequest(t testing.TB, seller, orderNo string, edit func(o *schemas.Order)) []byte {
	t.Helper()
	return schematest.IssueRequest(seller, orderNo, edit)
}

// redConfirmRequest builds a valid "red_confirm" request reversing blue in
// full.
func redConfirmRequest(t testing.TB, seller, orderNo string, blue schemas.Invoice) []byte {
	t.Helper()
	number := blue.DigitalInvoiceNo
	if number == "" {
		number = blue.InvoiceNo
	}
	return mustJSON(t, schemas.Request{SchemaVersion: "1", Kind: schemas.KindRedConfirm, SellerTaxNum: seller, OrderNo: orderNo,
		RedConfirm: &schemas.RedConfirm{
			BlueInvoiceLine: "pc", ApplySource: "0", BlueElecInvoiceNumber: number,
			BlueInvoiceTime: blue.IssuedAt.In(time.FixedZone("CST", 8*3600)).Format("2006-01-02 15:04:05"),
			SellerTaxNo:     seller, SellerName: "杭州示例销售有限公司", BuyerTaxNo: "91440101MA5APD8X8J", BuyerName: "杭州示例科技有限公司",
			RedReason: "2",
		}})
}

// reissueRequest builds a valid "reissue" request for the order failedOrder.
func reissueRequest(t testing.TB, seller, orderNo, failedOrder string) []byte {
	t.Helper()
	return mustJSON(t, schemas.Request{SchemaVersion: "1", Kind: schemas.KindReissue, SellerTaxNum: seller, OrderNo: orderNo,
		Reissue: &schemas.Reissue{OrderNo: failedOrder}})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
