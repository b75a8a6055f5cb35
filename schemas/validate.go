package schemas

import (
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The JSON Schema documents of the contract, as published in this directory.
var (
	//go:embed invoice-request.schema.json
	RequestSchemaJSON []byte
	//go:embed invoice-result.schema.json
	ResultSchemaJSON []byte
	//go:embed invoice-deadletter.schema.json
	DeadLetterSchemaJSON []byte
)

// Schema identifiers ($id) of the contract documents.
const (
	RequestSchemaID    = "https://fapiaohub.example/schemas/invoice-request.schema.json"
	ResultSchemaID     = "https://fapiaohub.example/schemas/invoice-result.schema.json"
	DeadLetterSchemaID = "https://fapiaohub.example/schemas/invoice-deadletter.schema.json"
)

// Limits applied before a message is parsed.
const (
	// DefaultMaxBytes is the largest request accepted (512 KiB): room for
	// 2000 compact lines while a dead letter of it, base64-encoded, still fits
	// the NATS default max_payload of 1 MiB.
	DefaultMaxBytes = 512 << 10
	// DefaultMaxDepth is the deepest nesting of objects and arrays accepted.
	// A valid request nests 4 levels.
	DefaultMaxDepth = 16
)

// MaxViolations is the most violations Decode lists. A request with more
// ends its list with one entry of rule RuleMoreViolations saying how many
// were left out (Decoded.NotListed), so that half a megabyte of hostile
// input cannot make hundreds of thousands of them.
const MaxViolations = 1000

// RuleMoreViolations is the rule of the entry that ends a list of
// violations cut short; its message says how many were left out.
const RuleMoreViolations = "more_not_listed"

// Violation is one problem found in a request.
type Violation struct {
	// Field is the path of the field, like order.invoiceDetail[2].tax; empty
	// for the message as a whole.
	Field string `json:"field"`
	// Rule is the stable name of the rule that failed (required, max_length,
	// tax_tolerance, ...).
	Rule string `json:"rule"`
	// Message says what is wrong in words a person understands.
	Message string `json:"message"`
	// ProviderCode is the provider error this check pre-empts: Nuonuo's
	// (E9130, ...) for a Nuonuo seller, jumdata's 400 for a jumdata seller
	// (see ValidatorConfig.Providers); empty where the rule is this
	// service's own, as the seller's provider would take the request or is
	// never sent what the rule checks.
	ProviderCode string `json:"providerCode,omitempty"`
}

// String formats v as "FIELD: MESSAGE (CODE)".
func (v Violation) String() string {
	field := v.Field
	if field == "" {
		field = "(message)"
	}
	if v.ProviderCode == "" {
		return field + ": " + v.Message
	}
	return field + ": " + v.Message + " (" + v.ProviderCode + ")"
}

// MalformedError is returned by Validator.Decode for a message that is not a
// readable JSON request at all: empty, too large, not UTF-8, not JSON, nested
// too deeply or not an object. Such messages are dead-lettered, not answered.
type MalformedError struct {
	// Reason says what is wrong.
	Reason string
	// Offset is the byte offset of the problem, or -1.
	Offset int64
}

// Error implements error.
func (e *MalformedError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("malformed message: %s (at byte %d)", e.Reason, e.Offset)
	}
	return "malformed message: " + e.Reason
}

// ValidatorConfig configures a Validator. The zero value is ready to use.
type ValidatorConfig struct {
	// MaxBytes is the largest message accepted; 0 means DefaultMaxBytes.
	MaxBytes int
	// MaxDepth is the deepest nesting accepted; 0 means DefaultMaxDepth.
	MaxDepth int
	// StrictTaxNumbers rejects 18-character tax numbers whose GB 32100-2015
	// check character does not match (a buyer's passes as well as a resident
	// ID number with a right GB 11643 check character: an individual's ID
	// number goes there). By default they only warn: early real codes and
	// the providers' sandbox numbers fail the check.
	StrictTaxNumbers bool
	// Providers names the provider that serves each seller, by tax number:
	// "nuonuo" or "jumdata". The rules that differ between providers follow
	// it: which invoiceLine values are fully digital, and so held to a
	// remark of at most 200 characters (jumdata issues b, p and an empty
	// invoiceLine as fully digital invoices, Nuonuo does not), the text
	// an amount's 16 characters are counted on (Nuonuo is sent the
	// seller's own, jumdata every amount of money with two decimals), and
	// the amounts of a line that leaves one out (Nuonuo computes it from
	// price × num, LineFigures.Recompute, and the amounts the line gives
	// are held to the computed ones, RuleComputedAmount; the jumdata
	// mapping derives them from the amounts given), the code the rules
	// name (jumdata's 400, or none where jumdata would take the request or
	// never sees what a rule checks, as a line's taxIncludedAmount), and
	// the rules that are Nuonuo's own requirements, which a jumdata seller
	// is not held to (seed 001's E9123, one deduction an invoice). A
	// seller it does not list, and every seller when it is nil, is checked
	// by Nuonuo's rules. Tax numbers are normalized as in requests.
	Providers map[string]string
}

