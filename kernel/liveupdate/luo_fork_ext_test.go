package liveupdate_test

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
)

func fdFlags(t *testing.T, task *kernel.Task, fd int) int {
	t.Helper()
	fl, err := task.Fcntl(fd, syscall.F_GETFD, 0)
	require.NoError(t, err)
	return fl
}

// TestLUOFDsAreCloseOnExec: every fd LUO hands out is close-on-exec, as
// upstream's get_unused_fd_flags(O_CLOEXEC) makes it (create and retrieve
// session, retrieve fd, including a repeated retrieve); /dev/liveupdate
// follows its open flags like any device.
func TestLUOFDsAreCloseOnExec(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	newFakeHandler(k1).register(t, k1)
	t1 := k1.NewTask()
	dev := openDev(t, t1)
	require.Zero(t, fdFlags(t, t1, dev))
	s, err := createSession(t1, dev, "s")
	require.NoError(t, err)
	require.Equal(t, syscall.FD_CLOEXEC, fdFlags(t, t1, s))
	require.NoError(t, preserveFD(t1, s, openNull(t, t1), 7))
	require.NoError(t, m.Kexec())

	k2 := m.Kernel()
	newFakeHandler(k2).register(t, k2)
	t2 := k2.NewTask()
	dev2, err := t2.Open("/dev/liveupdate", syscall.O_RDWR|syscall.O_CLOEXEC)
	require.NoError(t, err)
	require.Equal(t, syscall.FD_CLOEXEC, fdFlags(t, t2, dev2))
	rs, err := retrieveSession(t2, dev2, "s")
	require.NoError(t, err)
	require.Equal(t, syscall.FD_CLOEXEC, fdFlags(t, t2, rs))
	for range 2 {
		f, err := retrieveFD(t2, rs, 7)
		require.NoError(t, err)
		require.Equal(t, syscall.FD_CLOEXEC, fdFlags(t, t2, f))
	}
	require.NoError(t, finishSession(t2, rs))
	t2.Exit()
}

// TestInheritedSessionOutlivesParent: a forked child holds the parent's
// sessions through its inherited fds; the parent exiting releases
// nothing, and the session is handed over.
func TestInheritedSessionOutlivesParent(t *testing.T) {
	m := newMachine(t)
	k1 := m.Kernel()
	h1 := newFakeHandler(k1)
	h1.register(t, k1)
	parent := k1.NewTask()
	dev := openDev(t, parent)
	s, err := createSession(parent, dev, "kept")
	require.NoError(t, err)
	require.NoError(t, preserveFD(parent, s, openNull(t, parent), 3))

	child, err := parent.Fork()
	require.NoError(t, err)
	parent.Exit()
	require.Zero(t, h1.count("unpreserve"), "the child's fd keeps the session")
	_, err = createSession(child, dev, "kept")
	require.ErrorIs(t, err, syscall.EEXIST, "the inherited device fd works; the session lives")
	name, err := child.Readlink(s)
	require.NoError(t, err)
	require.Equal(t, "anon_inode:[luo_session] kept", name)

	require.NoError(t, m.Kexec())
	k2 := m.Kernel()
	newFakeHandler(k2).register(t, k2)
	t2 := k2.NewTask()
	rs, err := retrieveSession(t2, openDev(t, t2), "kept")
	require.NoError(t, err)
	f, err := retrieveFD(t2, rs, 3)
	require.NoError(t, err)
	link, err := t2.Readlink(f)
	require.NoError(t, err)
	require.Equal(t, "fake:0x1000", link)
	require.NoError(t, finishSession(t2, rs))
	t2.Exit()
}

// TestExecReleasesSession: exec closes the session fds (close-on-exec);
// a session whose last fd goes is released (its files unpreserved), one
// still held elsewhere (fork) or whose fd was made inheritable
// (F_SETFD 0) is not.
func TestExecReleasesSession(t *testing.T) {
	m := newMachine(t)
	k := m.Kernel()
	h := newFakeHandler(k)
	h.register(t, k)
	task := k.NewTask()
	dev, err := task.Open("/dev/liveupdate", syscall.O_RDWR|syscall.O_CLOEXEC)
	require.NoError(t, err)
	a, err := createSession(task, dev, "a")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, a, openNull(t, task), 1))
	b, err := createSession(task, dev, "b")
	require.NoError(t, err)
	require.NoError(t, preserveFD(task, b, openNull(t, task), 2))
	require.NoError(t, task.FcntlSetFD(b, 0))

	child, err := task.Fork()
	require.NoError(t, err)
	require.NoError(t, child.Exec())
	fds, err := child.FDs()
	require.NoError(t, err)
	require.NotContains(t, fds, a)
	require.Contains(t, fds, b)
	require.Zero(t, h.count("unpreserve"), "the parent still holds a")

	require.NoError(t, task.Exec())
	require.Equal(t, 1, h.count("unpreserve"), "a's last fd went: released")
	fds, err = task.FDs()
	require.NoError(t, err)
	require.NotContains(t, fds, a)
	require.NotContains(t, fds, dev, "the device fd was close-on-exec")
	// The device is free again, and "a" is gone while "b" lives.
	dev2 := openDev(t, child)
	a2, err := createSession(child, dev2, "a")
	require.NoError(t, err)
	_, err = createSession(child, dev2, "b")
	require.ErrorIs(t, err, syscall.EEXIST)

	task.Exit()
	require.NoError(t, child.Close(a2))
	require.Equal(t, 1, h.count("unpreserve"), "b is still held by the child")
	child.Exit()
	require.Equal(t, 2, h.count("unpreserve"))
}
