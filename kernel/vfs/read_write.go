package vfs

import "syscall"

// seekMax ports SEEK_MAX (SEEK_HOLE).
const seekMax = 4

// Read ports fs/read_write.c:vfs_read() with fdget_pos()'s f_pos_lock:
// EBADF unless the file is open for reading, then ->read at the file
// position.
func (f *File) Read(ctx *Context, dst []byte) (int, error) {
	if f.mode&fmodeRead == 0 {
		return 0, syscall.EBADF
	}
	f.posLock.Lock()
	defer f.posLock.Unlock()
	n, err := f.ops.Read(ctx, f, dst, &f.pos)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > len(dst) {
		// Checked before WarnOn so the happy path boxes no arguments.
		f.vfs.rep.WarnOn(true, "%s: read returned %d for %d bytes", f, n, len(dst))
		return 0, syscall.EIO
	}
	return n, nil
}

// Write ports fs/read_write.c:vfs_write() with f_pos_lock: EBADF unless the file is open
// for writing, then ->write at the file position.
func (f *File) Write(ctx *Context, src []byte) (int, error) {
	if f.mode&fmodeWrite == 0 {
		return 0, syscall.EBADF
	}
	f.posLock.Lock()
	defer f.posLock.Unlock()
	n, err := f.ops.Write(ctx, f, src, &f.pos)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > len(src) {
		f.vfs.rep.WarnOn(true, "%s: write returned %d for %d bytes", f, n, len(src))
		return 0, syscall.EIO
	}
	return n, nil
}

// Llseek ports fs/read_write.c:ksys_lseek()'s file part: EINVAL for an unknown whence,
// else vfs_llseek() (->llseek under f_pos_lock).
func (f *File) Llseek(off int64, whence int) (int64, error) {
	if whence < 0 || whence > seekMax {
		return 0, syscall.EINVAL
	}
	f.posLock.Lock()
	defer f.posLock.Unlock()
	return f.ops.Llseek(f, &f.pos, off, whence)
}

// Pos returns the file position (f_pos) under f_pos_lock.
func (f *File) Pos() int64 {
	f.posLock.Lock()
	defer f.posLock.Unlock()
	return f.pos
}

// PRead ports the file part of fs/read_write.c:ksys_pread64(): vfs_read()
// at pos, leaving f_pos alone (no f_pos_lock: pread never touches it).
// EBADF unless the file is open for reading. The caller checked pos >= 0.
func (f *File) PRead(ctx *Context, dst []byte, pos int64) (int, error) {
	if f.mode&fmodeRead == 0 {
		return 0, syscall.EBADF
	}
	n, err := f.ops.Read(ctx, f, dst, &pos)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > len(dst) {
		f.vfs.rep.WarnOn(true, "%s: pread returned %d for %d bytes", f, n, len(dst))
		return 0, syscall.EIO
	}
	return n, nil
}

// PWrite ports the file part of fs/read_write.c:ksys_pwrite64(): vfs_write()
// at pos, leaving f_pos alone. EBADF unless the file is open for writing.
// The caller checked pos >= 0.
func (f *File) PWrite(ctx *Context, src []byte, pos int64) (int, error) {
	if f.mode&fmodeWrite == 0 {
		return 0, syscall.EBADF
	}
	n, err := f.ops.Write(ctx, f, src, &pos)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > len(src) {
		f.vfs.rep.WarnOn(true, "%s: pwrite returned %d for %d bytes", f, n, len(src))
		return 0, syscall.EIO
	}
	return n, nil
}

// CanRead reports FMODE_READ: the file was opened for reading.
func (f *File) CanRead() bool { return f.mode&fmodeRead != 0 }

// CanWrite reports FMODE_WRITE: the file was opened for writing.
func (f *File) CanWrite() bool { return f.mode&fmodeWrite != 0 }
