package scrub

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// URLs returns msg with each URL of the comma-separated list (spaces
// around an entry ignored) replaced by redact's form of it, both as given
// and as strconv.Quote writes it without its quotes. An entry that redact
// leaves unchanged is left alone. msg is read in one pass: where several
// entries match at one place the longest is replaced, and the text of a
// replacement is never replaced again.
func URLs(msg, list string, redact func(string) string) string {
	var pairs [][2]string
	add := func(old, new string) {
		if old != "" && old != new && !slices.ContainsFunc(pairs, func(p [2]string) bool { return p[0] == old }) {
			pairs = append(pairs, [2]string{old, new})
		}
	}
	for p := range strings.SplitSeq(list, ",") {
		p = strings.TrimSpace(p)
		r := redact(p)
		if r == p {
			continue
		}
		add(unquoted(p), unquoted(r))
		add(p, r)
	}
	if len(pairs) == 0 {
		return msg
	}
	// strings.Replacer tries its pairs in order at each place: the
	// longest first, so that a URL that begins another is not replaced
	// inside it.
	slices.SortStableFunc(pairs, func(a, b [2]string) int { return cmp.Compare(len(b[0]), len(a[0])) })
	args := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		args = append(args, p[0], p[1])
	}
	return strings.NewReplacer(args...).Replace(msg)
}

// unquoted is s as strconv.Quote writes it, without the quotes.
func unquoted(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
