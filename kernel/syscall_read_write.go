package kernel

import "luomodel/kernel/vfs"

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
