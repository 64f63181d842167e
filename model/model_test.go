package model

import (
	"encoding/binary"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// world drives the model step by step in a test, checking invariants and
// that Step never mutates its input.
type world struct {
	t *testing.T
	s State
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, s: NewState(true)}
	r := w.do(Op{Kind: OpNewTask})
	require.Equal(t, int64(1), r.Ret)
	return w
}

func (w *world) do(op Op) Result {
	w.t.Helper()
	before := w.s.Canon()
	r, n := Step(w.s, op)
	require.Equal(w.t, before, w.s.Canon(), "Step mutated its input")
	require.NoError(w.t, n.Check(), "after %s", Format(op, r))
	w.s = n
	return r
}

func (w *world) ok(op Op) int64 {
	w.t.Helper()
	r := w.do(op)
	require.Zero(w.t, r.Errno, "%s", Format(op, r))
	return r.Ret
}

func (w *world) fails(e syscall.Errno, op Op) {
	w.t.Helper()
	r := w.do(op)
	require.Equal(w.t, ErrnoName(e), ErrnoName(r.Errno), "%s", Format(op, r))
	if op.Kind == OpIoctl {
		require.Equal(w.t, op.Buf, r.Data, "buffer written on failure")
	}
}

func (w *world) open(path string) int {
	return int(w.ok(Op{Kind: OpOpen, Task: 1, Path: path, Flags: ORdwr}))
}

func (w *world) ioctl(fd int, cmd uint32, buf []byte) Result {
	w.t.Helper()
	return w.do(Op{Kind: OpIoctl, Task: 1, FD: fd, Cmd: cmd, Buf: buf})
}

func (w *world) create(dev int, name string) int {
	w.t.Helper()
	r := w.ioctl(dev, IoctlCreateSession, SessionArgBuf(name))
	require.Zero(w.t, r.Errno, "create %q", name)
	return int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
}

func (w *world) memfd(data string) int {
	w.t.Helper()
	fd := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "m"}))
	if data != "" {
		w.ok(Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte(data)})
	}
	return fd
}

func (w *world) preserve(sess, fd int, token uint64) Result {
	return w.ioctl(sess, IoctlSessionPreserveFD, FDArgBuf(int32(fd), token))
}

// retrieve has task open the device, retrieve session name and the file
// of token in it, and returns the file's fd.
func (w *world) retrieve(task TaskID, name string, token uint64) int {
	w.t.Helper()
	dev := int(w.ok(Op{Kind: OpOpen, Task: task, Path: DevLiveUpdate, Flags: ORdwr}))
	r := w.do(Op{Kind: OpIoctl, Task: task, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf(name)})
	require.Zero(w.t, r.Errno)
	sfd := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	r = w.do(Op{Kind: OpIoctl, Task: task, FD: sfd, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, token)})
	require.Zero(w.t, r.Errno)
	return int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
}

// kexec live-updates and starts task t(n+1).
func (w *world) kexec() TaskID {
	w.ok(Op{Kind: OpKexec})
	return TaskID(w.ok(Op{Kind: OpNewTask}))
}

func withSize(b []byte, size uint32) []byte {
	binary.LittleEndian.PutUint32(b, size)
	return b
}

