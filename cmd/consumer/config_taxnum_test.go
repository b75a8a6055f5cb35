package main

import (
	"strings"
	"testing"
)

// A seller's tax number that no request can carry (a request's is 15 to 20
// letters or digits, trimmed and upper-cased, and is a token of its
// subject) is refused at start: a Nuonuo seller would start and answer
// each of the seller's requests rejected as seller_not_configured, a
// jumdata one would be refused by its client only after the streams were
// set up, without the file or the key. A partner's list of sellers is held
// to the same form.
func TestSellerTaxNumberMustBeOneARequestCanCarry(t *testing.T) {
	const jumdata = `    provider: jumdata
    jumdata: {baseURL: "https://api.jumdata.com", appId: a, appSecret: b, token: c, dq: d, gryhm: e}
`
	const nuonuo = `    provider: nuonuo
    nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: k, appSecret: s, accessToken: t}
`
	for _, tc := range []struct{ name, yaml, want string }{
		{"spaces inside", "sellers:\n  - taxNum: \"9133 0106 MA2A YNWD 8M\"\n" + nuonuo, `taxNum "9133 0106 MA2A YNWD 8M"`},
		{"a dash", "sellers:\n  - taxNum: 91330106-MA2AYNWD8M\n" + nuonuo, `taxNum "91330106-MA2AYNWD8M"`},
		{"too short", "sellers:\n  - taxNum: \"9133010\"\n" + jumdata, `taxNum "9133010"`},
		{"too long", "sellers:\n  - taxNum: 91330106MA2AYNWD8M0123\n" + jumdata, `taxNum "91330106MA2AYNWD8M0123"`},
		{"full-width letters", "sellers:\n  - taxNum: 91330106ＭＡ2AYNWD8M\n" + nuonuo, `taxNum "91330106ＭＡ2AYNWD8M"`},
		{"a partner's seller", "sellers:\n  - taxNum: 91330106MA2AYNWD8M\n" + jumdata +
			"partners:\n  - channel: c\n    secret: 0123456789abcdef\n    sellers: [\"91330106MA2AYNWD8M\", \"9133 0106MA2AYNWD8M\"]\n", `partners[0]: sellers[1] "9133 0106MA2AYNWD8M"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(writeFile(t, "c.yaml", tc.yaml))
			if err == nil {
				t.Fatalf("loaded: sellers %+v, partners %+v", cfg.Sellers, cfg.Partners)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "15 to 20 letters or digits") {
				t.Errorf("error lacks %q and what is wrong: %v", tc.want, err)
			}
		})
	}
	// Spaces around it and small letters are what a request may carry too.
	cfg, err := loadConfig(writeFile(t, "c.yaml", "sellers:\n  - taxNum: \" 91330106ma2aynwd8m \"\n"+jumdata+"  - taxNum: 339902999999789\n"+nuonuo))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sellers[0].TaxNum != "91330106MA2AYNWD8M" || cfg.Sellers[1].TaxNum != "339902999999789" {
		t.Errorf("tax numbers %q, %q", cfg.Sellers[0].TaxNum, cfg.Sellers[1].TaxNum)
	}
}
