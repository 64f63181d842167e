package liveupdate_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/machine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDeviceAbsentWhenDisabled(t *testing.T) {
	for _, cfg := range []machine.Config{{}, {LiveUpdate: true, KHODisabled: true}} {
		cfg.Report = func(r *bug.Report) { t.Errorf("%s", r.String()) }
		m, err := machine.New(cfg)
		require.NoError(t, err)
		k := m.Kernel()
		require.False(t, k.LUO().Enabled())
		_, err = k.NewTask().Open("/dev/liveupdate", syscall.O_RDWR)
		require.ErrorIs(t, err, syscall.ENOENT)
		h := newFakeHandler(k)
		require.ErrorIs(t, k.LUO().RegisterFileHandler(&h.fh), syscall.EOPNOTSUPP)
		require.ErrorIs(t, k.LUO().UnregisterFileHandler(&h.fh), syscall.EOPNOTSUPP)
	}
}

func TestDeviceOpenIsExclusive(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	t1, t2 := k.NewTask(), k.NewTask()
	fd := openDev(t, t1)
	_, err := t2.Open("/dev/liveupdate", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.EBUSY)
	require.NoError(t, t1.Close(fd))
	fd2 := openDev(t, t2)
	require.NoError(t, t2.Close(fd2))
	require.Equal(t, uint64(0), k.LUO().LiveupdateNumber())
}

// TestDeviceIoctlDispatchErrnos drives /dev/liveupdate's dispatcher with
// raw buffers through every error of the spec's Part 1.6.
func TestDeviceIoctlDispatchErrnos(t *testing.T) {
	m := newMachine(t)
	task := m.Kernel().NewTask()
	dev := openDev(t, task)

	// Unknown nr: EINVAL (not ENOTTY).
	require.ErrorIs(t, task.Ioctl(dev, 0xBA02, sessionBuf("x")), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(dev, 0xBA40, sessionBuf("x")), syscall.EINVAL)
	// The size word itself faults.
	require.ErrorIs(t, task.Ioctl(dev, liveupdate.IoctlCreateSession, []byte{72, 0}), syscall.EFAULT)
	// Known nr, wrong type byte or encoded size: ENOTTY.
	require.ErrorIs(t, task.Ioctl(dev, 0xBB00, sessionBuf("x")), syscall.ENOTTY)
	require.ErrorIs(t, task.Ioctl(dev, 0x4048BA00, sessionBuf("x")), syscall.ENOTTY)
	// Below the minimum size: EINVAL.
	b := sessionBuf("x")
	binary.LittleEndian.PutUint32(b, liveupdate.SessionArgSize-1)
	require.ErrorIs(t, task.Ioctl(dev, liveupdate.IoctlCreateSession, b), syscall.EINVAL)
	// Larger struct with a non-zero tail: E2BIG; a zero tail is fine.
	big := append(sessionBuf("x"), make([]byte, 8)...)
	binary.LittleEndian.PutUint32(big, uint32(len(big)))
	big[len(big)-1] = 1
	require.ErrorIs(t, task.Ioctl(dev, liveupdate.IoctlCreateSession, big), syscall.E2BIG)
	big[len(big)-1] = 0
	require.NoError(t, task.Ioctl(dev, liveupdate.IoctlCreateSession, big))
	require.Equal(t, uint32(len(big)), binary.LittleEndian.Uint32(big), "size is not rewritten")
	// size larger than the buffer: EFAULT.
	b = sessionBuf("y")
	binary.LittleEndian.PutUint32(b, 200)
	require.ErrorIs(t, task.Ioctl(dev, liveupdate.IoctlCreateSession, b), syscall.EFAULT)
	// Name validation (M10).
	_, err := createSession(task, dev, "")
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = createSession(task, dev, strings.Repeat("n", 64))
	require.ErrorIs(t, err, syscall.EINVAL)
	fd, err := createSession(task, dev, strings.Repeat("n", 63))
	require.NoError(t, err)
	name, err := task.Readlink(fd)
	require.NoError(t, err)
	require.Equal(t, "anon_inode:[luo_session] "+strings.Repeat("n", 63), name)
	flags, err := task.FcntlGetFD(fd)
	require.NoError(t, err)
	require.Equal(t, syscall.FD_CLOEXEC, flags)
	// Duplicate name: EEXIST; unknown incoming session: ENOENT.
	_, err = createSession(task, dev, "x")
	require.ErrorIs(t, err, syscall.EEXIST)
	_, err = retrieveSession(task, dev, "x")
	require.ErrorIs(t, err, syscall.ENOENT)
	// A failed create leaves no fd behind.
	fds, err := task.FDs()
	require.NoError(t, err)
	require.Len(t, fds, 3) // dev, "x", "nnn..."
}

