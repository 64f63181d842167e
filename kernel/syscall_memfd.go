package kernel

import (
	"syscall"

	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// MemfdCreate ports mm/memfd.c:SYSCALL_DEFINE2(memfd_create). Linux checks
// the flags and the name before reserving the fd; here shmem validates them
// while creating the file, so the file is created first and dropped again
// if no fd is free: the errno order (EINVAL, then EMFILE) is Linux's. The
// fd is close-on-exec with MFD_CLOEXEC.
func (t *Task) MemfdCreate(name string, flags uint) (int, error) {
	return doSyscall(t, "memfd_create", -1, func(ctx *vfs.Context) (int, error) {
		f, err := t.k.shmem.MemfdCreate(name, flags)
		if err != nil {
			return -1, err
		}
		oflags := 0
		if flags&mm.MFD_CLOEXEC != 0 {
			oflags = syscall.O_CLOEXEC
		}
		fd, err := t.fds.GetUnusedFD(oflags)
		if err != nil {
			ctx.Fput(f)
			return -1, err
		}
		t.fds.Install(fd, f)
		return fd, nil
	})
}
