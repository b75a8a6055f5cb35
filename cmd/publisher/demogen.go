package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/fapiaohub/invoicer/providers/sandbox"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/shopspring/decimal"
)

// The demo's sellers: the sandbox's two demo sellers, which the consumer
// serves without any configuration.
const (
	demoNuonuo  = sandbox.DefaultNuonuoSeller
	demoJumdata = sandbox.DefaultJumdataSeller
)

// sandboxFail is the remark that makes the Nuonuo sandbox fail an issuance
// (status 22), so that it can be reissued.
const sandboxFail = "SANDBOX:FAIL"

// demoRole is what a phase-1 request is for.
type demoRole int

const (
	rolePlain   demoRole = iota
	roleFail             // Nuonuo blue that fails (SANDBOX:FAIL); reissued in phase 2
	roleDigital          // fully digital blue; reversed with red_confirm in phase 2
	rolePaper            // Nuonuo paper blue (invoiceLine c); reversed with a red invoice in phase 2
)

// demoItem is one generated request.
type demoItem struct {
	req    *schemas.Request
	data   []byte // as published
	expect schemas.Status
	role   demoRole
	what   string
	// of is the phase-1 item a phase-2 request builds on.
	of *demoItem
}

func (it *demoItem) key() schemas.OrderKey {
	return schemas.OrderKey{Seller: it.req.SellerTaxNum, OrderNo: it.req.OrderNo}
}

type demoBuyer struct{ name, taxNum string }

type demoGoods struct {
	name, code, unit string
	rate             string
	minPrice         int // in cents
	maxPrice         int
}

// uscc completes a 17-character prefix with its GB 32100-2015 check
// character, so that the demo's buyers pass even --strict.
func uscc(first17 string) string {
	c, ok := schemas.TaxNumberCheckChar(first17)
	if !ok {
		panic("bad tax number prefix " + first17)
	}
	return first17 + string(c)
}

var (
	demoBuyers = []demoBuyer{
		{"杭州示例科技有限公司", uscc("91330106MA2B3C4D5")},
		{"上海样例贸易有限公司", uscc("91310115MA1H7K8L9")},
		{"深圳演示电子有限公司", uscc("91440300MA5F6G7H8")},
		{"北京测试咨询有限公司", uscc("91110108MA0A1B2C3")},
	}
	demoGoodsList = []demoGoods{
		{"技术服务费", "3040201990000000000", "次", "0.06", 10000, 500000},
		{"办公椅", "1050201990000000000", "把", "0.13", 29900, 129900},
		{"咖啡豆", "1030307020000000000", "袋", "0.09", 3990, 18990},
		{"笔记本电脑", "1090511030000000000", "台", "0.13", 399900, 899900},
		{"打印纸", "1060105990000000000", "箱", "0.13", 9900, 25900},
		{"软件许可", "3040203000000000000", "套", "0.06", 50000, 990000},
	}
	cst = time.FixedZone("CST", 8*3600)
)

// demoGen generates the demo's requests from a seeded random source: the
// same seed, run tag and date give the same requests.
type demoGen struct {
	rng  *rand.Rand
	run  string
	date string // invoiceDate, "yyyy-MM-dd HH:mm:ss"
	next int
}

func newDemoGen(seed uint64, run string, date time.Time) *demoGen {
	return &demoGen{rng: rand.New(rand.NewPCG(seed, seed^0x5DEECE66D)), run: run, date: date.In(cst).Format(timeLayout)}
}

func (g *demoGen) orderNo() string {
	g.next++
	return fmt.Sprintf("D%s-%03d", g.run, g.next)
}

// demoPlan is how many requests of each later kind a run of n makes; each
// needs a phase-1 request of its own.
type demoPlan struct{ reissue, redConfirm, redPaper int }

func planFor(n int) demoPlan {
	if n < 8 {
		return demoPlan{}
	}
	return demoPlan{reissue: max(1, n/10), redConfirm: max(1, n*15/100), redPaper: max(1, n/10)}
}

func (p demoPlan) phase2() int { return p.reissue + p.redConfirm + p.redPaper }

// phase1 generates the requests that need nothing issued before: blue
// invoices of both sellers, among them the ones phase 2 will reverse or
// reissue.
func (g *demoGen) phase1(n int) []*demoItem {
	plan := planFor(n)
	roles := make([]demoRole, 0, n-plan.phase2())
	for range plan.reissue {
		roles = append(roles, roleFail)
	}
	for range plan.redConfirm {
		roles = append(roles, roleDigital)
	}
	for range plan.redPaper {
		roles = append(roles, rolePaper)
	}
	for len(roles) < n-plan.phase2() {
		roles = append(roles, rolePlain)
	}
	g.rng.Shuffle(len(roles), func(i, j int) { roles[i], roles[j] = roles[j], roles[i] })
	items := make([]*demoItem, len(roles))
	for i, r := range roles {
		items[i] = g.blueFor(r)
	}
	return items
}