func TestDeviceOpen(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	require.Equal(t, 0, dev)
	w.fails(syscall.EBUSY, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
	d2 := int(w.ok(Op{Kind: OpDup, Task: 1, FD: dev}))
	w.ok(Op{Kind: OpClose, Task: 1, FD: dev})
	w.fails(syscall.EBUSY, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
	w.ok(Op{Kind: OpClose, Task: 1, FD: d2})
	require.Equal(t, 0, w.open(DevLiveUpdate))
	w.fails(syscall.ENOENT, Op{Kind: OpOpen, Task: 1, Path: "/dev/nope"})

	off := &world{t: t, s: NewState(false)}
	off.do(Op{Kind: OpNewTask})
	off.fails(syscall.ENOENT, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})

	w.s.DeserializeErr = syscall.EINVAL
	w.ok(Op{Kind: OpClose, Task: 1, FD: 0})
	w.fails(syscall.EIO, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
	w.fails(syscall.EIO, Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr})
	require.False(t, w.s.DevInUse)
}

func TestIoctlDispatch(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	s := w.create(dev, "s")
	long := make([]byte, 80)
	copy(long, SessionArgBuf("x"))
	longNZ := append([]byte{}, long...)
	longNZ[79] = 1
	tests := []struct {
		name string
		fd   int
		cmd  uint32
		buf  []byte
		want syscall.Errno
	}{
		{"bad fd", 42, IoctlCreateSession, SessionArgBuf("a"), syscall.EBADF},
		{"not luo", null, IoctlCreateSession, SessionArgBuf("a"), syscall.ENOTTY},
		{"dev unknown nr", dev, IoctlType<<8 | 2, SessionArgBuf("a"), syscall.EINVAL},
		{"dev session nr", dev, IoctlSessionPreserveFD, FDArgBuf(0, 1), syscall.EINVAL},
		{"dev nr before size", dev, IoctlType<<8 | 7, nil, syscall.EINVAL},
		{"dev short buffer", dev, IoctlCreateSession, []byte{72, 0}, syscall.EFAULT},
		{"dev wrong type", dev, 0xBB00, SessionArgBuf("a"), syscall.ENOTTY},
		{"dev wrong dir", dev, 0xC048BA00, SessionArgBuf("a"), syscall.ENOTTY},
		{"dev size small", dev, IoctlCreateSession, withSize(SessionArgBuf("a"), 71), syscall.EINVAL},
		{"dev size beyond buffer", dev, IoctlCreateSession, withSize(SessionArgBuf("a"), 100), syscall.EFAULT},
		{"dev nonzero tail", dev, IoctlCreateSession, withSize(longNZ, 80), syscall.E2BIG},
		{"session nr low", s, IoctlCreateSession, SessionArgBuf("a"), syscall.EINVAL},
		{"session nr high", s, IoctlType<<8 | 0x44, FDArgBuf(0, 1), syscall.EINVAL},
		{"session short", s, IoctlSessionPreserveFD, []byte{1, 2, 3}, syscall.EFAULT},
		{"session wrong type", s, 0xBB40, FDArgBuf(0, 1), syscall.ENOTTY},
		{"session gate before size", s, IoctlSessionRetrieveFD, withSize(FDArgBuf(0, 1), 1), syscall.EINVAL},
		{"session gate finish", s, IoctlSessionFinish, FinishArgBuf(0), syscall.EINVAL},
		{"session size small", s, IoctlSessionPreserveFD, withSize(FDArgBuf(0, 1), 15), syscall.EINVAL},
		{"session tail", s, IoctlSessionGetName, withSize(longNZ, 80), syscall.E2BIG},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.t = t
			w.fails(tc.want, Op{Kind: OpIoctl, Task: 1, FD: tc.fd, Cmd: tc.cmd, Buf: tc.buf})
		})
	}
	w.t = t
	// A zero tail is accepted, and the response covers min(size, 72) bytes.
	r := w.ioctl(dev, IoctlCreateSession, withSize(append([]byte{}, long...), 80))
	require.Zero(t, r.Errno)
	require.Equal(t, long[8:], r.Data[8:])
}

func TestCreateSession(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	require.Equal(t, 1, w.create(dev, "a"))
	w.fails(syscall.EEXIST, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")})
	w.fails(syscall.EINVAL, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("")})
	w.fails(syscall.EINVAL, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf(strings.Repeat("x", 64))})
	require.Equal(t, 2, w.create(dev, strings.Repeat("x", 63)))
	// Bytes after the NUL do not belong to the name.
	b := SessionArgBuf("a")
	b[10] = 'z'
	w.fails(syscall.EEXIST, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: b})
	// The same name may be outgoing and incoming at once; closing an
	// outgoing session's last fd removes it.
	s3 := w.create(dev, "b")
	d := int(w.ok(Op{Kind: OpDup, Task: 1, FD: s3}))
	w.ok(Op{Kind: OpClose, Task: 1, FD: s3})
	w.fails(syscall.EEXIST, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("b")})
	w.ok(Op{Kind: OpClose, Task: 1, FD: d})
	w.create(dev, "b")
}

