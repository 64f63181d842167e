package vfs

import (
	"strings"
	"syscall"
)

// openFlagsDropped are the open flags that do not survive into f_flags
// (build_open_flags(), do_dentry_open()): they act at open time or belong
// to the fd, not to the open file.
const openFlagsDropped = syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY | syscall.O_TRUNC | syscall.O_CLOEXEC

// devPrefix is where character devices live; it is the only directory of
// the modelled namespace.
const devPrefix = "/dev/"

// Open ports fs/namei.c:do_filp_open() for the modelled namespace: path must name a
// device under /dev ("/dev/null", "/dev/liveupdate", ...); anything else is
// ENOENT. O_CREAT|O_EXCL on an existing device is EEXIST and O_DIRECTORY is
// ENOTDIR, as for any character device. The file returned carries one
// reference.
func (v *VFS) Open(ctx *Context, path string, flags int) (*File, error) {
	name, ok := strings.CutPrefix(path, devPrefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, syscall.ENOENT
	}
	v.miscMtx.Lock()
	defer v.miscMtx.Unlock()
	dev := v.misc[name]
	if dev == nil {
		return nil, syscall.ENOENT
	}
	if flags&(syscall.O_CREAT|syscall.O_EXCL) == syscall.O_CREAT|syscall.O_EXCL {
		return nil, syscall.EEXIST
	}
	if flags&syscall.O_DIRECTORY != 0 {
		return nil, syscall.ENOTDIR
	}
	return v.miscOpenLocked(dev, flags&^openFlagsDropped)
}

// Truncate ports fs/open.c:do_ftruncate(): EINVAL for a negative length or
// a file not open for writing, else the file's truncate (which fails with
// EINVAL for anything but a regular file).
func (f *File) Truncate(length int64) error {
	if length < 0 || f.mode&fmodeWrite == 0 {
		return syscall.EINVAL
	}
	return f.ops.Truncate(f, length)
}
