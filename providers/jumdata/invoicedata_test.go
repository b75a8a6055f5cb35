package jumdata_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/providers"
	"github.com/fapiaohub/invoicer/providers/jumdata"
	"github.com/fapiaohub/invoicer/schemas"
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestInvoiceDataGolden(t *testing.T) {
	req := issueRequest(t, "ORD-2026-000001", `"clerk": "张三",`, `"clerk": "张三", "remark": "合同号 HT-2026-18", "buyerAddress": "广州市天河区", "buyerTel": "020-88888888",`)
	d, err := jumdata.NewInvoiceData(req, "杭州示例销售有限公司")
	if err != nil {
		t.Fatal(err)
	}
	data, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The wire bytes exactly: a repeated submit must send them again.
	golden(t, "invoicedata-discount.golden", []byte(data+"\n"))

	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(data), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden(t, "invoicedata-discount.indented.golden", append(indented.Bytes(), '\n'))

	if d.Amount != "1000.00" || d.Tax != "123.00" || d.Total != "1123.00" {
		t.Errorf("totals %s + %s = %s, want 1000.00 + 123.00 = 1123.00", d.Amount, d.Tax, d.Total)
	}
}

func TestInvoiceDataIsDeterministic(t *testing.T) {
	var first string
	for i := range 20 {
		// A fresh decode every time: nothing may depend on map order or
		// pointers.
		d, err := jumdata.NewInvoiceData(issueRequest(t, "ORD-DET"), "")
		if err != nil {
			t.Fatal(err)
		}
		data, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
		} else if data != first {
			t.Fatalf("encoding %d differs:\n%s\n%s", i, data, first)
		}
	}
}

func TestInvoiceDataLineAmounts(t *testing.T) {
	tests := []struct {
		name             string
		line             string
		je, se, dj, spsl string
		hsbz             string
	}{
		{"excluded and tax", `"withTaxFlag":"0","taxRate":"0.13","taxExcludedAmount":"100.00","tax":"13.00","taxIncludedAmount":"113.00"`, "100.00", "13.00", "", "", "N"},
		{"included and tax", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1","taxIncludedAmount":"113.00","tax":"13.00"`, "100.00", "13.00", "113", "1", "Y"},
		{"excluded and included", `"withTaxFlag":"1","taxRate":"0.06","price":"106","num":"1","taxExcludedAmount":"100.00","taxIncludedAmount":"106.00"`, "100.00", "6.00", "106", "1", "Y"},
		{"included only", `"withTaxFlag":"1","taxRate":"0.13","price":"10","num":"3","taxIncludedAmount":"30.00"`, "26.55", "3.45", "10", "3", "Y"},
		{"excluded only", `"withTaxFlag":"0","taxRate":"0.03","price":"33.3","num":"1","taxExcludedAmount":"33.30"`, "33.30", "1.00", "33.3", "1", "N"},
		{"price and num, tax included", `"withTaxFlag":"1","taxRate":"0.13","price":"565","num":"2"`, "1000.00", "130.00", "565", "2", "Y"},
		{"price and num, tax excluded", `"withTaxFlag":"0","taxRate":"0.09","price":"0.5","num":"3"`, "1.50", "0.14", "0.5", "3", "N"},
		{"zero rate", `"withTaxFlag":"0","taxRate":"0","taxExcludedAmount":"8.00","tax":"0","taxIncludedAmount":"8.00","zeroRateFlag":"3"`, "8.00", "0.00", "", "", "N"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := MustRequest(t, `{"schemaVersion":"1","kind":"issue","sellerTaxNum":"91330106MA2AYNWD8M","orderNo":"L-1",
			  "order":{"buyerName":"个人","salerTaxNum":"91330106MA2AYNWD8M","orderNo":"L-1","invoiceDate":"2026-11-20 10:00:00",
			  "clerk":"张三","pushMode":"-1","invoiceType":"1","invoiceLine":"pc",
			  "invoiceDetail":[{"goodsName":"货物","goodsCode":"1030307020000000000",`+tt.line+`}]}}`)
			d, err := jumdata.NewInvoiceData(req, "")
			if err != nil {
				t.Fatal(err)
			}
			l := d.Lines[0]
			if string(l.Amount) != tt.je || string(l.Tax) != tt.se || string(l.Price) != tt.dj || string(l.Quantity) != tt.spsl || l.PriceIncludesTax != tt.hsbz {
				t.Fatalf("line je %s se %s dj %s spsl %s hsbz %s; want %s %s %s %s %s", l.Amount, l.Tax, l.Price, l.Quantity, l.PriceIncludesTax, tt.je, tt.se, tt.dj, tt.spsl, tt.hsbz)
			}
			if d.Amount != l.Amount || d.Tax != l.Tax {
				t.Fatalf("totals %s %s differ from the only line", d.Amount, d.Tax)
			}
		})
	}
}

