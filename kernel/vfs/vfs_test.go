package vfs

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
	"luomodel/kernel/usermem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newTestVFS returns a VFS with lockdep on whose reports fail t, and checks
// for leaked files when the test ends.
func newTestVFS(t testing.TB) *VFS {
	t.Helper()
	rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })
	v := New(locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep}))
	t.Cleanup(func() { CheckNoLeaks(t, v) })
	return v
}

// recordingVFS is newTestVFS for tests that expect reports: it collects
// them instead of failing.
func recordingVFS(t *testing.T) (*VFS, func() []*bug.Report) {
	t.Helper()
	var mu sync.Mutex
	var reports []*bug.Report
	rep := bug.NewReporter(func(r *bug.Report) {
		mu.Lock()
		reports = append(reports, r)
		mu.Unlock()
	})
	v := New(locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep}))
	return v, func() []*bug.Report {
		mu.Lock()
		defer mu.Unlock()
		return append([]*bug.Report(nil), reports...)
	}
}

// countingOps counts releases.
type countingOps struct {
	NoFileOperations
	releases atomic.Int32
}

func (o *countingOps) Release(*File) { o.releases.Add(1) }

func TestFileRefcount(t *testing.T) {
	v := newTestVFS(t)
	ops := &countingOps{}
	f := v.NewFile("test", syscall.O_RDWR, ops, nil, nil)
	require.EqualValues(t, 1, f.Count())
	f.Get()
	require.EqualValues(t, 2, f.Count())
	f.Put()
	require.EqualValues(t, 0, ops.releases.Load())
	require.Len(t, v.LiveFiles(), 1)
	f.Put()
	require.EqualValues(t, 1, ops.releases.Load())
	require.True(t, f.Released())
	require.Empty(t, v.LiveFiles())
}

func TestPutBelowZeroIsReported(t *testing.T) {
	v, reports := recordingVFS(t)
	ops := &countingOps{}
	f := v.NewFile("victim", syscall.O_RDWR, ops, nil, nil)
	f.Put()
	f.Put()
	require.EqualValues(t, 1, ops.releases.Load(), "release must not run twice")
	rs := reports()
	require.Len(t, rs, 1)
	require.Equal(t, bug.KindUAF, rs[0].Kind)
	require.Equal(t, TitleFputFreed, rs[0].Title)
	require.Contains(t, rs[0].Detail, "victim")

	f.Get()
	rs = reports()
	require.Len(t, rs, 2)
	require.Equal(t, bug.KindUAF, rs[1].Kind)
	require.Equal(t, TitleGetFreed, rs[1].Title)
	// The report says where the file was freed: from the final Put out.
	require.Contains(t, rs[1].Detail, "freed by:\n luomodel/kernel/vfs.(*File).Put\n")
	require.Contains(t, rs[1].Detail, "TestPutBelowZeroIsReported")
	require.EqualValues(t, 1, ops.releases.Load())
}

func TestResurrectedFileIsNotReleasedTwice(t *testing.T) {
	v, reports := recordingVFS(t)
	ops := &countingOps{}
	f := v.NewFile("zombie", syscall.O_RDWR, ops, nil, nil)
	f.Put()
	// A buggy caller bumps the count of a freed file behind Get's back
	// and drops it again: the count reaches zero a second time.
	f.refs.Add(1)
	f.Put()
	require.EqualValues(t, 1, ops.releases.Load())
	require.Len(t, reports(), 1)
	require.Equal(t, TitleFputFreed, reports()[0].Title)
}

