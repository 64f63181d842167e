package kernel

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// taskTestKernel is a kernel with just the substrate the syscalls use
// (locking with lockdep, mm, vfs, shmem): no KHO or LUO, so these tests do
// not depend on them.
func taskTestKernel(t testing.TB, h bug.Handler) *Kernel {
	t.Helper()
	return taskTestKernelLockdep(h, true)
}

func taskTestKernelLockdep(h bug.Handler, lockdep bool) *Kernel {
	rep := bug.NewReporter(h)
	k := &Kernel{rep: rep}
	k.dom = locking.NewDomain(locking.Options{Lockdep: lockdep, Reporter: rep})
	k.mm = mm.New(mm.NewRAM(16<<20), rep, nil)
	k.vfs = vfs.New(k.dom)
	k.shmem = mm.NewShmem(k.mm, k.vfs)
	return k
}

// strictKernel fails the test on any report and on leaked files.
func strictKernel(t testing.TB) *Kernel {
	t.Helper()
	k := taskTestKernel(t, func(r *bug.Report) { t.Errorf("%s", r.String()) })
	t.Cleanup(func() { vfs.CheckNoLeaks(t, k.vfs) })
	return k
}

// recordingKernel collects reports instead of failing.
func recordingKernel(t testing.TB) (*Kernel, func() []*bug.Report) {
	t.Helper()
	handle, reports := collectReports()
	return taskTestKernel(t, handle), reports
}

// collectReports returns a report handler that keeps every report, safe
// for concurrent use, and a function that returns those kept so far.
func collectReports() (bug.Handler, func() []*bug.Report) {
	var mu sync.Mutex
	var reps []*bug.Report
	return func(r *bug.Report) {
			mu.Lock()
			reps = append(reps, r)
			mu.Unlock()
		}, func() []*bug.Report {
			mu.Lock()
			defer mu.Unlock()
			return append([]*bug.Report(nil), reps...)
		}
}

func TestDevNullSyscalls(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	require.Same(t, k, task.Kernel())

	fd, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, 0, fd, "a new task has no open fds")
	n, err := task.Write(fd, []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	n, err = task.Read(fd, make([]byte, 10))
	require.NoError(t, err)
	require.Zero(t, n)
	off, err := task.Lseek(fd, 10, 0)
	require.NoError(t, err)
	require.Zero(t, off)
	_, err = task.Lseek(fd, 0, 9)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.ErrorIs(t, task.Ioctl(fd, 0xBA00, make([]byte, 72)), syscall.ENOTTY)
	require.ErrorIs(t, task.Ftruncate(fd, 0), syscall.EINVAL)
	name, err := task.Readlink(fd)
	require.NoError(t, err)
	require.Equal(t, "/dev/null", name)

	ro, err := task.Open("/dev/null", syscall.O_RDONLY)
	require.NoError(t, err)
	require.Equal(t, 1, ro)
	_, err = task.Write(ro, []byte("x"))
	require.ErrorIs(t, err, syscall.EBADF)
	require.ErrorIs(t, task.Ftruncate(ro, 0), syscall.EINVAL)

	require.NoError(t, task.Close(fd))
	require.ErrorIs(t, task.Close(fd), syscall.EBADF)
	fd, err = task.Open("/dev/null", syscall.O_WRONLY)
	require.NoError(t, err)
	require.Equal(t, 0, fd, "lowest free fd again")
	_, err = task.Read(fd, make([]byte, 1))
	require.ErrorIs(t, err, syscall.EBADF)

	_, err = task.Open("/dev/liveupdate", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ENOENT, "no LUO in this kernel")
	_, err = task.Open("/etc/passwd", syscall.O_RDONLY)
	require.ErrorIs(t, err, syscall.ENOENT)
	fds, err := task.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, fds, "failed opens leave no fd behind")
}

func TestBadFDs(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	_, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	for _, fd := range []int{-1, 1, 2, 1023, 1024, 1 << 20} {
		require.ErrorIs(t, task.Close(fd), syscall.EBADF, "close %d", fd)
		_, err := task.Read(fd, make([]byte, 1))
		require.ErrorIs(t, err, syscall.EBADF, "read %d", fd)
		_, err = task.Write(fd, []byte{1})
		require.ErrorIs(t, err, syscall.EBADF, "write %d", fd)
		off, err := task.Lseek(fd, 0, 9)
		require.ErrorIs(t, err, syscall.EBADF, "lseek %d: EBADF before EINVAL", fd)
		require.EqualValues(t, -1, off)
		require.ErrorIs(t, task.Ftruncate(fd, 0), syscall.EBADF, "ftruncate %d", fd)
		require.ErrorIs(t, task.Ioctl(fd, 0, nil), syscall.EBADF, "ioctl %d", fd)
		nfd, err := task.Dup(fd)
		require.ErrorIs(t, err, syscall.EBADF, "dup %d", fd)
		require.Equal(t, -1, nfd)
		_, err = task.FcntlGetFD(fd)
		require.ErrorIs(t, err, syscall.EBADF)
		_, err = task.Readlink(fd)
		require.ErrorIs(t, err, syscall.EBADF)
	}
	require.ErrorIs(t, task.Ftruncate(7, -1), syscall.EINVAL, "negative length is checked before the fd")
}

