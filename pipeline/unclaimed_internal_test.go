package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// memMarks keeps marks in memory and counts the raises.
type memMarks struct {
	mu     sync.Mutex
	v      map[string]uint64
	raises int
}

func (m *memMarks) RaiseMark(_ context.Context, name string, v uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v == nil {
		m.v = map[string]uint64{}
	}
	m.raises++
	m.v[name] = max(m.v[name], v)
	return nil
}

func (m *memMarks) SetMark(_ context.Context, name string, v uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.v[name] = v
	return nil
}

func (m *memMarks) Mark(name string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.v[name], nil
}

// Every covered sequence is below the mark on disk when cover returns, and
// the mark is raised about once per half lead, not once per request; the
// streams' marks are apart.
func TestHorizonCover(t *testing.T) {
	m := &memMarks{v: map[string]uint64{"unclaimed:B": 7}}
	h := &horizons{marks: m}
	if err := h.cover(context.Background(), "A", 1); err != errUnidentified {
		t.Fatalf("cover before identify = %v, want errUnidentified", err)
	}
	h.identify("A", "unclaimed:A")
	h.identify("B", "unclaimed:B")
	ctx := context.Background()
	const n = 20 * markLead
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for seq := uint64(w + 1); seq <= n; seq += 8 {
				if err := h.cover(ctx, "A", seq); err != nil {
					t.Error(err)
					return
				}
				if v, _ := m.Mark("unclaimed:A"); v <= seq {
					t.Errorf("after cover(%d) the mark on disk is %d", seq, v)
					return
				}
			}
		})
	}
	wg.Wait()
	if m.raises > 3*n/markLead {
		t.Errorf("%d raises for %d requests", m.raises, n)
	}
	// B starts from its stored mark: 3 is below it already, 7 is not.
	if err := h.cover(ctx, "B", 3); err != nil {
		t.Fatal(err)
	}
	if err := h.cover(ctx, "B", 7); err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Mark("unclaimed:B"); v <= 7 || v > 7+markLead {
		t.Errorf("mark B %d, want in (7, %d]", v, 7+markLead)
	}
	if v, _ := m.Mark("unclaimed:A"); v <= n || v > n+markLead {
		t.Errorf("mark A %d, want in (%d, %d]", v, n, n+markLead)
	}
}

// unwritableMarks are marks that can be read and never written.
type unwritableMarks struct{ memMarks }

func (*unwritableMarks) SetMark(context.Context, string, uint64) error {
	return errors.New("no space left on device")
}

// A stream created again whose durable's creation cannot be kept beside
// its mark (horizons.adopt) is not submitted to without a claim: its mark
// is unknown until a start or another rebind names it, rather than named
// without what a start after a crash needs to read up to it. A stream
// whose consumers are kept already (the durable alone created again) is
// named as it was, the creation kept left as it is.
func TestAdoptedStreamWithoutItsConsumerIsClaimed(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	stream := func(at time.Time) *jetstream.StreamInfo {
		return &jetstream.StreamInfo{Config: jetstream.StreamConfig{Name: DefaultRequestStream}, Created: at}
	}
	ci := &jetstream.ConsumerInfo{Name: DefaultDurable, Created: created.Add(time.Minute)}
	first, again := stream(created.Add(-time.Hour)), stream(created)

	m := &unwritableMarks{memMarks{v: map[string]uint64{unclaimedMarkName(first) + consumersSuffix: 1}}}
	h := &horizons{marks: m}
	h.identify(DefaultRequestStream, unclaimedMarkName(first))
	if err := h.adopt(ctx, first, ci); err != nil {
		t.Fatalf("adopt the stream a start read, its durable created again: %v", err)
	}
	if err := h.cover(ctx, DefaultRequestStream, 1); err != nil {
		t.Fatalf("cover after adopting the stream a start read: %v", err)
	}
	if err := h.adopt(ctx, again, ci); err == nil {
		t.Fatal("adopt a stream created again with marks that cannot be written: no error")
	}
	if err := h.cover(ctx, DefaultRequestStream, 1); err != errUnidentified {
		t.Fatalf("cover after a failed adopt = %v, want errUnidentified: its orders claimed", err)
	}
}
