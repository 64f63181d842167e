package fdt

import "bytes"

// Check validates blob as a complete, well-formed device tree: the port of
// libfdt's fdt_check_full(fdt, len(blob)) (dtc's libfdt/fdt_check.c), with
// the extra rules below. Parsers of hand-over data should run it before
// trusting the tree's shape.
func Check(blob []byte) error {
	f, err := Open(blob)
	if err != nil {
		return err
	}
	return f.Check()
}

// Check ports fdt_check_full() (libfdt/fdt_check.c in dtc; the kernel's copy
// of libfdt does not carry it) for an opened tree. Beyond the header checks
// of Open it requires:
//
//   - a memory reserve map terminated inside the blob (fdt_num_mem_rsv());
//   - a structure block of valid tags, ending in FDT_END at depth 0;
//   - every property name inside the strings block and NUL-terminated;
//   - the root node, with an empty name (libfdt checks the name too), at
//     offset 0: every lookup (fdt_path_offset() included) starts there, so
//     unlike libfdt not even an FDT_NOP may come before it;
//
// and, stricter than libfdt, following the devicetree specification:
//
//   - the memory reserve map 8-byte aligned, the structure block 4-byte
//     aligned (ErrAlignment);
//   - exactly one root node, nothing but FDT_NOP after it, no property
//     outside a node, no property after a subnode of the same node, node
//     names other than the root's non-empty and free of '/', and nesting no
//     deeper than MaxDepth (ErrBadStructure).
//
// Check runs in time linear in the size of the blob and allocates nothing.
func (f *FDT) Check() error {
	if f.hdr.OffMemRsvmap%8 != 0 || f.hdr.OffDtStruct%TagSize != 0 {
		return ErrAlignment
	}
	if _, err := f.NumMemRsv(); err != nil {
		return err
	}

	depth := 0
	rootSeen := false
	prev := TagNop // last tag other than FDT_NOP
	offset := 0
	for {
		tag, next, err := nextTag(f.st, offset)
		if err != nil {
			return err
		}
		switch tag {
		case TagNop:
		case TagEnd:
			if depth != 0 || !rootSeen {
				return ErrBadStructure
			}
			return nil
		case TagBeginNode:
			if depth == 0 && (rootSeen || offset != 0) {
				return ErrBadStructure // a second root, or not at 0
			}
			depth++
			if depth > MaxDepth {
				return ErrBadStructure
			}
			name := f.st[offset+TagSize:]
			name = name[:bytes.IndexByte(name, 0)] // nextTag found the NUL
			if depth == 1 {
				// The root node must have an empty name
				if len(name) != 0 {
					return ErrBadStructure
				}
				rootSeen = true
			} else if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 {
				return ErrBadStructure
			}
		case TagEndNode:
			if depth == 0 {
				return ErrBadStructure
			}
			depth--
		case TagProp:
			if depth == 0 || prev == TagEndNode {
				return ErrBadStructure
			}
			nameoff := be32(f.st, offset+8)
			if uint64(nameoff) >= uint64(len(f.strs)) {
				return ErrBadOffset
			}
			if f.lastNul < int(nameoff) {
				return ErrTruncated // no NUL after the name in the block
			}
		default:
			return ErrInternal
		}
		if tag != TagNop {
			prev = tag
		}
		offset = next
	}
}
