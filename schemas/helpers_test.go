package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// MustValidator returns a validator with cfg.
func MustValidator(tb testing.TB, cfg schemas.ValidatorConfig) *schemas.Validator {
	tb.Helper()
	v, err := schemas.NewValidator(cfg)
	if err != nil {
		tb.Fatalf("NewValidator: %v", err)
	}
	return v
}

// DecodeAs decodes doc as the validator does for a seller whose provider
// is provider (ValidatorConfig.Providers), the seller read from doc's
// sellerTaxNum, failing the test if Decode returns an error.
func DecodeAs(tb testing.TB, doc []byte, provider string) *schemas.Decoded {
	tb.Helper()
	var env struct{ SellerTaxNum string }
	if err := json.Unmarshal(doc, &env); err != nil {
		tb.Fatal(err)
	}
	d, err := MustValidator(tb, schemas.ValidatorConfig{Providers: map[string]string{env.SellerTaxNum: provider}}).Decode(doc, env.SellerTaxNum)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// MustRead returns a file of testdata/.
func MustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// edit changes one field of a JSON document: Path is a field path like
// order.invoiceDetail[1].tax; Delete removes the field; otherwise Value is set.
type edit struct {
	Path   string
	Value  any
	Delete bool
}

func set(path string, v any) edit { return edit{Path: path, Value: v} }
func del(path string) edit        { return edit{Path: path, Delete: true} }

// MustEdit applies edits to the JSON document doc and returns the result.
func MustEdit(tb testing.TB, doc []byte, edits ...edit) []byte {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		tb.Fatal(err)
	}
	for _, e := range edits {
		root = apply(tb, root, splitPath(e.Path), e)
	}
	out, err := json.Marshal(root)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func splitPath(p string) []string {
	var toks []string
	for _, part := range strings.Split(p, ".") {
		for {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				toks = append(toks, part)
				break
			}
			if i > 0 {
				toks = append(toks, part[:i])
			}
			j := strings.IndexByte(part, ']')
			toks = append(toks, part[i:j+1])
			part = part[j+1:]
			if part == "" {
				break
			}
		}
	}
	return toks
}

func apply(tb testing.TB, node any, toks []string, e edit) any {
	tb.Helper()
	tok := toks[0]
	last := len(toks) == 1
	if strings.HasPrefix(tok, "[") {
		i, err := strconv.Atoi(tok[1 : len(tok)-1])
		if err != nil {
			tb.Fatalf("bad index %s", tok)
		}
		arr, _ := node.([]any)
		if i >= len(arr) {
			tb.Fatalf("index %d out of range in %v", i, e.Path)
		}
		if last {
			if e.Delete {
				return append(arr[:i:i], arr[i+1:]...)
			}
			arr[i] = e.Value
			return arr
		}
		arr[i] = apply(tb, arr[i], toks[1:], e)
		return arr
	}
	obj, ok := node.(map[string]any)
	if !ok {
		obj = map[string]any{}
	}
	if last {
		if e.Delete {
			delete(obj, tok)
		} else {
			obj[tok] = e.Value
		}
		return obj
	}
	obj[tok] = apply(tb, obj[tok], toks[1:], e)
	return obj
}

// golden compares got with testdata/name, rewriting it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs from the golden file (run go test -update if the change is intended)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}