// blueFor generates a blue invoice request for a role.
func (g *demoGen) blueFor(role demoRole) *demoItem {
	seller, line := demoNuonuo, "pc"
	discounts := g.rng.IntN(2) == 0
	switch role {
	case roleFail:
	case rolePaper:
		line, discounts = "c", false // reversed line by line: no discounts
	default:
		if g.rng.IntN(2) == 0 {
			seller = demoJumdata
		}
		if g.rng.IntN(4) == 0 {
			line = "bs"
		}
	}
	it := &demoItem{role: role, expect: schemas.StatusIssued}
	o := g.order(seller, line, 1+g.rng.IntN(3), discounts)
	if role == roleFail {
		o.Remark = sandboxFail + " (demo: fails at the provider, reissued later)"
		it.expect = schemas.StatusRejected
	}
	it.req = &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindIssue, SellerTaxNum: seller, OrderNo: o.OrderNo, Order: o}
	numbers := g.rng.IntN(4) == 0
	it.what = describeOrder(o, numbers)
	switch role {
	case roleFail:
		it.what += "; fails (" + sandboxFail + "), reissued in phase 2"
	case roleDigital:
		it.what += "; reversed with red_confirm in phase 2"
	case rolePaper:
		it.what += "; reversed with a red invoice in phase 2"
	}
	it.data = encodeRequest(it.req, numbers)
	return it
}

// order generates a blue order with goods lines, some of them discounted.
func (g *demoGen) order(seller, line string, goods int, discounts bool) *schemas.Order {
	b := demoBuyers[g.rng.IntN(len(demoBuyers))]
	o := &schemas.Order{
		BuyerName: b.name, BuyerTaxNum: b.taxNum, SalerTaxNum: seller, SalerTel: "0571-77777777",
		SalerAddress: "杭州市西湖区文三路1号", OrderNo: g.orderNo(), InvoiceDate: g.date, Clerk: "张三",
		PushMode: "-1", InvoiceType: schemas.InvoiceTypeBlue, InvoiceLine: line,
	}
	if g.rng.IntN(3) == 0 {
		o.PushMode, o.Email = "0", "finance@example.com"
	}
	withTax := g.rng.IntN(4) != 0
	for range goods {
		gd := demoGoodsList[g.rng.IntN(len(demoGoodsList))]
		price := decimal.New(int64(gd.minPrice+g.rng.IntN(gd.maxPrice-gd.minPrice+1)), -2)
		num := decimal.NewFromInt(int64(1 + g.rng.IntN(5)))
		l := goodsLine(gd, price, num, withTax)
		if discounts && g.rng.IntN(2) == 0 {
			l.InvoiceLineProperty = schemas.LineDiscounted
			o.InvoiceDetail = append(o.InvoiceDetail, l, discountLine(gd, l, 5+g.rng.IntN(16)))
			continue
		}
		o.InvoiceDetail = append(o.InvoiceDetail, l)
	}
	return o
}

// goodsLine computes a line's amounts from price and quantity, quoted with
// or without tax, rounding to cents in this one place.
func goodsLine(gd demoGoods, price, num decimal.Decimal, withTax bool) schemas.InvoiceLine {
	rate := decimal.RequireFromString(gd.rate)
	var incl, excl, tax decimal.Decimal
	flag := "0"
	if withTax {
		flag = "1"
		incl = price.Mul(num).Round(2)
		excl = incl.Div(rate.Add(decimal.NewFromInt(1))).Round(2)
		tax = incl.Sub(excl)
	} else {
		excl = price.Mul(num).Round(2)
		tax = excl.Mul(rate).Round(2)
		incl = excl.Add(tax)
	}
	return schemas.InvoiceLine{
		GoodsName: gd.name, GoodsCode: gd.code, WithTaxFlag: flag, Unit: gd.unit,
		Price: schemas.AmountOf(price, 2), Num: schemas.ParseAmount(num.String()), TaxRate: schemas.ParseAmount(gd.rate),
		TaxIncludedAmount: schemas.AmountOf(incl, 2), TaxExcludedAmount: schemas.AmountOf(excl, 2), Tax: schemas.AmountOf(tax, 2),
	}
}

// discountLine is the discount line (property 1) taking pct percent off the
// discounted line above it.
func discountLine(gd demoGoods, base schemas.InvoiceLine, pct int) schemas.InvoiceLine {
	rate := base.TaxRate.Decimal()
	off := base.TaxIncludedAmount.Decimal().Mul(decimal.New(int64(pct), -2)).Round(2)
	excl := off.Div(rate.Add(decimal.NewFromInt(1))).Round(2)
	return schemas.InvoiceLine{
		GoodsName: gd.name, GoodsCode: gd.code, WithTaxFlag: "1", TaxRate: base.TaxRate,
		TaxIncludedAmount: schemas.AmountOf(off.Neg(), 2), TaxExcludedAmount: schemas.AmountOf(excl.Neg(), 2),
		Tax: schemas.AmountOf(off.Sub(excl).Neg(), 2), InvoiceLineProperty: schemas.LineDiscount,
	}
}

