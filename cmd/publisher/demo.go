package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

type demoOptions struct {
	n       int
	seed    uint64
	run     string
	date    string
	out     string
	timeout time.Duration
}

var runTag = regexp.MustCompile(`^[A-Za-z0-9]{1,8}$`)

func newDemoCommand(g *globals) *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo [-n N]",
		Short: "Publish a realistic mix of requests for the sandbox sellers",
		Long: `demo generates N valid requests for the sandbox's demo sellers (Nuonuo
` + demoNuonuo + `, jumdata ` + demoJumdata + `), which a consumer started
without --config serves, publishes them and follows their results:

  phase 1  blue invoices of both sellers, fully digital (pc, bs) and paper (c),
           several lines, discount lines, some with amounts as JSON numbers;
           some Nuonuo orders carry the remark ` + sandboxFail + ` so that the
           sandbox fails them (their result is "rejected": expected);
  phase 2  once phase 1's results are in: red_confirm of fully digital
           invoices issued in phase 1, red paper invoices (kind issue,
           invoiceType 2) reversing paper ones, and reissue of the failed orders.

It prints each request as it is published, each result as it arrives, and
the results counted by status. Order numbers are D<run>-NNN; the same --seed,
--run and --date give the same phase-1 requests (phase 2 refers to the
invoice numbers the provider gave).

--out FILE writes phase 1 as newline-delimited JSON instead of publishing
("-" for standard output), for publisher validate or publish.

Exit status: 0 every request ended as expected, 1 some result was unexpected
or missing within --results-timeout, 2 usage error, 3 NATS unreachable.`,
		Example: `  go run ./cmd/consumer &   # NATS, the sandbox and the consumer in one process
  publisher demo
  publisher demo -n 200 --seed 7
  publisher demo -n 50 --out demo.ndjson && publisher publish --wait demo.ndjson`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("seed") {
				o.seed = rand.Uint64() % 1_000_000
			}
			return runDemo(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.VarP(intflag.NewInt(&o.n, 20), "count", "n", "number of requests, both phases together")
	f.Var(intflag.NewUint64(&o.seed, 0), "seed", "random seed (default: a random one, printed)")
	f.StringVar(&o.run, "run", "", "run tag in the order numbers, 1-8 letters or digits (default: from the clock)")
	f.StringVar(&o.date, "date", "", `invoiceDate of the requests, "yyyy-MM-dd HH:mm:ss" (default: now, China time)`)
	f.StringVar(&o.out, "out", "", `write phase 1 as NDJSON to this file ("-": standard output) instead of publishing`)
	f.DurationVar(&o.timeout, "results-timeout", 2*time.Minute, "how long to wait for each phase's results")
	return cmd
}

// defaultRunTag is a 6-character tag from the clock (base 36 seconds),
// distinct for runs started more than a second apart.
func defaultRunTag(now time.Time) string {
	return strings.ToUpper(strconv.FormatInt(now.Unix()%(36*36*36*36*36*36), 36))
}

