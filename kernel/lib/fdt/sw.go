package fdt

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// This file ports the sequential-write functions of
// scripts/dtc/libfdt/fdt_sw.c.

// CreateFlagNoNameDedup is FDT_CREATE_FLAG_NO_NAME_DEDUP: do not look for an
// existing copy of a property name in the strings block (faster, bigger).
const CreateFlagNoNameDedup uint32 = 0x1

// createFlagsAll is FDT_CREATE_FLAGS_ALL.
const createFlagsAll = CreateFlagNoNameDedup

// swState is the state of a Writer. libfdt encodes it in the header of the
// tree being written (fdt_sw_probe_memrsv_(), fdt_sw_probe_struct_()).
type swState int

const (
	// swMemrsv: after Create. Allowed: AddReservemapEntry,
	// FinishReservemap (moves to swStruct).
	swMemrsv swState = iota
	// swStruct: after FinishReservemap. Allowed: BeginNode, EndNode,
	// Property*, Finish (moves to swComplete).
	swStruct
	// swComplete: after Finish. Allowed: nothing.
	swComplete
)

// Writer builds a flattened device tree front to back in a caller-provided,
// fixed-size buffer, like libfdt's sequential-write functions (fdt_create()
// ... fdt_finish()). While it runs, the buffer holds what libfdt's would:
// a header with FDT_SW_MAGIC, the memory reserve map and structure block
// growing up from the start, and the strings block growing down from the end;
// Finish moves the strings behind the structure block and writes the final
// header.
//
// Errors are not sticky: a failing call changes nothing, so the caller may go
// on (e.g. after ErrNoSpace a smaller property may still fit). Calls in the
// wrong order fail with ErrBadState.
//
// Differences from libfdt, which trusts its caller:
//
//   - the state lives in the Writer, not (only) in the buffer's header, so a
//     caller scribbling on the buffer cannot make the Writer write outside
//     it;
//   - the Writer tracks nesting, so a property before the root node or after
//     a subnode of the same node, a second root, EndNode without an open
//     node, or Finish with open nodes (or no root) is ErrBadState, and
//     nesting deeper than MaxDepth is ErrBadStructure: a finished tree
//     always passes Check;
//   - names are checked (ErrBadValue): the root must be called "", other
//     nodes need a non-empty name without '/', property names must be
//     non-empty; no name may contain NUL (C strings cannot);
//   - space taken for the structure block is cleared first, so padding and
//     placeholder values are zero even where a rolled-back property name
//     had been (libfdt leaves those bytes as they were).
//
// Without errors or rollbacks the buffer ends up byte for byte as libfdt
// leaves it (TestWriterMatchesLibfdt). A Writer is not safe for concurrent
// use.
type Writer struct {
	buf   []byte
	state swState
	flags uint32

	offStruct   int // fdt_off_dt_struct(): end of the reserve map while in swMemrsv
	sizeStruct  int // fdt_size_dt_struct()
	sizeStrings int // fdt_size_dt_strings()
	totalSize   int // final fdt_totalsize(), set by Finish

	depth        int  // open nodes
	rootDone     bool // the root node has been closed
	afterSubnode bool // the current node has had a subnode: no more properties
}

// Create ports scripts/dtc/libfdt/fdt_sw.c:fdt_create(): start a tree in buf.
// It zeroes buf (at most math.MaxInt32 bytes of it are used). ErrNoSpace if
// buf cannot even hold the header.
func Create(buf []byte) (*Writer, error) {
	return CreateWithFlags(buf, 0)
}

// CreateWithFlags ports scripts/dtc/libfdt/fdt_sw.c:fdt_create_with_flags().
// ErrBadFlags for flags other than CreateFlagNoNameDedup.
func CreateWithFlags(buf []byte, flags uint32) (*Writer, error) {
	// hdrsize = FDT_ALIGN(sizeof(struct fdt_header), sizeof(struct fdt_reserve_entry))
	const hdrsize = (HeaderSizeV17 + ReserveEntrySize - 1) &^ (ReserveEntrySize - 1)
	if len(buf) < hdrsize {
		return nil, ErrNoSpace
	}
	if flags&^createFlagsAll != 0 {
		return nil, ErrBadFlags
	}
	if len(buf) > maxTotalSize {
		buf = buf[:maxTotalSize]
	}
	clear(buf)
	w := &Writer{buf: buf, flags: flags, offStruct: hdrsize}
	// magic and last_comp_version keep intermediate state during the fdt
	// creation process, which is replaced with the proper FDT format by
	// Finish.
	put32(buf, hdrMagic, SWMagic)
	put32(buf, hdrVersion, Version)
	put32(buf, hdrLastCompVersion, flags)
	put32(buf, hdrTotalSize, uint32(len(buf)))
	put32(buf, hdrOffMemRsvmap, hdrsize)
	w.syncHeader()
	return w, nil
}

