package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newDLQShowCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter in full",
		Long: `show prints one dead letter (by its sequence in the dead-letter stream, as
dlq list shows it): where the request came from and when, the error, the
original request's headers, whether it was replayed, and the payload: indented
when it is JSON, otherwise as a quoted Go string with escapes, with its size
and whether it was truncated (a truncated payload cannot be replayed).

Exit status: 0 shown, 1 no such dead letter, or a message there that is not
a readable dead letter (shown all the same, with --json too), 2 usage error,
3 NATS unreachable.`,
		Example: `  publisher dlq show 42
  publisher dlq show 42 --json | jq -r .deadLetter.payload | base64 -d`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("dlq show needs one SEQ (from publisher dlq list)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return usageError("SEQ %q: want a stream sequence number such as 42", args[0])
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
			e, err := s.getDeadLetter(ctx, stream, seq)
			if err != nil {
				return err
			}
			kv, err := s.replayBook(ctx, stream, false)
			if err != nil {
				return err
			}
			mark, err := s.getMark(ctx, kv, seq, e.Stored)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSONLine(out, e.toJSON(mark)); err != nil {
					return err
				}
			} else {
				showDeadLetter(out, stream.CachedInfo().Config.Name, e, mark, s.subjects.SellerOf)
			}
			if e.DL == nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("message #%d is not a dead letter: %v", seq, e.DecodeErr)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print it as JSON (the form dlq list --json uses)")
	return cmd
}

// showDeadLetter prints a dead letter in full.
func showDeadLetter(w io.Writer, streamName string, e deadEntry, mark *replayMark, sellerOf func(string) string) {
	fmt.Fprintf(w, "Dead letter %s #%d on %s, stored %s\n", streamName, e.Seq, e.Subject, fmtTime(e.Stored))
	dl := e.DL
	if dl == nil {
		fmt.Fprintf(w, "\nNot a readable dead letter: %v\n\nMessage (%d bytes):\n  %s\n", e.DecodeErr, len(e.Data), strconv.Quote(string(e.Data)))
		return
	}
	t := newTable(w)
	row := func(k, v string) { fmt.Fprintf(t, "  %s\t%s\n", k, v) }
	row("reason", string(dl.Reason))
	row("seller", orEmpty(dl.SellerTaxNum))
	row("order", orEmpty(dl.OrderNo))
	row("deliveries", strconv.Itoa(dl.Deliveries))
	row("original", fmt.Sprintf("%s #%d on %s", orEmpty(dl.OriginalStream), dl.OriginalSeq, orEmpty(dl.OriginalSubject)))
	row("published", fmtTime(dl.PublishedAt))
	row("first seen", fmtTime(dl.FirstSeen))
	row("dead at", fmtTime(dl.DeadAt))
	switch {
	case mark != nil:
		row("replayed", mark.String())
	case dl.PayloadTruncated:
		row("replayed", "no; not replayable: the payload is truncated")
	case sellerOf(dl.OriginalSubject) == "":
		row("replayed", "no; not replayable: the original subject is not a request subject under this --prefix")
	default:
		row("replayed", fmt.Sprintf("no (publisher dlq replay --seq %d)", e.Seq))
	}
	_ = t.Flush()

	fmt.Fprintln(w, "\nError")
	t = newTable(w)
	row("code", string(dl.Error.Code))
	if dl.Error.ProviderCode != "" {
		row("provider code", dl.Error.ProviderCode)
	}
	if dl.Error.Field != "" {
		row("field", dl.Error.Field)
	}
	row("message", dl.Error.Message)
	for _, v := range dl.Error.Violations {
		row("violation", v.String())
	}
	_ = t.Flush()

	printHeaders(w, "Original headers", dl.Headers)
	printHeaders(w, "Dead-letter headers", e.Header)

	state := "complete"
	if dl.PayloadTruncated {
		state = fmt.Sprintf("TRUNCATED: %d of %d bytes kept", len(dl.Payload), dl.PayloadSize)
	}
	fmt.Fprintf(w, "\nPayload (%d bytes, %s, sha256 %s)\n", dl.PayloadSize, state, orEmpty(dl.PayloadSHA256))
	fmt.Fprintln(w, payloadText(dl.Payload))
}

// payloadText is a payload for people: indented JSON when it is JSON,
// otherwise a quoted string with escapes (control characters, invalid
// UTF-8).
func payloadText(p []byte) string {
	if len(bytes.TrimSpace(p)) > 0 && json.Valid(p) {
		var buf bytes.Buffer
		if json.Indent(&buf, p, "  ", "  ") == nil {
			return "  " + buf.String()
		}
	}
	return "  " + strconv.Quote(string(p))
}

func printHeaders(w io.Writer, title string, h map[string][]string) {
	fmt.Fprintf(w, "\n%s\n", title)
	if len(h) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(h[k], ", "))
	}
}
