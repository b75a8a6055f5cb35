package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// requestFromTree builds the typed request from the JSON tree that Decode
// has parsed and checked against the schema, so that a valid request is
// parsed once and not twice (json.Unmarshal of the bytes again was 7% of the
// consumer's CPU at 1,000 requests/s). It fills what json.Unmarshal would
// fill from the same document for the kinds a Request holds: strings and
// string kinds, Amounts, structs, pointers to structs and slices of them.
// It reports false for anything else, or for a key that is not a field's
// exact name (json.Unmarshal would match it without regard to case), and
// the caller then falls back to json.Unmarshal: it is meant for documents
// the schema accepted, whose objects admit no other keys.
func requestFromTree(tree map[string]any) (*Request, bool) {
	var req Request
	if !fillStruct(reflect.ValueOf(&req).Elem(), tree) {
		return nil, false
	}
	return &req, true
}

// treeFields caches each struct type's field indices by JSON name.
var treeFields sync.Map // reflect.Type → map[string]int

func fieldsOf(t reflect.Type) map[string]int {
	if f, ok := treeFields.Load(t); ok {
		return f.(map[string]int)
	}
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fields[name] = i
	}
	treeFields.Store(t, fields)
	return fields
}

func fillStruct(v reflect.Value, obj map[string]any) bool {
	fields := fieldsOf(v.Type())
	for key, x := range obj {
		i, ok := fields[key]
		if !ok || !fillValue(v.Field(i), x) {
			return false
		}
	}
	return true
}

func fillValue(v reflect.Value, x any) bool {
	if v.Type() == amountType {
		switch x := x.(type) {
		case nil:
			v.Set(reflect.Zero(amountType))
		case string:
			v.Set(reflect.ValueOf(ParseAmount(x)))
		case json.Number:
			v.Set(reflect.ValueOf(ParseAmount(string(x))))
		default:
			return false
		}
		return true
	}
	if x == nil && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Slice) {
		v.SetZero() // as json.Unmarshal sets a null pointer or slice
		return true
	}
	switch v.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return false
		}
		v.SetString(s)
		return true
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if !fillValue(p.Elem(), x) {
			return false
		}
		v.Set(p)
		return true
	case reflect.Slice:
		arr, ok := x.([]any)
		if !ok {
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(arr), len(arr))
		for i, e := range arr {
			if !fillValue(s.Index(i), e) {
				return false
			}
		}
		v.Set(s)
		return true
	case reflect.Struct:
		obj, ok := x.(map[string]any)
		if !ok {
			return false
		}
		return fillStruct(v, obj)
	}
	return false
}