func runDemo(ctx context.Context, g *globals, o demoOptions, out, errw io.Writer) error {
	switch {
	case o.n < 1 || o.n > 100000:
		return usageError("-n %d: want 1 to 100000 requests", o.n)
	case o.run != "" && !runTag.MatchString(o.run):
		return usageError("--run %q: want 1 to 8 letters or digits", o.run)
	case o.timeout <= 0:
		return usageError("--results-timeout must be positive")
	}
	now := time.Now()
	if o.run == "" {
		o.run = defaultRunTag(now)
	}
	date := now
	if o.date != "" {
		d, err := time.ParseInLocation(timeLayout, o.date, cst)
		if err != nil {
			return usageError("--date %q: want yyyy-MM-dd HH:mm:ss", o.date)
		}
		date = d
	}
	gen := newDemoGen(o.seed, o.run, date)
	v, err := schemas.NewValidator(schemas.ValidatorConfig{})
	if err != nil {
		return err
	}
	phase1 := gen.phase1(o.n)
	if err := checkDemo(v, phase1, out); err != nil {
		return err
	}
	plan := planFor(o.n)

	if o.out != "" {
		return writeDemo(o.out, phase1, out, errw, plan, o)
	}

	s, err := g.connect()
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.stream(ctx, s.subjects.RequestFilter(), "requests"); err != nil {
		return err
	}
	fmt.Fprintf(out, "demo run %s, seed %d: %d requests, %d in phase 1 and %d once their invoices exist\n", o.run, o.seed, o.n, len(phase1), plan.phase2())
	d := &demoRun{s: s, out: out, o: o}
	if d.w, err = s.newResultWaiter(ctx, []string{demoNuonuo, demoJumdata}, func(res *schemas.Result, at time.Time) {
		fmt.Fprintln(out, "  "+resultLine(res, at))
	}); err != nil {
		return err
	}
	defer d.w.Stop()

	d.phase(ctx, "phase 1", phase1)
	var phase2 []*demoItem
	var fails, digital, paper []*demoItem
	for _, it := range phase1 {
		switch it.role {
		case roleFail:
			fails = append(fails, it)
		case roleDigital:
			digital = append(digital, it)
		case rolePaper:
			paper = append(paper, it)
		}
	}
	for _, it := range fails {
		if d.ended(it, schemas.StatusRejected) {
			phase2 = append(phase2, gen.reissue(it))
		}
	}
	for _, it := range digital {
		if d.ended(it, schemas.StatusIssued) {
			phase2 = append(phase2, gen.redConfirm(it, d.w.final[it.key()].Invoices[0]))
		}
	}
	for _, it := range paper {
		if d.ended(it, schemas.StatusIssued) {
			phase2 = append(phase2, gen.redPaper(it, d.w.final[it.key()].Invoices[0]))
		}
	}
	if len(phase2) > 0 {
		if err := checkDemo(v, phase2, out); err != nil {
			return err
		}
		d.phase(ctx, "phase 2", phase2)
	}
	return d.summary(append(phase1, phase2...), plan.phase2()-len(phase2))
}

// demoRun publishes the demo's phases and keeps its counts.
type demoRun struct {
	s   *session
	w   *resultWaiter
	out io.Writer
	o   demoOptions
	t   tally
}

// phase publishes items and waits for their results.
func (d *demoRun) phase(ctx context.Context, name string, items []*demoItem) {
	fmt.Fprintf(d.out, "%s: publishing %d request(s)\n", name, len(items))
	reqs := make([]outgoing, len(items))
	for i, it := range items {
		fp, _ := schemas.Fingerprint(it.data) // marshalled from a Request: always JSON
		reqs[i] = outgoing{label: it.req.OrderNo, key: it.key(), data: it.data, fingerprint: fp}
	}
	var dups []schemas.OrderKey
	var waited []request
	d.s.publishRequests(ctx, reqs, defaultWindow, func(i int, ack *jetstream.PubAck, err error) {
		it := items[i]
		switch {
		case err != nil:
			d.t.failed++
			fmt.Fprintf(d.out, "  failed     %-11s %s:%s: %v\n", it.req.Kind, it.req.SellerTaxNum, it.req.OrderNo, err)
			return
		case ack.Duplicate:
			d.t.duplicates++
			dups = append(dups, it.key())
			fmt.Fprintf(d.out, "  duplicate  %-11s %s:%s  the same request is in the stream already (%s #%d)\n", it.req.Kind, it.req.SellerTaxNum, it.req.OrderNo, ack.Stream, ack.Sequence)
		default:
			d.t.published++
			fmt.Fprintf(d.out, "  published  %-11s %s:%s  %s\n", it.req.Kind, it.req.SellerTaxNum, it.req.OrderNo, it.what)
		}
		waited = append(waited, request{key: it.key(), fp: reqs[i].fingerprint})
	})
	if len(waited) == 0 {
		return
	}
	fmt.Fprintf(d.out, "%s: waiting up to %s for %d result(s)\n", name, d.o.timeout, len(waited))
	wctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	d.w.lookup(wctx, dups)
	d.w.wait(wctx, waited)
}