func TestSessionLimits(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	for i := 0; i < SessionMax; i++ {
		// apply in place: Step's clone per call would make this quadratic.
		r := w.s.apply(Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("s" + itoa(i))})
		require.Zero(t, r.Errno, i)
	}
	// Full: ENOMEM even for a duplicate (the limit is checked first).
	w.fails(syscall.ENOMEM, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("s0")})

	w = newWorld(t)
	dev = w.open(DevLiveUpdate)
	s := w.create(dev, "s")
	m := w.memfd("x")
	for i := 0; i < FileMax; i++ {
		fd := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "m"}))
		require.Zero(t, w.preserve(s, fd, uint64(100+i)).Errno)
		w.ok(Op{Kind: OpClose, Task: 1, FD: fd})
	}
	w.fails(syscall.EEXIST, Op{Kind: OpIoctl, Task: 1, FD: s, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(m), 100)})
	w.fails(syscall.ENOSPC, Op{Kind: OpIoctl, Task: 1, FD: s, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(m), 1)})
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestFDLimit(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	for i := 1; i < NRFileMax; i++ {
		r := w.s.apply(Op{Kind: OpDup, Task: 1, FD: dev})
		require.Equal(t, int64(i), r.Ret)
	}
	w.fails(syscall.EMFILE, Op{Kind: OpDup, Task: 1, FD: dev})
	w.fails(syscall.EMFILE, Op{Kind: OpOpen, Task: 1, Path: "/dev/nope"})
	w.fails(syscall.EMFILE, Op{Kind: OpMemfdCreate, Task: 1, Name: "m"})
	w.fails(syscall.EMFILE, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")})
	w.fails(syscall.EMFILE, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("nope")})
	w.ok(Op{Kind: OpClose, Task: 1, FD: 7})
	require.Equal(t, int64(7), w.ok(Op{Kind: OpDup, Task: 1, FD: dev}))
}

func TestPreserve(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	s := w.create(dev, "s")
	s2 := w.create(dev, "s2")
	m := w.memfd("abc")
	tests := []struct {
		name  string
		sess  int
		fd    int
		token uint64
		want  syscall.Errno
	}{
		{"bad fd", s, 99, 1, syscall.EBADF},
		{"negative fd", s, -1, 1, syscall.EBADF},
		{"null", s, null, 1, syscall.ENOENT},
		{"device", s, dev, 1, syscall.ENOENT},
		{"session", s, s2, 1, syscall.ENOENT},
		{"memfd", s, m, 1, 0},
		{"token again", s, null, 1, syscall.EEXIST},
		{"same file other token", s, m, 2, syscall.EBUSY},
		{"same file other session", s2, m, 1, syscall.EBUSY},
	}
	for _, tc := range tests {
		r := w.preserve(tc.sess, tc.fd, tc.token)
		require.Equal(t, ErrnoName(tc.want), ErrnoName(r.Errno), tc.name)
	}
	d := int(w.ok(Op{Kind: OpDup, Task: 1, FD: m}))
	require.Equal(t, syscall.EBUSY, w.preserve(s2, d, 9).Errno, "dup of a preserved memfd")
	// Preserved memfds cannot change size; writes inside still work.
	w.fails(syscall.EPERM, Op{Kind: OpFtruncate, Task: 1, FD: m, Off: 10})
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: m, Off: 3})
	w.ok(Op{Kind: OpLseek, Task: 1, FD: m, Off: 0, Whence: SeekSet})
	require.Equal(t, int64(2), w.ok(Op{Kind: OpWrite, Task: 1, FD: m, Buf: []byte("XY")}))
	w.fails(syscall.EPERM, Op{Kind: OpWrite, Task: 1, FD: m, Buf: []byte("ZZ")})
	// Closing every user fd keeps the file preserved (LUO's reference).
	w.ok(Op{Kind: OpClose, Task: 1, FD: m})
	w.ok(Op{Kind: OpClose, Task: 1, FD: d})
	require.Len(t, w.s.Preserved, 1)
	// Closing the session unpreserves: the memfd is free again.
	m2 := w.memfd("q")
	require.Zero(t, w.preserve(s, m2, 3).Errno)
	w.ok(Op{Kind: OpClose, Task: 1, FD: s})
	require.Zero(t, w.preserve(s2, m2, 3).Errno)
	require.Len(t, w.s.Preserved, 1)
	require.Len(t, w.s.Inodes, 1)
	// Preserving from an incoming session is gated.
	w.ok(Op{Kind: OpClose, Task: 1, FD: dev})
	t2 := w.kexec()
	dev = int(w.ok(Op{Kind: OpOpen, Task: t2, Path: DevLiveUpdate, Flags: ORdwr}))
	r := w.do(Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("s2")})
	require.Zero(t, r.Errno)
	in := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	m3 := int(w.ok(Op{Kind: OpMemfdCreate, Task: t2}))
	r = w.do(Op{Kind: OpIoctl, Task: t2, FD: in, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(m3), 1)})
	require.Equal(t, syscall.EINVAL, r.Errno)
}

