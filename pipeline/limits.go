package pipeline

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/fapiaohub/invoicer/schemas"
)

// Limits on what the pipeline copies from a request into the events it
// publishes, so that a result or a dead letter always fits the server's
// payload limit (1 MiB by default) whatever the request holds. JSON may
// escape a byte of text into six (<, > and & become \u003c...), and the
// budgets below allow for it.
const (
	// maxListedBytes bounds the violations, and separately the warnings,
	// listed in one result (as raw text; up to six times that once
	// escaped, in the worst case).
	maxListedBytes = 24 << 10
	// maxTextBytes bounds one message copied from a request's content.
	maxTextBytes = 1 << 10
	// maxProviderTextBytes bounds a provider's message copied into a
	// result, a record or a dead letter.
	maxProviderTextBytes = 4 << 10
	// maxLoggedErrorBytes bounds the error of a processed message's log
	// line, a panic's stack included.
	maxLoggedErrorBytes = 64 << 10
	// maxHeaderBytes bounds the headers copied into a dead letter.
	maxHeaderBytes = 16 << 10
	// HeadersCutHeader is added to a dead letter's headers when some of the
	// original message's headers were left out; its value says how many
	// bytes of headers were dropped.
	HeadersCutHeader = "Invoicer-Headers-Cut"
)

// RuleMoreViolations is the rule of the last entry of a list cut short: its
// message says how many entries were left out. It is the validator's, which
// ends a list of more than schemas.MaxViolations violations the same way.
const RuleMoreViolations = schemas.RuleMoreViolations

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes cut)", len(s)-cut)
}

// The ends of the entry that counts what a list left out: a rejected
// request's violations are corrected and the request sent again, when the
// validator finds the rest; a request's warnings did not stop it (its
// result may be issued: a copy sent again gets the stored result).
const (
	restOfViolations = ": correct these and send the request again to see the rest"
	restOfWarnings   = "; warnings do not stop a request"
)

// listWithin returns the violations that fit budget bytes of text, each
// message clipped, followed by one entry saying how many were left out and
// then rest (restOfViolations or restOfWarnings). It returns vs itself when
// all of it fits unclipped. notListed is the number the validator has
// already left out (Decoded.NotListed), counted by the last entry of vs: if
// the rest do not fit either, that entry gives way to one counting both.
func listWithin(vs []schemas.Violation, notListed, budget int, rest string) []schemas.Violation {
	listed := vs
	if notListed > 0 && len(vs) > 0 && vs[len(vs)-1].Rule == RuleMoreViolations {
		listed = vs[:len(vs)-1]
	}
	size, fits := 0, true
	for _, v := range listed {
		size += len(v.Field) + len(v.Rule) + len(v.Message) + len(v.ProviderCode)
		if size > budget || len(v.Message) > maxTextBytes {
			fits = false
			break
		}
	}
	if fits {
		return vs
	}
	out := make([]schemas.Violation, 0, 16)
	size = 0
	for i, v := range listed {
		v.Field, v.Message = clip(v.Field, maxTextBytes), clip(v.Message, maxTextBytes)
		size += len(v.Field) + len(v.Rule) + len(v.Message) + len(v.ProviderCode)
		if size > budget {
			all := len(listed) + notListed
			return append(out, schemas.Violation{Rule: RuleMoreViolations,
				Message: fmt.Sprintf("%d more not listed (%d in all)%s", all-i, all, rest)})
		}
		out = append(out, v)
	}
	if len(listed) < len(vs) {
		// Every listed one fits once clipped: the validator's count of
		// the rest still belongs at the end.
		out = append(out, vs[len(vs)-1])
	}
	return out
}

// keptHeaders are the headers a dead letter keeps before any other when the
// headers do not all fit (headersWithin): those of a replayed request,
// which the replay of its dead letter needs (ReplayPublished,
// ReplayPosition). Without the mark, the dead letter of a replay reads as
// the dead letter of a request, and its replay would say that the request
// was published when the first replay was, later than it was.
var keptHeaders = []string{HeaderReplayOf, HeaderReplayPublished, HeaderReplayPosition}

// headersWithin returns the headers that fit budget bytes, with
// HeadersCutHeader saying what was left out: keptHeaders first, then the
// others in the order of their names. A header's name counts once for each
// of its values, as NATS writes a header ("Name: value" a line), in the
// total as in what is kept: counted once in the total and per value in the
// cut, a header of several values was kept whole over the budget, or the
// bytes said left out and those kept came to more than the total said.
func headersWithin(h map[string][]string, budget int) map[string][]string {
	size := 0
	for k, vs := range h {
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if size <= budget {
		return h
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		if !slices.Contains(keptHeaders, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	keys = append(slices.Clone(keptHeaders), keys...)
	out := make(map[string][]string, len(h))
	used := 0
	for _, k := range keys {
		for _, v := range h[k] {
			if used+len(k)+len(v) > budget {
				continue
			}
			used += len(k) + len(v)
			out[k] = append(out[k], v)
		}
	}
	out[HeadersCutHeader] = []string{fmt.Sprintf("%d bytes of headers left out of %d", size-used, size)}
	return out
}