func TestDupAndCloseOnExec(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	a, err := task.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC)
	require.NoError(t, err)
	b, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	fl, err := task.FcntlGetFD(a)
	require.NoError(t, err)
	require.Equal(t, 1, fl)
	fl, err = task.FcntlGetFD(b)
	require.NoError(t, err)
	require.Equal(t, 0, fl)

	require.NoError(t, task.Close(a))
	d, err := task.Dup(b)
	require.NoError(t, err)
	require.Equal(t, a, d, "dup takes the lowest free fd")
	fl, err = task.FcntlGetFD(d)
	require.NoError(t, err)
	require.Zero(t, fl)
	require.NoError(t, task.FcntlSetFD(d, 1))
	fl, err = task.FcntlGetFD(d)
	require.NoError(t, err)
	require.Equal(t, 1, fl)

	e, err := task.Dup(d)
	require.NoError(t, err)
	require.Equal(t, 2, e)
	fl, err = task.FcntlGetFD(e)
	require.NoError(t, err)
	require.Zero(t, fl, "dup clears close-on-exec")

	// The dups share one open file: closing b leaves it open via d and e.
	fb, err := task.fds.Get(b)
	require.NoError(t, err)
	fd2, err := task.fds.Get(d)
	require.NoError(t, err)
	require.Same(t, fb, fd2)
	fb.Put()
	fd2.Put()
}

func TestMemfdSyscalls(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()

	fd, err := task.MemfdCreate("data", mm.MFD_CLOEXEC)
	require.NoError(t, err)
	fl, err := task.FcntlGetFD(fd)
	require.NoError(t, err)
	require.Equal(t, 1, fl, "MFD_CLOEXEC makes the fd close-on-exec")
	plain, err := task.MemfdCreate("plain", 0)
	require.NoError(t, err)
	fl, err = task.FcntlGetFD(plain)
	require.NoError(t, err)
	require.Zero(t, fl)

	n, err := task.Write(fd, []byte("hello world"))
	require.NoError(t, err)
	require.Equal(t, 11, n)
	dup, err := task.Dup(fd)
	require.NoError(t, err)
	off, err := task.Lseek(dup, 6, 0)
	require.NoError(t, err)
	require.EqualValues(t, 6, off)
	buf := make([]byte, 16)
	n, err = task.Read(fd, buf)
	require.NoError(t, err)
	require.Equal(t, "world", string(buf[:n]), "dups share the file position")
	require.NoError(t, task.Ftruncate(fd, 5))
	off, err = task.Lseek(fd, 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 5, off)

	_, err = task.MemfdCreate("bad", 0x1000)
	require.ErrorIs(t, err, syscall.EINVAL)
	name, err := task.Readlink(fd)
	require.NoError(t, err)
	require.Contains(t, name, "data")
}

func TestOpenLimit(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	for i := range vfs.DefaultNoFile {
		fd, err := task.Open("/dev/null", syscall.O_RDONLY)
		require.NoError(t, err)
		require.Equal(t, i, fd)
	}
	_, err := task.Open("/dev/null", syscall.O_RDONLY)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.Open("/dev/missing", syscall.O_RDONLY)
	require.ErrorIs(t, err, syscall.EMFILE, "the fd is reserved before the lookup")
	_, err = task.Dup(0)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.MemfdCreate("x", 0)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.MemfdCreate("x", 0x1000)
	require.ErrorIs(t, err, syscall.EINVAL, "memfd_create checks flags before reserving an fd")

	require.NoError(t, task.Close(500))
	fd, err := task.MemfdCreate("x", 0)
	require.NoError(t, err)
	require.Equal(t, 500, fd)
}

