package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
	// value is the dead letter's stream sequence.
	HeaderReplayOf = "Invoice-Replay-Of"
)

// JetStreamPublisher publishes results and dead letters to JetStream and
// waits for each acknowledgement.
type JetStreamPublisher struct {
	js       jetstream.JetStream
	subjects schemas.Subjects
}

// NewJetStreamPublisher returns a publisher on js for the subjects.
func NewJetStreamPublisher(js jetstream.JetStream, subjects schemas.Subjects) *JetStreamPublisher {
	return &JetStreamPublisher{js: js, subjects: subjects}
}

// PublishResult implements Publisher.
func (p *JetStreamPublisher) PublishResult(ctx context.Context, res *schemas.Result, msgID string) error {
	data, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	seller := schemas.SubjectToken(res.SellerTaxNum)
	msg := &nats.Msg{Subject: p.subjects.Result(res.Status, seller), Data: data, Header: nats.Header{}}
	msg.Header.Set(HeaderSeller, res.SellerTaxNum)
	msg.Header.Set(HeaderOrderNo, res.OrderNo)
	msg.Header.Set(HeaderStatus, string(res.Status))
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish %s result for %s:%s: %w", res.Status, res.SellerTaxNum, res.OrderNo, err)
	}
	return nil
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
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(msgID)); err != nil {
		return fmt.Errorf("publish %s dead letter of %s #%d: %w", dl.Reason, dl.OriginalStream, dl.OriginalSeq, err)
	}
	return nil
}