func TestKexecRoundTrip(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	vm := w.create(dev, "vm0")
	gone := w.create(dev, "gone")
	w.create(dev, "empty")
	m := w.memfd("guest memory")
	w.ok(Op{Kind: OpLseek, Task: 1, FD: m, Off: 6, Whence: SeekSet})
	require.Zero(t, w.preserve(vm, m, 7).Errno)
	m2 := w.memfd("")
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: m2, Off: 5000})
	require.Zero(t, w.preserve(vm, m2, 8).Errno)
	w.ok(Op{Kind: OpClose, Task: 1, FD: gone})
	w.ok(Op{Kind: OpWrite, Task: 1, FD: m, Buf: []byte("M")}) // after preserve: still counts
	require.Equal(t, uint64(0), w.s.LiveUpdateNum)

	t2 := w.kexec()
	require.Equal(t, uint64(1), w.s.LiveUpdateNum)
	require.Equal(t, []string{"vm0", "empty"}, w.s.IncomingNames())
	require.Empty(t, w.s.Outgoing)
	w.fails(syscall.ESRCH, Op{Kind: OpClose, Task: 1, FD: null})
	w.fails(syscall.ESRCH, Op{Kind: OpIoctl, Task: 1, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")})

	dev = int(w.ok(Op{Kind: OpOpen, Task: t2, Path: DevLiveUpdate, Flags: ORdwr}))
	ret := func(name string) Result {
		return w.do(Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf(name)})
	}
	require.Equal(t, syscall.ENOENT, ret("gone").Errno)
	noNUL := SessionArgBuf(strings.Repeat("v", 64))
	require.Equal(t, syscall.ENOENT, w.do(Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlRetrieveSession, Buf: noNUL}).Errno)
	r := ret("vm0")
	require.Zero(t, r.Errno)
	in := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	require.Equal(t, syscall.EINVAL, ret("vm0").Errno, "already retrieved")

	sio := func(cmd uint32, buf []byte) Result {
		return w.do(Op{Kind: OpIoctl, Task: t2, FD: in, Cmd: cmd, Buf: buf})
	}
	require.Equal(t, syscall.ENOENT, sio(IoctlSessionRetrieveFD, FDArgBuf(0, 99)).Errno)
	r = sio(IoctlSessionRetrieveFD, FDArgBuf(0, 7))
	require.Zero(t, r.Errno)
	fd := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	// Position survives: it was 7 after the write of "M" at 6.
	r = w.do(Op{Kind: OpRead, Task: t2, FD: fd, N: 100})
	require.Equal(t, "emory", string(r.Data))
	w.ok(Op{Kind: OpLseek, Task: t2, FD: fd, Off: 0, Whence: SeekSet})
	r = w.do(Op{Kind: OpRead, Task: t2, FD: fd, N: 100})
	require.Equal(t, "guest Memory", string(r.Data))
	// Retrieving again: a new fd on the same open file (shared position).
	r = sio(IoctlSessionRetrieveFD, FDArgBuf(0, 7))
	require.Zero(t, r.Errno)
	fd2 := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	require.NotEqual(t, fd, fd2)
	require.Equal(t, int64(12), w.ok(Op{Kind: OpLseek, Task: t2, FD: fd2, Whence: SeekCur}))
	// A retrieved file is in the global map until finish.
	out := int(w.do(Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlCreateSession, Buf: SessionArgBuf("vm0")}).Data[4])
	require.Equal(t, syscall.EBUSY, w.do(Op{Kind: OpIoctl, Task: t2, FD: out, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(fd), 1)}).Errno)
	require.Equal(t, syscall.EINVAL, sio(IoctlSessionFinish, FinishArgBuf(1)).Errno)
	g := GetNameArgBuf(0)
	g[70] = 'q' // strscpy leaves bytes after the NUL alone
	r = sio(IoctlSessionGetName, g)
	require.Zero(t, r.Errno)
	require.Equal(t, "vm0\x00", string(r.Data[8:12]))
	require.Equal(t, byte('q'), r.Data[70])
	require.Equal(t, syscall.EINVAL, sio(IoctlSessionGetName, GetNameArgBuf(1)).Errno)
	require.Zero(t, sio(IoctlSessionFinish, FinishArgBuf(0)).Errno)
	require.Zero(t, w.do(Op{Kind: OpIoctl, Task: t2, FD: out, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(int32(fd), 1)}).Errno)
	// After finish nothing is left to retrieve; the unretrieved token 8
	// was discarded; finishing again succeeds.
	require.Equal(t, syscall.ENOENT, sio(IoctlSessionRetrieveFD, FDArgBuf(0, 8)).Errno)
	require.Zero(t, sio(IoctlSessionFinish, FinishArgBuf(0)).Errno)
	require.Equal(t, syscall.EINVAL, sio(IoctlSessionPreserveFD, FDArgBuf(int32(fd), 2)).Errno)

	// Second live update: "vm0" (re-preserved) arrives, "empty" (never
	// retrieved) is lost.
	t3 := w.kexec()
	require.Equal(t, uint64(2), w.s.LiveUpdateNum)
	require.Equal(t, []string{"vm0"}, w.s.IncomingNames())
	se := w.s.FindIncoming("vm0")
	require.Len(t, se.In, 1)
	require.Equal(t, "guest Memory", string(se.In[0].Data))
	require.Equal(t, int64(12), se.In[0].Pos)
	_ = t3
}

