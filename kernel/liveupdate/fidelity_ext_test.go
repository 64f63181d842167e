package liveupdate_test

import (
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
	"luomodel/machine"
	"luomodel/proptest/account"
)

// This file pins the choices of issue 16 between upstream versions where
// the port could follow either: each test names the upstream commits it
// decides between.

// installProbe is a scheduler that runs nothing else: at every fd_install()
// it records the lockdep classes the current task holds.
type installProbe struct {
	dom *locking.Domain

	mu   sync.Mutex
	held [][]string // one entry per fd_install
}

func (p *installProbe) Yield(pt locking.Point) {
	if pt != locking.PointFDInstall {
		return
	}
	var classes []string
	for _, h := range p.dom.HeldLocks() {
		classes = append(classes, h.Class)
	}
	p.mu.Lock()
	p.held = append(p.held, classes)
	p.mu.Unlock()
}
func (p *installProbe) Block(locking.WaitObject) {}
func (p *installProbe) Wake(locking.WaitObject)  {}

// TestRetrieveFDHoldsSessionMutexThroughInstall: RETRIEVE_FD keeps the
// session mutex from the file lookup through the response and
// fd_install(), as 6.19's luo_session_retrieve_fd() (16cec0d26521) does
// with guard(mutex). The newest upstream releases it right after
// luo_retrieve_file(): "liveupdate: avoid mixing cleanup guards with goto
// in luo_session_retrieve_fd" (6af06e11bd48), a coding-style refactor, not
// a correctness fix, which the reference profile does not take. If the
// scope ever narrows, this fails.
func TestRetrieveFDHoldsSessionMutexThroughInstall(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	newFakeHandler(k1).register(t, k1)
	t1 := k1.NewTask()
	dev := openDev(t, t1)
	s, err := createSession(t1, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(t1, s, openNull(t, t1), 7))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	newFakeHandler(k2).register(t, k2)
	t2 := k2.NewTask()
	dev2 := openDev(t, t2)
	s2, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)

	probe := &installProbe{dom: k2.Domain()}
	k2.Domain().SetScheduler(probe)
	_, err = retrieveFD(t2, s2, 7)
	k2.Domain().SetScheduler(nil)
	require.NoError(t, err)
	require.Len(t, probe.held, 1, "one fd_install")
	require.Contains(t, probe.held[0], "luo_session.mutex", "held at fd_install: %q", probe.held[0])
	t2.Exit()
}

// failedDeserialize hands over session "a" with nA files and session "b"
// with two files, all of the fake handler, and fails the next kernel's
// deserialization at b's second luo_file allocation. It checks what the
// failure left and returns the new kernel and its fake handler.
func failedDeserialize(t *testing.T, nA int) (*kernel.Kernel, *fakeHandler) {
	t.Helper()
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		Report:     func(r *bug.Report) { t.Errorf("%s", r.String()) },
		Faults:     fault.New(1),
	})
	require.NoError(t, err)
	k1 := m.Kernel()
	newFakeHandler(k1).register(t, k1)
	t1 := k1.NewTask()
	dev := openDev(t, t1)
	a, err := createSession(t1, dev, "a")
	require.NoError(t, err)
	token := uint64(1)
	for range nA {
		require.NoError(t, preserveFD(t1, a, openNull(t, t1), token))
		token++
	}
	b, err := createSession(t1, dev, "b")
	require.NoError(t, err)
	require.NoError(t, preserveFD(t1, b, openNull(t, t1), 100))
	require.NoError(t, preserveFD(t1, b, openNull(t, t1), 101))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	h2 := newFakeHandler(k2)
	h2.register(t, k2)
	block := k2.LUO().Snapshot().Incoming.HeaderSer
	require.NotZero(t, block)
	m.Faults().Arm(fault.LUOFileAlloc, fault.Attr{Nth: uint64(nA + 2)})
	t2 := k2.NewTask()
	_, err = t2.Open("/dev/liveupdate", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.EIO)
	t2.Exit()

	st := k2.LUO().Snapshot()
	require.Equal(t, syscall.ENOMEM, st.DeserializeErr)
	require.Equal(t, 2, st.Incoming.Count, "the sessions restored so far stay (no undo, as upstream)")
	require.Len(t, st.Incoming.Sessions[0].Files, nA)
	require.Empty(t, st.Incoming.Sessions[1].Files, "the failed set is unwound")
	require.Zero(t, st.Incoming.Sessions[1].FilesPA, "and its file array freed")
	require.Zero(t, st.Incoming.HeaderSer, "the session block is freed")
	i := slices.Index(st.Handlers, h2.fh.Compatible)
	require.GreaterOrEqual(t, i, 0)
	require.Equal(t, int64(nA), st.HandlerUsers[i], "only the restored files pin the handler")

	led := account.TakeKernel(k2)
	require.NoError(t, led.Err(), "%s", led)
	for _, e := range led.Incoming {
		if e.Block.PA == block {
			require.Equal(t, account.Restored, e.State, "session block:\n%s", led)
		}
	}
	return k2, h2
}

// TestFailedDeserializeUnwindsFailedSet: a failed deserialization frees
// the incoming session block and unwinds the file set that failed (its
// luo_files freed, their pins on the handler dropped, its array freed),
// as the newest upstream does ("liveupdate: Remove limit on the number of
// sessions", 2a441a14c2c0; "liveupdate: Remove limit on the number of
// files per session", 1d1153097f4d); 6.19 (7f790dd21a93, b2135d1cb0e3)
// left both behind, so a handler whose files came from the failed set
// could never be unregistered (M26). Sessions restored before the failure
// keep their files and pins: leaked by design, as in every upstream
// version.
func TestFailedDeserializeUnwindsFailedSet(t *testing.T) {
	t.Run("only the failed set used the handler", func(t *testing.T) {
		k, h := failedDeserialize(t, 0)
		require.NoError(t, k.LUO().UnregisterFileHandler(&h.fh))
	})
	t.Run("a restored session still uses it", func(t *testing.T) {
		k, h := failedDeserialize(t, 1)
		require.ErrorIs(t, k.LUO().UnregisterFileHandler(&h.fh), syscall.EBUSY)
	})
}
