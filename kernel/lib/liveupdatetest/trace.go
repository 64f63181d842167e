package liveupdatetest

import (
	"fmt"
	"strings"
	"syscall"
)

// Op names one callback of the test handler or of a test FLB.
type Op int

// The callbacks, handler first, then FLB.
const (
	OpCanPreserve Op = iota
	OpPreserve
	OpUnpreserve
	OpFreeze
	OpUnfreeze
	OpRetrieve
	OpCanFinish
	OpFinish
	OpGetID
	OpFLBPreserve
	OpFLBUnpreserve
	OpFLBRetrieve
	OpFLBFinish

	// NumOps is the number of callbacks.
	NumOps
)

var opNames = [NumOps]string{
	OpCanPreserve:   "can_preserve",
	OpPreserve:      "preserve",
	OpUnpreserve:    "unpreserve",
	OpFreeze:        "freeze",
	OpUnfreeze:      "unfreeze",
	OpRetrieve:      "retrieve",
	OpCanFinish:     "can_finish",
	OpFinish:        "finish",
	OpGetID:         "get_id",
	OpFLBPreserve:   "flb_preserve",
	OpFLBUnpreserve: "flb_unpreserve",
	OpFLBRetrieve:   "flb_retrieve",
	OpFLBFinish:     "flb_finish",
}

// String is the callback's C name without the prefix, e.g. "can_finish".
func (o Op) String() string {
	if o < 0 || o >= NumOps {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// IsFLB tells an FLB callback from a handler one.
func (o Op) IsFLB() bool { return o >= OpFLBPreserve && o < NumOps }

// Kind is what a callback returns.
type Kind int

// Callback result kinds.
const (
	KindErrno Kind = iota // int: 0 or a negative errno
	KindBool              // bool: can_preserve, can_finish
	KindVoid              // void: unpreserve, unfreeze, finish, flb_unpreserve, flb_finish
	KindID                // unsigned long: get_id
)

// Kind returns what o returns.
func (o Op) Kind() Kind {
	switch o {
	case OpCanPreserve, OpCanFinish:
		return KindBool
	case OpUnpreserve, OpUnfreeze, OpFinish, OpFLBUnpreserve, OpFLBFinish:
		return KindVoid
	case OpGetID:
		return KindID
	}
	return KindErrno
}

// Ops returns every callback in declaration order.
func Ops() []Op {
	out := make([]Op, NumOps)
	for i := range out {
		out[i] = Op(i)
	}
	return out
}

// Call is one callback the test module received, in the order received.
type Call struct {
	Op Op
	// File is the test file's id (0 for FLB callbacks, and for
	// can_preserve of a file that is not a test file).
	File uint64
	// FLB is the FLB's index for FLB callbacks, -1 otherwise.
	FLB int
	// Result is what the callback returned: 0 or a negative errno
	// (KindErrno), 1 or 0 (KindBool), the id (KindID), 0 (KindVoid).
	Result int64
}

// String renders c as a C call, e.g.
// "liveupdate_test_freeze(file=0x100000002) = -EIO" or
// "liveupdate_test_flb_finish(flb=liveupdate-test-flb-v1)".
func (c Call) String() string {
	var b strings.Builder
	b.WriteString("liveupdate_test_")
	b.WriteString(c.Op.String())
	if c.Op.IsFLB() {
		fmt.Fprintf(&b, "(flb=%s)", FLBCompatible(c.FLB))
	} else {
		fmt.Fprintf(&b, "(file=%#x)", c.File)
	}
	switch c.Op.Kind() {
	case KindErrno:
		b.WriteString(" = " + ErrnoString(c.Result))
	case KindBool:
		fmt.Fprintf(&b, " = %t", c.Result != 0)
	case KindID:
		fmt.Fprintf(&b, " = %#x", c.Result)
	}
	return b.String()
}

// Trace is a sequence of calls; its String is one call a line.
type Trace []Call

func (t Trace) String() string {
	var b strings.Builder
	for _, c := range t {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

var errnoNames = map[syscall.Errno]string{
	syscall.EPERM: "EPERM", syscall.ENOENT: "ENOENT", syscall.EIO: "EIO",
	syscall.EBADF: "EBADF", syscall.EAGAIN: "EAGAIN", syscall.ENOMEM: "ENOMEM",
	syscall.EFAULT: "EFAULT", syscall.EBUSY: "EBUSY", syscall.EEXIST: "EEXIST",
	syscall.ENODEV: "ENODEV", syscall.EINVAL: "EINVAL", syscall.ENOSPC: "ENOSPC",
	syscall.ENODATA: "ENODATA", syscall.EOPNOTSUPP: "EOPNOTSUPP", syscall.E2BIG: "E2BIG",
	syscall.ENOTTY: "ENOTTY", syscall.ENOSYS: "ENOSYS", syscall.ETIMEDOUT: "ETIMEDOUT",
}

// ErrnoString renders 0 or a negative errno as C code would print it:
// "0", "-ENOMEM", or "-123" for an unnamed one.
func ErrnoString(r int64) string {
	if r == 0 {
		return "0"
	}
	if n, ok := errnoNames[syscall.Errno(-r)]; ok && r < 0 {
		return "-" + n
	}
	return fmt.Sprint(r)
}
