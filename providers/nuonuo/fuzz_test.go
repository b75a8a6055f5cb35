package nuonuo

import (
	"encoding/json"
	"testing"
)

// The decoders must never panic and never read amounts through float64:
// whatever they accept, they keep as text.

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"code":"E0000","describe":"开票提交成功","result":{"invoiceSerialNum":"20160108165823395151"}}`,
		`{"code":"E9500","describe":"未查询到"}`,
		`{"code":70201,"result":"x"}`,
		`<html>502</html>`,
		`{"code":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err == nil && e.Code == "" {
			t.Fatalf("accepted an answer without code: %q", b)
		}
	})
}

func FuzzDecodeInvoiceEntries(f *testing.F) {
	for _, s := range []string{
		`[{"serialNo":"1","status":"2","invoiceTime":1700000000000,"exTaxAmount":"100.00","taxAmount":6,"orderAmount":"106.00"}]`,
		`[{"status":20,"allElectronicInvoiceNumbe":"26332000000000000001","invoiceTime":"1700000000000"}]`,
		`{"status":"22","failCause":"x"}`,
		`[]`, `null`, `[{"orderAmount":1e999999}]`, `[{"status":"2","invoiceTime":1763600000000000}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeInvoiceEntries(json.RawMessage(b))
		if err != nil {
			return
		}
		for _, e := range entries {
			inv := e.invoice()
			if inv.TotalAmount.String() != string(e.OrderAmount) {
				t.Fatalf("orderAmount %q became %q", e.OrderAmount, inv.TotalAmount.String())
			}
			if _, err := json.Marshal(inv); err != nil {
				t.Fatalf("invoiceTime %q gives an invoice that cannot be written: %v", e.InvoiceTime, err)
			}
			_ = invoiceStateOf(string(e.Status))
		}
	})
}

func FuzzDecodeRedForms(f *testing.F) {
	for _, s := range []string{
		`{"total":1,"list":[{"billId":"b","billNo":"n","billStatus":"04","invoiceSerialNum":"s","applySource":0}]}`,
		`{"total":"0","list":[]}`,
		`[{"billId":"b","billStatus":"15"}]`,
		`"x"`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		forms, err := decodeRedForms(json.RawMessage(b))
		if err != nil {
			return
		}
		for _, fm := range forms {
			_ = billClass(string(fm.BillStatus))
		}
	})
}

func FuzzTokenAnswer(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"54871544ED15874564115","expires_in":"86400"}`,
		`{"access_token":"t","expires_in":86400}`,
		`{"error":"070307","error_description":"Incorrect appType"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a tokenAnswer
		_ = json.Unmarshal(b, &a)
		_ = redact(a.ErrorDescription)
	})
}

func TestFieldFor(t *testing.T) {
	tests := []struct {
		name, code, message, want string
	}{
		{"line named", "E9131", "金额*税率-税额大于0.06,明细行名称:服务,第12行", "order.invoiceDetail[11].tax"},
		{"line with spaces", "E9124", "含税金额不能超过20位 第 2 行", "order.invoiceDetail[1].taxIncludedAmount"},
		{"no line", "E9131", "金额*税率-税额大于0.06", "order.invoiceDetail"},
		{"line zero is no line", "E9130", "第0行", "order.invoiceDetail"},
		{"plain field", "E9104", "购方邮箱不能超过50位", "order.email"},
		{"no field", "E9338", "无权限", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldFor(lookup(tt.code), tt.message); got != tt.want {
				t.Fatalf("fieldFor(%s, %q) = %q, want %q", tt.code, tt.message, got, tt.want)
			}
		})
	}
}