// TestInvoiceDataDeduction: kce is sent under deduction taxation only
// (seed 001: "0", empty or absent is none, "0.00" is), and a tax the
// mapping computes from the rate is computed on the amount less kce.
func TestInvoiceDataDeduction(t *testing.T) {
	tests := []struct {
		name        string
		line        string
		kce, je, se string
	}{
		{"deduction 0 as in seed 001", `"withTaxFlag":"1","taxRate":"0.13","price":"5.65","num":"1","taxExcludedAmount":"5","tax":"0.65","taxIncludedAmount":"5.65","deduction":"0"`, "", "5.00", "0.65"},
		{"no deduction", `"withTaxFlag":"1","taxRate":"0.13","price":"5.65","num":"1","taxExcludedAmount":"5","tax":"0.65","taxIncludedAmount":"5.65"`, "", "5.00", "0.65"},
		{"deduction 0.00", `"withTaxFlag":"0","taxRate":"0.06","taxExcludedAmount":"1000.00","tax":"60.00","taxIncludedAmount":"1060.00","deduction":"0.00"`, "0.00", "1000.00", "60.00"},
		{"deduction given", `"withTaxFlag":"1","taxRate":"0.06","taxIncludedAmount":"1000.00","taxExcludedAmount":"971.70","tax":"28.30","deduction":"500.00"`, "500.00", "971.70", "28.30"},
		{"deduction, tax from the included amount", `"withTaxFlag":"1","taxRate":"0.06","price":"1000","num":"1","taxIncludedAmount":"1000.00","deduction":"500.00"`, "500.00", "971.70", "28.30"},
		{"deduction, tax from the excluded amount", `"withTaxFlag":"0","taxRate":"0.06","price":"971.7","num":"1","taxExcludedAmount":"971.70","deduction":"500.00"`, "500.00", "971.70", "28.30"},
		{"deduction, tax from price and num", `"withTaxFlag":"1","taxRate":"0.06","price":"1000","num":"1","deduction":"500.00"`, "500.00", "971.70", "28.30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := jumdata.NewInvoiceData(MustRequest(t, lineRequest(tt.line)), "")
			if err != nil {
				t.Fatal(err)
			}
			l := d.Lines[0]
			if string(l.Deduction) != tt.kce || string(l.Amount) != tt.je || string(l.Tax) != tt.se {
				t.Fatalf("kce %q je %s se %s; want kce %q je %s se %s", l.Deduction, l.Amount, l.Tax, tt.kce, tt.je, tt.se)
			}
			data, err := d.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(data, `"kce"`) != (tt.kce != "") {
				t.Fatalf("kce in %s, want it only under deduction taxation", data)
			}
		})
	}
}

// lineRequest is a one-line issue request whose line has the fields line
// (a JSON fragment) besides its goods name and code.
func lineRequest(line string) string {
	return `{"schemaVersion":"1","kind":"issue","sellerTaxNum":"91330106MA2AYNWD8M","orderNo":"L-1",
	  "order":{"buyerName":"个人","salerTaxNum":"91330106MA2AYNWD8M","orderNo":"L-1","invoiceDate":"2026-11-20 10:00:00",
	  "clerk":"张三","pushMode":"-1","invoiceType":"1","invoiceLine":"pc",
	  "invoiceDetail":[{"goodsName":"货物","goodsCode":"1030307020000000000",` + line + `}]}}`
}

