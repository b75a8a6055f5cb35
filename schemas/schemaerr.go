package schemas

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// schemaViolations flattens a JSON Schema validation error into violations,
// one per failing keyword, each with its field path and the provider code
// the seller's provider would answer (collector.schemaCode).
func schemaViolations(e *jsonschema.ValidationError, c *collector) {
	switch k := e.ErrorKind.(type) {
	case *kind.AnyOf:
		// The only anyOf in the request schema is reissue's "fpqqlsh or orderno".
		field := fieldPath(e.InstanceLocation)
		c.addCode(field, "required", c.schemaCode(field, "required"), "needs fpqqlsh (the serial number) or orderno")
		return
	case *kind.Required:
		for _, name := range k.Missing {
			field := joinField(fieldPath(e.InstanceLocation), name)
			c.addCode(field, "required", c.schemaCode(field, "required"), "is required")
		}
		return
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			field := joinField(fieldPath(e.InstanceLocation), name)
			c.addCode(field, "unknown_field", c.schemaCode(field, "unknown_field"), "is not a field of the contract (unknown fields are refused, not dropped)")
		}
		return
	}
	if len(e.Causes) > 0 {
		for _, cause := range e.Causes {
			schemaViolations(cause, c)
		}
		return
	}
	field := fieldPath(e.InstanceLocation)
	var rule, msg string
	switch k := e.ErrorKind.(type) {
	case *kind.FalseSchema:
		rule, msg = "kind_body", "must not be present: a request carries only the body that matches its kind"
	case *kind.Type:
		rule, msg = "type", fmt.Sprintf("must be %s, not %s", strings.Join(k.Want, " or "), article(k.Got))
	case *kind.MaxLength:
		rule, msg = "max_length", fmt.Sprintf("is %d characters long; the maximum is %d", k.Got, k.Want)
		if field == "order.remark" && c.fullyDigital {
			// The schema's 230 is seed 001's, a tax-control invoice's:
			// name the 200 of the invoice the order asks for, as the
			// domain rule does for 201 to 230 characters, not a limit
			// the order system would be refused at again.
			msg = remarkTooLong(k.Got, c.invoiceLine, c.provider)
		}
	case *kind.MinLength:
		rule, msg = "required", "must not be empty"
	case *kind.Pattern:
		rule, msg = "format", patternMessage(field, k.Got)
	case *kind.Enum:
		rule, msg = "enum", fmt.Sprintf("must be one of %s; got %s", enumList(k.Want), quoteValue(k.Got))
	case *kind.Const:
		rule, msg = "enum", fmt.Sprintf("must be %s; got %s", quoteValue(k.Want), quoteValue(k.Got))
	case *kind.MinItems:
		rule, msg = "required", fmt.Sprintf("must have at least %d entries", k.Want)
	case *kind.MaxItems:
		rule, msg = "max_items", fmt.Sprintf("has %d entries; the maximum is %d", k.Got, k.Want)
	default:
		rule, msg = "schema", e.ErrorKind.LocalizedString(nil)
	}
	c.addCode(field, rule, c.schemaCode(field, rule), "%s", msg)
}

// schemaCode is the code a schema violation of rule at field names for the
// seller being validated (collector.providerCode): codeFor's, Nuonuo's, for
// a Nuonuo seller; jumdataSchemaCodes' for a jumdata seller whose request
// the jumdata adapter sends, "" (this service's own rule) for any field
// and rule it does not list.
func (c *collector) schemaCode(field, rule string) string {
	return c.providerCode(c.provider, codeFor(field, rule), jumdataSchemaCodes[genericPath(field)+"|"+rule])
}

