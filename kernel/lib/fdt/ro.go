package fdt

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// This file ports the read-only accessors of scripts/dtc/libfdt/fdt_ro.c.

// nodenameEq ports scripts/dtc/libfdt/fdt_ro.c:fdt_nodename_eq_(): the name
// of the node at offset equals s, or equals s plus a unit address ("s@...")
// when s has none.
func (f *FDT) nodenameEq(offset int, s string) bool {
	p, err := f.getName(offset)
	if err != nil || len(p) < len(s) {
		// short match
		return false
	}
	if string(p[:len(s)]) != s {
		return false
	}
	if len(p) == len(s) {
		return true
	}
	return strings.IndexByte(s, '@') < 0 && p[len(s)] == '@'
}

// getString ports scripts/dtc/libfdt/fdt_ro.c:fdt_get_string() for a
// finished tree: the NUL-terminated string at stroffset in the strings
// block, without its NUL. ErrBadOffset if stroffset is outside the strings
// block, ErrTruncated if the string has no NUL inside it.
func (f *FDT) getString(stroffset uint32) ([]byte, error) {
	if uint64(stroffset) >= uint64(len(f.strs)) {
		return nil, ErrBadOffset
	}
	s := f.strs[stroffset:]
	n := bytes.IndexByte(s, 0)
	if n < 0 {
		// missing terminating NULL
		return nil, ErrTruncated
	}
	return s[:n:n], nil
}

// String ports scripts/dtc/libfdt/fdt_ro.c:fdt_string(): the string at
// stroffset in the strings block.
func (f *FDT) String(stroffset uint32) (string, error) {
	s, err := f.getString(stroffset)
	return string(s), err
}

// stringEq ports scripts/dtc/libfdt/fdt_ro.c:fdt_string_eq_(). It compares
// without scanning for the NUL, so a lookup costs O(len(s)) whatever the
// strings block holds. s must not contain NUL.
func (f *FDT) stringEq(stroffset uint32, s string) bool {
	if uint64(stroffset) >= uint64(len(f.strs)) {
		return false
	}
	rest := f.strs[stroffset:]
	return len(rest) > len(s) && rest[len(s)] == 0 && string(rest[:len(s)]) == s
}

// NumMemRsv ports scripts/dtc/libfdt/fdt_ro.c:fdt_num_mem_rsv(): the number
// of memory reserve map entries before the terminating entry (size 0).
// ErrTruncated if there is no terminator inside the blob.
func (f *FDT) NumMemRsv() (int, error) {
	for i := 0; ; i++ {
		re, ok := f.memRsv(i)
		if !ok {
			return fail(ErrTruncated)
		}
		if binary.BigEndian.Uint64(re[8:]) == 0 {
			return i, nil
		}
	}
}

// memRsv ports scripts/dtc/libfdt/fdt_ro.c:fdt_mem_rsv(): entry n of the
// memory reserve map, if it lies inside the blob.
func (f *FDT) memRsv(n int) ([]byte, bool) {
	if n < 0 {
		return nil, false
	}
	off := uint64(f.hdr.OffMemRsvmap) + uint64(n)*ReserveEntrySize
	if off+ReserveEntrySize > uint64(len(f.b)) {
		return nil, false
	}
	return f.b[off : off+ReserveEntrySize], true
}

// GetMemRsv ports scripts/dtc/libfdt/fdt_ro.c:fdt_get_mem_rsv(): address and
// size of memory reserve map entry n. ErrBadOffset if it is outside the blob.
func (f *FDT) GetMemRsv(n int) (address, size uint64, err error) {
	re, ok := f.memRsv(n)
	if !ok {
		return 0, 0, ErrBadOffset
	}
	return binary.BigEndian.Uint64(re), binary.BigEndian.Uint64(re[8:]), nil
}

// nextProp ports scripts/dtc/libfdt/fdt_ro.c:nextprop_(): the first
// FDT_PROP at or after offset, skipping NOPs; ErrNotFound at a node tag.
func (f *FDT) nextProp(offset int) (int, error) {
	for {
		tag, next, err := nextTag(f.st, offset)
		switch tag {
		case TagEnd:
			if err == nil {
				return fail(ErrBadStructure)
			}
			return next, err
		case TagProp:
			return offset, nil
		case TagNop:
			offset = next
			continue
		}
		return fail(ErrNotFound)
	}
}

