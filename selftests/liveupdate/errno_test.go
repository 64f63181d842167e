package liveupdate

// Every errno of the spec's Part 6 list that a user can reach in the
// reference profile, through real ioctls on /dev/liveupdate and session
// fds. (EAGAIN from a failed kho_finalize() and EIO from a failed
// deserialize need a broken kernel or hand-over, not a user action: the
// kernel/liveupdate and machine tests inject those.)

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	lu "luomodel/userspace/libliveupdate"
)

// ioc builds an ioctl number like _IOC(dir, type, nr, size).
func ioc(dir, typ, nr, size uint32) uint32 { return dir<<30 | size<<16 | typ<<8 | nr }

func createArgs(name string) []byte {
	a := lu.SessionArgs{Size: lu.SizeofCreateSession}
	copy(a.Name[:], name)
	return a.Marshal()
}

func TestErrnoDeviceIoctlDispatch(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)

	// Unknown number: EINVAL (not ENOTTY), checked before anything else.
	require.ErrorIs(t, task.Ioctl(dev, ioc(0, lu.IoctlType, 2, 0), createArgs("a")), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(dev, ioc(0, lu.IoctlType, 0x40, 0), createArgs("a")), syscall.EINVAL)
	// Known number, other type byte or encoded size/direction: ENOTTY.
	require.ErrorIs(t, task.Ioctl(dev, ioc(0, 0xBB, 0, 0), createArgs("a")), syscall.ENOTTY)
	require.ErrorIs(t, task.Ioctl(dev, ioc(1, lu.IoctlType, 0, 72), createArgs("a")), syscall.ENOTTY)
	// A buffer too short for the size word, or for its own size: EFAULT.
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, []byte{72, 0}), syscall.EFAULT)
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, createArgs("a")[:40]), syscall.EFAULT)
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, nil), syscall.EFAULT)
	// size below the struct: EINVAL.
	b := createArgs("a")
	binary.LittleEndian.PutUint32(b, lu.SizeofCreateSession-1)
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, b), syscall.EINVAL)
	binary.LittleEndian.PutUint32(b, 0)
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, b), syscall.EINVAL)
	// A larger struct with a non-zero tail: E2BIG; with a zero tail: fine,
	// and the response covers the kernel's struct only.
	big := append(createArgs("tail"), make([]byte, 8)...)
	binary.LittleEndian.PutUint32(big, uint32(len(big)))
	big[len(big)-1] = 1
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, big), syscall.E2BIG)
	big[len(big)-1] = 0
	require.NoError(t, task.Ioctl(dev, lu.IoctlCreateSession, big))
	var a lu.SessionArgs
	a.Unmarshal(big)
	require.GreaterOrEqual(t, a.FD, int32(0))
	require.Equal(t, make([]byte, 8), big[lu.SizeofCreateSession:])
	name, err := lu.SessionName(task, int(a.FD))
	require.NoError(t, err)
	require.Equal(t, "tail", name)
	// A size larger than the buffer faults.
	short := createArgs("x")
	binary.LittleEndian.PutUint32(short, 200)
	require.ErrorIs(t, task.Ioctl(dev, lu.IoctlCreateSession, short), syscall.EFAULT)
}

func TestErrnoCreateSession(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	_, err := lu.CreateSession(task, dev, "")
	require.ErrorIs(t, err, syscall.EINVAL)
	s, err := lu.CreateSession(task, dev, "dup")
	require.NoError(t, err)
	_, err = lu.CreateSession(task, dev, "dup")
	require.ErrorIs(t, err, syscall.EEXIST)
	// A failed CREATE consumes no fd: the next fd is the lowest free one.
	s2, err := lu.CreateSession(task, dev, "next")
	require.NoError(t, err)
	require.Equal(t, s+1, s2)
	// Device ioctls on a session fd and vice versa are unknown numbers.
	require.ErrorIs(t, task.Ioctl(s, lu.IoctlCreateSession, createArgs("x")), syscall.EINVAL)
	fd := lu.PreserveFDArgs{Size: lu.SizeofPreserveFD, FD: int32(s), Token: 1}
	require.ErrorIs(t, task.Ioctl(dev, lu.SessionPreserveFD, fd.Marshal()), syscall.EINVAL)
}

