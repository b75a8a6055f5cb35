package nuonuo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
)

// envelope is every answer of /open/v1/services: {"code","describe","result"}.
// result is an object, an array or a string depending on the method, so it
// is kept raw until the method's decoder reads it.
type envelope struct {
	Code     codeText        `json:"code"`
	Describe flexString      `json:"describe"`
	Result   json.RawMessage `json:"result"`
}

// errNoCode: the answer is JSON but carries no code.
var errNoCode = errors.New("answer has no code")

// errNoStatus: a queryInvoiceResult entry carries no status.
var errNoStatus = errors.New("invoice entry has no status")

// errNoBillStatus: a queryInvoiceRedConfirm form carries no billStatus.
var errNoBillStatus = errors.New("red confirmation form has no billStatus")

// decodeEnvelope reads an answer body.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return envelope{}, fmt.Errorf("decode answer: %w", err)
	}
	if e.Code == "" {
		return envelope{}, errNoCode
	}
	return e, nil
}

// flexString is a JSON string, number (kept as its literal text, never a
// float64) or boolean; null and absent are "".
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*f = ""
	case b[0] == '"':
		s, err := schemas.UnquoteString(b)
		if err != nil {
			return err
		}
		*f = flexString(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexString(n.String())
	case bytes.Equal(b, []byte("true")) || bytes.Equal(b, []byte("false")):
		*f = flexString(b)
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// codeText is a platform code: a flexString, except that a JSON number of
// three or five digits gets back the leading zero that a number cannot
// carry (70201 is "070201", 203 is "0203"). The platform's codes are text
// of four or six digits beginning with 0 (0201, 040102, 070301); read
// without the zero, a throttled call or a refused token would fall to the
// table's default, a permanent refusal.
type codeText string

// UnmarshalJSON implements json.Unmarshaler.
func (c *codeText) UnmarshalJSON(b []byte) error {
	var f flexString
	if err := f.UnmarshalJSON(b); err != nil {
		return err
	}
	s := string(f)
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] != '"' && (len(s) == 3 || len(s) == 5) && allDigits(s) {
		s = "0" + s
	}
	*c = codeText(s)
	return nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// billingResult is requestBillingNew's result.
type billingResult struct {
	InvoiceSerialNum flexString `json:"invoiceSerialNum"`
}

// invoiceEntry is one entry of queryInvoiceResult's result array.
type invoiceEntry struct {
	SerialNo    flexString `json:"serialNo"`
	OrderNo     flexString `json:"orderNo"`
	Status      flexString `json:"status"`
	StatusMsg   flexString `json:"statusMsg"`
	FailCause   flexString `json:"failCause"`
	InvoiceCode flexString `json:"invoiceCode"`
	InvoiceNo   flexString `json:"invoiceNo"`
	// AllElectronicInvoiceNumber is the fully digital number; one document
	// spells it allElectronicInvoiceNumbe, and both are accepted.
	AllElectronicInvoiceNumber flexString `json:"allElectronicInvoiceNumber"`
	AllElectronicInvoiceNumbe  flexString `json:"allElectronicInvoiceNumbe"`
	InvoiceTime                flexString `json:"invoiceTime"`
	ExTaxAmount                flexString `json:"exTaxAmount"`
	TaxAmount                  flexString `json:"taxAmount"`
	OrderAmount                flexString `json:"orderAmount"`
	PayerName                  flexString `json:"payerName"`
	PdfURL                     flexString `json:"pdfUrl"`
	OfdURL                     flexString `json:"ofdUrl"`
	XMLURL                     flexString `json:"xmlUrl"`
}

// decodeInvoiceEntries reads queryInvoiceResult's result: an array of
// entries (a single object is accepted as one entry; null or absent as
// none).
func decodeInvoiceEntries(raw json.RawMessage) ([]invoiceEntry, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []invoiceEntry
	if raw[0] == '{' {
		var one invoiceEntry
		if err := json.Unmarshal(raw, &one); err != nil {
			return nil, fmt.Errorf("decode invoice result: %w", err)
		}
		return []invoiceEntry{one}, nil
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decode invoice result: %w", err)
	}
	return list, nil
}

// invoice converts an entry to the contract's Invoice.
func (e *invoiceEntry) invoice() schemas.Invoice {
	digital := string(e.AllElectronicInvoiceNumber)
	if digital == "" {
		digital = string(e.AllElectronicInvoiceNumbe)
	}
	return schemas.Invoice{
		SerialNo:         string(e.SerialNo),
		InvoiceCode:      string(e.InvoiceCode),
		InvoiceNo:        string(e.InvoiceNo),
		DigitalInvoiceNo: digital,
		IssuedAt:         epochMillis(string(e.InvoiceTime)),
		ExTaxAmount:      schemas.ParseAmount(string(e.ExTaxAmount)),
		TaxAmount:        schemas.ParseAmount(string(e.TaxAmount)),
		TotalAmount:      schemas.ParseAmount(string(e.OrderAmount)),
		PdfURL:           string(e.PdfURL),
		OfdURL:           string(e.OfdURL),
		XMLURL:           string(e.XMLURL),
	}
}

// epochMillis reads invoiceTime: epoch milliseconds as digits; a
// "yyyy-MM-dd HH:mm:ss" time in China Standard Time is accepted too. The
// zero time when it is neither, or when it falls outside the years 0 to
// 9999 in UTC (epoch microseconds, say, or year 0000 in China time): the
// order's record and the result write the time in RFC 3339, which has four
// digits for the year, and an invoice with a time they cannot write could
// be neither saved nor published.
func epochMillis(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	var t time.Time
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil && ms > 0 {
		t = time.UnixMilli(ms).UTC()
	} else if wall, err := time.ParseInLocation("2006-01-02 15:04:05", s, chinaTime); err == nil {
		t = wall.UTC()
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}
	}
	return t
}