// TestSessionIoctlErrnos drives a session file's dispatcher and ops.
func TestSessionIoctlErrnos(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	h := newFakeHandler(k)
	h.register(t, k)
	task := k.NewTask()
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)

	null := openNull(t, task)
	// Dispatch: nr below the session base or past the table: EINVAL.
	require.ErrorIs(t, task.Ioctl(s, 0xBA3F, fdBuf(null, 1)), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, 0xBA44, fdBuf(null, 1)), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, 0xBA00, sessionBuf("s")), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, 0xBB40, fdBuf(null, 1)), syscall.ENOTTY)
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionPreserveFD, []byte{1}), syscall.EFAULT)
	short := fdBuf(null, 1)
	binary.LittleEndian.PutUint32(short, 15)
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionPreserveFD, short), syscall.EINVAL)
	tail := append(fdBuf(null, 1), 0, 0, 0, 7)
	binary.LittleEndian.PutUint32(tail, uint32(len(tail)))
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionPreserveFD, tail), syscall.E2BIG)

	// Session type (M11): retrieve/finish are for incoming sessions only,
	// and the check comes before the size check.
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionRetrieveFD, fdBuf(0, 1)), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionFinish, finishBuf(0)), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionFinish, []byte{1, 0, 0, 0}), syscall.EINVAL)

	// GET_NAME: both kinds; reserved must be zero (M22).
	gn := getNameBuf(0)
	require.NoError(t, task.Ioctl(s, liveupdate.IoctlSessionGetName, gn))
	got := liveupdate.DecodeGetNameArg(gn)
	require.Equal(t, "s", strings.TrimRight(string(got.Name[:]), "\x00"))
	require.ErrorIs(t, task.Ioctl(s, liveupdate.IoctlSessionGetName, getNameBuf(1)), syscall.EINVAL)
	// strscpy(), not strscpy_pad(): the caller's bytes after the NUL stay.
	gn = getNameBuf(0)
	for i := liveupdate.GetNameArgOffName; i < len(gn); i++ {
		gn[i] = 0xAA
	}
	require.NoError(t, task.Ioctl(s, liveupdate.IoctlSessionGetName, gn))
	require.Equal(t, []byte{'s', 0, 0xAA}, gn[liveupdate.GetNameArgOffName:liveupdate.GetNameArgOffName+3])

	// PRESERVE_FD errors in order.
	require.ErrorIs(t, preserveFD(task, s, 999, 1), syscall.EBADF)
	require.ErrorIs(t, preserveFD(task, s, dev, 1), syscall.ENOENT) // no handler
	require.NoError(t, preserveFD(task, s, null, 1))
	require.ErrorIs(t, preserveFD(task, s, null, 1), syscall.EEXIST)
	require.ErrorIs(t, preserveFD(task, s, null, 2), syscall.EBUSY) // M17: same file
	dup, err := task.Dup(null)
	require.NoError(t, err)
	require.ErrorIs(t, preserveFD(task, s, dup, 3), syscall.EBUSY)
	s2, err := createSession(task, dev, "s2")
	require.NoError(t, err)
	require.ErrorIs(t, preserveFD(task, s2, null, 1), syscall.EBUSY) // in another session
	require.Equal(t, 1, h.count("preserve"))

	// The handler is in use: it cannot be unregistered.
	require.ErrorIs(t, k.LUO().UnregisterFileHandler(&h.fh), syscall.EBUSY)
	// Closing the session unpreserves; the file can be preserved again.
	require.NoError(t, task.Close(s))
	require.Equal(t, 1, h.count("unpreserve"))
	require.NoError(t, preserveFD(task, s2, null, 1))
	require.NoError(t, task.Close(s2))
	require.NoError(t, k.LUO().UnregisterFileHandler(&h.fh))
	require.ErrorIs(t, k.LUO().UnregisterFileHandler(&h.fh), syscall.ENOENT)
	st := k.LUO().Snapshot()
	require.Zero(t, st.Outgoing.Count)
	require.Empty(t, st.Preserved)
}