// SubnodeOffset ports scripts/dtc/libfdt/fdt_ro.c:fdt_subnode_offset(): the
// offset of the direct child of the node at parentOffset called name. A name
// without a unit address also matches a child "name@unit". ErrNotFound if
// there is none, ErrBadOffset if parentOffset is not a node, or the error of
// the walk on a malformed tree.
func (f *FDT) SubnodeOffset(parentOffset int, name string) (int, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return fail(ErrNotFound) // a C string cannot hold a NUL
	}
	depth := 0
	offset := parentOffset
	var err error
	for offset >= 0 && depth >= 0 {
		if depth == 1 && f.nodenameEq(offset, name) {
			return offset, nil
		}
		offset, err = f.NextNode(offset, &depth)
		if err != nil {
			break
		}
	}
	if depth < 0 {
		return fail(ErrNotFound)
	}
	if err == nil {
		// a negative parentOffset: libfdt returns it as the error
		return fail(ErrBadOffset)
	}
	return offset, err
}

// PathOffset ports scripts/dtc/libfdt/fdt_ro.c:fdt_path_offset(): the offset
// of the node at path, e.g. "/", "/luo-session". Repeated and trailing
// slashes are ignored. A path not starting with '/' starts with an alias
// (a property of /aliases). Unlike libfdt, which resolves an alias by calling
// itself and so recurses without bound on an alias that names an alias, an
// alias here must hold an absolute path (else ErrBadPath).
func (f *FDT) PathOffset(path string) (int, error) {
	if path == "" {
		return fail(ErrBadPath)
	}
	offset := 0
	p := path
	var err error

	// see if we have an alias
	if p[0] != '/' {
		q := strings.IndexByte(p, '/')
		if q < 0 {
			q = len(p)
		}
		alias, aerr := f.GetAlias(p[:q])
		if aerr != nil || alias == "" || alias[0] != '/' {
			return fail(ErrBadPath)
		}
		offset, err = f.PathOffset(alias)
		if err != nil {
			return offset, err
		}
		p = p[q:]
	}

	for len(p) > 0 {
		for p[0] == '/' {
			p = p[1:]
			if len(p) == 0 {
				return offset, nil
			}
		}
		q := strings.IndexByte(p, '/')
		if q < 0 {
			q = len(p)
		}
		offset, err = f.SubnodeOffset(offset, p[:q])
		if err != nil {
			return offset, err
		}
		p = p[q:]
	}
	return offset, nil
}

// getName is fdt_get_name() returning the name bytes (a sub-slice of the
// blob).
func (f *FDT) getName(nodeOffset int) ([]byte, error) {
	if _, err := f.checkNodeOffset(nodeOffset); err != nil {
		return nil, err
	}
	name := f.st[nodeOffset+TagSize:]
	n := bytes.IndexByte(name, 0) // present: checkNodeOffset saw it
	return name[:n:n], nil
}

// GetName ports scripts/dtc/libfdt/fdt_ro.c:fdt_get_name(): the name of the
// node at nodeOffset ("" for the root, "name@unit" for others).
// ErrBadOffset if nodeOffset is not a node.
func (f *FDT) GetName(nodeOffset int) (string, error) {
	n, err := f.getName(nodeOffset)
	return string(n), err
}

// FirstProperty ports scripts/dtc/libfdt/fdt_ro.c:fdt_first_property_offset():
// the offset of the first property of the node at nodeOffset; ErrNotFound if
// it has none.
func (f *FDT) FirstProperty(nodeOffset int) (int, error) {
	offset, err := f.checkNodeOffset(nodeOffset)
	if err != nil {
		return offset, err
	}
	return f.nextProp(offset)
}

// NextProperty ports scripts/dtc/libfdt/fdt_ro.c:fdt_next_property_offset():
// the offset of the property after the one at offset; ErrNotFound after the
// last one.
//
//	for p, err := f.FirstProperty(node); err == nil; p, err = f.NextProperty(p) { ... }
//
// is fdt_for_each_property_offset().
func (f *FDT) NextProperty(offset int) (int, error) {
	offset, err := f.checkPropOffset(offset)
	if err != nil {
		return offset, err
	}
	return f.nextProp(offset)
}

// propertyByOffset ports fdt_ro.c:fdt_get_property_by_offset_(): the value
// and nameoff of the property at offset.
func (f *FDT) propertyByOffset(offset int) (val []byte, nameoff uint32, err error) {
	if _, err := f.checkPropOffset(offset); err != nil {
		return nil, 0, err
	}
	// checkPropOffset has checked that tag, len, nameoff and the value fit.
	n := int(be32(f.st, offset+4))
	nameoff = be32(f.st, offset+8)
	start := offset + 12
	return f.st[start : start+n : start+n], nameoff, nil
}

