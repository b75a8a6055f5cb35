package pipeline

import "testing"

// tryLock never waits: it fails while the order is locked, whether by
// tryLock or lock, succeeds once it is unlocked, and a failed try leaves
// nothing behind, so that the map does not keep an entry per order that was
// ever busy.
func TestTryLockFailsWhileLockedAndLeavesNothing(t *testing.T) {
	var k keyLocks
	unlock, ok := k.tryLock("A")
	if !ok {
		t.Fatal("a free order could not be locked")
	}
	if _, ok := k.tryLock("A"); ok {
		t.Fatal("a locked order was locked again")
	}
	other, ok := k.tryLock("B")
	if !ok {
		t.Fatal("another order could not be locked while A was")
	}
	other()
	unlock()
	if len(k.locks) != 0 {
		t.Fatalf("%d locks kept after every unlock", len(k.locks))
	}

	unlock = k.lock("A")
	if _, ok := k.tryLock("A"); ok {
		t.Fatal("an order held by lock was locked by tryLock")
	}
	unlock()
	unlock, ok = k.tryLock("A")
	if !ok {
		t.Fatal("an unlocked order could not be locked")
	}
	unlock()
	if len(k.locks) != 0 {
		t.Fatalf("%d locks kept after every unlock", len(k.locks))
	}
}
