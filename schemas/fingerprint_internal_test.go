package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// referenceString is how writeString wrote every string before its fast
// path: encoding/json with HTML escaping off.
func referenceString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

var canonicalStrings = []string{
	"", "plain", "上海市浦东新区 张江路 1 号", "a\"b", `back\slash`, "tab\there", "nl\n", "\x00", "\x1f",
	"line\u2028sep", "para\u2029sep", "\u2027\u202a", "<html>&amp;</html>", "\xff\xfe", "ok\xe2\x80", "\xe2\x80\xa8",
	"emoji 🧾", "\u007f", "é", "\xc3",
}

func TestWriteStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range canonicalStrings {
		var buf bytes.Buffer
		writeString(&buf, s)
		if got, want := buf.String(), referenceString(s); got != want {
			t.Errorf("writeString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzWriteString(f *testing.F) {
	for _, s := range canonicalStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		writeString(&buf, s)
		if got, want := buf.String(), referenceString(s); got != want {
			t.Fatalf("writeString(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestFingerprintUnchanged pins the fingerprint of the seed example: the
// order store compares stored fingerprints with new ones, so the canonical
// form must never change.
func TestFingerprintUnchanged(t *testing.T) {
	data, err := os.ReadFile("examples/seed001.json")
	if err != nil {
		t.Fatal(err)
	}
	fp, err := Fingerprint(data)
	if err != nil {
		t.Fatal(err)
	}
	const want = "84ba33dce1f269bdb1556b56a5744d9ae9041f63bdc03c367c616bf434eaf5d1"
	if fp != want {
		t.Errorf("fingerprint of examples/seed001.json = %s, want %s", fp, want)
	}
	// The example's goods code was once the seed's 9-digit 103040501, now
	// written in full: the text as it was keeps the fingerprint pinned
	// before that change, so that a change of the data is not mistaken for
	// a change of the canonical form.
	before := bytes.Replace(data, []byte(`"1030405010000000000"`), []byte(`"103040501"`), 1)
	if bytes.Equal(before, data) {
		t.Fatal("examples/seed001.json no longer holds goods code 1030405010000000000")
	}
	fp, err = Fingerprint(before)
	if err != nil {
		t.Fatal(err)
	}
	const wantBefore = "f441ee122d038200bdfffc2e0fd2b6298ee9ae231eef649b2896076bebf87dda"
	if fp != wantBefore {
		t.Errorf("fingerprint of examples/seed001.json with the 9-digit goods code = %s, want %s", fp, wantBefore)
	}
}
