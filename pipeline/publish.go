package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

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
	// HeaderReplayPublished is set with HeaderReplayOf: when the request
	// the replay republishes first entered the request stream, by the NATS
	// server's clock (RFC 3339 with nanoseconds, UTC; ReplayPublished).
	// The replay's own publication is the replay's: an order's record that
	// the replay starts keeps this one (OrderRecord.RequestPublishedAt),
	// so that a copy of an older request delivered after it is not
	// submitted (order.staleCopy). It is not honoured without
	// HeaderReplayOf, nor when it is later than the replay's publication.
	// Anyone allowed to publish requests can set these headers (NATS
	// permissions are by subject): they can make a request look older
	// than it is, or unknown, never later (deploy/accounts.conf says why
	// that needs no guard).
	HeaderReplayPublished = "Invoice-Replay-Published"
	// HeaderReplayPosition is set with HeaderReplayOf when the dead letter
	// says it: where the request the replay republishes was in the
	// request stream, "<stream> <seq> <creation of the durable that
	// delivered it, RFC 3339 with nanoseconds, UTC>" (ReplayPosition). An
	// order's record that the replay starts keeps it, and a replay and a
	// record whose requests the same durable delivered are ordered by
	// their sequences, not the stream leaders' clocks (order.requestAt).
	// It is not honoured without HeaderReplayOf, nor when it cannot be the
	// place of a request the replay republished (replayPosition).
	HeaderReplayPosition = "Invoice-Replay-Position"
	// HeaderOriginalSeq and HeaderOriginalConsumerCreated are set on a dead
	// letter: the request's sequence in its stream
	// (DeadLetter.OriginalSeq), and when the durable consumer that
	// delivered it was created (DeadLetter.OriginalConsumerCreated, RFC
	// 3339 with nanoseconds, UTC; absent when not known), which the body
	// does not carry.
	HeaderOriginalSeq             = "Invoice-Original-Seq"
	HeaderOriginalConsumerCreated = "Invoice-Original-Consumer-Created"
)

// ReplayPosition returns the HeaderReplayPosition value of a replay of
// dl, a dead letter published with the headers h: where the request it
// holds was in the request stream. That is dl's OriginalStream and
// OriginalSeq with h's HeaderOriginalConsumerCreated, unless dl is the
// dead letter of a replay (its headers carry HeaderReplayOf): its original
// place is the replay's, and the value is the one the replay carried. ""
// when a part is not known (a dead letter written by an earlier build,
// without the durable's creation; the dead letter of a replay that
// carried none), cannot be read, or cannot be the place of a request the
// replay republished (requestAt.mayPrecede, as the consumer judges it).
func ReplayPosition(dl *schemas.DeadLetter, h map[string][]string) string {
	var created time.Time
	if vs := h[HeaderOriginalConsumerCreated]; len(vs) == 1 {
		if t, err := time.Parse(time.RFC3339Nano, vs[0]); err == nil {
			created = t
		}
	}
	if len(dl.Headers[HeaderReplayOf]) > 0 {
		vs := dl.Headers[HeaderReplayPosition]
		if len(vs) != 1 {
			return ""
		}
		at, ok := parseReplayPosition(vs[0])
		if !ok || !at.mayPrecede(requestAt{stream: dl.OriginalStream, seq: dl.OriginalSeq, consumerCreated: created, publishedAt: dl.PublishedAt}) {
			return ""
		}
		return formatReplayPosition(at.stream, at.seq, at.consumerCreated)
	}
	if created.IsZero() || dl.OriginalStream == "" || strings.ContainsFunc(dl.OriginalStream, unicode.IsSpace) || dl.OriginalSeq == 0 {
		return ""
	}
	return formatReplayPosition(dl.OriginalStream, dl.OriginalSeq, created)
}

// formatReplayPosition is the HeaderReplayPosition value of a request at
// seq in stream, delivered by a durable created at created.
func formatReplayPosition(stream string, seq uint64, created time.Time) string {
	return stream + " " + strconv.FormatUint(seq, 10) + " " + created.UTC().Format(time.RFC3339Nano)
}

