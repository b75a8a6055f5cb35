package schemas

import (
	"strings"
	"unicode"
)

// DefaultPrefix is the first token of every subject this service uses.
const DefaultPrefix = "invoice"

// Subjects builds the subjects of the contract under a prefix:
//
//	<prefix>.request.<sellerTaxNum>           requests, published by order systems
//	<prefix>.result.<status>.<sellerTaxNum>   result events
//	<prefix>.dlq.<reason>.<sellerTaxNum>      dead letters
//
// The zero value uses DefaultPrefix.
type Subjects struct {
	// Prefix replaces "invoice"; it may contain dots ("acme.invoice").
	Prefix string
}

func (s Subjects) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Request returns the request subject for a seller.
func (s Subjects) Request(seller string) string { return s.prefix() + ".request." + seller }

// RequestFilter matches every request subject.
func (s Subjects) RequestFilter() string { return s.prefix() + ".request.*" }

// Result returns the result subject for a status and seller.
func (s Subjects) Result(status Status, seller string) string {
	return s.prefix() + ".result." + string(status) + "." + seller
}

// ResultFilter matches every result subject.
func (s Subjects) ResultFilter() string { return s.prefix() + ".result.>" }

// DeadLetter returns the dead-letter subject for a reason and seller.
func (s Subjects) DeadLetter(reason DeadLetterReason, seller string) string {
	return s.prefix() + ".dlq." + string(reason) + "." + seller
}

// DeadLetterFilter matches every dead-letter subject.
func (s Subjects) DeadLetterFilter() string { return s.prefix() + ".dlq.>" }

// SellerOf returns the seller token of a request subject, or "" when subject
// is not a request subject under this prefix. Partition tokens that a stream
// subject transform appends (<prefix>.request.<seller>.<partition>) are
// ignored.
func (s Subjects) SellerOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, s.prefix()+".request.")
	if !ok || rest == "" {
		return ""
	}
	seller, _, _ := strings.Cut(rest, ".")
	return seller
}

// SubjectToken makes s safe as a single subject token: "_" when empty,
// with dots, spaces, wildcards and control characters replaced by "_".
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}

// Status is the subject of the status service (request/reply).
func (s Subjects) Status() string { return s.prefix() + ".status" }

// ValidSubjectPrefix reports whether p can start subjects: one or more
// tokens separated by dots, none empty, without wildcards, spaces or
// control characters. It checks a --prefix or an inbox prefix.
func ValidSubjectPrefix(p string) bool {
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool {
			return r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r)
		}) {
			return false
		}
	}
	return true
}
