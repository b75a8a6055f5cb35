package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sync"
	"unicode/utf8"
)

// Fingerprint returns the canonical fingerprint of a JSON request: the hex
// SHA-256 of its canonical form, in which object keys are sorted, whitespace
// is dropped, strings are re-encoded uniformly and numbers keep their literal
// text. Two messages that differ only in key order or whitespace have the
// same fingerprint; any change of a value changes it.
//
// The order store compares fingerprints to tell a repeated request (same
// fingerprint: answer with the stored result) from a different request
// reusing an order number (conflict).
func Fingerprint(data []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return "", err
	}
	return fingerprintTree(tree), nil
}

// canonicalBuffers holds the buffers fingerprintTree writes canonical forms
// into: a typical request's grows to a few KiB, and a buffer kept for the
// next request saves its regrowth (a tenth of what decoding allocated).
var canonicalBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledCanonical is the largest buffer kept for reuse: the rare large
// request's is left to the collector rather than held.
const maxPooledCanonical = 64 << 10

func fingerprintTree(tree any) string {
	buf := canonicalBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	writeCanonical(buf, tree)
	sum := sha256.Sum256(buf.Bytes())
	if buf.Cap() <= maxPooledCanonical {
		canonicalBuffers.Put(buf)
	}
	return hex.EncodeToString(sum[:])
}

func writeCanonical(buf *bytes.Buffer, v any) {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeCanonical(buf, t[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeCanonical(buf, e)
		}
		buf.WriteByte(']')
	case string:
		writeString(buf, t)
	case json.Number:
		buf.WriteString(t.String())
	case bool:
		if t {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	default:
		buf.WriteString("null")
	}
}

// writeString writes s as encoding/json writes it without HTML escaping.
// Most strings need no escape at all and are copied as they are; the rest go
// through encoding/json, so that the canonical form (and every fingerprint
// already stored) stays byte for byte the same.
func writeString(buf *bytes.Buffer, s string) {
	if plainString(s) {
		buf.WriteByte('"')
		buf.WriteString(s)
		buf.WriteByte('"')
		return
	}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

// plainString reports whether encoding/json (HTML escaping off) writes s
// unchanged between its quotes: valid UTF-8 with no quote, backslash,
// control character, U+2028 or U+2029.
func plainString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\':
			return false
		case c == 0xE2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			return false // U+2028, U+2029
		case c >= 0x80:
			ascii = false
		}
	}
	return ascii || utf8.ValidString(s)
}