// redPaper reverses a paper blue invoice in full with a red invoice
// (kind issue, invoiceType 2) naming its code and number.
func (g *demoGen) redPaper(blue *demoItem, inv schemas.Invoice) *demoItem {
	o := *blue.req.Order
	o.OrderNo = g.orderNo()
	o.InvoiceType = schemas.InvoiceTypeRed
	o.InvoiceCode, o.InvoiceNum, o.RedReason = inv.InvoiceCode, inv.InvoiceNo, "1"
	o.Remark, o.PushMode, o.Email = "冲红 "+blue.req.OrderNo, "-1", ""
	o.InvoiceDetail = make([]schemas.InvoiceLine, len(blue.req.Order.InvoiceDetail))
	neg := func(a schemas.Amount) schemas.Amount {
		if !a.IsSet() {
			return a
		}
		return schemas.ParseAmount(a.Decimal().Neg().StringFixed(int32(a.Places())))
	}
	for i, l := range blue.req.Order.InvoiceDetail {
		l.Num, l.TaxIncludedAmount, l.TaxExcludedAmount, l.Tax = neg(l.Num), neg(l.TaxIncludedAmount), neg(l.TaxExcludedAmount), neg(l.Tax)
		o.InvoiceDetail[i] = l
	}
	req := &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindIssue, SellerTaxNum: blue.req.SellerTaxNum, OrderNo: o.OrderNo, Order: &o}
	return &demoItem{req: req, data: encodeRequest(req, false), expect: schemas.StatusIssued, of: blue,
		what: fmt.Sprintf("red paper invoice reversing %s (%s/%s)", blue.req.OrderNo, inv.InvoiceCode, inv.InvoiceNo)}
}

// redConfirm applies for a red confirmation form reversing a fully digital
// blue invoice in full.
func (g *demoGen) redConfirm(blue *demoItem, inv schemas.Invoice) *demoItem {
	number := inv.DigitalInvoiceNo
	if number == "" {
		number = inv.InvoiceNo
	}
	o := blue.req.Order
	req := &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindRedConfirm, SellerTaxNum: blue.req.SellerTaxNum, OrderNo: g.orderNo(),
		RedConfirm: &schemas.RedConfirm{
			BlueInvoiceLine: o.InvoiceLine, ApplySource: "0", BlueElecInvoiceNumber: number,
			BlueInvoiceTime: inv.IssuedAt.In(cst).Format(timeLayout),
			SellerTaxNo:     blue.req.SellerTaxNum, SellerName: "杭州示例销售有限公司",
			BuyerTaxNo: o.BuyerTaxNum, BuyerName: o.BuyerName, RedReason: []string{"1", "2", "3", "4"}[g.rng.IntN(4)],
		}}
	return &demoItem{req: req, data: encodeRequest(req, false), expect: schemas.StatusIssued, of: blue,
		what: fmt.Sprintf("red_confirm reversing %s (%s)", blue.req.OrderNo, number)}
}

// reissue retries a failed order with Nuonuo's reInvoice.
func (g *demoGen) reissue(failed *demoItem) *demoItem {
	req := &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindReissue, SellerTaxNum: failed.req.SellerTaxNum, OrderNo: g.orderNo(),
		Reissue: &schemas.Reissue{OrderNo: failed.req.OrderNo}}
	return &demoItem{req: req, data: encodeRequest(req, false), expect: schemas.StatusIssued, of: failed,
		what: "reissue of failed " + failed.req.OrderNo}
}

// describeOrder is a short description: invoice line, lines, total.
func describeOrder(o *schemas.Order, numbers bool) string {
	goods, disc := 0, 0
	var total decimal.Decimal
	for _, l := range o.InvoiceDetail {
		if l.Property() == schemas.LineDiscount {
			disc++
		} else {
			goods++
		}
		total = total.Add(l.TaxIncludedAmount.Decimal())
	}
	s := fmt.Sprintf("blue %s, %d line(s)", o.InvoiceLine, goods)
	if disc > 0 {
		s += fmt.Sprintf(" + %d discount(s)", disc)
	}
	s += ", total " + total.StringFixed(2)
	if numbers {
		s += ", amounts as JSON numbers"
	}
	return s
}

// amountFields are the invoice line fields that are Amounts.
var amountFields = []string{"price", "num", "tax", "taxRate", "taxExcludedAmount", "taxIncludedAmount", "deduction"}

// encodeRequest is the request as JSON; with numbers, the amounts of the
// invoice lines are JSON numbers instead of strings (both are accepted).
func encodeRequest(req *schemas.Request, numbers bool) []byte {
	data, err := json.Marshal(req)
	if err != nil {
		panic(err) // a Request always encodes
	}
	if !numbers || req.Order == nil {
		return data
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		panic(err)
	}
	order, _ := tree["order"].(map[string]any)
	lines, _ := order["invoiceDetail"].([]any)
	for _, l := range lines {
		m, _ := l.(map[string]any)
		for _, f := range amountFields {
			if s, ok := m[f].(string); ok && s != "" {
				m[f] = json.Number(s)
			}
		}
	}
	out, err := json.Marshal(tree)
	if err != nil {
		panic(err)
	}
	return out
}
