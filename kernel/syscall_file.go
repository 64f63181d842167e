package kernel

import "luomodel/kernel/vfs"

// fdCloexec ports FD_CLOEXEC, the fd flag fcntl(F_GETFD) reports.
const fdCloexec = 1

// Dup ports fs/file.c:ksys_dup(): the lowest free fd on the same open
// file, close-on-exec clear. EBADF, or EMFILE when the table is full.
func (t *Task) Dup(fd int) (int, error) {
	return doSyscall(t, "dup", -1, func(*vfs.Context) (int, error) {
		return t.fds.Dup(fd)
	})
}

// FcntlGetFD ports fcntl(fd, F_GETFD): FD_CLOEXEC (1) if fd is
// close-on-exec, else 0; EBADF unless fd holds a file.
func (t *Task) FcntlGetFD(fd int) (int, error) {
	return doSyscall(t, "fcntl", -1, func(ctx *vfs.Context) (int, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return -1, err
		}
		ctx.Fput(f)
		if t.fds.IsCloseOnExec(fd) {
			return fdCloexec, nil
		}
		return 0, nil
	})
}

// FcntlSetFD ports fcntl(fd, F_SETFD, flags): set or clear close-on-exec.
func (t *Task) FcntlSetFD(fd int, flags int) error {
	_, err := doSyscall(t, "fcntl", 0, func(*vfs.Context) (int, error) {
		return 0, t.fds.SetCloseOnExec(fd, flags&fdCloexec != 0)
	})
	return err
}

// Readlink ports readlink("/proc/self/fd/N"): the name of the file at fd,
// e.g. "/dev/null" or "anon_inode:[luo_session] name". EBADF unless fd
// holds a file.
func (t *Task) Readlink(fd int) (string, error) {
	return doSyscall(t, "readlink", "", func(ctx *vfs.Context) (string, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return "", err
		}
		defer ctx.Fput(f)
		return f.Name(), nil
	})
}

// FDs lists the task's open fds in ascending order, as /proc/self/fd
// would. A task that no longer exists has none (ESRCH).
func (t *Task) FDs() ([]int, error) {
	return doSyscall(t, "getdents", nil, func(*vfs.Context) ([]int, error) {
		return t.fds.FDs(), nil
	})
}
