package schemas

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// requestFromTree builds the typed request from the JSON tree that Decode
// has parsed and checked against the schema, so that the request is parsed
// once and not twice (json.Unmarshal of the bytes again was 7% of the
// consumer's CPU at 1,000 requests/s). It fills what json.Unmarshal would
// fill from the same document for the kinds a Request holds: strings and
// string kinds, Amounts, structs, pointers to structs and slices of them.
//
// It always builds a request. A value of a JSON type its field cannot hold
// leaves the field at its zero value, and a key that is not a field's exact
// name is skipped (json.Unmarshal would match it without regard to case):
// the schema reports both, and the domain rules still check the rest.
// exact reports whether neither happened, that is whether json.Unmarshal
// would build the same request from the tree written out.
func requestFromTree(tree map[string]any) (req *Request, exact bool) {
	req = new(Request)
	f := treeFiller{exact: true}
	f.fillStruct(reflect.ValueOf(req).Elem(), tree)
	return req, f.exact
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

// treeFiller fills typed values from a JSON tree, noting in exact whether
// every key and JSON type fitted.
type treeFiller struct{ exact bool }

func (f *treeFiller) fillStruct(v reflect.Value, obj map[string]any) {
	fields := fieldsOf(v.Type())
	for key, x := range obj {
		i, ok := fields[key]
		if !ok {
			f.exact = false
			continue
		}
		if !f.fillValue(v.Field(i), x) {
			f.exact = false
		}
	}
}

// fillValue sets v from x and reports whether x's JSON type fits v; when it
// does not, v is left as it was.
func (f *treeFiller) fillValue(v reflect.Value, x any) bool {
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
		if !f.fillValue(p.Elem(), x) {
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
			if !f.fillValue(s.Index(i), e) {
				f.exact = false
			}
		}
		v.Set(s)
		return true
	case reflect.Struct:
		obj, ok := x.(map[string]any)
		if !ok {
			return false
		}
		f.fillStruct(v, obj)
		return true
	}
	return false
}
