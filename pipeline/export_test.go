package pipeline

import "github.com/nats-io/nats.go/jetstream"

// WrapJetStream replaces p's JetStream client by wrap's of it: a test's
// way to act between the publisher's requests to the server, or to lose
// an answer of the server's.
func (p *JetStreamPublisher) WrapJetStream(wrap func(jetstream.JetStream) jetstream.JetStream) {
	p.js = wrap(p.js)
}