func TestRegisterFileHandlerValidation(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	h := newFakeHandler(k)
	bad := *h.fh.Ops
	bad.Finish = nil
	require.ErrorIs(t, k.LUO().RegisterFileHandler(&liveupdate.FileHandler{Compatible: "x", Ops: &bad}), syscall.EINVAL)
	long := liveupdate.FileHandler{Compatible: strings.Repeat("c", liveupdate.HandlerCompatLength), Ops: h.fh.Ops}
	require.ErrorIs(t, k.LUO().RegisterFileHandler(&long), syscall.EINVAL)
	h.register(t, k)
	dup := liveupdate.FileHandler{Compatible: "fake-v1", Ops: h.fh.Ops}
	require.ErrorIs(t, k.LUO().RegisterFileHandler(&dup), syscall.EEXIST)
	require.ErrorIs(t, k.LUO().RegisterFileHandler(&h.fh), syscall.EEXIST)
}

// TestSessionLimit: exactly 819 outgoing sessions, then ENOMEM.
func TestSessionLimit(t *testing.T) {
	m := newMachine(t)
	task := m.Kernel().NewTask()
	dev := openDev(t, task)
	for i := 0; i < liveupdate.SessionMax; i++ {
		_, err := createSession(task, dev, fmt.Sprintf("s%d", i))
		require.NoError(t, err, "session %d", i)
	}
	_, err := createSession(task, dev, "one-too-many")
	require.ErrorIs(t, err, syscall.ENOMEM)
	// ENOMEM is checked before the duplicate test.
	_, err = createSession(task, dev, "s0")
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.Equal(t, liveupdate.SessionMax, m.Kernel().LUO().Snapshot().Outgoing.Count)
}

// TestFileLimit: exactly 128 files per session, then ENOSPC.
func TestFileLimit(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	h := newFakeHandler(k)
	h.register(t, k)
	task := k.NewTask()
	dev := openDev(t, task)
	s, err := createSession(task, dev, "s")
	require.NoError(t, err)
	for i := 0; i < liveupdate.FileMax; i++ {
		require.NoError(t, preserveFD(task, s, openNull(t, task), uint64(i)), "file %d", i)
	}
	null := openNull(t, task)
	require.ErrorIs(t, preserveFD(task, s, null, 1000), syscall.ENOSPC)
	// EEXIST is checked before ENOSPC.
	require.ErrorIs(t, preserveFD(task, s, null, 0), syscall.EEXIST)
	st := k.LUO().Snapshot()
	require.Equal(t, liveupdate.FileMax, st.Outgoing.Sessions[0].FileCount)
	require.Len(t, st.Preserved, liveupdate.FileMax)
	require.NoError(t, task.Close(s))
	require.Equal(t, liveupdate.FileMax, h.count("unpreserve"))
}

