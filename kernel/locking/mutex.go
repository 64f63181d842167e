package locking

import (
	"fmt"

	"github.com/sasha-s/go-deadlock"
)

// Mutex ports struct mutex (kernel/locking/mutex.c): a sleeping lock with
// one owner, which must be the task that unlocks it.
//
// A Mutex must be Init'ed before use. A zero Mutex used before Init works,
// as a plain lock that lockdep and the scheduler do not see, and the Init
// that follows reports the use (lock_debug.go).
type Mutex struct {
	// dep is first so that its address is the mutex's, which reports
	// print and the magic check compares. Written by Init, then read-only.
	dep lockdepMap
	// mu is the lock word. Free-running tasks block in mu.Lock (go-deadlock
	// watches them when configured); under a scheduler tasks only TryLock
	// it and wait in Scheduler.Block. See word.go for its two faces.
	mu deadlock.Mutex
	// dl says the holder took mu through go-deadlock, so the release must
	// go through it too (word.go). Guarded by mu: written by the holder
	// once it has the word, read by it before giving the word back.
	dl bool
}

// Init ports mutex_init(): it binds m to domain d (nil: no domain; the
// mutex then works unchecked) and names its lockdep class. Call it before m
// is shared. An Init of a mutex that is held or waited for is reported and
// leaves m as it was; one after a use of m is reported (lock_debug.go).
func (m *Mutex) Init(d *Domain, class string) {
	if m.dep.used() && !m.dep.checkInit(d, class, kindMutex, m.isLocked) {
		return
	}
	m.dep.init(d, class, kindMutex)
}

// isLocked ports mutex_is_locked(), for Init's check: a probe of the lock
// word that takes and drops it if free.
func (m *Mutex) isLocked() bool {
	if wordTryLock(&m.mu, !rawWords) {
		wordUnlock(&m.mu, !rawWords)
		return false
	}
	return true
}

// String names m for scheduler traces and reports.
func (m *Mutex) String() string { return fmt.Sprintf("mutex %s@%p", m.dep.name, m) }

// Lock ports mutex_lock().
func (m *Mutex) Lock() {
	d := m.dep.domain("mutex_lock")
	if d == nil {
		m.lockWord(true)
		return
	}
	m.lock(d, 0)
}

// LockNested ports mutex_lock_nested(): subclass (in [0, MaxSubclasses))
// lets one class be held twice when the caller guarantees an order, e.g. a
// parent's lock, then a child's of the same class with subclass 1.
func (m *Mutex) LockNested(subclass int) {
	d := m.dep.domain("mutex_lock_nested")
	if d == nil {
		m.lockWord(true)
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
	watch := d.watched(s)
	if s == nil {
		wasRetired := d.retired.Load()
		m.lockWord(watch)
		if !wasRetired && d.retired.Load() {
			m.unlockWord()
			parkRetired()
		}
		return
	}
	o := observer(s)
	if o != nil {
		o.Acquiring(m, m.dep.name, false)
	}
	for !wordTryLock(&m.mu, watch) {
		s.Block(m)
	}
	m.dl = watch
	if o != nil {
		o.Acquired(m, m.dep.name, false)
	}
}

// lockWord takes the word, through go-deadlock if watch.
func (m *Mutex) lockWord(watch bool) {
	wordLock(&m.mu, watch)
	m.dl = watch
}

// unlockWord gives the word back the way the holder took it.
func (m *Mutex) unlockWord() {
	watch := m.dl
	m.dl = false
	wordUnlock(&m.mu, watch)
}

// TryLock ports mutex_trylock(). A trylock cannot deadlock, so lockdep
// records it (mutex_acquire(..., trylock=1)) without checking the order.
func (m *Mutex) TryLock() bool {
	d := m.dep.domain("mutex_trylock")
	if d == nil {
		if !m.mu.TryLock() {
			return false
		}
		m.dl = true
		return true
	}
	s := d.Scheduler()
	if s != nil {
		s.Yield(PointLockAcquire)
	}
	watch := d.watched(s)
	o := observer(s)
	if o != nil {
		o.Acquiring(m, m.dep.name, false)
	}
	if !wordTryLock(&m.mu, watch) {
		return false
	}
	m.dl = watch
	if o != nil {
		o.Acquired(m, m.dep.name, false)
	}
	if l := d.ld; l != nil {
		l.acquire(&m.dep, 0, modeWrite, true, 1)
	}
	return true
}

// Unlock ports mutex_unlock(). With lockdep on, unlocking a mutex the task
// does not hold is reported and leaves the mutex as it was.
func (m *Mutex) Unlock() {
	d := m.dep.domain("mutex_unlock")
	if d == nil {
		m.unlockWord()
		return
	}
	if l := d.ld; l != nil && !l.release(&m.dep, modeWrite, 1) {
		return
	}
	m.unlockWord()
	if s := d.liveScheduler(); s != nil {
		if o := observer(s); o != nil {
			o.Released(m, false)
		}
		s.Wake(m)
		s.Yield(PointLockRelease)
	}
}

// AssertHeld ports lockdep_assert_held(): it reports if the current task
// does not hold m. Without lockdep it checks nothing, as in Linux.
func (m *Mutex) AssertHeld() {
	if d := m.dep.domain("lockdep_assert_held"); d != nil && d.ld != nil {
		d.ld.assertHeld(&m.dep, modeAny, 1)
	}
}

// IsHeld ports lockdep_is_held(): whether the current task holds m. It
// needs lockdep; without it, it returns true so that it can guard
// assertions, as lockdep_is_held() does with lockdep off.
func (m *Mutex) IsHeld() bool {
	if d := m.dep.domain("lockdep_is_held"); d != nil && d.ld != nil {
		return d.ld.isHeld(&m.dep, modeAny)
	}
	return true
}
