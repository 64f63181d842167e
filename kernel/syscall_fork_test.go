package kernel

import (
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func cloexecOf(t *testing.T, task *Task, fd int) int {
	t.Helper()
	fl, err := task.Fcntl(fd, syscall.F_GETFD, 0)
	require.NoError(t, err, "F_GETFD %d", fd)
	return fl
}

// TestForkCopiesFDTable: the child has the parent's fds, on the same open
// files (shared offset), with the same close-on-exec bits; afterwards the
// tables are independent.
func TestForkCopiesFDTable(t *testing.T) {
	k := strictKernel(t)
	parent := k.NewTask()
	defer parent.Exit()
	plain, err := parent.MemfdCreate("plain", 0)
	require.NoError(t, err)
	cx, err := parent.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC)
	require.NoError(t, err)
	_, err = parent.Write(plain, []byte("hello"))
	require.NoError(t, err)

	child, err := parent.Fork()
	require.NoError(t, err)
	defer child.Exit()
	fds, err := child.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{plain, cx}, fds)
	require.Zero(t, cloexecOf(t, child, plain))
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, child, cx))

	// One open file: the offset is shared.
	off, err := child.Lseek(plain, 1, 0)
	require.NoError(t, err)
	require.EqualValues(t, 1, off)
	off, err = parent.Lseek(plain, 0, 1)
	require.NoError(t, err)
	require.EqualValues(t, 1, off, "the child's lseek moved the parent's offset")

	// Independent tables: closes and flag changes stay on their side.
	require.NoError(t, child.Close(plain))
	require.NoError(t, child.FcntlSetFD(cx, 0))
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, parent, cx))
	b := make([]byte, 5)
	n, err := parent.Read(plain, b)
	require.NoError(t, err)
	require.Equal(t, "ello", string(b[:n]))
	nfd, err := child.Open("/dev/null", 0)
	require.NoError(t, err)
	require.Equal(t, plain, nfd, "the child's next_fd starts at 0")
}

// TestForkSkipsReservedFD: an fd a sibling thread reserved but has not
// installed yet is free in the child (dup_fd()).
func TestForkSkipsReservedFD(t *testing.T) {
	k := strictKernel(t)
	parent := k.NewTask()
	defer parent.Exit()
	a, err := parent.Open("/dev/null", 0)
	require.NoError(t, err)
	res, err := parent.fds.GetUnusedFD(syscall.O_CLOEXEC)
	require.NoError(t, err)
	installed, reserved, err := parent.FDListing()
	require.NoError(t, err)
	require.Equal(t, []int{a}, installed)
	require.Equal(t, []int{res}, reserved, "the parent's reservation is listed")
	child, err := parent.Fork()
	require.NoError(t, err)
	defer child.Exit()
	fds, err := child.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{a}, fds)
	installed, reserved, err = child.FDListing()
	require.NoError(t, err)
	require.Equal(t, []int{a}, installed)
	require.Empty(t, reserved, "dup_fd() frees a sibling's reservation in the child")
	nfd, err := child.Open("/dev/null", 0)
	require.NoError(t, err)
	require.Equal(t, res, nfd)
	require.Zero(t, cloexecOf(t, child, nfd))
	parent.fds.PutUnusedFD(res)
}

func TestForkExecDeadTask(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	task.Exit()
	_, err := task.Fork()
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Exec(), syscall.ESRCH)
	_, err = task.Fcntl(0, syscall.F_GETFD, 0)
	require.ErrorIs(t, err, syscall.ESRCH)
	require.ErrorIs(t, task.Setrlimit(RLIMIT_NOFILE, 1, 1), syscall.ESRCH)

	live := k.NewTask()
	_, err = live.Open("/dev/null", 0)
	require.NoError(t, err)
	k.MarkDead()
	child, err := live.Fork()
	require.ErrorIs(t, err, syscall.ESRCH, "fork of a dead kernel's task")
	require.Nil(t, child)
	require.ErrorIs(t, live.Exec(), syscall.ESRCH)
	// Release the dead kernel's files so the leak check stays meaningful.
	live.fds.CloseAll()
}

