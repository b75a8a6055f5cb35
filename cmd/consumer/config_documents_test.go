package main

import (
	"strings"
	"testing"
)

// A --config file holds one YAML document: a second one (after ---), which
// the decoder would leave unread, is refused, not ignored with the sellers
// and partners it lists. An empty one (a trailing ---) lists nothing and is
// let be.
func TestConfigOfSeveralDocumentsIsRefused(t *testing.T) {
	seller := func(tn string) string {
		return "sellers:\n  - taxNum: " + tn + "\n    provider: jumdata\n    jumdata: {baseURL: \"https://api.jumdata.com\", appId: a, appSecret: b, token: c, dq: d, gryhm: e}\n"
	}
	for name, yaml := range map[string]string{
		"two documents":      seller("91330106MA2AYNWD8M") + "---\n" + seller("91440101MA5APD8X8J"),
		"partners after ---": seller("91330106MA2AYNWD8M") + "---\npartners:\n  - channel: c\n    secret: 0123456789abcdef\n    sellers: [91330106MA2AYNWD8M]\n",
		"after an empty one": seller("91330106MA2AYNWD8M") + "---\n---\n" + seller("91440101MA5APD8X8J"),
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", yaml)
			cfg, err := loadConfig(path)
			if err == nil {
				t.Fatalf("loaded, with sellers %+v and partners %+v", cfg.Sellers, cfg.Partners)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "document") {
				t.Errorf("error does not name the file and the second document: %v", err)
			}
		})
	}
	// One document that starts with --- (or ends with ... or an empty
	// document) is one document.
	for _, yaml := range []string{"---\n" + seller("91330106MA2AYNWD8M"), seller("91330106MA2AYNWD8M") + "...\n", seller("91330106MA2AYNWD8M") + "---\n# the rest\n"} {
		if _, err := loadConfig(writeFile(t, "c.yaml", yaml)); err != nil {
			t.Errorf("%q: %v", yaml, err)
		}
	}
}

// An empty config file (or one of comments only) says what it lacks, as
// "sellers: []" does, not "EOF".
func TestEmptyConfigSaysWhatItLacks(t *testing.T) {
	for _, yaml := range []string{"", "# sellers: to come\n"} {
		path := writeFile(t, "c.yaml", yaml)
		_, err := loadConfig(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no sellers") {
			t.Errorf("%q: %v", yaml, err)
		}
	}
}
