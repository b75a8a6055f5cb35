package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

// options of a run.
type options struct {
	full    bool
	only    map[string]bool
	keep    bool
	race    bool
	seed    uint64
	verbose bool
	orders  int
}

func parseOptions(args []string, errOut io.Writer) (*options, error) {
	fs := flag.NewFlagSet("reliability", flag.ContinueOnError)
	fs.SetOutput(errOut)
	o := &options{}
	only := fs.String("only", "", "comma-separated scenarios to run (default: all): "+scenarioNames())
	fs.BoolVar(&o.full, "full", false, "the full version: several thousand requests per scenario")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs, data) for inspection")
	fs.BoolVar(&o.race, "race", false, "build the consumer with the race detector")
	fs.Var(intflag.NewUint64(&o.seed, 1), "seed", "the `number` seeding the random choices (kill moments, shuffles)")
	fs.BoolVar(&o.verbose, "v", false, "narrate each scenario")
	fs.Var(intflag.NewInt(&o.orders, 0), "orders", "the `number` of valid orders per scenario (default "+strconv.Itoa(shortSizes.orders)+", or "+strconv.Itoa(fullSizes.orders)+
		" with --full). Each scenario divides it among its parts or spreads it over its faults, and below its minimum tests nothing it claims to: "+
		minimumsText()+". A smaller number is refused rather than raised, so that the table counts the orders asked for; --only leaves out the scenarios that need more")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *only != "" {
		o.only = map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			found := false
			for _, s := range scenarios {
				found = found || s.name == n
			}
			if !found {
				return nil, fmt.Errorf("unknown scenario %q (have %s)", n, scenarioNames())
			}
			o.only[n] = true
		}
	}
	// 0, the flag's default, stands for the mode's number; given, a number
	// below the minimum of a scenario that would run is refused rather
	// than quietly taken for the default or raised, as the consumer
	// refuses its limits at 0.
	var err error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "orders" {
			err = o.checkOrders()
		}
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// sizes returns the run's sizes, --orders not applied.
func (o *options) sizes() sizes {
	if o.full {
		return fullSizes
	}
	return shortSizes
}

// checkOrders refuses an --orders below the minimum of a scenario the run
// would play, naming the one that needs the most.
func (o *options) checkOrders() error {
	sz := o.sizes()
	need, by := 0, ""
	for _, sc := range scenarios {
		if o.only != nil && !o.only[sc.name] {
			continue
		}
		if m := sc.minOrders(sz); m > need {
			need, by = m, sc.name
		}
	}
	if o.orders >= need {
		return nil
	}
	mode := ""
	if o.full {
		mode = " with --full"
	}
	return fmt.Errorf("--orders %d: %s needs at least %d valid orders%s to test anything (minimums: %s); leave %s out with --only, or --orders unset for the default, %d (%d with --full)",
		o.orders, by, need, mode, minimumsText(), by, shortSizes.orders, fullSizes.orders)
}

// minimumsText lists every scenario's minimum --orders, the full mode's in
// brackets where it differs.
func minimumsText() string {
	parts := make([]string, len(scenarios))
	for i, sc := range scenarios {
		short, full := sc.minOrders(shortSizes), sc.minOrders(fullSizes)
		parts[i] = sc.name + " " + strconv.Itoa(short)
		if full != short {
			parts[i] += " (" + strconv.Itoa(full) + " with --full)"
		}
	}
	return strings.Join(parts, ", ")
}

func scenarioNames() string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

// runMain runs the suite and returns the exit status: 0 every invariant
// held (or -h printed the help), 1 some did not, 2 a usage error or the
// suite could not run.
func runMain(args []string, out, errOut io.Writer) int {
	o, err := parseOptions(args, errOut)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: the flag package printed the help, as the consumer's and the sandbox's do
		}
		fmt.Fprintln(errOut, "reliability:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := runSuite(ctx, o, errOut)
	if err != nil {
		fmt.Fprintln(errOut, "reliability:", err)
		return 2
	}
	printTable(out, results)
	failed := 0
	for _, r := range results {
		if len(r.violations) > 0 {
			failed++
			fmt.Fprintf(errOut, "\n%s: %d invariant violation(s):\n", r.name, len(r.violations))
			for i, v := range r.violations {
				if i == 20 {
					fmt.Fprintf(errOut, "  … and %d more\n", len(r.violations)-20)
					break
				}
				fmt.Fprintf(errOut, "  - %s\n", v)
			}
		}
	}
	if failed > 0 {
		return 1
	}
	fmt.Fprintln(out, "every invariant held")
	return 0
}

// runSuite builds the binaries and runs the selected scenarios.
func runSuite(ctx context.Context, o *options, errOut io.Writer) ([]outcome, error) {
	sz := o.sizes()
	if o.orders > 0 {
		sz.orders = o.orders
	}
	dir, err := os.MkdirTemp("", "invoicer-reliability-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(errOut, "working directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	say := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(errOut, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
		}
	}
	say("building the consumer, the sandbox and nats-server")
	bins, err := buildBinaries(ctx, filepath.Join(dir, "bin"), o.race)
	if err != nil {
		return nil, err
	}
	var results []outcome
	for i, sc := range scenarios {
		if o.only != nil && !o.only[sc.name] {
			continue
		}
		say("scenario %s: %s", sc.name, sc.what)
		res := runScenario(ctx, sc, bins, filepath.Join(dir, sc.name), sz, o.seed+uint64(i), func(f string, a ...any) { say("  "+sc.name+": "+f, a...) })
		if o.keep && len(res.violations) > 0 {
			fmt.Fprintf(errOut, "%s: logs in %s\n", sc.name, filepath.Join(dir, sc.name))
		}
		results = append(results, res)
		if ctx.Err() != nil {
			break
		}
	}
	return results, nil
}

// runScenario runs one scenario in its own processes and checks it.
func runScenario(ctx context.Context, sc scenario, bins binaries, dir string, sz sizes, seed uint64, log func(string, ...any)) outcome {
	start := time.Now()
	fail := func(err error) outcome {
		return outcome{name: sc.name, seconds: time.Since(start).Seconds(), violations: []string{err.Error()}}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fail(err)
	}
	w, err := startWorld(ctx, bins, dir, sc.cfg(sz))
	if err != nil {
		return fail(fmt.Errorf("start: %w", err))
	}
	defer func() {
		w.close()
		for _, p := range []*proc{w.consumer, w.sandbox, w.nats} {
			_ = writeFile(filepath.Join(dir, p.name+".log"), p.logText())
		}
	}()
	r := &run{name: sc.name, w: w, l: newLedger(), rng: rand.New(rand.NewPCG(seed, seed)), sizes: sz, start: start, log: log}
	playErr := sc.play(ctx, r)
	var settleErr error
	if playErr != nil {
		settleErr = fmt.Errorf("scenario: %w", playErr)
	} else {
		log("waiting for every request to settle")
		settleErr = r.waitSettled(ctx)
	}
	res := r.check(ctx, settleErr)
	res.name = sc.name
	if len(r.notes) > 0 {
		res.name += " (" + joinNotes(r.notes) + ")"
	}
	return res
}

// printTable writes one row per scenario.
func printTable(w io.Writer, results []outcome) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\tissued\tduplicates\tlost\trejected\tdead letters\tseconds\tverdict\t")
	for _, r := range results {
		verdict := "ok"
		if len(r.violations) > 0 {
			verdict = fmt.Sprintf("FAIL (%d)", len(r.violations))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t\n", r.name, r.requests, r.issued, r.duplicates, r.lost, r.rejected, r.dlq, r.seconds, verdict)
	}
	_ = tw.Flush()
}