func TestCloseRetrievedSessionFinishes(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "s")
	m := w.memfd("abc")
	require.Zero(t, w.preserve(s, m, 1).Errno)
	t2 := w.kexec()
	dev = int(w.ok(Op{Kind: OpOpen, Task: t2, Path: DevLiveUpdate, Flags: ORdwr}))
	r := w.do(Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("s")})
	in := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	r = w.do(Op{Kind: OpIoctl, Task: t2, FD: in, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 1)})
	fd := int(int32(binary.LittleEndian.Uint32(r.Data[4:])))
	w.ok(Op{Kind: OpClose, Task: t2, FD: in})
	require.Empty(t, w.s.Incoming)
	require.Empty(t, w.s.Preserved)
	// The retrieved memfd lives on through the user's fd.
	w.ok(Op{Kind: OpLseek, Task: t2, FD: fd, Whence: SeekSet})
	require.Equal(t, "abc", string(w.do(Op{Kind: OpRead, Task: t2, FD: fd, N: 10}).Data))
	w.ok(Op{Kind: OpFtruncate, Task: t2, FD: fd, Off: 1}) // not frozen
	w.fails(syscall.ENOENT, Op{Kind: OpIoctl, Task: t2, FD: dev, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("s")})
	w.ok(Op{Kind: OpExit, Task: t2})
	w.fails(syscall.ESRCH, Op{Kind: OpRead, Task: t2, FD: fd, N: 1})
	require.Empty(t, w.s.Files)
	require.False(t, w.s.DevInUse)
}