// syncHeader mirrors the Writer's state into the header fields libfdt keeps
// it in.
func (w *Writer) syncHeader() {
	put32(w.buf, hdrOffDtStruct, uint32(w.offStruct))
	offStrings := 0 // 0 while in the memrsv state
	if w.state == swStruct {
		offStrings = len(w.buf)
	}
	put32(w.buf, hdrOffDtStrings, uint32(offStrings))
	put32(w.buf, hdrSizeDtStrings, uint32(w.sizeStrings))
	put32(w.buf, hdrSizeDtStruct, uint32(w.sizeStruct))
}

// probeStruct is fdt_sw_probe_struct_() plus the nesting rules.
func (w *Writer) probeStruct() error {
	if w.state != swStruct {
		return ErrBadState
	}
	return nil
}

// probeProperty checks that a property called name may be added now.
func (w *Writer) probeProperty(name string) error {
	if err := w.probeStruct(); err != nil {
		return err
	}
	if w.depth == 0 || w.afterSubnode {
		return ErrBadState
	}
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return ErrBadValue
	}
	return nil
}

// grabSpace ports scripts/dtc/libfdt/fdt_sw.c:fdt_grab_space_(): extend the
// structure block by n bytes and return them, or nil if they would run into
// the strings block.
func (w *Writer) grabSpace(n int) []byte {
	offset := w.sizeStruct
	spaceleft := len(w.buf) - w.offStruct - w.sizeStrings
	if n < 0 || n > spaceleft-offset {
		return nil
	}
	w.sizeStruct = offset + n
	start := w.offStruct + offset
	b := w.buf[start : start+n : start+n]
	// The space may hold the bytes of a property name that was added to
	// the strings block and rolled back (fdt_del_last_string_()). libfdt
	// copies the name with its NUL but leaves padding and placeholder
	// values as they are; clearing keeps the output deterministic.
	clear(b)
	return b
}

// AddReservemapEntry ports
// scripts/dtc/libfdt/fdt_sw.c:fdt_add_reservemap_entry(): add a memory
// reserve map entry. Only before FinishReservemap (else ErrBadState).
func (w *Writer) AddReservemapEntry(addr, size uint64) error {
	if w.state != swMemrsv {
		return ErrBadState
	}
	offset := w.offStruct
	if offset+ReserveEntrySize > len(w.buf) {
		return ErrNoSpace
	}
	binary.BigEndian.PutUint64(w.buf[offset:], addr)
	binary.BigEndian.PutUint64(w.buf[offset+8:], size)
	w.offStruct = offset + ReserveEntrySize
	w.syncHeader()
	return nil
}

// FinishReservemap ports scripts/dtc/libfdt/fdt_sw.c:fdt_finish_reservemap():
// terminate the memory reserve map; the structure block starts after it.
func (w *Writer) FinishReservemap() error {
	if err := w.AddReservemapEntry(0, 0); err != nil {
		return err
	}
	w.state = swStruct
	w.syncHeader()
	return nil
}

// BeginNode ports scripts/dtc/libfdt/fdt_sw.c:fdt_begin_node(): open a node
// called name (the first one, the root, is called "").
func (w *Writer) BeginNode(name string) error {
	if err := w.probeStruct(); err != nil {
		return err
	}
	if w.rootDone {
		return ErrBadState // a second root
	}
	if w.depth >= MaxDepth {
		return ErrBadStructure
	}
	if strings.IndexByte(name, 0) >= 0 {
		return ErrBadValue
	}
	if w.depth == 0 {
		if name != "" {
			return ErrBadValue
		}
	} else if name == "" || strings.IndexByte(name, '/') >= 0 {
		return ErrBadValue
	}
	namelen := len(name) + 1
	nh := w.grabSpace(TagSize + tagAlign(namelen))
	if nh == nil {
		return ErrNoSpace
	}
	put32(nh, 0, TagBeginNode)
	copy(nh[TagSize:], name) // the NUL and the padding are zero
	w.depth++
	w.afterSubnode = false
	w.syncHeader()
	return nil
}

