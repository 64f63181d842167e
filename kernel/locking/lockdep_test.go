//lint:file-ignore SA2001 these tests are about lock order, not what the locks guard

package locking_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

// inTask runs f in a fresh goroutine (a separate task) and waits for it.
func inTask(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func newMutex(d *locking.Domain, class string) *locking.Mutex {
	m := new(locking.Mutex)
	m.Init(d, class)
	return m
}

//go:noinline
func lockAThenB(a, b *locking.Mutex) {
	a.Lock()
	b.Lock()
	b.Unlock()
	a.Unlock()
}

//go:noinline
func lockBThenA(a, b *locking.Mutex) {
	b.Lock()
	a.Lock()
	a.Unlock()
	b.Unlock()
}

// ABBA on different instances of the same two classes, in different tasks
// and at different times: no deadlock happens, but lockdep reports the
// inversion, with the stack that recorded A --> B and the current one.
func TestLockdepABBAAcrossInstances(t *testing.T) {
	d, rec := newDomain(true)
	a1, b1 := newMutex(d, "A"), newMutex(d, "B")
	a2, b2 := newMutex(d, "A"), newMutex(d, "B")

	inTask(func() { lockAThenB(a1, b1) })
	require.Empty(t, rec.titles())
	inTask(func() { lockBThenA(a2, b2) })

	require.Equal(t, []string{lockdepTitle(locking.TitleCircular)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "WARNING: possible circular locking dependency detected")
	require.Contains(t, detail, "Chain exists of:\n  A --> B --> A\n")
	require.Contains(t, detail, "is trying to acquire lock:\n"+fmt.Sprintf("%p", a2)+" (A){mutex}")
	require.Contains(t, detail, "but task is already holding lock:\n"+fmt.Sprintf("%p", b2)+" (B){mutex}")
	require.Contains(t, detail, "-> #0 (A --> B):")
	// The stack that recorded A --> B, and the current one.
	require.Contains(t, detail, "locking_test.lockAThenB")
	require.Contains(t, detail, "locking_test.lockBThenA")
	require.Contains(t, detail, "1 lock held by task/")

	// The same inversion again is the same problem: no second report.
	for range 100 {
		inTask(func() { lockBThenA(a1, b2) })
	}
	require.Len(t, rec.titles(), 1)
}

// A cycle of three classes, each edge recorded by a different task.
func TestLockdepThreeClassCycle(t *testing.T) {
	d, rec := newDomain(true)
	a, b, c := newMutex(d, "A"), newMutex(d, "B"), newMutex(d, "C")
	inTask(func() { lockAThenB(a, b) })
	inTask(func() { lockAThenB(b, c) })
	require.Empty(t, rec.titles(), "A --> B --> C is a consistent order")
	inTask(func() { lockAThenB(c, a) })

	require.Equal(t, []string{lockdepTitle(locking.TitleCircular)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "Chain exists of:\n  A --> B --> C --> A\n", detail)
	require.Contains(t, detail, "-> #1 (B --> C):")
	require.Contains(t, detail, "-> #0 (A --> B):")
	// CPU1 holds B and wants C; CPU0 holds C and wants A.
	require.Contains(t, detail, "  lock(C);\n                               lock(B);\n                               lock(C);\n  lock(A);\n")

	// Closing the same cycle at another class is still the same cycle.
	inTask(func() { lockAThenB(c, b) }) // C --> B: a new, 2-cycle B --> C --> B
	require.Len(t, rec.titles(), 2)
	require.Contains(t, rec.reports()[1].Detail, "B --> C --> B")
}

// The search reports the shortest dependency chain, not the first found:
// A --> B --> C is recorded before A --> C, and C --> A closes the cycle
// through A --> C.
func TestLockdepShortestChain(t *testing.T) {
	d, rec := newDomain(true)
	a, b, c := newMutex(d, "A"), newMutex(d, "B"), newMutex(d, "C")
	inTask(func() { lockAThenB(a, b) })
	inTask(func() { lockAThenB(b, c) })
	inTask(func() { lockAThenB(a, c) })
	require.Empty(t, rec.titles())
	inTask(func() { lockAThenB(c, a) })

	require.Equal(t, []string{lockdepTitle(locking.TitleCircular)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "Chain exists of:\n  A --> C --> A\n", detail)
	require.Contains(t, detail, "-> #0 (A --> C):")
	require.NotContains(t, detail, "(B --> C)")
}

// Read-after-read on an rwsem is recursive locking (readers are not
// recursive: a writer that waits in between blocks the second read). Shown
// free-running: the read is refused while the writer waits, and lockdep
// reports the recursive read before it blocks.
func TestLockdepRecursiveReadUnderWaitingWriter(t *testing.T) {
	d, rec := newDomain(true)
	var sem locking.RWSem
	sem.Init(d, "test.rwsem")

	sem.DownRead()
	writerIn := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		sem.DownWrite() // waits for our read lock
		close(writerIn)
		sem.UpWrite()
	}()
	// Once the writer waits, new reads are refused (trylocks are not
	// validated by lockdep, as in Linux).
	require.Eventually(t, func() bool {
		if sem.TryDownRead() {
			sem.UpRead()
			return false
		}
		return true
	}, 10*time.Second, time.Millisecond)
	require.Empty(t, rec.titles())

	// A blocking read now would wait for the writer, which waits for us:
	// lockdep reports it first, and the handler's panic aborts the read.
	type abort struct{}
	rec.setAbort(abort{})
	require.PanicsWithValue(t, abort{}, func() { sem.DownRead() })
	rec.setAbort(nil)
	require.Equal(t, []string{lockdepTitle(locking.TitleRecursive)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "WARNING: possible recursive locking detected")
	require.Contains(t, detail, "(test.rwsem){rwsem:R}")
	require.Contains(t, detail, "  lock_read(test.rwsem);\n  lock_read(test.rwsem);\n")
	require.Contains(t, detail, "readers are not recursive")
	require.Contains(t, detail, "locking_test.TestLockdepRecursiveReadUnderWaitingWriter")

	select {
	case <-writerIn:
		t.Fatal("writer got in while a reader held the semaphore")
	default:
	}
	sem.UpRead()
	<-writerDone
}

// Locking a held mutex again is reported before the task blocks forever;
// the handler panics to get out.
func TestLockdepDoubleLock(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "test.mutex")
	m.Lock()
	type abort struct{}
	rec.setAbort(abort{})
	require.PanicsWithValue(t, abort{}, func() { m.Lock() })
	rec.setAbort(nil)
	m.AssertHeld() // still held once
	m.Unlock()
	require.Equal(t, []string{lockdepTitle(locking.TitleRecursive)}, rec.titles())
	require.Contains(t, rec.reports()[0].Detail, "  lock(test.mutex);\n  lock(test.mutex);\n")
	require.Contains(t, rec.reports()[0].Detail, "May be due to missing lock nesting notation")

	// Another instance of the class is the same problem to lockdep, so it
	// is not reported again (and, being free, it is taken).
	m2 := newMutex(d, "test.mutex")
	m.Lock()
	m2.Lock()
	m2.Unlock()
	m.Unlock()
	require.Len(t, rec.titles(), 1)

	// In a fresh domain it is reported.
	d2, rec2 := newDomain(true)
	m3, m4 := newMutex(d2, "test.mutex"), newMutex(d2, "test.mutex")
	m3.Lock()
	m4.Lock()
	m4.Unlock()
	m3.Unlock()
	require.Equal(t, []string{lockdepTitle(locking.TitleRecursive)}, rec2.titles())
}

// Unlocking a mutex the task does not hold is reported and leaves the
// mutex to its holder.
func TestLockdepUnlockByNonHolder(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "test.mutex")
	m.Lock()
	inTask(func() { m.Unlock() })
	require.Equal(t, []string{lockdepTitle(locking.TitleBadUnlock)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "WARNING: bad unlock balance detected!")
	require.Contains(t, detail, "but there are no more locks to release!")
	require.Contains(t, detail, fmt.Sprintf("(the lock is held by task/%d)", locking.CurrentTask()))
	require.False(t, m.TryLock(), "the non-holder's unlock must not release the mutex")
	m.Unlock()
	require.True(t, m.TryLock())
	m.Unlock()

	// Unlocking an unlocked mutex is reported too (not a fatal error).
	d2, rec2 := newDomain(true)
	m2 := newMutex(d2, "test.mutex")
	m2.Unlock()
	require.Equal(t, []string{lockdepTitle(locking.TitleBadUnlock)}, rec2.titles())

	// So is releasing an rwsem in the wrong mode.
	d3, rec3 := newDomain(true)
	var sem locking.RWSem
	sem.Init(d3, "test.rwsem")
	sem.DownRead()
	sem.UpWrite()
	sem.UpRead()
	require.Equal(t, []string{lockdepTitle(locking.TitleBadUnlock)}, rec3.titles())
	require.Contains(t, rec3.reports()[0].Detail, "but it holds the lock for read, not for write")
}

// lockdep_sys_exit(): a lock held when a syscall returns.
func TestLockdepHeldAtSyscallExit(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "luo_session.mutex")
	d.CheckNoLocksHeld("ioctl")
	require.Empty(t, rec.titles())
	m.Lock()
	d.CheckNoLocksHeld("ioctl")
	m.Unlock()
	d.CheckNoLocksHeld("ioctl")
	require.Equal(t, []string{lockdepTitle(locking.TitleHeldAtExit)}, rec.titles())
	detail := rec.reports()[0].Detail
	require.Contains(t, detail, "is leaving the kernel (ioctl) with locks still held!")
	require.Contains(t, detail, "1 lock held by task/")
	require.Contains(t, detail, "(luo_session.mutex){mutex}, at: luomodel/kernel/locking_test.TestLockdepHeldAtSyscallExit")
}

func TestLockdepAssertHeld(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "luo_session.mutex")
	var sem locking.RWSem
	sem.Init(d, "luo_session_global.incoming.rwsem")

	// Held: no report.
	m.Lock()
	m.AssertHeld()
	require.True(t, m.IsHeld())
	m.Unlock()
	sem.DownRead()
	sem.AssertHeld()
	sem.AssertHeldRead()
	sem.UpRead()
	sem.DownWrite()
	sem.AssertHeld()
	sem.AssertHeldWrite()
	sem.UpWrite()
	require.Empty(t, rec.titles())

	// Not held by this task (though held by another): reported.
	m.Lock()
	inTask(func() { m.AssertHeld() })
	m.Unlock()
	m.AssertHeld()
	sem.DownRead()
	sem.AssertHeldWrite()
	sem.UpRead()
	sem.DownWrite()
	sem.AssertHeldRead()
	sem.UpWrite()
	require.Equal(t, []string{
		lockdepTitle(locking.TitleAssertHeld),      // m, in the other task
		lockdepTitle(locking.TitleAssertHeldWrite), // m again is a duplicate
		lockdepTitle(locking.TitleAssertHeldRead),
	}, rec.titles())
	require.Contains(t, rec.reports()[0].Detail, "WARNING: lockdep_assert_held(luo_session.mutex) failed")
	require.Contains(t, rec.reports()[0].Detail, "(held by task/")
}

// Nesting subclasses tell instances of one class apart.
func TestLockdepLockNested(t *testing.T) {
	d, rec := newDomain(true)
	parent, child := newMutex(d, "inode.mutex"), newMutex(d, "inode.mutex")
	parent.Lock()
	child.LockNested(1)
	child.Unlock()
	parent.Unlock()

	var s1, s2 locking.RWSem
	s1.Init(d, "sb.rwsem")
	s2.Init(d, "sb.rwsem")
	s1.DownWrite()
	s2.DownWriteNested(1)
	s2.UpWrite()
	s1.UpWrite()
	s1.DownRead()
	s2.DownReadNested(1)
	s2.UpRead()
	s1.UpRead()
	require.Empty(t, rec.titles())

	// Without the annotation it is recursive locking.
	type abort struct{}
	parent.Lock()
	rec.setAbort(abort{})
	require.PanicsWithValue(t, abort{}, func() { child.Lock() })
	rec.setAbort(nil)
	parent.Unlock()
	require.Equal(t, []string{lockdepTitle(locking.TitleRecursive)}, rec.titles())

	// A subclass cannot excuse taking the same instance twice.
	parent.Lock()
	rec.setAbort(abort{})
	require.PanicsWithValue(t, abort{}, func() { parent.LockNested(1) })
	rec.setAbort(nil)
	parent.Unlock()
	require.Equal(t, lockdepTitle(locking.TitleRecursive), rec.titles()[1])

	// And a subclass out of range is a bug of its own.
	child.LockNested(locking.MaxSubclasses)
	child.Unlock()
	require.Equal(t, lockdepTitle(locking.TitleBadSubclass), rec.titles()[2])
}

// A trylock cannot deadlock: it adds no order check of its own, but what
// is taken under it is ordered after it.
func TestLockdepTrylock(t *testing.T) {
	d, rec := newDomain(true)
	a, b := newMutex(d, "A"), newMutex(d, "B")
	inTask(func() { lockAThenB(a, b) })
	b.Lock()
	require.True(t, a.TryLock()) // B then A, but only tried
	a.Unlock()
	b.Unlock()
	require.Empty(t, rec.titles())
}

// No false positives: many tasks, one consistent order, mutexes and
// rwsems, under -race.
func TestLockdepConsistentOrderNoReports(t *testing.T) {
	d, rec := newDomain(true)
	var top locking.RWSem
	top.Init(d, "outgoing.rwsem")
	sessions := make([]*locking.Mutex, 4)
	files := make([]*locking.Mutex, 4)
	for i := range sessions {
		sessions[i] = newMutex(d, "luo_session.mutex")
		files[i] = newMutex(d, "luo_file.mutex")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				k := (g + i) % len(sessions)
				if i%5 == 0 {
					top.DownWrite()
				} else {
					top.DownRead()
				}
				sessions[k].Lock()
				files[k].Lock()
				files[k].AssertHeld()
				if o := files[(k+1)%len(files)]; o.TryLock() {
					o.Unlock()
				}
				files[k].Unlock()
				if k+1 < len(sessions) { // parent before child, never wrapping around
					sessions[k+1].LockNested(1)
					sessions[k+1].Unlock()
				}
				sessions[k].Unlock()
				if i%5 == 0 {
					top.UpWrite()
				} else {
					top.UpRead()
				}
				d.CheckNoLocksHeld("ioctl")
			}
		}()
	}
	wg.Wait()
	require.Empty(t, rec.titles(), rec.dump())
}
