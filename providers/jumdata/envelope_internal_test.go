package jumdata

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeEnvelope feeds arbitrary answers to the envelope and data
// decoders: they fail cleanly or give a code that is an integer, and never
// panic.
func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"code":200,"msg":"开具成功","taskNo":"526782409178028997165459","data":{"fphm":"25332000000456135731","kprq":"2025-10-15 10:37:23"}}`,
		`{"code":"202","msg":"任务正在进行中,请稍后再试","taskNo":"526782409178028997165459"}`,
		`{"code":200,"data":{"pagenumber":1,"pagesize":50,"total":2,"list":[{"fphm":"24342000280347121212","hjje":73.26,"hjse":0.74,"jshj":74,"bz":null,"ddh":"A"}]}}`,
		`{"code":200,"data":{"total":"1","list":[{"kjhzfpdydlzfphm":"25332000000456135731","hjje":-47.17,"hjse":"-2.83"}]}}`,
		`{"code":200,"data":{"uuid":"x","jshj":-50}}`,
		`{"code":1e3}`, `{"code":null}`, `[]`, `null`, `{"code":200,"data":"text"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if !codePattern.MatchString(env.Code) {
			t.Fatalf("code %q", env.Code)
		}
		if env.Data != nil && !json.Valid(env.Data) {
			t.Fatalf("data %q is not JSON", env.Data)
		}
		_ = decodeData(env, &blueResult{})
		_ = decodeData(env, &redResult{})
		_ = decodeData(env, &page[blueItem]{})
		_ = decodeData(env, &page[redItem]{})
		_ = decodeData(env, &qrcodeResult{})
	})
}
