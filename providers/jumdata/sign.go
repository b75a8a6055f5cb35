package jumdata

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Sign returns jumdata's request signature: the lower-case hex SHA-256 of
// appID + appSecret + timestamp, where timestamp is the request's
// "timestamp" parameter in milliseconds, written exactly as sent. The
// signature does not cover the business parameters.
func Sign(appID, appSecret, timestamp string) string {
	sum := sha256.Sum256([]byte(appID + appSecret + timestamp))
	return hex.EncodeToString(sum[:])
}

// TaskID returns the blue-invoice taskId of an order's start: the first
// 32 characters of the lower-case hex SHA-256 of seller + ":" + orderNo for
// the first start (restarts 0), and of seller + ":" + orderNo + " " +
// restarts for a corrected request after the tax bureau refused an earlier
// one (providers.Call.Restarts).
//
// jumdata keys blue-invoice tasks by taskId for 8 hours: a repeated submit
// with the same taskId and identical invoiceData is the same task and never
// a second invoice. Deriving the taskId from the order (rather than drawing
// it at random) means every delivery of an order, in any process, after any
// crash, asks for the same task. A task the tax bureau refused keeps its
// taskId too, bound to the refused invoiceData: a corrected request under
// it would be refused as other data, or answered with the refusal, for 8
// hours. Hence a new taskId for each start.
func TaskID(seller, orderNo string, restarts int) string {
	key := seller + ":" + orderNo
	if restarts > 0 {
		// A space, which no order number holds: "A" restarted once is
		// never the first start of an order "A:1".
		key += " " + strconv.Itoa(restarts)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:32]
}
