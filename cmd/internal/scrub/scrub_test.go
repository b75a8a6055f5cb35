package scrub_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fapiaohub/invoicer/cmd/internal/scrub"
)

// hide is a redaction for the tests: the user information of each URL of
// a list becomes "xxxxx", as the publisher writes a token.
func hide(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if at := strings.LastIndex(p, "@"); at >= 0 {
			start := 0
			if j := strings.Index(p, "://"); j >= 0 && j < at {
				start = j + 3
			}
			p = p[:start] + "xxxxx" + p[at:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

func TestURLs(t *testing.T) {
	for _, tc := range []struct {
		name, msg, list, want string
	}{
		{
			name: "as given",
			msg:  "dial nats://ops:s3cret@h:4222: refused",
			list: "nats://ops:s3cret@h:4222",
			want: "dial nats://xxxxx@h:4222: refused",
		},
		{
			name: "as url.Parse quotes it",
			msg:  `parse "nats://ops:s3\\cret@h:42x2": invalid port`,
			list: `nats://ops:s3\cret@h:42x2`,
			want: `parse "nats://xxxxx@h:42x2": invalid port`,
		},
		{
			name: "each of a list, spaces around entries",
			msg:  "nats://a:pw1@h1:4222 and nats://b:pw2@h2:4222",
			list: "nats://a:pw1@h1:4222 , nats://b:pw2@h2:4222",
			want: "nats://xxxxx@h1:4222 and nats://xxxxx@h2:4222",
		},
		{
			// "x@h:42x2" is the end of its own redacted form
			// "xxxxx@h:42x2": replaced twice, it gave "xxxxxxxxx@h:42x2".
			name: "a replacement is not replaced again",
			msg:  `parse "nats://x@h:42x2": invalid port`,
			list: "x@h:42x2",
			want: `parse "nats://xxxxx@h:42x2": invalid port`,
		},
		{
			// The second URL's user information "t@h:4222" contains an
			// "@": replaced as the first URL, "t" would be hidden and
			// "h:4222@" not.
			name: "the longest of two URLs that begin alike",
			msg:  "nats://t@h:4222 and nats://t@h:4222@g:4222",
			list: "nats://t@h:4222,nats://t@h:4222@g:4222",
			want: "nats://xxxxx@h:4222 and nats://xxxxx@g:4222",
		},
		{
			name: "nothing to hide",
			msg:  "dial nats://h:4222: refused",
			list: "nats://h:4222, ,",
			want: "dial nats://h:4222: refused",
		},
		{
			name: "an empty list",
			msg:  "no servers",
			list: "",
			want: "no servers",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := scrub.URLs(tc.msg, tc.list, hide); got != tc.want {
				t.Errorf("URLs(%q, %q) = %q, want %q", tc.msg, tc.list, got, tc.want)
			}
		})
	}
}

func ExampleURLs() {
	// A command's redaction of a URL list: here, each password hidden.
	redact := func(list string) string {
		return strings.ReplaceAll(list, ":s3cret@", ":xxxxx@")
	}
	msg := `parse "nats://ops:s3cret@nats.example:42x2": invalid port ":42x2" after host`
	fmt.Println(scrub.URLs(msg, "nats://ops:s3cret@nats.example:42x2", redact))
	// Output: parse "nats://ops:xxxxx@nats.example:42x2": invalid port ":42x2" after host
}
