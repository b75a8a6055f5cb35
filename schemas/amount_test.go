package schemas_test

import (
	"encoding/json"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/shopspring/decimal"
)

func TestAmountDecoding(t *testing.T) {
	cases := []struct {
		name, json, text string
		set, valid       bool
		places, digits   int
	}{
		{"string", `"5.65"`, "5.65", true, true, 2, 4},
		{"number", `5.65`, "5.65", true, true, 2, 4},
		{"number keeps trailing zeros", `179.80`, "179.80", true, true, 2, 6},
		{"negative", `"-0.65"`, "-0.65", true, true, 2, 4},
		{"integer", `2`, "2", true, true, 0, 1},
		{"empty string is unset", `""`, "", false, false, 0, 0},
		{"null is unset", `null`, "", false, false, 0, 0},
		{"exponent is invalid", `1e3`, "1e3", true, false, 0, 3},
		{"huge exponent is invalid", `1e999999999`, "1e999999999", true, false, 0, 11},
		{"comma is invalid", `"1,00"`, "1,00", true, false, 0, 4},
		{"spaces are invalid", `" 1.00"`, " 1.00", true, false, 2, 5},
		{"leading dot is invalid", `".5"`, ".5", true, false, 1, 2},
		{"trailing dot is invalid", `"5."`, "5.", true, false, 0, 2},
		{"NaN is invalid", `"NaN"`, "NaN", true, false, 0, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a schemas.Amount
			if err := json.Unmarshal([]byte(tc.json), &a); err != nil {
				t.Fatal(err)
			}
			if a.String() != tc.text || a.IsSet() != tc.set || a.Valid() != tc.valid || a.Places() != tc.places || a.Digits() != tc.digits {
				t.Fatalf("got text %q set %v valid %v places %d digits %d", a.String(), a.IsSet(), a.Valid(), a.Places(), a.Digits())
			}
		})
	}
	var a schemas.Amount
	if err := json.Unmarshal([]byte(`true`), &a); err == nil {
		t.Error("a boolean decoded as an amount")
	}
}

func TestAmountRoundTripAndArithmetic(t *testing.T) {
	var line struct {
		Price schemas.Amount `json:"price,omitzero"`
		Tax   schemas.Amount `json:"tax,omitzero"`
		Num   schemas.Amount `json:"num,omitzero"`
	}
	if err := json.Unmarshal([]byte(`{"price":0.1,"tax":"0.20"}`), &line); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(line)
	if string(out) != `{"price":"0.1","tax":"0.20"}` {
		t.Fatalf("marshal = %s", out)
	}
	// 0.1 + 0.2 is exactly 0.3 in decimal (it is not in float64).
	if sum := line.Price.Decimal().Add(line.Tax.Decimal()); !sum.Equal(decimal.RequireFromString("0.3")) {
		t.Fatalf("0.1 + 0.20 = %s", sum)
	}
	if got := schemas.AmountOf(decimal.RequireFromString("1.005"), 2).String(); got != "1.01" {
		t.Fatalf("AmountOf rounds half away from zero: %s", got)
	}
}

// An amount is written as the JSON string of the text it was read from,
// byte for byte as encoding/json writes that text, whatever it holds: the
// text of an invalid amount is echoed in violations and dead letters.
func TestAmountMarshalsAsItsText(t *testing.T) {
	for _, lit := range []string{`"5.65"`, `179.80`, `-0.65`, `1e999999999`, `" 1.00"`, `"NaN"`, `"a\"b<>&"`,
		`"back\\slash"`, `"tab\tnewline\n"`, `"\u0001\u2028"`, `"中文"`} {
		var a schemas.Amount
		if err := json.Unmarshal([]byte(lit), &a); err != nil {
			t.Fatal(lit, err)
		}
		got, err := json.Marshal(a)
		if err != nil {
			t.Fatal(lit, err)
		}
		want, _ := json.Marshal(a.String())
		if string(got) != string(want) {
			t.Errorf("%s: marshal = %s, want %s", lit, got, want)
		}
		var back schemas.Amount
		if err := json.Unmarshal(got, &back); err != nil || back.String() != a.String() {
			t.Errorf("%s: read back %q (%v), want %q", lit, back.String(), err, a.String())
		}
	}
}

// UnquoteString reads a string literal exactly as encoding/json does, the
// literals it reads without a decoder included, and fails where it fails.
func TestUnquoteStringMatchesEncodingJSON(t *testing.T) {
	for _, lit := range unquoteSeeds {
		checkUnquote(t, []byte(lit))
	}
}

var unquoteSeeds = []string{
	`""`, `"5.65"`, `"购方名称 Ltd."`, `"a\"b"`, `"a\\b"`, `"line\nbreak"`, `"\u4e2d\u6587"`,
	`"\ud83d\ude00"`, `"\ud83d"`, "\"raw\u2028sep\"", "\"tab\there\"", "\"ctl\x01\"", "\"bad\xff\xfe\"",
	"\"half\xe4\xb8\"", `"unterminated`, `unquoted"`, `"`, `"a"b"`, `"trailing\"`, `"\x"`,
}

func FuzzUnquoteString(f *testing.F) {
	for _, lit := range unquoteSeeds {
		f.Add([]byte(lit))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return // UnquoteString is only given string literals
		}
		checkUnquote(t, b)
	})
}

func checkUnquote(t *testing.T, b []byte) {
	t.Helper()
	var want string
	wantErr := json.Unmarshal(b, &want)
	got, err := schemas.UnquoteString(b)
	if (err != nil) != (wantErr != nil) || got != want {
		t.Errorf("UnquoteString(%q) = %q, %v; encoding/json reads %q, %v", b, got, err, want, wantErr)
	}
}
