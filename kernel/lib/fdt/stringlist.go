package fdt

import (
	"bytes"
	"strings"
)

// This file ports the string list helpers of scripts/dtc/libfdt/fdt_ro.c
// ("compatible" is a string list: "a\0b\0").

// StringlistContains ports
// scripts/dtc/libfdt/fdt_ro.c:fdt_stringlist_contains(): whether the string
// list strlist holds str. A malformed (unterminated) tail never matches;
// libfdt compares len(str)+1 bytes there and so reads one byte past the
// list, matching "luo-v1" against an unterminated "luo-v1" when the next
// byte happens to be 0 (TestLibfdtDifferential).
func StringlistContains(strlist []byte, str string) bool {
	if strings.IndexByte(str, 0) >= 0 {
		return false
	}
	for len(strlist) > len(str) {
		if strlist[len(str)] == 0 && string(strlist[:len(str)]) == str {
			return true
		}
		p := bytes.IndexByte(strlist, 0)
		if p < 0 {
			return false // malformed strlist..
		}
		strlist = strlist[p+1:]
	}
	return false
}

// forEachString calls fn for every string of the string list property prop
// of the node, in order, until fn returns false. ErrBadValue if the last
// string is not NUL-terminated (checked when it is reached).
func (f *FDT) forEachString(nodeOffset int, prop string, fn func(s []byte) bool) error {
	list, err := f.GetProp(nodeOffset, prop)
	if err != nil {
		return err
	}
	for len(list) > 0 {
		n := bytes.IndexByte(list, 0)
		// Abort if the last string isn't properly NUL-terminated.
		if n < 0 {
			return ErrBadValue
		}
		if !fn(list[:n]) {
			return nil
		}
		list = list[n+1:]
	}
	return nil
}

// StringlistCount ports scripts/dtc/libfdt/fdt_ro.c:fdt_stringlist_count():
// the number of strings in property prop of the node.
func (f *FDT) StringlistCount(nodeOffset int, prop string) (int, error) {
	count := 0
	err := f.forEachString(nodeOffset, prop, func([]byte) bool {
		count++
		return true
	})
	if err != nil {
		return Code(err), err
	}
	return count, nil
}

// StringlistSearch ports scripts/dtc/libfdt/fdt_ro.c:fdt_stringlist_search():
// the index of str in the string list property prop of the node, or
// ErrNotFound.
func (f *FDT) StringlistSearch(nodeOffset int, prop, str string) (int, error) {
	idx, found := 0, false
	err := f.forEachString(nodeOffset, prop, func(s []byte) bool {
		if string(s) == str {
			found = true
			return false
		}
		idx++
		return true
	})
	if err != nil {
		return Code(err), err
	}
	if !found {
		return fail(ErrNotFound)
	}
	return idx, nil
}

// StringlistGet ports scripts/dtc/libfdt/fdt_ro.c:fdt_stringlist_get():
// string idx of the string list property prop of the node, or ErrNotFound.
func (f *FDT) StringlistGet(nodeOffset int, prop string, idx int) (string, error) {
	var out string
	found := false
	err := f.forEachString(nodeOffset, prop, func(s []byte) bool {
		if idx == 0 {
			out, found = string(s), true
			return false
		}
		idx--
		return true
	})
	if err != nil {
		return "", err
	}
	if !found {
		return "", ErrNotFound
	}
	return out, nil
}

// NodeCheckCompatible ports
// scripts/dtc/libfdt/fdt_ro.c:fdt_node_check_compatible(): nil if the
// "compatible" property of the node lists compatible; ErrNotCompatible (which
// also matches ErrNotFound under errors.Is; libfdt returns 1) if it does not;
// ErrNotFound if the node has no "compatible"; ErrBadOffset or a structural
// error otherwise.
func (f *FDT) NodeCheckCompatible(nodeOffset int, compatible string) error {
	prop, err := f.GetProp(nodeOffset, "compatible")
	if err != nil {
		return err
	}
	if !StringlistContains(prop, compatible) {
		return ErrNotCompatible
	}
	return nil
}

// NodeOffsetByCompatible ports
// scripts/dtc/libfdt/fdt_ro.c:fdt_node_offset_by_compatible(): the first
// node after startOffset (-1: from the start) compatible with compatible.
func (f *FDT) NodeOffsetByCompatible(startOffset int, compatible string) (int, error) {
	offset, err := f.NextNode(startOffset, nil)
	for ; err == nil; offset, err = f.NextNode(offset, nil) {
		cerr := f.NodeCheckCompatible(offset, compatible)
		if cerr == nil {
			return offset, nil
		}
		if cerr != ErrNotFound && cerr != ErrNotCompatible {
			return Code(cerr), cerr
		}
	}
	return offset, err
}
