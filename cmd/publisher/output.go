package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/schollz/progressbar/v3"
	"github.com/shopspring/decimal"
	"golang.org/x/term"
)

// timeLayout is how times are shown to people: local time to the second.
const timeLayout = "2006-01-02 15:04:05"

// fmtTime formats t for people; "-" for the zero time.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

// cut shortens s to at most n runes, marking the cut with "…", and puts
// control characters (newlines of a provider message) on one line.
func cut(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// orEmpty returns s, or "-" when it is empty (a table cell).
func orEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newTable returns a tabwriter for aligned columns; Flush it.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// terminalWidth is the width of w when it is a terminal, else 0.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// manyRecords is the number of messages from which a progress bar is shown
// (when standard error is a terminal).
const manyRecords = 50

// progress reports the progress of a long run; the zero value (nil bar)
// shows nothing.
type progress struct {
	bar *progressbar.ProgressBar
}

// newProgress returns a progress bar on w for n steps when w is a terminal
// and n is at least manyRecords; otherwise a progress that shows nothing.
func newProgress(w io.Writer, n int, what string) *progress {
	if n < manyRecords || !isTerminal(w) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(false),
	)}
}

// active reports whether a bar is shown.
func (p *progress) active() bool { return p.bar != nil }

// step advances the bar by one.
func (p *progress) step() {
	if p.bar != nil {
		_ = p.bar.Add(1)
	}
}

// clear removes the bar from the screen before a line is printed.
func (p *progress) clear() {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
}

// finish removes the bar for good.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// sumTotals adds up the invoices' totals (tax included); ok is false when
// some invoice has no usable total.
func sumTotals(invs []schemas.Invoice) (decimal.Decimal, bool) {
	var sum decimal.Decimal
	for _, inv := range invs {
		if !inv.TotalAmount.Valid() {
			return sum, false
		}
		sum = sum.Add(inv.TotalAmount.Decimal())
	}
	return sum, true
}

// outcomeText describes what a result says: the invoices and their total
// when issued, else the error code, field and message.
func outcomeText(res *schemas.Result) string {
	var parts []string
	if len(res.Invoices) > 0 {
		nums := make([]string, len(res.Invoices))
		for i, inv := range res.Invoices {
			nums[i] = inv.Number()
		}
		s := strings.Join(nums, ",")
		if total, ok := sumTotals(res.Invoices); ok {
			s += " total " + total.StringFixed(2)
		}
		parts = append(parts, s)
	}
	if rc := res.RedConfirm; rc != nil {
		s := "form"
		if rc.BillNo != "" {
			s += " " + rc.BillNo
		}
		if rc.BillStatus != "" {
			s += " status " + rc.BillStatus
		}
		if rc.Message != "" {
			s += " (" + rc.Message + ")"
		}
		parts = append(parts, s)
	}
	if e := res.Error; e != nil {
		parts = append(parts, errorText(e))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// errorText is "code [field] message (provider code)".
func errorText(e *schemas.ErrorInfo) string {
	s := string(e.Code)
	if e.Field != "" {
		s += " [" + e.Field + "]"
	}
	if e.Message != "" {
		s += " " + e.Message
	}
	if e.ProviderCode != "" && !strings.Contains(e.Message, e.ProviderCode) {
		s += " (" + e.ProviderCode + ")"
	}
	return s
}

// resultLine is the one readable line of a result event: time, status,
// seller:orderNo, kind, then the invoices or the error.
func resultLine(res *schemas.Result, stored time.Time) string {
	at := res.CompletedAt
	if at.IsZero() {
		at = stored
	}
	kind := string(res.Kind)
	if kind == "" {
		kind = "-"
	}
	return fmt.Sprintf("%s  %-15s  %s:%s  %-11s  %s", fmtTime(at), res.Status, orEmpty(res.SellerTaxNum), orEmpty(res.OrderNo), kind, cut(outcomeText(res), 400))
}

// countLine formats counts by name in the order of names, then any other
// names alphabetically: "issued 3, rejected 1".
func countLine[K ~string](counts map[K]int, names []K) string {
	var parts []string
	seen := map[K]bool{}
	for _, n := range names {
		seen[n] = true
		if counts[n] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", n, counts[n]))
		}
	}
	var others []string
	for n, c := range counts {
		if !seen[n] && c > 0 {
			others = append(others, fmt.Sprintf("%s %d", n, c))
		}
	}
	sort.Strings(others)
	parts = append(parts, others...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