// jumdataSchemaCodes maps "field|rule" (indices as []) to the code jumdata
// answers a schema violation with: 400 (参数错误) where the jumdata mapping
// (providers/jumdata: NewInvoiceData, newRedTask, RedLines) sends the field
// as written and jumdata refuses it, as the jumdata sandbox does. A schema
// violation it does not list is this service's own rule for a jumdata
// seller (no code), as the request is wrong by its own contract while
// jumdata would take it or never see it:
//
//   - a field the mapping drops: invoiceDate, salerTaxNum, order.orderNo,
//     pushMode, buyerPhone, email, buyerAccount, salerAccount, checker,
//     payee, clerkId, departmentId, the roll of paper invoices, listFlag,
//     invoiceType (any value but "2" is issued blue), withTaxFlag (any
//     value but "1" is sent as hsbz N), and of a red confirmation all but
//     the blue invoice's number, time, reason and lines;
//   - a field it sends that jumdata does not check: buyerName's length
//     (gmfmc), buyerTaxNum's form, buyerTel, buyerAddress, salerTel,
//     salerAddress, clerk (kpr), a line's selfCode, unit, specType,
//     favouredPolicyFlag, favouredPolicyName and zeroRateFlag (lslbs); a
//     red confirmation line's goodsName length, goodsCode (hzmx spbm),
//     unit, specType and favouredPolicyFlag;
//   - a value the adapter refuses before any call: an amount it cannot
//     read (format, also rates and red confirmation figures), a type
//     error, a missing rate, an order without lines (invoiceDetail
//     required), a red reason or blue invoice time it cannot read, a
//     blueDetailIndex that is not a line number;
//   - a list of more than 2000 red confirmation lines: jumdata is not held
//     to a count of hzmx lines (it refuses a line number beyond the blue
//     invoice's, which the count does not decide).
var jumdataSchemaCodes = map[string]string{
	"order.buyerName|required":                             "400", // gmfmc missing
	"order.remark|max_length":                              "400", // bz over 200: the schema's 230 is beyond it, and the message says 200 (remarkTooLong)
	"order.invoiceDetail|max_items":                        "400", // mxlist over 2000 lines
	"order.invoiceDetail[].goodsName|required":             "400", // spmc: 1 to 90 characters
	"order.invoiceDetail[].goodsName|max_length":           "400",
	"order.invoiceDetail[].goodsCode|format":               "400", // spbm: 19 digits
	"order.invoiceDetail[].goodsCode|max_length":           "400",
	"order.invoiceDetail[].invoiceLineProperty|enum":       "400", // fphxz, sent as given: 0, 1 or 2
	"order.invoiceDetail[].invoiceLineProperty|max_length": "400",
	"redConfirm.blueElecInvoiceNumber|max_length":          "400", // lzfphm: 20 digits
	"redConfirm.detail[].goodsName|required":               "400", // hzmx spmc missing
}

// fieldPath turns a JSON Schema instance location into a field path:
// ["order","invoiceDetail","2","tax"] → order.invoiceDetail[2].tax. Object
// keys in the contract are never all digits, so digit tokens are indices.
func fieldPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// genericPath replaces array indices by [] so one table row covers every line.
func genericPath(field string) string {
	var b strings.Builder
	for i := 0; i < len(field); i++ {
		if field[i] == '[' {
			j := strings.IndexByte(field[i:], ']')
			if j > 0 {
				b.WriteString("[]")
				i += j
				continue
			}
		}
		b.WriteByte(field[i])
	}
	return b.String()
}

// providerCodes maps "field|rule" (indices as []) to the Nuonuo code that the
// check pre-empts. Rows with field "*" apply to a rule anywhere in a body;
// envelope fields (schemaVersion, kind, sellerTaxNum, orderNo and the body
// selection) are this service's own contract and pre-empt no provider code.
var providerCodes = map[string]string{
	"reissue|required":                               "E4000", // the anyOf: fpqqlsh or orderno
	"order.invoiceType|enum":                         "E9101",
	"order.invoiceType|required":                     "E9101",
	"order.invoiceCode|max_length":                   "E9102",
	"order.invoiceNum|max_length":                    "E9102",
	"order.email|max_length":                         "E9104",
	"order.proxyInvoiceFlag|enum":                    "E9107",
	"order.invoiceDetail|required":                   "E9122",
	"order.invoiceDetail[].goodsCode|format":         "E9121",
	"order.invoiceDetail[].goodsCode|max_length":     "E9121",
	"order.invoiceDetail[].taxIncludedAmount|format": "E9125",
	"order.invoiceDetail[].taxIncludedAmount|type":   "E9125",
	"order.invoiceDetail[].taxExcludedAmount|format": "E9127",
	"order.invoiceDetail[].taxExcludedAmount|type":   "E9127",
	"order.invoiceDetail[].tax|format":               "E9129",
	"order.invoiceDetail[].tax|type":                 "E9129",
}

