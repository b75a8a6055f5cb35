package pipeline

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology describes the streams and the durable consumer of the service.
// The zero value is the single-node default.
type Topology struct {
	// Subjects names the subjects.
	Subjects schemas.Subjects
	// RequestStream, ResultStream and DeadLetterStream name the streams;
	// empty means INVOICE_REQUESTS, INVOICE_RESULTS and INVOICE_DLQ.
	RequestStream, ResultStream, DeadLetterStream string
	// Durable names the request consumer; empty means "invoicer". With
	// partitions, partition K's durable is "<Durable>-<K>".
	Durable string
	// Replicas is the stream replica count; 0 means 1.
	Replicas int
	// MemoryStorage keeps streams in memory (tests only).
	MemoryStorage bool
	// ResultMaxAge and DeadLetterMaxAge bound how long results and dead
	// letters are kept; 0 means 30 and 90 days.
	ResultMaxAge, DeadLetterMaxAge time.Duration
	// Duplicates is the Nats-Msg-Id deduplication window of every stream;
	// 0 means 10 minutes.
	Duplicates time.Duration
	// Partitions splits requests by seller into this many partitions with a
	// stream subject transform; 0 or 1 means no partitioning.
	Partitions int
	// Reconfigure lets Ensure change the partition count, the replica
	// count or the subjects of streams that exist already. Without it
	// Ensure refuses (ErrTopologyChanged): one instance started with a
	// forgotten --partitions or --replicas, or another --prefix, would
	// otherwise re-route every other instance's sellers, take the streams'
	// copies away, or move the request stream off the subjects the order
	// systems publish to, without a word.
	Reconfigure bool
}

// ErrTopologyChanged is returned by Ensure when a stream exists with
// another partition count, replica count or subjects than the topology's,
// and Topology.Reconfigure is not set.
var ErrTopologyChanged = errors.New("the streams are set up with another partition count, replica count or subjects")

// Names of the defaults.
const (
	DefaultRequestStream    = "INVOICE_REQUESTS"
	DefaultResultStream     = "INVOICE_RESULTS"
	DefaultDeadLetterStream = "INVOICE_DLQ"
	DefaultDurable          = "invoicer"
	// DefaultWaiting is ConsumerSettings.Waiting's default.
	DefaultWaiting = 1024
)

// A consumer's start-up bounds: SetupTimeout for its set-up (Ensure,
// EnsureConsumer, the providers' clients, OpenDocuments), then
// RecoverTimeout for RecoverUnclaimed. A supervisor that waits for the
// consumer to start, such as the Kubernetes startupProbe of
// deploy/kubernetes/invoicer.yaml, must allow their sum and some more.
const (
	SetupTimeout   = 30 * time.Second
	RecoverTimeout = 2 * time.Minute
)

// Validate checks the topology.
func (t Topology) Validate() error {
	if t.Replicas < 0 || t.Replicas > 5 {
		return fmt.Errorf("replicas %d: must be 1 to 5", t.Replicas)
	}
	if t.Partitions < 0 || t.Partitions > 1024 {
		return fmt.Errorf("partitions %d: must be 0 to 1024", t.Partitions)
	}
	if t.ResultMaxAge < 0 || t.DeadLetterMaxAge < 0 || t.Duplicates < 0 {
		return errors.New("stream ages must not be negative")
	}
	return nil
}

// WithDefaults returns t with zero fields set to their defaults.
func (t Topology) WithDefaults() Topology {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&t.RequestStream, DefaultRequestStream)
	def(&t.ResultStream, DefaultResultStream)
	def(&t.DeadLetterStream, DefaultDeadLetterStream)
	def(&t.Durable, DefaultDurable)
	if t.Replicas == 0 {
		t.Replicas = 1
	}
	if t.ResultMaxAge == 0 {
		t.ResultMaxAge = 30 * 24 * time.Hour
	}
	if t.DeadLetterMaxAge == 0 {
		t.DeadLetterMaxAge = 90 * 24 * time.Hour
	}
	if t.Duplicates == 0 {
		t.Duplicates = 10 * time.Minute
	}
	return t
}