func TestFileSyscalls(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	s := w.create(dev, "s")
	ro := int(w.ok(Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdonly}))
	m := w.memfd("")
	tests := []struct {
		name string
		op   Op
		want syscall.Errno
		ret  int64
	}{
		{"read null", Op{Kind: OpRead, FD: null, N: 5}, 0, 0},
		{"write null", Op{Kind: OpWrite, FD: null, Buf: []byte("abc")}, 0, 3},
		{"write ro", Op{Kind: OpWrite, FD: ro, Buf: []byte("abc")}, syscall.EBADF, 0},
		{"read dev", Op{Kind: OpRead, FD: dev, N: 5}, syscall.EINVAL, 0},
		{"write session", Op{Kind: OpWrite, FD: s, Buf: []byte("a")}, syscall.EINVAL, 0},
		{"read bad", Op{Kind: OpRead, FD: 77, N: 5}, syscall.EBADF, 0},
		{"lseek null", Op{Kind: OpLseek, FD: null, Off: 5}, 0, 0},
		{"lseek dev", Op{Kind: OpLseek, FD: dev}, syscall.ESPIPE, 0},
		{"lseek session", Op{Kind: OpLseek, FD: s, Whence: SeekEnd}, syscall.ESPIPE, 0},
		{"lseek bad whence", Op{Kind: OpLseek, FD: dev, Whence: 9}, syscall.EINVAL, 0},
		{"lseek negative", Op{Kind: OpLseek, FD: m, Off: -1}, syscall.EINVAL, 0},
		{"lseek past end", Op{Kind: OpLseek, FD: m, Off: 10}, 0, 10},
		{"write at 10", Op{Kind: OpWrite, FD: m, Buf: []byte("hi")}, 0, 2},
		{"lseek end", Op{Kind: OpLseek, FD: m, Off: -3, Whence: SeekEnd}, 0, 9},
		{"ftruncate null", Op{Kind: OpFtruncate, FD: null, Off: 1}, syscall.EINVAL, 0},
		{"ftruncate negative bad fd", Op{Kind: OpFtruncate, FD: 77, Off: -1}, syscall.EINVAL, 0},
		{"ftruncate bad fd", Op{Kind: OpFtruncate, FD: 77, Off: 1}, syscall.EBADF, 0},
		{"ftruncate", Op{Kind: OpFtruncate, FD: m, Off: 11}, 0, 0},
		{"memfd bad flags", Op{Kind: OpMemfdCreate, Flags: 0x100}, syscall.EINVAL, 0},
		{"memfd hugetlb", Op{Kind: OpMemfdCreate, Flags: mfdHugetlb}, syscall.EINVAL, 0},
		{"memfd long name", Op{Kind: OpMemfdCreate, Name: strings.Repeat("n", 250)}, syscall.EINVAL, 0},
		{"close bad", Op{Kind: OpClose, FD: -1}, syscall.EBADF, 0},
		{"dup bad", Op{Kind: OpDup, FD: 1000}, syscall.EBADF, 0},
	}
	for _, tc := range tests {
		tc.op.Task = 1
		r := w.do(tc.op)
		require.Equal(t, ErrnoName(tc.want), ErrnoName(r.Errno), tc.name)
		require.Equal(t, tc.ret, r.Ret, tc.name)
	}
	w.ok(Op{Kind: OpLseek, Task: 1, FD: m, Off: 8})
	r := w.do(Op{Kind: OpRead, Task: 1, FD: m, N: 10})
	require.Equal(t, "\x00\x00h", string(r.Data))
}

