package kernel

import (
	"syscall"

	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// Fcntl ports fs/fcntl.c:SYSCALL_DEFINE3(fcntl) for the fd commands:
//
//   - F_DUPFD, F_DUPFD_CLOEXEC: f_dupfd(): the lowest free fd >= arg on
//     the same open file, close-on-exec clear or set; EINVAL if arg is
//     negative or not below RLIMIT_NOFILE, EMFILE if no fd in
//     [arg, RLIMIT_NOFILE) is free;
//   - F_GETFD: FD_CLOEXEC if fd is close-on-exec, else 0;
//   - F_SETFD: set close-on-exec iff arg has FD_CLOEXEC; returns 0;
//   - F_ADD_SEALS, F_GET_SEALS: a memfd's seals (mm.MemfdFcntl).
//
// EBADF first, for an fd that holds no file (fdget_raw()); any other cmd
// is EINVAL (the model has no file-status flags, locks or leases through
// fcntl).
func (t *Task) Fcntl(fd int, cmd int, arg int) (int, error) {
	return doSyscall(t, "fcntl", -1, func(ctx *vfs.Context) (int, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return -1, err
		}
		defer ctx.Fput(f)
		switch cmd {
		case syscall.F_DUPFD:
			return t.fds.DupFrom(f, arg, 0)
		case syscall.F_DUPFD_CLOEXEC:
			return t.fds.DupFrom(f, arg, syscall.O_CLOEXEC)
		case syscall.F_GETFD:
			if t.fds.IsCloseOnExec(fd) {
				return syscall.FD_CLOEXEC, nil
			}
			return 0, nil
		case syscall.F_SETFD:
			// set_close_on_exec(); Linux would set the bit even if a
			// sibling thread closed fd since the fdget, here that
			// thread's close wins with EBADF (a linearizable outcome).
			if err := t.fds.SetCloseOnExec(fd, arg&syscall.FD_CLOEXEC != 0); err != nil {
				return -1, err
			}
			return 0, nil
		case mm.F_ADD_SEALS, mm.F_GET_SEALS:
			return mm.MemfdFcntl(f, cmd, uint32(arg))
		}
		return -1, syscall.EINVAL
	})
}

// FcntlGetFD is Fcntl(fd, F_GETFD, 0).
func (t *Task) FcntlGetFD(fd int) (int, error) {
	return t.Fcntl(fd, syscall.F_GETFD, 0)
}

// FcntlSetFD is Fcntl(fd, F_SETFD, flags).
func (t *Task) FcntlSetFD(fd int, flags int) error {
	_, err := t.Fcntl(fd, syscall.F_SETFD, flags)
	return err
}
