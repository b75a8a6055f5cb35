package main

import (
	"strings"
	"testing"
)

// A partner's sellers: key written without a value (its list commented
// out, or null) must not read as "no list", which opens every seller to
// the channel: it is refused, like an empty list.
func TestPartnerSellersWithoutValueIsRefused(t *testing.T) {
	for name, sellers := range map[string]string{
		"list commented out": "    sellers:\n    #  - S1\n",
		"null":               "    sellers: null\n",
		"tilde":              "    sellers: ~\n",
	} {
		t.Run(name, func(t *testing.T) {
			yaml := "sellers:\n  - taxNum: S1\n    provider: jumdata\n    jumdata: {baseURL: \"https://api.jumdata.com\", appId: a, appSecret: b, token: c, dq: d, gryhm: e}\n" +
				"partners:\n  - channel: c\n    secret: 0123456789abcdef\n" + sellers
			cfg, err := loadConfig(writeFile(t, "c.yaml", yaml))
			if err == nil {
				t.Fatalf("loaded; channel c's sellers = %#v (nil: every seller open to it)", cfg.Partners[0].Sellers)
			}
			if !strings.Contains(err.Error(), "partners[0]: sellers") {
				t.Errorf("error does not name the partner's sellers: %v", err)
			}
		})
	}
}