// Validate checks the configuration.
func (c ValidatorConfig) Validate() error {
	if c.MaxBytes < 0 || c.MaxDepth < 0 {
		return errors.New("validator limits must not be negative")
	}
	if c.MaxDepth != 0 && c.MaxDepth < 5 {
		return fmt.Errorf("validator max depth %d is below the 5 levels a request needs", c.MaxDepth)
	}
	for _, seller := range slices.Sorted(maps.Keys(c.Providers)) {
		if _, ok := fullyDigitalLines[c.Providers[seller]]; !ok {
			return fmt.Errorf("validator: seller %q has provider %q; use nuonuo or jumdata", seller, c.Providers[seller])
		}
	}
	return nil
}

// Validator decodes and checks invoice requests: size, encoding, JSON syntax
// and nesting, the JSON Schema, and the providers' domain rules. It is safe
// for concurrent use.
type Validator struct {
	cfg    ValidatorConfig
	schema *jsonschema.Schema
}

// NewValidator compiles the request schema.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	providers := make(map[string]string, len(cfg.Providers))
	for seller, p := range cfg.Providers {
		providers[NormalizeTaxNumber(seller)] = p
	}
	cfg.Providers = providers // a copy: the caller's map may change
	sch, err := compileSchema(RequestSchemaID)
	if err != nil {
		return nil, err
	}
	return &Validator{cfg: cfg, schema: sch}, nil
}

// MaxBytes returns the size limit in force.
func (v *Validator) MaxBytes() int { return v.cfg.MaxBytes }

// compileSchema compiles one of the embedded contract documents.
func compileSchema(id string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, d := range []struct {
		id  string
		doc []byte
	}{{RequestSchemaID, RequestSchemaJSON}, {ResultSchemaID, ResultSchemaJSON}, {DeadLetterSchemaID, DeadLetterSchemaJSON}} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(d.doc))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", d.id, err)
		}
		if err := c.AddResource(d.id, doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", d.id, err)
		}
	}
	sch, err := c.Compile(id)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", id, err)
	}
	return sch, nil
}

// Decoded is the outcome of decoding a request that is at least a JSON object.
type Decoded struct {
	// Request is the typed request. A field whose JSON type is wrong (a
	// violation says so) is left at its zero value, and a key that is not
	// a field's exact name is left out.
	Request *Request
	// Fingerprint is the canonical fingerprint of the message (see Fingerprint).
	Fingerprint string
	// SellerTaxNum, OrderNo and Kind are read from the envelope leniently
	// (strings only, tax number normalized), even when the request is
	// invalid, so that a rejection can be addressed to its order.
	SellerTaxNum string
	OrderNo      string
	Kind         Kind
	// Violations lists every problem, up to MaxViolations of them; the
	// request is valid when it is empty.
	Violations []Violation
	// NotListed is the number of violations found beyond MaxViolations and
	// left out of Violations. When it is not zero, the last entry of
	// Violations has rule RuleMoreViolations and says so.
	NotListed int
	// Warnings lists findings that do not block the request.
	Warnings []Violation
}

// Valid reports whether the request has no violations.
func (d *Decoded) Valid() bool { return len(d.Violations) == 0 }

// OnlySubjectSpelling reports whether the request's only violations are of
// RuleSubjectSpelling (a seller subject in lower case), which builds before
// that rule took.
func (d *Decoded) OnlySubjectSpelling() bool {
	if d.Request == nil || len(d.Violations) == 0 {
		return false
	}
	for _, v := range d.Violations {
		if v.Rule != RuleSubjectSpelling {
			return false
		}
	}
	return true
}

