package pipeline

import "sync"

// keyLocks serializes work on one order within this process: two
// deliveries of the same order (a duplicate publish, a redelivery racing a
// slow worker) never talk to the provider at the same time. Across
// instances the seller partitioning gives the same guarantee, and the
// store's versions catch anything else.
//
// A delivery that finds its order locked does not wait for the lock (a
// worker would wait with it): the consume loop parks it and asks await to
// be told when the holder lets go, then tries again (Loop.park).
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
	// held says that mu is locked, and waiters are await's channels, the
	// first to be closed when it is unlocked; both guarded by keyLocks.mu.
	held    bool
	waiters []chan struct{}
}

// closedChan is a channel that is always closed: await's answer when the
// key is free.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// lock locks key, waiting for whoever holds it, and returns its unlock
// function.
func (k *keyLocks) lock(key string) func() {
	l := k.ref(key)
	l.mu.Lock()
	k.setHeld(l)
	return func() { k.unlock(key, l) }
}

// tryLock locks key if no one holds it, and returns its unlock function
// and true; it never waits. A delivery that finds its order locked does not
// wait here (order.busy), but in the consume loop, without a worker
// (Loop.park): the holder may talk to the provider for as long as the
// process timeout allows, and a burst of copies of one order waiting here
// would hold every worker meanwhile.
func (k *keyLocks) tryLock(key string) (unlock func(), ok bool) {
	l := k.ref(key)
	if !l.mu.TryLock() {
		k.release(key, l)
		return nil, false
	}
	k.setHeld(l)
	return func() { k.unlock(key, l) }, true
}

// setHeld marks l, just locked, as held.
func (k *keyLocks) setHeld(l *keyLock) {
	k.mu.Lock()
	l.held = true
	k.mu.Unlock()
}

// await returns a channel that is closed when key is next unlocked, and a
// function that gives up the wait (a no-op once the channel is closed).
// The waiters of a key are told one at a time, in the order they came, one
// at each unlock: each tries the lock again when told, and the one that
// takes it tells the next when it lets go, so that a crowd of them does
// not wake at every unlock. The channel is closed already when key is not
// held (it was unlocked between the caller's try and this call, or is
// about to be marked held by a tryLock that just succeeded: trying again
// then costs a try). A waiter told that does not try again, or whose try
// ends before the lock, leaves the next waiter untold while no one holds
// the key: held lets it find that out.
func (k *keyLocks) await(key string) (freed <-chan struct{}, cancel func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.locks[key]
	if l == nil || !l.held {
		return closedChan, func() {}
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.refs++ // the waiter keeps the entry, and its place in the line
	return ch, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		for i, w := range l.waiters {
			if w == ch {
				l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
				k.releaseLocked(key, l)
				return
			}
		}
	}
}

// held reports whether someone holds key's lock.
func (k *keyLocks) held(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.locks[key]
	return l != nil && l.held
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

// unlock unlocks l, key's lock, tells its first waiter, if any, and
// releases the caller's use of it. The lock is marked free and unlocked
// under k.mu, so that await never sees it held once it is free, nor free
// while it is held.
func (k *keyLocks) unlock(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l.held = false
	l.mu.Unlock()
	if len(l.waiters) > 0 {
		close(l.waiters[0])
		l.waiters = l.waiters[1:]
		k.releaseLocked(key, l) // the waiter's use
	}
	k.releaseLocked(key, l)
}

// release counts one user of key's lock l fewer, and forgets the lock
// when it has none.
func (k *keyLocks) release(key string, l *keyLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.releaseLocked(key, l)
}

// releaseLocked is release with k.mu held.
func (k *keyLocks) releaseLocked(key string, l *keyLock) {
	l.refs--
	if l.refs == 0 {
		delete(k.locks, key)
	}
}
