// Package sandbox serves local stand-ins for the Nuonuo open platform and
// jumdata's tax/v3/makeout API on one HTTP handler, faithful enough that a
// client passing against them would pass against the real services: it
// verifies signatures and tokens as the documents describe, applies the
// validation codes that matter, issues asynchronously, serves real PDFs,
// and injects faults on demand, deterministically from a seed (latency,
// 5xx, resets, garbage, rate limiting, face authentication and
// accept-then-drop, the fault that leaves a call in doubt).
//
// It accounts for everything it did at GET /_sandbox/stats: per seller and
// order, submissions, queries, issuances and invoices. Tests use it to prove
// that no order was ever invoiced twice.
//
// The consumer runs it in process by default, so a new user sees invoices
// issued without any account; cmd/sandbox runs it on its own.
package sandbox
