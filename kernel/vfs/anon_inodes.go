package vfs

import (
	"syscall"

	"luomodel/kernel/fault"
)

// AnonInodeGetfile ports fs/anon_inodes.c:anon_inode_getfile(): a new file
// on the VFS's single anonymous inode, named "anon_inode:<name>", with
// private data priv. Only O_ACCMODE and O_NONBLOCK of flags are kept.
func (v *VFS) AnonInodeGetfile(name string, ops FileOperations, priv any, flags int) (*File, error) {
	if ops == nil {
		return nil, syscall.EINVAL
	}
	if err := v.faults.Fail(fault.AnonInodeGetfile); err != nil {
		return nil, err // alloc_file_pseudo() could not allocate
	}
	return v.NewFile("anon_inode:"+name, flags&(syscall.O_ACCMODE|syscall.O_NONBLOCK), ops, v.anonInode, priv), nil
}

// AnonInode returns the inode every anonymous file shares
// (anon_inode_inode).
func (v *VFS) AnonInode() *Inode { return v.anonInode }
