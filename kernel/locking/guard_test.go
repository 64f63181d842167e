package locking_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

func TestGuard(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "test.mutex")
	var sem locking.RWSem
	sem.Init(d, "test.rwsem")

	func() {
		defer m.Guard()()
		m.AssertHeld()
	}()
	func() {
		defer sem.GuardRead()()
		sem.AssertHeldRead()
	}()
	func() {
		defer sem.GuardWrite()()
		sem.AssertHeldWrite()
	}()
	errBusy := errors.New("busy")
	require.ErrorIs(t, locking.Scoped(m, func() error {
		m.AssertHeld()
		return errBusy
	}), errBusy)
	require.NoError(t, locking.Scoped(sem.Reader(), func() error { sem.AssertHeldRead(); return nil }))
	require.NoError(t, locking.Scoped(sem.Writer(), func() error { sem.AssertHeldWrite(); return nil }))
	// A panic in the block still unlocks.
	require.Panics(t, func() { _ = locking.Scoped(m, func() error { panic("boom") }) })
	require.True(t, m.TryLock())
	m.Unlock()
	d.CheckNoLocksHeld("test")
	require.Empty(t, rec.titles())
}

// Locks used before Init work, as plain locks outside lockdep and the
// scheduler: a bug that nothing can report until an Init gives the lock a
// domain (lock_debug_test.go), but not one that hangs or panics.
func TestZeroValueLocks(t *testing.T) {
	var m locking.Mutex
	m.Lock()
	require.False(t, m.TryLock())
	m.AssertHeld() // no domain: nothing to check
	m.Unlock()
	m.LockNested(1)
	m.Unlock()

	var sem locking.RWSem
	sem.DownRead()
	require.True(t, sem.TryDownRead())
	require.False(t, sem.TryDownWrite())
	sem.UpRead()
	sem.UpRead()
	sem.DownWrite()
	require.False(t, sem.TryDownRead())
	sem.UpWrite()
	sem.DownWriteNested(1)
	sem.UpWrite()
	sem.DownReadNested(1)
	sem.UpRead()

	// Inside a lockdep domain a zero lock is still invisible to it, and
	// without an Init nothing reports it.
	d, rec := newDomain(true)
	a := newMutex(d, "A")
	inTask(func() { lockAThenB(a, &m) })
	inTask(func() { lockBThenA(a, &m) })
	require.Empty(t, rec.titles())
}

// Locks of different domains never meet in one graph.
func TestDomainsAreSeparate(t *testing.T) {
	d1, rec1 := newDomain(true)
	d2, rec2 := newDomain(true)
	inTask(func() { lockAThenB(newMutex(d1, "A"), newMutex(d1, "B")) })
	inTask(func() { lockBThenA(newMutex(d2, "A"), newMutex(d2, "B")) })
	require.Empty(t, rec1.titles())
	require.Empty(t, rec2.titles())
	require.True(t, d1.LockdepEnabled())
	d3, _ := newDomain(false)
	require.False(t, d3.LockdepEnabled())
	require.Empty(t, d3.DebugShowAllLocks())
}
