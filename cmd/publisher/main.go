package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Exit codes shared by the subcommands.
const (
	exitOK      = 0
	exitFailed  = 1 // something was invalid or failed
	exitUsage   = 2 // bad flags or arguments
	exitTrouble = 3 // could not do the job at all (NATS unreachable, ...)
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	stop()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "publisher:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "publisher:", err)
	os.Exit(exitUsage)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "publisher",
		Short: "Publish and check invoice requests, follow results, replay dead letters",
		Long: `publisher works with the invoicing consumer over NATS.

Connection flags follow the NATS conventions: --server (or NATS_URL) and
--creds (or NATS_CREDS), or --context (or NATS_CONTEXT) for a nats CLI
context. As in the nats CLI, the server is --server's, else NATS_URL's,
else the context's, else nats://127.0.0.1:4222; --creds, --tls* and
--inbox-prefix apply over the context's settings too. --prefix (or
INVOICE_PREFIX) must match the consumer's. Subjects:
  <prefix>.request.<seller>           requests (stream INVOICE_REQUESTS)
  <prefix>.result.<status>.<seller>   results (stream INVOICE_RESULTS)
  <prefix>.dlq.<reason>.<seller>      dead letters (stream INVOICE_DLQ)
  <prefix>.status                     the consumer's status service

Exit codes: 0 success, 1 something invalid or failed, 2 usage error,
3 could not run (for example NATS unreachable).`,
		Example: `  go run ./cmd/consumer &          # NATS, sandbox and consumer in one process
  publisher validate order.json
  publisher publish --wait order.json
  publisher demo -n 20
  publisher tail --status rejected
  publisher status 339902999999789113 ORD-2026-000001
  publisher dlq list`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := &globals{}
	g.register(root.PersistentFlags())
	root.AddCommand(
		newValidateCommand(),
		newPublishCommand(g),
		newDemoCommand(g),
		newTailCommand(g),
		newStatusCommand(g),
		newDLQCommand(g),
		newBenchCommand(g),
	)
	return root
}

// usageError wraps a usage problem so that main exits with exitUsage.
func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}
