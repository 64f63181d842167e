package scenario_test

import (
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/vfs"
	"luomodel/machine"
	lu "luomodel/userspace/libliveupdate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newMachine boots a machine with live update on and a fault injector
// (nothing armed); any report fails t.
func newMachine(t *testing.T) *machine.Machine {
	t.Helper()
	m, err := machine.New(machine.Config{
		LiveUpdate: true,
		MemoryMiB:  64,
		Report:     func(r *bug.Report) { t.Errorf("%s", r.String()) },
		Faults:     fault.New(1),
	})
	require.NoError(t, err)
	return m
}

// handOver creates one empty session per name in a first kernel and
// live-updates; the new kernel has not deserialized yet (no open of
// /dev/liveupdate), so its incoming session block can still be rewritten.
func handOver(t *testing.T, names ...string) *machine.Machine {
	t.Helper()
	m := newMachine(t)
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	for _, n := range names {
		_, err := lu.CreateSession(task, dev, n)
		require.NoError(t, err)
	}
	require.NoError(t, m.Kexec())
	st := m.Kernel().LUO().Snapshot()
	require.False(t, st.Deserialized)
	require.NotZero(t, st.Incoming.HeaderSer)
	return m
}

// setIncomingName overwrites the name of incoming session entry i, as a
// corrupt or hostile previous kernel would have written it.
func setIncomingName(t *testing.T, m *machine.Machine, i int, name string) {
	t.Helper()
	root := m.LastHandover()
	img, err := liveupdate.LocateHandover(m.RAM(), root)
	require.NoError(t, err)
	require.Equal(t, m.Kernel().LUO().Snapshot().Incoming.HeaderSer, img.Sessions)
	require.NoError(t, img.SetSessionName(i, name))
}

// openTwice opens /dev/liveupdate twice in the new kernel: a failed
// deserialization fails both with EIO (spec S9: the result is cached).
func openTwice(t *testing.T, m *machine.Machine) {
	t.Helper()
	task := m.Kernel().NewTask()
	for i := 0; i < 2; i++ {
		_, err := task.Open("/dev/liveupdate", syscall.O_RDWR)
		require.ErrorIs(t, err, syscall.EIO, "open %d after a failed deserialization", i+1)
	}
	st := m.Kernel().LUO().Snapshot()
	require.True(t, st.Deserialized)
	require.NotZero(t, st.DeserializeErr)
	require.False(t, st.InUse)
}

// TestHostileHandoverDuplicateName: two incoming sessions with the same
// name. The second insert fails (EEXIST), the session object is freed and
// the failure logged; deserialization fails, for good. Kills M3, M4,
// V6-deserialized and V6-logfree.
func TestHostileHandoverDuplicateName(t *testing.T) {
	m := handOver(t, "a", "b")
	setIncomingName(t, m, 1, "a")
	openTwice(t, m)
	st := m.Kernel().LUO().Snapshot()
	require.Equal(t, 1, st.Incoming.Count, "the first session stays, as upstream (no undo)")
	require.Equal(t, "a", st.Incoming.Sessions[0].Name)
}

// TestHandoverEmptyName: an incoming session with an empty name, as a
// 6.19 kernel without the CREATE_SESSION name check (M10) could hand over,
// is restored as upstream restores it: luo_session_deserialize() in 6.19
// (0153094d03df, 7f790dd21a93) and luo_session_deserialize_one() in the
// newest form (be9d10d16765) copy the name unchecked, and M10 checks only
// CREATE_SESSION. RETRIEVE_SESSION with an all-zero name finds it, and
// GET_NAME returns "". (Until issue 16 the port rejected it and failed the
// whole deserialization.)
func TestHandoverEmptyName(t *testing.T) {
	m := handOver(t, "a", "b")
	setIncomingName(t, m, 0, "")
	task := m.Kernel().NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	st := m.Kernel().LUO().Snapshot()
	require.Zero(t, st.DeserializeErr)
	require.Equal(t, 2, st.Incoming.Count)
	require.Equal(t, "", st.Incoming.Sessions[0].Name)
	require.Equal(t, "b", st.Incoming.Sessions[1].Name)
	s, err := lu.RetrieveSession(task, dev, "")
	require.NoError(t, err)
	name, err := lu.SessionName(task, s)
	require.NoError(t, err)
	require.Equal(t, "", name)
	_, err = lu.RetrieveSession(task, dev, "a")
	require.ErrorIs(t, err, syscall.ENOENT)
	require.NoError(t, lu.FinishSession(task, s))
	task.Exit()
}

// TestHostileHandoverUnterminatedName: a 64-byte session name with no NUL,
// which no upstream kernel writes (it serializes names with strscpy()),
// is corrupt data: deserialization fails with EINVAL before a session
// object exists, for good (a deliberate difference, docs/README.md). Kills
// M3 and V6-deserialized.
func TestHostileHandoverUnterminatedName(t *testing.T) {
	m := handOver(t, "a", "b")
	setIncomingName(t, m, 0, strings.Repeat("x", liveupdate.SessionNameLength))
	openTwice(t, m)
	st := m.Kernel().LUO().Snapshot()
	require.Equal(t, syscall.EINVAL, st.DeserializeErr)
	require.Zero(t, st.Incoming.Count)
}

// TestDeserializeAllocFailureIsCached: luo_session_alloc() fails while
// the first open deserializes; that failure is cached like any other, so
// the second open fails too (spec S9). Kills M9.
func TestDeserializeAllocFailureIsCached(t *testing.T) {
	m := handOver(t, "a", "b")
	m.Faults().ArmNext(fault.LUOSessionAlloc)
	openTwice(t, m)
	require.Equal(t, syscall.ENOMEM, m.Kernel().LUO().Snapshot().DeserializeErr)
}

// dummyHandler is a file handler that preserves nothing; registering and
// unregistering it changes the handler list.
func dummyHandler(i int) *liveupdate.FileHandler {
	return &liveupdate.FileHandler{
		Compatible: fmt.Sprintf("zoo-dummy-v%d", i),
		Ops: &liveupdate.FileOps{
			CanPreserve: func(*liveupdate.FileHandler, *vfs.File) bool { return false },
			Preserve:    func(*liveupdate.FileOpArgs) error { return syscall.EINVAL },
			Unpreserve:  func(*liveupdate.FileOpArgs) {},
			Retrieve:    func(*liveupdate.FileOpArgs) error { return syscall.EINVAL },
			Finish:      func(*liveupdate.FileOpArgs) {},
		},
	}
}

// churnHandlers registers and unregisters dummy handlers until stop is
// closed, as module loads and unloads would.
func churnHandlers(t *testing.T, k *kernel.Kernel, stop <-chan struct{}, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		h := dummyHandler(i % 4)
		if err := k.LUO().RegisterFileHandler(h); err != nil {
			t.Errorf("register: %v", err)
			return
		}
		if err := k.LUO().UnregisterFileHandler(h); err != nil {
			t.Errorf("unregister: %v", err)
			return
		}
	}
}

