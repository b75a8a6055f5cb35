// Package schematest builds valid invoice requests for the tests of the
// packages that consume the contract (pipeline, cmd/consumer,
// cmd/publisher, deploy), so that each does not keep its own copy of a
// valid order.
//
// The order is one goods line of 技术服务费 at 6%: price 106, num 1,
// 106.00 with tax, 100.00 without, tax 6.00, on a fully digital normal
// invoice (invoiceLine pc) to a buyer with a tax number, pushed nowhere.
// It passes schemas.Validator for a Nuonuo and a jumdata seller alike, and
// the sandboxes issue it. A test that needs another order edits it before
// it is encoded.
package schematest
