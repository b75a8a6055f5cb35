package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/spf13/cobra"
)

func newStatusCommand(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status SELLER ORDERNO",
		Short: "Ask the consumer where an order stands",
		Long: fmt.Sprintf(`status asks the consumer's status service (<prefix>.status, a NATS micro
service: see "nats micro info invoice-status") for one order and prints its
state, attempts, the provider's references, the invoices, the last error
and the first %d warnings, then a line counting the rest (--json prints
them all). With partitions, the consumer instance that owns the seller
answers.

Exit status: 0 the order is known, 1 the consumer has no record of it,
2 usage error, 3 NATS unreachable or no consumer answered within --timeout.`, maxPrintedWarnings),
		Example: `  publisher status 339902999999789113 ORD-2026-000001
  publisher status --json 91330106MA2AYNWD8M ORD-7 | jq .order.state`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError("status needs SELLER and ORDERNO, got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			seller, orderNo := schemas.NormalizeTaxNumber(args[0]), args[1]
			if seller == "" || orderNo == "" {
				return usageError("SELLER and ORDERNO must not be empty")
			}
			if !schemas.ValidOrderNo(orderNo) {
				return usageError("ORDERNO %q is not an order number a request may carry: 1 to 20 printable ASCII characters without spaces", orderNo)
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.Close()
			ctx, cancel := s.ctx(cmd.Context())
			defer cancel()
			reply, err := pipeline.RequestStatus(ctx, s.nc, s.subjects, pipeline.StatusRequest{Seller: seller, OrderNo: orderNo})
			if errors.Is(err, pipeline.ErrStatusTimeout) {
				if rerr := s.refused("status"); rerr != nil {
					return rerr
				}
				return &exitError{code: exitTrouble, err: fmt.Errorf("%s within %s on %s", err, g.timeout, s.subjects.Status())}
			}
			if se := (*pipeline.StatusError)(nil); errors.As(err, &se) && se.Code == "400" {
				return &exitError{code: exitUsage, err: err} // the question, not the service
			}
			if err != nil {
				return &exitError{code: exitTrouble, err: err}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSONLine(out, reply); err != nil {
					return err
				}
			} else if reply.Found && reply.Order != nil {
				printOrder(out, reply)
			}
			if !reply.Found {
				return &exitError{code: exitFailed, err: fmt.Errorf("order %s:%s is unknown to the consumer (never received, still waiting in the request stream, or rejected before it was stored: see publisher tail --all --seller %s)", seller, orderNo, seller)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status reply as JSON")
	return cmd
}

// printOrder prints an order record readably.
func printOrder(w io.Writer, reply *pipeline.StatusReply) {
	o := reply.Order
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("order", o.Seller+":"+o.OrderNo)
	state := string(o.State)
	switch {
	case o.State.Finished():
		state += " (final)"
	case o.State == schemas.StateFailed:
		state += " (gave up; replay its dead letter to resume: publisher dlq list --seller " + o.Seller + ")"
	case o.State == schemas.StateActionRequired:
		state += " (a person must act; retried until then)"
	default:
		state += " (in progress)"
	}
	row("state", state)
	row("kind", orEmpty(string(o.Kind)))
	row("provider", orEmpty(o.Provider))
	row("attempts", fmt.Sprintf("%d provider call(s), %d submission(s)", o.Attempts, o.Submissions))
	row("received", fmtTime(o.ReceivedAt))
	row("submitted", fmtTime(o.SubmittedAt))
	row("completed", fmtTime(o.CompletedAt))
	row("updated", fmtTime(o.UpdatedAt))
	var refs []string
	for _, r := range []struct{ k, v string }{{"serialNo", o.Refs.SerialNo}, {"taskId", o.Refs.TaskID}, {"billId", o.Refs.BillID}, {"billNo", o.Refs.BillNo}} {
		if r.v != "" {
			refs = append(refs, r.k+"="+r.v)
		}
	}
	row("provider refs", orEmpty(strings.Join(refs, " ")))
	if rc := o.RedConfirm; rc != nil {
		row("red confirmation", fmt.Sprintf("billNo=%s billId=%s status=%s %s", orEmpty(rc.BillNo), orEmpty(rc.BillID), orEmpty(rc.BillStatus), rc.Message))
	}
	if total, ok := sumTotals(o.Invoices); ok && len(o.Invoices) > 0 {
		row("invoices", fmt.Sprintf("%d, total %s", len(o.Invoices), total.StringFixed(2)))
	} else {
		row("invoices", fmt.Sprint(len(o.Invoices)))
	}
	for i, inv := range o.Invoices {
		num := inv.Number()
		if inv.DigitalInvoiceNo != "" && inv.InvoiceCode != "" && inv.InvoiceNo != "" {
			num += " (" + inv.InvoiceCode + "/" + inv.InvoiceNo + ")"
		}
		line := fmt.Sprintf("%s issued %s total %s", num, fmtTime(inv.IssuedAt), orEmpty(inv.TotalAmount.String()))
		if inv.ExTaxAmount.IsSet() || inv.TaxAmount.IsSet() {
			line += fmt.Sprintf(" (ex tax %s, tax %s)", orEmpty(inv.ExTaxAmount.String()), orEmpty(inv.TaxAmount.String()))
		}
		if inv.PdfURL != "" {
			line += " " + inv.PdfURL
		}
		row(fmt.Sprintf("  %d.", i+1), line)
	}
	if len(o.Documents) > 0 {
		row("documents", strings.Join(o.Documents, " "))
	}
	if e := o.LastError; e != nil {
		row("last error", errorText(e))
		for _, v := range e.Violations {
			row("", "- "+v.String())
		}
	}
	printWarnings(o.Warnings, row)
	_ = tw.Flush()
}

// printWarnings prints a record's warnings as checkRecord prints a
// request's: the first maxPrintedWarnings, then one line counting the rest.
// The record keeps up to 24 KiB of them (a request of 2,000 lines may have
// a warning or more a line), which printed whole buried the order's state;
// a list the consumer cut short ends with an entry counting what it left
// out (RuleMoreViolations), whose message the last line passes on rather
// than print it as a warning of its own.
func printWarnings(ws []schemas.Violation, row func(k, v string)) {
	var more *schemas.Violation
	if n := len(ws); n > 0 && ws[n-1].Rule == pipeline.RuleMoreViolations {
		more, ws = &ws[n-1], ws[:n-1]
	}
	for i, v := range ws {
		if i == maxPrintedWarnings {
			line := fmt.Sprintf("%d more warnings not shown (%d in all)", len(ws)-i, len(ws))
			if more != nil {
				line = fmt.Sprintf("%d more warnings not shown (%d listed in the record; it says: %s)", len(ws)-i, len(ws), more.Message)
			}
			row("", line)
			return
		}
		row("warning", v.String())
	}
	if more != nil {
		row("", more.Message)
	}
}
