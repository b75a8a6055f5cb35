package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/spf13/cobra"
)

func newValidateCommand() *cobra.Command {
	var cfg schemas.ValidatorConfig
	cmd := &cobra.Command{
		Use:   "validate FILE... (- for standard input)",
		Short: "Check invoice requests against the contract without publishing them",
		Long: fmt.Sprintf(`validate checks each request with exactly the code the consumer uses: size and
JSON limits, the JSON Schema, and the providers' domain rules. A file holds one
JSON request or newline-delimited requests.

It prints one line per violation, FILE:RECORD: FIELD: MESSAGE (CODE), where CODE
is the provider code the check pre-empts, and warnings on standard error: the
first %d of a record, then a line counting the rest and all of them. A
pretty-printed request (its first line a lone "{") that is not JSON is
reported once, as FILE: line L, column C: and a file with no records is
invalid.
Exit status: 0 every record is valid, 1 some record is not, 2 usage error.`, maxPrintedWarnings),
		Example: `  publisher validate order.json
  cat orders.ndjson | publisher validate -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("validate needs at least one FILE (or - for standard input)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkMaxBytes(cfg.MaxBytes); err != nil {
				return err
			}
			v, err := schemas.NewValidator(cfg)
			if err != nil {
				return usageError("%v", err)
			}
			invalid, err := validateFiles(v, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if invalid > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&cfg.StrictTaxNumbers, "strict", false, "reject 18-character tax numbers whose check character is wrong (default: warn)")
	cmd.Flags().Var(intflag.NewInt(&cfg.MaxBytes, schemas.DefaultMaxBytes), "max-bytes", maxBytesFlagHelp)
	cmd.Flags().StringToStringVar(&cfg.Providers, "provider", nil, providerFlagHelp)
	return cmd
}

// validateFiles checks every record of every file and returns how many were
// invalid. An error means a file could not be read.
func validateFiles(v *schemas.Validator, files []string, out, warn io.Writer) (int, error) {
	invalid := 0
	for _, name := range files {
		recs, err := readRecords(name)
		if err != nil {
			return invalid, err
		}
		if len(recs) == 0 {
			// An empty file or pipe, most likely a producer that wrote
			// nothing: not a success.
			fmt.Fprintf(out, "%s: no records\n", displayName(name))
			invalid++
		}
		for _, rec := range recs {
			if _, ok := checkRecord(v, rec, out, warn); !ok {
				invalid++
			}
		}
	}
	return invalid, nil
}

// checkRecord prints a record's violations and warnings (the first
// maxPrintedWarnings, then how many more) and returns the decoded record
// (nil when it is not a readable JSON object) and whether it is valid.
func checkRecord(v *schemas.Validator, rec record, out, warn io.Writer) (*schemas.Decoded, bool) {
	d, err := v.Decode(rec.data, "")
	if err != nil {
		var me *schemas.MalformedError
		if !errors.As(err, &me) {
			fmt.Fprintf(out, "%s:%d: (message): %v\n", rec.file, rec.n, err)
			return nil, false
		}
		if rec.document && me.Offset >= 0 {
			line, col := rec.position(me.Offset)
			fmt.Fprintf(out, "%s: line %d, column %d: (message): malformed message: %s\n", rec.file, line, col, me.Reason)
			return nil, false
		}
		fmt.Fprintf(out, "%s:%d: (message): %s\n", rec.file, rec.n, me.Error())
		return nil, false
	}
	for i, w := range d.Warnings {
		if i == maxPrintedWarnings {
			// A line of its own, without "warning:", which publish's
			// onceWriter would take for a warning to print once.
			fmt.Fprintf(warn, "%s:%d: %d more warnings not shown (%d in all)\n", rec.file, rec.n, len(d.Warnings)-i, len(d.Warnings))
			break
		}
		fmt.Fprintf(warn, "%s:%d: warning: %s\n", rec.file, rec.n, w)
	}
	for _, vi := range d.Violations {
		fmt.Fprintf(out, "%s:%d: %s\n", rec.file, rec.n, vi)
	}
	return d, d.Valid()
}

// maxPrintedWarnings is the most warnings checkRecord prints for one
// record; a line then counts the rest and all of them. A request of 2,000
// lines may have a warning or more a line (computed_amount), which would
// bury its violations and the other records' findings; the first ones
// show what to correct.
const maxPrintedWarnings = 20

// maxBytesFlagHelp describes --max-bytes of validate and publish.
const maxBytesFlagHelp = "largest request accepted, a `number` of bytes more than 0 (the consumer's --max-request-bytes)"

// checkMaxBytes refuses a --max-bytes of 0 or less with a usage error
// naming the flag, as the consumer refuses its --max-request-bytes.
// schemas.ValidatorConfig takes 0 for its default, which the flag gives
// already: a 0 given here was meant as "no limit", which there is not, and
// is not quietly taken for 512 KiB; a negative one the validator refuses in
// words that name no flag.
func checkMaxBytes(n int) error {
	if n <= 0 {
		return usageError("--max-bytes %d: must be more than 0; there is no \"no limit\"; leave it unset for the default, %d", n, schemas.DefaultMaxBytes)
	}
	return nil
}

// providerFlagHelp describes --provider of validate and publish.
const providerFlagHelp = "SELLER=PROVIDER (repeatable, or comma-separated): check SELLER's requests by PROVIDER's rules (nuonuo or jumdata), as the consumer does with its seller config; sellers not listed are checked by Nuonuo's"
