package jumdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/fapiaohub/invoicer/schemas"
)

// envelope is jumdata's answer: {code, msg, charge, taskNo, data}.
type envelope struct {
	// Code is the code as text ("200"): the document writes a JSON number,
	// a string is accepted too.
	Code string
	// Msg describes the code.
	Msg string
	// TaskNo is jumdata's number of this call.
	TaskNo string
	// Data is the endpoint's result, raw; nil when absent or null.
	Data json.RawMessage
}

var codePattern = regexp.MustCompile(`^-?[0-9]{1,9}$`)

// decodeEnvelope reads an answer. It fails when the bytes are not a JSON
// object with an integer code.
func decodeEnvelope(b []byte) (*envelope, error) {
	var raw struct {
		Code   json.RawMessage `json:"code"`
		Msg    text            `json:"msg"`
		TaskNo text            `json:"taskNo"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode jumdata answer: %w", err)
	}
	var code text
	if len(raw.Code) == 0 || json.Unmarshal(raw.Code, &code) != nil || !codePattern.MatchString(string(code)) {
		return nil, errors.New("decode jumdata answer: no integer code")
	}
	env := &envelope{Code: string(code), Msg: string(raw.Msg), TaskNo: string(raw.TaskNo)}
	if d := bytes.TrimSpace(raw.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		env.Data = d
	}
	return env, nil
}

// decodeData reads an envelope's data into v; absent data leaves v zero.
func decodeData(env *envelope, v any) error {
	if env.Data == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return fmt.Errorf("decode jumdata data: %w", err)
	}
	return nil
}

// text is a JSON string, number or boolean read as its text; null is empty.
// jumdata's examples mix numbers and strings, so every text field is read
// leniently.
type text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*t = ""
	case b[0] == '"':
		s, err := schemas.UnquoteString(b)
		if err != nil {
			return err
		}
		*t = text(strings.TrimSpace(s))
	case b[0] == '{' || b[0] == '[':
		return fmt.Errorf("jumdata: expected a string or number, got %.20s", b)
	default:
		*t = text(b)
	}
	return nil
}

// amount is a JSON number or string read as a decimal, never through
// float64; null or "" is unset.
type amount struct {
	dec decimal.Decimal
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *amount) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	if t == "" {
		*a = amount{}
		return nil
	}
	if len(t) > 40 {
		return fmt.Errorf("jumdata: amount %.20s... too long", t)
	}
	d, err := decimal.NewFromString(string(t))
	if err != nil {
		return fmt.Errorf("jumdata: amount %q: %w", string(t), err)
	}
	*a = amount{dec: d, set: true}
	return nil
}

// count is a JSON number or string read as an int; null is unset.
type count struct {
	n   int
	set bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (c *count) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	if t == "" {
		*c = count{}
		return nil
	}
	n, err := strconv.Atoi(string(t))
	if err != nil {
		return fmt.Errorf("jumdata: %q is not a whole number", string(t))
	}
	*c = count{n: n, set: true}
	return nil
}

// page is a list answer's data.
type page[T any] struct {
	PageNumber count `json:"pagenumber"`
	PageSize   count `json:"pagesize"`
	Total      count `json:"total"`
	// List is nil when the answer has no list (no data, or data without
	// a list, or a null one): an answer that cannot say "none", unlike an
	// empty list.
	List *[]T `json:"list"`
}

// blueResult is the data of a 200 blue-invoice/submit.
type blueResult struct {
	Fphm text `json:"fphm"`
	Kprq text `json:"kprq"`
}

// blueItem is one entry of blue-invoice/query.
type blueItem struct {
	Fphm       text   `json:"fphm"`
	Kprq       text   `json:"kprq"`
	Sflzfp     text   `json:"sflzfp"`
	Xsfnsrsbh  text   `json:"xsfnsrsbh"`
	Gmfnsrsbh  text   `json:"gmfnsrsbh"`
	Gmfmc      text   `json:"gmfmc"`
	Hjje       amount `json:"hjje"`
	Hjse       amount `json:"hjse"`
	Jshj       amount `json:"jshj"`
	Hzqrxxuuid text   `json:"hzqrxxuuid"`
	// Ddh is the order number, if jumdata ever lists it (the document's
	// example does not); nil when absent.
	Ddh *text `json:"ddh"`
}

// redResult is the data of a 200 red-invoice/submit or red-invoice/result.
type redResult struct {
	UUID text   `json:"uuid"`
	Fphm text   `json:"fphm"`
	Kprq text   `json:"kprq"`
	Jshj amount `json:"jshj"`
	Hjje amount `json:"hjje"`
	Hjse amount `json:"hjse"`
}

// redItem is one entry of red-invoice/query.
type redItem struct {
	Fphm            text   `json:"fphm"`
	Kprq            text   `json:"kprq"`
	Kjhzfpdydlzfphm text   `json:"kjhzfpdydlzfphm"`
	Xsfnsrsbh       text   `json:"xsfnsrsbh"`
	Hjje            amount `json:"hjje"`
	Hjse            amount `json:"hjse"`
}

// formDetail is the data of a 200 red-confirmation/detail. The document's
// example carries no data at all: the fields are an assumption, named as the
// tax bureau names a red confirmation form's (lzfphm the blue invoice, chyydm
// the reason, hzcxje and hzcxse the amounts reversed, lrrq when the form was
// made; encoding/json matches chyyDm too). Each may be absent, and then
// says nothing.
type formDetail struct {
	Lzfphm text   `json:"lzfphm"`
	Chyydm text   `json:"chyydm"`
	Hzcxje amount `json:"hzcxje"`
	Hzcxse amount `json:"hzcxse"`
	Lrrq   text   `json:"lrrq"`
}

// qrcodeResult is the data of a 200 auth/qrcode.
type qrcodeResult struct {
	AuthID      text `json:"authId"`
	ImageBase64 text `json:"qrcodeImageBase64"`
	ImageURL    text `json:"qrcodeImageUrl"`
}

// pageResult is the data of a 200 red-confirmation/page.
type pageResult struct {
	URL text `json:"url"`
}
