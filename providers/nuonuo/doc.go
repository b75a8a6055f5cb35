// Package nuonuo is the Nuonuo open platform (诺诺开放平台) client: a
// providers.Provider that issues invoices with requestBillingNew, applies
// for red-letter confirmation forms with saveInvoiceRedConfirm and retries
// failed invoices with reInvoice, and follows each with its query method.
//
// A Client is bound to one seller (the userTax header) and one app. It never
// logs; it reports every HTTP call to its Observer.
//
// # Calls
//
// Every call is a POST to <BaseURL>/open/v1/services with senid (32 hex, new
// per call), nonce (8 digits), timestamp (seconds) and appkey in the query
// string and the headers X-Nuonuo-Sign, accessToken, userTax, method and
// Content-Type (set with their exact case). The body is marshalled once;
// those bytes are signed and sent:
//
//	X-Nuonuo-Sign = base64( HMAC-SHA1( appSecret,
//	    "a=services&l=v1&p=open&k=" + appKey + "&i=" + senid + "&n=" + nonce + "&t=" + timestamp + "&f=" + body ) )
//
// (see Sign). Answers are {"code","describe","result"}; result is read as
// raw JSON first, since it is an object, an array or a string by method.
// Amounts are read from their literal text (strings or numbers) into
// schemas.Amount, never through float64. A code sent as a JSON number gets
// back the leading zero a number cannot carry (70201 is 070201, 203 is
// 0203), here and at the token endpoint.
//
// # What Submit and Query do
//
//	issue        Submit requestBillingNew {"order": ...}
//	               E0000 → Accepted (issuance is asynchronous), Refs.SerialNo = invoiceSerialNum
//	               E9106 (orderNo taken) → Query by orderNo and answer that; on a first
//	               submission (no Call.Resubmission: our own earlier one, if any, is not
//	               recorded) Rejected instead (field order.orderNo) when the order held is
//	               another's: its total differs (every line given all three amounts) or its
//	               buyer (payerName) does
//	               E9103 (blue invoice reversed already) on a Call.Resubmission → Query by
//	               orderNo and answer that when Nuonuo holds the order (the earlier
//	               submission reversed it); else, and on a first submission, Rejected
//	             Query queryInvoiceResult by serialNos (when known) or orderNos
//	               any entry 20/21 → Accepted; else any 22 → Rejected (code "22", failCause);
//	               else 2/24/3/31 → Issued with every invoice (an order splits into up to 10);
//	               no entry or E9500 → NotFound; an entry without a status → Retry
//	               (code unreadable), as for any answer that cannot be read
//	red_confirm  Submit saveInvoiceRedConfirm with billId = the request's, or BillID(seller, orderNo)
//	               E0000 → Accepted, Refs.BillID and Refs.BillNo (the form id)
//	             Query queryInvoiceRedConfirm {"identity","billId"} (a billStatus sent as a
//	               number, 4, is read as "04")
//	               billStatus 01/04 → Issued, with the red invoice when the form names its serial
//	               (Accepted while that invoice is being issued); an electronic form (blue
//	               line bs pc p b, issued automatically) without a serial yet → Accepted;
//	               a paper form → Issued with no invoice;
//	               02/03/15 → Accepted; 05–10/16 → Rejected (code = billStatus); no form → NotFound;
//	               a form without a billStatus → Retry (code unreadable), as for any answer
//	               that cannot be read
//	reissue      Submit reInvoice (fpqqlsh or orderno); E0000 → Accepted; E9613 → Retry
//	             Query queryInvoiceResult: 2/24 → Issued; 20/21 → Accepted;
//	               22 → NotFound (the reissue did not take: submit again); unknown → Rejected
//
// A red_confirm or reissue Submit that is refused with a code this package
// does not know is followed by one Query: a form or invoice that already
// exists (our own earlier call) is answered as such.
//
// # Classification
//
// One table (classify.go) maps every code to a providers.Class:
//
//	Rejected        E4000, E9101–E9131 (E9106, and E9103 on a resubmission, aside), E9138, E9154, E9301, E9302, E9338,
//	                0201, HTTP 4xx not listed below, and every code the table does not know
//	                (Outcome.Code keeps it)
//	Retry           E9613, 0200, 0202, 0203, 040102, 070201 and HTTP 429 (and the
//	                Limiter backs off), HTTP 408, token endpoint unreachable
//	ActionRequired  0701xx, 0703xx (070301 after one refresh, then at once until a call
//	                is accepted; see Tokens), 070204, 070401, 070501, 070601,
//	                HTTP 401/403/404/405, and a redirect (3xx: never followed, since it
//	                would turn the POST into a GET and carry accessToken elsewhere)
//	Unknown         transport error, timeout, HTTP 5xx, unreadable or oversized answer on
//	                Submit; the same on Query is Retry
//	NotFound        E9500 on Query (Rejected on Submit)
//
// On a Query, every Rejected code above is Retry: a refused query (a
// gateway's HTTP 400, a code the table does not know) says nothing of the
// order, which the platform may have accepted and be issuing. An order's
// own failure comes inside a query's answer, as a status.
//
// An HTTP 4xx whose body is the platform's envelope with a gateway code
// (07xxxx) is classed by that code, as under 200: a 070301 under a 401 is
// refreshed (see Tokens), a 070201 under a 429 throttles. The documents do
// not say which status the gateway uses; any other 4xx and every 5xx are
// classed by their status.
//
// An answer's HTTP Retry-After header (a 429's or a 503's: the documents
// give none, but it is standard HTTP) is read with
// providers.ParseRetryAfter, at most providers.MaxRetryAfter, and becomes
// the outcome's RetryAfter where it asks for longer than the client's own
// hint (a second for 070201 and 429); a 070201 or a 429 pauses the
// Limiter for it too. A 429 throttles the Limiter as 070201 does whatever
// its body: a bare one, a proxy's HTML page, an empty body, an envelope
// without 070201 (whose Outcome.Code is http_429).
//
// Rejected outcomes of kind issue carry Outcome.Field where the code pins a
// field: E9101 order.invoiceType, E9104 order.email, E9302
// order.salerTaxNum, and line codes such as E9130/E9131
// order.invoiceDetail[i].… when the message names the line ("第x行").
//
// # In-doubt calls
//
// A Submit whose answer was lost (timeout, reset, 5xx, garbage) returns
// Unknown: the order may exist. The pipeline must Query before submitting
// again; Query finds the order by orderNo (serial numbers are not needed),
// and only NotFound makes a new Submit safe. A resubmission that still
// collides answers E9106, which Submit reconciles by Query itself.
//
// # Tokens
//
// A Client sends either a static Config.AccessToken or one from a
// TokenSource. Self-use apps fetch tokens at POST <TokenURL> (production
// https://open.nuonuo.com/accessToken) with client_id, client_secret and
// grant_type=client_credentials; a token lives 24 hours and the endpoint
// allows only 50 calls per 30 days (070306, which becomes ActionRequired).
// So one TokenSource serves every worker, and its TokenStore every consumer
// instance:
//
//   - Token returns the cached token until RefreshBefore (1 h) ahead of its
//     expiry. Then one goroutine per process (single flight) reads the store;
//     if the stored token is fresh it is used, otherwise the goroutine takes a
//     lease (a compare-and-swap write of LeaseOwner/LeaseUntil), calls the
//     endpoint, and stores the new token. Other instances seeing the lease
//     keep using the old token while it is valid, or poll the store until the
//     new one appears. So there is one token call per expiry window however
//     many workers or instances ask.
//   - A failed call of the token endpoint (a refusal such as bad
//     credentials or 070306, an answer without a token, a timeout) is held
//     for RefusalHold (1 minute), doubled for each further failure in a row
//     up to an hour, and answered from memory, so that a busy consumer does
//     not spend the remaining calls on retries.
//   - On 070301 the platform "refresh once, then stop" rule applies. The
//     first 070301 of an incident invalidates the token (Invalidate marks the
//     stored token unusable, unless another instance already replaced it);
//     the call is repeated once with a fresh token, fetched once for all
//     workers, and never with the refused one (which a refresh under way
//     when the refusal came may still hand out). If the fresh token is
//     refused too, the answer is ActionRequired (code 070301, Err wrapping
//     ErrTokenMismatch, a message telling the operator to check the app key,
//     secret and the seller's authorization in the Nuonuo console), and from
//     then on Token fails fast with ErrTokenMismatch, so calls answer the
//     same without any HTTP call and without a token call. Once per MismatchHold (1 minute) one call
//     is let through with the token in hand; the incident ends when a call
//     is accepted (or the process restarts), and only then may a 070301
//     refresh again. So a persistent 070301 costs one token call per
//     process, plus the usual refresh ahead of expiry, however many messages
//     arrive; a single transient 070301 costs one refresh and the call
//     succeeds.
//
// TokenStore contract: Load returns the token and its revision, or
// ErrNoToken; Store writes only if the stored revision equals rev (0: the key
// must not exist) and otherwise returns ErrTokenConflict, writing nothing.
// The consumer implements it with a JetStream KV bucket (Get/Create/Update
// with the entry's revision); MemoryTokenStore is the in-process one.
//
// No error or outcome message carries the app secret or a token.
package nuonuo
