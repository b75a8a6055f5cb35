package nuonuo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // Nuonuo's signature is HMAC-SHA1 by specification.
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strconv"
)

// signPrefix is the signed message's fixed start: the path segments of
// /open/v1/services read from the end (a=services, l=v1, p=open).
const signPrefix = "a=services&l=v1&p=open"

// Sign returns the X-Nuonuo-Sign header of one call:
//
//	base64( HMAC-SHA1( appSecret, "a=services&l=v1&p=open&k=<appKey>&i=<senid>&n=<nonce>&t=<timestamp>&f=<body>" ) )
//
// body must be the exact bytes sent. Sign is the one implementation of the
// signature in this package; the sandbox has its own, so that the two cannot
// agree by construction.
func Sign(appSecret, appKey, senid, nonce, timestamp string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(appSecret))
	mac.Write([]byte(signPrefix + "&k=" + appKey + "&i=" + senid + "&n=" + nonce + "&t=" + timestamp + "&f="))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// newSenid returns a fresh 32-character lower-case hex id for one HTTP call
// (a UUID without dashes; it is not an idempotency key).
func newSenid() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// newNonce returns a random integer in 10000000..99999999 as text.
func newNonce() string {
	n, err := rand.Int(rand.Reader, big.NewInt(90000000))
	if err != nil {
		return "10000000"
	}
	return strconv.FormatInt(n.Int64()+10000000, 10)
}
