package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/schemas"
)

// TestListWithin: a list that fits is returned as it is; one whose only
// excess is a long message is clipped and keeps the validator's entry
// counting the violations it left out; one over the budget ends with an
// entry counting the rest, the validator's included.
func TestListWithin(t *testing.T) {
	more := schemas.Violation{Rule: RuleMoreViolations, Message: "5 more not listed (8 in all)"}
	short := schemas.Violation{Field: "order.buyerName", Rule: "maxLength", Message: "too long", ProviderCode: "E1"}
	long := short
	long.Message = strings.Repeat("长", maxTextBytes) // 3 bytes a rune

	vs := []schemas.Violation{short, short, more}
	if got := listWithin(vs, 5, maxListedBytes, restOfViolations); len(got) != 3 || got[2] != more {
		t.Errorf("a list that fits: %+v", got)
	}

	vs = []schemas.Violation{short, long, more}
	got := listWithin(vs, 5, maxListedBytes, restOfViolations)
	if len(got) != 3 || len(got[1].Message) > maxTextBytes+len("… (9999 bytes cut)") || got[2] != more {
		t.Errorf("a long message: got %d entries, the last %+v; want its message clipped and the validator's count kept last", len(got), got[len(got)-1])
	}

	got = listWithin([]schemas.Violation{short, short, short, more}, 5, 2*(len(short.Field)+len(short.Rule)+len(short.Message)+len(short.ProviderCode)), restOfViolations)
	if len(got) != 3 || got[2].Rule != RuleMoreViolations || !strings.HasPrefix(got[2].Message, "6 more not listed (8 in all)") {
		t.Errorf("over the budget: %+v", got)
	}
}

// TestHeadersWithin: headers that fit are returned as they are; others are
// cut to the budget, the replay's headers kept first, and HeadersCutHeader
// says how many bytes were left out of how many, measured as the cut
// measures what it keeps: a header's name counts once for each of its
// values, as NATS writes it ("Name: value" a line). Before, the total
// counted a name once however many values it had while the cut counted it
// per value: a header of several values made the total too small, so that
// headers over the budget as the cut measures them were kept whole, and
// the bytes said left out, with those kept, came to more than the total.
func TestHeadersWithin(t *testing.T) {
	// size is the headers' size with each name counted once a value.
	size := func(h map[string][]string) int {
		n := 0
		for k, vs := range h {
			if k == HeadersCutHeader {
				continue
			}
			for _, v := range vs {
				n += len(k) + len(v)
			}
		}
		return n
	}
	ten := func(c string) string { return strings.Repeat(c, 10) }
	for _, tc := range []struct {
		name   string
		h      map[string][]string
		budget int
		cut    bool // whether the headers are cut
	}{
		{"one value each, within", map[string][]string{"A-One": {ten("a")}, "B-Two": {ten("b")}}, 30, false},
		{"one value each, over", map[string][]string{"A-One": {ten("a")}, "B-Two": {ten("b")}, "C-Three": {ten("c")}}, 40, true},
		// 5 values of 10 under a name of 7: 85 bytes with the name on
		// each value's line, 57 with it once.
		{"several values, over only with the name each time", map[string][]string{"X-Multi": {ten("1"), ten("2"), ten("3"), ten("4"), ten("5")}}, 60, true},
		{"several values and another header, over", map[string][]string{"X-Multi": {ten("1"), ten("2"), ten("3")}, "Z-Other": {ten("z") + ten("z")}}, 50, true},
		{"a replay's headers kept first", map[string][]string{"A-First": {ten("a"), ten("a")}, HeaderReplayOf: {"12"}, HeaderReplayPublished: {"2026-12-07T09:30:15Z"}}, 70, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := headersWithin(tc.h, tc.budget)
			cut := got[HeadersCutHeader]
			if !tc.cut {
				if cut != nil || size(got) != size(tc.h) {
					t.Fatalf("headers within the budget: %v; want them as they are", got)
				}
				return
			}
			if len(cut) != 1 {
				t.Fatalf("%s %q; want one value saying what was left out", HeadersCutHeader, cut)
			}
			var left, of int
			if _, err := fmt.Sscanf(cut[0], "%d bytes of headers left out of %d", &left, &of); err != nil {
				t.Fatalf("%s %q: %v", HeadersCutHeader, cut[0], err)
			}
			kept := size(got)
			if kept > tc.budget || of != size(tc.h) || left+kept != of || left <= 0 {
				t.Errorf("%s %q with %d bytes kept of a budget of %d; want at most the budget kept, of the %d bytes there were, and the rest said left out", HeadersCutHeader, cut[0], kept, tc.budget, size(tc.h))
			}
			for _, k := range keptHeaders {
				if vs, ok := tc.h[k]; ok && !slices.Equal(got[k], vs) {
					t.Errorf("%s: %q; want it kept, %q", k, got[k], vs)
				}
			}
		})
	}
}
