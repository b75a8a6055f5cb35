// Package schemas is the wire contract of the invoicing consumer: the request
// that order systems publish, the result event downstream services read, the
// dead letter SREs replay, the subjects they travel on, and the validation
// that answers a bad request with a precise error before any provider is
// called. It imports nothing else of this module.
//
// # Contract documents
//
// The JSON Schema (draft 2020-12) files in this directory are the contract
// and are embedded in the binary:
//
//	invoice-request.schema.json     published on invoice.request.<sellerTaxNum>
//	invoice-result.schema.json      published on invoice.result.<status>.<sellerTaxNum>
//	invoice-deadletter.schema.json  published on invoice.dlq.<reason>.<sellerTaxNum>
//
// Request, Result and DeadLetter are their Go types.
//
// # Validation
//
// Validator.Decode reads one message in three steps:
//
//  1. Limits: size, UTF-8, nesting depth, JSON syntax, a top-level object.
//     A message failing them is malformed (*MalformedError) and is
//     dead-lettered, since no result can be addressed for it. The bytes are
//     read with jsontext (github.com/go-json-experiment/json) into the tree
//     encoding/json's decoder would build, numbers as json.Number; a test
//     and a fuzz target hold the two readers to the same answers.
//  2. The JSON Schema, enforced by github.com/santhosh-tekuri/jsonschema/v6:
//     required fields, types, maximum lengths, enumerations, formats,
//     unknown fields (refused, never dropped), and the rule that exactly the
//     body matching kind is present.
//  3. The domain rules of the providers, in Go with shopspring/decimal, on the
//     typed Request built from the tree the schema checked (the bytes are
//     parsed once, and a key given twice counts with its last value
//     everywhere; a field of the wrong JSON type is left empty, has its type
//     violation alone, and the rules check every other field; the codes
//     named here are a Nuonuo seller's, and Provider codes below says which
//     a jumdata seller's name): amount
//     lengths (16 characters, a red amount's minus sign included; E9124,
//     E9126 and E9128 for an order line's three amounts; for a jumdata
//     seller also as its mapping sends them, every amount of money with
//     two decimals and one the line does not give as derived, 400), amount
//     arithmetic (E9130; for a jumdata seller, whose mapping sends the
//     amount without tax and the tax alone, this service's own rule), the
//     0.06 per-line and 1.27 per-invoice tax
//     tolerances (E9131) on the amounts the provider works with (an amount or
//     tax the line does not give derived as the provider does,
//     LineFigures.Effective: for a Nuonuo seller a line that leaves any of
//     its three amounts out is computed from price × num and the rate, the
//     amounts it gives set aside, as seed 001 says, and each amount it
//     gives is held to the one Nuonuo computes, RuleComputedAmount: more
//     than 0.06 apart refused, by this service's own rule, closer a
//     warning, naming the figure Nuonuo will issue; the jumdata mapping
//     derives it from the amounts given; a tax the provider computes from the rate is held
//     to the per-invoice tolerance only, its rounding included; the lines of
//     a red confirmation form, which issues a red invoice of those lines,
//     are held to both, RedLineFigures.Effective),
//     the signs of amounts, taxes, prices and quantities (a price is
//     positive, never zero; a blue goods line's zero tax is written
//     without a minus sign, which says a negative figure, for every
//     seller, as the contract's sign convention is one for every
//     provider; an amount
//     without tax or a tax the line does not give held to them as
//     derived: a price × num rounding to 0.00 is no amount, and a
//     deduction larger than the amount makes no tax),
//     price/quantity/amount combinations (for a Nuonuo seller E9123 for an
//     empty price and E4000 for a price without num on a line that leaves
//     an amount out; for a jumdata seller a line that gives no amount, nor
//     price and num to stand in for one; a red confirmation line that
//     gives neither taxExcludedAmount nor num and taxExcludedPrice, E4000;
//     price × num
//     against the amount the price is quoted in, given or derived from the
//     others, which no document says Nuonuo refuses on a line whose
//     amounts it issues as given, so that for a Nuonuo seller it is this
//     service's own rule (no code; on a red confirmation's lines too), and
//     for a jumdata seller 400, as its mapping sends dj × spsl beside the
//     amounts, and held to the amounts sent (je + se for a price with
//     tax, not a taxIncludedAmount unlike them, which amount_sum refuses
//     by this service's own rule): PriceAmountTolerance, on the lines whose amounts are issued as given:
//     a Nuonuo seller's line that leaves an amount out is computed from
//     price × num, and the amounts it gives are held to RuleComputedAmount
//     instead), the
//     discount-line rules (E9105, E9108 on the amounts given or derived,
//     E9110–E9119), the tax-rate set (a
//     rate of at most 10 characters), 19-digit goods codes (E9121, E9138), the
//     remark limit of fully digital invoices (200 characters; which
//     invoiceLine values are fully digital depends on the seller's provider,
//     see ValidatorConfig.Providers), pushMode contact rules (a Nuonuo
//     seller's: the jumdata mapping drops them), favouredPolicyName for
//     favouredPolicyFlag 1 on a Nuonuo seller's tax-control invoice (seed
//     001: 全电发票时为空, so not on a fully digital one), motor vehicle
//     (j) and used car (u) invoices' fields (checkVehicleOrder; a used car
//     invoice's buyer and seller details), the buyer's tax number on a special
//     VAT invoice (invoiceLine s, b, bs, es), red-invoice references (a red
//     special invoice's billInfoNo, named in its remark as seed 001 requires),
//     seller consistency (E9302) and tax-number check characters (a warning
//     unless ValidatorConfig.StrictTaxNumbers; a buyer's number may be a GB
//     11643 resident ID number instead), and deduction taxation's limits
//     (checkDeductions: a zero deduction is "0" or "0.00", this service's
//     own rule, as no document says a provider refuses another spelling
//     of zero; for a Nuonuo seller
//     one line at most, and no zero (0.00, or 0.0, which seed 001 reads as
//     deduction taxation too) on a fully digital invoice, beside
//     deduction_zero;
//     checkDeductionAmount: for every seller, no deduction larger than its
//     blue goods line's amount, whatever the rate and whether the tax is
//     given or derived, E4000, for a jumdata seller 400; checkDeductionSign:
//     no negative deduction on a blue goods line, E4000, for a jumdata
//     seller 400).
//
// Every violation is reported, not only the first (up to MaxViolations, then
// one entry counting the rest; lines past the 2000 a list may hold are not
// checked), each with its field path (order.invoiceDetail[2].tax), a
// message a person understands, and the provider code it pre-empts. A
// figure written too long or too precisely whose value can be read and
// written within its limit (00000000000100.00, -50.001) is judged by the
// other rules on that value, rounded to the places the field allows (as
// the jumdata mapping sends money), so that its other problems (a sign, a
// tax off the rate, which jumdata answers with 400) come with the
// spelling's, not after it is corrected (collector.addSpelling); a value
// that cannot be read or is too large for its field however written, and
// one the JSON Schema refused, are not judged again, nor is what is
// derived from a figure with a violation of its own.
//
// # Provider codes
//
// A violation names the code the seller's provider would answer the
// request with, or none where the rule is this service's own:
//
//   - For a Nuonuo seller (and a seller ValidatorConfig.Providers does not
//     list), Nuonuo's: seed 001's code where it names one, else E4000,
//     its code for a private parameter that is missing or wrong (a tax
//     rate outside the set, a sign, a precision).
//   - For a jumdata seller, 400 (参数错误) where the jumdata mapping
//     (providers/jumdata) sends the figure a rule checks and jumdata
//     refuses it, as the jumdata sandbox does, which checks the project's
//     invoiceData format: the amount without tax and the tax (je, se) of
//     the wrong sign, off the rate (the 0.06 per line and 1.27 per invoice
//     of E9131) or longer than 16 characters as the mapping writes them; a
//     figure's text too long or too precise where it is so as the mapping
//     writes it too (sentAs: je, se and kce with two decimals, dj and spsl
//     as their shortest exact decimal, at most 16 characters and 8
//     decimals; sl one of the rates); a
//     deduction (kce) that is negative or larger than its line's amount;
//     price × num (dj × spsl) against the amount; a price of zero beside
//     its quantity; a goods code (spbm) of other than 19 digits; a rate
//     (sl) outside the set; a discount line out of place, naming other
//     goods, at another rate or larger without tax (je) than its line;
//     the remark of a fully digital invoice; a special invoice (b, bs:
//     fppzdm 01) without the buyer's tax number; a red confirmation's
//     blue invoice number (lzfphm) of other than 20 digits and its lines'
//     (hzmx) je and se as a blue line's. None where jumdata would take
//     what a rule refuses, or is never sent it (providerCode): this
//     service's own rule where the request is wrong by its own contract (a
//     figure's text too long or too precise that the mapping sends
//     otherwise, as 100.00 for 00000000000100.00 or 13.00 for 13.001, or
//     does not send, or cannot read; a line's taxIncludedAmount, which the
//     mapping does not send: its sign, its sum, a discount larger with
//     tax; a quantity's sign, which
//     jumdata does not look at, and a red confirmation price's; a line
//     that gives no amount, an order's or a red confirmation's; a tax of -0.00, which the mapping sends as
//     0.00; salerTaxNum or sellerTaxNo unlike the envelope's seller, which
//     the mapping sends instead; an invoiceDate or a blue invoice time
//     that is no date and an email that is no address; a zero-rate flag
//     beside a rate; a red confirmation without blueInvoiceTime, jumdata's
//     lzkprq (seed 004 requires it, and the adapter sends nothing
//     without it); every rule of a request the jumdata adapter refuses as
//     unsupported before any call, jumdataSends, and the request itself,
//     RuleUnsupported on each field the adapter would name
//     (checkJumdataSupport): a reissue, a red order, an invoiceLine other
//     than bs, b, pc, p and "", specificFactor, proxyInvoiceFlag 1, a red
//     confirmation of an invoice that is not fully digital), and no violation where a
//     rule is Nuonuo's own requirement, of what the mapping drops or
//     jumdata does not take (seed 001's E9123: a line without a price
//     gives no quantity and all three amounts, as the jumdata mapping
//     derives what a line leaves out and sends a quantity only with its
//     price; a price without num on a line that leaves an amount out; one
//     deduction an invoice; no 0.00 deduction on a fully digital invoice;
//     pushMode's contacts; the buyer's address and telephone together;
//     the roll of paper invoices, nextInvoiceCode, of an order or a
//     reissue; favouredPolicyName; a motor vehicle or used car invoice's
//     details; a red order's references; a red confirmation's sellerName
//     when the buyer applies, a VAT blue invoice's code and number and
//     seed 002's order of the lines).
//   - For every seller, none: the envelope (schemaVersion, kind,
//     sellerTaxNum and orderNo against the subject) is this service's own
//     contract, and so are unknown fields, control characters, an
//     order.orderNo unlike the envelope's, a strict tax number check and a
//     zero deduction written otherwise than "0" or "0.00" (deduction_zero:
//     it says neither none nor nothing deducted for sure, and no document
//     says a provider refuses it). For a Nuonuo seller also price × num
//     against the amounts of a line it issues as given (price_quantity,
//     which no document says it refuses), an amount a line gives that
//     Nuonuo sets aside for one it computes more than 0.06 away
//     (RuleComputedAmount: Nuonuo would issue its own figure) and an
//     amount or tax it sets aside that has the wrong sign (rule sign:
//     Nuonuo would issue its own figure, but the request's sign
//     convention is one for every provider), and a tax rate of the set
//     written longer than 10 characters (0.060000000: the Nuonuo adapter
//     sends a rate as its shortest decimal, 0.06, sentAs.nuonuoCode; a
//     longer rate outside the set names E4000).
//
// The JSON Schema's violations (types, required fields, lengths,
// enumerations, patterns, more than 2000 lines) hold every seller to one
// contract, and name the code of the seller's provider by the same
// convention, field path by field path: Nuonuo's (providerCodes, else
// bodyCode) for a Nuonuo seller; for a jumdata seller whose request the
// adapter sends, the code jumdataSchemaCodes gives, 400 where the jumdata
// mapping sends the field as written and jumdata refuses it (buyerName
// empty, gmfmc; a remark over 230, over bz's 200 too, its message naming
// 200, remarkTooLong, as a fully digital invoice's of either provider's
// does; more than 2000 lines, mxlist; a line's goodsName missing or over 90, spmc; a goodsCode not
// digits or over 19, spbm; an invoiceLineProperty other than 0, 1 or 2,
// fphxz; a red confirmation's blueElecInvoiceNumber over 20, lzfphm, and
// its lines' goodsName empty, hzmx spmc), and none, this service's own
// rule, for any other: a field the mapping drops or sends unchecked, a
// value the adapter refuses before any call (an amount it cannot read, a
// type error, a missing rate, an order without lines), more than 2000 red
// confirmation lines.
//
// # Money
//
// Amounts are Amount values: decimal strings on the wire (JSON numbers are
// accepted and read as their literal text, never as float64) and
// decimal.Decimal in code. An Amount marshals back to the exact text it was
// read from, so a request forwarded to a provider carries the seller's own
// figures.
//
// # Idempotency
//
// Fingerprint gives a canonical hash of a request, stable across key order
// and whitespace. OrderRecord, CheckTransition and Decide define the order
// state machine and the fingerprint rules the order store enforces: a
// repeated request gets the stored answer, a different request reusing an
// issued order number is a conflict, and a rejected or failed order may start
// over only with a corrected request.
package schemas