func TestFrozenWriteIsShortAtPageGranularity(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	s := w.create(dev, "s")
	m := w.memfd("")
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: m, Off: PageSize + 10})
	require.Zero(t, w.preserve(s, m, 1).Errno)
	w.ok(Op{Kind: OpLseek, Task: 1, FD: m, Off: PageSize - 4})
	// 4 bytes fit in the first page; the second chunk would grow the file.
	require.Equal(t, int64(4), w.ok(Op{Kind: OpWrite, Task: 1, FD: m, Buf: make([]byte, 40)}))
	w.fails(syscall.EPERM, Op{Kind: OpWrite, Task: 1, FD: m, Buf: make([]byte, 40)})
	require.Equal(t, int64(10), w.ok(Op{Kind: OpWrite, Task: 1, FD: m, Buf: make([]byte, 10)}))
	require.Equal(t, int64(0), w.ok(Op{Kind: OpWrite, Task: 1, FD: m, Buf: nil}))
}

func TestFormat(t *testing.T) {
	op := Op{Kind: OpIoctl, Task: 1, FD: 3, Cmd: IoctlCreateSession, Buf: SessionArgBuf("a")}
	r, _ := Step(NewState(true), Op{Kind: OpNewTask})
	require.Equal(t, "fork() = t1", Format(Op{Kind: OpNewTask}, r))
	out := SessionArgBuf("a")
	out[4] = 4
	require.Equal(t, `t1: ioctl(3, LIVEUPDATE_IOCTL_CREATE_SESSION, {size=72, fd=0, name="a"}) = 0 {fd=4}`,
		Format(op, Result{Data: out}))
	require.Equal(t, `t1: write(5, "abc", 3) = 3`, Format(Op{Kind: OpWrite, Task: 1, FD: 5, Buf: []byte("abc")}, Result{Ret: 3}))
	require.Equal(t, `t2: close(9) = -1 EBADF`, Format(Op{Kind: OpClose, Task: 2, FD: 9}, Result{Errno: syscall.EBADF}))
	require.Equal(t, "reboot(LINUX_REBOOT_CMD_KEXEC) = 0", Format(Op{Kind: OpKexec}, Result{}))
}

func TestEqualIgnoresIDs(t *testing.T) {
	a := newWorld(t)
	b := newWorld(t)
	b.memfd("x")
	b.ok(Op{Kind: OpClose, Task: 1, FD: 0})
	a.memfd("y")
	b.memfd("y")
	require.True(t, Equal(a.s, b.s))
	a.memfd("z")
	require.False(t, Equal(a.s, b.s))
}

// TestApplyEqualsStep checks that the in-place Apply reaches the state
// Step returns, through a live update and a retrieve.
func TestApplyEqualsStep(t *testing.T) {
	ops := []Op{
		{Kind: OpNewTask},
		{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr},
		{Kind: OpIoctl, Task: 1, FD: 0, Cmd: IoctlCreateSession, Buf: SessionArgBuf("vm0")},
		{Kind: OpMemfdCreate, Task: 1, Name: "m"},
		{Kind: OpWrite, Task: 1, FD: 2, Buf: []byte("guest")},
		{Kind: OpIoctl, Task: 1, FD: 1, Cmd: IoctlSessionPreserveFD, Buf: FDArgBuf(2, 7)},
		{Kind: OpKexec},
		{Kind: OpNewTask},
		{Kind: OpOpen, Task: 2, Path: DevLiveUpdate, Flags: ORdwr},
		{Kind: OpIoctl, Task: 2, FD: 0, Cmd: IoctlRetrieveSession, Buf: SessionArgBuf("vm0")},
		{Kind: OpIoctl, Task: 2, FD: 1, Cmd: IoctlSessionRetrieveFD, Buf: FDArgBuf(0, 7)},
		{Kind: OpRead, Task: 2, FD: 2, N: 16},
		{Kind: OpIoctl, Task: 2, FD: 1, Cmd: IoctlSessionFinish, Buf: FinishArgBuf(0)},
	}
	stepped, applied := NewState(true), NewState(true)
	for _, op := range ops {
		want, next := Step(stepped, op)
		stepped = next
		got := applied.Apply(op)
		require.True(t, want.Equal(got), "%s vs %s", Format(op, want), Format(op, got))
		require.Zero(t, got.Errno, "%s", Format(op, got))
		require.Equal(t, stepped.Canon(), applied.Canon())
	}
	require.Empty(t, applied.Apply(Op{Kind: OpRead, Task: 2, FD: 2, N: 16}).Data, "at EOF")
}

