package liveupdate

// Ports of tools/testing/selftests/liveupdate/liveupdate.c: single-boot
// tests of /dev/liveupdate and of session management. The "many" tests
// are adapted to the reference profile's limits: exactly 819 sessions
// (LUO_SESSION_MAX) then ENOMEM, and 128 files per session (LUO_FILE_MAX)
// then ENOSPC, where upstream's newest code has no limit and uses 2000 and
// 500.

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	lu "luomodel/userspace/libliveupdate"
)

const (
	sessionMax = 819 // LUO_SESSION_MAX
	fileMax    = 128 // LUO_FILE_MAX
)

// TestBasicOpenClose ports TEST_F(liveupdate_device, basic_open_close).
func TestBasicOpenClose(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	require.NoError(t, task.Close(dev))
	// Closed means free: a second open succeeds.
	dev, err := lu.OpenDevice(task)
	require.NoError(t, err)
	require.NoError(t, task.Close(dev))
}

// TestExclusiveOpen ports TEST_F(liveupdate_device, exclusive_open).
func TestExclusiveOpen(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	_, err := lu.OpenDevice(task)
	require.ErrorIs(t, err, syscall.EBUSY)
	// Exclusivity is per device, not per task.
	_, err = lu.OpenDevice(m.Kernel().NewTask())
	require.ErrorIs(t, err, syscall.EBUSY)
	require.NoError(t, task.Close(dev))
}

// TestDeviceAbsentWhenDisabled: without liveupdate=on there is no
// /dev/liveupdate at all (the selftests SKIP on ENOENT).
func TestDeviceAbsentWhenDisabled(t *testing.T) {
	m, err := newMachineCfg(t, false)
	require.NoError(t, err)
	_, err = lu.OpenDevice(m.Kernel().NewTask())
	require.ErrorIs(t, err, syscall.ENOENT)
}

// TestCreateDuplicateSession ports TEST_F(liveupdate_device,
// create_duplicate_session).
func TestCreateDuplicateSession(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s1, err := lu.CreateSession(task, dev, "duplicate-session-test")
	require.NoError(t, err)
	_, err = lu.CreateSession(task, dev, "duplicate-session-test")
	require.ErrorIs(t, err, syscall.EEXIST)
	require.NoError(t, task.Close(s1))
	// Once closed, the name is free again.
	s1, err = lu.CreateSession(task, dev, "duplicate-session-test")
	require.NoError(t, err)
	require.NoError(t, task.Close(s1))
}

// TestCreateDistinctSessions ports TEST_F(liveupdate_device,
// create_distinct_sessions).
func TestCreateDistinctSessions(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s1, err := lu.CreateSession(task, dev, "distinct-session-1")
	require.NoError(t, err)
	s2, err := lu.CreateSession(task, dev, "distinct-session-2")
	require.NoError(t, err)
	require.NotEqual(t, s1, s2)
	require.NoError(t, task.Close(s1))
	require.NoError(t, task.Close(s2))
}

// TestPreserveMemfd ports TEST_F(liveupdate_device, preserve_memfd), and
// checks that preserving and unpreserving leaks no memory.
func TestPreserveMemfd(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	noLeak(t, m, func() {
		const s = "hello liveupdate"
		sess, err := lu.CreateSession(task, dev, "preserve-memfd-test")
		require.NoError(t, err)
		mfd := memfdWith(t, task, "test-memfd", []byte(s), int64(len(s)))
		require.NoError(t, lu.PreserveFD(task, sess, mfd, 0x1234))
		require.NoError(t, task.Close(sess))

		// Closing the session unpreserved the memfd; it is intact and
		// usable.
		require.Equal(t, s, string(readAll(t, task, mfd)))
		require.NoError(t, task.Ftruncate(mfd, 0))
		require.NoError(t, task.Close(mfd))
	})
}