// Error summarises the violations as a result error, or returns nil when the
// request is valid.
func (d *Decoded) Error() *ErrorInfo {
	if d.Valid() {
		return nil
	}
	first := d.Violations[0]
	msg := first.String()
	n := len(d.Violations)
	if d.NotListed > 0 {
		n += d.NotListed - 1 // the last entry only counts the others
	}
	if n > 1 {
		msg = fmt.Sprintf("%d violations; first: %s", n, msg)
	}
	return &ErrorInfo{
		Code:         CodeInvalidRequest,
		Message:      msg,
		Field:        first.Field,
		ProviderCode: first.ProviderCode,
		Violations:   d.Violations,
	}
}

// Decode reads one request message. subjectSeller is the seller token of the
// subject it arrived on ("" when there is none, as for files); a request for
// another seller is a violation.
//
// It returns a *MalformedError when data is not a readable JSON object, and
// otherwise a Decoded listing every violation found: schema violations and
// the domain rules, which check every field of the right JSON type even when
// others are not. It never panics, whatever data holds.
func (v *Validator) Decode(data []byte, subjectSeller string) (*Decoded, error) {
	tree, err := v.parse(data)
	if err != nil {
		return nil, err
	}
	c := &collector{strict: v.cfg.StrictTaxNumbers}
	full := tree
	tree, long := limitLines(tree)
	// The typed request comes from the tree already parsed. A field of the
	// wrong JSON type is left empty (the schema reports it), and the rules
	// still check the rest. It is built before the schema is checked: the
	// seller's provider, and whether the jumdata adapter would send the
	// request, decide the code each violation names, the schema's too.
	req, _ := requestFromTree(tree)
	normalize(req)
	c.setProvider(v.cfg.Providers[req.SellerTaxNum], req)
	for _, l := range long {
		c.addCode(l.field, "max_items", c.schemaCode(l.field, "max_items"), "has %d entries; the maximum is %d, and those beyond it are not checked", l.n, maxLines)
	}
	if err := v.schema.Validate(tree); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("validate request: %w", err)
		}
		schemaViolations(ve, c)
	}
	checkControlChars(tree, make([]pathSegment, 0, 8), c)

	d := &Decoded{Fingerprint: fingerprintTree(full)}
	d.SellerTaxNum, _ = tree["sellerTaxNum"].(string)
	d.SellerTaxNum = NormalizeTaxNumber(d.SellerTaxNum)
	d.OrderNo, _ = tree["orderNo"].(string)
	if k, _ := tree["kind"].(string); Kind(k).Valid() {
		d.Kind = Kind(k)
	}
	checkRequest(req, subjectSeller, c.provider, c)
	d.Request = req
	d.Violations, d.Warnings, d.NotListed = c.result()
	return d, nil
}

// lineLists are the lists of lines a request may hold, at most maxLines
// lines each (the schema's maxItems).
var lineLists = [...]struct{ body, list string }{{"order", "invoiceDetail"}, {"redConfirm", "detail"}}

// longList is a list of lines longer than maxLines: its field path and
// its length.
type longList struct {
	field string
	n     int
}

