package schematest

import (
	"encoding/json"

	"github.com/fapiaohub/invoicer/schemas"
)

// IssueOrder returns a valid order (the package's one goods line) of
// seller under orderNo.
func IssueOrder(seller, orderNo string) *schemas.Order {
	return &schemas.Order{
		BuyerName: "杭州示例科技有限公司", BuyerTaxNum: "91440101MA5APD8X8J", SalerTaxNum: seller, SalerTel: "0571-77777777",
		SalerAddress: "杭州市西湖区文三路1号", OrderNo: orderNo, InvoiceDate: "2026-11-20 10:15:00", Clerk: "张三",
		PushMode: "-1", InvoiceType: "1", InvoiceLine: "pc",
		InvoiceDetail: []schemas.InvoiceLine{{
			GoodsName: "技术服务费", GoodsCode: "3040201990000000000", WithTaxFlag: "1",
			Price: schemas.ParseAmount("106"), Num: schemas.ParseAmount("1"), TaxRate: schemas.ParseAmount("0.06"),
			TaxIncludedAmount: schemas.ParseAmount("106.00"), TaxExcludedAmount: schemas.ParseAmount("100.00"), Tax: schemas.ParseAmount("6.00"),
		}},
	}
}

// IssueRequest returns a valid "issue" request of seller under orderNo
// (IssueOrder's order), encoded; edit, when not nil, changes the order
// before it is encoded.
func IssueRequest(seller, orderNo string, edit func(o *schemas.Order)) []byte {
	o := IssueOrder(seller, orderNo)
	if edit != nil {
		edit(o)
	}
	b, err := json.Marshal(schemas.Request{SchemaVersion: "1", Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: orderNo, Order: o})
	if err != nil {
		// A Request of these types always encodes: its amounts are
		// text, and it holds no map, channel or func.
		panic("schematest: encode a request: " + err.Error())
	}
	return b
}
