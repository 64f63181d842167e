package vfs

import (
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// VFS is one kernel's file layer.
type VFS struct {
	dom *locking.Domain
	rep *bug.Reporter
}

// New returns the VFS of a kernel whose locks live in dom.
func New(dom *locking.Domain) *VFS { return &VFS{dom: dom, rep: dom.Reporter()} }

// NewInode allocates an inode carrying a filesystem's private data.
func (v *VFS) NewInode(impl any) *Inode { return &Inode{impl: impl} }

// NewFile ports alloc_file_pseudo(): a file with one reference.
func (v *VFS) NewFile(name string, flags int, ops FileOperations, inode *Inode, priv any) *File {
	f := &File{vfs: v, name: name, flags: flags, ops: ops, inode: inode, priv: priv}
	f.refs.Store(1)
	return f
}

// AnonInodeGetfile ports fs/anon_inodes.c:anon_inode_getfile().
func (v *VFS) AnonInodeGetfile(name string, ops FileOperations, priv any, flags int) (*File, error) {
	return v.NewFile("anon_inode:"+name, flags, ops, nil, priv), nil
}

// MiscDevice ports struct miscdevice.
type MiscDevice struct {
	Name string
	Fops FileOperations
	// Open ports fops->open(); an error fails open(2) and Release is not called.
	Open func(f *File) error
}

// MiscRegister ports drivers/char/misc.c:misc_register().
func (v *VFS) MiscRegister(dev *MiscDevice) error { return nil }

// MiscDeregister ports misc_deregister().
func (v *VFS) MiscDeregister(dev *MiscDevice) {}

// Open resolves path ("/dev/NAME") and opens it.
func (v *VFS) Open(ctx *Context, path string, flags int) (*File, error) {
	return nil, syscall.ENOENT
}
