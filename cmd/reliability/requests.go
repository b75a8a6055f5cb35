package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/shopspring/decimal"
)

// validRequest returns a valid "issue" request for seller: 1 to 3 goods
// lines at random rates and prices, sometimes with a discount line, the
// amounts computed in decimal so that the arithmetic rules hold.
func validRequest(r *rand.Rand, seller, orderNo string, buyer string) []byte {
	rates := []string{"0.13", "0.09", "0.06", "0.03"}
	var lines []schemas.InvoiceLine
	for i := range 1 + r.IntN(3) {
		rate := decimal.RequireFromString(rates[r.IntN(len(rates))])
		price := decimal.New(int64(100+r.IntN(99900)), -2) // 1.00 .. 999.99, tax included
		num := decimal.NewFromInt(int64(1 + r.IntN(5)))
		incl := price.Mul(num).Round(2)
		excl := incl.Div(decimal.NewFromInt(1).Add(rate)).Round(2)
		tax := incl.Sub(excl)
		name := fmt.Sprintf("测试商品%d", i)
		discounted := r.IntN(4) == 0
		prop := schemas.LineNormal
		if discounted {
			prop = schemas.LineDiscounted
		}
		lines = append(lines, schemas.InvoiceLine{
			GoodsName: name, GoodsCode: "1090511010000000000", WithTaxFlag: "1",
			Price: schemas.ParseAmount(price.String()), Num: schemas.ParseAmount(num.String()), TaxRate: schemas.ParseAmount(rate.String()),
			TaxIncludedAmount: schemas.AmountOf(incl, 2), TaxExcludedAmount: schemas.AmountOf(excl, 2), Tax: schemas.AmountOf(tax, 2),
			InvoiceLineProperty: prop,
		})
		if discounted {
			dIncl := incl.Div(decimal.NewFromInt(10)).Round(2)
			dExcl := dIncl.Div(decimal.NewFromInt(1).Add(rate)).Round(2)
			lines = append(lines, schemas.InvoiceLine{
				GoodsName: name, GoodsCode: "1090511010000000000", WithTaxFlag: "1", TaxRate: schemas.ParseAmount(rate.String()),
				TaxIncludedAmount: schemas.AmountOf(dIncl.Neg(), 2), TaxExcludedAmount: schemas.AmountOf(dExcl.Neg(), 2),
				Tax: schemas.AmountOf(dIncl.Sub(dExcl).Neg(), 2), InvoiceLineProperty: schemas.LineDiscount,
			})
		}
	}
	return mustJSON(schemas.Request{
		SchemaVersion: "1", Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: orderNo,
		Order: &schemas.Order{
			BuyerName: buyer, BuyerTaxNum: "91440101MA5APD8X8J", SalerTaxNum: seller, OrderNo: orderNo,
			InvoiceDate: "2026-11-20 10:15:00", Clerk: "张三", PushMode: "-1", InvoiceType: "1", InvoiceLine: "pc",
			InvoiceDetail: lines,
		},
	})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own values are encoded
	}
	return b
}

// expectation is what a hostile message must get.
type expectation string

const (
	expectRejected  expectation = "rejected"  // a rejected result
	expectMalformed expectation = "malformed" // a malformed dead letter
	expectIssued    expectation = "issued"    // valid after all (for example exactly at the size limit)
)

// hostileMessage is one message of the hostile corpus.
type hostileMessage struct {
	name    string
	subject string // "" means the seller's own request subject
	data    []byte
	expect  expectation
	// seller is the seller the message was made for, and orderNos the
	// order numbers it names (namedOrders): the check looks them up at the
	// sandbox, where only an expectIssued message's may appear.
	seller   string
	orderNos []string
}

// namedOrders returns the order numbers a hostile message names: built,
// the order number of the valid request it was made from ("" for none), and
// any other that its edits put at orderNo or order.orderNo. Every one of
// them is the corpus's own, never a valid order's.
func namedOrders(built string, data []byte) []string {
	var names []string
	if built != "" {
		names = append(names, built)
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return names
	}
	order, _ := m["order"].(map[string]any)
	for _, v := range []any{m["orderNo"], order["orderNo"]} {
		if no, ok := v.(string); ok && no != "" && !slices.Contains(names, no) {
			names = append(names, no)
		}
	}
	return names
}

