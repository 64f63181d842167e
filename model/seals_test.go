package model

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSeals: fcntl(F_ADD_SEALS/F_GET_SEALS) on memfds and what the seals
// forbid; a write seal on a memfd LUO pins is EBUSY; a retrieved memfd
// cannot be sealed.
func TestSeals(t *testing.T) {
	w := newWorld(t)
	seals := func(fd int) int64 { return w.ok(Op{Kind: OpFcntl, Task: 1, FD: fd, Cmd: FGetSeals}) }
	add := func(fd, s int) Result { return w.do(Op{Kind: OpFcntl, Task: 1, FD: fd, Cmd: FAddSeals, Arg: s}) }

	plain := w.memfd("x")
	require.Equal(t, int64(SealSeal), seals(plain), "not created with MFD_ALLOW_SEALING")
	require.Equal(t, syscall.EPERM, add(plain, SealWrite).Errno)

	fd := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "s", Flags: MfdAllowSealing}))
	require.Zero(t, seals(fd))
	require.Equal(t, syscall.EINVAL, add(fd, 0x40).Errno, "unknown seal")
	w.ok(Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte("abc")})
	require.Zero(t, add(fd, SealGrow|SealShrink).Errno)
	w.fails(syscall.EPERM, Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte("abcd")}) // grows
	w.fails(syscall.EPERM, Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 1})
	w.ok(Op{Kind: OpFtruncate, Task: 1, FD: fd, Off: 3}) // same size
	require.Zero(t, add(fd, SealWrite).Errno)
	w.fails(syscall.EPERM, Op{Kind: OpWrite, Task: 1, FD: fd, Buf: []byte("a")})
	require.Zero(t, add(fd, SealSeal).Errno)
	require.Equal(t, syscall.EPERM, add(fd, SealExec).Errno, "sealed")

	// F_SEAL_EXEC on an executable memfd brings the write and size seals.
	ex := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "e", Flags: MfdAllowSealing}))
	require.Zero(t, add(ex, SealExec).Errno)
	require.Equal(t, int64(SealExec|SealShrink|SealGrow|SealWrite|SealFutureWrite), seals(ex))
	nx := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "n", Flags: MfdNoexecSeal}))
	require.Equal(t, int64(SealExec), seals(nx), "MFD_NOEXEC_SEAL: sealable, exec sealed")
	w.fails(syscall.EINVAL, Op{Kind: OpMemfdCreate, Task: 1, Name: "b", Flags: MfdExec | MfdNoexecSeal})

	// Not a memfd: EINVAL; not open for writing: EPERM first.
	dev := w.open(DevLiveUpdate)
	require.Equal(t, syscall.EINVAL, add(dev, SealWrite).Errno)
	w.fails(syscall.EINVAL, Op{Kind: OpFcntl, Task: 1, FD: dev, Cmd: FGetSeals})
	null := int(w.ok(Op{Kind: OpOpen, Task: 1, Path: "/dev/null", Flags: ORdonly}))
	require.Equal(t, syscall.EPERM, add(null, 0x40).Errno)

	// LUO pins a preserved memfd's folios: a first write seal waits for
	// the pins and gives up.
	pinned := int(w.ok(Op{Kind: OpMemfdCreate, Task: 1, Name: "p", Flags: MfdAllowSealing}))
	w.ok(Op{Kind: OpWrite, Task: 1, FD: pinned, Buf: []byte("data")})
	sess := w.create(dev, "a")
	require.Zero(t, w.preserve(sess, pinned, 1).Errno)
	require.Equal(t, syscall.EBUSY, add(pinned, SealWrite).Errno)
	require.Zero(t, add(pinned, SealGrow).Errno, "only the write seal waits for pins")

	// Across the live update seals are not preserved: the retrieved memfd
	// is a fresh, unsealable one.
	task := w.kexec()
	got := w.retrieve(task, "a", 1)
	require.Equal(t, int64(SealSeal), w.ok(Op{Kind: OpFcntl, Task: task, FD: got, Cmd: FGetSeals}))
}
