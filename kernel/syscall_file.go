package kernel

import "luomodel/kernel/vfs"

// Dup ports fs/file.c:ksys_dup(): the lowest free fd on the same open
// file, close-on-exec clear. EBADF, or EMFILE when the table is full.
func (t *Task) Dup(fd int) (int, error) {
	return doSyscall(t, "dup", -1, func(*vfs.Context) (int, error) {
		return t.fds.Dup(fd)
	})
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

// FDInfos reads /proc/self/fdinfo of every open fd: the fds in ascending
// order, each with its close-on-exec flag, as one consistent snapshot. A
// task that no longer exists has none (ESRCH).
func (t *Task) FDInfos() ([]vfs.FDInfo, error) {
	return doSyscall(t, "getdents", nil, func(*vfs.Context) ([]vfs.FDInfo, error) {
		return t.fds.FDInfos(), nil
	})
}

// FDs lists the task's open fds in ascending order, as /proc/self/fd
// would. A task that no longer exists has none (ESRCH).
func (t *Task) FDs() ([]int, error) {
	return doSyscall(t, "getdents", nil, func(*vfs.Context) ([]int, error) {
		return t.fds.FDs(), nil
	})
}

// FDListing is FDs with the fds reserved but not installed beside them
// (vfs.FDTable.Listing), for the checkers: no /proc file shows those. A
// task that no longer exists has none (ESRCH).
func (t *Task) FDListing() (installed, reserved []int, err error) {
	type listing struct{ installed, reserved []int }
	l, err := doSyscall(t, "getdents", listing{}, func(*vfs.Context) (listing, error) {
		var l listing
		l.installed, l.reserved = t.fds.Listing()
		return l, nil
	})
	return l.installed, l.reserved, err
}
