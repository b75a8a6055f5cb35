package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers set on result events and dead letters, so that subscribers can
// filter without decoding the body.
const (
	HeaderSeller  = "Invoice-Seller"
	HeaderOrderNo = "Invoice-Order-No"
	HeaderStatus  = "Invoice-Status"
	HeaderReason  = "Invoice-Dlq-Reason"
	// HeaderReplayOf marks a request republished from a dead letter; its
	// value is the dead letter's stream sequence. Such a request starts
	// its order's counts afresh when the give-up could not (see
	// order.restartReplayed).
	HeaderReplayOf = "Invoice-Replay-Of"
)

// JetStreamPublisher publishes results and dead letters to JetStream and
// waits for each acknowledgement.
type JetStreamPublisher struct {
	js       jetstream.JetStream
	subjects schemas.Subjects
	// resultStream and deadLetterStream, when set, are the streams the
	// server must store results and dead letters in (ExpectStreams).
	resultStream, deadLetterStream string

	// recreate holds, by name, the configurations of the expected
	// streams that a publish creates again when they are missing
	// (RecreateStreams); created is told of each stream created.
	recreate map[string]jetstream.StreamConfig
	created  func(jetstream.StreamConfig)
	// lookMu guards looked, when a publish last looked for each missing
	// stream: one lookup at a time, and at most one a second a stream.
	lookMu sync.Mutex
	looked map[string]time.Time
}

// ExpectStreams makes every publish name the stream that must store it
// (the Nats-Expected-Stream header): results, and dead letters. An operator
// who moved their subjects into another stream would otherwise have them
// acknowledged by that stream while the subscribers of the results stream
// never see them; the server refuses such a publish instead, and the
// request is put back. An empty name expects none. It returns p.
func (p *JetStreamPublisher) ExpectStreams(results, deadLetters string) *JetStreamPublisher {
	p.resultStream, p.deadLetterStream = results, deadLetters
	return p
}

// RecreateStreams makes a publish that no stream answers ("no
// responders") create the stream it expects (ExpectStreams, called first)
// again, with its configuration among streams, once the server says that
// stream does not exist: an operator deleted it. Otherwise every result
// would wait for an acknowledgement until its context ended, and its
// request would be put back, until the consumer's next start created the
// stream (Topology.Ensure). A stream that exists (one being restored after
// a restart, or without a leader for a moment) is left alone, as is one
// another client created meanwhile with other settings, and only the
// expected streams are ever created, with the settings given here. The
// server is asked at most once a second a stream. created, when not nil,
// is called with each stream created. It returns p.
func (p *JetStreamPublisher) RecreateStreams(streams []jetstream.StreamConfig, created func(jetstream.StreamConfig)) *JetStreamPublisher {
	p.recreate = map[string]jetstream.StreamConfig{}
	for _, cfg := range streams {
		if cfg.Name != "" && (cfg.Name == p.resultStream || cfg.Name == p.deadLetterStream) {
			p.recreate[cfg.Name] = cfg
		}
	}
	p.created = created
	p.looked = map[string]time.Time{}
	return p
}

// recreateStream creates the stream name again with its RecreateStreams
// configuration when the server says it does not exist. It does nothing
// for a stream without one, while another publish is looking, or within a
// second of the last look.
func (p *JetStreamPublisher) recreateStream(ctx context.Context, name string) error {
	cfg, ok := p.recreate[name]
	if !ok || !p.lookMu.TryLock() {
		return nil
	}
	defer p.lookMu.Unlock()
	if time.Since(p.looked[name]) < time.Second {
		return nil
	}
	p.looked[name] = time.Now()
	lctx, cancel := context.WithTimeout(ctx, PublishAttempt)
	defer cancel()
	if _, err := p.js.Stream(lctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil // there, or JetStream not answering: only publishing again can tell
	}
	if _, err := p.js.CreateStream(lctx, cfg); err != nil {
		return fmt.Errorf("create the missing stream %s again: %w", name, err)
	}
	if p.created != nil {
		p.created(cfg)
	}
	return nil
}

// publishOpts are the options of a publish under msgID to stream (none
// expected when empty).
func publishOpts(msgID, stream string) []jetstream.PublishOpt {
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(msgID)}
	if stream != "" {
		opts = append(opts, jetstream.WithExpectStream(stream))
	}
	return opts
}

// MaxPendingPublishes bounds the results published asynchronously and not
// yet acknowledged by the stream; a publish beyond it waits briefly, then
// falls back to publishing synchronously.
const MaxPendingPublishes = 4096

// NewJetStreamPublisher returns a publisher on js's connection for the
// subjects. Its asynchronous publishes time out after PublishAttempt, so
// that an acknowledgement lost with the connection is never waited for
// forever.
func NewJetStreamPublisher(js jetstream.JetStream, subjects schemas.Subjects) *JetStreamPublisher {
	if own, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncTimeout(PublishAttempt),
		jetstream.WithPublishAsyncMaxPending(MaxPendingPublishes)); err == nil {
		js = own
	}
	return &JetStreamPublisher{js: js, subjects: subjects}
}