// limitLines returns the tree to check, in which each list of lines longer
// than maxLines is cut to its first maxLines lines, and the lists it cut,
// which Decode reports; tree itself is not changed. The lines beyond are
// not checked: the JSON Schema library checks every item of an array,
// whatever its maxItems, and half a megabyte of empty lines ({},{},...)
// would otherwise cost hundreds of thousands of violations and close to a
// gigabyte of allocations.
func limitLines(tree map[string]any) (map[string]any, []longList) {
	out, copied := tree, false
	var long []longList
	for _, l := range lineLists {
		body, _ := tree[l.body].(map[string]any)
		lines, _ := body[l.list].([]any)
		if len(lines) <= maxLines {
			continue
		}
		long = append(long, longList{field: l.body + "." + l.list, n: len(lines)})
		if !copied {
			out, copied = maps.Clone(tree), true
		}
		cut := maps.Clone(body)
		cut[l.list] = lines[:maxLines:maxLines]
		out[l.body] = cut
	}
	return out, long
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// collector gathers violations and warnings without duplicates. It keeps
// the first MaxViolations violations and only counts the rest, so that their
// messages are never built.
type collector struct {
	strict bool
	// provider is the seller's provider ("nuonuo", "jumdata", or "" when
	// ValidatorConfig.Providers does not list the seller: Nuonuo's rules).
	provider string
	// jumdataSent reports that the seller is jumdata's and that the
	// jumdata adapter would send the request to jumdata (jumdataSends):
	// only then does a rule name jumdata's code (providerCode).
	jumdataSent bool
	// invoiceLine is the order's invoiceLine, and fullyDigital whether the
	// seller's provider issues it as a fully digital invoice, whose remark
	// is held to 200 characters (remarkTooLong).
	invoiceLine  string
	fullyDigital bool
	violations   []Violation
	notListed    int
	typeErrors   int // violations of rule type, listed or not
	warnings     []Violation
	seen         map[[2]string]bool
	fields       map[string]bool
}

// setProvider records the seller's provider and whether the jumdata
// adapter would send r (jumdataSent), which decide the codes violations
// name (providerCode).
func (c *collector) setProvider(provider string, r *Request) {
	c.provider = provider
	c.jumdataSent = provider == "jumdata" && jumdataSends(r)
	if r.Order != nil {
		c.invoiceLine = r.Order.InvoiceLine
		c.fullyDigital = fullyDigital(provider, r.Order.InvoiceLine)
	}
}

// add records a violation of rule at field; code "" stands for bodyCode's.
func (c *collector) add(field, rule, code, format string, args ...any) {
	if code == "" {
		code = bodyCode(field, rule)
	}
	c.addCode(field, rule, code, format, args...)
}

// own records a violation of rule at field that this service's contract
// refuses on its own, for a seller whose provider would take the request
// as sent: it pre-empts no provider code, and names none.
func (c *collector) own(field, rule, format string, args ...any) {
	c.addCode(field, rule, "", format, args...)
}

// addCode records a violation of rule at field naming code as it is.
func (c *collector) addCode(field, rule, code, format string, args ...any) {
	if c.record(field, rule, true) {
		c.violations = append(c.violations, Violation{Field: field, Rule: rule, ProviderCode: code, Message: fmt.Sprintf(format, args...)})
	}
}

// addSpelling records a violation of rule at field, naming code, that
// says how a figure is written (too long, too precise) while its value
// can be read: the field is still judged by the other rules on that value
// (has reports false for it), so that a second problem of the figure is
// reported now, not once the spelling is corrected and the request sent
// again (amountWithin).
func (c *collector) addSpelling(field, rule, code, format string, args ...any) {
	if c.record(field, rule, false) {
		c.violations = append(c.violations, Violation{Field: field, Rule: rule, ProviderCode: code, Message: fmt.Sprintf(format, args...)})
	}
}

// record notes a violation of rule at field and reports whether it is to be
// listed: it is not when field already has one of rule, or when
// MaxViolations are listed already (it is then counted in notListed).
// judged says whether the violation leaves the field's value unusable to
// the other rules (has), which addSpelling's does not.
func (c *collector) record(field, rule string, judged bool) bool {
	if c.seen == nil {
		c.seen, c.fields = map[[2]string]bool{}, map[string]bool{}
	}
	k := [2]string{field, rule}
	if c.seen[k] || (rule != "type" && c.mistyped(field)) {
		return false
	}
	c.seen[k] = true
	if judged {
		c.fields[field] = true
	}
	if rule == "type" {
		c.typeErrors++
	}
	if len(c.violations) >= MaxViolations {
		c.notListed++
		return false
	}
	return true
}

// has reports whether field already has a violation that leaves its value
// unusable, so that a value the schema rejected, or a rule found wrong, is
// not also judged by the other rules. A figure that is only written wrong,
// too long or too precise but readable (addSpelling), is judged on its
// value.
func (c *collector) has(field string) bool { return c.fields[field] }

// mistyped reports whether field, or the object or array holding it, has
// the wrong JSON type. The typed request holds such a field as empty, which
// is not what was sent: it gets no violation but the type's, and the rules
// do not read its emptiness as a choice (a default pushMode, a blue
// invoice, a normal line, a missing price).
func (c *collector) mistyped(field string) bool {
	if c.typeErrors == 0 {
		return false
	}
	for {
		if c.seen[[2]string{field, "type"}] {
			return true
		}
		i := strings.LastIndexAny(field, ".[")
		if i <= 0 {
			return false
		}
		field = field[:i]
	}
}

func (c *collector) warn(field, rule, format string, args ...any) {
	c.warnings = append(c.warnings, Violation{Field: field, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// result returns the violations ordered by field (so each field's problems
// stand together, in document order for array indices), ending with a
// RuleMoreViolations entry when some were left out, the warnings and the
// number of violations left out.
func (c *collector) result() (violations, warnings []Violation, notListed int) {
	slices.SortStableFunc(c.violations, func(a, b Violation) int { return comparePaths(a.Field, b.Field) })
	if c.notListed > 0 {
		c.violations = append(c.violations, Violation{Rule: RuleMoreViolations,
			Message: fmt.Sprintf("%d more not listed (%d in all): correct these and send the request again to see the rest", c.notListed, len(c.violations)+c.notListed)})
	}
	return c.violations, c.warnings, c.notListed
}

// comparePaths orders field paths, comparing array indices numerically.
func comparePaths(a, b string) int {
	for a != "" && b != "" {
		ta, ra := nextToken(a)
		tb, rb := nextToken(b)
		if ta != tb {
			na, aok := indexToken(ta)
			nb, bok := indexToken(tb)
			if aok && bok {
				return cmp.Compare(na, nb)
			}
			return strings.Compare(ta, tb)
		}
		a, b = ra, rb
	}
	return cmp.Compare(len(a), len(b))
}

func nextToken(p string) (string, string) {
	if strings.HasPrefix(p, "[") {
		i := strings.IndexByte(p, ']')
		if i < 0 {
			return p, ""
		}
		return p[:i+1], strings.TrimPrefix(p[i+1:], ".")
	}
	i := strings.IndexAny(p, ".[")
	if i < 0 {
		return p, ""
	}
	return p[:i], strings.TrimPrefix(p[i:], ".")
}

func indexToken(t string) (int, bool) {
	if len(t) < 3 || t[0] != '[' {
		return 0, false
	}
	n := 0
	for _, c := range t[1 : len(t)-1] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// checkControlChars reports strings holding control characters anywhere in
// the tree: they corrupt invoices and logs, and the JSON escapes that carry
// them (\u0000) pass the parser.
//
// The walk keeps the path as a stack of segments and spells it out only for
// a string that holds one, so a clean request (nearly all of them) costs no
// string building.
func checkControlChars(v any, path []pathSegment, c *collector) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			checkControlChars(child, append(path, pathSegment{key: k, index: -1}), c)
		}
	case []any:
		for i, child := range t {
			checkControlChars(child, append(path, pathSegment{index: i}), c)
		}
	case string:
		for i, r := range t {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
				c.add(spellPath(path), "control_character", "", "contains the control character U+%04X at character %d", r, utf8.RuneCountInString(t[:i])+1)
				return
			}
		}
	}
}

// pathSegment is one step of a field path: an object key, or an array index
// when index >= 0.
type pathSegment struct {
	key   string
	index int
}

// spellPath writes a path the way violations name fields: keys joined by
// dots, indexes in brackets ("items[2].name").
func spellPath(path []pathSegment) string {
	var b strings.Builder
	for _, s := range path {
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.key)
	}
	return b.String()
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

var (
	resultSchema     = sync.OnceValues(func() (*jsonschema.Schema, error) { return compileSchema(ResultSchemaID) })
	deadLetterSchema = sync.OnceValues(func() (*jsonschema.Schema, error) { return compileSchema(DeadLetterSchemaID) })
)

// CheckResultJSON validates a result event against invoice-result.schema.json.
// Downstream services and tests use it to hold the consumer to its contract.
func CheckResultJSON(data []byte) error { return checkAgainst(resultSchema, data) }

// CheckDeadLetterJSON validates a dead letter against
// invoice-deadletter.schema.json.
func CheckDeadLetterJSON(data []byte) error { return checkAgainst(deadLetterSchema, data) }

func checkAgainst(compiled func() (*jsonschema.Schema, error), data []byte) error {
	sch, err := compiled()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(doc)
}
