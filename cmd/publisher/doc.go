// Command publisher is the order-system developer's and the SRE's tool for
// the invoicing consumer: it validates and publishes invoice requests,
// follows results, asks for an order's status and works the dead-letter
// subjects. Run `publisher --help` for the subcommands.
package main
