package schemas_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// FuzzDecode feeds the decoder arbitrary bytes: it must never panic, and
// every answer must be one of the two documented shapes.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	files = append(files, "testdata/seed001-example.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "{}", "[]", `{"kind":"issue","order":{"invoiceDetail":[{"tax":1e999999999}]}}`, "{\"a\":\"\xff\"}", `{"order":{"invoiceDetail":[{},{},{}]}}`} {
		f.Add([]byte(s))
	}
	v, err := schemas.NewValidator(schemas.ValidatorConfig{MaxBytes: 64 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := v.Decode(data, "339902999999789113")
		if err != nil {
			var me *schemas.MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("error of an unexpected type: %v", err)
			}
			return
		}
		if len(d.Fingerprint) != 64 {
			t.Fatalf("fingerprint %q", d.Fingerprint)
		}
		if d.Valid() {
			if d.Request == nil {
				t.Fatal("valid without a request")
			}
			// A valid request re-encodes and decodes again as valid.
			out, err := json.Marshal(d.Request)
			if err != nil {
				t.Fatal(err)
			}
			again, err := v.Decode(out, "339902999999789113")
			if err != nil || !again.Valid() {
				t.Fatalf("re-encoded valid request is not valid: %v %v\n%s", err, again, out)
			}
		}
		if e := d.Error(); (e == nil) != d.Valid() {
			t.Fatal("Error() disagrees with Valid()")
		}
	})
}
