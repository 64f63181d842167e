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
	// dlWriter says the writer took rw through go-deadlock (word.go);
	// guarded by the write hold. dlReaders counts read holds taken
	// through it; a reader releases through go-deadlock while it is
	// non-zero (go-deadlock then drops one of its reader entries, as it
	// does for a release by another goroutine).
	dlWriter  bool
	dlReaders atomic.Int32
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
	if s.writersWaiting.Load() != 0 || !s.tryWriteWord(!rawWords) {
		return true
	}
	s.unlockWriteWord()
	return false
}

// tryWriteWord try-locks the word for write, through go-deadlock if watch.
func (s *RWSem) tryWriteWord(watch bool) bool {
	ok := false
	if watch {
		ok = s.rw.TryLock()
	} else {
		ok = rawRWMutex(&s.rw).TryLock()
	}
	if ok {
		s.dlWriter = watch
	}
	return ok
}

// lockWriteWord locks the word for write, through go-deadlock if watch.
func (s *RWSem) lockWriteWord(watch bool) {
	if watch {
		s.rw.Lock()
	} else {
		rawRWMutex(&s.rw).Lock()
	}
	s.dlWriter = watch
}

// unlockWriteWord releases the write hold the way it was taken.
func (s *RWSem) unlockWriteWord() {
	watch := s.dlWriter
	s.dlWriter = false
	if watch {
		s.rw.Unlock()
		return
	}
	rawRWMutex(&s.rw).Unlock()
}

// tryReadWord try-locks the word for read, through go-deadlock if watch.
func (s *RWSem) tryReadWord(watch bool) bool {
	if !watch {
		return rawRWMutex(&s.rw).TryRLock()
	}
	if !s.rw.TryRLock() {
		return false
	}
	s.dlReaders.Add(1)
	return true
}

// lockReadWord locks the word for read, through go-deadlock if watch.
func (s *RWSem) lockReadWord(watch bool) {
	if !watch {
		rawRWMutex(&s.rw).RLock()
		return
	}
	s.rw.RLock()
	s.dlReaders.Add(1)
}

// unlockReadWord releases a read hold, through go-deadlock while it holds
// entries for readers.
func (s *RWSem) unlockReadWord() {
	for {
		n := s.dlReaders.Load()
		if n == 0 {
			rawRWMutex(&s.rw).RUnlock()
			return
		}
		if s.dlReaders.CompareAndSwap(n, n-1) {
			s.rw.RUnlock()
			return
		}
	}
}

// String names s for scheduler traces and reports.
func (s *RWSem) String() string { return fmt.Sprintf("rwsem %s@%p", s.dep.name, s) }

// DownRead ports down_read().
func (s *RWSem) DownRead() {
	d := s.dep.domain("down_read")
	if d == nil {
		s.lockReadWord(true)
		return
	}
	s.downRead(d, 0)
}

// DownReadNested ports down_read_nested(): see Mutex.LockNested.
func (s *RWSem) DownReadNested(subclass int) {
	d := s.dep.domain("down_read_nested")
	if d == nil {
		s.lockReadWord(true)
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
	watch := d.watched(sch)
	if sch == nil {
		wasRetired := d.retired.Load()
		s.lockReadWord(watch)
		if !wasRetired && d.retired.Load() {
			s.unlockReadWord()
			parkRetired()
		}
		return
	}
	o := observer(sch)
	if o != nil {
		o.Acquiring(s, s.dep.name, true)
	}
	for !s.tryRead(watch) {
		sch.Block(s)
	}
	if o != nil {
		o.Acquired(s, s.dep.name, true)
	}
}

// tryRead ports rwsem_read_trylock(): it fails while a writer holds the
// semaphore or waits for it.
func (s *RWSem) tryRead(watch bool) bool {
	return s.writersWaiting.Load() == 0 && s.tryReadWord(watch)
}

// TryDownRead ports down_read_trylock(). It fails while a writer holds or
// waits for the semaphore.
func (s *RWSem) TryDownRead() bool {
	d := s.dep.domain("down_read_trylock")
	if d == nil {
		return s.tryRead(true)
	}
	sch := d.Scheduler()
	if sch != nil {
		sch.Yield(PointLockAcquire)
	}
	o := observer(sch)
	if o != nil {
		o.Acquiring(s, s.dep.name, true)
	}
	if !s.tryRead(d.watched(sch)) {
		return false
	}
	if o != nil {
		o.Acquired(s, s.dep.name, true)
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
		s.unlockReadWord()
		return
	}
	if l := d.ld; l != nil && !l.release(&s.dep, modeRead, 1) {
		return
	}
	s.unlockReadWord()
	s.released(d, true)
}

// DownWrite ports down_write().
func (s *RWSem) DownWrite() {
	d := s.dep.domain("down_write")
	if d == nil {
		s.lockWriteWord(true)
		return
	}
	s.downWrite(d, 0)
}

// DownWriteNested ports down_write_nested(): see Mutex.LockNested.
func (s *RWSem) DownWriteNested(subclass int) {
	d := s.dep.domain("down_write_nested")
	if d == nil {
		s.lockWriteWord(true)
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
	watch := d.watched(sch)
	if sch == nil {
		wasRetired := d.retired.Load()
		s.lockWriteWord(watch)
		if !wasRetired && d.retired.Load() {
			s.unlockWriteWord()
			parkRetired()
		}
		return
	}
	o := observer(sch)
	if o != nil {
		o.Acquiring(s, s.dep.name, false)
		defer o.Acquired(s, s.dep.name, false)
	}
	if s.tryWriteWord(watch) {
		return
	}
	s.writersWaiting.Add(1)
	for !s.tryWriteWord(watch) {
		sch.Block(s)
	}
	s.writersWaiting.Add(-1)
}

// TryDownWrite ports down_write_trylock().
func (s *RWSem) TryDownWrite() bool {
	d := s.dep.domain("down_write_trylock")
	if d == nil {
		return s.tryWriteWord(true)
	}
	sch := d.Scheduler()
	if sch != nil {
		sch.Yield(PointLockAcquire)
	}
	o := observer(sch)
	if o != nil {
		o.Acquiring(s, s.dep.name, false)
	}
	if !s.tryWriteWord(d.watched(sch)) {
		return false
	}
	if o != nil {
		o.Acquired(s, s.dep.name, false)
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
		s.unlockWriteWord()
		return
	}
	if l := d.ld; l != nil && !l.release(&s.dep, modeWrite, 1) {
		return
	}
	s.unlockWriteWord()
	s.released(d, false)
}

// released is the scheduler's half of up_read()/up_write(): rwsem_wake().
func (s *RWSem) released(d *Domain, read bool) {
	if sch := d.liveScheduler(); sch != nil {
		if o := observer(sch); o != nil {
			o.Released(s, read)
		}
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