// TestErrnoCreateSessionEMFILE: CREATE_SESSION reserves its fd first; a
// full fd table fails with EMFILE and creates nothing.
func TestErrnoCreateSessionEMFILE(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	for {
		_, err := task.Open("/dev/null", syscall.O_RDWR)
		if err != nil {
			require.ErrorIs(t, err, syscall.EMFILE)
			break
		}
	}
	_, err := lu.CreateSession(task, dev, "nofd")
	require.ErrorIs(t, err, syscall.EMFILE)
	// Nothing was created: with one fd free, the name is available.
	require.NoError(t, task.Close(3))
	s, err := lu.CreateSession(task, dev, "nofd")
	require.NoError(t, err)
	require.Equal(t, 3, s)
	task.Exit()
}

func TestErrnoRetrieveSession(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	// Cold boot: nothing to retrieve; outgoing sessions are not incoming.
	_, err := lu.CreateSession(task, dev, "out")
	require.NoError(t, err)
	_, err = lu.RetrieveSession(task, dev, "out")
	require.ErrorIs(t, err, syscall.ENOENT)
	_, err = lu.CreateSession(task, dev, "in")
	require.NoError(t, err)
	require.NoError(t, task.Close(dev))

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	_, err = lu.RetrieveSession(task2, dev2, "nope")
	require.ErrorIs(t, err, syscall.ENOENT)
	in, err := lu.RetrieveSession(task2, dev2, "in")
	require.NoError(t, err)
	_, err = lu.RetrieveSession(task2, dev2, "in")
	require.ErrorIs(t, err, syscall.EINVAL)
	// Unterminated names never match.
	a := lu.SessionArgs{Size: lu.SizeofRetrieveSession}
	for i := range a.Name {
		a.Name[i] = 'i'
	}
	require.Error(t, task2.Ioctl(dev2, lu.IoctlRetrieveSession, a.Marshal()))
	require.NoError(t, lu.FinishSession(task2, in))
	require.NoError(t, task2.Close(in))
	// Closed after FINISH: gone.
	_, err = lu.RetrieveSession(task2, dev2, "in")
	require.ErrorIs(t, err, syscall.ENOENT)
}

func TestErrnoSessionIoctlDispatch(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "disp")
	require.NoError(t, err)
	args := (&lu.PreserveFDArgs{Size: lu.SizeofPreserveFD}).Marshal()

	require.ErrorIs(t, task.Ioctl(s, ioc(0, lu.IoctlType, 0x44, 0), args), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, ioc(0, lu.IoctlType, 0x3F, 0), args), syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(s, ioc(0, 0x42, 0x40, 0), args), syscall.ENOTTY)
	require.ErrorIs(t, task.Ioctl(s, lu.SessionPreserveFD, args[:3]), syscall.EFAULT)
	short := (&lu.PreserveFDArgs{Size: lu.SizeofPreserveFD - 1}).Marshal()
	require.ErrorIs(t, task.Ioctl(s, lu.SessionPreserveFD, short), syscall.EINVAL)
	big := append((&lu.PreserveFDArgs{Size: lu.SizeofPreserveFD + 4, FD: -1}).Marshal(), 0, 0, 0, 9)
	require.ErrorIs(t, task.Ioctl(s, lu.SessionPreserveFD, big), syscall.E2BIG)
	// The tail is zero: decoded, and the bad fd is reported.
	big[len(big)-1] = 0
	require.ErrorIs(t, task.Ioctl(s, lu.SessionPreserveFD, big), syscall.EBADF)

	// LUO ioctls on a memfd: not its ioctls.
	mfd := memfdWith(t, task, "m", nil, 0)
	require.ErrorIs(t, task.Ioctl(mfd, lu.SessionPreserveFD, args), syscall.ENOTTY)
	require.ErrorIs(t, task.Ioctl(999, lu.SessionPreserveFD, args), syscall.EBADF)
}

