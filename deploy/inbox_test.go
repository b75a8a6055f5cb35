package deploy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

// TestInboxes checks, in every server configuration, that each role may
// subscribe to exactly one inbox, its own _INBOX_<user>.>, may publish into
// none, and that only the consumer answers requests (allow_responses); and
// that the consumer's deployments and README.md give each role's clients
// that inbox prefix.
func TestInboxes(t *testing.T) {
	roles := map[string]role{}
	for _, r := range []role{ordersRole, consumerRole, downstreamRole, sreRole} {
		roles[r.user] = r
	}
	for _, conf := range []string{"nats-server.conf", "cluster/n1.conf", "cluster/n2.conf", "cluster/n3.conf"} {
		t.Run(conf, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(conf)
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, u := range opts.Users {
				r, ok := roles[u.Username]
				if !ok {
					continue
				}
				seen++
				p := u.Permissions
				if p == nil || p.Subscribe == nil || p.Publish == nil {
					t.Fatalf("%s: no publish and subscribe permissions", u.Username)
				}
				var inboxes []string
				for _, s := range p.Subscribe.Allow {
					if strings.HasPrefix(s, "_INBOX") || strings.HasPrefix(s, ">") || strings.HasPrefix(s, "*") {
						inboxes = append(inboxes, s)
					}
				}
				if len(inboxes) != 1 || inboxes[0] != r.inbox+".>" {
					t.Errorf("%s may subscribe to %v, want exactly its inbox %s.>", u.Username, inboxes, r.inbox)
				}
				for _, s := range p.Publish.Allow {
					if strings.HasPrefix(s, "_INBOX") || strings.HasPrefix(s, ">") || strings.HasPrefix(s, "*") {
						t.Errorf("%s may publish to %s: replies go through allow_responses", u.Username, s)
					}
				}
				if answers := p.Response != nil; answers != (r == consumerRole) {
					t.Errorf("%s: allow_responses %v; only the consumer (the status service) answers requests", u.Username, answers)
				}
			}
			if seen != len(roles) {
				t.Errorf("%d of the %d roles found", seen, len(roles))
			}
		})
	}

	t.Run("consumer deployments", func(t *testing.T) {
		data, err := os.ReadFile("systemd/consumer.env.example")
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?m)^INVOICE_INBOX_PREFIX=(\S*)$`).FindStringSubmatch(string(data)); m == nil || m[1] != consumerRole.inbox {
			t.Errorf("consumer.env.example: INVOICE_INBOX_PREFIX %v, want %s", m, consumerRole.inbox)
		}
		data, err = os.ReadFile("kubernetes/invoicer.yaml")
		if err != nil {
			t.Fatal(err)
		}
		var sts *k8sObject
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for {
			var o k8sObject
			if dec.Decode(&o) != nil {
				break
			}
			if o.Kind == "StatefulSet" {
				sts = &o
			}
		}
		if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 {
			t.Fatal("no StatefulSet with one container")
		}
		got := ""
		for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "INVOICE_INBOX_PREFIX" {
				got = e.Value
			}
		}
		if got != consumerRole.inbox {
			t.Errorf("invoicer.yaml: INVOICE_INBOX_PREFIX %q, want %s", got, consumerRole.inbox)
		}
	})

	t.Run("README.md", func(t *testing.T) {
		data, err := os.ReadFile("README.md")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range roles {
			if !strings.Contains(string(data), "INVOICE_INBOX_PREFIX="+r.inbox) {
				t.Errorf("README.md never sets INVOICE_INBOX_PREFIX=%s for the %s user", r.inbox, r.user)
			}
		}
	})
}