func TestFDAllocationLowestFree(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(0)
	require.Equal(t, DefaultNoFile, fds.Limit())
	defer fds.CloseAll()

	install := func() int {
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		fds.Install(fd, v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil))
		return fd
	}
	for i := range 5 {
		require.Equal(t, i, install())
	}
	require.NoError(t, fds.Close(1))
	require.NoError(t, fds.Close(3))
	require.Equal(t, 1, install())
	require.Equal(t, 3, install())
	require.Equal(t, 5, install())
	require.Equal(t, []int{0, 1, 2, 3, 4, 5}, fds.FDs())

	// A reserved but uninstalled fd is skipped by allocation and reads
	// as EBADF everywhere.
	require.NoError(t, fds.Close(2))
	res, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	require.Equal(t, 2, res)
	require.Equal(t, 6, install())
	_, err = fds.Get(res)
	require.ErrorIs(t, err, syscall.EBADF)
	require.ErrorIs(t, fds.Close(res), syscall.EBADF)
	_, err = fds.Dup(res)
	require.ErrorIs(t, err, syscall.EBADF)
	require.NotContains(t, fds.FDs(), res)
	// Still reserved after the failed close: it is not handed out again.
	require.Equal(t, 7, install())
	fds.PutUnusedFD(res)
	require.Equal(t, 2, install())

	for _, bad := range []int{-1, 100, DefaultNoFile, 1 << 30} {
		_, err = fds.Get(bad)
		require.ErrorIs(t, err, syscall.EBADF, "fd %d", bad)
		require.ErrorIs(t, fds.Close(bad), syscall.EBADF, "fd %d", bad)
		require.False(t, fds.IsCloseOnExec(bad))
	}
}

func TestFDLimit(t *testing.T) {
	v := newTestVFS(t)
	const limit = 130 // more than the initial fd array: exercises expansion
	fds := v.NewFDTable(limit)
	defer fds.CloseAll()
	f := v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil)
	for i := range limit {
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		require.Equal(t, i, fd)
		fds.Install(fd, f.Get())
	}
	_, err := fds.GetUnusedFD(0)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = fds.Dup(0)
	require.ErrorIs(t, err, syscall.EMFILE)
	require.EqualValues(t, limit+1, f.Count(), "a failed dup drops its reference")

	require.NoError(t, fds.Close(77))
	fd, err := fds.Dup(129)
	require.NoError(t, err)
	require.Equal(t, 77, fd)
	got, err := fds.Get(129)
	require.NoError(t, err)
	require.Same(t, f, got)
	got.Put()
	f.Put()
}

func TestCloseOnExec(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(16)
	defer fds.CloseAll()
	newf := func() *File { return v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil) }

	a, err := fds.GetUnusedFD(syscall.O_CLOEXEC)
	require.NoError(t, err)
	require.True(t, fds.IsCloseOnExec(a), "recorded at reservation")
	fds.Install(a, newf())
	b, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(b, newf())
	require.True(t, fds.IsCloseOnExec(a))
	require.False(t, fds.IsCloseOnExec(b))

	d, err := fds.Dup(a)
	require.NoError(t, err)
	require.False(t, fds.IsCloseOnExec(d), "dup clears close-on-exec")

	// A closed fd keeps its bit, as in Linux (what an F_GETFD racing the
	// close reads); reused without the flag, it is not close-on-exec.
	require.NoError(t, fds.Close(a))
	require.True(t, fds.IsCloseOnExec(a), "the closed fd's bit stays")
	c, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	require.Equal(t, a, c)
	require.False(t, fds.IsCloseOnExec(c))
	fds.PutUnusedFD(c)

	require.NoError(t, fds.SetCloseOnExec(b, true))
	require.True(t, fds.IsCloseOnExec(b))
	require.NoError(t, fds.SetCloseOnExec(b, false))
	require.False(t, fds.IsCloseOnExec(b))
	require.ErrorIs(t, fds.SetCloseOnExec(a, true), syscall.EBADF)
	require.ErrorIs(t, fds.SetCloseOnExec(15, true), syscall.EBADF)
	require.ErrorIs(t, fds.SetCloseOnExec(1000, true), syscall.EBADF)
}

func TestInstallMisuseIsReported(t *testing.T) {
	v, reports := recordingVFS(t)
	fds := v.NewFDTable(8)
	ops := &countingOps{}

	fds.Install(3, v.NewFile("stray", syscall.O_RDWR, ops, nil, nil))
	require.Len(t, reports(), 1)
	require.Equal(t, TitleInstallFD, reports()[0].Title)
	require.EqualValues(t, 1, ops.releases.Load(), "the consumed reference is dropped")
	_, err := fds.Get(3)
	require.ErrorIs(t, err, syscall.EBADF)

	fd, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, v.NewFile("first", syscall.O_RDWR, NoFileOperations{}, nil, nil))
	fds.Install(fd, v.NewFile("second", syscall.O_RDWR, ops, nil, nil))
	require.Len(t, reports(), 2)
	require.EqualValues(t, 2, ops.releases.Load())
	f, err := fds.Get(fd)
	require.NoError(t, err)
	require.Equal(t, "first", f.Name())
	f.Put()

	fds.PutUnusedFD(fd)
	require.Len(t, reports(), 3, "put_unused_fd on an installed fd")
	require.Equal(t, TitlePutUnusedFD, reports()[2].Title)
	fds.CloseAll()
	require.Empty(t, v.LiveFiles())
}