// GetPropertyByOffset ports scripts/dtc/libfdt/fdt_ro.c:fdt_getprop_by_offset():
// the name and value of the property at offset. The value aliases the blob
// (its capacity is capped, so appending to it copies). ErrBadOffset if offset
// is not a property; ErrBadOffset or ErrTruncated if its name is outside the
// strings block or not NUL-terminated there.
func (f *FDT) GetPropertyByOffset(offset int) (name string, val []byte, err error) {
	val, nameoff, err := f.propertyByOffset(offset)
	if err != nil {
		return "", nil, err
	}
	n, err := f.getString(nameoff)
	if err != nil {
		return "", nil, err
	}
	return string(n), val, nil
}

// GetPropertyOffset ports the lookup of
// scripts/dtc/libfdt/fdt_ro.c:fdt_get_property_namelen_(): the offset of the
// property called name of the node at nodeOffset.
func (f *FDT) GetPropertyOffset(nodeOffset int, name string) (int, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return fail(ErrNotFound)
	}
	offset, err := f.FirstProperty(nodeOffset)
	for ; err == nil; offset, err = f.NextProperty(offset) {
		_, nameoff, perr := f.propertyByOffset(offset)
		if perr != nil {
			return fail(ErrInternal)
		}
		if f.stringEq(nameoff, name) {
			return offset, nil
		}
	}
	return offset, err
}

// GetProp ports scripts/dtc/libfdt/fdt_ro.c:fdt_getprop(): the value of the
// property called name of the node at nodeOffset. The value aliases the
// blob (capacity capped); copy it to keep it beyond the blob's life.
// ErrNotFound if the node has no such property, ErrBadOffset if nodeOffset
// is not a node, or the structural error met on the way.
func (f *FDT) GetProp(nodeOffset int, name string) ([]byte, error) {
	offset, err := f.GetPropertyOffset(nodeOffset, name)
	if err != nil {
		return nil, err
	}
	val, _, err := f.propertyByOffset(offset)
	return val, err
}

// GetPropU32 reads a property holding one big-endian 32-bit cell (what
// Writer.PropertyU32 writes, fdt32_ld() of the value). ErrBadValue if it is
// not exactly 4 bytes long.
func (f *FDT) GetPropU32(nodeOffset int, name string) (uint32, error) {
	v, err := f.GetProp(nodeOffset, name)
	if err != nil {
		return 0, err
	}
	if len(v) != 4 {
		return 0, ErrBadValue
	}
	return binary.BigEndian.Uint32(v), nil
}

// GetPropU64 reads a property holding one big-endian 64-bit value (what
// Writer.PropertyU64 writes, fdt64_ld() of the value). ErrBadValue if it is
// not exactly 8 bytes long.
func (f *FDT) GetPropU64(nodeOffset int, name string) (uint64, error) {
	v, err := f.GetProp(nodeOffset, name)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, ErrBadValue
	}
	return binary.BigEndian.Uint64(v), nil
}

// GetPropU64LE reads a property holding a raw little-endian 64-bit value: the
// kernel's "get_unaligned((u64 *)fdt_getprop(...))" of a value written with
// fdt_property(fdt, name, &u64, sizeof(u64)) on a little-endian host (LUO's
// "liveupdate-number", KHO's "fdt" and "preserved-memory-map"). ErrBadValue
// if it is not exactly 8 bytes long.
func (f *FDT) GetPropU64LE(nodeOffset int, name string) (uint64, error) {
	v, err := f.GetProp(nodeOffset, name)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, ErrBadValue
	}
	return binary.LittleEndian.Uint64(v), nil
}

// GetPropString reads a string property: the value must be one
// NUL-terminated string (no NUL before the last byte), as
// fdt_property_string() writes it. It returns the string without the NUL.
// ErrBadValue otherwise (use StringlistGet for string lists).
func (f *FDT) GetPropString(nodeOffset int, name string) (string, error) {
	v, err := f.GetProp(nodeOffset, name)
	if err != nil {
		return "", err
	}
	if len(v) == 0 || bytes.IndexByte(v, 0) != len(v)-1 {
		return "", ErrBadValue
	}
	return string(v[:len(v)-1]), nil
}

// GetAlias ports scripts/dtc/libfdt/fdt_ro.c:fdt_get_alias(): the value of
// property name of /aliases, which must be a NUL-terminated string (libfdt
// does not check; an unterminated one would let its callers read past the
// property). ErrBadValue if it is not.
func (f *FDT) GetAlias(name string) (string, error) {
	off, err := f.PathOffset("/aliases")
	if err != nil {
		return "", err
	}
	return f.GetPropString(off, name)
}