// ReplayPublished returns the HeaderReplayPublished value of a replay of
// dl: when the request it holds first entered the request stream. That is
// dl.PublishedAt, unless dl is the dead letter of a replay (its headers
// carry HeaderReplayOf): its PublishedAt is then the replay's, and the
// value is the one the replay carried, "" when it carried none (a replay
// by an earlier build), one that cannot be read, or one later than the
// replay's publication, which no request it republished can be: anyone
// allowed to publish requests can set the header, and the consumer did
// not honour such a value on the replay (replayPublished), but would on
// the replay of its dead letter, published later still. "" too when dl
// does not say when it was published.
func ReplayPublished(dl *schemas.DeadLetter) string {
	if len(dl.Headers[HeaderReplayOf]) > 0 {
		vs := dl.Headers[HeaderReplayPublished]
		if len(vs) != 1 {
			return ""
		}
		t, err := time.Parse(time.RFC3339Nano, vs[0])
		if err != nil || t.IsZero() || (!dl.PublishedAt.IsZero() && t.After(dl.PublishedAt)) {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	if dl.PublishedAt.IsZero() {
		return ""
	}
	return dl.PublishedAt.UTC().Format(time.RFC3339Nano)
}

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
	// (RecreateStreams), marked with mark; created is told of each
	// stream this publisher created.
	recreate map[string]jetstream.StreamConfig
	mark     string
	created  func(jetstream.StreamConfig)
	// looks holds, by stream, the last look at an expected stream that
	// left a publish unanswered (lookStream); looksMu guards it.
	looksMu sync.Mutex
	looks   map[string]streamLook
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

// RecreateStreams makes a publish that its expected stream (ExpectStreams,
// called first) leaves unanswered (no responders; or no acknowledgement in
// time, when something that is not a stream took the message) create that
// stream again, with its configuration among streams, once the server says
// it does not exist: an operator deleted it. Otherwise every result would
// wait for an acknowledgement until its context ended, and its request
// would be put back, until the consumer's next start created the stream
// (Topology.Ensure). A stream that exists (one being restored after a
// restart, or without a leader for a moment) is left alone, as is one
// another party created meanwhile, whatever its settings, and only the
// expected streams are ever created, with the settings given here. The
// server is asked at most once a second a stream.
//
// A missing stream is created again RecreateSettle after a publish found
// it missing, not at once: the server goes on removing a deleted stream's
// files for a moment after it says the stream is gone, and a stream
// created in that moment is broken (ErrRecreatedBroken). What it created
// is checked (as Topology.RecreateRequestConsumer checks the request
// stream), and so is a stream bearing its mark that leaves a publish
// unanswered: a broken one is deleted, unless it holds messages published
// since its creation, and a later publish's look creates it again; the
// publish's error says what was found and done.
//
// A stream it creates bears mark, the instance's, in its metadata
// (RecreatedByMetadataKey; a random token when empty), until a start's
// Ensure: the server answers a create that matches an existing stream as
// one that made it, so without it a stream that another party created a
// moment before (another instance's publisher, all of which find the
// stream missing at once, or an instance's start) would be taken for this
// publisher's. created, when not nil, is called with each stream this
// publisher created again, also when the answer to its create was lost
// and a look found the stream there with its mark, and with no other. It
// returns p.
func (p *JetStreamPublisher) RecreateStreams(streams []jetstream.StreamConfig, mark string, created func(jetstream.StreamConfig)) *JetStreamPublisher {
	if mark == "" {
		mark = rand.Text()
	}
	p.recreate = map[string]jetstream.StreamConfig{}
	for _, cfg := range streams {
		if cfg.Name != "" && (cfg.Name == p.resultStream || cfg.Name == p.deadLetterStream) {
			cfg.Metadata = maps.Clone(cfg.Metadata)
			if cfg.Metadata == nil {
				cfg.Metadata = map[string]string{}
			}
			cfg.Metadata[RecreatedByMetadataKey] = mark
			p.recreate[cfg.Name] = cfg
		}
	}
	p.mark, p.created = mark, created
	return p
}

// streamLook is what a look at an expected stream found (lookStream).
type streamLook struct {
	at      time.Time
	missing bool  // the server says the stream does not exist
	why     error // what to add to the publish's error; nil: nothing
}

// lookStream looks at stream name, which left a publish unanswered: when
// the server says it does not exist, it is created again if
// RecreateStreams allows. The server is asked at most once a second a
// stream; in between, a publish gets the last look.
func (p *JetStreamPublisher) lookStream(ctx context.Context, name string) streamLook {
	p.looksMu.Lock()
	last, ok := p.looks[name]
	if ok && time.Since(last.at) < time.Second {
		p.looksMu.Unlock()
		return last
	}
	p.looks[name] = streamLook{at: time.Now(), missing: last.missing, why: last.why}
	p.looksMu.Unlock()
	look := p.askStream(ctx, name)
	p.looksMu.Lock()
	p.looks[name] = look
	p.looksMu.Unlock()
	return look
}

// askStream asks the server about stream name for lookStream. A stream
// that this publisher created again (its mark) and that left a publish
// unanswered is checked (checkRecreatedStream): the server may have broken
// it after the check that followed its create. A missing one is created
// again RecreateSettle after it was found missing, and checked.
func (p *JetStreamPublisher) askStream(ctx context.Context, name string) streamLook {
	lctx, cancel := context.WithTimeout(ctx, PublishAttempt)
	s, err := p.js.Stream(lctx, name)
	cancel()
	switch {
	case err == nil:
		info := s.CachedInfo()
		if _, ok := p.recreate[name]; ok && info.Config.Metadata[RecreatedByMetadataKey] == p.mark {
			if err := p.checkCreated(ctx, info); errors.Is(err, ErrRecreatedBroken) {
				return streamLook{at: time.Now(), why: fmt.Errorf("stream %s, created again by this instance, did not acknowledge it: %w", name, err)}
			}
		}
		return streamLook{at: time.Now(), why: fmt.Errorf("stream %s exists and did not acknowledge it", name)}
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		// JetStream not answering either: the publish's own error says
		// all there is.
		return streamLook{at: time.Now()}
	}
	cfg, ok := p.recreate[name]
	if !ok {
		return streamLook{at: time.Now(), missing: true, why: fmt.Errorf("stream %s does not exist", name)}
	}
	// The server may still be removing the deleted stream's files: a
	// stream created in that moment would be built on them, and lose them.
	settle := time.NewTimer(RecreateSettle)
	defer settle.Stop()
	select {
	case <-settle.C:
	case <-ctx.Done():
		return streamLook{at: time.Now(), missing: true, why: fmt.Errorf("stream %s does not exist", name)}
	}
	lctx, cancel = context.WithTimeout(ctx, PublishAttempt)
	defer cancel()
	s, err = p.js.CreateStream(lctx, cfg)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && ctx.Err() == nil {
		// The server may have created the stream and its answer been
		// lost: a stream bearing this publisher's mark says so.
		cctx, cancel := context.WithTimeout(ctx, PublishAttempt)
		found, serr := p.js.Stream(cctx, name)
		cancel()
		switch {
		case serr == nil && found.CachedInfo().Config.Metadata[RecreatedByMetadataKey] == p.mark:
			s, err = found, nil
		case serr == nil:
			err = jetstream.ErrStreamNameAlreadyInUse
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
		return streamLook{at: time.Now(), why: fmt.Errorf("stream %s did not exist, and another party created it again meanwhile", name)}
	case err != nil:
		return streamLook{at: time.Now(), missing: true, why: fmt.Errorf("stream %s does not exist, and creating it again failed: %w", name, err)}
	}
	if err := p.checkCreated(ctx, s.CachedInfo()); err != nil {
		// Broken (deleted, for a later look to create again, or left for
		// an operator), or the check got no answer: the next look that a
		// publish left unanswered checks it again.
		return streamLook{at: time.Now(), why: fmt.Errorf("stream %s did not exist: %w", name, err)}
	}
	if p.created != nil {
		p.created(cfg)
	}
	return streamLook{at: time.Now(), why: fmt.Errorf("stream %s did not exist, and was created again", name)}
}

// checkCreated checks a stream that this publisher created again
// (checkRecreatedStream).
func (p *JetStreamPublisher) checkCreated(ctx context.Context, info *jetstream.StreamInfo) error {
	cctx, cancel := context.WithTimeout(ctx, PublishAttempt)
	defer cancel()
	return checkRecreatedStream(cctx, p.js, info, "message(s)", "")
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
	return &JetStreamPublisher{js: js, subjects: subjects, looks: map[string]streamLook{}}
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
		return fmt.Errorf("publish %s result for %s:%s to %s: %w", res.Status, res.SellerTaxNum, res.OrderNo, msg.Subject, err)
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
				return fmt.Errorf("publish %s result for %s:%s to %s: no acknowledgement: %w", res.Status, res.SellerTaxNum, res.OrderNo, msg.Subject, ctx.Err())
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
	msg.Header.Set(HeaderOriginalSeq, strconv.FormatUint(dl.OriginalSeq, 10))
	if !dl.OriginalConsumerCreated.IsZero() {
		msg.Header.Set(HeaderOriginalConsumerCreated, dl.OriginalConsumerCreated.UTC().Format(time.RFC3339Nano))
	}
	if err := p.publish(ctx, msg, msgID, p.deadLetterStream); err != nil {
		return fmt.Errorf("publish %s dead letter of %s #%d to %s: %w", dl.Reason, dl.OriginalStream, dl.OriginalSeq, msg.Subject, err)
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
// expected stream that leaves an attempt unanswered is looked at
// (lookStream): created again when it is missing and RecreateStreams
// allows, and named in the error with what the look found.
func (p *JetStreamPublisher) publish(ctx context.Context, msg *nats.Msg, msgID, stream string) error {
	var last error // the last attempt's error that ctx did not cut short
	var look streamLook
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, PublishAttempt)
		_, err := p.js.PublishMsg(actx, msg, publishOpts(msgID, stream)...)
		cancel()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		noStream := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
		unanswered := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
		if (noStream || unanswered) && stream != "" && ctx.Err() == nil {
			look = p.lookStream(ctx, stream)
		}
		if !(noStream || unanswered) || ctx.Err() != nil {
			return publishFailed(last, attempt, look)
		}
		select {
		case <-ctx.Done():
			return publishFailed(last, attempt, look)
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)):
		}
	}
}

// publishFailed is the error of a publish given up after attempts, err
// being the last error that says why (an attempt cut short by the end of
// the publish's context says less than the one before it) and look what a
// look at its stream found.
func publishFailed(err error, attempts int, look streamLook) error {
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) {
		err = fmt.Errorf("the server refused it: %w", refusal{apiErr})
	}
	if attempts > 1 {
		err = fmt.Errorf("%w (after %d attempts)", err, attempts)
	}
	if look.why == nil {
		return err
	}
	if look.missing && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
		// Without a stream, a publish nothing receives fails at once
		// (no responders): something took this one and never answered.
		return fmt.Errorf("%w: %w, so what took the publish and left it unanswered was not a stream (a plain subscriber on the subject?)", err, look.why)
	}
	return fmt.Errorf("%w: %w", err, look.why)
}

// refusal is an error the server answered a publish with. Its text is the
// server's description and error code, once: the client's own reads "nats:
// nats: API error: code=400 err_code=10060 description=…".
type refusal struct{ err *jetstream.APIError }

func (r refusal) Error() string {
	return fmt.Sprintf("%s (JetStream error %d)", r.err.Description, r.err.ErrorCode)
}

func (r refusal) Unwrap() error { return r.err }
