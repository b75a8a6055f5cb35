package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// sameShape compares subjects, partitions and replicas, and nothing else.
func TestSameShape(t *testing.T) {
	part := func(n string) *jetstream.SubjectTransformConfig {
		return &jetstream.SubjectTransformConfig{Source: "invoice.request.*", Destination: "invoice.request.{{wildcard(1)}}.{{partition(" + n + ",1)}}"}
	}
	tests := []struct {
		name       string
		have, want jetstream.StreamConfig
		err        string // "" when the shapes agree
	}{
		{"same", jetstream.StreamConfig{Name: "S", Replicas: 3, SubjectTransform: part("3")}, jetstream.StreamConfig{Name: "S", Replicas: 3, SubjectTransform: part("3")}, ""},
		{"other settings", jetstream.StreamConfig{Name: "S", Replicas: 1, MaxAge: 1}, jetstream.StreamConfig{Name: "S", Replicas: 1, MaxAge: 2}, ""},
		{"fewer replicas", jetstream.StreamConfig{Name: "S", Replicas: 3}, jetstream.StreamConfig{Name: "S", Replicas: 1}, "has 3 replica(s), and this consumer is configured for 1"},
		{"partitions forgotten", jetstream.StreamConfig{Name: "S", Replicas: 1, SubjectTransform: part("3")}, jetstream.StreamConfig{Name: "S", Replicas: 1}, "is partitioned 3 ways, and this consumer is configured for no partitions"},
		{"other count", jetstream.StreamConfig{Name: "S", Replicas: 1, SubjectTransform: part("3")}, jetstream.StreamConfig{Name: "S", Replicas: 1, SubjectTransform: part("4")}, "configured for 4 partitions"},
		{"subjects in another order", jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"a.>", "b.>"}}, jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"b.>", "a.>"}}, ""},
		{"another prefix", jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"invoice.request.*"}}, jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"twin.request.*"}},
			"takes the subjects invoice.request.*, and this consumer is configured for twin.request.* (its --prefix"},
		{"a subject added by hand", jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"invoice.request.*", "legacy.>"}}, jetstream.StreamConfig{Name: "S", Replicas: 1, Subjects: []string{"invoice.request.*"}},
			"takes the subjects invoice.request.* legacy.>"},
		{"a transform of someone else's", jetstream.StreamConfig{Name: "S", Replicas: 1, SubjectTransform: &jetstream.SubjectTransformConfig{Source: ">", Destination: "x.>"}},
			jetstream.StreamConfig{Name: "S", Replicas: 1}, "a subject transform of its own"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sameShape(tt.have, tt.want)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (!errors.Is(err, ErrTopologyChanged) || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}
