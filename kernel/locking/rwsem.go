package locking

import (
	"fmt"
	"sync/atomic"

	"github.com/sasha-s/go-deadlock"
)

// RWSem ports struct rw_semaphore (kernel/locking/rwsem.c): many readers or
// one writer. It is writer-preferring, as in Linux: once a writer waits, new
// readers wait too, so a task that takes the read lock twice while a writer
// starts waiting in between deadlocks (lockdep reports the second read).
//
// An RWSem must be Init'ed before use. A zero RWSem used before Init works,
// as a plain lock that lockdep and the scheduler do not see, and the Init
// that follows reports the use (lock_debug.go).
type RWSem struct {
	// dep is first so that its address is the semaphore's, which reports
	// print and the magic check compares. Written by Init, then read-only.
	dep lockdepMap
	// rw is the lock word. sync.RWMutex (under go-deadlock's wrapper) has
	// the Linux fairness property: a blocked writer stops new readers,
	// and TryRLock fails while a writer waits.
	rw deadlock.RWMutex
	// writersWaiting counts writers parked in Scheduler.Block (scheduled
	// mode only; they never block in rw, so rw cannot see them). While it
	// is non-zero new readers wait, as RWSEM_FLAG_WAITERS makes them.
	writersWaiting atomic.Int32
}

// Init ports init_rwsem(): it binds s to domain d (nil: no domain; the
// semaphore then works unchecked) and names its lockdep class. Call it
// before s is shared. An Init of a semaphore that is held or waited for is
// reported and leaves s as it was; one after a use of s is reported
// (lock_debug.go).
func (s *RWSem) Init(d *Domain, class string) {
	if s.dep.used() && !s.dep.checkInit(d, class, kindRWSem, s.isLocked) {
		return
	}
	s.dep.init(d, class, kindRWSem)
}

// isLocked ports rwsem_is_locked(), for Init's check, and also counts
// writers waiting under a scheduler: a probe of the lock word that takes
// and drops it if free.
func (s *RWSem) isLocked() bool {
	if s.writersWaiting.Load() != 0 || !s.rw.TryLock() {
		return true
	}
	s.rw.Unlock()
	return false
}

// String names s for scheduler traces and reports.
func (s *RWSem) String() string { return fmt.Sprintf("rwsem %s@%p", s.dep.name, s) }

// DownRead ports down_read().
func (s *RWSem) DownRead() {
	d := s.dep.domain("down_read")
	if d == nil {
		s.rw.RLock()
		return
	}
	s.downRead(d, 0)
}

// DownReadNested ports down_read_nested(): see Mutex.LockNested.
func (s *RWSem) DownReadNested(subclass int) {
	d := s.dep.domain("down_read_nested")
	if d == nil {
		s.rw.RLock()
		return
	}
	s.downRead(d, subclass)
}

// downRead ports __down_read_common(): rwsem_acquire_read(), then the
// acquisition.
func (s *RWSem) downRead(d *Domain, subclass int) {
	sch := d.Scheduler()
	if sch != nil {
		sch.Yield(PointLockAcquire)
	}
	if l := d.ld; l != nil {
		l.acquire(&s.dep, subclass, modeRead, false, 2)
	}
	if sch == nil {
		wasRetired := d.retired.Load()
		s.rw.RLock()
		if !wasRetired && d.retired.Load() {
			s.rw.RUnlock()
			parkRetired()
		}
		return
	}
	for !s.tryRead() {
		sch.Block(s)
	}
}

// tryRead ports rwsem_read_trylock(): it fails while a writer holds the
// semaphore or waits for it.
func (s *RWSem) tryRead() bool {
	return s.writersWaiting.Load() == 0 && s.rw.TryRLock()
}

// TryDownRead ports down_read_trylock(). It fails while a writer holds or
// waits for the semaphore.
func (s *RWSem) TryDownRead() bool {
	d := s.dep.domain("down_read_trylock")
	if d == nil {
		return s.tryRead()
	}
	if sch := d.Scheduler(); sch != nil {
		sch.Yield(PointLockAcquire)
	}
	if !s.tryRead() {
		return false
	}
	if l := d.ld; l != nil {
		l.acquire(&s.dep, 0, modeRead, true, 1)
	}
	return true
}