// EndNode ports scripts/dtc/libfdt/fdt_sw.c:fdt_end_node(): close the node
// opened last.
func (w *Writer) EndNode() error {
	if err := w.probeStruct(); err != nil {
		return err
	}
	if w.depth == 0 {
		return ErrBadState
	}
	en := w.grabSpace(TagSize)
	if en == nil {
		return ErrNoSpace
	}
	put32(en, 0, TagEndNode)
	w.depth--
	if w.depth == 0 {
		w.rootDone = true
	}
	// back in the parent, which now has a subnode
	w.afterSubnode = true
	w.syncHeader()
	return nil
}

// findString ports scripts/dtc/libfdt/fdt.c:fdt_find_string_(): the index of
// the first copy of s plus its NUL in strtab (it may be the tail of a longer
// string), or -1.
func findString(strtab []byte, s string) int {
	base := 0
	for {
		i := bytes.Index(strtab[base:], []byte(s))
		if i < 0 {
			return -1
		}
		end := base + i + len(s)
		if end < len(strtab) && strtab[end] == 0 {
			return base + i
		}
		base += i + 1
	}
}

// addString ports scripts/dtc/libfdt/fdt_sw.c:fdt_add_string_(): prepend s
// to the strings block (which grows down from the end of the buffer) and
// return its (negative) offset from the end, or 0 if there is no room.
func (w *Writer) addString(s string) int {
	n := len(s) + 1
	offset := -w.sizeStrings - n
	structTop := w.offStruct + w.sizeStruct
	if len(w.buf)+offset < structTop {
		return 0 // no more room :(
	}
	start := len(w.buf) + offset
	copy(w.buf[start:], s)
	w.buf[start+len(s)] = 0
	w.sizeStrings += n
	return offset
}

// findAddString ports scripts/dtc/libfdt/fdt_sw.c:fdt_find_add_string_().
func (w *Writer) findAddString(s string) (offset int, allocated bool) {
	strtab := w.buf[len(w.buf)-w.sizeStrings:]
	if p := findString(strtab, s); p >= 0 {
		return p - len(strtab), false
	}
	return w.addString(s), true
}

// PropertyPlaceholder ports
// scripts/dtc/libfdt/fdt_sw.c:fdt_property_placeholder(): add a property
// called name with an n-byte value and return the value's bytes for the
// caller to fill in later (they are zero). The slice stays valid, and keeps
// pointing into the tree, after Finish: Finish does not move the structure
// block. (KHO reserves "preserved-memory-map" this way.)
func (w *Writer) PropertyPlaceholder(name string, n int) ([]byte, error) {
	if err := w.probeProperty(name); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, ErrBadValue
	}
	// String de-duplication can be slow, _NO_NAME_DEDUP skips it
	var nameoff int
	allocated := true
	if w.flags&CreateFlagNoNameDedup != 0 {
		nameoff = w.addString(name)
	} else {
		nameoff, allocated = w.findAddString(name)
	}
	if nameoff == 0 {
		return nil, ErrNoSpace
	}
	var prop []byte
	if n <= len(w.buf) { // else it cannot fit (and tagAlign could overflow)
		prop = w.grabSpace(12 + tagAlign(n))
	}
	if prop == nil {
		if allocated {
			// fdt_del_last_string_(): roll back
			w.sizeStrings -= len(name) + 1
		}
		return nil, ErrNoSpace
	}
	put32(prop, 0, TagProp)
	put32(prop, 4, uint32(n))
	put32(prop, 8, uint32(int32(nameoff)))
	w.syncHeader()
	return prop[12 : 12+n : 12+n], nil
}