// TestFailsUnlocked: the failures before the serialize rwsem (fd lookup,
// a file without LUO's ioctls, the dispatcher's checks, the session-type
// check among them, the device's exclusivity) and not the ops' own.
func TestFailsUnlocked(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	s := w.create(dev, "s")
	op := func(fd int, cmd uint32, buf []byte) Op { return Op{Kind: OpIoctl, Task: 1, FD: fd, Cmd: cmd, Buf: buf} }
	for _, tc := range []struct {
		name string
		op   Op
		want bool
	}{
		{"bad fd", op(42, IoctlSessionFinish, FinishArgBuf(0)), true},
		{"not luo", op(null, IoctlSessionFinish, FinishArgBuf(0)), true},
		{"finish on outgoing", op(s, IoctlSessionFinish, FinishArgBuf(0)), true},
		{"dev nr", op(dev, IoctlSessionFinish, FinishArgBuf(0)), true},
		{"get-name", op(s, IoctlSessionGetName, GetNameArgBuf(0)), false},
		{"get-name reserved", op(s, IoctlSessionGetName, GetNameArgBuf(1)), false},
		{"preserve bad fd", op(s, IoctlSessionPreserveFD, FDArgBuf(42, 1)), false},
		{"create", op(dev, IoctlCreateSession, SessionArgBuf("s")), false},
		{"dup bad fd", Op{Kind: OpDup, Task: 1, FD: -1}, true},
		{"close bad fd", Op{Kind: OpClose, Task: 1, FD: 42}, true},
		{"close", Op{Kind: OpClose, Task: 1, FD: s}, false},
		{"dup", Op{Kind: OpDup, Task: 1, FD: null}, false},
		{"open busy device", Op{Kind: OpOpen, Task: 1, Path: DevLiveUpdate, Flags: ORdwr}, true},
		{"open null", Op{Kind: OpOpen, Task: 1, Path: DevNull, Flags: ORdwr}, false},
	} {
		require.Equal(t, tc.want, FailsUnlocked(&w.s, tc.op), tc.name)
	}
}

// TestFDTableOnly: dup and fcntl of a held fd, a close that leaves a
// reference or releases a file outside LUO; not a close that releases a
// session, the device or a test file, nor any other call.
func TestFDTableOnly(t *testing.T) {
	w := newWorld(t)
	dev := w.open(DevLiveUpdate)
	null := w.open(DevNull)
	s := w.create(dev, "s")
	s2 := w.create(dev, "s2")
	dupS2 := int(w.ok(Op{Kind: OpDup, Task: 1, FD: s2}))
	for _, tc := range []struct {
		name string
		op   Op
		want bool
	}{
		{"dup session", Op{Kind: OpDup, Task: 1, FD: s}, true},
		{"dup bad fd", Op{Kind: OpDup, Task: 1, FD: 42}, false},
		{"fcntl", Op{Kind: OpFcntl, Task: 1, FD: dev, Cmd: FDupfd, Arg: 10}, true},
		{"close null", Op{Kind: OpClose, Task: 1, FD: null}, true},
		{"close shared session", Op{Kind: OpClose, Task: 1, FD: dupS2}, true},
		{"close last session ref", Op{Kind: OpClose, Task: 1, FD: s}, false},
		{"close device", Op{Kind: OpClose, Task: 1, FD: dev}, false},
		{"close bad fd", Op{Kind: OpClose, Task: 1, FD: 42}, false},
		{"ioctl", Op{Kind: OpIoctl, Task: 1, FD: s, Cmd: IoctlSessionGetName, Buf: GetNameArgBuf(0)}, false},
	} {
		require.Equal(t, tc.want, FDTableOnly(&w.s, tc.op), tc.name)
	}
}