func (t Topology) storage() jetstream.StorageType {
	if t.MemoryStorage {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Streams returns the configurations of the three streams:
//   - requests: work-queue retention (a request leaves the stream once
//     acknowledged or terminated), partitioned by seller when Partitions > 1;
//   - results and dead letters: limits retention with a maximum age.
func (t Topology) Streams() []jetstream.StreamConfig {
	t = t.WithDefaults()
	req := jetstream.StreamConfig{
		Name:        t.RequestStream,
		Description: "Invoice requests published by order systems, one subject token per seller.",
		Subjects:    []string{t.Subjects.RequestFilter()},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
		Duplicates:  t.Duplicates,
		Discard:     jetstream.DiscardOld,
	}
	if t.Partitions > 1 {
		req.SubjectTransform = &jetstream.SubjectTransformConfig{
			Source:      t.Subjects.RequestFilter(),
			Destination: t.Subjects.Request("{{wildcard(1)}}") + ".{{partition(" + strconv.Itoa(t.Partitions) + ",1)}}",
		}
	}
	res := jetstream.StreamConfig{
		Name:        t.ResultStream,
		Description: "Invoice results: <prefix>.result.<status>.<seller>.",
		Subjects:    []string{t.Subjects.ResultFilter()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
		MaxAge:      t.ResultMaxAge,
		Duplicates:  t.Duplicates,
		Discard:     jetstream.DiscardOld,
	}
	dlq := jetstream.StreamConfig{
		Name:        t.DeadLetterStream,
		Description: "Dead letters: <prefix>.dlq.<reason>.<seller>, replayable with publisher dlq replay.",
		Subjects:    []string{t.Subjects.DeadLetterFilter()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     t.storage(),
		Replicas:    t.Replicas,
		MaxAge:      t.DeadLetterMaxAge,
		Duplicates:  t.Duplicates,
		Discard:     jetstream.DiscardOld,
	}
	return []jetstream.StreamConfig{req, res, dlq}
}

// ConsumerSettings size the durable request consumer.
type ConsumerSettings struct {
	// Partition is the partition this consumer reads (0..Partitions-1);
	// ignored without partitions.
	Partition int
	// Workers is the number of messages processed at once.
	Workers int
	// AckWait is how long the server waits for an acknowledgement before
	// redelivering; 0 means 30 seconds.
	AckWait time.Duration
	// Waiting is how many requests may wait between two deliveries (an
	// accepted order waiting for its next poll, a retry waiting out its
	// backoff) on top of the ones being worked on. A request put back with
	// NakWithDelay stays unacknowledged, so without this room a few
	// hundred orders waiting for their provider would stall new work. 0
	// means 1024.
	Waiting int
	// Owner, when set, is written into the durable's metadata
	// (OwnerMetadataKey): the instance that takes the durable, so that
	// another one started at the same moment can tell (WatchOwner).
	Owner Owner
}

// Consumer returns the configuration of the durable request consumer:
// explicit acks, unlimited server-side deliveries (the pipeline enforces
// its own MaxDeliver and dead-letters on the last one, so a crash during
// the give-up is repaired by one more delivery), and MaxAckPending of twice
// the workers (one batch in process, one in the pull buffer) plus the
// requests allowed to wait between deliveries (Waiting).
func (t Topology) Consumer(s ConsumerSettings) jetstream.ConsumerConfig {
	t = t.WithDefaults()
	ackWait := s.AckWait
	if ackWait == 0 {
		ackWait = 30 * time.Second
	}
	workers := max(s.Workers, 1)
	waiting := s.Waiting
	if waiting <= 0 {
		waiting = DefaultWaiting
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       t.Durable,
		Description:   "Invoice request processor",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: workers*2 + waiting,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: t.Subjects.RequestFilter(),
		Replicas:      t.Replicas,
	}
	if t.Partitions > 1 {
		cfg.Durable = t.Durable + "-" + strconv.Itoa(s.Partition)
		cfg.FilterSubject = t.Subjects.Request("*") + "." + strconv.Itoa(s.Partition)
	}
	if !s.Owner.Started.IsZero() {
		cfg.Metadata = map[string]string{OwnerMetadataKey: s.Owner.String()}
	}
	return cfg
}

// Ensure creates the streams, or updates them to this configuration; it is
// idempotent and safe to run at every start. A stream that exists with
// another partition count, replica count or subjects is left as it is and
// Ensure returns ErrTopologyChanged, unless Reconfigure is set.
func (t Topology) Ensure(ctx context.Context, js jetstream.JetStream) error {
	if err := t.Validate(); err != nil {
		return err
	}
	streams := t.Streams()
	if !t.Reconfigure {
		// Every stream is checked before any is changed, so that a
		// refused start leaves all of them as they were.
		for _, cfg := range streams {
			s, err := js.Stream(ctx, cfg.Name)
			switch {
			case errors.Is(err, jetstream.ErrStreamNotFound):
			case err != nil:
				return fmt.Errorf("read stream %s: %w", cfg.Name, err)
			default:
				if err := sameShape(s.CachedInfo().Config, cfg); err != nil {
					return err
				}
			}
		}
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// sameShape checks that an existing stream has the subjects, the
// partition count and the replica count that want gives it.
func sameShape(have, want jetstream.StreamConfig) error {
	if !sameSubjects(have.Subjects, want.Subjects) {
		return fmt.Errorf("%w: stream %s takes the subjects %s, and this consumer is configured for %s (its --prefix; a subject added to the stream by hand counts too)",
			ErrTopologyChanged, have.Name, strings.Join(have.Subjects, " "), strings.Join(want.Subjects, " "))
	}
	if h, w := streamPartitions(have), streamPartitions(want); h != w {
		want := "no partitions"
		if w > 1 {
			want = strconv.Itoa(w) + " partitions"
		}
		return fmt.Errorf("%w: stream %s is %s, and this consumer is configured for %s",
			ErrTopologyChanged, have.Name, partitionsText(h), want)
	}
	if have.Replicas != want.Replicas {
		return fmt.Errorf("%w: stream %s has %d replica(s), and this consumer is configured for %d",
			ErrTopologyChanged, have.Name, have.Replicas, want.Replicas)
	}
	return nil
}

// sameSubjects reports whether a and b hold the same subjects, in any
// order.
func sameSubjects(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// partitionRE finds the partition count in a subject transform's
// destination ("….{{partition(3,1)}}").
var partitionRE = regexp.MustCompile(`\{\{\s*[Pp]artition\(\s*(\d+)`)

// streamPartitions returns how many partitions a stream's subject
// transform makes: 1 without one, -1 for a transform that is not a
// partitioning this package writes.
func streamPartitions(cfg jetstream.StreamConfig) int {
	if cfg.SubjectTransform == nil || cfg.SubjectTransform.Destination == "" {
		return 1
	}
	m := partitionRE.FindStringSubmatch(cfg.SubjectTransform.Destination)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return max(n, 1)
}

// partitionsText describes streamPartitions' n.
func partitionsText(n int) string {
	switch {
	case n < 0:
		return "transformed by a subject transform of its own"
	case n <= 1:
		return "not partitioned"
	}
	return "partitioned " + strconv.Itoa(n) + " ways"
}

// EnsureConsumer creates or updates the durable request consumer.
func (t Topology) EnsureConsumer(ctx context.Context, js jetstream.JetStream, s ConsumerSettings) (jetstream.Consumer, error) {
	t = t.WithDefaults()
	if err := t.checkPartition(s); err != nil {
		return nil, err
	}
	cfg := t.Consumer(s)
	c, err := js.CreateOrUpdateConsumer(ctx, t.RequestStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create or update consumer %s on %s: %w", cfg.Durable, t.RequestStream, err)
	}
	return c, nil
}

// checkPartition checks s's partition against the topology's.
func (t Topology) checkPartition(s ConsumerSettings) error {
	if t.Partitions > 1 && (s.Partition < 0 || s.Partition >= t.Partitions) {
		return fmt.Errorf("partition %d: must be 0 to %d", s.Partition, t.Partitions-1)
	}
	return nil
}

// RecreatedByMetadataKey is the key of the metadata of the request stream
// and of the durable that marks one RecreateRequestConsumer created again,
// naming the instance that did: its ConsumerSettings.Owner (Owner.String),
// or a random token without one; and of a results or dead-letter stream
// that a publisher created again (JetStreamPublisher.RecreateStreams).
// Another party's create, with another mark or none, is refused then
// rather than answered as if it had made the stream or the durable: the
// server answers a create that matches an existing one as one that created
// it. The instance's own mark on a stream or durable it finds says that it
// created it itself, with a try whose answer was lost
// (RecreatedConsumer.StreamMine, ConsumerCreated); only an Owner names the
// instance across tries, a random token names one try. A start's Ensure
// and EnsureConsumer, which write the topology's configuration over the
// streams' and the durable's, remove the mark.
const RecreatedByMetadataKey = "invoicer-recreated-by"

// ErrRecreatedBroken is returned, wrapped with what was wrong, by
// RecreateRequestConsumer when the request stream or the durable that this
// instance created again (this call, or an earlier one whose answer was
// lost) does not work, and the loop must not take from it. The server
// (nats-server v2.15.2 and v2.15.3) takes a deleted stream out of its
// account before it removes the stream's files: a stream of the same name
// created in that moment is built on the deleted one's files (it holds
// their sequences, older than itself), and the removal then takes its
// files from under it; the server then stores nothing in it and answers
// no publish to it, while its info looks sane, and refuses every update
// of it ("open …/meta.inf.tmp: no such file or directory"). So does a
// durable created again a moment after its deletion with the deleted
// one's. RecreateRequestConsumer deletes what it found broken, so that the
// next try (the loop's, a second later) creates it again, unless the
// stream holds requests published since its creation, which it leaves for
// an operator to look at; the error says so, and says to delete it by hand
// when the server refused the deletion (deploy/accounts.conf does not let
// the consumer delete the request stream or its durables). A publisher
// that creates its results or dead-letter stream again
// (JetStreamPublisher.RecreateStreams) checks it the same way, and its
// publish's error wraps ErrRecreatedBroken for one it found broken.
var ErrRecreatedBroken = errors.New("created again, but broken")

// RecreatedConsumer is what RecreateRequestConsumer found and did.
type RecreatedConsumer struct {
	// Consumer is the durable request consumer, created again, or found
	// there and given the instance's settings.
	Consumer jetstream.Consumer
	// Stream is the request stream's info as it is now.
	Stream *jetstream.StreamInfo
	// StreamCreated says that the stream was missing and that this
	// call created it again, empty; false for a stream it found there,
	// one another party created a moment before its create included.
	StreamCreated bool
	// StreamCreatedBy is the stream's mark (RecreatedByMetadataKey): the
	// instance that created it again while it ran, this one or another;
	// "" for a stream without one (created at a start, by an operator,
	// or never deleted).
	StreamCreatedBy string
	// StreamMine says that the stream bears this instance's mark: this
	// instance created it again, with this call (StreamCreated) or an
	// earlier one, which may be a try whose answer was lost (the server
	// created the stream and the client gave up waiting: the next try
	// finds it there) or one for an earlier deletion; whether the stream
	// is newer than the durable that went missing tells those apart.
	// Only ConsumerSettings.Owner names the instance across calls:
	// without one, StreamMine is StreamCreated.
	StreamMine bool
	// ConsumerCreated says that this instance created the durable again:
	// this call, or an earlier one whose answer was lost (its create,
	// with the same mark, matches the durable: only with an Owner).
	// False for a durable found there, which another party created
	// again first (an instance's start, an operator).
	ConsumerCreated bool
	// ConsumerUpdated says that the durable found there had other
	// settings, and that this call updated it to the instance's; false
	// for one created, or found with them already and left as it was.
	ConsumerUpdated bool
}

// RecreateRequestConsumer creates the request stream again when the server
// says it does not exist, with the topology's settings (Streams) and this
// instance's mark (RecreatedByMetadataKey), then the durable request
// consumer with s (Consumer) and the mark: for a consumer that found its
// durable gone while it runs (an operator deleted the request stream,
// which takes its consumers with it, or the durable alone). A request
// stream that exists is left as it is, whatever its settings, and so is
// one that another party (another partition's instance, an instance's
// start, an operator) created meanwhile, even between this call's look and
// its create. A durable that another party created again first is updated
// to s, as EnsureConsumer does. A stream created again starts empty, its
// sequences from 1: the requests the deleted one held are gone with it.
//
// A stream or durable that this instance created again is checked before
// it is returned (checkRecreatedStream, checkRecreatedDurable): one that
// the server broke is deleted, when that loses nothing, and the call
// returns an error wrapping ErrRecreatedBroken. So is a durable bearing
// this instance's mark that the server refuses to create again: an
// earlier try's, whose answer was lost, and which the server broke since
// (ownDurable; only with an Owner, which marks every try alike).
func (t Topology) RecreateRequestConsumer(ctx context.Context, js jetstream.JetStream, s ConsumerSettings) (RecreatedConsumer, error) {
	t = t.WithDefaults()
	var out RecreatedConsumer
	if err := t.checkPartition(s); err != nil {
		return out, err
	}
	mark := rand.Text()
	if !s.Owner.Started.IsZero() {
		mark = s.Owner.String()
	}
	stream, err := js.Stream(ctx, t.RequestStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		cfg := t.Streams()[0]
		cfg.Metadata = map[string]string{RecreatedByMetadataKey: mark}
		stream, err = js.CreateStream(ctx, cfg)
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			stream, err = js.Stream(ctx, t.RequestStream) // another party was first
		case err == nil:
			out.StreamCreated = true
		default:
			return out, fmt.Errorf("create stream %s again: %w", t.RequestStream, err)
		}
	}
	if err != nil {
		return out, fmt.Errorf("read stream %s: %w", t.RequestStream, err)
	}
	out.Stream = stream.CachedInfo()
	out.StreamCreatedBy = out.Stream.Config.Metadata[RecreatedByMetadataKey]
	out.StreamMine = out.StreamCreatedBy == mark
	if out.StreamCreated || out.StreamMine {
		if err := checkRecreatedStream(ctx, js, out.Stream, "request(s)", "; order systems must publish again what they published to it"); err != nil {
			return out, err
		}
	}
	cfg := t.Consumer(s)
	marked := cfg
	marked.Metadata = maps.Clone(cfg.Metadata)
	if marked.Metadata == nil {
		marked.Metadata = map[string]string{}
	}
	marked.Metadata[RecreatedByMetadataKey] = mark
	out.Consumer, err = js.CreateConsumer(ctx, t.RequestStream, marked)
	switch {
	case err == nil:
		out.ConsumerCreated = true
		return out, checkRecreatedDurable(ctx, js, out.Consumer.CachedInfo())
	case !errors.Is(err, jetstream.ErrConsumerExists):
		err = fmt.Errorf("create consumer %s on %s again: %w", cfg.Durable, t.RequestStream, err)
		return t.ownDurable(ctx, js, out, cfg.Durable, mark, err)
	}
	// Another party was first.
	found, err := js.Consumer(ctx, t.RequestStream, cfg.Durable)
	if err != nil {
		return out, fmt.Errorf("read consumer %s on %s: %w", cfg.Durable, t.RequestStream, err)
	}
	if out.Consumer, err = js.UpdateConsumer(ctx, t.RequestStream, cfg); err != nil {
		return out, fmt.Errorf("update consumer %s on %s: %w", cfg.Durable, t.RequestStream, err)
	}
	// Both as the server holds them, its defaults filled in.
	out.ConsumerUpdated = !reflect.DeepEqual(found.CachedInfo().Config, out.Consumer.CachedInfo().Config)
	return out, nil
}

// ownDurable is RecreateRequestConsumer's answer when the server refused
// to create the durable (name) again, created: a durable that bears this
// instance's mark, created by an earlier try whose answer was lost, which
// the server may have broken since (its removal of the deleted durable's
// files took the new one's: it then refuses every create and update of
// it), is checked (checkRecreatedDurable): a broken one is deleted, for
// the next try to create it again, and one that works is returned, as
// created by this instance. Otherwise it returns created.
func (t Topology) ownDurable(ctx context.Context, js jetstream.JetStream, out RecreatedConsumer, name, mark string, created error) (RecreatedConsumer, error) {
	if apiErr := (*jetstream.APIError)(nil); !errors.As(created, &apiErr) {
		return out, created
	}
	found, err := js.Consumer(ctx, t.RequestStream, name)
	if err != nil || found.CachedInfo().Config.Metadata[RecreatedByMetadataKey] != mark {
		return out, created
	}
	if err := checkRecreatedDurable(ctx, js, found.CachedInfo()); err != nil {
		return out, fmt.Errorf("%w; the durable there is this instance's, created by an earlier try whose answer was lost: %w", created, err)
	}
	out.Consumer, out.ConsumerCreated = found, true
	return out, nil
}

// errCodeStreamUpdate is the server's error code for a stream update that
// failed other than with one of the API's own errors (JSStreamUpdateErrF),
// as a write of the stream's files does: the refusal of a stream whose
// files are gone. A refusal for a passing or another reason (a leader
// election in a cluster, insufficient resources, a limit) has a code of
// its own, and says nothing of the stream's files.
const errCodeStreamUpdate jetstream.ErrorCode = 10069

// clocksApart is how far before a stream's creation a message's timestamp
// must be for checkRecreatedStream to take it for the deleted stream's. In
// a cluster the meta leader's clock stamps the creation and the stream
// leader's the messages: one published a moment after the creation may be
// stamped before it by a stream leader whose clock is behind. A deleted
// stream's messages are older than its deletion, which both creators of a
// stream (the consume loop and the publisher) found RecreateSettle before
// they created it again.
const clocksApart = RecreateSettle / 2

// checkRecreatedStream checks a stream that this instance created again
// (info, its info as the create or a read answered it): the request
// stream (RecreateRequestConsumer), or a results or dead-letter stream
// (JetStreamPublisher.RecreateStreams). It must hold no sequence older
// than itself (by more than clocksApart), which would be the deleted
// stream's (the server built it on that one's files, which it was still
// removing), and must take a write of its own settings (an update with
// them, which changes nothing, and which the server refuses once the
// stream's files are gone: an update refused with errCodeStreamUpdate).
// It deletes a broken stream unless it holds messages published since its
// creation (as it holds them when it is found broken), which it tells by
// their timestamps less clocksApart: a message stamped a moment before the
// creation may have been published since by a stream leader whose clock
// is behind, and deleting it would lose a message whose publication the
// server acknowledged. It returns an error wrapping ErrRecreatedBroken; a
// check that got no answer (a timeout), or whose update was refused for
// another reason (a leader election, insufficient resources), returns its
// error and deletes nothing. held names the stream's messages in the error
// ("request(s)"), and kept, when not empty, is added to the error of a
// stream left as it is: what to do about the messages published to it.
func checkRecreatedStream(ctx context.Context, js jetstream.JetStream, info *jetstream.StreamInfo, held, kept string) error {
	name, st := info.Config.Name, info.State
	deletedBefore := info.Created.Add(-clocksApart)
	var broken error
	if st.LastSeq > 0 && st.LastTime.Before(deletedBefore) {
		broken = fmt.Errorf("it holds sequence %d, of %s, older than itself (created %s): the server built it on the files of the deleted stream, which it was still removing, and takes them away from under it",
			st.LastSeq, st.LastTime.UTC().Format(time.RFC3339Nano), info.Created.UTC().Format(time.RFC3339Nano))
	} else if _, err := js.UpdateStream(ctx, info.Config); err != nil {
		if apiErr := (*jetstream.APIError)(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStreamUpdate {
			return fmt.Errorf("check stream %s, created again: %w", name, err)
		}
		broken = fmt.Errorf("the server refuses a write of its own settings (%w): its files are gone, removed with the deleted stream's", err)
	}
	if broken == nil {
		return nil
	}
	// As it is now: it may have taken messages since info was read.
	now, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s %w: %w; reading it again failed: %w", name, ErrRecreatedBroken, broken, err)
	}
	st = now.CachedInfo().State
	if st.Msgs > 0 && !st.LastTime.Before(deletedBefore) {
		return fmt.Errorf("stream %s %w: %w; it holds %d %s published since its creation, so it was left as it is: look at it (nats stream info %s), and delete it (nats stream rm %s) for the consumer to create it again%s",
			name, ErrRecreatedBroken, broken, st.Msgs, held, name, name, kept)
	}
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s %w: %w; deleting it failed (%w): delete it (nats stream rm %s), and the consumer creates it again",
			name, ErrRecreatedBroken, broken, err, name)
	}
	return fmt.Errorf("stream %s %w: %w; deleted it, to create it again", name, ErrRecreatedBroken, broken)
}

// errCodeConsumerWrite is the server's error code for a consumer create
// or update that failed other than with one of the API's own errors
// (JSConsumerCreateErrF), as a write of the durable's files does: the
// update of a durable whose files are gone is refused with it ("open
// …/obs/<durable>/meta.inf.tmp: no such file or directory"). An update
// with the durable's own settings meets none of the other failures it
// stands for (a setting that cannot change). A refusal for a passing or
// another reason (a leader election in a cluster, insufficient
// resources, a limit) has a code of its own, and says nothing of the
// durable's files: the durable's counterpart of errCodeStreamUpdate.
const errCodeConsumerWrite = jetstream.JSErrCodeConsumerCreate

// checkRecreatedDurable checks the durable request consumer that this
// instance created again (info, its info as the create, or a read,
// answered it): it must take a write of its own settings, which the server
// refuses once a deleted durable's removal took its files (an update
// refused with errCodeConsumerWrite). It deletes a broken durable (which
// loses nothing: the requests stay in the stream, and a durable created
// again delivers them again) and returns an error wrapping
// ErrRecreatedBroken. A check that got no answer (a timeout), or whose
// update was refused for another reason (a leader election, insufficient
// resources), returns its error and deletes nothing: the durable may work,
// and may have delivered requests since (an earlier try's, whose answer
// was lost), whose redelivery state a deletion would lose; the next try
// finds it there and checks it again.
func checkRecreatedDurable(ctx context.Context, js jetstream.JetStream, info *jetstream.ConsumerInfo) error {
	_, err := js.UpdateConsumer(ctx, info.Stream, info.Config)
	if err == nil {
		return nil
	}
	if apiErr := (*jetstream.APIError)(nil); !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeConsumerWrite {
		return fmt.Errorf("check consumer %s on %s, created again: %w", info.Name, info.Stream, err)
	}
	broken := fmt.Errorf("the server refuses a write of its own settings (%w): its files are gone, removed with the deleted durable's", err)
	if err := js.DeleteConsumer(ctx, info.Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s on %s %w: %w; deleting it failed (%w): delete it (nats consumer rm %s %s), and the consumer creates it again",
			info.Name, info.Stream, ErrRecreatedBroken, broken, err, info.Stream, info.Name)
	}
	return fmt.Errorf("consumer %s on %s %w: %w; deleted it, to create it again", info.Name, info.Stream, ErrRecreatedBroken, broken)
}
