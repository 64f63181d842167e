// Package usermem models the user-space side of a syscall's memory
// arguments: copy_from_user() and copy_to_user() on a buffer the caller
// passed in. A copy that reaches past the end of the buffer faults with
// EFAULT, as an access to an unmapped user address does in Linux.
//
// Every access goes through Buffer.checkIn or Buffer.checkOut. checkOut is
// also the fault site fault.CopyToUser (fail_usercopy-style): a buffer
// made WithFaults consults the machine's injector before every write.
package usermem

import (
	"encoding/binary"
	"syscall"

	"luomodel/kernel/fault"
)

// Buffer is a user buffer: the bytes a task passed to a syscall. The kernel
// reads from it and writes its response back into it. A Buffer is a value;
// copies alias the same user memory.
type Buffer struct {
	b []byte
	// faults is the machine's fault injector (nil: none); copies of the
	// buffer share it.
	faults *fault.Injector
}

// NewBuffer wraps the caller's bytes. A nil or short slice is a valid
// Buffer whose accesses past its length fault.
func NewBuffer(b []byte) Buffer { return Buffer{b: b} }

// WithFaults returns u whose writes (copy_to_user()) consult inj's
// fault.CopyToUser site.
func (u Buffer) WithFaults(inj *fault.Injector) Buffer {
	u.faults = inj
	return u
}

// Len is the number of accessible bytes.
func (u Buffer) Len() int { return len(u.b) }

// Sub returns the user range [off, off+n) of u, as pointer arithmetic on a
// user pointer would: forming it never faults, but the part of it that lies
// beyond u is not accessible, so accesses there fault.
func (u Buffer) Sub(off, n int) Buffer {
	if off < 0 || n < 0 || off >= len(u.b) {
		return Buffer{faults: u.faults}
	}
	end := len(u.b)
	if n < end-off {
		end = off + n
	}
	return Buffer{b: u.b[off:end:end], faults: u.faults}
}

// checkIn validates a read of n bytes at off (access_ok() plus the fault a
// read of unmapped memory takes).
func (u Buffer) checkIn(off, n int) error {
	if off < 0 || n < 0 || off > len(u.b) || n > len(u.b)-off {
		return syscall.EFAULT
	}
	return nil
}

// checkOut validates a write of n bytes at off; an injected
// fault.CopyToUser fails it like an unmapped page.
func (u Buffer) checkOut(off, n int) error {
	if off < 0 || n < 0 || off > len(u.b) || n > len(u.b)-off {
		return syscall.EFAULT
	}
	return u.faults.Fail(fault.CopyToUser)
}

// CopyIn ports copy_from_user(dst, ubuf+off, len(dst)). On a fault nothing
// is copied.
func (u Buffer) CopyIn(off int, dst []byte) error {
	if err := u.checkIn(off, len(dst)); err != nil {
		return err
	}
	copy(dst, u.b[off:])
	return nil
}

// CopyOut ports copy_to_user(ubuf+off, src, len(src)). On a fault nothing
// is copied.
func (u Buffer) CopyOut(off int, src []byte) error {
	if err := u.checkOut(off, len(src)); err != nil {
		return err
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

// PutU32 ports put_user() of a little-endian u32 at off.
func (u Buffer) PutU32(off int, v uint32) error {
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], v)
	return u.CopyOut(off, w[:])
}

// GetU64 ports get_user() of a little-endian u64 at off.
func (u Buffer) GetU64(off int) (uint64, error) {
	var w [8]byte
	if err := u.CopyIn(off, w[:]); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(w[:]), nil
}

// PutU64 ports put_user() of a little-endian u64 at off.
func (u Buffer) PutU64(off int, v uint64) error {
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], v)
	return u.CopyOut(off, w[:])
}

// CheckZeroed ports lib/usercopy.c:check_zeroed_user() for the n bytes at
// off: true if they are all zero, false if not, EFAULT if any is not
// accessible.
func (u Buffer) CheckZeroed(off, n int) (bool, error) {
	if err := u.checkIn(off, n); err != nil {
		return false, err
	}
	for _, c := range u.b[off : off+n] {
		if c != 0 {
			return false, nil
		}
	}
	return true, nil
}

// CopyStructFromUser ports include/linux/uaccess.h:copy_struct_from_user():
// fill the kernel struct dst (ksize = len(dst)) from the usize bytes the
// caller declared at the start of u. A shorter user struct is zero-extended;
// a longer one must be zero beyond ksize, else E2BIG. Faults are EFAULT.
func (u Buffer) CopyStructFromUser(dst []byte, usize int) error {
	ksize := len(dst)
	if usize < 0 {
		return syscall.EFAULT
	}
	size := min(ksize, usize)
	if usize < ksize {
		clear(dst[size:])
	} else if usize > ksize {
		zero, err := u.CheckZeroed(size, usize-size)
		if err != nil {
			return err
		}
		if !zero {
			return syscall.E2BIG
		}
	}
	return u.CopyIn(0, dst[:size])
}
