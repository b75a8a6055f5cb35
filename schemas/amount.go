package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/shopspring/decimal"
)

var amountType = reflect.TypeFor[Amount]()

// maxAmountChars bounds the text of an amount before it is parsed, so that a
// hostile literal such as 1e999999999 or a million digits is never handed to
// the decimal package. Nuonuo's error texts limit an amount to 20 digits
// (E9124, E9126, E9128) and its documents give the fields a maximum length
// of 16; the validator reports a value made of digits longer than 16
// characters, its minus sign counted, by its length with those codes (a
// Nuonuo seller's; for a jumdata seller 400 or none, as the jumdata mapping
// would send it), whether or not it was parsed.
const maxAmountChars = 40

// Amount is a money, price or quantity value exactly as it travelled on the
// wire. It accepts a JSON string ("5.65") or a JSON number (5.65) and never
// passes through float64: the literal text is kept and parsed with
// shopspring/decimal.
//
// An empty string, null or an absent field is "not set". A value that is set
// but is not a plain decimal (no exponent, no spaces, at most 40 characters)
// is kept as text and reported by the validator; Valid tells the two apart.
//
// Amounts marshal back to the same string they were decoded from, so a
// request forwarded to a provider carries the seller's own figures.
type Amount struct {
	raw   string
	dec   decimal.Decimal
	valid bool
}

// ParseAmount returns the Amount for s. It never fails: an invalid s gives an
// Amount that is set but not Valid.
func ParseAmount(s string) Amount {
	a := Amount{raw: s}
	if s == "" {
		return a
	}
	if len(s) > maxAmountChars || !isPlainDecimal(s) {
		return a
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return a
	}
	a.dec, a.valid = d, true
	return a
}

// AmountOf returns the Amount for d written with exactly places decimals
// (rounded half away from zero), for values this service computes itself.
func AmountOf(d decimal.Decimal, places int32) Amount {
	return ParseAmount(d.StringFixed(places))
}

// isPlainDecimal reports whether s is -?digits(.digits)?.
func isPlainDecimal(s string) bool {
	i := 0
	if s[0] == '-' {
		i = 1
	}
	digits, dot, frac := 0, false, 0
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if dot {
				frac++
			} else {
				digits++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0 && (!dot || frac > 0)
}

// IsSet reports whether the field carried a value (anything but "", null or
// absent).
func (a Amount) IsSet() bool { return a.raw != "" }

// IsZero reports whether the amount is unset; it lets `omitzero` drop unset
// amounts when marshalling.
func (a Amount) IsZero() bool { return a.raw == "" }

// Valid reports whether the amount is set and a plain decimal.
func (a Amount) Valid() bool { return a.valid }

// Decimal returns the parsed value; zero when the amount is unset or invalid.
func (a Amount) Decimal() decimal.Decimal { return a.dec }

// String returns the text as received.
func (a Amount) String() string { return a.raw }

// Places returns the number of digits after the decimal point as written
// ("5.650" has 3).
func (a Amount) Places() int {
	if i := strings.IndexByte(a.raw, '.'); i >= 0 {
		return len(a.raw) - i - 1
	}
	return 0
}

// Digits returns the number of characters of the value excluding a leading
// minus sign, the length Nuonuo's error texts limit to 20 (E9124, E9126,
// E9128). The validator's limit is the seeds' maximum field length of 16,
// which counts the whole text, a minus sign included.
func (a Amount) Digits() int {
	return len(strings.TrimPrefix(a.raw, "-"))
}

// MarshalText returns the text the amount was read from, which
// encoding/json writes as a JSON string. (A MarshalJSON would have its
// output checked and compacted by encoding/json each time: a text marshaler
// is written directly, with the same escaping.)
func (a Amount) MarshalText() ([]byte, error) {
	return []byte(a.raw), nil
}

// plainQuoted returns the content of the JSON string literal b when it has
// no escapes: content that encoding/json would write unchanged
// (plainString), and so reads back unchanged. ok is false for anything else
// (escapes, control characters, invalid UTF-8, a malformed literal), which
// goes through encoding/json. Every amount on the wire is such a string: the
// fast path saves a decoder run per amount (a typical request has more than
// a dozen).
func plainQuoted(b []byte) (s string, ok bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	s = string(b[1 : len(b)-1])
	if !plainString(s) {
		return "", false
	}
	return s, true
}

// UnquoteString returns the text of the JSON string literal b, as
// encoding/json would. A literal without escapes (plainQuoted: every amount
// and nearly every text a provider sends) is read without running a
// decoder; the rest goes through encoding/json, whose error a malformed
// literal gets.
func UnquoteString(b []byte) (string, error) {
	if s, ok := plainQuoted(b); ok {
		return s, nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// UnmarshalJSON accepts a JSON string, a JSON number (kept as its literal
// text) or null. It only fails on JSON types that cannot be an amount
// (objects, arrays, booleans); the validator reports those through the schema.
func (a *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		*a = Amount{}
		return nil
	case b[0] == '"':
		s, err := UnquoteString(b)
		if err != nil {
			return err
		}
		*a = ParseAmount(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*a = ParseAmount(string(b))
		return nil
	default:
		return &json.UnmarshalTypeError{Value: string(b), Type: amountType}
	}
}
