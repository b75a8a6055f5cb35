// Package jumdata is the client of jumdata's tax/v3/makeout API (seed 004):
// it issues fully digital blue invoices and reverses them with red
// invoices through the tax bureau, for one seller per Client, behind the
// providers.Provider interface.
//
// # Calls and signing
//
// Every call is a POST of an application/x-www-form-urlencoded form to
// BaseURL + "/tax/v3/makeout/<endpoint>" carrying appId, timestamp (Unix
// milliseconds), sign = lower-case hex sha256(appId + appSecret + timestamp)
// (see Sign; the business parameters are not signed), the seller's login
// (nsrsbh, dq, gryhm, token) and the endpoint's parameters. The answer is
// {code, msg, charge, taskNo, data}; code is read whether it is a JSON number
// or a string. Every call waits for the seller's Limiter and is reported to
// the Observer.
//
// # Blue invoices: the taskId and its 8-hour life
//
// Submit of an issue request calls blue-invoice/submit with taskId =
// TaskID(seller, orderNo, providers.Call.Restarts) and invoiceData =
// NewInvoiceData(request).Encode(). jumdata keeps a taskId 8 hours: within
// them, the same taskId with identical parameters is the same task,
// answered 202 (in progress) until it answers 200 with the invoice (fphm,
// kprq). The mapping is deterministic, so "identical" holds byte for byte
// across deliveries and processes. A task the tax bureau refused (399)
// keeps its taskId too: a corrected request for the order, which the
// pipeline counts as a restart, goes under the next taskId, since under
// the refused one jumdata would refuse other data (400) or answer the
// refusal again for 8 hours.
//
// The invoiceData format is not public: this project's assumption (the tax
// bureau's field names, plus the order number in ddh) is documented field by
// field in invoicedata.go, the one file to change if jumdata's real format
// differs. The sandbox (providers/sandbox) checks the same format.
//
// Query of an issue request, with the first submission's time
// (providers.Call.SubmittedAt):
//
//   - never submitted (zero SubmittedAt): NotFound, no call;
//   - within TaskIDLife less a clock margin (10 minutes): blue-invoice/submit
//     again with identical parameters: 200 Issued, 202 Accepted. If the
//     original call never reached jumdata this creates the task, which is
//     safe (the taskId makes it the one task of the order) and is what the
//     pipeline's next Submit would have done. A 400 to the repetition is
//     checked against blue-invoice/query, and answered Retry when no
//     invoice is listed: the task may still be under way (the data sent
//     changed with the configuration, say), and past the taskId's life
//     the search decides. With
//     providers.Call.LookOnly (a request that must not be submitted) it
//     searches blue-invoice/query instead, as below, and answers Retry
//     (providers.CodeLookOnly, RetryAfter the taskId's time left) when it
//     finds nothing: the task may still be under way;
//   - after it (jumdata has forgotten the taskId): blue-invoice/query over the
//     days since SubmittedAt, every page: first the buyer's invoices
//     (dfnsrsbh) when the buyer has a tax number, then, if none of them
//     matches or that list cannot be read, the whole list, since only it
//     can tell that nothing was issued. An invoice is the order's when the
//     list carries an order number (ddh; the document's example has none)
//     equal to ours, or else when it is a blue invoice of this seller for the
//     same buyer tax number (and buyer name, where listed), with hjje, hjse
//     and jshj equal to the order's totals, issued no earlier than
//     SubmittedAt less the margin. One match is Issued, none NotFound,
//     several ActionRequired ("ambiguous": guessing would lose or duplicate
//     an invoice). A forgotten taskId is never submitted blindly.
//
// # Red invoices
//
// Submit of a red_confirm request calls red-invoice/submit with lzfphm (the
// blue invoice's number), lzkprq (the request's blueInvoiceTime extension;
// without it the request is Rejected with Field redConfirm.blueInvoiceTime
// and nothing is sent), chyydm (RedReasonCode: Nuonuo's 1 and 2 are the tax
// bureau's 02 and 01) and hzmx (RedLines, empty for a full reversal). A 200
// carrying the red invoice (fphm) is Issued; one carrying the confirmation
// form's uuid is Accepted with Refs.BillNo = uuid (an assumption: the
// document's example shows data {}); one carrying neither is Accepted
// without a reference, and so is a 202 (in progress: the submission was
// taken, and a red submission has no taskId to repeat it by). Query asks
// red-invoice/result by Refs.BillNo (200 Issued, 202 Accepted) or, without
// a uuid, searches: red-invoice/query for a red invoice reversing lzfphm
// issued since the submission (with the hzmx totals for a partial
// reversal; for a full one, not with amounts other than the blue
// invoice's: the list dates a red invoice by its issue, so another order's
// partial reversal made before the submission may be listed), then the
// blue invoice's hzqrxxuuid
// (blue-invoice/query): its latest confirmation form, which may be another
// order's (a blue invoice reversed in parts has a form per reversal), and
// whose red-invoice/result answers say nothing of whose it is. The form is
// the request's only when its red-confirmation/detail (an assumption: the
// document's example shows no data) or its red invoice tie it to the
// request: made or issued since the submission, with the hzmx totals (a
// partial reversal) or the whole blue invoice (a full one). One made or
// issued before the submission shows that the request's was never made:
// NotFound, whether it is pending, issued or refused. Another order's form
// (the detail names another blue invoice, reason or amounts) is never
// taken, since the request's own form may be hidden behind it: when jumdata
// accepted the submission, Accepted without the form's uuid while the form
// is pending (the search goes on at every Query) and Retry (not_listed)
// otherwise; else ActionRequired ("ambiguous"). A form nothing ties to the
// request nor rules out (a detail without data, as in the document) is
// taken as the request's, as before the detail was read: it is the form the
// submission made unless another reversal of the blue invoice came after
// it. A 399 to a
// Submit made after an earlier submission (providers.Call.Resubmission:
// "蓝票没有可红冲的金额,不可再次红冲!") is reconciled by that search before it
// is reported as Rejected; a first submission's 399 is Rejected at once, so
// that another order's reversal of the same blue invoice is never taken
// for this one's.
//
// A form the tax bureau does not issue at once is issued with the seller's
// confirmation (seed 004 §5: "如果未直接开具,则需要使用确认单uuid开具红票"):
// when red-invoice/result still answers 202 Config.RedConfirmAfter (a
// minute) after the submission, Query sends red-confirmation/confirm with
// the uuid, once per form (Refs.ConfirmedForm), and polls again. A 202 does
// not say whether the form waits for the seller or for the buyer; a form
// waiting for the buyer has the confirmation refused, and the refusal (399,
// 400, a code the table does not list, 404) is kept in the form's message
// while it is polled as before; so is 601 or 604, the endpoint not enabled
// for the account, which holds no seller (a person confirms the form in the
// tax bureau's system). A corrected
// request's look at an earlier form (providers.Call.Earlier) and a request
// only finished (LookOnly) never confirm; the former answers the earlier
// form's red invoice with the amounts jumdata gives and the earlier
// request's billId (Refs.BillID), since the corrected request's hzmx and
// billId are not the earlier request's.
//
// A reissue has no jumdata counterpart: Submit and Query answer Rejected with
// Code "unsupported" and Err wrapping providers.ErrUnsupported, as they do
// for red orders and invoice lines jumdata cannot issue.
//
// # Classification
//
// One table (classify.go) maps every answer to a providers.Class:
//
//	200                                 success: the endpoint's data decides
//	202                                 Retry on Submit (ask again, identical), Accepted on Query and on a red Submit; RetryAfter = PollAfter
//	301 302 303 311 312 601 602 604 607 ActionRequired (login, token, face scan, account, IP)
//	404                                 ActionRequired (wrong endpoint address: configuration)
//	399 400                             Rejected (the message says why). But: a look-up's refusal
//	                                    (a list endpoint; a repetition of a blue task refused for
//	                                    its data, with no invoice listed) is Retry, since it says
//	                                    nothing of an order jumdata may be working on; 399 to
//	                                    blue-invoice/submit, a first call or a repetition, is the
//	                                    tax bureau refusing the task itself and wraps
//	                                    providers.ErrSubmissionRefused (a corrected request goes
//	                                    under the next taskId); a 400 whose message names the
//	                                    signature, the timestamp or appId (签名, 时间戳, appId,
//	                                    appSecret, timestamp, sign) is ActionRequired: a wrong
//	                                    appSecret or a skewed clock refuses every order alike
//	500 501                             Retry
//	606 609, HTTP 429                   Retry, and the Limiter is throttled
//	transport, timeout, HTTP 408, 5xx,  Unknown on Submit (in doubt: query before anything else),
//	unreadable or oversized answer      Retry on Query
//	other HTTP status (3xx, 4xx)        ActionRequired (configuration or network path)
//	any other code                      Rejected on Submit, Retry on Query (a poll of an accepted
//	                                    order is not refused for an answer it cannot read); code kept
//
// plus the client's own decisions: "unsupported" and "invalid" (Rejected,
// nothing sent; these, "seller_mismatch" and "not_sent" are
// providers.Outcome.Local), "ambiguous" (ActionRequired), "incomplete" and "not_sent"
// (Retry), "seller_mismatch" (ActionRequired), and "not_listed" (Retry: a
// red submission jumdata accepted without a form uuid that its lists do not
// show yet, Call.Accepted; a red submission has no key to repeat it by, so
// NotFound would risk reversing twice).
//
// An answer's HTTP Retry-After header (a 429's or a 503's: seed 004 documents
// none, but it is standard HTTP) is read with providers.ParseRetryAfter, at
// most providers.MaxRetryAfter, and becomes the outcome's RetryAfter where it
// asks for longer than the row's own hint (PollAfter for a 202); a throttling
// answer pauses the Limiter for it too, instead of a second.
//
// # Face authentication
//
// jumdata answers 311/312 until a person scans a QR code with the 个税 or
// 税务 app. The pipeline parks the seller (ActionRequired); an operator uses
// FaceAuthQRCode and FaceAuthResult to authenticate, and the parked work
// resumes.
package jumdata
