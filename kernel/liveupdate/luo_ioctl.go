package liveupdate

import (
	"syscall"

	"luomodel/kernel/usermem"
)

// This file holds the ioctl plumbing both LUO dispatchers share
// (luo_ioctl() in luo_core.c, luo_session_ioctl() in luo_session.c): the
// op-table entry of the IOCTL_OP() macro and copy_struct_from_user().

// luoIoctlOp ports struct luo_ioctl_op minus execute, which differs between
// the two dispatchers.
type luoIoctlOp struct {
	size     int    // sizeof(struct)
	minSize  int    // offsetofend(struct, last field)
	ioctlNum uint32 // the full command value
}

// sessionType is the kind of session an ioctl may run on (M11).
type sessionType uint8

const (
	sessionAny      sessionType = iota // GET_NAME
	sessionOutgoing                    // PRESERVE_FD
	sessionIncoming                    // RETRIEVE_FD, FINISH
)

// copyStructFromUser ports include/linux/uaccess.h:copy_struct_from_user():
// copy the caller's usize-byte struct into the len(dst)-byte kernel struct.
// A shorter user struct is zero-extended; a longer one must be zero beyond
// len(dst) (E2BIG otherwise); a fault is EFAULT.
func copyStructFromUser(dst []byte, src usermem.Buffer, usize int) error {
	ksize := len(dst)
	size := min(ksize, usize)
	if usize < ksize {
		clear(dst[size:])
	} else if usize > ksize {
		// check_zeroed_user(): the tail is checked in place, after the
		// access check, so a huge declared size costs nothing.
		zero, err := src.CheckZeroed(ksize, usize-ksize)
		if err != nil {
			return syscall.EFAULT
		}
		if !zero {
			return syscall.E2BIG
		}
	}
	if err := src.CopyIn(0, dst[:size]); err != nil {
		return syscall.EFAULT
	}
	return nil
}

// ucmdLoad performs the dispatch steps common to both dispatchers after
// the op is known and checked: the minimum-size check and the copy-in
// (steps 5 and 6 of the spec's Part 1.6).
func ucmdLoad(op *luoIoctlOp, ucmd *luoUcmd) error {
	if int(ucmd.userSize) < op.minSize {
		return syscall.EINVAL
	}
	ucmd.cmd = make([]byte, op.size)
	return copyStructFromUser(ucmd.cmd, ucmd.ubuffer, int(ucmd.userSize))
}

// ucmdUserSize reads the leading u32 of the caller's buffer (get_user()).
func ucmdUserSize(arg usermem.Buffer) (uint32, error) {
	size, err := arg.GetU32(0)
	if err != nil {
		return 0, syscall.EFAULT
	}
	return size, nil
}
