package vfs

import (
	"errors"
	"syscall"

	"luomodel/kernel/usermem"
)

// Ioctl ports fs/ioctl.c:vfs_ioctl(): call ->unlocked_ioctl and turn the
// internal ENOIOCTLCMD into ENOTTY. The generic commands do_vfs_ioctl()
// handles itself (FIOCLEX, FIONBIO, ...) are not modelled.
func (f *File) Ioctl(ctx *Context, cmd uint32, arg usermem.Buffer) error {
	err := f.ops.Ioctl(ctx, f, cmd, arg)
	if errors.Is(err, ENOIOCTLCMD) {
		return syscall.ENOTTY
	}
	return err
}
