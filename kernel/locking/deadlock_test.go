//lint:file-ignore SA2001 these tests are about lock order and waits, not what the locks guard

package locking_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// configureDeadlock turns go-deadlock on for one test and off again after.
func configureDeadlock(t *testing.T, c locking.DeadlockDetection) {
	locking.ConfigureDeadlockDetection(c)
	t.Cleanup(func() { locking.ConfigureDeadlockDetection(locking.DeadlockDetection{}) })
}

// go-deadlock's watchdog reports a free-running wait longer than its
// timeout as bug.KindDeadlock; the waiter carries on once the lock is
// released, so nothing is left behind.
func TestGoDeadlockTimeout(t *testing.T) {
	d, rec := newDomain(false)
	configureDeadlock(t, locking.DeadlockDetection{
		Enabled: true,
		Timeout: 50 * time.Millisecond,
		Report:  locking.DeadlockReporter(d.Reporter()),
	})
	var m locking.Mutex
	m.Init(d, "test.mutex")
	m.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Lock() // waits past the timeout
		m.Unlock()
	}()
	require.Eventually(t, func() bool { return d.Reporter().Count(bug.KindDeadlock) > 0 }, 10*time.Second, time.Millisecond)
	m.Unlock()
	<-done
	require.Equal(t, string(bug.KindDeadlock)+": "+locking.TitleGoDeadlock, rec.titles()[0])
	require.Contains(t, rec.reports()[0].Detail, "POTENTIAL DEADLOCK")
	require.Contains(t, rec.reports()[0].Detail, "Have been trying to lock it again for more than 50ms")
}

// With LockOrder, go-deadlock also checks instance order; here a real
// inversion of two plain locks, which lockdep (off in this domain) misses.
func TestGoDeadlockLockOrder(t *testing.T) {
	d, rec := newDomain(false)
	configureDeadlock(t, locking.DeadlockDetection{
		Enabled:   true,
		LockOrder: true,
		Report:    locking.DeadlockReporter(d.Reporter()),
	})
	a, b := newMutex(d, "A"), newMutex(d, "B")
	inTask(func() { lockAThenB(a, b) })
	require.Empty(t, rec.titles())
	inTask(func() { lockBThenA(a, b) })
	require.Equal(t, []string{string(bug.KindDeadlock) + ": " + locking.TitleGoDeadlock}, rec.titles())
	require.Contains(t, rec.reports()[0].Detail, "Inconsistent locking")
}

// Off (the default), go-deadlock reports nothing, however long the wait.
func TestGoDeadlockOffByDefault(t *testing.T) {
	d, rec := newDomain(false)
	a, b := newMutex(d, "A"), newMutex(d, "B")
	inTask(func() { lockAThenB(a, b) })
	inTask(func() { lockBThenA(a, b) })
	require.Empty(t, rec.titles())
}

// A domain built with NoDeadlockWatch keeps go-deadlock away from its
// locks even when it is on: the inversion go-deadlock's order check
// reports above goes unseen, while the locks still exclude each other and
// a lock taken and released through both faces (free-running, then under
// a scheduler) stays consistent.
func TestNoDeadlockWatch(t *testing.T) {
	rec := &recorder{}
	d := locking.NewDomain(locking.Options{Reporter: bug.NewReporter(rec.handle), NoDeadlockWatch: true})
	configureDeadlock(t, locking.DeadlockDetection{
		Enabled:   true,
		LockOrder: true,
		Report:    locking.DeadlockReporter(d.Reporter()),
	})
	a, b := newMutex(d, "A"), newMutex(d, "B")
	inTask(func() { lockAThenB(a, b) })
	inTask(func() { lockBThenA(a, b) })
	require.Empty(t, rec.titles())

	a.Lock()
	require.False(t, a.TryLock())
	a.Unlock()
	require.True(t, a.TryLock())
	a.Unlock()

	var s locking.RWSem
	s.Init(d, "S")
	s.DownRead()
	require.False(t, s.TryDownWrite())
	require.True(t, s.TryDownRead())
	s.UpRead()
	s.UpRead()
	s.DownWrite()
	require.False(t, s.TryDownRead())
	s.UpWrite()
}

// In a watched domain a lock taken through go-deadlock and released under
// a scheduler goes back through go-deadlock, so go-deadlock keeps no stale
// holder: taking it again here would otherwise be "Recursive locking".
func TestWatchedFaceSurvivesScheduler(t *testing.T) {
	d, rec := newDomain(false)
	configureDeadlock(t, locking.DeadlockDetection{
		Enabled:   true,
		LockOrder: true,
		Report:    locking.DeadlockReporter(d.Reporter()),
	})
	m := newMutex(d, "M")
	var s locking.RWSem
	s.Init(d, "S")
	m.Lock()
	s.DownRead()
	sch := newTestSched(d, false)
	sch.Go("T", func() {
		m.Unlock()
		s.UpRead()
		m.Lock()
		m.Unlock()
	})
	sch.Run()
	m.Lock()
	m.Unlock()
	require.True(t, s.TryDownWrite())
	s.UpWrite()
	require.Empty(t, rec.titles())
}