// TestInvoiceDataSendsWhatIsValidated: a line the validator accepts for a
// jumdata seller is sent with a je and se that keep E9131 (|je × sl − se|
// ≤ 0.06) whenever the line gives its tax or two amounts, and the validator
// refuses a line whose derived je and se would not: it checks the amounts
// the mapping derives, not only the ones the request gives. (For a Nuonuo
// seller such a line is computed from price × num, seed 001.)
func TestInvoiceDataSendsWhatIsValidated(t *testing.T) {
	v, err := schemas.NewValidator(schemas.ValidatorConfig{Providers: map[string]string{"91330106MA2AYNWD8M": "jumdata"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		line   string
		valid  bool
		je, se string // when valid
	}{
		{"included and tax far apart", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1","taxIncludedAmount":"113.00","tax":"50.00"`, false, "", ""},
		{"included and tax", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1","taxIncludedAmount":"113.00","tax":"13.00"`, true, "100.00", "13.00"},
		{"excluded and included far apart", `"withTaxFlag":"0","taxRate":"0.13","price":"100","num":"1","taxExcludedAmount":"100.00","taxIncludedAmount":"150.00"`, false, "", ""},
		{"excluded and included", `"withTaxFlag":"0","taxRate":"0.13","price":"100","num":"1","taxExcludedAmount":"100.00","taxIncludedAmount":"113.04"`, true, "100.00", "13.04"},
		{"price and num for excluded, tax far off", `"withTaxFlag":"0","taxRate":"0.13","price":"100","num":"1","tax":"50.00"`, false, "", ""},
		{"price and num for included, tax far off", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1","tax":"50.00"`, false, "", ""},
		{"price and num for included, and tax", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1","tax":"13.00"`, true, "100.00", "13.00"},
		{"price and num only", `"withTaxFlag":"1","taxRate":"0.13","price":"113","num":"1"`, true, "100.00", "13.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := v.Decode([]byte(lineRequest(tt.line)), "")
			if err != nil {
				t.Fatal(err)
			}
			if d.Valid() != tt.valid {
				t.Fatalf("valid %v, want %v: %v", d.Valid(), tt.valid, d.Violations)
			}
			if !tt.valid {
				return
			}
			data, err := jumdata.NewInvoiceData(d.Request, "")
			if err != nil {
				t.Fatal(err)
			}
			l := data.Lines[0]
			if string(l.Amount) != tt.je || string(l.Tax) != tt.se {
				t.Fatalf("je %s se %s, want %s %s", l.Amount, l.Tax, tt.je, tt.se)
			}
			je, se, sl := decimal.RequireFromString(string(l.Amount)), decimal.RequireFromString(string(l.Tax)), decimal.RequireFromString(string(l.TaxRate))
			if diff := je.Mul(sl).Sub(se).Abs(); diff.GreaterThan(schemas.LineTaxTolerance) {
				t.Fatalf("sent je %s se %s at %s: %s apart", je, se, sl, diff)
			}
		})
	}
}

func TestInvoiceDataRefusals(t *testing.T) {
	tests := []struct {
		name        string
		replace     []string
		field       string
		unsupported bool
	}{
		{"paper invoice", []string{`"invoiceLine": "pc"`, `"invoiceLine": "c"`}, "order.invoiceLine", true},
		{"fully digital paper invoice", []string{`"invoiceLine": "pc"`, `"invoiceLine": "es"`}, "order.invoiceLine", true},
		{"specific factor", []string{`"invoiceLine": "pc",`, `"invoiceLine": "pc", "specificFactor": "3",`}, "order.specificFactor", true},
		{"proxy invoicing", []string{`"invoiceLine": "pc",`, `"invoiceLine": "pc", "proxyInvoiceFlag": "1",`}, "order.proxyInvoiceFlag", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The validator refuses these too (unsupported): the
			// adapter refuses them all the same.
			_, err := jumdata.NewInvoiceData(publishedRequest(t, issueMessage(t, "REF-1", tt.replace...)), "")
			var fe *jumdata.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || errors.Is(err, providers.ErrUnsupported) != tt.unsupported {
				t.Fatalf("err %v, want a FieldError on %s (unsupported %v)", err, tt.field, tt.unsupported)
			}
		})
	}
	t.Run("red order", func(t *testing.T) {
		req := issueRequest(t, "REF-2")
		req.Order.InvoiceType = schemas.InvoiceTypeRed
		_, err := jumdata.NewInvoiceData(req, "")
		var fe *jumdata.FieldError
		if !errors.As(err, &fe) || fe.Field != "order.invoiceType" || !errors.Is(err, providers.ErrUnsupported) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestRedReasonCode(t *testing.T) {
	tests := []struct {
		nuonuo, chyydm string
		ok             bool
	}{
		{"1", "02", true}, // 销货退回
		{"2", "01", true}, // 开票有误
		{"3", "03", true}, // 服务中止
		{"4", "04", true}, // 销售折让
		{"", "", false},
		{"01", "", false},
		{"5", "", false},
	}
	for _, tt := range tests {
		t.Run("nuonuo "+tt.nuonuo, func(t *testing.T) {
			got, ok := jumdata.RedReasonCode(tt.nuonuo)
			if got != tt.chyydm || ok != tt.ok {
				t.Fatalf("RedReasonCode(%q) = %q, %v; want %q, %v", tt.nuonuo, got, ok, tt.chyydm, tt.ok)
			}
		})
	}
}

func TestRedLines(t *testing.T) {
	req := redRequest(t, "RL-1", "26332000000000000001", clockStart(), "1", partialDetail)
	lines, je, se, err := jumdata.RedLines(req.RedConfirm.Detail)
	if err != nil {
		t.Fatal(err)
	}
	hzmx, err := jumdata.EncodeRedLines(lines)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "hzmx-partial.golden", []byte(hzmx+"\n"))
	if je.String() != "-50" || se.String() != "-3" {
		t.Fatalf("totals %s %s", je, se)
	}
	if full, err := jumdata.EncodeRedLines(nil); err != nil || full != "" {
		t.Fatalf("full reversal hzmx %q, %v", full, err)
	}
	t.Run("quantity not negative", func(t *testing.T) {
		for _, num := range []string{"1", "0"} {
			detail := []schemas.RedConfirmLine{{BlueDetailIndex: "1", GoodsName: "办公椅", GoodsCode: "1050201990000000000",
				Num: schemas.ParseAmount(num), TaxExcludedPrice: schemas.ParseAmount("500"), TaxRate: schemas.ParseAmount("0.13")}}
			lines, _, _, err := jumdata.RedLines(detail)
			var fe *jumdata.FieldError
			if !errors.As(err, &fe) || fe.Field != "redConfirm.detail[0].num" {
				t.Fatalf("num %s: lines %+v, err %v; want a FieldError on the num", num, lines, err)
			}
		}
	})
	t.Run("computed amounts", func(t *testing.T) {
		req := redRequest(t, "RL-2", "26332000000000000001", clockStart(), "2",
			`[{"blueDetailIndex":"1","goodsName":"办公椅","num":"-1","taxExcludedPrice":"500","taxRate":"0.13","goodsCode":"1050201990000000000"}]`)
		lines, je, se, err := jumdata.RedLines(req.RedConfirm.Detail)
		if err != nil {
			t.Fatal(err)
		}
		if lines[0].Amount != "-500.00" || lines[0].Tax != "-65.00" || je.String() != "-500" || se.String() != "-65" {
			t.Fatalf("line %+v, totals %s %s", lines[0], je, se)
		}
	})
}
