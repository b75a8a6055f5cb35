package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// stdTree is what parse built before it read jsontext's tokens:
// encoding/json's Decoder with UseNumber, one value and nothing after it.
// It is the oracle parse is checked against.
func stdTree(data []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if dec.Decode(&tree) != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return tree, true
}

// treeDepth is the nesting of objects and arrays in tree.
func treeDepth(tree any) int {
	deepest := 0
	switch t := tree.(type) {
	case map[string]any:
		for _, v := range t {
			deepest = max(deepest, treeDepth(v))
		}
	case []any:
		for _, v := range t {
			deepest = max(deepest, treeDepth(v))
		}
	default:
		return 0
	}
	return deepest + 1
}

// checkParse asserts that parse accepts exactly the objects encoding/json
// accepts within the depth limit, and builds the same tree from them.
func checkParse(t *testing.T, v *Validator, data []byte) {
	t.Helper()
	got, err := v.parse(data)
	want, ok := stdTree(data)
	ok = ok && utf8.Valid(data) // refused before parsing: encoding/json would read it as U+FFFD
	_, isObject := want.(map[string]any)
	switch {
	case err != nil:
		var me *MalformedError
		if !errors.As(err, &me) {
			t.Fatalf("parse(%q): error of type %T: %v", data, err, err)
		}
		if ok && isObject && len(data) <= v.cfg.MaxBytes && treeDepth(want) <= v.cfg.MaxDepth {
			t.Fatalf("parse(%q) = %v; encoding/json reads it", data, err)
		}
		if me.Offset > int64(len(data)) {
			t.Fatalf("parse(%q): offset %d past the end", data, me.Offset)
		}
	case !ok || !isObject:
		t.Fatalf("parse(%q) accepts what encoding/json does not", data)
	case treeDepth(want) > v.cfg.MaxDepth:
		t.Fatalf("parse(%q) accepts %d levels; the limit is %d", data, treeDepth(want), v.cfg.MaxDepth)
	case !reflect.DeepEqual(map[string]any(got), want):
		t.Fatalf("parse(%q) = %#v; encoding/json: %#v", data, got, want)
	}
}

// parseCases are the corners where two JSON readers may differ.
var parseCases = []string{
	`{}`, ` {"a":1} `, "\t{\r\n\"a\" : [ ] }\n", `{"a":{},"b":[],"c":null,"d":true,"e":false}`,
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":"s"}`, // a repeated name keeps its last value
	`{"n":[0,-0,1.5,-1e5,1E+2,2e-3,12345678901234567890123,0.000000000000000000001]}`,
	`{"n":01}`, `{"n":1.}`, `{"n":.5}`, `{"n":+1}`, `{"n":NaN}`, `{"n":Infinity}`, `{"n":0x10}`,
	`{"s":"\u00e9\u4e2d\"\\\/\b\f\n\r\t"}`, `{"s":"\ud83d\ude00"}`, `{"s":"\ud800"}`, `{"s":"\udc00x"}`,
	`{"s":"\ud800\u0041"}`, `{"s":"\u0000"}`, `{"s":"a` + "\x01" + `"}`, `{"s":"\x"}`, `{"s":"\u12"}`,
	`{"\u0061":1,"a":2}`, `{"":0}`, `{"a" 1}`, `{"a":1,}`, `{"a":[1,]}`, `{,}`, `{"a":1 "b":2}`,
	`{} {}`, `{}{}`, `{} x`, `{}]`, `[]`, `"s"`, `null`, `1`, ``, ` `, `{`, `{"a":`, `{"a":[`,
	"\ufeff{}", `{"a":tru}`, `{"a":nul}`, `{'a':1}`, `{a:1}`, `/* */{}`,
	`{"a":[[[[[[[[]]]]]]]]}`, `{"a":[[[[[[[[[]]]]]]]]]}`, `{"s":"[[[[[[[[[[[[[["}`,
	`{"a":{"b":{"c":{"d":{"e":{"f":{"g":{}}}}}}}}`, `{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{}}}}}}}}}`,
	"{\"a\":\"\xff\"}", "{\"a\":\"\xed\xa0\x80\"}",
}

func TestParseAgreesWithEncodingJSON(t *testing.T) {
	v, err := NewValidator(ValidatorConfig{MaxBytes: 4096, MaxDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range parseCases {
		checkParse(t, v, []byte(c))
	}
	big, err := NewValidator(ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, seed := range treeSeeds(t) {
		checkParse(t, big, seed)
	}
}

// TestParseErrors checks what the malformed messages say, and where.
func TestParseErrors(t *testing.T) {
	v, err := NewValidator(ValidatorConfig{MaxDepth: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		data   string
		reason string
		offset int64
	}{
		{`{"a":1} {}`, "more than one JSON value", 8},
		{"{}\n\t \"tail\"", "more than one JSON value", 5},
		{`{}[]`, "more than one JSON value", 2},
		{`{"a":[1,2`, "not JSON: truncated", 9},
		{`{"a":[1,x]}`, "not JSON: invalid character 'x' at start of value (in /a/1)", 8},
		{`{"order":{"a":{"b":{"c":{"d":{"e":{"f":  {"g":{}}}}}}}}}`, "nested deeper than 8 levels", 46},
		{`[[[[[[[[ [`, "nested deeper than 8 levels", 9},
		{"{\"s\":\"a\xffb\"}", "not valid UTF-8", 7},
	} {
		_, err := v.parse([]byte(tc.data))
		var me *MalformedError
		if !errors.As(err, &me) || me.Reason != tc.reason || me.Offset != tc.offset {
			t.Errorf("parse(%q) = %v, want %q at byte %d", tc.data, err, tc.reason, tc.offset)
		}
	}
}

// FuzzParse checks parse against encoding/json on arbitrary bytes.
func FuzzParse(f *testing.F) {
	for _, c := range parseCases {
		f.Add([]byte(c))
	}
	for _, seed := range treeSeeds(f) {
		f.Add(seed)
	}
	v, err := NewValidator(ValidatorConfig{MaxBytes: 64 << 10, MaxDepth: 8})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if strings.Count(string(data), "[")+strings.Count(string(data), "{") > 10000 {
			return // encoding/json, the oracle, stops at 10,000 levels
		}
		checkParse(t, v, data)
	})
}

// TestParseConcurrently parses from several goroutines at once, as the
// pipeline's workers do: the pooled readers must not share state (run it
// with -race too).
func TestParseConcurrently(t *testing.T) {
	v, err := NewValidator(ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seeds := treeSeeds(t)
	want := make([]any, len(seeds))
	for i, s := range seeds {
		want[i], _ = stdTree(s)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(seeds)
				got, err := v.parse(seeds[i])
				if err != nil || !reflect.DeepEqual(map[string]any(got), want[i]) {
					errs <- fmt.Sprintf("goroutine %d, seed %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
