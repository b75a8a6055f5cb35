package jumdata

import (
	"crypto/sha256"
	"encoding/hex"
)

// Sign returns jumdata's request signature: the lower-case hex SHA-256 of
// appID + appSecret + timestamp, where timestamp is the request's
// "timestamp" parameter in milliseconds, written exactly as sent. The
// signature does not cover the business parameters.
func Sign(appID, appSecret, timestamp string) string {
	sum := sha256.Sum256([]byte(appID + appSecret + timestamp))
	return hex.EncodeToString(sum[:])
}

// TaskID returns the blue-invoice taskId of an order: the first 32
// characters of the lower-case hex SHA-256 of seller + ":" + orderNo.
//
// jumdata keys blue-invoice tasks by taskId for 8 hours: a repeated submit
// with the same taskId and identical invoiceData is the same task and never
// a second invoice. Deriving the taskId from the order (rather than drawing
// it at random) means every delivery of an order, in any process, after any
// crash, asks for the same task.
func TaskID(seller, orderNo string) string {
	sum := sha256.Sum256([]byte(seller + ":" + orderNo))
	return hex.EncodeToString(sum[:])[:32]
}