// TestKexecRoundTrip: names, tokens and serialized data survive; the
// live-update number increments; closed sessions are gone; retrieval is
// idempotent; incoming and outgoing sessions of one name coexist.
func TestKexecRoundTrip(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	h1 := newFakeHandler(k1)
	h1.register(t, k1)
	t1 := k1.NewTask()
	dev := openDev(t, t1)
	a, err := createSession(t1, dev, "a")
	require.NoError(t, err)
	require.NoError(t, preserveFD(t1, a, openNull(t, t1), 11)) // data 0x1000
	require.NoError(t, preserveFD(t1, a, openNull(t, t1), 22)) // data 0x1001
	_, err = createSession(t1, dev, "b")
	require.NoError(t, err)
	gone, err := createSession(t1, dev, "gone")
	require.NoError(t, err)
	require.NoError(t, preserveFD(t1, gone, openNull(t, t1), 1))
	require.NoError(t, t1.Close(gone))

	require.NoError(t, m.Kexec())
	require.Equal(t, 2, h1.count("freeze"))
	_, err = t1.Open("/dev/null", 0)
	require.ErrorIs(t, err, syscall.ESRCH)

	k2 := m.Kernel()
	require.Equal(t, uint64(1), k2.LUO().LiveupdateNumber())
	h2 := newFakeHandler(k2)
	h2.register(t, k2)
	t2 := k2.NewTask()
	dev2 := openDev(t, t2)
	_, err = retrieveSession(t2, dev2, "gone")
	require.ErrorIs(t, err, syscall.ENOENT)

	st := k2.LUO().Snapshot()
	require.Equal(t, 2, st.Incoming.Count)
	require.Equal(t, "a", st.Incoming.Sessions[0].Name)
	require.Equal(t, "b", st.Incoming.Sessions[1].Name)
	require.Len(t, st.Incoming.Sessions[0].Files, 2)
	require.Equal(t, uint64(11), st.Incoming.Sessions[0].Files[0].Token)
	require.Equal(t, uint64(0x1000), st.Incoming.Sessions[0].Files[0].SerializedData)
	require.Equal(t, "fake-v1", st.Incoming.Sessions[0].Files[1].Compatible)

	sa, err := retrieveSession(t2, dev2, "a")
	require.NoError(t, err)
	_, err = retrieveSession(t2, dev2, "a")
	require.ErrorIs(t, err, syscall.EINVAL)
	name, err := t2.Readlink(sa)
	require.NoError(t, err)
	require.Equal(t, "anon_inode:[luo_session] a", name)

	// Incoming sessions take no new files (M11); a new outgoing "a"
	// coexists with the incoming one.
	require.ErrorIs(t, preserveFD(t2, sa, openNull(t, t2), 5), syscall.EINVAL)
	na, err := createSession(t2, dev2, "a")
	require.NoError(t, err)

	f1, err := retrieveFD(t2, sa, 22)
	require.NoError(t, err)
	link, err := t2.Readlink(f1)
	require.NoError(t, err)
	require.Equal(t, "fake:0x1001", link)
	f1b, err := retrieveFD(t2, sa, 22)
	require.NoError(t, err)
	require.NotEqual(t, f1, f1b)
	require.Equal(t, 1, h2.count("retrieve"), "second retrieve does not call the handler")
	_, err = retrieveFD(t2, sa, 99)
	require.ErrorIs(t, err, syscall.ENOENT)

	// The retrieved file cannot be preserved again while LUO holds it.
	require.ErrorIs(t, preserveFD(t2, na, f1, 1), syscall.EBUSY)

	// FINISH: reserved must be 0 (M21); token 11 was never retrieved.
	require.ErrorIs(t, t2.Ioctl(sa, liveupdate.IoctlSessionFinish, finishBuf(1)), syscall.EINVAL)
	require.NoError(t, finishSession(t2, sa))
	require.Equal(t, map[uint64]int{0x1000: 0, 0x1001: 1}, h2.finishStatus)
	require.NoError(t, finishSession(t2, sa), "finishing an empty set is a no-op")
	require.NoError(t, preserveFD(t2, na, f1, 1), "finished files can be preserved anew")
	require.NoError(t, t2.Close(sa))

	st = k2.LUO().Snapshot()
	require.Equal(t, 1, st.Incoming.Count) // "b", never retrieved
	require.Equal(t, 1, st.Outgoing.Count)

	require.NoError(t, m.Kexec())
	k3 := m.Kernel()
	require.Equal(t, uint64(2), k3.LUO().LiveupdateNumber())
	h3 := newFakeHandler(k3)
	h3.register(t, k3)
	t3 := k3.NewTask()
	dev3 := openDev(t, t3)
	st = k3.LUO().Snapshot()
	require.Equal(t, 1, st.Incoming.Count)
	require.Equal(t, "a", st.Incoming.Sessions[0].Name)
	require.Equal(t, uint64(0x1000), st.Incoming.Sessions[0].Files[0].SerializedData) // h2's first preserve
	sa3, err := retrieveSession(t3, dev3, "a")
	require.NoError(t, err)
	// Closing a retrieved session finishes it.
	require.NoError(t, t3.Close(sa3))
	require.Equal(t, 1, h3.count("finish"))
	require.Zero(t, k3.LUO().Snapshot().Incoming.Count)
}

