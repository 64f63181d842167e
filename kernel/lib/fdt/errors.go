package fdt

import "errors"

// Error is a libfdt error code (the positive FDT_ERR_* value; libfdt
// functions return its negation). The values are constants, so they are
// immutable sentinels: compare with errors.Is (or ==).
//
// Error mirrors the error codes of scripts/dtc/libfdt/libfdt.h and the names
// printed by scripts/dtc/libfdt/fdt_strerror.c:fdt_strerror().
type Error int

// The libfdt error codes (scripts/dtc/libfdt/libfdt.h), same numbers.
const (
	// ErrNotFound is FDT_ERR_NOTFOUND: the node or property does not exist.
	ErrNotFound Error = 1
	// ErrExists is FDT_ERR_EXISTS: the node or property already exists.
	ErrExists Error = 2
	// ErrNoSpace is FDT_ERR_NOSPACE: the buffer is too small.
	ErrNoSpace Error = 3
	// ErrBadOffset is FDT_ERR_BADOFFSET: a structure block offset is out of
	// bounds, unaligned, or does not point at the right kind of tag.
	ErrBadOffset Error = 4
	// ErrBadPath is FDT_ERR_BADPATH: a badly formatted path.
	ErrBadPath Error = 5
	// ErrBadPhandle is FDT_ERR_BADPHANDLE: an invalid phandle.
	ErrBadPhandle Error = 6
	// ErrBadState is FDT_ERR_BADSTATE: a call in the wrong order on a tree
	// under construction (sequential-write functions), or a read of an
	// unfinished tree.
	ErrBadState Error = 7
	// ErrTruncated is FDT_ERR_TRUNCATED: the blob, a block or a string ends
	// before it should.
	ErrTruncated Error = 8
	// ErrBadMagic is FDT_ERR_BADMAGIC: not a device tree blob.
	ErrBadMagic Error = 9
	// ErrBadVersion is FDT_ERR_BADVERSION: an unsupported format version.
	ErrBadVersion Error = 10
	// ErrBadStructure is FDT_ERR_BADSTRUCTURE: a corrupt structure block
	// (unknown tag, misnested nodes, properties after subnodes, too deep).
	ErrBadStructure Error = 11
	// ErrBadLayout is FDT_ERR_BADLAYOUT: the blocks are not in the order the
	// read-write functions need (memory reserve map, structure, strings).
	ErrBadLayout Error = 12
	// ErrInternal is FDT_ERR_INTERNAL: an internal assertion failed.
	ErrInternal Error = 13
	// ErrBadNCells is FDT_ERR_BADNCELLS: a bad #address-cells/#size-cells.
	ErrBadNCells Error = 14
	// ErrBadValue is FDT_ERR_BADVALUE: a property (or argument) has an
	// unexpected value, e.g. a string that is not NUL-terminated or a u64
	// property that is not 8 bytes long.
	ErrBadValue Error = 15
	// ErrBadOverlay is FDT_ERR_BADOVERLAY.
	ErrBadOverlay Error = 16
	// ErrNoPhandles is FDT_ERR_NOPHANDLES.
	ErrNoPhandles Error = 17
	// ErrBadFlags is FDT_ERR_BADFLAGS: unknown flags passed to CreateWithFlags.
	ErrBadFlags Error = 18
	// ErrAlignment is FDT_ERR_ALIGNMENT: a misaligned block (libfdt uses it
	// for a misaligned blob address; here Check uses it for a memory reserve
	// map not 8-byte aligned or a structure block not 4-byte aligned).
	ErrAlignment Error = 19

	// ErrNotCompatible is what NodeCheckCompatible returns when the node has
	// a "compatible" property that does not list the string: libfdt's
	// fdt_node_check_compatible() returns 1 in that case. It is not a libfdt
	// error code; Code(ErrNotCompatible) is +1, and errors.Is(ErrNotCompatible,
	// ErrNotFound) is true (the string was not found in the list).
	ErrNotCompatible Error = 1000
)

var _ error = ErrNotFound

// Error returns the libfdt name of the error, as fdt_strerror() does, e.g.
// "FDT_ERR_NOTFOUND".
func (e Error) Error() string {
	if e == ErrNotCompatible {
		return "fdt: node is not compatible"
	}
	if s, ok := errorNames(e); ok {
		return s
	}
	return "<unknown error>"
}

// Is makes ErrNotCompatible match ErrNotFound as well as itself.
func (e Error) Is(target error) bool {
	t, ok := target.(Error)
	return ok && (t == e || (e == ErrNotCompatible && t == ErrNotFound))
}

// Code returns the int a libfdt function would have returned for err: 0 for
// nil, -FDT_ERR_* for an Error, +1 for ErrNotCompatible (the "no match" of
// fdt_node_check_compatible()), and -FDT_ERR_INTERNAL for an error that does
// not come from this package. It lets ports of C that combines libfdt results
// (err |= fdt_...()) keep the same arithmetic.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var e Error
	if !errors.As(err, &e) {
		return -int(ErrInternal)
	}
	if e == ErrNotCompatible {
		return 1
	}
	return -int(e)
}

// ErrorFromCode is the inverse of Code for libfdt return values: nil for a
// value >= 0 (a valid offset or length), the Error for -FDT_ERR_*, and
// ErrInternal for an unknown negative code.
func ErrorFromCode(code int) error {
	if code >= 0 {
		return nil
	}
	e := Error(-code)
	if _, ok := errorNames(e); !ok {
		return ErrInternal
	}
	return e
}

// Strerror ports scripts/dtc/libfdt/fdt_strerror.c:fdt_strerror(): the name
// of the libfdt return value errval.
func Strerror(errval int) string {
	switch {
	case errval > 0:
		return "<valid offset/length>"
	case errval == 0:
		return "<no error>"
	}
	if s, ok := errorNames(Error(-errval)); ok {
		return s
	}
	return "<unknown error>"
}

// errorNames is the fdt_errtable of fdt_strerror.c.
func errorNames(e Error) (string, bool) {
	switch e {
	case ErrNotFound:
		return "FDT_ERR_NOTFOUND", true
	case ErrExists:
		return "FDT_ERR_EXISTS", true
	case ErrNoSpace:
		return "FDT_ERR_NOSPACE", true
	case ErrBadOffset:
		return "FDT_ERR_BADOFFSET", true
	case ErrBadPath:
		return "FDT_ERR_BADPATH", true
	case ErrBadPhandle:
		return "FDT_ERR_BADPHANDLE", true
	case ErrBadState:
		return "FDT_ERR_BADSTATE", true
	case ErrTruncated:
		return "FDT_ERR_TRUNCATED", true
	case ErrBadMagic:
		return "FDT_ERR_BADMAGIC", true
	case ErrBadVersion:
		return "FDT_ERR_BADVERSION", true
	case ErrBadStructure:
		return "FDT_ERR_BADSTRUCTURE", true
	case ErrBadLayout:
		return "FDT_ERR_BADLAYOUT", true
	case ErrInternal:
		return "FDT_ERR_INTERNAL", true
	case ErrBadNCells:
		return "FDT_ERR_BADNCELLS", true
	case ErrBadValue:
		return "FDT_ERR_BADVALUE", true
	case ErrBadOverlay:
		return "FDT_ERR_BADOVERLAY", true
	case ErrNoPhandles:
		return "FDT_ERR_NOPHANDLES", true
	case ErrBadFlags:
		return "FDT_ERR_BADFLAGS", true
	case ErrAlignment:
		return "FDT_ERR_ALIGNMENT", true
	}
	return "", false
}
