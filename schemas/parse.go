package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// parse applies the size, encoding, depth and syntax limits and returns the
// generic JSON tree: objects as map[string]any, arrays as []any, numbers as
// json.Number, the tree encoding/json's Decoder.UseNumber builds.
//
// The tree is read from jsontext's tokens (github.com/go-json-experiment/json,
// the engine of the coming encoding/json/v2), which scan a request about
// two and a half times as fast as encoding/json's decoder, and the depth
// limit is checked as the tree is built. The options keep encoding/json's
// answers: a repeated name keeps its last value, and an escaped lone
// surrogate (\ud800) reads as U+FFFD; invalid UTF-8 in the bytes themselves
// is refused before parsing.
func (v *Validator) parse(data []byte) (map[string]any, error) {
	switch {
	case len(data) == 0:
		return nil, &MalformedError{Reason: "empty message", Offset: -1}
	case len(data) > v.cfg.MaxBytes:
		return nil, &MalformedError{Reason: fmt.Sprintf("message is %d bytes; the limit is %d", len(data), v.cfg.MaxBytes), Offset: -1}
	}
	if !utf8.Valid(data) {
		return nil, &MalformedError{Reason: "not valid UTF-8", Offset: int64(invalidUTF8At(data))}
	}
	r := treeReaders.Get().(*treeReader)
	defer r.release()
	// A bytes.Buffer is read in place, without a copy.
	r.dec.Reset(bytes.NewBuffer(data), treeOptions...)
	r.maxDepth = v.cfg.MaxDepth
	tree, err := r.value(0)
	if err != nil {
		return nil, err
	}
	// What follows the value: only spaces, up to the end.
	rest := r.dec.UnreadBuffer()
	next := r.dec.InputOffset() + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
	if _, err := r.dec.ReadToken(); err == nil {
		return nil, &MalformedError{Reason: "more than one JSON value", Offset: next}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(err)
	}
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, &MalformedError{Reason: fmt.Sprintf("a request is a JSON object, not %s", jsonKind(tree)), Offset: -1}
	}
	return obj, nil
}

// treeOptions are parse's decoding options (see parse).
var treeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// treeReaders keeps the decoders parse reuses; a decoder is a few hundred
// bytes of state, and a request is parsed on every delivery.
var treeReaders = sync.Pool{New: func() any { return &treeReader{dec: jsontext.NewDecoder(noInput{})} }}

// treeReader builds a generic JSON tree from a jsontext.Decoder.
type treeReader struct {
	dec      *jsontext.Decoder
	maxDepth int
}

// release drops the reader's hold on the parsed bytes and pools it.
func (r *treeReader) release() {
	r.dec.Reset(noInput{})
	treeReaders.Put(r)
}

// noInput is the input of a pooled decoder: none.
type noInput struct{}

// Read implements io.Reader.
func (noInput) Read([]byte) (int, error) { return 0, io.EOF }

// value reads the next value; depth is the number of objects and arrays
// around it.
func (r *treeReader) value(depth int) (any, error) {
	switch r.dec.PeekKind() {
	case '{', '[':
		tok, err := r.dec.ReadToken()
		if err != nil {
			return nil, syntaxError(err)
		}
		if depth == r.maxDepth {
			// The bracket is the byte before the decoder's offset.
			return nil, &MalformedError{Reason: fmt.Sprintf("nested deeper than %d levels", r.maxDepth), Offset: r.dec.InputOffset() - 1}
		}
		if tok.Kind() == '{' {
			return r.object(depth + 1)
		}
		return r.array(depth + 1)
	case '0':
		raw, err := r.dec.ReadValue()
		if err != nil {
			return nil, syntaxError(err)
		}
		return json.Number(raw), nil
	}
	tok, err := r.dec.ReadToken()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 't', 'f':
		return tok.Bool(), nil
	case 'n':
		return nil, nil
	}
	// Not reached: the decoder reports a closing bracket where a value
	// belongs as a syntax error.
	return nil, &MalformedError{Reason: fmt.Sprintf("not JSON: %v where a value belongs", tok.Kind()), Offset: r.dec.InputOffset() - 1}
}

// object reads the members of an object whose '{' has been read.
func (r *treeReader) object(depth int) (any, error) {
	m := map[string]any{}
	for r.dec.PeekKind() != '}' {
		tok, err := r.dec.ReadToken()
		if err != nil {
			return nil, syntaxError(err)
		}
		name := tok.String() // before the value's tokens void tok
		val, err := r.value(depth)
		if err != nil {
			return nil, err
		}
		m[name] = val
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, syntaxError(err)
	}
	return m, nil
}

// array reads the elements of an array whose '[' has been read.
func (r *treeReader) array(depth int) (any, error) {
	a := []any{}
	for r.dec.PeekKind() != ']' {
		val, err := r.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, val)
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, syntaxError(err)
	}
	return a, nil
}

// syntaxError turns a decoding error into a *MalformedError.
func syntaxError(err error) error {
	var se *jsontext.SyntacticError
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		off := int64(-1)
		if errors.As(err, &se) {
			off = se.ByteOffset
		}
		return &MalformedError{Reason: "not JSON: truncated", Offset: off}
	case errors.As(err, &se):
		reason := "not JSON: " + se.Err.Error()
		if se.JSONPointer != "" {
			reason += fmt.Sprintf(" (in %s)", se.JSONPointer)
		}
		return &MalformedError{Reason: reason, Offset: se.ByteOffset}
	}
	return &MalformedError{Reason: "not JSON: " + err.Error(), Offset: -1}
}

// invalidUTF8At returns the offset of the first byte of b that is not valid
// UTF-8, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
