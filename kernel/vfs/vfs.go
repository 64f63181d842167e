package vfs

import (
	"sync/atomic"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
)

// VFS is one kernel's file layer.
type VFS struct {
	dom    *locking.Domain // immutable
	rep    *bug.Reporter   // immutable
	faults *fault.Injector // immutable; nil: no fault injection

	// lastIno numbers inodes (get_next_ino()); atomic, nobody waits on it.
	lastIno atomic.Uint64

	// anonInode is the one inode every anonymous file shares
	// (anon_inode_inode). Immutable after New.
	anonInode *Inode

	// miscMtx ports misc_mtx: it guards misc and is held across a misc
	// device's open hook.
	miscMtx locking.Mutex
	// misc maps a /dev name to its device (misc_list). Guarded by miscMtx.
	misc map[string]*MiscDevice

	// leaks tracks every live file for CheckNoLeaks.
	leaks leakRegistry

	// installed, if set, is told of every fd_install() (SetInstallObserver).
	installed atomic.Pointer[InstallObserver]
}

// InstallObserver is told that the calling task installed f at fd
// (FDTable.Install), right after the fd became visible to the task's
// threads and before any of them can run: a checker's thread learns the
// number then, as a real program's sibling thread could (it may guess
// the lowest free fd). It runs under the table's file_lock and must take
// no kernel lock.
type InstallObserver func(fd int, f *File)

// SetInstallObserver makes fn the install observer (nil: none).
func (v *VFS) SetInstallObserver(fn InstallObserver) {
	if fn == nil {
		v.installed.Store(nil)
		return
	}
	v.installed.Store(&fn)
}

// New returns the VFS of a kernel whose locks live in dom. It creates the
// anonymous inode (anon_inode_init()) and /dev/null (chr_dev_init()).
func New(dom *locking.Domain) *VFS { return NewWithFaults(dom, nil) }

// NewWithFaults is New for a machine with a fault injector: fd reservation
// and anonymous-file creation consult it.
func NewWithFaults(dom *locking.Domain, inj *fault.Injector) *VFS {
	v := &VFS{dom: dom, rep: dom.Reporter(), faults: inj, misc: make(map[string]*MiscDevice)}
	v.miscMtx.Init(dom, "misc_mtx")
	v.leaks.init()
	v.anonInode = v.NewInode(nil)
	v.registerMemDevices()
	return v
}

// Domain is the locking domain the VFS's locks belong to.
func (v *VFS) Domain() *locking.Domain { return v.dom }

// Faults is the machine's fault injector, nil if none.
func (v *VFS) Faults() *fault.Injector { return v.faults }

// Reporter is the kernel's report sink.
func (v *VFS) Reporter() *bug.Reporter { return v.rep }

// NewInode ports fs/inode.c:new_inode() + get_next_ino(): an inode carrying a
// filesystem's private data, numbered uniquely within the VFS.
func (v *VFS) NewInode(impl any) *Inode {
	return &Inode{ino: v.lastIno.Add(1), impl: impl}
}