// TestExecClosesCloseOnExec: exactly the close-on-exec fds go; the others
// keep their fd and file; the bits of surviving fds are clear.
func TestExecClosesCloseOnExec(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	keep, err := task.Open("/dev/null", 0)
	require.NoError(t, err)
	gone, err := task.Open("/dev/null", syscall.O_CLOEXEC)
	require.NoError(t, err)
	mfd, err := task.MemfdCreate("m", 1) // MFD_CLOEXEC
	require.NoError(t, err)
	dup, err := task.Dup(mfd) // dup clears close-on-exec
	require.NoError(t, err)
	set, err := task.Open("/dev/null", 0)
	require.NoError(t, err)
	require.NoError(t, task.FcntlSetFD(set, syscall.FD_CLOEXEC))
	high, err := task.Fcntl(keep, syscall.F_DUPFD_CLOEXEC, 200)
	require.NoError(t, err)
	require.Equal(t, 200, high)

	require.NoError(t, task.Exec())
	fds, err := task.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{keep, dup}, fds)
	require.Zero(t, cloexecOf(t, task, keep))
	require.Zero(t, cloexecOf(t, task, dup))
	_, err = task.Fcntl(gone, syscall.F_GETFD, 0)
	require.ErrorIs(t, err, syscall.EBADF)
	// Exec again: nothing more to close.
	require.NoError(t, task.Exec())
	fds, err = task.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{keep, dup}, fds)
}

func TestFcntlErrnos(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	fd, err := task.Open("/dev/null", 0)
	require.NoError(t, err)

	for _, bad := range []int{-1, 1, 1023, 1024, 1 << 20} {
		for _, cmd := range []int{syscall.F_DUPFD, syscall.F_DUPFD_CLOEXEC, syscall.F_GETFD, syscall.F_SETFD, 12345} {
			r, err := task.Fcntl(bad, cmd, 0)
			require.ErrorIs(t, err, syscall.EBADF, "fd %d cmd %d: EBADF before anything", bad, cmd)
			require.Equal(t, -1, r)
		}
	}
	_, err = task.Fcntl(fd, 12345, 0)
	require.ErrorIs(t, err, syscall.EINVAL, "unknown command")
	for _, from := range []int{-1, 1024, 1 << 30} {
		_, err = task.Fcntl(fd, syscall.F_DUPFD, from)
		require.ErrorIs(t, err, syscall.EINVAL, "from %d", from)
	}
	// F_DUPFD takes the lowest free fd >= arg.
	d, err := task.Fcntl(fd, syscall.F_DUPFD, 5)
	require.NoError(t, err)
	require.Equal(t, 5, d)
	require.Zero(t, cloexecOf(t, task, d))
	d2, err := task.Fcntl(fd, syscall.F_DUPFD_CLOEXEC, 5)
	require.NoError(t, err)
	require.Equal(t, 6, d2)
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, task, d2))
	d3, err := task.Fcntl(fd, syscall.F_DUPFD, 0)
	require.NoError(t, err)
	require.Equal(t, 1, d3, "F_DUPFD 0 is dup")
	// F_SETFD looks only at FD_CLOEXEC; it returns 0.
	r, err := task.Fcntl(d, syscall.F_SETFD, 3)
	require.NoError(t, err)
	require.Zero(t, r)
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, task, d))
	_, err = task.Fcntl(d, syscall.F_SETFD, 2)
	require.NoError(t, err)
	require.Zero(t, cloexecOf(t, task, d))

	// EMFILE when no fd in [arg, RLIMIT_NOFILE) is free; EINVAL at the limit.
	top, err := task.Fcntl(fd, syscall.F_DUPFD, 1023)
	require.NoError(t, err)
	require.Equal(t, 1023, top)
	_, err = task.Fcntl(fd, syscall.F_DUPFD, 1023)
	require.ErrorIs(t, err, syscall.EMFILE)
	require.NoError(t, task.Setrlimit(RLIMIT_NOFILE, 4, 4096))
	_, err = task.Fcntl(fd, syscall.F_DUPFD, 4)
	require.ErrorIs(t, err, syscall.EINVAL, "arg at the lowered limit")
	d4, err := task.Fcntl(fd, syscall.F_DUPFD, 3)
	require.NoError(t, err)
	require.Equal(t, 3, d4)
	_, err = task.Fcntl(fd, syscall.F_DUPFD, 3)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.Read(top, make([]byte, 1))
	require.NoError(t, err, "an fd above a lowered limit stays usable")
}

