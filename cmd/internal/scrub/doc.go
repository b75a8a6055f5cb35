// Package scrub removes the secrets of NATS server URLs from the commands'
// error messages.
//
// nats.go's errors may quote a server URL as it was given: url.Parse
// quotes the whole URL when it cannot read it (a mistyped port, a
// password that is not URL-safe), password or token included. URLs
// replaces each URL of the list in such a message by the form a command's
// own redaction gives it, as given and as %q quotes it, in one pass over
// the message: a replacement is never scanned again, so a redacted form
// that contains the URL it replaces (a token "x" in "xxxxx@host") is not
// replaced a second time.
//
//	msg := scrub.URLs(err.Error(), natsURL, redactURL)
//
// Each command keeps its own redaction (the consumer writes
// "[redacted]@host", the publisher "user:xxxxx@host" as the nats CLI
// does); the scrubbing of a message is the same for both.
package scrub