// TestDeserializeFailureIsCached: with no handler for the preserved files
// in the new kernel, every open fails with EIO (M8, M3/M9), never EBUSY.
func TestDeserializeFailureIsCached(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	h1 := newFakeHandler(k1)
	h1.register(t, k1)
	t1 := k1.NewTask()
	dev := openDev(t, t1)
	s, err := createSession(t1, dev, "s")
	require.NoError(t, err)
	require.NoError(t, preserveFD(t1, s, openNull(t, t1), 1))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	t2 := k2.NewTask()
	for i := 0; i < 3; i++ {
		_, err := t2.Open("/dev/liveupdate", syscall.O_RDWR)
		require.ErrorIs(t, err, syscall.EIO)
	}
	st := k2.LUO().Snapshot()
	require.True(t, st.Deserialized)
	require.Equal(t, syscall.ENOENT, st.DeserializeErr)
	require.False(t, st.InUse)
	// Registering the handler later does not help: the result is cached.
	newFakeHandler(k2).register(t, k2)
	_, err = t2.Open("/dev/liveupdate", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.EIO)
}

// TestFreezeFailureRollsBack: a failed freeze aborts the kexec, unfreezes
// what was frozen (R2), keeps serialized data (M7), releases the
// serialize rwsem (M14), and a retried kexec succeeds.
func TestFreezeFailureRollsBack(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	h := newFakeHandler(k)
	h.register(t, k)
	task := k.NewTask()
	dev := openDev(t, task)
	a, err := createSession(task, dev, "a")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, a, openNull(t, task), 1)) // 0x1000
	b, err := createSession(task, dev, "b")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, b, openNull(t, task), 1)) // 0x1001
	require.NoError(t, preserveFD(task, b, openNull(t, task), 2)) // 0x1002
	h.freezeFail[0x1002] = syscall.EIO

	require.ErrorIs(t, m.Kexec(), syscall.EIO)
	require.Same(t, k, m.Kernel())
	require.Equal(t, 3, h.count("freeze"))
	require.Equal(t, 2, h.count("unfreeze"), "the failing file is not unfrozen")

	st := k.LUO().Snapshot()
	require.False(t, st.Serialized)
	require.Equal(t, uint64(0x1001), st.Outgoing.Sessions[1].Files[0].SerializedData, "M7")
	img, err := k.LUO().OutgoingImage(2)
	require.NoError(t, err)
	require.Zero(t, img.Header.Count)
	for i := range img.Sessions {
		require.Equal(t, liveupdate.SessionSer{}, img.Sessions[i], "entry %d cleared", i)
	}

	// Sessions still work, and a retry succeeds.
	_, err = createSession(task, dev, "c")
	require.NoError(t, err)
	delete(h.freezeFail, 0x1002)
	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	newFakeHandler(k2).register(t, k2)
	openDev(t, k2.NewTask())
	require.Equal(t, 3, k2.LUO().Snapshot().Incoming.Count)
}

// TestRetrieveFailureIsRemembered: a failed retrieve returns the same
// error again without calling the handler (M6), and finish is told.
func TestRetrieveFailureIsRemembered(t *testing.T) {
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
	h := newFakeHandler(k2)
	h.retrieveFail = syscall.ENOMEM
	h.register(t, k2)
	t2 := k2.NewTask()
	dev2 := openDev(t, t2)
	s2, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	_, err = retrieveFD(t2, s2, 7)
	require.ErrorIs(t, err, syscall.ENOMEM)
	h.retrieveFail = nil
	_, err = retrieveFD(t2, s2, 7)
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.Equal(t, 1, h.count("retrieve"))

	// can_finish false: EBUSY with nothing changed; then finish.
	h.busy = true
	require.ErrorIs(t, finishSession(t2, s2), syscall.EBUSY)
	require.Zero(t, h.count("finish"))
	h.busy = false
	require.NoError(t, finishSession(t2, s2))
	require.Equal(t, map[uint64]int{0x1000: -int(syscall.ENOMEM)}, h.finishStatus)
}

// TestStrandedSessionOnFailedFinish: closing a retrieved session whose
// finish fails leaves it listed with no fd (spec 1.9).
func TestStrandedSessionOnFailedFinish(t *testing.T) {
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
	h := newFakeHandler(k2)
	h.busy = true
	h.register(t, k2)
	t2 := k2.NewTask()
	dev2 := openDev(t, t2)
	s2, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	require.NoError(t, t2.Close(s2))
	st := k2.LUO().Snapshot()
	require.Equal(t, 1, st.Incoming.Count)
	require.True(t, st.Incoming.Sessions[0].Retrieved)
	_, err = retrieveSession(t2, dev2, "s")
	require.ErrorIs(t, err, syscall.EINVAL)
}

