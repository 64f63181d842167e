package vfs

import (
	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// Report titles of this file, for tests and the mutant runner.
const (
	TitleFputFreed   = "fput on freed file"
	TitleGetFreed    = "get_file on freed file"
	TitleFgetDead    = "fget found a file with no references in an fd table"
	TitleInstallFD   = "fd_install on an fd that is not reserved"
	TitlePutUnusedFD = "put_unused_fd on an fd that is not reserved or is installed"
)

// NewFile ports fs/file_table.c:alloc_file_pseudo(): a file with one
// reference, registered as live until its release runs.
func (v *VFS) NewFile(name string, flags int, ops FileOperations, inode *Inode, priv any) *File {
	f := &File{vfs: v, name: name, flags: flags, mode: modeFromFlags(flags), ops: ops, inode: inode, priv: priv}
	f.refs.Store(1)
	f.posLock.Init(v.dom, "file.f_pos_lock")
	f.created.Capture(1, creationStackDepth)
	v.leaks.add(f)
	return f
}

// Get ports include/linux/fs.h:get_file(): take a reference. The caller must already hold one
// (directly or through an fd table); taking one on a freed file is reported
// as a use-after-free and takes nothing.
func (f *File) Get() *File {
	if n := f.refs.Add(1); n <= 1 || f.released.Load() {
		f.refs.Add(-1)
		f.vfs.rep.File(&bug.Report{Kind: bug.KindUAF, Title: TitleGetFreed, Detail: f.String() + f.freedStack()})
	}
	return f
}

// tryGet ports include/linux/file_ref.h:file_ref_get() / atomic_long_inc_not_zero(): take a
// reference unless the count already dropped to zero.
func (f *File) tryGet() bool {
	for {
		n := f.refs.Load()
		if n <= 0 {
			return false
		}
		if f.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Put ports fs/file_table.c:fput() as __fput_sync(): drop a reference; the one that drops
// the last runs the release hook, exactly once. The caller must not hold a
// lock that the release hook takes (design rule 6). Dropping a reference
// that is not there is reported as a use-after-free and runs nothing.
func (f *File) Put() {
	if f.put() {
		f.release()
	}
}

// put drops a reference and reports whether it was the last one, in which
// case the caller must run release.
func (f *File) put() bool {
	if f.refs.Load() == 1 {
		// Possibly the last reference: a place where another task
		// may race with the release.
		f.vfs.dom.Yield(locking.PointFilePut)
	}
	n := f.refs.Add(-1)
	if n > 0 {
		return false
	}
	if n < 0 || !f.released.CompareAndSwap(false, true) {
		f.vfs.rep.File(&bug.Report{Kind: bug.KindUAF, Title: TitleFputFreed, Detail: f.String() + f.freedStack()})
		return false
	}
	f.recordFree()
	return true
}

// recordFree remembers where the file was freed, as KASAN's free stack:
// from the caller of the function that calls recordFree.
func (f *File) recordFree() {
	f.freedAt.Store(bug.CaptureTrace(2, creationStackDepth))
}

// freedStack renders where the file was freed, for a use-after-free
// report ("" if it was not).
func (f *File) freedStack() string {
	if p := f.freedAt.Load(); p != nil {
		return "\nfreed by:\n" + p.String()
	}
	return ""
}

// release ports fs/file_table.c:__fput(): run ->release and free the file. Called once,
// by the Put that dropped the last reference, with released already set.
func (f *File) release() {
	defer f.vfs.leaks.remove(f)
	f.ops.Release(f)
}

// Discard ports fs/file_table.c:fput() of a file whose open failed (FMODE_OPENED not set):
// the file is freed without calling ->release. The caller must hold the
// only reference.
func (f *File) Discard() {
	if f.vfs.rep.WarnOn(f.refs.Load() != 1, "discard of %s with other references", f) {
		return
	}
	f.refs.Store(0)
	if !f.released.CompareAndSwap(false, true) {
		f.vfs.rep.File(&bug.Report{Kind: bug.KindUAF, Title: TitleFputFreed, Detail: f.String() + f.freedStack()})
		return
	}
	f.recordFree()
	f.vfs.leaks.remove(f)
}