func TestExitClosesEverything(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	for range 5 {
		_, err := task.Open("/dev/null", syscall.O_RDWR)
		require.NoError(t, err)
	}
	_, err := task.MemfdCreate("m", 0)
	require.NoError(t, err)
	_, err = task.Dup(2)
	require.NoError(t, err)
	require.Len(t, k.vfs.LiveFiles(), 6)

	other := k.NewTask()
	keep, err := other.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)

	task.Exit()
	require.True(t, task.Exited())
	require.Len(t, k.vfs.LiveFiles(), 1, "only the other task's file is left")
	task.Exit() // a second exit does nothing

	_, err = task.Open("/dev/null", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Close(0), syscall.ESRCH)
	_, err = task.FDs()
	require.ErrorIs(t, err, syscall.ESRCH)

	_, err = other.Write(keep, []byte("still here"))
	require.NoError(t, err)
	other.Exit()
}

func TestDeadKernelESRCH(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	fd, err := task.Open("/dev/null", syscall.O_RDWR)
	require.NoError(t, err)
	k.MarkDead()

	_, err = task.Open("/dev/null", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Close(fd), syscall.ESRCH)
	arg := []byte{1, 2, 3, 4}
	require.ErrorIs(t, task.Ioctl(fd, 0, arg), syscall.ESRCH)
	require.Equal(t, []byte{1, 2, 3, 4}, arg, "the user buffer is untouched")
	_, err = task.Read(fd, make([]byte, 1))
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = task.Write(fd, []byte{1})
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = task.Lseek(fd, 0, 0)
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Ftruncate(fd, 0), syscall.ESRCH)
	_, err = task.Dup(fd)
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = task.MemfdCreate("x", 0)
	require.ErrorIs(t, err, syscall.ESRCH)
	_, err = k.NewTask().Open("/dev/null", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ESRCH, "a task of a dead kernel is born dead")
	task.Exit() // nothing: the kernel is gone

	// The dead kernel's objects are unreachable in a real machine; release
	// them here so the leak check stays meaningful.
	task.fds.CloseAll()
}

// testDev is a misc device whose ioctl does what a test asks.
type testDev struct {
	vfs.NoFileOperations
	ioctl    func(ctx *vfs.Context, f *vfs.File, arg usermem.Buffer) error
	release  func()
	releases atomic.Int32
}

func (d *testDev) Ioctl(ctx *vfs.Context, f *vfs.File, _ uint32, arg usermem.Buffer) error {
	return d.ioctl(ctx, f, arg)
}

func (d *testDev) Release(*vfs.File) {
	d.releases.Add(1)
	if d.release != nil {
		d.release()
	}
}

func registerTestDev(t *testing.T, k *Kernel, name string, d *testDev) {
	t.Helper()
	require.NoError(t, k.vfs.MiscRegister(&vfs.MiscDevice{Name: name, Fops: d}))
}

func TestIoctlUserBuffer(t *testing.T) {
	k := strictKernel(t)
	d := &testDev{ioctl: func(_ *vfs.Context, _ *vfs.File, arg usermem.Buffer) error {
		size, err := arg.GetU32(0)
		if err != nil {
			return err
		}
		if size < 8 {
			return syscall.EINVAL
		}
		return arg.PutU32(4, size*2)
	}}
	registerTestDev(t, k, "echo", d)
	task := k.NewTask()
	defer task.Exit()
	fd, err := task.Open("/dev/echo", syscall.O_RDWR)
	require.NoError(t, err)

	arg := []byte{8, 0, 0, 0, 0, 0, 0, 0}
	require.NoError(t, task.Ioctl(fd, 1, arg))
	require.Equal(t, []byte{8, 0, 0, 0, 16, 0, 0, 0}, arg, "the response is written in place")
	require.ErrorIs(t, task.Ioctl(fd, 1, []byte{8, 0}), syscall.EFAULT)
	require.ErrorIs(t, task.Ioctl(fd, 1, nil), syscall.EFAULT)
	require.ErrorIs(t, task.Ioctl(fd, 1, []byte{8, 0, 0, 0, 0}), syscall.EFAULT)
	require.ErrorIs(t, task.Ioctl(fd, 1, []byte{4, 0, 0, 0, 0, 0, 0, 0}), syscall.EINVAL)
}

