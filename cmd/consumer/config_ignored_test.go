package main

import (
	"strings"
	"testing"
)

// A setting the consumer would not use is refused at start, naming the file
// and the key, rather than loaded and ignored: a tokenURL beside a static
// accessToken (no token is ever fetched), the block of a provider other than
// the seller's (its credentials are never read), and a rateLimit that is not
// a number of requests per second (NaN, infinite or negative).
func TestSettingsThatWouldBeIgnoredAreRefused(t *testing.T) {
	const (
		nuonuo  = `nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: k, appSecret: s, accessToken: tok}`
		jumdata = `jumdata: {baseURL: "https://api.jumdata.com", appId: a, appSecret: b, token: c, dq: d, gryhm: e}`
	)
	seller := func(provider string, lines ...string) string {
		return "sellers:\n  - taxNum: \"91330106MA2AYNWD8M\"\n    provider: " + provider + "\n    " + strings.Join(lines, "\n    ") + "\n"
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"tokenURL beside a static accessToken",
			seller("nuonuo", `nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: k, appSecret: s, accessToken: tok, tokenURL: "https://open.nuonuo.com/accessToken"}`),
			[]string{"sellers[0] (91330106MA2AYNWD8M): nuonuo.tokenURL", "nuonuo.accessToken"}},
		{"a jumdata block beside provider nuonuo", seller("nuonuo", nuonuo, jumdata),
			[]string{"sellers[0] (91330106MA2AYNWD8M): jumdata:", "provider nuonuo"}},
		{"a nuonuo block beside provider jumdata", seller("jumdata", jumdata, nuonuo),
			[]string{"sellers[0] (91330106MA2AYNWD8M): nuonuo:", "provider jumdata"}},
		{"rateLimit .nan", seller("jumdata", jumdata, "rateLimit: .nan"), []string{"sellers[0] (91330106MA2AYNWD8M): rateLimit"}},
		{"rateLimit .inf", seller("jumdata", jumdata, "rateLimit: .inf"), []string{"sellers[0] (91330106MA2AYNWD8M): rateLimit"}},
		{"rateLimit -.inf", seller("jumdata", jumdata, "rateLimit: -.inf"), []string{"sellers[0] (91330106MA2AYNWD8M): rateLimit"}},
		{"rateLimit negative", seller("jumdata", jumdata, "rateLimit: -1"), []string{"sellers[0] (91330106MA2AYNWD8M): rateLimit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", tc.yaml)
			cfg, err := loadConfig(path)
			if err == nil {
				t.Fatalf("loaded: %+v", cfg.Sellers[0])
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
		})
	}
	// What is used is let be: a tokenURL without a static token, a
	// rateLimit of 0 (none) or a fraction, the seller's own block alone.
	for name, yaml := range map[string]string{
		"tokenURL without a static token": seller("nuonuo", `nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: k, appSecret: s, tokenURL: "https://open.nuonuo.com/accessToken"}`),
		"rateLimit 0":                     seller("jumdata", jumdata, "rateLimit: 0"),
		"rateLimit 0.5":                   seller("nuonuo", nuonuo, "rateLimit: 0.5"),
	} {
		if _, err := loadConfig(writeFile(t, "c.yaml", yaml)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