// resultMsg encodes res as the message published on its result subject.
func (p *JetStreamPublisher) resultMsg(res *schemas.Result) (*nats.Msg, error) {
	data, err := json.Marshal(res)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	seller := schemas.SubjectToken(res.SellerTaxNum)
	msg := &nats.Msg{Subject: p.subjects.Result(res.Status, seller), Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderSeller, res.SellerTaxNum)
	msg.Header.Set(HeaderOrderNo, res.OrderNo)
	msg.Header.Set(HeaderStatus, string(res.Status))
	return msg, nil
}

// PublishResult implements Publisher.
func (p *JetStreamPublisher) PublishResult(ctx context.Context, res *schemas.Result, msgID string) error {
	msg, err := p.resultMsg(res)
	if err != nil {
		return err
	}
	if err := p.publish(ctx, msg, msgID, p.resultStream); err != nil {
		return fmt.Errorf("publish %s result for %s:%s: %w", res.Status, res.SellerTaxNum, res.OrderNo, err)
	}
	return nil
}

// PublishResultAsync implements Publisher: the result is sent at once and
// the returned function waits for the stream's acknowledgement. An
// acknowledgement that does not come within PublishAttempt, or an error,
// falls back to PublishResult's retries under the same message id.
func (p *JetStreamPublisher) PublishResultAsync(res *schemas.Result, msgID string) func(context.Context) error {
	msg, err := p.resultMsg(res)
	if err != nil {
		return func(context.Context) error { return err }
	}
	fut, err := p.js.PublishMsgAsync(msg, publishOpts(msgID, p.resultStream)...)
	return func(ctx context.Context) error {
		if err == nil {
			select {
			case <-fut.Ok():
				return nil
			case <-fut.Err():
			case <-ctx.Done():
				return fmt.Errorf("publish %s result for %s:%s: %w", res.Status, res.SellerTaxNum, res.OrderNo, ctx.Err())
			}
		}
		return p.PublishResult(ctx, res, msgID) // a fresh message: the first one belongs to its future
	}
}

// PublishDeadLetter implements Publisher.
func (p *JetStreamPublisher) PublishDeadLetter(ctx context.Context, dl *schemas.DeadLetter, msgID string) error {
	data, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := &nats.Msg{Subject: p.subjects.DeadLetter(dl.Reason, schemas.SubjectToken(dl.SellerTaxNum)), Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderSeller, dl.SellerTaxNum)
	if dl.OrderNo != "" {
		msg.Header.Set(HeaderOrderNo, dl.OrderNo)
	}
	msg.Header.Set(HeaderReason, string(dl.Reason))
	msg.Header.Set("Invoice-Original-Seq", strconv.FormatUint(dl.OriginalSeq, 10))
	if err := p.publish(ctx, msg, msgID, p.deadLetterStream); err != nil {
		return fmt.Errorf("publish %s dead letter of %s #%d: %w", dl.Reason, dl.OriginalStream, dl.OriginalSeq, err)
	}
	return nil
}

// PublishAttempt bounds one attempt to publish and have the stream
// acknowledge. An acknowledgement lost with a broken connection is never
// answered, and a stream being restored after a server restart has no
// responder yet; either way the message is published again under the same
// Nats-Msg-Id, which the stream deduplicates, until ctx ends.
const PublishAttempt = 5 * time.Second

// publish publishes msg under msgID (to stream, when not empty) and waits
// for its acknowledgement, retrying lost or unanswered attempts. An
// expected stream that no one answers for is created again when it is
// missing (RecreateStreams); a failure to do so is added to the error.
func (p *JetStreamPublisher) publish(ctx context.Context, msg *nats.Msg, msgID, stream string) error {
	var recreateErr error
	failed := func(err error, attempt int) error {
		if attempt > 1 {
			err = fmt.Errorf("%w (after %d attempts)", err, attempt)
		}
		if recreateErr != nil {
			err = fmt.Errorf("%w; %w", err, recreateErr)
		}
		return err
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, PublishAttempt)
		_, err := p.js.PublishMsg(actx, msg, publishOpts(msgID, stream)...)
		cancel()
		if err == nil {
			return nil
		}
		noStream := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
		retry := noStream || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if noStream && stream != "" && ctx.Err() == nil {
			if cerr := p.recreateStream(ctx, stream); cerr != nil {
				recreateErr = cerr
			}
		}
		if !retry || ctx.Err() != nil {
			return failed(err, attempt)
		}
		select {
		case <-ctx.Done():
			return failed(err, attempt)
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)):
		}
	}
}
