// Package providers is the contract between the pipeline and the invoicing
// providers: the Provider interface, the classes every provider answer maps
// to, and what the provider clients share (HTTP settings, the adaptive
// per-seller rate limit, reading an HTTP Retry-After header).
//
// Each provider lives in its own package (providers/nuonuo,
// providers/jumdata) with one classification table mapping its codes, HTTP
// statuses and transport errors to a Class. providers/sandbox serves both
// APIs locally for tests, demos and the consumer's default mode.
//
// The classes, and what the pipeline does with each:
//
//	Issued          save and publish "issued" at once, ack
//	Accepted        save, poll later with Query
//	Retry           try again later (NakWithDelay with backoff, at least
//	                Outcome.RetryAfter)
//	Rejected        save, publish "rejected", ack
//	ActionRequired  publish "action_required" once, hold the seller
//	Unknown         the call may have happened: Query before any new Submit
//	NotFound        (Query only) nothing there: Submit is safe
package providers