// TestReleaseOnceConcurrent hammers one file through fget/fput, dup and
// close from many goroutines; its release must run exactly once, after
// every reference is gone.
func TestReleaseOnceConcurrent(t *testing.T) {
	for round := range 20 {
		v := newTestVFS(t)
		fds := v.NewFDTable(256)
		ops := &countingOps{}
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		fds.Install(fd, v.NewFile(fmt.Sprintf("shared-%d", round), syscall.O_RDWR, ops, nil, nil))

		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					switch (g + i) % 4 {
					case 0:
						if f, err := fds.Get(fd); err == nil {
							f.Get().Put()
							f.Put()
						}
					case 1:
						if nfd, err := fds.Dup(fd); err == nil {
							_ = fds.Close(nfd)
						}
					case 2:
						if f, err := fds.Get(fd); err == nil {
							// Another task may close fd now; our
							// reference keeps the file alive.
							require.False(t, f.Released())
							f.Put()
						}
					case 3:
						if g == 0 && i == 43 {
							_ = fds.Close(fd)
						}
					}
				}
			})
		}
		wg.Wait()
		fds.CloseAll()
		require.EqualValues(t, 1, ops.releases.Load())
		require.Empty(t, fds.FDs())
	}
}

// TestFgetRacesWithReinstall checks the lockless fget against close and
// re-install of the same fd: it must never return a released file, nor a
// file other than the one it took a reference on.
func TestFgetRacesWithReinstall(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(DefaultNoFile)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if f, err := fds.Get(0); err == nil {
					require.False(t, f.Released())
					f.Put()
				}
			}
		})
	}
	for i := range 500 {
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		require.Equal(t, 0, fd)
		fds.Install(fd, v.NewFile(fmt.Sprintf("gen-%d", i), syscall.O_RDWR, NoFileOperations{}, nil, nil))
		// Force array growth now and then while readers run.
		if i%100 == 0 {
			var dups []int
			for range 70 {
				nfd, err := fds.Dup(0)
				require.NoError(t, err)
				dups = append(dups, nfd)
			}
			for _, nfd := range dups {
				require.NoError(t, fds.Close(nfd))
			}
		}
		require.NoError(t, fds.Close(0))
	}
	stop.Store(true)
	wg.Wait()
	fds.CloseAll()
}

func TestCloseAll(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(200)
	ops := &countingOps{}
	f := v.NewFile("f", syscall.O_RDWR, ops, nil, nil)
	for range 150 {
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		fds.Install(fd, f.Get())
	}
	_, err := fds.GetUnusedFD(syscall.O_CLOEXEC) // reserved, never installed
	require.NoError(t, err)
	f.Put()
	require.EqualValues(t, 0, ops.releases.Load())
	fds.CloseAll()
	require.EqualValues(t, 1, ops.releases.Load())
	require.Empty(t, fds.FDs())
	fd, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	require.Equal(t, 0, fd, "every fd, reserved ones too, is free again")
	fds.PutUnusedFD(fd)
}

// releaseChecker asserts that no fd-table lock is held when its release
// runs, using lockdep's view of the current task.
type releaseChecker struct {
	NoFileOperations
	fds      *FDTable
	released atomic.Bool
}

func (o *releaseChecker) Release(*File) {
	// Fails if Close ran the release under file_lock.
	if o.fds.fileLock.TryLock() {
		o.fds.fileLock.Unlock()
		o.released.Store(true)
	}
}

func TestReleaseRunsOutsideFDLock(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(8)
	ops := &releaseChecker{fds: fds}
	fd, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, v.NewFile("f", syscall.O_RDWR, ops, nil, nil))
	require.NoError(t, fds.Close(fd))
	require.True(t, ops.released.Load())

	ops.released.Store(false)
	fd, err = fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, v.NewFile("g", syscall.O_RDWR, ops, nil, nil))
	fds.CloseAll()
	require.True(t, ops.released.Load())
}