// TestRegistrationConcurrentWithPreserve: handlers come and go while a
// task preserves memfds, so luo_preserve_file() walks the handler list
// while it changes. Under -race, a walk without the registry lock is a
// data race (M18).
func TestRegistrationConcurrentWithPreserve(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	task := k.NewTask()
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go churnHandlers(t, k, stop, &wg)
	defer func() { close(stop); wg.Wait() }()

	for round := 0; round < 8; round++ {
		sess, err := lu.CreateSession(task, dev, fmt.Sprintf("s%d", round))
		require.NoError(t, err)
		for tok := uint64(0); tok < 16; tok++ {
			fd, err := task.MemfdCreate("zoo", 0)
			require.NoError(t, err)
			require.NoError(t, lu.PreserveFD(task, sess, fd, tok))
			require.NoError(t, task.Close(fd))
		}
		require.NoError(t, task.Close(sess))
	}
}

// TestRegistrationConcurrentWithDeserialize: handlers come and go while
// the first open of /dev/liveupdate deserializes a session with files, so
// luo_file_deserialize() walks the handler list while it changes (M18).
func TestRegistrationConcurrentWithDeserialize(t *testing.T) {
	for round := 0; round < 4; round++ {
		m := newMachine(t)
		task := m.Kernel().NewTask()
		dev, err := lu.OpenDevice(task)
		require.NoError(t, err)
		sess, err := lu.CreateSession(task, dev, "s")
		require.NoError(t, err)
		for tok := uint64(0); tok < 32; tok++ {
			fd, err := task.MemfdCreate("zoo", 0)
			require.NoError(t, err)
			require.NoError(t, lu.PreserveFD(task, sess, fd, tok))
		}
		require.NoError(t, m.Kexec())

		k := m.Kernel()
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go churnHandlers(t, k, stop, &wg)
		task2 := k.NewTask()
		dev2, err := lu.OpenDevice(task2)
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		s2, err := lu.RetrieveSession(task2, dev2, "s")
		require.NoError(t, err)
		require.NoError(t, lu.FinishSession(task2, s2))
		task2.Exit()
	}
}
