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

// await tells the waiters of a locked order one at a time, in the order
// they came, one at each unlock; on a free order it answers at once; a
// waiter that gives up leaves its place; and nothing is kept once every
// lock and wait is over.
func TestAwaitTellsWaitersOneAtATimeInOrder(t *testing.T) {
	var k keyLocks
	if freed, _ := k.await("A"); !isClosed(freed) {
		t.Fatal("a wait on a free order was not answered at once")
	}
	unlock, ok := k.tryLock("A")
	if !ok {
		t.Fatal("a free order could not be locked")
	}
	if !k.held("A") || k.held("B") {
		t.Fatal("held does not say which order is held")
	}
	first, _ := k.await("A")
	second, giveUp := k.await("A")
	third, _ := k.await("A")
	if isClosed(first) || isClosed(second) || isClosed(third) {
		t.Fatal("a waiter was told while the order is held")
	}
	giveUp() // the second leaves the line
	unlock()
	if k.held("A") {
		t.Fatal("an unlocked order is held")
	}
	if !isClosed(first) || isClosed(third) {
		t.Fatal("the unlock did not tell the first waiter alone")
	}
	unlock, ok = k.tryLock("A") // the first takes the lock
	if !ok {
		t.Fatal("the first waiter could not lock the order")
	}
	unlock()
	if !isClosed(third) || isClosed(second) {
		t.Fatal("the next unlock did not tell the third waiter, the second having left")
	}
	if len(k.locks) != 0 {
		t.Fatalf("%d locks kept after every unlock and wait", len(k.locks))
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