// TestPreserveMultipleMemfds ports TEST_F(liveupdate_device,
// preserve_multiple_memfds).
func TestPreserveMultipleMemfds(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	const s1, s2 = "data for memfd one", "data for memfd two"
	sess, err := lu.CreateSession(task, dev, "preserve-multi-memfd-test")
	require.NoError(t, err)
	m1 := memfdWith(t, task, "test-memfd-1", []byte(s1), 0)
	m2 := memfdWith(t, task, "test-memfd-2", []byte(s2), 0)
	require.NoError(t, lu.PreserveFD(task, sess, m1, 0xAAAA))
	require.NoError(t, lu.PreserveFD(task, sess, m2, 0xBBBB))
	require.Equal(t, s1, string(readAll(t, task, m1)))
	require.Equal(t, s2, string(readAll(t, task, m2)))
	require.NoError(t, task.Close(m1))
	require.NoError(t, task.Close(m2))
	require.NoError(t, task.Close(sess))
}

// TestPreserveComplexScenario ports TEST_F(liveupdate_device,
// preserve_complex_scenario).
func TestPreserveComplexScenario(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	const d1, d2 = "data for session 1", "data for session 2"
	sess1, err := lu.CreateSession(task, dev, "complex-session-1")
	require.NoError(t, err)
	sess2, err := lu.CreateSession(task, dev, "complex-session-2")
	require.NoError(t, err)
	data1 := memfdWith(t, task, "data1", []byte(d1), 0)
	empty1 := memfdWith(t, task, "empty1", nil, 0)
	data2 := memfdWith(t, task, "data2", []byte(d2), 0)
	empty2 := memfdWith(t, task, "empty2", nil, 0)
	require.NoError(t, lu.PreserveFD(task, sess1, data1, 0x1111))
	require.NoError(t, lu.PreserveFD(task, sess1, empty1, 0x2222))
	require.NoError(t, lu.PreserveFD(task, sess2, data2, 0x3333))
	require.NoError(t, lu.PreserveFD(task, sess2, empty2, 0x4444))
	require.Equal(t, d1, string(readAll(t, task, data1)))
	require.Equal(t, d2, string(readAll(t, task, data2)))
	require.Empty(t, readAll(t, task, empty1))
	require.Empty(t, readAll(t, task, empty2))
	for _, fd := range []int{data1, empty1, data2, empty2, sess1, sess2} {
		require.NoError(t, task.Close(fd))
	}
}

// TestPreserveUnsupportedFD ports TEST_F(liveupdate_device,
// preserve_unsupported_fd): no handler for /dev/null.
func TestPreserveUnsupportedFD(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	sess, err := lu.CreateSession(task, dev, "unsupported-fd-test")
	require.NoError(t, err)
	null, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.ErrorIs(t, lu.PreserveFD(task, sess, null, 0xDEAD), syscall.ENOENT)
	// The session fd and the device fd are not preservable either.
	require.ErrorIs(t, lu.PreserveFD(task, sess, sess, 0xDEAE), syscall.ENOENT)
	require.ErrorIs(t, lu.PreserveFD(task, sess, dev, 0xDEAF), syscall.ENOENT)
	require.NoError(t, task.Close(null))
	require.NoError(t, task.Close(sess))
}

// TestPreventDoublePreservation ports TEST_F(liveupdate_device,
// prevent_double_preservation), plus a dup of the fd and a second session.
func TestPreventDoublePreservation(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	sess1, err := lu.CreateSession(task, dev, "double-preserve-session-1")
	require.NoError(t, err)
	sess2, err := lu.CreateSession(task, dev, "double-preserve-session-2")
	require.NoError(t, err)
	mfd := memfdWith(t, task, "test-memfd", nil, 0)
	require.NoError(t, lu.PreserveFD(task, sess1, mfd, 0x1111))
	require.ErrorIs(t, lu.PreserveFD(task, sess2, mfd, 0x2222), syscall.EBUSY)
	require.ErrorIs(t, lu.PreserveFD(task, sess1, mfd, 0x3333), syscall.EBUSY)
	dup, err := task.Dup(mfd)
	require.NoError(t, err)
	require.ErrorIs(t, lu.PreserveFD(task, sess2, dup, 0x4444), syscall.EBUSY)
	require.NoError(t, task.Close(dup))

	// Unpreserved (session closed), the memfd can be preserved again.
	require.NoError(t, task.Close(sess1))
	require.NoError(t, lu.PreserveFD(task, sess2, mfd, 0x2222))
	require.NoError(t, task.Close(mfd))
	require.NoError(t, task.Close(sess2))
}

