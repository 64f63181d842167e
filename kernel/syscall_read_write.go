package kernel

import (
	"syscall"

	"luomodel/kernel/vfs"
)

// Read ports fs/read_write.c:ksys_read(): fdget_pos() (EBADF), vfs_read()
// under the file's f_pos_lock, fdput_pos(). It returns (0, err) on error.
func (t *Task) Read(fd int, p []byte) (int, error) {
	return doSyscall(t, "read", 0, func(ctx *vfs.Context) (int, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return f.Read(ctx, p)
	})
}

// Write ports fs/read_write.c:ksys_write(). It returns (0, err) on error.
func (t *Task) Write(fd int, p []byte) (int, error) {
	return doSyscall(t, "write", 0, func(ctx *vfs.Context) (int, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return f.Write(ctx, p)
	})
}

// Lseek ports fs/read_write.c:ksys_lseek(): EBADF for a bad fd first, then EINVAL for a
// whence beyond SEEK_MAX, then the file's llseek. It returns (-1, err) on
// error.
func (t *Task) Lseek(fd int, off int64, whence int) (int64, error) {
	return doSyscall(t, "lseek", -1, func(ctx *vfs.Context) (int64, error) {
		f, err := t.fds.Get(fd)
		if err != nil {
			return -1, err
		}
		defer ctx.Fput(f)
		pos, err := f.Llseek(off, whence)
		if err != nil {
			return -1, err
		}
		return pos, nil
	})
}

// Pread ports fs/read_write.c:ksys_pread64(): EINVAL for a negative
// offset (before the fd), EBADF for a bad fd, then vfs_read() at off; the
// file position does not move. It returns (0, err) on error.
func (t *Task) Pread(fd int, p []byte, off int64) (int, error) {
	return doSyscall(t, "pread64", 0, func(ctx *vfs.Context) (int, error) {
		if off < 0 {
			return 0, syscall.EINVAL
		}
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return f.PRead(ctx, p, off)
	})
}

// Pwrite ports fs/read_write.c:ksys_pwrite64(), the twin of Pread.
func (t *Task) Pwrite(fd int, p []byte, off int64) (int, error) {
	return doSyscall(t, "pwrite64", 0, func(ctx *vfs.Context) (int, error) {
		if off < 0 {
			return 0, syscall.EINVAL
		}
		f, err := t.fds.Get(fd)
		if err != nil {
			return 0, err
		}
		defer ctx.Fput(f)
		return f.PWrite(ctx, p, off)
	})
}
