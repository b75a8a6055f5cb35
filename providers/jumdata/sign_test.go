package jumdata_test

import (
	"regexp"
	"testing"

	"github.com/fapiaohub/invoicer/providers/jumdata"
)

func TestSign(t *testing.T) {
	tests := []struct {
		name                 string
		appID, secret, stamp string
		want                 string
	}{
		{
			// The document's example values (seed 004, 签名算法说明); want is
			//   printf %s 'xyzxy2121zxyzefcefcef1121cefcefc12121211555378976238' | sha256sum
			name:  "document example",
			appID: "xyzxy2121zxyz", secret: "efcefcef1121cefcefc1212121", stamp: "1555378976238",
			want: "6ddcdc405743c576cb6d34b17b47ed56e2b9b6670fae1fe85ed01244fd31558b",
		},
		{
			// printf %s '' | sha256sum
			name: "empty",
			want: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jumdata.Sign(tt.appID, tt.secret, tt.stamp); got != tt.want {
				t.Fatalf("Sign = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("order matters", func(t *testing.T) {
		if jumdata.Sign("a", "b", "1") == jumdata.Sign("b", "a", "1") {
			t.Fatal("appId and appSecret are interchangeable")
		}
	})
}

func TestTaskID(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	// printf %s '91330106MA2AYNWD8M:ORD-2026-000001' | sha256sum | cut -c1-32
	const want = "18b7caa90cd047e604e1345a025c2903"
	if got := jumdata.TaskID("91330106MA2AYNWD8M", "ORD-2026-000001", 0); got != want {
		t.Fatalf("TaskID = %s, want %s", got, want)
	}
	// printf %s "91330106MA2AYNWD8M:ORD-2026-000001 1" | sha256sum | cut -c1-32
	const restarted = "1e43bfec27f74c53d1c5d2fd9995e82a"
	if got := jumdata.TaskID("91330106MA2AYNWD8M", "ORD-2026-000001", 1); got != restarted {
		t.Fatalf("TaskID after a restart = %s, want %s", got, restarted)
	}
	tests := []struct {
		name          string
		seller, order string
		restarts      int
	}{
		{"other order", "91330106MA2AYNWD8M", "ORD-2026-000002", 0},
		{"other seller", "91330106MA2AYNWD8N", "ORD-2026-000001", 0},
		{"second restart", "91330106MA2AYNWD8M", "ORD-2026-000001", 2},
		// An order number may hold ":" (the schema allows printable
		// ASCII): "ORD-2026-000001" restarted once is not "…:1".
		{"an order named like a restart", "91330106MA2AYNWD8M", "ORD-2026-000001:1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jumdata.TaskID(tt.seller, tt.order, tt.restarts)
			if !hex32.MatchString(got) || got == want || got == restarted {
				t.Fatalf("TaskID(%q, %q, %d) = %q", tt.seller, tt.order, tt.restarts, got)
			}
			if again := jumdata.TaskID(tt.seller, tt.order, tt.restarts); again != got {
				t.Fatalf("TaskID is not deterministic: %s, then %s", got, again)
			}
		})
	}
}
