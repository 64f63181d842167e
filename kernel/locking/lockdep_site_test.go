//lint:file-ignore SA2001 these tests only need a lock taken and released

package locking_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

//go:noinline
func lockViaGuard(m *locking.Mutex, d *locking.Domain) string {
	defer m.Guard()()
	return d.DebugShowAllLocks()
}

//go:noinline
func lockViaScoped(m *locking.Mutex, d *locking.Domain) string {
	var out string
	_ = locking.Scoped(m, func() error {
		out = d.DebugShowAllLocks()
		return nil
	})
	return out
}

//go:noinline
func downReadAndShow(s *locking.RWSem, d *locking.Domain) string {
	s.DownRead()
	defer s.UpRead()
	return d.DebugShowAllLocks()
}

// A held lock records where it was acquired: the code that called the lock
// operation, not this package's frames (Guard, Scoped, Lock, lockdep).
func TestLockdepHeldLockSite(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "site.mutex")
	var s locking.RWSem
	s.Init(d, "site.rwsem")

	require.Contains(t, lockViaGuard(m, d), "(site.mutex){mutex}, at: luomodel/kernel/locking_test.lockViaGuard (")
	require.Contains(t, lockViaScoped(m, d), "(site.mutex){mutex}, at: luomodel/kernel/locking_test.lockViaScoped (")
	require.Contains(t, downReadAndShow(&s, d), "(site.rwsem){rwsem:R}, at: luomodel/kernel/locking_test.downReadAndShow (")

	m.Lock()
	held := d.HeldLocks()
	m.Unlock()
	require.Len(t, held, 1)
	require.True(t, strings.HasPrefix(held[0].At, "luomodel/kernel/locking_test.TestLockdepHeldLockSite ("), held[0].At)
	require.Empty(t, d.HeldLocks())
	require.Empty(t, rec.titles())
}

// A report handler that panics aborts the acquisition: the lock is not
// left recorded as held.
func TestLockdepAbortedAcquireIsNotRecorded(t *testing.T) {
	d, rec := newDomain(true)
	a, b := newMutex(d, "A"), newMutex(d, "B")
	inTask(func() { lockAThenB(a, b) })

	type abort struct{}
	b.Lock()
	rec.setAbort(abort{})
	require.PanicsWithValue(t, abort{}, func() { a.Lock() })
	rec.setAbort(nil)
	held := d.HeldLocks()
	require.Len(t, held, 1)
	require.Equal(t, "B", held[0].Class)
	require.False(t, a.IsHeld())
	b.Unlock()
	require.Empty(t, d.HeldLocks())
	require.Equal(t, []string{lockdepTitle(locking.TitleCircular)}, rec.titles())
	// The report was built before the lock was recorded: one lock held.
	require.Contains(t, rec.reports()[0].Detail, "1 lock held by task/")

	// The lock itself was never taken.
	require.True(t, a.TryLock())
	a.Unlock()
}

// A dependency seen before costs no allocation: the held lock's site lives
// in the held-lock stack and the order check is a lookup.
func TestLockdepKnownOrderDoesNotAllocate(t *testing.T) {
	d, rec := newDomain(true)
	outer, inner := newMutex(d, "alloc.outer"), newMutex(d, "alloc.inner")
	var s locking.RWSem
	s.Init(d, "alloc.rwsem")
	step := func() {
		s.DownRead()
		outer.Lock()
		inner.Lock()
		inner.AssertHeld()
		inner.Unlock()
		outer.Unlock()
		s.UpRead()
	}
	step()
	require.Zero(t, testing.AllocsPerRun(100, step))
	require.Empty(t, rec.titles())
}

// Many tasks taking the same known order at once: the fast path takes no
// graph lock, and nothing is reported.
func TestLockdepKnownOrderConcurrent(t *testing.T) {
	d, rec := newDomain(true)
	outer, inner := newMutex(d, "conc.outer"), newMutex(d, "conc.inner")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				outer.Lock()
				inner.Lock()
				inner.Unlock()
				outer.Unlock()
			}
		})
	}
	wg.Wait()
	require.Empty(t, rec.titles())
	require.Empty(t, d.HeldLocks())
}
