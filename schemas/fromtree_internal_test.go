package schemas

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// treeSeeds are the example requests: every kind, every body.
func treeSeeds(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/requests/*.json")
	files = append(files, "testdata/seed001-example.json")
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) < 5 {
		t.Fatalf("only %d example requests", len(out))
	}
	return out
}

// checkFromTree asserts that when requestFromTree builds a request from
// data's tree, json.Unmarshal builds the same one from the tree written
// out again (which has no duplicate keys). It reports whether one was
// built.
func checkFromTree(t testing.TB, v *Validator, data []byte) bool {
	t.Helper()
	tree, err := v.parse(data)
	if err != nil {
		return false
	}
	got, ok := requestFromTree(tree)
	if !ok {
		return false
	}
	canonical, err := json.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	var want Request
	if err := json.Unmarshal(canonical, &want); err != nil {
		t.Fatalf("built a request from a tree json.Unmarshal rejects (%v):\n%s", err, canonical)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("from the tree:\n%+v\njson.Unmarshal:\n%+v\ndocument:\n%s", *got, want, canonical)
	}
	return true
}

// TestRequestFromTree: every example request is built from its tree as
// json.Unmarshal builds it from its bytes.
func TestRequestFromTree(t *testing.T) {
	v, err := NewValidator(ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range treeSeeds(t) {
		if !checkFromTree(t, v, data) {
			t.Errorf("no request built from the tree of\n%s", data)
			continue
		}
		// And from the bytes directly, which have no duplicate keys.
		tree, _ := v.parse(data)
		got, _ := requestFromTree(tree)
		var want Request
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("from the tree:\n%+v\njson.Unmarshal:\n%+v", *got, want)
		}
	}
}

// TestRequestFromTreeNotExact: a key that is not a field's exact name, or a
// JSON type the field cannot hold, is reported as not exact and left out of
// the request, whose other fields are filled.
func TestRequestFromTreeNotExact(t *testing.T) {
	for _, doc := range []string{
		`{"OrderNo":"A1"}`,                           // json.Unmarshal matches it to orderNo
		`{"orderNo":7}`,                              // a number for a string
		`{"order":{"invoiceDetail":{}}}`,             // an object for an array
		`{"order":{"invoiceDetail":[{"tax":true}]}}`, // a boolean for an amount
		`{"order":{"invoiceDetail":[7]}}`,            // a number for a line
		`{"order":"x"}`,                              // a string for an object
		`{"orderNo":null}`,                           // json.Unmarshal leaves it as it was
		`{"unknown":"x"}`,
	} {
		var tree map[string]any
		d := json.NewDecoder(strings.NewReader(doc))
		d.UseNumber()
		if err := d.Decode(&tree); err != nil {
			t.Fatal(err)
		}
		tree["kind"] = "issue"
		r, exact := requestFromTree(tree)
		if exact {
			t.Errorf("%s: exact, want not", doc)
		}
		if r == nil || r.Kind != KindIssue {
			t.Errorf("%s: built %+v, want the other fields filled", doc, r)
		}
	}
	r, _ := requestFromTree(map[string]any{"order": map[string]any{"clerk": json.Number("5"), "buyerName": "ACME",
		"invoiceDetail": []any{json.Number("7"), map[string]any{"goodsName": "A", "tax": true}}}})
	if o := r.Order; o == nil || o.Clerk != "" || o.BuyerName != "ACME" || len(o.InvoiceDetail) != 2 ||
		o.InvoiceDetail[1].GoodsName != "A" || o.InvoiceDetail[1].Tax.IsSet() {
		t.Errorf("order %+v", r.Order)
	}
}

// TestDecodeDuplicateKeys: with a key given twice, the typed request holds
// what the schema checked, the last value, as the fingerprint does.
// (json.Unmarshal of the bytes would merge the two objects, keeping a
// field the schema never saw.)
func TestDecodeDuplicateKeys(t *testing.T) {
	v, err := NewValidator(ValidatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"orderNo":"A1","order":{"buyerName":"first","remark":"kept by a merge"},"order":{"buyerName":"last"}}`)
	d, err := v.Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	if d.Request == nil || d.Request.Order == nil {
		t.Fatalf("no order: %+v", d)
	}
	if o := d.Request.Order; o.BuyerName != "last" || o.Remark != "" {
		t.Errorf("order buyerName %q, remark %q; want the last object alone", o.BuyerName, o.Remark)
	}
}

// FuzzRequestFromTree: whatever the document, a request built from its
// tree is the one json.Unmarshal builds from the tree written out.
func FuzzRequestFromTree(f *testing.F) {
	for _, data := range treeSeeds(f) {
		f.Add(data)
	}
	f.Add([]byte(`{"order":{"invoiceDetail":[{"tax":1.50,"price":"1.13"},{}]},"orderNo":"x"}`))
	v, err := NewValidator(ValidatorConfig{MaxBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFromTree(t, v, data)
	})
}

// TestRequestFromTreeNulls: a null body or list of lines is left nil, as
// json.Unmarshal leaves it.
func TestRequestFromTreeNulls(t *testing.T) {
	tree := map[string]any{"orderNo": "A1", "order": nil, "redConfirm": map[string]any{"detail": nil}}
	r, ok := requestFromTree(tree)
	if !ok {
		t.Fatal("no request built")
	}
	if r.Order != nil || r.RedConfirm == nil || r.RedConfirm.Detail != nil {
		t.Errorf("order %v, redConfirm %+v; want no order and a red confirmation without detail lines", r.Order, r.RedConfirm)
	}
}
