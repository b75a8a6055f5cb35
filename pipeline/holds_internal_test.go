package pipeline

import (
	"testing"
	"time"
)

// TestAnEpisodeThatStartsAsTheLastEndsHasAnIDOfItsOwn: a seller held, let go
// and held again at the same instant (a probe answered, then the next order
// refused again within the second) gets a new episode, whose action_required
// result the result stream must not drop as a duplicate of the first.
func TestAnEpisodeThatStartsAsTheLastEndsHasAnIDOfItsOwn(t *testing.T) {
	var h holds
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	first, started := h.enter("S", "302", now, time.Second)
	if !started {
		t.Fatal("the first refusal did not start an episode")
	}
	again, started := h.enter("S", "302", now.Add(time.Millisecond), time.Second)
	if started || again != first {
		t.Fatalf("a refusal within the episode: episode %d (started %v), want %d", again, started, first)
	}
	h.release("S")
	second, started := h.enter("S", "302", now.Add(500*time.Millisecond), time.Second)
	if !started || second == first {
		t.Fatalf("held again in the same second: episode %d (started %v), the first was %d", second, started, first)
	}
	h.release("S")
	third, _ := h.enter("S", "302", now, time.Second) // the clock stepped back
	if third <= second {
		t.Fatalf("held again on a clock stepped back: episode %d after %d", third, second)
	}
}