// UpRead ports up_read().
func (s *RWSem) UpRead() {
	d := s.dep.domain("up_read")
	if d == nil {
		s.rw.RUnlock()
		return
	}
	if l := d.ld; l != nil && !l.release(&s.dep, modeRead, 1) {
		return
	}
	s.rw.RUnlock()
	s.released(d)
}

// DownWrite ports down_write().
func (s *RWSem) DownWrite() {
	d := s.dep.domain("down_write")
	if d == nil {
		s.rw.Lock()
		return
	}
	s.downWrite(d, 0)
}

// DownWriteNested ports down_write_nested(): see Mutex.LockNested.
func (s *RWSem) DownWriteNested(subclass int) {
	d := s.dep.domain("down_write_nested")
	if d == nil {
		s.rw.Lock()
		return
	}
	s.downWrite(d, subclass)
}

// downWrite ports __down_write_common(): rwsem_acquire(), then the
// acquisition. Under a scheduler a writer that must wait announces itself
// in writersWaiting first, which holds off new readers.
func (s *RWSem) downWrite(d *Domain, subclass int) {
	sch := d.Scheduler()
	if sch != nil {
		sch.Yield(PointLockAcquire)
	}
	if l := d.ld; l != nil {
		l.acquire(&s.dep, subclass, modeWrite, false, 2)
	}
	if sch == nil {
		wasRetired := d.retired.Load()
		s.rw.Lock()
		if !wasRetired && d.retired.Load() {
			s.rw.Unlock()
			parkRetired()
		}
		return
	}
	if s.rw.TryLock() {
		return
	}
	s.writersWaiting.Add(1)
	for !s.rw.TryLock() {
		sch.Block(s)
	}
	s.writersWaiting.Add(-1)
}

// TryDownWrite ports down_write_trylock().
func (s *RWSem) TryDownWrite() bool {
	d := s.dep.domain("down_write_trylock")
	if d == nil {
		return s.rw.TryLock()
	}
	if sch := d.Scheduler(); sch != nil {
		sch.Yield(PointLockAcquire)
	}
	if !s.rw.TryLock() {
		return false
	}
	if l := d.ld; l != nil {
		l.acquire(&s.dep, 0, modeWrite, true, 1)
	}
	return true
}

// UpWrite ports up_write().
func (s *RWSem) UpWrite() {
	d := s.dep.domain("up_write")
	if d == nil {
		s.rw.Unlock()
		return
	}
	if l := d.ld; l != nil && !l.release(&s.dep, modeWrite, 1) {
		return
	}
	s.rw.Unlock()
	s.released(d)
}

// released is the scheduler's half of up_read()/up_write(): rwsem_wake().
func (s *RWSem) released(d *Domain) {
	if sch := d.liveScheduler(); sch != nil {
		sch.Wake(s)
		sch.Yield(PointLockRelease)
	}
}

// AssertHeld ports lockdep_assert_held(): held for read or write.
func (s *RWSem) AssertHeld() { s.assert(modeAny) }

// AssertHeldRead ports lockdep_assert_held_read().
func (s *RWSem) AssertHeldRead() { s.assert(modeRead) }

// AssertHeldWrite ports lockdep_assert_held_write().
func (s *RWSem) AssertHeldWrite() { s.assert(modeWrite) }

func (s *RWSem) assert(mode lockMode) {
	if d := s.dep.domain(assertFn(mode)); d != nil && d.ld != nil {
		d.ld.assertHeld(&s.dep, mode, 2)
	}
}

// assertFn names the lockdep_assert_held*() of mode.
func assertFn(mode lockMode) string {
	switch mode {
	case modeWrite:
		return "lockdep_assert_held_write"
	case modeRead:
		return "lockdep_assert_held_read"
	}
	return "lockdep_assert_held"
}

// IsHeld ports lockdep_is_held(): see Mutex.IsHeld.
func (s *RWSem) IsHeld() bool {
	if d := s.dep.domain("lockdep_is_held"); d != nil && d.ld != nil {
		return d.ld.isHeld(&s.dep, modeAny)
	}
	return true
}
