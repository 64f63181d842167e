package vfs

import (
	"sync/atomic"

	"luomodel/kernel/usermem"
)

// Context carries what a file operation needs from the calling task: its fd
// table (for ioctls that install fds). Subsystems never see package kernel.
type Context struct {
	FDs *FDTable
}

// FileOperations ports struct file_operations. Embed NoFileOperations to get
// Linux's defaults for the operations a file does not implement.
type FileOperations interface {
	// Release ports ->release(): called once, when the last reference drops,
	// never with an fd-table lock held.
	Release(f *File)
	// Ioctl ports ->unlocked_ioctl(); arg is the user buffer.
	Ioctl(ctx *Context, f *File, cmd uint32, arg usermem.Buffer) error
	// Read ports ->read(); pos is the file position, updated in place.
	Read(ctx *Context, f *File, dst []byte, pos *int64) (int, error)
	// Write ports ->write().
	Write(ctx *Context, f *File, src []byte, pos *int64) (int, error)
	// Llseek ports ->llseek(); pos is the file position.
	Llseek(f *File, pos *int64, off int64, whence int) (int64, error)
	// Truncate ports do_truncate() through ->setattr(ATTR_SIZE).
	Truncate(f *File, length int64) error
}

// File ports struct file.
type File struct {
	vfs   *VFS
	name  string // immutable: "anon_inode:[luo_session] x", "/dev/null", "memfd:x"
	flags int    // immutable: open flags (O_RDWR, ...)
	ops   FileOperations
	inode *Inode
	priv  any
	refs  atomic.Int64
}

// Name is what readlink(/proc/self/fd/N) would show.
func (f *File) Name() string { return f.name }

// Flags are the file's open flags.
func (f *File) Flags() int { return f.flags }

// PrivateData ports file->private_data.
func (f *File) PrivateData() any { return f.priv }

// Inode ports file_inode().
func (f *File) Inode() *Inode { return f.inode }

// Ops returns the file's operations.
func (f *File) Ops() FileOperations { return f.ops }

// Get ports get_file(): take a reference.
func (f *File) Get() *File { f.refs.Add(1); return f }

// Put ports fput(): drop a reference; the last one runs Release.
func (f *File) Put() {
	if f.refs.Add(-1) == 0 {
		f.ops.Release(f)
	}
}

// Inode ports the part of struct inode LUO needs: an identity.
type Inode struct {
	ino  uint64 // immutable
	impl any    // immutable: the filesystem's own inode data
}

// Ino is the inode number, unique within a VFS.
func (i *Inode) Ino() uint64 { return i.ino }

// Impl is the filesystem's private inode data (e.g. a shmem inode).
func (i *Inode) Impl() any { return i.impl }
