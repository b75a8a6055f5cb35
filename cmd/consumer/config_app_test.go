package main

import (
	"strings"
	"testing"
)

// Nuonuo sellers on one app (one appKey at one token endpoint) share one
// token source, built with the first seller's appSecret: another seller's
// different appSecret would be ignored by the token fetch and used to sign
// its calls, so that one of the two is wrong and its seller's calls or every
// token fetch are refused. The config is refused instead, naming both.
func TestNuonuoAppWithTwoSecretsIsRefused(t *testing.T) {
	t.Setenv("TEST_APP_SECRET", "secret-one")
	seller := func(tn, nuonuo string) string {
		return "  - taxNum: \"" + tn + "\"\n    provider: nuonuo\n    nuonuo: {" + nuonuo + "}\n"
	}
	path := writeFile(t, "c.yaml", "sellers:\n"+
		seller("339902999999789113", `baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: "env:TEST_APP_SECRET"`)+
		seller("91330106MA2AYNWD8M", `baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: secret-two`))
	_, err := loadConfig(path)
	if err == nil {
		t.Fatal("loaded")
	}
	for _, want := range []string{path, "sellers[1] (91330106MA2AYNWD8M): nuonuo.appSecret", "sellers[0]", "K1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret-one") || strings.Contains(err.Error(), "secret-two") {
		t.Errorf("a secret reached the error: %v", err)
	}

	// The same secret, another app key, another token endpoint, or a
	// static token (no token source) are not one app with two secrets.
	for name, second := range map[string]string{
		"same secret":            `baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: secret-one`,
		"another app key":        `baseURL: "https://sdk.nuonuo.com", appKey: K2, appSecret: secret-two`,
		"another token endpoint": `baseURL: "https://sandbox.nuonuo.com", appKey: K1, appSecret: secret-two`,
		"static token":           `baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: secret-two, accessToken: tok`,
	} {
		_, err := loadConfig(writeFile(t, "c.yaml", "sellers:\n"+
			seller("339902999999789113", `baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: "env:TEST_APP_SECRET"`)+
			seller("91330106MA2AYNWD8M", second)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A secret that cannot be read is reported as such, not also as another
// secret than the app's.
func TestNuonuoAppSecretUnreadIsNotASecondSecret(t *testing.T) {
	_, err := loadConfig(writeFile(t, "c.yaml", `sellers:
  - taxNum: "339902999999789113"
    provider: nuonuo
    nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: "env:TEST_UNSET_APP_SECRET"}
  - taxNum: "91330106MA2AYNWD8M"
    provider: nuonuo
    nuonuo: {baseURL: "https://sdk.nuonuo.com", appKey: K1, appSecret: secret-two}
`))
	if err == nil || !strings.Contains(err.Error(), "TEST_UNSET_APP_SECRET is not set") || strings.Contains(err.Error(), "is not that of") {
		t.Fatalf("error: %v", err)
	}
}
