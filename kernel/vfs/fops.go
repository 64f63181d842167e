package vfs

import (
	"syscall"

	"luomodel/kernel/usermem"
)

// ENOIOCTLCMD ports the kernel-internal ENOIOCTLCMD (515): "no such ioctl
// for this file". An Ioctl returns it for a command it does not know; the
// ioctl syscall turns it into ENOTTY, so user space never sees it.
const ENOIOCTLCMD syscall.Errno = 515

// FileOperations ports struct file_operations. Embed NoFileOperations to get
// Linux's defaults for the operations a file does not implement.
//
// An operation returns either a result or an error, as the C functions
// return either a count or a negative errno: Read and Write return (n, nil)
// or (0, err).
type FileOperations interface {
	// Release ports ->release(): called once, when the last reference drops,
	// never with an fd-table lock held.
	Release(f *File)
	// Ioctl ports ->unlocked_ioctl(); arg is the user buffer.
	Ioctl(ctx *Context, f *File, cmd uint32, arg usermem.Buffer) error
	// Read ports ->read(); pos is the file position, updated in place.
	// Called with f_pos_lock held.
	Read(ctx *Context, f *File, dst []byte, pos *int64) (int, error)
	// Write ports ->write(). Called with f_pos_lock held.
	Write(ctx *Context, f *File, src []byte, pos *int64) (int, error)
	// Llseek ports ->llseek(); pos is the file position. Called with
	// f_pos_lock held.
	Llseek(f *File, pos *int64, off int64, whence int) (int64, error)
	// Truncate ports do_truncate() through ->setattr(ATTR_SIZE). Only
	// called for a file open for writing, with length >= 0.
	Truncate(f *File, length int64) error
}

// NoFileOperations implements every operation the way Linux behaves when a
// file_operations table leaves it NULL. Embed it and override what the file
// supports.
type NoFileOperations struct{}

// Release does nothing (a NULL ->release).
func (NoFileOperations) Release(*File) {}

// Ioctl fails with ENOTTY, as vfs_ioctl() does without ->unlocked_ioctl.
func (NoFileOperations) Ioctl(*Context, *File, uint32, usermem.Buffer) error {
	return syscall.ENOTTY
}

// Read fails with EINVAL, as vfs_read() does without ->read (no
// FMODE_CAN_READ).
func (NoFileOperations) Read(*Context, *File, []byte, *int64) (int, error) {
	return 0, syscall.EINVAL
}

// Write fails with EINVAL, as vfs_write() does without ->write.
func (NoFileOperations) Write(*Context, *File, []byte, *int64) (int, error) {
	return 0, syscall.EINVAL
}

// Llseek fails with ESPIPE, as vfs_llseek() does without ->llseek (no
// FMODE_LSEEK).
func (NoFileOperations) Llseek(*File, *int64, int64, int) (int64, error) {
	return 0, syscall.ESPIPE
}

// Truncate fails with EINVAL, as do_ftruncate() does for a file that is not
// a regular file.
func (NoFileOperations) Truncate(*File, int64) error { return syscall.EINVAL }
