// Command reliability tries hard to make the invoicing consumer lose a
// request or issue an invoice twice, and reports what it found.
//
// It builds the real binaries (the consumer, the provider sandbox and
// nats-server) and runs each scenario on loopback with separate processes:
// the consumer in external-NATS mode against its own nats-server and
// sandbox, with fresh data. Scenarios: the consumer killed with SIGKILL
// mid-run; the NATS server stopped and restarted; provider faults (5xx with
// a Retry-After, accept-then-drop, latency spikes past the client timeout,
// rate-limit bursts); a hostile-input corpus; the same order published 100
// times, then with a different body; the order store's file unable to grow.
//
// After each scenario it checks the invariants: every valid order issued
// exactly once at the sandbox and answered by one issued result per request
// message; every hostile message rejected or dead-lettered as malformed as
// expected, and none of the orders they name seen at the sandbox but the one
// at the size limit, issued there once; nothing left in the request stream;
// no panic or data race in the consumer. It also checks that the scenario's
// faults happened: each kind of fault given to the sandbox was injected at
// least once, by the sandbox's own count, or the run proved nothing of it.
// It prints one table row per scenario and exits 1 on any violation.
//
//	go run ./cmd/reliability           # the short version (CI runs it through go test)
//	go run ./cmd/reliability --full    # several thousand requests per scenario
//
// --orders sets the valid orders per scenario. Each scenario has a minimum
// below which it tests nothing it claims to (-h lists them; provider-faults
// needs the most, 100): a smaller number is refused, naming the scenario,
// and --only leaves out the scenarios that need more.
package main
