package vfs

import (
	"fmt"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// fmode ports fmode_t: what the open file may do, derived from its open
// flags when it is created.
type fmode uint8

const (
	fmodeRead  fmode = 1 << iota // FMODE_READ
	fmodeWrite                   // FMODE_WRITE
)

// modeFromFlags ports OPEN_FMODE(): the access mode of O_RDONLY, O_WRONLY
// and O_RDWR. The fourth value (3) grants neither, as in Linux.
func modeFromFlags(flags int) fmode {
	switch flags & syscall.O_ACCMODE {
	case syscall.O_RDONLY:
		return fmodeRead
	case syscall.O_WRONLY:
		return fmodeWrite
	case syscall.O_RDWR:
		return fmodeRead | fmodeWrite
	}
	return 0
}

// creationStackDepth is how many frames of a file's creation stack the
// leak registry keeps.
const creationStackDepth = 10

// File ports struct file.
type File struct {
	vfs   *VFS           // immutable
	name  string         // immutable: "anon_inode:[luo_session] x", "/dev/null", "memfd:x"
	flags int            // immutable: open flags (O_RDWR, ...)
	mode  fmode          // immutable: derived from flags
	ops   FileOperations // immutable
	inode *Inode         // immutable
	// priv ports private_data. It is written only while the file is being
	// set up (allocation, a device's open hook), before any other task can
	// reach it, and is immutable afterwards.
	priv any

	// refs ports f_ref: the number of references. Atomic.
	refs atomic.Int64
	// released is set once by the Put that ran the release hook (or by the
	// discard of a file whose open failed). Atomic.
	released atomic.Bool

	// posLock ports f_pos_lock: it serialises read, write and lseek on the
	// file position.
	posLock locking.Mutex
	// pos ports f_pos. Guarded by posLock.
	pos int64

	// seq orders files by creation for leak reports. Immutable.
	seq uint64
	// created holds the creation stack. Immutable.
	created bug.Trace
	// freedAt is where the release started (program counters), for
	// use-after-free reports; nil until then. Stored once, after
	// released is set.
	freedAt atomic.Pointer[bug.Trace]
}

// Name is what readlink(/proc/self/fd/N) would show.
func (f *File) Name() string { return f.name }

// Flags are the file's open flags.
func (f *File) Flags() int { return f.flags }

// PrivateData ports file->private_data.
func (f *File) PrivateData() any { return f.priv }

// SetPrivateData sets file->private_data. Only the code that sets the file
// up may call it (a device's open hook, a filesystem's allocation path),
// before the file is installed in any fd table.
func (f *File) SetPrivateData(priv any) { f.priv = priv }

// Inode ports include/linux/fs.h:file_inode().
func (f *File) Inode() *Inode { return f.inode }

// Ops returns the file's operations.
func (f *File) Ops() FileOperations { return f.ops }

// VFS is the file layer the file belongs to.
func (f *File) VFS() *VFS { return f.vfs }

// Count ports include/linux/fs.h:file_count(): the current number of references. Only
// meaningful to a caller that holds one, or in a quiescent state.
func (f *File) Count() int64 { return f.refs.Load() }

// Released reports whether the file's release has run (it is freed).
func (f *File) Released() bool { return f.released.Load() }

// String names the file for reports.
func (f *File) String() string {
	ino := uint64(0)
	if f.inode != nil {
		ino = f.inode.ino
	}
	return fmt.Sprintf("file %q (ino %d, refs %d)", f.name, ino, f.refs.Load())
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