// GetPath ports scripts/dtc/libfdt/fdt_ro.c:fdt_get_path(): the full path of
// the node at nodeOffset ("/" for the root). ErrBadOffset if nodeOffset is
// not a node reached from the root, ErrBadStructure or the walk's error on a
// malformed tree. The result is at most as long as the blob.
func (f *FDT) GetPath(nodeOffset int) (string, error) {
	var path []byte
	var starts []int // starts[d]: len(path) before the name at depth d
	offset, depth := 0, 0
	var err error
	for offset >= 0 && offset <= nodeOffset {
		if depth < 0 {
			break // walked out of the root: nodeOffset is not inside it
		}
		if depth < len(starts) {
			path = path[:starts[depth]]
			starts = starts[:depth]
		}
		if depth == len(starts) {
			name, nerr := f.getName(offset)
			if nerr != nil {
				return "", nerr
			}
			starts = append(starts, len(path))
			path = append(path, name...)
			path = append(path, '/')
		}
		if offset == nodeOffset {
			if len(starts) != depth+1 {
				return "", ErrBadStructure
			}
			if len(path) > 1 { // special case so that root path is "/", not ""
				path = path[:len(path)-1]
			}
			if len(path) == 0 || path[0] != '/' {
				// the root had a name: not a valid tree
				return "", ErrBadStructure
			}
			return string(path), nil
		}
		offset, err = f.NextNode(offset, &depth)
		if err != nil {
			break
		}
	}
	switch {
	case err == nil || err == ErrNotFound:
		return "", ErrBadOffset
	case err == ErrBadOffset:
		return "", ErrBadStructure
	}
	return "", err
}

// SupernodeAtDepthOffset ports
// scripts/dtc/libfdt/fdt_ro.c:fdt_supernode_atdepth_offset(): the ancestor
// at supernodeDepth (0 = root) of the node at nodeOffset, and the depth of
// that node.
func (f *FDT) SupernodeAtDepthOffset(nodeOffset, supernodeDepth int) (super, nodeDepth int, err error) {
	if supernodeDepth < 0 {
		super, err = fail(ErrNotFound)
		return super, 0, err
	}
	superOffset := -int(ErrInternal)
	offset, depth := 0, 0
	for offset >= 0 && offset <= nodeOffset && depth >= 0 {
		if depth == supernodeDepth {
			superOffset = offset
		}
		if offset == nodeOffset {
			if supernodeDepth > depth {
				super, err = fail(ErrNotFound)
				return super, depth, err
			}
			return superOffset, depth, nil
		}
		offset, err = f.NextNode(offset, &depth)
		if err != nil {
			break
		}
	}
	switch {
	case err == nil || err == ErrNotFound:
		super, err = fail(ErrBadOffset)
	case err == ErrBadOffset:
		super, err = fail(ErrBadStructure)
	default:
		super = Code(err)
	}
	return super, 0, err
}

// NodeDepth ports scripts/dtc/libfdt/fdt_ro.c:fdt_node_depth(): the depth of
// the node at nodeOffset (the root is 0).
func (f *FDT) NodeDepth(nodeOffset int) (int, error) {
	_, depth, err := f.SupernodeAtDepthOffset(nodeOffset, 0)
	if err != nil {
		return Code(err), err
	}
	return depth, nil
}

// ParentOffset ports scripts/dtc/libfdt/fdt_ro.c:fdt_parent_offset(): the
// offset of the parent of the node at nodeOffset (ErrNotFound for the root).
func (f *FDT) ParentOffset(nodeOffset int) (int, error) {
	depth, err := f.NodeDepth(nodeOffset)
	if err != nil {
		return depth, err
	}
	super, _, err := f.SupernodeAtDepthOffset(nodeOffset, depth-1)
	return super, err
}

// NodeOffsetByPropValue ports
// scripts/dtc/libfdt/fdt_ro.c:fdt_node_offset_by_prop_value(): the first node
// after startOffset (-1: from the start) whose property propName equals
// val.
func (f *FDT) NodeOffsetByPropValue(startOffset int, propName string, val []byte) (int, error) {
	offset, err := f.NextNode(startOffset, nil)
	for ; err == nil; offset, err = f.NextNode(offset, nil) {
		v, gerr := f.GetProp(offset, propName)
		if gerr == nil && bytes.Equal(v, val) {
			return offset, nil
		}
	}
	return offset, err
}
