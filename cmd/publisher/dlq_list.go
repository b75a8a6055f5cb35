package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

func newDLQListCommand(g *globals) *cobra.Command {
	var (
		reason, seller string
		since          time.Duration
		asJSON         bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters",
		Long: `list prints the dead letters in the stream, oldest first, and stops at the
end of the stream (it does not follow): sequence, when it was dead-lettered,
reason, seller, order, deliveries, the error code and message (cut to fit),
and when it was replayed ("-" if never; "truncated" if it cannot be).

--json prints one JSON object per dead letter instead:
{"seq", "storedAt", "subject", "replay": {...} (when replayed), "deadLetter": {...}}.`,
		Example: `  publisher dlq list
  publisher dlq list --reason exhausted --since 24h
  publisher dlq list --seller 91330106MA2AYNWD8M --json | jq .seq`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkReason(reason); err != nil {
				return err
			}
			if err := checkSellerFilter(cmd.Flags()); err != nil {
				return err
			}
			if since < 0 {
				return usageError("--since must not be negative")
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.Close()
			ctx := cmd.Context()
			stream, err := s.dlqStream(ctx)
			if err != nil {
				return err
			}
			kv, err := s.replayBook(ctx, stream, false)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var rows [][]string
			n := 0
			err = s.scanDeadLetters(ctx, stream, dlqFilters(s.subjects, reason, seller), orderedFrom{all: since == 0, since: since}, func(e deadEntry) error {
				n++
				mark, err := s.getMark(ctx, kv, e.Seq, e.Stored)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONLine(out, e.toJSON(mark))
				}
				rows = append(rows, listRow(e, mark))
				return nil
			})
			if err != nil {
				return err
			}
			if !asJSON {
				printDLQTable(cmd, rows)
				fmt.Fprintf(cmd.ErrOrStderr(), "%d dead letter(s) (%s on %s)\n", n, stream.CachedInfo().Config.Name, s.where())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "only this reason: malformed, exhausted or action_required")
	f.StringVar(&seller, "seller", "", "only this seller's dead letters")
	f.DurationVar(&since, "since", 0, "only dead letters of the last DURATION, e.g. 24h")
	f.BoolVar(&asJSON, "json", false, "one JSON object per dead letter")
	return cmd
}

var dlqHeader = []string{"SEQ", "DEAD AT", "REASON", "SELLER", "ORDER", "DELIV", "REPLAYED", "ERROR"}

// listRow is the table row of a dead letter.
func listRow(e deadEntry, mark *replayMark) []string {
	replayed := "-"
	if mark != nil {
		replayed = fmtTime(mark.ReplayedAt)
	}
	dl := e.DL
	if dl == nil {
		return []string{strconv.FormatUint(e.Seq, 10), fmtTime(e.Stored), "?", "?", "?", "?", replayed, "not a dead letter: " + e.DecodeErr.Error()}
	}
	if mark == nil && dl.PayloadTruncated {
		replayed = "truncated"
	}
	errText := string(dl.Error.Code)
	if dl.Error.ProviderCode != "" {
		errText += " " + dl.Error.ProviderCode
	}
	switch msg := dl.Error.Message; {
	case msg == "":
	case strings.HasPrefix(msg, string(dl.Error.Code)) && dl.Error.ProviderCode == "":
		errText = msg // "malformed message: ..." says its code already
	default:
		errText += ": " + msg
	}
	return []string{
		strconv.FormatUint(e.Seq, 10), fmtTime(e.Stored), string(dl.Reason), orEmpty(dl.SellerTaxNum),
		cut(orEmpty(dl.OrderNo), 20), strconv.Itoa(dl.Deliveries), replayed, errText,
	}
}

// printDLQTable prints rows under dlqHeader, cutting the last column (the
// error) to the terminal's width, or to 80 characters when not a terminal.
func printDLQTable(cmd *cobra.Command, rows [][]string) {
	out := cmd.OutOrStdout()
	widths := make([]int, len(dlqHeader))
	for _, r := range append([][]string{dlqHeader}, rows...) {
		for i, c := range r[:len(r)-1] {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	used := 0
	for _, w := range widths[:len(widths)-1] {
		used += w + 2
	}
	room := 80
	if tw := terminalWidth(out); tw > 0 {
		room = max(tw-used-1, 20)
	}
	t := newTable(out)
	for _, r := range append([][]string{dlqHeader}, rows...) {
		for i, c := range r {
			if i == len(r)-1 {
				fmt.Fprintf(t, "%s\n", cut(c, room))
			} else {
				fmt.Fprintf(t, "%s\t", cut(c, 200))
			}
		}
	}
	_ = t.Flush()
}
