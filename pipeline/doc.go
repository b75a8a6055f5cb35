// Package pipeline turns invoice requests into invoices, exactly once:
// decode → look up the order → talk to the provider → save → publish → ack.
//
// Pipeline.Process handles one delivery and returns an Outcome; it never
// acknowledges anything itself. Loop pulls from the durable JetStream
// consumer, runs Process on a fixed pool of workers and is the only place
// that acks, naks, terminates and logs (one line per message). A durable
// that the server no longer has (the request stream deleted, or the durable
// alone) is created again with the instance's settings, a moment later
// (RecreateSettle) and checked: one that the server broke, creating it on
// the deleted one's files or removing its own with them, is deleted and
// created again (LoopConfig.Recreate, Topology.RecreateRequestConsumer,
// ErrRecreatedBroken); until then Loop.Missing says why nothing is taken.
// A results or dead-letter stream deleted while the consumer runs is
// created again by the publisher that finds it missing, as late and
// checked as much (JetStreamPublisher.RecreateStreams).
//
// # Processing one message
//
//  1. Decode and validate (schemas.Validator). Not a readable JSON request →
//     dead letter "malformed", Term. Invalid → "rejected" result with every
//     violation, Ack.
//  2. Look the order up in the store and apply the fingerprint rules
//     (schemas.Decide). Issued or rejected with the same fingerprint → the
//     stored result again, no provider call. A different request reusing a
//     taken order number → "conflict" result. So does a different request
//     published before the one that the order's rejected or failed record
//     holds (a copy of an older request delivered again after its
//     correction was answered; a replayed dead letter's that the record
//     lists as superseded), instead of starting the order over: the record
//     keeps where and when its request last entered the request stream
//     (the same request published again moves it), a replay says where and
//     when its request first did (HeaderReplayPosition,
//     HeaderReplayPublished), and two requests delivered through the same
//     durable are ordered by their stream sequences, others by the
//     server's timestamps (OrderRecord.RequestStreamSeq,
//     RequestPublishedAt). One delivery of
//     an order is processed at a time: a delivery that finds another
//     delivery of its order in progress (a copy of the request, a
//     corrected one, a redelivery racing a slow worker) does not wait for
//     it, which would hold a worker for as long as the other talks to the
//     provider, nor is it put back, which the server counts as a
//     delivery: the consume loop keeps it, without a worker and under its
//     InProgress keep-alive, until the other lets go of the order, then
//     processes it again, as it would have been handled once the other is
//     done (Loop.park; the deliveries waiting for one order are woken one
//     at a time, in the order they began to wait; nothing depends on it).
//     So a burst of copies of one order holds one worker, not all
//     of them, is decoded once per turn rather than at every put-back, and
//     is not given up because the first copy took long, even after a
//     restart, which forgets what the loop counted in memory. A stop puts
//     the waiting deliveries back (event "busy"), as it does the pull
//     buffer's.
//  3. Claim the order durably (state submitting) before calling the
//     provider. Opt-in (Pipeline.WatchBacklog; the consumer's
//     --jumdata-no-claim): a new order for a provider that answers a
//     repeated submission from the first one for a while (jumdata's
//     taskId, 8 hours less a clock margin: providers.RepeatableSubmitter)
//     is not claimed while no request has waited in the stream longer than
//     that (Backlog). Until its answer is saved the order is claimed in
//     memory. Before such a submission the request stream's unclaimed mark
//     (Marks) is raised durably past the request (rarely: far ahead, in the
//     background, and Loop.Run waits for a raise under way before it
//     returns); when a consumer starts, RecoverUnclaimed records the
//     order of every request delivered and not acknowledged below the mark
//     as a claim would have. This takes an fsync off every such invoice's
//     way to its result, at the costs Backlog lists. An order that may already be at the provider (submitting,
//     accepted, action_required, failed after a submission) is queried
//     first and submitted again only when the provider has no record of it.
//     An answer lost in transit (providers.Unknown) is reconciled by a query
//     at once, unless it asked for time (Outcome.RetryAfter, a 503's
//     Retry-After): then the request is put back for that long, its record
//     still submitting, and the next delivery asks; on the request's last
//     allowed delivery, which has no next one, it is asked at once all the
//     same, before the request is given up. A corrected request (another fingerprint) for an order whose
//     earlier request was submitted and then given up as failed is not
//     submitted until the provider has been asked after the earlier one
//     (providers.Call.Earlier): issued after all → the earlier record is
//     saved as issued and the corrected request gets a "conflict" naming
//     the invoice; the provider cannot tell (jumdata, which finds orders
//     by their content) → "conflict" saying how to settle it; still under
//     way → Nak; nothing there → submitted. A corrected request for an
//     order whose task the provider refused for good
//     (providers.ErrSubmissionRefused, OrderRecord.Refused) counts a
//     restart (OrderRecord.Restarts, providers.Call.Restarts), under which
//     jumdata names the task anew; any other rejection keeps the task's
//     name, under which the provider may still be working.
//  4. Apply the answer: issued → save and publish at once, ack; accepted → save, Nak on
//     the polling schedule; retry → Nak with exponential backoff and jitter
//     over the failures in a row (OrderRecord.Failures, which an accepted
//     answer starts again), at least the provider's hint (a query's too,
//     when it leaves the order accepted or in doubt); rejected → save,
//     publish, ack;
//     action required → publish one "action_required" result per episode,
//     hold the seller (its other orders wait without calling the provider,
//     one probe per HoldProbe; other sellers carry on).
//  5. On the last allowed delivery (Config.MaxDeliver) a request still
//     waiting is given up: saved as failed, "failed" result and a full dead
//     letter published and acknowledged by the streams, then Term. A red
//     confirmation form waiting for the other party to confirm it is polled
//     for Config.RedConfirmWait instead, its polls not counted.
//
// Effects come in the order save → publish → ack, so a crash at any point
// is repaired by redelivery. An issued invoice is the one exception: its
// result is published while its record is saved (store.DB.PutPatient), and
// the request is acked once both are done. The invoice exists at the
// provider by then and the claim is on disk, so a delivery after a crash,
// or after a save that failed, finds the order claimed, queries the
// provider, gets the same invoice and saves it: the result was true
// either way. This takes an order-store commit off every invoice's way to
// its result. Every result carries a Nats-Msg-Id derived from the
// request's stream sequence and publication and the result's status
// ("result:<stream>:<seq>:<status>:<t>", ResultMsgID; the publication
// tells apart the requests of a stream deleted and created again, which
// numbers them from 1 again), so republishing the
// same outcome after a crash is deduplicated (within the streams'
// Duplicates window, 10 minutes by default), an outcome that changed
// between two deliveries of one message is published too, and a second
// copy of a request gets its own, identical, result. A delivery after the
// window publishes the result again under the same id, and the stream
// keeps both: subscribers are told to act on results idempotently (README,
// Results). The action_required result is the exception: one is published
// per episode of a seller's hold, under "action:<seller>:<episode>" (the
// episode's start in Unix nanoseconds, or one more than the last episode's
// number when that is larger), so that a hold that starts again after it
// ended is announced again, whichever request meets it.
//
// # Throughput
//
// A result that ends in an Ack is published asynchronously: the worker
// hands the message to one of a few ackers and takes the next one, and the
// acker acknowledges the request once the result stream has acknowledged
// the result (Outcome.Published); a result that cannot be published puts the
// request back instead. Nothing is acked before it is saved and published;
// only the waiting moves off the worker.
//
// The PDFs of issued invoices are kept by a DocumentKeeper in the
// background, so that downloading them and writing them to the object
// store never delays a result. It works from the order store's
// pending-documents index, which the issued write fills, and yields to the
// requests while they are behind (Loop.Behind: more requests waiting
// undelivered than there are workers): during a burst it keeps one order's
// PDFs every 100 ms and catches up once the backlog is gone. In a 50,000
// request run that took the extra fsyncs and CPU of about 25,000 PDFs off
// the requests' path. What it has not kept yet is fetched when first asked
// for.
//
// # Sizes
//
// Whatever a request holds, its result and its dead letter fit the server's
// payload limit: a result lists the violations (and the warnings) that fit
// 24 KiB of text and ends the list with a "more_not_listed" entry counting
// the rest and all of them (a request of 2,000 lines with two warnings a
// line has 1.4 MB of them; the warnings' entry says that they did not stop
// the request, not to send it again); a dead letter carries at most 16 KiB of the original headers
// (HeadersCutHeader says what was left out) and the body up to the
// validator's size limit. A dead letter that still cannot be published is
// published without body and headers on the message's last delivery, so a
// malformed message is never put back forever. The reason a message is
// terminated with, which the server takes as a message too, carries its
// error clipped as the dead letter does (a syntax error names the JSON
// path it is in, which a request can make over a megabyte long), and every
// termination's reason is clipped to 1 KiB. A provider's message is
// clipped to 4 KiB wherever it is copied (results, records, dead letters,
// a held seller's reason): its answers are read up to 4 MiB. The log line
// of a processed message clips its error to 64 KiB, a panic's stack
// included.
//
// # Streams
//
// Topology describes the three streams (requests on work-queue retention,
// results and dead letters on limits retention) and the durable consumer,
// optionally partitioned by seller with a stream subject transform, and
// creates or updates them idempotently. EnsureAlone refuses a start while
// another client pulls from the durable: each instance's order store is its
// own, so one durable must have one instance. WatchOwner keeps that true
// for instances that passed the check together: each writes itself into
// the durable's metadata, and the one that started later stops, unless the
// earlier one could not read the durable for long meanwhile (cut off from
// the server): the later one is then its successor, and the earlier stops.
//
// # Metrics
//
// NewMetrics registers the pipeline's Prometheus metrics (messages by
// event, processing and provider-call latency, backlog, orders by state);
// Metrics.TimedStore wraps the order store so that the latency of each save
// is recorded too, the ones a request waits for apart from the patient ones;
// NewStoreCollector exports the order store's group-commit counters, whose
// commit-time rate shows when the store's disk is the limit.
// deploy/prometheus/invoicer-alerts.yaml alerts on both.
package pipeline
