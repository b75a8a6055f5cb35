// Command sandbox serves local stand-ins for the Nuonuo open platform and
// jumdata's tax/v3/makeout API on one port, with fault injection, for
// trying the consumer without provider accounts and for load and fault
// tests. It talks to nobody else and issues no real invoice.
//
//	go run ./cmd/sandbox --listen 127.0.0.1:9100
//
// Endpoints: POST /open/v1/services and /accessToken (Nuonuo), POST
// /tax/v3/makeout/... (jumdata), GET /_sandbox/stats (what it did), GET and
// POST /_sandbox/faults (the faults in force), GET /_sandbox/documents/...
// (invoice PDFs). Run with -h for the flags; their numbers are read in base
// 10, as every command's (cmd/internal/intflag).
package main
