// Command consumer is the invoicing consumer: it pulls invoice requests from
// NATS JetStream, issues each exactly once at the seller's provider (Nuonuo
// or jumdata) and publishes the result.
//
// With no flags it runs everything it needs in process: a NATS server with
// JetStream on 127.0.0.1:4222, its stores under ./data, and the provider
// sandbox with demo sellers, so that invoices are issued without any
// account. Run `consumer -h` for the flags; every flag can also be set with
// the environment variable named in its help.
package main