// hostileCorpus builds at least 100 hostile messages: truncated and invalid
// JSON, wrong types, invalid UTF-8, control characters, absurd nesting, huge
// numbers, NaN and Infinity strings, negative and over-precise amounts,
// payloads at and above the size limit, missing bodies, mismatched kinds and
// the wrong seller in the subject. Each is built from a valid request, so that
// only the named defect is wrong.
func hostileCorpus(r *rand.Rand, seller, prefix string, maxBytes int) []hostileMessage {
	var out []hostileMessage
	n := 0
	built := "" // the order number of the valid request the next message is made from
	base := func() []byte {
		n++
		built = fmt.Sprintf("%s-H%03d", prefix, n)
		return validRequest(r, seller, built, "恶意输入测试")
	}
	push := func(h hostileMessage) {
		h.seller, h.orderNos = seller, namedOrders(built, h.data)
		built = ""
		out = append(out, h)
	}
	add := func(name string, expect expectation, data []byte) {
		push(hostileMessage{name: name, data: data, expect: expect})
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(base(), &m)
		f(m)
		return mustJSON(m)
	}
	line := func(m map[string]any) map[string]any {
		return m["order"].(map[string]any)["invoiceDetail"].([]any)[0].(map[string]any)
	}

	// Truncated and invalid JSON, at ten cut points.
	for i := 1; i <= 10; i++ {
		b := base()
		add(fmt.Sprintf("truncated at %d%%", i*9), expectMalformed, b[:len(b)*i*9/100])
	}
	for _, s := range []string{"", " ", "null", "[]", "\"issue\"", "42", "{", "}", "{]", "{\"kind\":}", "{'kind':'issue'}",
		"{\"kind\":\"issue\",}", "kind=issue&orderNo=1", "<xml/>", "{\"a\":1}{\"b\":2}", "\x00\x01\x02", "{\"price\":NaN}",
		"{\"price\":Infinity}", "{\"price\":-Infinity}", "{\"price\":0x10}"} {
		add(fmt.Sprintf("not a request %q", s), expectMalformed, []byte(s))
	}
	// Invalid UTF-8 and control characters.
	for i, bad := range []string{"\xff", "\xc3\x28", "\xe2\x28\xa1", "\xf0\x90\x28\xbc", "\xed\xa0\x80"} {
		b := base()
		b = []byte(strings.Replace(string(b), "恶意输入测试", "x"+bad+"y", 1))
		add(fmt.Sprintf("invalid UTF-8 #%d", i), expectMalformed, b)
	}
	for _, c := range []string{"\u0000", "\u0007", "\u001b[31m", "\u007f", "\u0085", "\r\n"} {
		c := c
		add(fmt.Sprintf("control character %q in buyerName", c), expectRejected, edit(func(m map[string]any) {
			m["order"].(map[string]any)["buyerName"] = "买方" + c
		}))
	}
	// Absurd nesting.
	for _, depth := range []int{20, 100, 10000} {
		add(fmt.Sprintf("nested %d deep", depth), expectMalformed, []byte(strings.Repeat("[", depth)+strings.Repeat("]", depth)))
	}
	add("deep object in a field", expectMalformed, edit(func(m map[string]any) {
		var v any = "x"
		for range 30 {
			v = map[string]any{"a": v}
		}
		m["order"].(map[string]any)["remark"] = v
	}))
	// Wrong types.
	for field, v := range map[string]any{"invoiceType": 1, "buyerName": true, "invoiceDetail": "lines", "pushMode": -1, "clerk": []any{"张三"}, "orderNo": nil} {
		field, v := field, v
		add("wrong type for order."+field, expectRejected, edit(func(m map[string]any) { m["order"].(map[string]any)[field] = v }))
	}
	for field, v := range map[string]any{"kind": 7, "orderNo": 123, "sellerTaxNum": map[string]any{}, "schemaVersion": 1} {
		field, v := field, v
		add("wrong type for "+field, expectRejected, edit(func(m map[string]any) { m[field] = v }))
	}
	// Huge numbers, NaN and Infinity strings, negative and over-precise amounts.
	for _, v := range []any{json.Number("1e999999999"), json.Number("-1e-999999999"), json.Number(strings.Repeat("9", 400)), json.Number("1" + strings.Repeat("0", 30)),
		"NaN", "Infinity", "-Infinity", "1e5", "0x10", "1,000.00", " 1.00", "１００", "-0.65", "0.651", "0.6500000001"} {
		v := v
		add(fmt.Sprintf("tax = %.20v", v), expectRejected, edit(func(m map[string]any) { line(m)["tax"] = v }))
	}
	for _, v := range []any{"-5.65", json.Number("-5.65"), "5.655", "0.000000001", "99999999999999999999.99"} {
		v := v
		add(fmt.Sprintf("taxIncludedAmount = %v", v), expectRejected, edit(func(m map[string]any) { line(m)["taxIncludedAmount"] = v }))
	}
	for _, v := range []any{"-1", "0", "1.123456789", "abc"} {
		v := v
		add(fmt.Sprintf("num = %v", v), expectRejected, edit(func(m map[string]any) { line(m)["num"] = v }))
	}
	for _, v := range []any{"0.07", "13%", "-0.13", "0.130000001"} {
		v := v
		add(fmt.Sprintf("taxRate = %v", v), expectRejected, edit(func(m map[string]any) { line(m)["taxRate"] = v }))
	}
	// Missing bodies and mismatched kinds.
	add("issue without order", expectRejected, edit(func(m map[string]any) { delete(m, "order") }))
	add("issue with no lines", expectRejected, edit(func(m map[string]any) { m["order"].(map[string]any)["invoiceDetail"] = []any{} }))
	add("null order", expectRejected, edit(func(m map[string]any) { m["order"] = nil }))
	add("kind red_confirm with an order body", expectRejected, edit(func(m map[string]any) { m["kind"] = "red_confirm" }))
	add("kind reissue with an order body", expectRejected, edit(func(m map[string]any) { m["kind"] = "reissue" }))
	add("unknown kind", expectRejected, edit(func(m map[string]any) { m["kind"] = "void" }))
	add("missing kind", expectRejected, edit(func(m map[string]any) { delete(m, "kind") }))
	add("two bodies", expectRejected, edit(func(m map[string]any) { m["reissue"] = map[string]any{"orderno": "X"} }))
	add("unknown top-level field", expectRejected, edit(func(m map[string]any) { m["priority"] = "urgent" }))
	add("missing orderNo", expectRejected, edit(func(m map[string]any) { delete(m, "orderNo") }))
	add("orderNo of 21 characters", expectRejected, edit(func(m map[string]any) {
		m["orderNo"] = strings.Repeat("A", 21)
		m["order"].(map[string]any)["orderNo"] = strings.Repeat("A", 21)
	}))
	add("orderNo of a megabyte-ish", expectRejected, edit(func(m map[string]any) { m["orderNo"] = strings.Repeat("B", 100_000) }))
	add("orderNo mismatch", expectRejected, edit(func(m map[string]any) { m["order"].(map[string]any)["orderNo"] = "OTHER" }))
	add("saler mismatch", expectRejected, edit(func(m map[string]any) { m["order"].(map[string]any)["salerTaxNum"] = "91440101MA5APD8X8J" }))
	add("schemaVersion 2", expectRejected, edit(func(m map[string]any) { m["schemaVersion"] = "2" }))
	add("E9130 sum", expectRejected, edit(func(m map[string]any) { line(m)["taxIncludedAmount"] = "1.00" }))
	// Wrong seller in the subject.
	for _, other := range []string{"91350100M000100Y43", "91440101MA5APD8X8J", "SOMEONEELSE0000000"} {
		b := base()
		push(hostileMessage{name: "wrong seller in subject " + other, subject: "invoice.request." + other, data: b, expect: expectRejected})
	}
	// Payloads at and above the size limit: a valid request padded with
	// spaces to exactly the limit is valid; one byte more is malformed.
	at := base()
	at = append(at[:len(at)-1], []byte(strings.Repeat(" ", maxBytes-len(at))+"}")...)
	add("exactly at the size limit", expectIssued, at)
	above := base()
	above = append(above[:len(above)-1], []byte(strings.Repeat(" ", maxBytes+1-len(above))+"}")...)
	add("one byte above the size limit", expectMalformed, above)
	big := base()
	big = append(big[:len(big)-1], []byte(strings.Repeat(" ", 900_000-len(big))+"}")...)
	add("900 KB", expectMalformed, big)
	return out
}
