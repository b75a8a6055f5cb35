package schemas

import (
	"encoding/json"
	"testing"
)

var quotedLiterals = []string{
	`""`, `"5.65"`, `"-0.65"`, `" 1.00"`, `"1,00"`, `"NaN"`, `"~"`, `"\u0035.65"`, `"5\.65"`, `"a\"b"`,
	"\"tab\there\"", "\"\x7f\"", `"é"`, "\"\xff\"", `"`, `"5.65`, `5.65"`, `"a"b"`, `''`, ``,
}

// TestPlainQuotedMatchesEncodingJSON checks plainQuoted against
// encoding/json: whenever it takes a literal, encoding/json decodes that
// literal to the same string.
func TestPlainQuotedMatchesEncodingJSON(t *testing.T) {
	taken := 0
	for _, lit := range quotedLiterals {
		if checkPlainQuoted(t, []byte(lit)) {
			taken++
		}
	}
	// The plain ones: "", "5.65", "-0.65", " 1.00", "1,00", "NaN", "~",
	// DEL and "é".
	if taken != 9 {
		t.Errorf("plainQuoted took %d of the literals, want 9 (the plain ones)", taken)
	}
}

func FuzzPlainQuoted(f *testing.F) {
	for _, lit := range quotedLiterals {
		f.Add([]byte(lit))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkPlainQuoted(t, b) })
}

// checkPlainQuoted reports whether plainQuoted took b, failing t when what
// it returned differs from encoding/json's reading of b.
func checkPlainQuoted(t *testing.T, b []byte) bool {
	t.Helper()
	s, ok := plainQuoted(b)
	if !ok {
		return false
	}
	var want string
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("plainQuoted took %q, which encoding/json rejects: %v", b, err)
	}
	if s != want {
		t.Fatalf("plainQuoted(%q) = %q, encoding/json reads %q", b, s, want)
	}
	return true
}
