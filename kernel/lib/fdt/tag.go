package fdt

import "bytes"

// This file ports the structure block walkers of scripts/dtc/libfdt/fdt.c.

// nextTag ports scripts/dtc/libfdt/fdt.c:fdt_next_tag() over the structure
// block st: it returns the tag at startoffset and the (tag-aligned) offset of
// the next one. As in libfdt, a tag that runs past the end of the block or an
// unknown tag is reported as TagEnd, here with an error: ErrTruncated if not
// even the tag word fits, ErrBadStructure if the rest of the item does not
// (or the tag is unknown). On success next > startoffset, so walks that
// follow next always terminate.
//
// Bounds are checked so that no length field, however large, can make the
// arithmetic wrap.
func nextTag(st []byte, startoffset int) (tag uint32, next int, err error) {
	offset := startoffset
	if offset < 0 || offset > len(st)-TagSize {
		return TagEnd, -int(ErrTruncated), ErrTruncated
	}
	tag = be32(st, offset)
	offset += TagSize

	switch tag {
	case TagBeginNode:
		// skip name
		i := bytes.IndexByte(st[offset:], 0)
		if i < 0 {
			return TagEnd, -int(ErrBadStructure), ErrBadStructure // premature end
		}
		offset += i + 1
	case TagProp:
		// len and nameoff, then the value
		if len(st)-offset < 8 {
			return TagEnd, -int(ErrBadStructure), ErrBadStructure // premature end
		}
		vlen := be32(st, offset)
		if uint64(vlen) > uint64(len(st)-offset-8) {
			return TagEnd, -int(ErrBadStructure), ErrBadStructure // premature end
		}
		offset += 8 + int(vlen)
	case TagEnd, TagEndNode, TagNop:
	default:
		return TagEnd, -int(ErrBadStructure), ErrBadStructure
	}
	return tag, tagAlign(offset), nil
}

// NextTag is the exported form of fdt_next_tag(): the tag at offset and the
// offset of the next tag. A malformed or truncated item is reported as
// TagEnd with an error.
func (f *FDT) NextTag(offset int) (tag uint32, next int, err error) {
	return nextTag(f.st, offset)
}

// checkNodeOffset ports scripts/dtc/libfdt/fdt.c:fdt_check_node_offset_():
// offset must be a 4-byte aligned offset of an FDT_BEGIN_NODE tag; it
// returns the offset just past that tag (after the name).
func (f *FDT) checkNodeOffset(offset int) (int, error) {
	if offset < 0 || offset%TagSize != 0 {
		return fail(ErrBadOffset)
	}
	tag, next, _ := nextTag(f.st, offset)
	if tag != TagBeginNode {
		return fail(ErrBadOffset)
	}
	return next, nil
}

// checkPropOffset ports scripts/dtc/libfdt/fdt.c:fdt_check_prop_offset_().
func (f *FDT) checkPropOffset(offset int) (int, error) {
	if offset < 0 || offset%TagSize != 0 {
		return fail(ErrBadOffset)
	}
	tag, next, _ := nextTag(f.st, offset)
	if tag != TagProp {
		return fail(ErrBadOffset)
	}
	return next, nil
}

// NextNode ports scripts/dtc/libfdt/fdt.c:fdt_next_node(): the offset of the
// node that follows the node at offset in document order (offset < 0 starts
// before the root). If depth is not nil it is updated by the change in
// depth; as in libfdt, once the walk leaves the node it started in (the
// depth goes below 0) NextNode returns the offset just past that FDT_END_NODE
// with a nil error, which is not a node offset. At the end of the tree it
// returns ErrNotFound.
func (f *FDT) NextNode(offset int, depth *int) (int, error) {
	next := 0
	if offset >= 0 {
		n, err := f.checkNodeOffset(offset)
		if err != nil {
			return n, err
		}
		next = n
	}
	for {
		offset = next
		tag, n, err := nextTag(f.st, offset)
		next = n
		switch tag {
		case TagProp, TagNop:
		case TagBeginNode:
			if depth != nil {
				*depth++
			}
			return offset, nil
		case TagEndNode:
			if depth != nil {
				*depth--
				if *depth < 0 {
					return next, nil
				}
			}
		case TagEnd:
			if err == nil || (err == ErrTruncated && depth == nil) {
				return fail(ErrNotFound)
			}
			return next, err
		}
	}
}

// FirstSubnode ports scripts/dtc/libfdt/fdt.c:fdt_first_subnode(): the
// offset of the first direct child of the node at offset, or ErrNotFound.
func (f *FDT) FirstSubnode(offset int) (int, error) {
	depth := 0
	off, err := f.NextNode(offset, &depth)
	if err != nil || depth != 1 {
		return fail(ErrNotFound)
	}
	return off, nil
}

// NextSubnode ports scripts/dtc/libfdt/fdt.c:fdt_next_subnode(): the offset
// of the next sibling of the node at offset, or ErrNotFound.
//
//	for n, err := f.FirstSubnode(parent); err == nil; n, err = f.NextSubnode(n) { ... }
//
// is fdt_for_each_subnode().
func (f *FDT) NextSubnode(offset int) (int, error) {
	depth := 1
	// With respect to the parent, the depth of the next subnode will be
	// the same as the last.
	for {
		off, err := f.NextNode(offset, &depth)
		if err != nil || depth < 1 {
			return fail(ErrNotFound)
		}
		offset = off
		if depth <= 1 {
			return offset, nil
		}
	}
}
