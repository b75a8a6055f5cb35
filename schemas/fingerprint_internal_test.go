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
	const want = "f441ee122d038200bdfffc2e0fd2b6298ee9ae231eef649b2896076bebf87dda"
	if fp != want {
		t.Errorf("fingerprint of examples/seed001.json = %s, want %s", fp, want)
	}
}