func TestErrnoPreserveFD(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "p")
	require.NoError(t, err)
	mfd := memfdWith(t, task, "m", []byte("m"), 0)
	require.ErrorIs(t, lu.PreserveFD(task, s, 999, 1), syscall.EBADF)
	require.ErrorIs(t, lu.PreserveFD(task, s, -1, 1), syscall.EBADF)
	require.NoError(t, lu.PreserveFD(task, s, mfd, 1))
	// Duplicate token: EEXIST comes before the fd is even looked at.
	require.ErrorIs(t, lu.PreserveFD(task, s, 999, 1), syscall.EEXIST)
	require.ErrorIs(t, lu.PreserveFD(task, s, mfd, 2), syscall.EBUSY)
	null, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.ErrorIs(t, lu.PreserveFD(task, s, null, 3), syscall.ENOENT)
	// Tokens are per session: another session may reuse token 1.
	s2, err := lu.CreateSession(task, dev, "p2")
	require.NoError(t, err)
	require.NoError(t, lu.PreserveFD(task, s2, memfdWith(t, task, "m2", nil, 0), 1))
	task.Exit()
}

// TestErrnoSessionTypeChecks: PRESERVE_FD is for outgoing sessions only,
// RETRIEVE_FD and FINISH for incoming (retrieved) ones; GET_NAME works on
// both (M11).
func TestErrnoSessionTypeChecks(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	out, err := lu.CreateSession(task, dev, "typed")
	require.NoError(t, err)
	require.NoError(t, lu.CreateAndPreserveMemfd(task, out, 1, "x"))
	_, err = lu.RetrieveFD(task, out, 1)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.ErrorIs(t, lu.FinishSession(task, out), syscall.EINVAL)

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	in, err := lu.RetrieveSession(task2, dev2, "typed")
	require.NoError(t, err)
	require.ErrorIs(t, lu.PreserveFD(task2, in, memfdWith(t, task2, "m", nil, 0), 2), syscall.EINVAL)
	_, err = lu.RetrieveFD(task2, in, 2)
	require.ErrorIs(t, err, syscall.ENOENT)
	name, err := lu.SessionName(task2, in)
	require.NoError(t, err)
	require.Equal(t, "typed", name)
	require.NoError(t, lu.FinishSession(task2, in))
	// FINISH twice is harmless: the set is empty.
	require.NoError(t, lu.FinishSession(task2, in))
	task2.Exit()
}

func TestErrnoReservedFields(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	s, err := lu.CreateSession(task, dev, "reserved")
	require.NoError(t, err)
	g := lu.GetNameArgs{Size: lu.SizeofGetName, Reserved: 1}
	require.ErrorIs(t, task.Ioctl(s, lu.SessionGetName, g.Marshal()), syscall.EINVAL)

	kexec(t, m)

	task2, dev2 := openDevice(t, m)
	in, err := lu.RetrieveSession(task2, dev2, "reserved")
	require.NoError(t, err)
	f := lu.FinishArgs{Size: lu.SizeofFinish, Reserved: 1}
	require.ErrorIs(t, task2.Ioctl(in, lu.SessionFinish, f.Marshal()), syscall.EINVAL)
	require.NoError(t, lu.FinishSession(task2, in))
}

// TestErrnoDeadTask: after a live update the old kernel's tasks are dead.
func TestErrnoDeadTask(t *testing.T) {
	m := newMachine(t)
	task, dev := openDevice(t, m)
	kexec(t, m)
	var old *kernel.Task = task
	_, err := lu.CreateSession(old, dev, "late")
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = old.MemfdCreate("late", 0)
	require.ErrorIs(t, err, syscall.ESRCH)
}
