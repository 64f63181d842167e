//lint:file-ignore SA2001 these tests take locks to use them, not to guard data

package locking_test

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

//go:noinline
func readBeforeInit(s *locking.RWSem) {
	s.DownRead()
	s.UpRead()
}

//go:noinline
func initRWSem(s *locking.RWSem, d *locking.Domain, class string) { s.Init(d, class) }

//go:noinline
func initMutex(m *locking.Mutex, d *locking.Domain, class string) { m.Init(d, class) }

// A lock used before Init works as a plain lock; the Init that follows
// reports the use with its stack and its own, and from then on the lock
// is checked. The check does not need lockdep (DEBUG_RWSEMS alone).
func TestRWSemUsedBeforeInit(t *testing.T) {
	for _, ld := range []bool{true, false} {
		t.Run(fmt.Sprintf("lockdep=%v", ld), func(t *testing.T) {
			d, rec := newDomain(ld)
			var s locking.RWSem
			readBeforeInit(&s)
			s.DownWrite()
			s.UpWrite()
			require.Empty(t, rec.titles(), "no domain to report to before Init")

			initRWSem(&s, d, "test.incoming")
			require.Equal(t, []string{lockdepTitle(locking.TitleUsedBeforeInit)}, rec.titles())
			detail := rec.reports()[0].Detail
			require.Contains(t, detail, "WARNING: lock used before init")
			require.Contains(t, detail, fmt.Sprintf("is initialising lock %p (test.incoming) in init_rwsem()", &s))
			require.Contains(t, detail, "but the lock was used before: down_read() by task/")
			require.Contains(t, detail, "locking_test.readBeforeInit") // the first use
			require.Contains(t, detail, "locking_test.initRWSem")      // the init
			require.Contains(t, detail, "trying to register non-static key")

			// Initialised now: a free lock may be initialised again.
			s.Init(d, "test.incoming")
			s.DownRead()
			s.AssertHeldRead()
			s.UpRead()
			require.Len(t, rec.titles(), 1)
			if ld {
				s.AssertHeld() // checked now, and not held
				require.Equal(t, lockdepTitle(locking.TitleAssertHeld), rec.titles()[1])
			}
		})
	}
}

// Every mutex operation counts as a use; the first one is the one reported.
// Each class is reported once per domain.
func TestMutexUsedBeforeInit(t *testing.T) {
	d, rec := newDomain(true)
	var m1 locking.Mutex
	m1.AssertHeld() // nothing to check against yet
	require.True(t, m1.IsHeld())
	require.True(t, m1.TryLock())
	m1.Unlock()
	initMutex(&m1, d, "test.mutex")
	require.Equal(t, []string{lockdepTitle(locking.TitleUsedBeforeInit)}, rec.titles())
	require.Contains(t, rec.reports()[0].Detail, "in mutex_init(),\nbut the lock was used before: lockdep_assert_held() by task/")

	var m2 locking.Mutex
	m2.LockNested(1)
	m2.Unlock()
	m2.Init(d, "test.mutex")
	require.Len(t, rec.titles(), 1, "same class: reported once")
	m2.Lock()
	m2.AssertHeld()
	m2.Unlock()
	require.Len(t, rec.titles(), 1, rec.dump())
}

// Init of a lock that is held is reported and leaves the lock alone, so
// that its holder's unlock still works and nothing hangs.
func TestInitHeldNeverInitialised(t *testing.T) {
	d, rec := newDomain(true)
	var m locking.Mutex
	m.Lock() // before Init: a plain lock
	initMutex(&m, d, "test.mutex")
	require.Equal(t, []string{lockdepTitle(locking.TitleInitHeld)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, fmt.Sprintf("is initialising lock %p (test.mutex, never initialised) in mutex_init()", &m))
	require.Contains(t, detail, "but the lock is held or waited for.")
	require.Contains(t, detail, "locking_test.initMutex")
	m.Unlock() // the plain unlock it was taken for: no imbalance
	inTask(func() { m.Lock(); m.Unlock() })
	require.Len(t, rec.titles(), 1, rec.dump())

	// Free again, the Init binds it and reports the earlier use.
	m.Init(d, "test.mutex")
	require.Equal(t, lockdepTitle(locking.TitleUsedBeforeInit), rec.titles()[1])
	require.Contains(t, rec.reports()[1].Detail, "but the lock was used before: mutex_lock() by task/")
	m.Lock()
	m.AssertHeld()
	m.Unlock()
	require.Len(t, rec.titles(), 2, rec.dump())
}

// Re-initialising an initialised semaphore that another task holds:
// reported with the holder, and the semaphore keeps working.
func TestInitHeldRWSem(t *testing.T) {
	for _, ld := range []bool{true, false} {
		t.Run(fmt.Sprintf("lockdep=%v", ld), func(t *testing.T) {
			d, rec := newDomain(ld)
			var s locking.RWSem
			s.Init(d, "test.rwsem")
			held, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				s.DownRead()
				close(held)
				<-release
				s.UpRead()
			}()
			<-held
			initRWSem(&s, d, "test.other")
			require.Equal(t, []string{lockdepTitle(locking.TitleInitHeld)}, rec.titles())
			detail := rec.reports()[0].Detail
			require.Contains(t, detail, "(test.other, initialised as test.rwsem) in init_rwsem()")
			if ld {
				require.Contains(t, detail, "(held by task/")
			}
			close(release)
			<-done
			s.DownWrite()
			s.AssertHeldWrite()
			s.UpWrite()
			s.Init(d, "test.rwsem") // free: no report
			require.Len(t, rec.titles(), 1, rec.dump())
		})
	}
}

// copyLock copies n bytes from src to dst as memcpy would, where go vet's
// copylocks check does not look: the bug the magic word exists to catch.
func copyLock(dst, src unsafe.Pointer, n uintptr) {
	copy(unsafe.Slice((*byte)(dst), n), unsafe.Slice((*byte)(src), n))
}

// A copy of an initialised lock carries the original's magic: using it is
// reported to the original's domain at once, and the copy works as a plain
// lock.
func TestCopiedLockMagic(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "test.mutex")
	var c locking.Mutex
	copyLock(unsafe.Pointer(&c), unsafe.Pointer(m), unsafe.Sizeof(c))
	c.Lock()
	require.Equal(t, []string{lockdepTitle(locking.TitleBadMagic)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, fmt.Sprintf("mutex_lock() of lock %p (test.mutex), whose magic is %p", &c, m))
	require.Contains(t, detail, "locking_test.TestCopiedLockMagic")
	c.Unlock()
	m.Lock() // the original is unaffected
	m.Unlock()
	require.Len(t, rec.titles(), 1, rec.dump())
}

// Tasks racing on a lock before its Init record one first use; Init after
// them reports it. (Run with -race: the record is atomic.)
func TestUsedBeforeInitConcurrent(t *testing.T) {
	d, rec := newDomain(true)
	var s locking.RWSem
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				readBeforeInit(&s)
			}
		}()
	}
	for range 4 {
		<-done
	}
	s.Init(d, "test.rwsem")
	require.Equal(t, []string{lockdepTitle(locking.TitleUsedBeforeInit)}, rec.titles())
}
