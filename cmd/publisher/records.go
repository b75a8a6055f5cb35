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
}

// maxFileRecordBytes bounds one line of a newline-delimited file.
const maxFileRecordBytes = 8 << 20

// readRecords reads the requests of a file ("-" is standard input). A file
// holds either one JSON value, possibly spread over many lines, or
// newline-delimited JSON: one request per non-empty line. Malformed lines are
// returned as records too, so that the validator reports them.
func readRecords(name string) ([]record, error) {
	var r io.Reader
	display := name
	if name == "-" {
		r, display = os.Stdin, "<stdin>"
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
	if trimmed := bytes.TrimSpace(data); json.Valid(trimmed) {
		return []record{{file: display, n: 1, data: trimmed}}, nil
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
