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

// A 400 about the signature or the common parameters is this client's
// configuration or clock; one about the order's data is the order's.
func TestRefusesCredentials(t *testing.T) {
	for msg, want := range map[string]bool{
		"参数错误: 签名错误 (sign = sha256(appId + appSecret + timestamp), 小写十六进制)": true,
		"参数错误: timestamp 与服务器时间相差超过10分钟":                                    true,
		"参数错误: appId 不存在": true,
		"sign invalid":    true,
		"参数错误: invoiceData.mxlist[1].se 与 je × sl 相差超过 0.06": false,
		"参数错误: taskId abc 已用于其他开票数据, 同一taskId须使用相同参数":        false,
		"参数错误: 缺少参数 gryhm":                                   false,
		"购买方名称与税号不符":                                         false,
	} {
		if got := refusesCredentials(msg); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
}