func TestSetrlimitNofile(t *testing.T) {
	k := strictKernel(t)
	task := k.NewTask()
	defer task.Exit()
	cur, max, err := task.Getrlimit(RLIMIT_NOFILE)
	require.NoError(t, err)
	require.EqualValues(t, 1024, cur)
	require.EqualValues(t, 4096, max)

	require.ErrorIs(t, task.Setrlimit(-1, 1, 1), syscall.EINVAL)
	require.ErrorIs(t, task.Setrlimit(16, 1, 1), syscall.EINVAL)
	require.ErrorIs(t, task.Setrlimit(0, 1, 1), syscall.EINVAL, "RLIMIT_CPU is not modelled")
	require.ErrorIs(t, task.Setrlimit(RLIMIT_NOFILE, 5, 4), syscall.EINVAL, "cur > max")
	require.ErrorIs(t, task.Setrlimit(RLIMIT_NOFILE, 5, RLIM_INFINITY), syscall.EPERM)
	require.ErrorIs(t, task.Setrlimit(RLIMIT_NOFILE, 5, 1<<20+1), syscall.EPERM, "above nr_open")
	_, _, err = task.Getrlimit(0)
	require.ErrorIs(t, err, syscall.EINVAL)

	// Raise past the initial fd array and the old hard limit.
	require.NoError(t, task.Setrlimit(RLIMIT_NOFILE, 5000, 1<<20))
	hi, err := task.Open("/dev/null", 0)
	require.NoError(t, err)
	d, err := task.Fcntl(hi, syscall.F_DUPFD_CLOEXEC, 4999)
	require.NoError(t, err)
	require.Equal(t, 4999, d)
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, task, d))
	child, err := task.Fork()
	require.NoError(t, err)
	cur, max, err = child.Getrlimit(RLIMIT_NOFILE)
	require.NoError(t, err)
	require.EqualValues(t, 5000, cur, "fork copies the limits")
	require.EqualValues(t, 1<<20, max)
	require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, child, d))
	require.NoError(t, child.Exec())
	fds, err := child.FDs()
	require.NoError(t, err)
	require.Equal(t, []int{hi}, fds)
	child.Exit()

	// A zero limit: no new fd at all.
	require.NoError(t, task.Setrlimit(RLIMIT_NOFILE, 0, 0))
	_, err = task.Open("/dev/null", 0)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.Dup(hi)
	require.ErrorIs(t, err, syscall.EMFILE)
	_, err = task.MemfdCreate("x", 0)
	require.ErrorIs(t, err, syscall.EMFILE)
	require.NoError(t, task.Setrlimit(RLIMIT_NOFILE, 1, 1), "root may raise the hard limit again")
}

// TestForkRacesOpenClose forks while sibling threads open, dup and close:
// every child gets a consistent table (each fd it lists holds a file it can
// use) and no reference is lost or leaked (strictKernel's leak check).
func TestForkRacesOpenClose(t *testing.T) {
	k := strictKernel(t)
	parent := k.NewTask()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				fd, err := parent.Open("/dev/null", syscall.O_CLOEXEC)
				if err != nil {
					continue
				}
				if d, err := parent.Fcntl(fd, syscall.F_DUPFD_CLOEXEC, 70); err == nil {
					_ = parent.Close(d)
				}
				_ = parent.Close(fd)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		parent.Exit()
	}()
	for range 200 {
		child, err := parent.Fork()
		require.NoError(t, err)
		defer child.Exit()
		fds, err := child.FDs()
		require.NoError(t, err)
		for _, fd := range fds {
			require.Equal(t, syscall.FD_CLOEXEC, cloexecOf(t, child, fd))
			_, err := child.Read(fd, make([]byte, 1))
			require.NoError(t, err)
		}
		if len(fds)%2 == 0 {
			require.NoError(t, child.Exec())
			fds, err = child.FDs()
			require.NoError(t, err)
			require.Empty(t, fds)
		}
		child.Exit()
	}
}
