package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// record is one request read from a file: its place and its bytes.
type record struct {
	file string
	n    int // 1-based
	data []byte
	// document is set for a file read as one JSON value over several
	// lines: a syntax error's place is then told by line and column.
	document bool
}

// position returns the 1-based line and column of byte offset in r's data.
func (r record) position(offset int64) (line, col int) {
	before := r.data[:min(max(offset, 0), int64(len(r.data)))]
	line = bytes.Count(before, []byte("\n")) + 1
	return line, len(before) - bytes.LastIndexByte(before, '\n')
}

// maxFileRecordBytes bounds one line of a newline-delimited file.
const maxFileRecordBytes = 8 << 20

// readRecords reads the requests of a file ("-" is standard input). A file
// holds either one JSON value, possibly spread over many lines, or
// newline-delimited JSON: one request per non-empty line. Malformed lines are
// returned as records too, so that the validator reports them.
func readRecords(name string) ([]record, error) {
	var r io.Reader
	display := displayName(name)
	if name == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", display, err)
	}
	trimmed := bytes.TrimSpace(data)
	if json.Valid(trimmed) {
		return []record{{file: display, n: 1, data: trimmed}}, nil
	}
	// Not one JSON value. If its first line opens an object or array and
	// holds nothing else, as a pretty-printer writes it, it is one value
	// spread over lines with a mistake in it: read line by line, every
	// line would be reported malformed, and none of those reports would be
	// the mistake. A newline-delimited file whose first record is broken
	// is still read line by line, so that its other records go through.
	// A UTF-8 byte order mark before the first line (some Windows editors
	// write one) does not make it another line: the value is still
	// reported once, the mark being its mistake, as the consumer reads a
	// message that begins with one as malformed.
	first, _, _ := bytes.Cut(bytes.TrimPrefix(trimmed, []byte("\ufeff")), []byte("\n"))
	if first := string(bytes.TrimSpace(first)); first == "{" || first == "[" {
		return []record{{file: display, n: 1, data: trimmed, document: true}}, nil
	}
	var out []record
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxFileRecordBytes)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		out = append(out, record{file: display, n: len(out) + 1, data: bytes.Clone(line)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", display, err)
	}
	return out, nil
}

// displayName names a file argument in messages ("-" is standard input).
func displayName(name string) string {
	if name == "-" {
		return "<stdin>"
	}
	return name
}
