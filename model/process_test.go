package model

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func (w *world) fdFlags(task TaskID, fd int) int64 {
	w.t.Helper()
	return w.ok(Op{Kind: OpFcntl, Task: task, FD: fd, Cmd: FGetfd})
}

// TestProcessCloexecOfLUOFDs: every fd LUO returns is close-on-exec;
// the device follows O_CLOEXEC, memfds MFD_CLOEXEC, dups are clear.
func TestProcessCloexecOfLUOFDs(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	require.Zero(t, w.fdFlags(1, dev))
	s := w.create(dev, "s")
	require.EqualValues(t, FdCloexec, w.fdFlags(1, s))
	m := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "m", Flags: MfdCloexec}))
	require.EqualValues(t, FdCloexec, w.fdFlags(1, m))
	d := int(w.ok(Op{Kind: OpDup, Task: 1, FD: s}))
	require.Zero(t, w.fdFlags(1, d))
	require.Zero(t, w.preserve(s, m, 1).Errno)
	t2 := w.kexec()
	dev2 := int(w.ok(Op{Kind: OpOpen, Task: t2, Path: DevLiveUpdate, Flags: ORdwr | OCloexec}))
	require.EqualValues(t, FdCloexec, w.fdFlags(t2, dev2))
	r := w.do(Op{Kind: OpIoctl, Task: t2, FD: dev2, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("s")})
	require.Zero(t, r.Errno)
	rs := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	require.EqualValues(t, FdCloexec, w.fdFlags(t2, rs))
	r = w.do(Op{Kind: OpIoctl, Task: t2, FD: rs, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 1)})
	require.Zero(t, r.Errno)
	require.EqualValues(t, FdCloexec, w.fdFlags(t2, int(int32(binary.LittleEndian.Uint32(r.Data[4:])))))
}

// TestProcessForkExec: the child shares the sessions; exec releases a
// session whose last fd was close-on-exec.
func TestProcessForkExec(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "s")
	child := TaskID(w.ok(Op{Kind: OpFork, Task: 1}))
	require.Equal(t, TaskID(2), child)
	require.EqualValues(t, FdCloexec, w.fdFlags(child, s))
	w.ok(Op{Kind: OpExit, Task: 1})
	require.Equal(t, []string{"s"}, w.s.OutgoingNames(), "the child keeps the session")
	w.ok(Op{Kind: OpExec, Task: child})
	require.Empty(t, w.s.OutgoingNames(), "exec closed the last fd: released")
	require.Len(t, w.s.Tasks[child].FDs, 1, "the device fd stays")
	w.fails(syscall.ESRCH, Op{Kind: OpFork, Task: 1})
	w.fails(syscall.ESRCH, Op{Kind: OpExec, Task: 1})
	require.Equal(t, TaskID(3), w.s.NextTask, "a failed fork allocates no task")
}

func TestProcessFcntlAndRlimit(t *testing.T) {
	w := newWorld(t)
	null := w.open(DevNull)
	w.fails(syscall.EBADF, Op{Kind: OpFcntl, Task: 1, FD: 5, Cmd: FGetfd})
	w.fails(syscall.EBADF, Op{Kind: OpFcntl, Task: 1, FD: -1, Cmd: 99})
	w.fails(syscall.EINVAL, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: 99})
	w.fails(syscall.EINVAL, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfd, Arg: -1})
	w.fails(syscall.EINVAL, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfd, Arg: NRFileMax})
	require.EqualValues(t, 7, w.ok(Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfdCloexec, Arg: 7}))
	require.EqualValues(t, FdCloexec, w.fdFlags(1, 7))
	require.EqualValues(t, 1, w.ok(Op{Kind: OpFcntl, Task: 1, FD: 7, Cmd: FDupfd}))
	require.Zero(t, w.fdFlags(1, 1))
	w.ok(Op{Kind: OpFcntl, Task: 1, FD: 1, Cmd: FSetfd, Arg: 3})
	require.EqualValues(t, FdCloexec, w.fdFlags(1, 1))

	w.fails(syscall.EINVAL, Op{Kind: OpSetrlimit, Task: 1, Arg: 0, Cur: 1, Max: 1})
	w.fails(syscall.EINVAL, Op{Kind: OpSetrlimit, Task: 1, Arg: RlimitNofile, Cur: 2, Max: 1})
	w.fails(syscall.EPERM, Op{Kind: OpSetrlimit, Task: 1, Arg: RlimitNofile, Cur: 2, Max: RlimInfinity})
	w.ok(Op{Kind: OpSetrlimit, Task: 1, Arg: RlimitNofile, Cur: 3, Max: 3})
	require.EqualValues(t, 2, w.ok(Op{Kind: OpDup, Task: 1, FD: null}))
	w.fails(syscall.EMFILE, Op{Kind: OpDup, Task: 1, FD: null})
	w.fails(syscall.EMFILE, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfd, Arg: 2})
	w.fails(syscall.EINVAL, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfd, Arg: 3})
	require.Zero(t, w.fdFlags(1, 2), "fd 7, above the limit, stays usable")
	require.EqualValues(t, FdCloexec, w.fdFlags(1, 7))
	child := TaskID(w.ok(Op{Kind: OpFork, Task: 1}))
	w.fails(syscall.EMFILE, Op{Kind: OpDup, Task: child, FD: null})

	// The fault site of the reservation fails F_DUPFD after EINVAL and EMFILE.
	w.ok(Op{Kind: OpSetrlimit, Task: 1, Arg: RlimitNofile, Cur: 100, Max: 100})
	r, ok := w.s.ApplyFaultNth(FaultGetUnusedFD, 1, Op{Kind: OpFcntl, Task: 1, FD: null, Cmd: FDupfd, Arg: 10})
	require.True(t, ok)
	require.Equal(t, syscall.ENOMEM, r.Errno)
	require.NotContains(t, w.s.Tasks[1].FDs, 10)
}