// TestConcurrentSessions: the threads of one process create, preserve
// into, close and retrieve sessions at once, under -race with lockdep on;
// nothing is reported, and each incoming session is retrieved exactly once
// (S10).
func TestConcurrentSessions(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	newFakeHandler(k1).register(t, k1)
	task := k1.NewTask()
	dev := openDev(t, task)
	const threads, perThread = 8, 20
	var wg sync.WaitGroup
	for g := 0; g < threads; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perThread; i++ {
				fd, err := createSession(task, dev, fmt.Sprintf("g%d-%d", g, i))
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				null, err := task.Open("/dev/null", syscall.O_RDWR)
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				if err := preserveFD(task, fd, null, uint64(i)); err != nil {
					t.Errorf("preserve: %v", err)
				}
				_ = task.Close(null)
				if i%2 == 0 {
					_ = task.Close(fd) // abort: unpreserve, remove, free
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, threads*perThread/2, k1.LUO().Snapshot().Outgoing.Count)
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	h2 := newFakeHandler(k2)
	h2.register(t, k2)
	task2 := k2.NewTask()
	dev2 := openDev(t, task2)
	var mu sync.Mutex
	won := map[string]int{}
	for g := 0; g < threads; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := 0; o < threads; o++ {
				for i := 1; i < perThread; i += 2 {
					name := fmt.Sprintf("g%d-%d", (g+o)%threads, i)
					fd, err := retrieveSession(task2, dev2, name)
					if err != nil {
						if err != syscall.EINVAL && err != syscall.ENOENT {
							t.Errorf("retrieve %s: %v", name, err)
						}
						continue
					}
					mu.Lock()
					won[name]++
					mu.Unlock()
					if _, err := retrieveFD(task2, fd, uint64(i)); err != nil {
						t.Errorf("retrieve fd: %v", err)
					}
					_ = task2.Close(fd) // finish, remove, free
				}
			}
		}()
	}
	wg.Wait()
	require.Len(t, won, threads*perThread/2)
	for name, n := range won {
		require.Equal(t, 1, n, name)
	}
	require.Zero(t, k2.LUO().Snapshot().Incoming.Count)
	require.Equal(t, threads*perThread/2, h2.count("finish"))
}

// BenchmarkCreateSession measures CREATE_SESSION ioctls (plus the close
// that aborts the session, so the 819-session limit is never reached).
func BenchmarkCreateSession(b *testing.B) {
	m := newMachine(b)
	task := m.Kernel().NewTask()
	dev := openDev(b, task)
	arg := sessionBuf("bench")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(arg, sessionBuf("bench"))
		if err := task.Ioctl(dev, liveupdate.IoctlCreateSession, arg); err != nil {
			b.Fatal(err)
		}
		if err := task.Close(int(liveupdate.DecodeSessionArg(arg).FD)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRetrieveFD measures RETRIEVE_FD ioctls on a retrieved file
// (the idempotent path), with the fake handler.
func BenchmarkRetrieveFD(b *testing.B) {
	m := newMachine(b)
	k1 := m.Kernel()
	newFakeHandler(k1).register(b, k1)
	t1 := k1.NewTask()
	s, err := createSession(t1, openDev(b, t1), "s")
	require.NoError(b, err)
	require.NoError(b, preserveFD(t1, s, openNull(b, t1), 1))
	require.NoError(b, m.Kexec())
	k2 := m.Kernel()
	newFakeHandler(k2).register(b, k2)
	t2 := k2.NewTask()
	s2, err := retrieveSession(t2, openDev(b, t2), "s")
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fd, err := retrieveFD(t2, s2, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := t2.Close(fd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKexec819Sessions measures a full live update carrying the
// maximum of 819 empty sessions (creation included), and their
// deserialization by the first open in the new kernel.
func BenchmarkKexec819Sessions(b *testing.B) {
	m := newMachine(b)
	for i := 0; i < b.N; i++ {
		task := m.Kernel().NewTask()
		dev := openDev(b, task)
		for j := 0; j < liveupdate.SessionMax; j++ {
			if _, err := createSession(task, dev, fmt.Sprintf("s%d", j)); err != nil {
				b.Fatal(err)
			}
		}
		if err := m.Kexec(); err != nil {
			b.Fatal(err)
		}
		t2 := m.Kernel().NewTask()
		if err := t2.Close(openDev(b, t2)); err != nil {
			b.Fatal(err)
		}
	}
}