// chinaTime is UTC+8, the zone of the provider's wall-clock times.
var chinaTime = time.FixedZone("CST", 8*3600)

// redForm is one entry of queryInvoiceRedConfirm's list.
type redForm struct {
	BillID      flexString `json:"billId"`
	BillNo      flexString `json:"billNo"`
	BillUUID    flexString `json:"billUuid"`
	BillStatus  flexString `json:"billStatus"`
	BillMessage flexString `json:"billMessage"`
	// InvoiceSerialNum and OrderNo name the red invoice, once one was
	// issued (automatically for electronic invoices).
	InvoiceSerialNum flexString `json:"invoiceSerialNum"`
	OrderNo          flexString `json:"orderNo"`
	// RedInvoiceNumber is not in the published field list but appears in
	// live answers; read when present.
	RedInvoiceNumber flexString `json:"redInvoiceNumber"`
	OpenStatus       flexString `json:"openStatus"`
}

// decodeRedForms reads queryInvoiceRedConfirm's result:
// {"total": n, "list": [...]} (total a number or a string). A bare array is
// accepted as the list.
func decodeRedForms(raw json.RawMessage) ([]redForm, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '[' {
		var list []redForm
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("decode red confirmation forms: %w", err)
		}
		return list, nil
	}
	var page struct {
		Total flexString `json:"total"`
		List  []redForm  `json:"list"`
	}
	if err := json.Unmarshal(raw, &page); err != nil {
		return nil, fmt.Errorf("decode red confirmation forms: %w", err)
	}
	return page.List, nil
}

// decodeString reads a result that is a JSON string (saveInvoiceRedConfirm's
// form id); a number is accepted as its text.
func decodeString(raw json.RawMessage) (string, error) {
	var s flexString
	if len(bytes.TrimSpace(raw)) == 0 {
		return "", nil
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decode result: %w", err)
	}
	return string(s), nil
}

// tokenAnswer is the token endpoint's answer: {"access_token","expires_in"}
// on success, {"error","error_description"} on refusal.
type tokenAnswer struct {
	AccessToken      string     `json:"access_token"`
	ExpiresIn        flexString `json:"expires_in"`
	Error            codeText   `json:"error"`
	ErrorDescription string     `json:"error_description"`
	// Code and Describe: the platform's envelope, in case the gateway
	// answers in it.
	Code     codeText `json:"code"`
	Describe string   `json:"describe"`
}
