package providers_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/providers"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	at := func(d time.Duration, layout string) string { return now.Add(d).Format(layout) }
	const rfc850 = "Monday, 02-Jan-06 15:04:05 GMT"
	for _, tt := range []struct {
		name, value string
		want        time.Duration
	}{
		{"seconds", "7", 7 * time.Second},
		{"leading zeros", "007", 7 * time.Second},
		{"blanks around", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"the cap exactly", "300", providers.MaxRetryAfter},
		{"above the cap", "301", providers.MaxRetryAfter},
		{"a day", "86400", providers.MaxRetryAfter},
		{"beyond int64", "99999999999999999999999", providers.MaxRetryAfter},
		{"IMF-fixdate", at(7*time.Second, http.TimeFormat), 7 * time.Second},
		{"RFC 850 date", at(7*time.Second, rfc850), 7 * time.Second},
		{"asctime date", at(7*time.Second, time.ANSIC), 7 * time.Second},
		{"a date past the cap", at(48*time.Hour, http.TimeFormat), providers.MaxRetryAfter},
		{"now", at(0, http.TimeFormat), 0},
		{"a date past", at(-time.Hour, http.TimeFormat), 0},
		{"empty", "", 0},
		{"negative", "-7", 0},
		{"plus sign", "+7", 0},
		{"fraction", "7.5", 0},
		{"with a unit", "7s", 0},
		{"text", "soon", 0},
		{"a date in another zone", now.Add(7 * time.Second).In(time.FixedZone("CST", 8*3600)).Format(time.RFC1123), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := providers.ParseRetryAfter(tt.value, now); got != tt.want {
				t.Errorf("ParseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}

// Whatever the header says, the hint is between 0 and MaxRetryAfter.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	for _, s := range []string{"7", "-1", "99999999999999999999", "Fri, 20 Nov 2026 02:00:07 GMT", "Friday, 20-Nov-26 02:00:07 GMT", "Fri Nov 20 02:00:07 2026", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if d := providers.ParseRetryAfter(value, now); d < 0 || d > providers.MaxRetryAfter {
			t.Fatalf("ParseRetryAfter(%q) = %v, outside [0, %v]", value, d, providers.MaxRetryAfter)
		}
	})
}

func ExampleParseRetryAfter() {
	now := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	fmt.Println(providers.ParseRetryAfter("7", now))
	fmt.Println(providers.ParseRetryAfter("Fri, 20 Nov 2026 02:00:30 GMT", now))
	fmt.Println(providers.ParseRetryAfter("86400", now)) // capped
	fmt.Println(providers.ParseRetryAfter("soon", now))  // no hint
	// Output:
	// 7s
	// 30s
	// 5m0s
	// 0s
}
