package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchTemplates is how many distinct request bodies the bench generates;
// request i is template i mod benchTemplates with its own order number, so
// that N requests need neither N encodings nor N bodies in memory.
const benchTemplates = 1024

// benchDigits is the width of the request number in a bench order number.
const benchDigits = 7

// maxBenchRequests is the most requests one run may publish: what fits in
// benchDigits.
const maxBenchRequests = 9_999_999

// benchGen makes the bench's requests: valid blue issue requests for the
// sandbox's demo sellers, from the generator behind publisher demo. Order
// numbers are B<run>-NNNNNNN (16 characters), unique per run; the same
// seed and run give the same bodies, so that the baseline and the
// pipeline get identical requests, and the same seed gives the same
// bodies but for the order numbers' run tag: nothing else in them comes
// from the clock (benchDate).
type benchGen struct {
	run     string
	prefix  string // "B<run>-", what every order number of the run starts with
	sellers []string
	tmpl    []benchTemplate
}

// benchTemplate is one encoded request and where its order number is.
type benchTemplate struct {
	seller int // index into benchGen.sellers
	data   []byte
	at     []int // offsets of the order number in data
}

// benchDate is the invoiceDate of every bench request: a date of the
// clock's would make two runs with the same --seed differ in more than
// their order numbers, and nothing the bench measures depends on it (the
// sandbox checks its form; jumdata's mapping drops it).
var benchDate = time.Date(2026, 11, 20, 10, 15, 0, 0, cst)

// benchRunTag is a 7-character tag from the clock (base 36 milliseconds),
// distinct for runs started a millisecond or more apart (it repeats after
// about two and a half years).
func benchRunTag(now time.Time) string {
	const span = 36 * 36 * 36 * 36 * 36 * 36 * 36
	s := strings.ToUpper(strconv.FormatInt(now.UnixMilli()%span, 36))
	return strings.Repeat("0", 7-len(s)) + s
}

// newBenchGen generates the templates for n requests (at most
// benchTemplates of them) from seed and checks them with the consumer's
// validator; problems are written to out. Their order numbers carry run.
func newBenchGen(seed uint64, run string, sellers []string, n int, out io.Writer) (*benchGen, error) {
	b := &benchGen{run: run, prefix: "B" + run + "-", sellers: sellers}
	g := newDemoGen(seed, run, benchDate)
	k := min(n, benchTemplates)
	items := make([]*demoItem, k)
	for j := range k {
		seller := j % len(sellers)
		line := "pc"
		if g.rng.IntN(4) == 0 {
			line = "bs"
		}
		o := g.order(sellers[seller], line, 1+g.rng.IntN(3), g.rng.IntN(2) == 0)
		o.OrderNo = b.orderNo(j)
		req := &schemas.Request{SchemaVersion: schemas.SchemaVersion, Kind: schemas.KindIssue, SellerTaxNum: sellers[seller], OrderNo: o.OrderNo, Order: o}
		data := encodeRequest(req, g.rng.IntN(4) == 0)
		t := benchTemplate{seller: seller, data: data}
		for off := 0; ; {
			i := bytes.Index(data[off:], []byte(o.OrderNo))
			if i < 0 {
				break
			}
			t.at = append(t.at, off+i)
			off += i + len(o.OrderNo)
		}
		if len(t.at) != 2 { // orderNo and order.orderNo
			return nil, fmt.Errorf("bench request %d has its order number %d times, want 2: a bug, please report it", j, len(t.at))
		}
		b.tmpl = append(b.tmpl, t)
		items[j] = &demoItem{req: req, data: data}
	}
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		return nil, err
	}
	if err := checkDemo(v, items, out); err != nil {
		return nil, err
	}
	return b, nil
}

// orderNo is the order number of request i.
func (b *benchGen) orderNo(i int) string {
	s := strconv.Itoa(i + 1)
	return b.prefix + strings.Repeat("0", benchDigits-len(s)) + s
}

// index returns the request number of an order number of this run, or
// false when orderNo is not one.
func (b *benchGen) index(orderNo string) (int, bool) {
	digits, ok := strings.CutPrefix(orderNo, b.prefix)
	if !ok || len(digits) != benchDigits {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return 0, false
	}
	return n - 1, true
}

// seller returns the seller of request i.
func (b *benchGen) seller(i int) string {
	return b.sellers[b.tmpl[i%len(b.tmpl)].seller]
}

// msg returns request i as a message to subj's request subject, with
// Nats-Msg-Id <seller>:<orderNo>: each bench order has one body, so the
// body's fingerprint that publisher publish adds to its ids would change
// nothing here, and the relay reads the order from the id. Each call
// returns a new body: an async publish may still need it after the call.
func (b *benchGen) msg(subj schemas.Subjects, i int) *nats.Msg {
	t := &b.tmpl[i%len(b.tmpl)]
	data := bytes.Clone(t.data)
	no := b.orderNo(i)
	for _, at := range t.at {
		copy(data[at:], no)
	}
	seller := b.sellers[t.seller]
	return &nats.Msg{
		Subject: subj.Request(seller),
		Data:    data,
		Header:  nats.Header{jetstream.MsgIDHeader: []string{seller + ":" + no}},
	}
}
