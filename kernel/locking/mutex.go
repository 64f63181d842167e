package locking

import (
	"fmt"

	"github.com/sasha-s/go-deadlock"
)

// Mutex ports struct mutex (kernel/locking/mutex.c): a sleeping lock with
// one owner, which must be the task that unlocks it.
//
// The zero Mutex is an unlocked mutex outside any domain: it works, but
// lockdep and the scheduler do not see it. Init binds it to a Domain.
type Mutex struct {
	// dep is first so that its address is the mutex's, which reports
	// print. Written by Init, then read-only.
	dep lockdepMap
	// mu is the lock word. Free-running tasks block in mu.Lock (go-deadlock
	// watches them when configured); under a scheduler tasks only TryLock
	// it and wait in Scheduler.Block.
	mu deadlock.Mutex
}

// Init binds m to domain d and names its lockdep class (mutex_init()). Call
// it before m is shared.
func (m *Mutex) Init(d *Domain, class string) { m.dep.init(d, class, kindMutex) }

// String names m for scheduler traces and reports.
func (m *Mutex) String() string { return fmt.Sprintf("mutex %s@%p", m.dep.name, m) }

// Lock ports mutex_lock().
func (m *Mutex) Lock() {
	d := m.dep.dom
	if d == nil {
		m.mu.Lock()
		return
	}
	m.lock(d, 0)
}

// LockNested ports mutex_lock_nested(): subclass (in [0, MaxSubclasses))
// lets one class be held twice when the caller guarantees an order, e.g. a
// parent's lock, then a child's of the same class with subclass 1.
func (m *Mutex) LockNested(subclass int) {
	d := m.dep.dom
	if d == nil {
		m.mu.Lock()
		return
	}
	m.lock(d, subclass)
}

// lock ports __mutex_lock_common(): lockdep validation first
// (mutex_acquire_nest()), then the acquisition, which under a scheduler is
// a trylock loop around Scheduler.Block.
func (m *Mutex) lock(d *Domain, subclass int) {
	s := d.Scheduler()
	if s != nil {
		s.Yield(PointLockAcquire)
	}
	if l := d.ld; l != nil {
		l.acquire(&m.dep, subclass, modeWrite, false, 2)
	}
	if s == nil {
		m.mu.Lock()
		return
	}
	for !m.mu.TryLock() {
		s.Block(m)
	}
}

// TryLock ports mutex_trylock(). A trylock cannot deadlock, so lockdep
// records it (mutex_acquire(..., trylock=1)) without checking the order.
func (m *Mutex) TryLock() bool {
	d := m.dep.dom
	if d == nil {
		return m.mu.TryLock()
	}
	if s := d.Scheduler(); s != nil {
		s.Yield(PointLockAcquire)
	}
	if !m.mu.TryLock() {
		return false
	}
	if l := d.ld; l != nil {
		l.acquire(&m.dep, 0, modeWrite, true, 1)
	}
	return true
}

// Unlock ports mutex_unlock(). With lockdep on, unlocking a mutex the task
// does not hold is reported and leaves the mutex as it was.
func (m *Mutex) Unlock() {
	d := m.dep.dom
	if d == nil {
		m.mu.Unlock()
		return
	}
	if l := d.ld; l != nil && !l.release(&m.dep, modeWrite, 1) {
		return
	}
	m.mu.Unlock()
	if s := d.Scheduler(); s != nil {
		s.Wake(m)
		s.Yield(PointLockRelease)
	}
}

// AssertHeld ports lockdep_assert_held(): it reports if the current task
// does not hold m. Without lockdep it checks nothing, as in Linux.
func (m *Mutex) AssertHeld() {
	if d := m.dep.dom; d != nil && d.ld != nil {
		d.ld.assertHeld(&m.dep, modeAny, 1)
	}
}

// IsHeld ports lockdep_is_held(): whether the current task holds m. It
// needs lockdep; without it, it returns true so that it can guard
// assertions, as lockdep_is_held() does with lockdep off.
func (m *Mutex) IsHeld() bool {
	if d := m.dep.dom; d != nil && d.ld != nil {
		return d.ld.isHeld(&m.dep, modeAny)
	}
	return true
}
