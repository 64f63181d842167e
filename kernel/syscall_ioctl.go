package kernel

import (
	"luomodel/kernel/usermem"
	"luomodel/kernel/vfs"
)

// Ioctl ports fs/ioctl.c:SYSCALL_DEFINE3(ioctl): fdget() (EBADF), then
// vfs_ioctl() with arg as the user buffer, which the file's ioctl reads
// (the leading u32 size, ...) and writes its response into in place.
func (t *Task) Ioctl(fd int, cmd uint32, arg []byte) error {
	_, err := doSyscall(t, "ioctl", 0, func(ctx *vfs.Context) (int, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return 0, f.Ioctl(ctx, cmd, usermem.NewBuffer(arg).WithFaults(t.k.faults))
	})
	return err
}
