// Command publisher is the order-system developer's and the SRE's tool for
// the invoicing consumer: it validates and publishes invoice requests,
// follows results, asks for an order's status and works the dead-letter
// subjects. Run `publisher --help` for the subcommands.
//
// Its bench subcommand is the performance harness. targets.sh, beside this
// file, runs bench in the set-up of each of the four performance targets and
// says which were met. README.md (Performance) gives the targets and the
// final figures; PERFORMANCE.md keeps how they were reached, what was
// tried, and every earlier figure.
package main