func TestContextFputDefersRelease(t *testing.T) {
	v := newTestVFS(t)
	ops := &countingOps{}
	f := v.NewFile("f", syscall.O_RDWR, ops, nil, nil)
	f.Get()
	ctx := &Context{}
	ctx.Fput(f)
	require.EqualValues(t, 1, f.Count(), "the reference is dropped at once")
	ctx.Fput(f)
	require.EqualValues(t, 0, f.Count())
	require.EqualValues(t, 0, ops.releases.Load(), "the release waits for syscall exit")
	ctx.TaskWorkRun()
	require.EqualValues(t, 1, ops.releases.Load())
	ctx.TaskWorkRun()
	require.EqualValues(t, 1, ops.releases.Load())

	var nilCtx *Context
	g := v.NewFile("g", syscall.O_RDWR, ops, nil, nil)
	nilCtx.Fput(g)
	require.EqualValues(t, 2, ops.releases.Load())
}

func TestDevNull(t *testing.T) {
	v := newTestVFS(t)
	ctx := &Context{}
	f, err := v.Open(ctx, "/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC)
	require.NoError(t, err)
	defer f.Put()
	require.Equal(t, "/dev/null", f.Name())
	require.Equal(t, syscall.O_RDWR, f.Flags(), "O_CLOEXEC belongs to the fd")

	n, err := f.Write(ctx, []byte("discarded"))
	require.NoError(t, err)
	require.Equal(t, 9, n)
	buf := make([]byte, 8)
	n, err = f.Read(ctx, buf)
	require.NoError(t, err)
	require.Zero(t, n)
	off, err := f.Llseek(100, 0)
	require.NoError(t, err)
	require.Zero(t, off)
	require.Zero(t, f.Pos())
	_, err = f.Llseek(0, 5)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.ErrorIs(t, f.Ioctl(ctx, 0x5401, usermem.NewBuffer(nil)), syscall.ENOTTY)
	require.ErrorIs(t, f.Truncate(0), syscall.EINVAL)

	ro, err := v.Open(ctx, "/dev/null", syscall.O_RDONLY)
	require.NoError(t, err)
	defer ro.Put()
	_, err = ro.Write(ctx, []byte("x"))
	require.ErrorIs(t, err, syscall.EBADF)
	wo, err := v.Open(ctx, "/dev/null", syscall.O_WRONLY)
	require.NoError(t, err)
	defer wo.Put()
	_, err = wo.Read(ctx, buf)
	require.ErrorIs(t, err, syscall.EBADF)

	require.NotSame(t, f, ro, "every open makes a new file")
	require.Same(t, f.Inode(), ro.Inode(), "on the same device inode")
}

func TestOpenPaths(t *testing.T) {
	v := newTestVFS(t)
	for _, p := range []string{"", "/", "/dev", "/dev/", "/dev/nope", "/dev/null/x", "/tmp/null", "null", "/dev//null"} {
		_, err := v.Open(nil, p, syscall.O_RDWR)
		require.ErrorIs(t, err, syscall.ENOENT, "path %q", p)
	}
	_, err := v.Open(nil, "/dev/null", syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL)
	require.ErrorIs(t, err, syscall.EEXIST)
	_, err = v.Open(nil, "/dev/null", syscall.O_RDONLY|syscall.O_DIRECTORY)
	require.ErrorIs(t, err, syscall.ENOTDIR)
	f, err := v.Open(nil, "/dev/null", syscall.O_RDWR|syscall.O_CREAT|syscall.O_TRUNC)
	require.NoError(t, err)
	f.Put()
}

// devOps is a misc device's operations: an ioctl that echoes and counts
// releases.
type devOps struct {
	countingOps
}

func (o *devOps) Ioctl(_ *Context, _ *File, cmd uint32, arg usermem.Buffer) error {
	if cmd != 0xBA00 {
		return ENOIOCTLCMD
	}
	return arg.PutU32(0, 0xfeed)
}

func TestMiscDevice(t *testing.T) {
	v := newTestVFS(t)
	ops := &devOps{}
	var opened []*File
	dev := &MiscDevice{Name: "widget", Fops: ops, Open: func(f *File) error {
		opened = append(opened, f)
		return nil
	}}
	require.Nil(t, dev.Inode())
	require.NoError(t, v.MiscRegister(dev))
	require.NotNil(t, dev.Inode())

	require.ErrorIs(t, v.MiscRegister(dev), syscall.EBUSY)
	require.ErrorIs(t, v.MiscRegister(&MiscDevice{Name: "widget", Fops: ops}), syscall.EBUSY)
	require.ErrorIs(t, v.MiscRegister(&MiscDevice{Name: "null", Fops: ops}), syscall.EBUSY)
	require.ErrorIs(t, v.MiscRegister(&MiscDevice{Name: "", Fops: ops}), syscall.EINVAL)
	require.ErrorIs(t, v.MiscRegister(&MiscDevice{Name: "a/b", Fops: ops}), syscall.EINVAL)
	require.ErrorIs(t, v.MiscRegister(&MiscDevice{Name: "nofops"}), syscall.EINVAL)
	require.ErrorIs(t, v.MiscRegister(nil), syscall.EINVAL)

	f, err := v.Open(nil, "/dev/widget", syscall.O_RDWR)
	require.NoError(t, err)
	require.Equal(t, []*File{f}, opened)
	require.Equal(t, "/dev/widget", f.Name())
	require.Same(t, dev, f.PrivateData(), "misc_open leaves the device in private_data")
	require.Same(t, dev.Inode(), f.Inode())

	arg := make([]byte, 4)
	require.NoError(t, f.Ioctl(nil, 0xBA00, usermem.NewBuffer(arg)))
	require.Equal(t, []byte{0xed, 0xfe, 0, 0}, arg)
	require.ErrorIs(t, f.Ioctl(nil, 0xBA01, usermem.NewBuffer(arg)), syscall.ENOTTY, "ENOIOCTLCMD becomes ENOTTY")
	require.ErrorIs(t, f.Ioctl(nil, 0xBA00, usermem.NewBuffer(arg[:2])), syscall.EFAULT)
	buf := make([]byte, 4)
	_, err = f.Read(nil, buf)
	require.ErrorIs(t, err, syscall.EINVAL, "no ->read")
	_, err = f.Write(nil, buf)
	require.ErrorIs(t, err, syscall.EINVAL, "no ->write")
	_, err = f.Llseek(0, 0)
	require.ErrorIs(t, err, syscall.ESPIPE, "no ->llseek")

	v.MiscDeregister(dev)
	_, err = v.Open(nil, "/dev/widget", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.ENOENT)
	require.ErrorIs(t, f.Ioctl(nil, 0xBA00, usermem.NewBuffer(arg)), nil, "open files survive deregistration")
	f.Put()
	require.EqualValues(t, 1, ops.releases.Load())

	require.NoError(t, v.MiscRegister(dev), "a deregistered device can register again")
	v.MiscDeregister(dev)
}

func TestMiscDeregisterUnregisteredWarns(t *testing.T) {
	v, reports := recordingVFS(t)
	v.MiscDeregister(&MiscDevice{Name: "ghost", Fops: NoFileOperations{}})
	require.Len(t, reports(), 1)
	require.Equal(t, bug.KindWarn, reports()[0].Kind)
}

func TestMiscOpenFailureSkipsRelease(t *testing.T) {
	v := newTestVFS(t)
	ops := &devOps{}
	var seen *File
	dev := &MiscDevice{Name: "busy", Fops: ops, Open: func(f *File) error {
		seen = f
		return syscall.EBUSY
	}}
	require.NoError(t, v.MiscRegister(dev))
	f, err := v.Open(nil, "/dev/busy", syscall.O_RDWR)
	require.ErrorIs(t, err, syscall.EBUSY)
	require.Nil(t, f)
	require.NotNil(t, seen)
	require.True(t, seen.Released())
	require.EqualValues(t, 0, ops.releases.Load(), "a failed open never calls release")
	require.Empty(t, v.LiveFiles(), "and the file is not leaked")
}

func TestAnonInode(t *testing.T) {
	v := newTestVFS(t)
	a, err := v.AnonInodeGetfile("[luo_session] s1", NoFileOperations{}, 42, syscall.O_RDWR|syscall.O_CLOEXEC|syscall.O_NONBLOCK)
	require.NoError(t, err)
	defer a.Put()
	b, err := v.AnonInodeGetfile("[other]", NoFileOperations{}, nil, syscall.O_RDONLY)
	require.NoError(t, err)
	defer b.Put()
	require.Equal(t, "anon_inode:[luo_session] s1", a.Name())
	require.Equal(t, 42, a.PrivateData())
	require.Equal(t, syscall.O_RDWR|syscall.O_NONBLOCK, a.Flags())
	require.Same(t, a.Inode(), b.Inode(), "one shared anon inode")
	require.Same(t, v.AnonInode(), a.Inode())
	require.Same(t, v, a.VFS())

	other := newTestVFS(t)
	require.NotSame(t, v.AnonInode(), other.AnonInode())
	_, err = v.AnonInodeGetfile("x", nil, nil, 0)
	require.ErrorIs(t, err, syscall.EINVAL)
}

func TestInodeNumbers(t *testing.T) {
	v := newTestVFS(t)
	seen := map[uint64]bool{}
	for range 10 {
		i := v.NewInode("impl")
		require.False(t, seen[i.Ino()])
		require.Equal(t, "impl", i.Impl())
		seen[i.Ino()] = true
	}
}

// fakeT records what CheckNoLeaks says.
type fakeT struct {
	helper bool
	errs   []string
}

func (f *fakeT) Helper() { f.helper = true }
func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func openLeaky(v *VFS) *File {
	f, _ := v.AnonInodeGetfile("[leaky]", NoFileOperations{}, nil, syscall.O_RDWR)
	return f
}

func TestCheckNoLeaks(t *testing.T) {
	v := newTestVFS(t)
	ft := &fakeT{}
	require.True(t, CheckNoLeaks(ft, v))
	require.Empty(t, ft.errs)

	leaked := openLeaky(v)
	fine := v.NewFile("fine", syscall.O_RDWR, NoFileOperations{}, nil, nil)
	fine.Put()
	require.Equal(t, []*File{leaked}, v.LiveFiles())
	require.False(t, CheckNoLeaks(ft, v))
	require.True(t, ft.helper)
	require.Len(t, ft.errs, 1)
	require.Contains(t, ft.errs[0], "anon_inode:[leaky]")
	require.Contains(t, ft.errs[0], "openLeaky", "names where the file was created")
	require.True(t, strings.Contains(ft.errs[0], "vfs_test.go"))

	leaked.Put()
	ft = &fakeT{}
	require.True(t, CheckNoLeaks(ft, v))
	require.Empty(t, ft.errs)
}

func TestLiveFilesOrder(t *testing.T) {
	v := newTestVFS(t)
	var fs []*File
	for i := range 5 {
		fs = append(fs, v.NewFile(fmt.Sprint(i), syscall.O_RDWR, NoFileOperations{}, nil, nil))
	}
	require.Equal(t, fs, v.LiveFiles())
	for _, f := range fs {
		f.Put()
	}
}

func TestTruncateModes(t *testing.T) {
	v := newTestVFS(t)
	ro := v.NewFile("ro", syscall.O_RDONLY, NoFileOperations{}, nil, nil)
	defer ro.Put()
	require.ErrorIs(t, ro.Truncate(0), syscall.EINVAL, "not open for writing")
	rw := v.NewFile("rw", syscall.O_RDWR, NoFileOperations{}, nil, nil)
	defer rw.Put()
	require.ErrorIs(t, rw.Truncate(-1), syscall.EINVAL)
}

// badCountOps returns more bytes than asked for.
type badCountOps struct{ NoFileOperations }

func (badCountOps) Read(_ *Context, _ *File, dst []byte, _ *int64) (int, error) {
	return len(dst) + 1, nil
}

func TestBadReadCountWarns(t *testing.T) {
	v, reports := recordingVFS(t)
	f := v.NewFile("bad", syscall.O_RDWR, badCountOps{}, nil, nil)
	defer f.Put()
	_, err := f.Read(nil, make([]byte, 2))
	require.ErrorIs(t, err, syscall.EIO)
	require.Len(t, reports(), 1)
	require.Equal(t, bug.KindWarn, reports()[0].Kind)
}

// benchVFS is a VFS with lockdep on or off and reports failing b.
func benchVFS(b *testing.B, lockdep bool) *VFS {
	rep := bug.NewReporter(func(r *bug.Report) { b.Errorf("%s", r.String()) })
	return New(locking.NewDomain(locking.Options{Lockdep: lockdep, Reporter: rep}))
}

// forLockdep runs bench with lockdep off (the production-like figure) and
// on.
func forLockdep(b *testing.B, bench func(b *testing.B, v *VFS)) {
	for _, ld := range []bool{false, true} {
		b.Run(fmt.Sprintf("lockdep=%v", ld), func(b *testing.B) {
			v := benchVFS(b, ld)
			bench(b, v)
			CheckNoLeaks(b, v)
		})
	}
}

func BenchmarkFgetFput(b *testing.B) {
	forLockdep(b, func(b *testing.B, v *VFS) {
		fds := v.NewFDTable(0)
		defer fds.CloseAll()
		fd, _ := fds.GetUnusedFD(0)
		fds.Install(fd, v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil))
		for b.Loop() {
			f, err := fds.Get(fd)
			if err != nil {
				b.Fatal(err)
			}
			f.Put()
		}
	})
}