// codeFor returns the Nuonuo code a violation of rule at field pre-empts:
// a specific row of providerCodes, else bodyCode's. A jumdata seller's
// schema violations name jumdataSchemaCodes' instead (collector.schemaCode).
func codeFor(field, rule string) string {
	if code, ok := providerCodes[genericPath(field)+"|"+rule]; ok {
		return code
	}
	return bodyCode(field, rule)
}

// bodyCode is the code a violation with no code of its own pre-empts: E4000
// for a field inside a body (order, redConfirm, reissue). Seed 001 gives
// E4000 (接口调用失败) for a private parameter that is missing or whose value
// is wrong (必填字段没有传值，或者传的值不对), and it has no narrower code for
// a tax rate, a sign or a precision. The envelope
// (schemaVersion, kind, sellerTaxNum, orderNo, the body selection) is this
// service's own contract, and an unknown field, a control character, an
// order.orderNo that differs from the envelope's and a tax number's check
// character (a warning unless strict; the provider takes it) are refused by
// this service, not by a provider: they pre-empt no code.
func bodyCode(field, rule string) string {
	switch rule {
	case "unknown_field", "kind_body", "control_character", "order_no_mismatch", "tax_number_check":
		return ""
	}
	for _, body := range []string{"order.", "redConfirm.", "reissue."} {
		if strings.HasPrefix(field, body) {
			return "E4000"
		}
	}
	return ""
}

// patternMessages explains each pattern of the request schema.
var patternMessages = map[string]string{
	"sellerTaxNum":                        "must be a tax number of 15 to 20 letters or digits",
	"order.salerTaxNum":                   "must be a tax number of 15 to 20 letters or digits",
	"order.buyerTaxNum":                   "must be empty or a tax number of 15 to 20 letters or digits",
	"redConfirm.sellerTaxNo":              "must be a tax number of 15 to 20 letters or digits",
	"redConfirm.buyerTaxNo":               "must be empty or a tax number of 15 to 20 letters or digits",
	"orderNo":                             "must be printable ASCII characters without spaces",
	"order.invoiceDate":                   "must be a time written yyyy-MM-dd HH:mm:ss",
	"redConfirm.blueInvoiceTime":          "must be a time written yyyy-MM-dd HH:mm:ss",
	"order.extensionNumber":               "must be digits only",
	"order.terminalNumber":                "must be digits only",
	"order.specificFactor":                "must be digits only",
	"order.invoiceDetail[].goodsCode":     "must be the digits of a tax classification code",
	"redConfirm.detail[].goodsCode":       "must be the 19 digits of the blue line's tax classification code",
	"redConfirm.detail[].blueDetailIndex": "must be a line number of the blue invoice (1, 2, ...)",
}

func patternMessage(field, got string) string {
	if m, ok := patternMessages[genericPath(field)]; ok {
		return m + "; got " + quoteValue(got)
	}
	return "must be a plain decimal such as 5.65 (digits, an optional minus sign and decimal point); got " + quoteValue(got)
}

func article(t string) string {
	switch t {
	case "object", "array", "integer":
		return "an " + t
	case "null":
		return "null"
	}
	return "a " + t
}

func enumList(vals []any) string {
	parts := make([]string, 0, len(vals))
	for _, v := range vals {
		if s, ok := v.(string); ok && s == "" {
			continue // "" stands for "not set" and is not worth listing
		}
		parts = append(parts, quoteValue(v))
	}
	return strings.Join(parts, ", ")
}

// quoteValue shows a value from the message, cut so that a hostile one does
// not flood the error.
func quoteValue(v any) string {
	s := fmt.Sprint(v)
	if _, ok := v.(string); ok {
		if r := []rune(s); len(r) > 40 {
			s = string(r[:40]) + "…"
		}
		return strconv.Quote(s)
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}
