package pipeline

import (
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