// Property ports scripts/dtc/libfdt/fdt_sw.c:fdt_property(): add property
// name with value val (copied) to the open node. Properties must come before
// the node's subnodes.
func (w *Writer) Property(name string, val []byte) error {
	p, err := w.PropertyPlaceholder(name, len(val))
	if err != nil {
		return err
	}
	copy(p, val)
	return nil
}

// PropertyString ports libfdt.h:fdt_property_string(): a string property,
// stored with its terminating NUL. ErrBadValue if s contains a NUL.
func (w *Writer) PropertyString(name, s string) error {
	if err := w.probeProperty(name); err != nil {
		return err
	}
	if strings.IndexByte(s, 0) >= 0 {
		return ErrBadValue
	}
	p, err := w.PropertyPlaceholder(name, len(s)+1)
	if err != nil {
		return err
	}
	copy(p, s)
	return nil
}

// PropertyU32 ports libfdt.h:fdt_property_u32(): one big-endian 32-bit cell.
func (w *Writer) PropertyU32(name string, v uint32) error {
	p, err := w.PropertyPlaceholder(name, 4)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint32(p, v)
	return nil
}

// PropertyU64 ports libfdt.h:fdt_property_u64(): one big-endian 64-bit value
// (two cells).
func (w *Writer) PropertyU64(name string, v uint64) error {
	p, err := w.PropertyPlaceholder(name, 8)
	if err != nil {
		return err
	}
	binary.BigEndian.PutUint64(p, v)
	return nil
}

// PropertyU64LE writes v as 8 raw little-endian bytes: the kernel's
// fdt_property(fdt, name, &v, sizeof(v)) of a u64 on a little-endian host,
// which is how LUO stores "liveupdate-number" and KHO its physical
// addresses. Read it back with FDT.GetPropU64LE.
func (w *Writer) PropertyU64LE(name string, v uint64) error {
	p, err := w.PropertyPlaceholder(name, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(p, v)
	return nil
}

// Finish ports scripts/dtc/libfdt/fdt_sw.c:fdt_finish(): add FDT_END, move
// the strings block behind the structure block, fix up the property name
// offsets and write the final header. ErrBadState if a node is still open
// or there is no root; ErrNoSpace if FDT_END does not fit.
func (w *Writer) Finish() error {
	if err := w.probeStruct(); err != nil {
		return err
	}
	if w.depth != 0 || !w.rootDone {
		return ErrBadState
	}
	// Add terminator
	end := w.grabSpace(TagSize)
	if end == nil {
		return ErrNoSpace
	}
	put32(end, 0, TagEnd)

	// Relocate the string table
	oldStrOffset := len(w.buf) - w.sizeStrings
	newStrOffset := w.offStruct + w.sizeStruct
	copy(w.buf[newStrOffset:], w.buf[oldStrOffset:oldStrOffset+w.sizeStrings])

	// Walk the structure, correcting string offsets
	st := w.buf[w.offStruct : w.offStruct+w.sizeStruct]
	offset := 0
	for {
		tag, next, err := nextTag(st, offset)
		if err != nil {
			return err // only if the caller overwrote the buffer
		}
		if tag == TagEnd {
			break
		}
		if tag == TagProp {
			nameoff := int(int32(be32(st, offset+8)))
			put32(st, offset+8, uint32(nameoff+w.sizeStrings))
		}
		offset = next
	}

	// Finally, adjust the header
	w.totalSize = newStrOffset + w.sizeStrings
	w.state = swComplete
	b := w.buf
	put32(b, hdrTotalSize, uint32(w.totalSize))
	put32(b, hdrOffDtStruct, uint32(w.offStruct))
	put32(b, hdrOffDtStrings, uint32(newStrOffset))
	put32(b, hdrSizeDtStrings, uint32(w.sizeStrings))
	put32(b, hdrSizeDtStruct, uint32(w.sizeStruct))
	// And fix up fields that were keeping intermediate state.
	put32(b, hdrLastCompVersion, LastCompatibleVersion)
	put32(b, hdrMagic, Magic)
	return nil
}

// Bytes returns the finished tree, buf[:totalsize] (aliasing the buffer given
// to Create), or nil before Finish has succeeded.
func (w *Writer) Bytes() []byte {
	if w.state != swComplete {
		return nil
	}
	return w.buf[:w.totalSize:w.totalSize]
}
