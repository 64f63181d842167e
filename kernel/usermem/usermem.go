// Package usermem models the user-space side of a syscall's memory
// arguments: copy_from_user() and copy_to_user() on a buffer the caller
// passed in. A copy that reaches past the end of the buffer faults with
// EFAULT, as an access to an unmapped user address does in Linux.
package usermem

import (
	"encoding/binary"
	"syscall"
)

// Buffer is a user buffer: the bytes a task passed to a syscall. The kernel
// reads from it and writes its response back into it.
type Buffer struct {
	b []byte
}

// NewBuffer wraps the caller's bytes. A nil or short slice is a valid
// Buffer whose accesses past its length fault.
func NewBuffer(b []byte) Buffer { return Buffer{b: b} }

// Len is the number of accessible bytes.
func (u Buffer) Len() int { return len(u.b) }

// CopyIn ports copy_from_user(dst, ubuf+off, len(dst)).
func (u Buffer) CopyIn(off int, dst []byte) error {
	if off < 0 || off > len(u.b) || len(dst) > len(u.b)-off {
		return syscall.EFAULT
	}
	copy(dst, u.b[off:])
	return nil
}

// CopyOut ports copy_to_user(ubuf+off, src, len(src)).
func (u Buffer) CopyOut(off int, src []byte) error {
	if off < 0 || off > len(u.b) || len(src) > len(u.b)-off {
		return syscall.EFAULT
	}
	copy(u.b[off:], src)
	return nil
}

// GetU32 ports get_user() of a little-endian u32 at off.
func (u Buffer) GetU32(off int) (uint32, error) {
	var w [4]byte
	if err := u.CopyIn(off, w[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(w[:]), nil
}