func BenchmarkFDAllocInstallClose(b *testing.B) {
	forLockdep(b, func(b *testing.B, v *VFS) {
		fds := v.NewFDTable(0)
		defer fds.CloseAll()
		f := v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil)
		defer f.Put()
		for b.Loop() {
			fd, err := fds.GetUnusedFD(0)
			if err != nil {
				b.Fatal(err)
			}
			fds.Install(fd, f.Get())
			if err := fds.Close(fd); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkNewFilePut(b *testing.B) {
	forLockdep(b, func(b *testing.B, v *VFS) {
		for b.Loop() {
			v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil).Put()
		}
	})
}

// pointRecorder is a Scheduler that lets every task through and records
// the scheduling points it sees.
type pointRecorder struct {
	mu     sync.Mutex
	points []locking.Point
}

func (r *pointRecorder) Yield(p locking.Point) {
	if p == locking.PointLockAcquire || p == locking.PointLockRelease {
		return
	}
	r.mu.Lock()
	r.points = append(r.points, p)
	r.mu.Unlock()
}
func (r *pointRecorder) Block(locking.WaitObject) {}
func (r *pointRecorder) Wake(locking.WaitObject)  {}

func (r *pointRecorder) take() []locking.Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.points
	r.points = nil
	return p
}

func TestSchedulingPoints(t *testing.T) {
	v := newTestVFS(t)
	rec := &pointRecorder{}
	v.Domain().SetScheduler(rec)
	defer v.Domain().SetScheduler(nil)
	fds := v.NewFDTable(8)

	f := v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil)
	fd, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, f)
	require.Equal(t, []locking.Point{locking.PointFDInstall}, rec.take())

	g, err := fds.Get(fd)
	require.NoError(t, err)
	g.Put() // not the last reference
	require.Empty(t, rec.take())

	require.NoError(t, fds.Close(fd))
	require.Equal(t, []locking.Point{locking.PointFDRemove, locking.PointFilePut}, rec.take())

	h := v.NewFile("h", syscall.O_RDWR, NoFileOperations{}, nil, nil)
	fd, err = fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, h)
	rec.take()
	fds.CloseAll()
	require.Equal(t, []locking.Point{locking.PointFDRemove, locking.PointFilePut, locking.PointFDRemove}, rec.take())
}

// TestInstallObserver: the install observer hears of every fd_install(),
// with the fd visible in the table already (a Get from inside it finds
// the file), and of nothing once removed.
func TestInstallObserver(t *testing.T) {
	v := newTestVFS(t)
	fds := v.NewFDTable(0)
	defer fds.CloseAll()
	var seen []int
	v.SetInstallObserver(func(fd int, f *File) {
		installed, reserved := fds.listingLocked()
		require.Contains(t, installed, fd, "visible when the observer runs")
		require.NotContains(t, reserved, fd)
		seen = append(seen, fd)
	})
	for range 2 {
		fd, err := fds.GetUnusedFD(0)
		require.NoError(t, err)
		fds.Install(fd, v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil))
	}
	require.Equal(t, []int{0, 1}, seen)
	v.SetInstallObserver(nil)
	fd, err := fds.GetUnusedFD(0)
	require.NoError(t, err)
	fds.Install(fd, v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil))
	require.Len(t, seen, 2)
}
