package kernel

import (
	"syscall"

	"luomodel/kernel/vfs"
)

// Open ports fs/open.c:do_sys_openat2(): reserve the lowest free fd
// (O_CLOEXEC honoured) before the path lookup, so a full table fails with
// EMFILE even for a missing path; then open the path and install the file.
func (t *Task) Open(path string, flags int) (int, error) {
	return doSyscall(t, "open", -1, func(ctx *vfs.Context) (int, error) {
		fd, err := t.fds.GetUnusedFD(flags)
		if err != nil {
			return -1, err
		}
		f, err := t.k.vfs.Open(ctx, path, flags)
		if err != nil {
			t.fds.PutUnusedFD(fd)
			return -1, err
		}
		t.fds.Install(fd, f)
		return fd, nil
	})
}

// Close ports close(2) (close_fd() with a synchronous fput): EBADF unless
// fd holds a file. The release, if this was the last reference, runs
// before Close returns, outside the fd-table lock.
func (t *Task) Close(fd int) error {
	_, err := doSyscall(t, "close", 0, func(*vfs.Context) (int, error) {
		return 0, t.fds.Close(fd)
	})
	return err
}

// Ftruncate ports fs/open.c:do_sys_ftruncate(): EINVAL for a negative length (checked
// before the fd), EBADF for a bad fd, then do_ftruncate().
func (t *Task) Ftruncate(fd int, length int64) error {
	_, err := doSyscall(t, "ftruncate", 0, func(ctx *vfs.Context) (int, error) {
		if length < 0 {
			return 0, syscall.EINVAL
		}
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return 0, f.Truncate(length)
	})
	return err
}