// TestCreateSessionNoNullTermination ports TEST_F(liveupdate_device,
// create_session_no_null_termination).
func TestCreateSessionNoNullTermination(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	a := lu.SessionArgs{Size: lu.SizeofCreateSession}
	for i := range a.Name {
		a.Name[i] = 'X'
	}
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, a.Marshal()), syscall.EINVAL)
}

// TestCreateSessionEmptyName ports TEST_F(liveupdate_device,
// create_session_empty_name).
func TestCreateSessionEmptyName(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	_, err := lu.CreateSession(task, dev, "")
	require.ErrorIs(t, err, syscall.EINVAL)
}

// TestGetSessionName ports TEST_F(liveupdate_device, get_session_name).
func TestGetSessionName(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	sess, err := lu.CreateSession(task, dev, "get-name-test-session")
	require.NoError(t, err)
	name, err := lu.SessionName(task, sess)
	require.NoError(t, err)
	require.Equal(t, "get-name-test-session", name)
	require.NoError(t, task.Close(sess))
}

// TestGetSessionNameMaxLength ports TEST_F(liveupdate_device,
// get_session_name_max_length).
func TestGetSessionNameMaxLength(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	long := strings.Repeat("A", lu.SessionNameLength-1)
	sess, err := lu.CreateSession(task, dev, long)
	require.NoError(t, err)
	name, err := lu.SessionName(task, sess)
	require.NoError(t, err)
	require.Equal(t, long, name)
	require.NoError(t, task.Close(sess))
}

// TestPreserveManySessions ports TEST_F(liveupdate_device,
// preserve_many_sessions) at the profile's limit: 819 sessions, then
// ENOMEM; closing one makes room for one more.
func TestPreserveManySessions(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	fds := make([]int, sessionMax)
	for i := range fds {
		fd, err := lu.CreateSession(task, dev, fmt.Sprintf("many-session-%d", i))
		require.NoError(t, err, "session %d", i)
		fds[i] = fd
	}
	_, err := lu.CreateSession(task, dev, "one-too-many")
	require.ErrorIs(t, err, syscall.ENOMEM)
	// The limit is checked before the duplicate test.
	_, err = lu.CreateSession(task, dev, "many-session-0")
	require.ErrorIs(t, err, syscall.ENOMEM)

	require.NoError(t, task.Close(fds[0]))
	fds[0], err = lu.CreateSession(task, dev, "one-too-many")
	require.NoError(t, err)
	for _, fd := range fds {
		require.NoError(t, task.Close(fd))
	}
}

// TestPreserveManyFiles ports TEST_F(liveupdate_device,
// preserve_many_files) at the profile's limit: 128 files, then ENOSPC.
func TestPreserveManyFiles(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	noLeak(t, m, func() {
		sess, err := lu.CreateSession(task, dev, "many-files-test")
		require.NoError(t, err)
		fds := make([]int, fileMax)
		for i := range fds {
			fds[i] = memfdWith(t, task, "test-memfd", nil, 0)
			require.NoError(t, lu.PreserveFD(task, sess, fds[i], uint64(i)), "file %d", i)
		}
		extra := memfdWith(t, task, "test-memfd", nil, 0)
		require.ErrorIs(t, lu.PreserveFD(task, sess, extra, fileMax), syscall.ENOSPC)
		// A duplicate token is EEXIST even in a full set (checked first).
		require.ErrorIs(t, lu.PreserveFD(task, sess, extra, 0), syscall.EEXIST)
		require.NoError(t, task.Close(extra))
		for _, fd := range fds {
			require.NoError(t, task.Close(fd))
		}
		require.NoError(t, task.Close(sess))
	})
}
