package nuonuo_test

import (
	"fmt"
	"strings"

	"github.com/fapiaohub/invoicer/providers/nuonuo"
)

// Sign computes the X-Nuonuo-Sign header over the exact body bytes sent.
func ExampleSign() {
	senid := strings.Repeat("a", 32) // a fresh 32-hex id per call in real use
	fmt.Println(nuonuo.Sign("secret", "app", senid, "12345678", "1700000000", []byte(`{"name":"中文"}`)))
	// Output: 4BzcKzrcoqxPis0W/W3X2ae0uIo=
}

// BillID derives the red confirmation application number when a request
// carries none, so that a repeated submission names the same application.
func ExampleBillID() {
	id := nuonuo.BillID("339902999999789113", "RC-20261120-0001")
	fmt.Println(len(id), id == nuonuo.BillID("339902999999789113", "RC-20261120-0001"))
	// Output: 32 true
}