// ended reports whether a phase-1 request ended as phase 2 needs it to.
func (d *demoRun) ended(it *demoItem, want schemas.Status) bool {
	res, ok := d.w.final[it.key()]
	if !ok || res.Status != want {
		return false
	}
	return want != schemas.StatusIssued || len(res.Invoices) > 0
}

// summary prints the results by status and what was unexpected, and
// returns the exit error.
func (d *demoRun) summary(items []*demoItem, skipped int) error {
	counts := map[schemas.Status]int{}
	var unexpected []string
	missing := 0
	for _, it := range items {
		res, ok := d.w.final[it.key()]
		if held := d.w.waitingForAPerson(it.key()); !ok && held != nil {
			counts[held.Status]++
			unexpected = append(unexpected, heldLine(it.key(), held))
			continue
		}
		if !ok {
			missing++
			unexpected = append(unexpected, fmt.Sprintf("%s: no result (publisher status %s %s)", it.key(), it.req.SellerTaxNum, it.req.OrderNo))
			continue
		}
		counts[res.Status]++
		if res.Status != it.expect {
			msg := fmt.Sprintf("%s: %s, expected %s", it.key(), res.Status, it.expect)
			if res.Error != nil {
				msg += ": " + errorText(res.Error)
			}
			unexpected = append(unexpected, msg)
		}
	}
	fmt.Fprintln(d.out, d.t)
	line := "results: " + countLine(counts, schemas.Statuses)
	if missing > 0 {
		line += fmt.Sprintf("; %d without a result", missing)
	}
	fmt.Fprintln(d.out, line)
	if skipped > 0 {
		unexpected = append(unexpected, fmt.Sprintf("%d phase-2 request(s) not generated: the phase-1 request they build on did not end as planned", skipped))
	}
	if len(unexpected) > 0 || d.t.failed > 0 {
		for _, u := range unexpected {
			fmt.Fprintln(d.out, "unexpected: "+u)
		}
		return &exitError{code: exitFailed}
	}
	fmt.Fprintf(d.out, "all %d requests ended as expected", len(items))
	if counts[schemas.StatusRejected] > 0 {
		fmt.Fprintf(d.out, " (rejected: the %s orders, reissued in phase 2)", sandboxFail)
	}
	fmt.Fprintln(d.out)
	return nil
}

// checkDemo validates generated requests with the consumer's validator; a
// failure is a bug in the generator.
func checkDemo(v *schemas.Validator, items []*demoItem, out io.Writer) error {
	bad := 0
	for _, it := range items {
		d, err := v.Decode(it.data, "")
		if err != nil {
			fmt.Fprintf(out, "%s: generated an unreadable request: %v\n", it.req.OrderNo, err)
			bad++
			continue
		}
		for _, vi := range d.Violations {
			fmt.Fprintf(out, "%s: generated an invalid request: %s\n", it.req.OrderNo, vi)
		}
		if !d.Valid() {
			bad++
		}
	}
	if bad > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("demo generated %d invalid request(s): a bug, please report it", bad)}
	}
	return nil
}

// writeDemo writes phase 1 as NDJSON.
func writeDemo(name string, items []*demoItem, out, errw io.Writer, plan demoPlan, o demoOptions) error {
	var buf bytes.Buffer
	for _, it := range items {
		buf.Write(it.data)
		buf.WriteByte('\n')
	}
	var err error
	if name == "-" {
		_, err = out.Write(buf.Bytes())
	} else {
		err = os.WriteFile(name, buf.Bytes(), 0o644)
	}
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("write %s: %w", name, err)}
	}
	fmt.Fprintf(errw, "demo run %s, seed %d: wrote %d phase-1 request(s) to %s", o.run, o.seed, len(items), name)
	if n := plan.phase2(); n > 0 {
		fmt.Fprintf(errw, "; the %d phase-2 request(s) need phase 1's invoices and are made only when demo publishes", n)
	}
	fmt.Fprintln(errw)
	return nil
}