func TestPanicInFileOpIsReported(t *testing.T) {
	k, reports := recordingKernel(t)
	d := &testDev{ioctl: func(*vfs.Context, *vfs.File, usermem.Buffer) error {
		panic("buggy ioctl")
	}}
	registerTestDev(t, k, "buggy", d)
	task := k.NewTask()
	fd, err := task.Open("/dev/buggy", syscall.O_RDWR)
	require.NoError(t, err)
	require.ErrorIs(t, task.Ioctl(fd, 1, nil), syscall.EFAULT)
	rs := reports()
	require.Len(t, rs, 1)
	require.Equal(t, bug.KindWarn, rs[0].Kind)
	require.True(t, strings.HasPrefix(rs[0].Title, TitleSyscallPanic+" ioctl"), rs[0].Title)
	require.Contains(t, rs[0].Stack, "TestPanicInFileOpIsReported", "the stack shows where it panicked")

	// The task and its fd table survive.
	require.NoError(t, task.Close(fd))
	task.Exit()
	require.Empty(t, k.vfs.LiveFiles())
	require.Len(t, reports(), 1)
}

func TestLockHeldAtSyscallExitIsReported(t *testing.T) {
	k, reports := recordingKernel(t)
	var m locking.Mutex
	m.Init(k.dom, "testdev.mutex")
	d := &testDev{ioctl: func(*vfs.Context, *vfs.File, usermem.Buffer) error {
		m.Lock() // and forget to unlock: a bug lockdep_sys_exit catches
		return nil
	}}
	registerTestDev(t, k, "leaky", d)
	task := k.NewTask()
	fd, err := task.Open("/dev/leaky", syscall.O_RDWR)
	require.NoError(t, err)
	require.Empty(t, reports())
	require.NoError(t, task.Ioctl(fd, 1, nil))
	m.Unlock()

	rs := reports()
	require.Len(t, rs, 1, "reported once, at the ioctl's exit")
	require.Equal(t, bug.KindLockdep, rs[0].Kind)
	require.Contains(t, rs[0].String(), "testdev.mutex")
	require.Contains(t, rs[0].String(), "ioctl")
	task.Exit()
	require.Len(t, reports(), 1)
}

func TestReleaseRunsAfterIoctlReturns(t *testing.T) {
	k := strictKernel(t)
	var m locking.Mutex
	m.Init(k.dom, "testdev.mutex")
	d := &testDev{}
	var lockFree atomic.Bool
	d.release = func() {
		// The ioctl holds m: the release must run after it returned.
		if m.TryLock() {
			lockFree.Store(true)
			m.Unlock()
		}
	}
	d.ioctl = func(ctx *vfs.Context, f *vfs.File, arg usermem.Buffer) error {
		fd, err := arg.GetU32(0)
		if err != nil {
			return err
		}
		m.Lock()
		defer m.Unlock()
		// Close our own fd under our lock: the syscall still holds a
		// reference, so the release waits for syscall exit.
		if err := ctx.FDs.Close(int(fd)); err != nil {
			return err
		}
		if d.releases.Load() != 0 {
			return syscall.EIO
		}
		return nil
	}
	registerTestDev(t, k, "selfclose", d)
	task := k.NewTask()
	defer task.Exit()
	fd, err := task.Open("/dev/selfclose", syscall.O_RDWR)
	require.NoError(t, err)
	require.NoError(t, task.Ioctl(fd, 1, []byte{byte(fd), 0, 0, 0}))
	require.EqualValues(t, 1, d.releases.Load())
	require.True(t, lockFree.Load(), "the release ran outside the ioctl")
	require.ErrorIs(t, task.Close(fd), syscall.EBADF)
}

func TestConcurrentSyscallsOneTask(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	k := strictKernel(t)
	task := k.NewTask()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				switch (g + i) % 5 {
				case 0, 1:
					if fd, err := task.Open("/dev/null", syscall.O_RDWR); err == nil {
						_, _ = task.Write(fd, []byte("x"))
						_ = task.Close(fd)
					}
				case 2:
					if fd, err := task.Dup(g % 4); err == nil {
						_ = task.Close(fd)
					}
				case 3:
					_, _ = task.Read(i%16, make([]byte, 4))
				case 4:
					if fd, err := task.MemfdCreate(fmt.Sprint(g), 0); err == nil {
						_, _ = task.Write(fd, []byte("data"))
						_ = task.Close(fd)
					}
				}
			}
		})
	}
	wg.Wait()
	task.Exit()
}

func BenchmarkTaskReadDevNull(b *testing.B) {
	for _, ld := range []bool{false, true} {
		b.Run(fmt.Sprintf("lockdep=%v", ld), func(b *testing.B) {
			k := taskTestKernelLockdep(func(r *bug.Report) { b.Errorf("%s", r.String()) }, ld)
			task := k.NewTask()
			defer task.Exit()
			fd, err := task.Open("/dev/null", syscall.O_RDONLY)
			require.NoError(b, err)
			buf := make([]byte, 64)
			for b.Loop() {
				if _, err := task.Read(fd, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
