package pipeline

import "sync"

// keyLocks serializes work on one order within this process: two
// deliveries of the same order (a duplicate publish, a redelivery racing a
// slow worker) never talk to the provider at the same time. Across
// instances the seller partitioning gives the same guarantee, and the
// store's versions catch anything else.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// lock locks key, waiting for whoever holds it, and returns its unlock
// function.
func (k *keyLocks) lock(key string) func() {
	l := k.ref(key)
	l.mu.Lock()
	return func() { k.unlock(key, l) }
}

// tryLock locks key if no one holds it, and returns its unlock function
// and true; it never waits. A delivery that finds its order locked is put
// back rather than wait (order.busy): the holder may talk to the provider
// for as long as the process timeout allows, and a burst of copies of one
// order waiting here would hold every worker meanwhile.
func (k *keyLocks) tryLock(key string) (unlock func(), ok bool) {
	l := k.ref(key)
	if !l.mu.TryLock() {
		k.release(key, l)
		return nil, false
	}
	return func() { k.unlock(key, l) }, true
}

// ref returns key's lock, counting one more user of it.
func (k *keyLocks) ref(key string) *keyLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	return l
}

// unlock unlocks l, key's lock, and releases the caller's use of it.
func (k *keyLocks) unlock(key string, l *keyLock) {
	l.mu.Unlock()
	k.release(key, l)
}

// release counts one user of key's lock l fewer, and forgets the lock
// when it has none.
func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
}
