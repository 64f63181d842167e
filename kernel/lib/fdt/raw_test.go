package fdt

import "encoding/binary"

// rawTree assembles structure and strings blocks token by token, without
// the Writer's rules, to build malformed trees.
type rawTree struct {
	st   []byte
	strs []byte
}

func (r *rawTree) u32(v uint32) *rawTree {
	r.st = binary.BigEndian.AppendUint32(r.st, v)
	return r
}

func (r *rawTree) pad() {
	for len(r.st)%TagSize != 0 {
		r.st = append(r.st, 0)
	}
}

func (r *rawTree) begin(name string) *rawTree {
	r.u32(TagBeginNode)
	r.st = append(r.st, name...)
	r.st = append(r.st, 0)
	r.pad()
	return r
}

func (r *rawTree) end() *rawTree { return r.u32(TagEndNode) }
func (r *rawTree) nop() *rawTree { return r.u32(TagNop) }
func (r *rawTree) fin() *rawTree { return r.u32(TagEnd) }

// str adds s to the strings block and returns its offset.
func (r *rawTree) str(s string) uint32 {
	off := uint32(len(r.strs))
	r.strs = append(r.strs, s...)
	r.strs = append(r.strs, 0)
	return off
}

func (r *rawTree) propOff(nameoff uint32, val []byte) *rawTree {
	r.u32(TagProp).u32(uint32(len(val))).u32(nameoff)
	r.st = append(r.st, val...)
	r.pad()
	return r
}

func (r *rawTree) prop(name string, val []byte) *rawTree {
	return r.propOff(r.str(name), val)
}

// blob lays the tree out as dtc does: header (v17), reserve map at 40
// (given entries plus the terminator), structure block, strings block.
func (r *rawTree) blob(rsv ...uint64) []byte {
	const hdr = HeaderSizeV17
	offRsv := hdr
	offStruct := offRsv + (len(rsv)/2+1)*ReserveEntrySize
	offStrings := offStruct + len(r.st)
	total := offStrings + len(r.strs)
	b := make([]byte, total)
	put32(b, hdrMagic, Magic)
	put32(b, hdrTotalSize, uint32(total))
	put32(b, hdrOffDtStruct, uint32(offStruct))
	put32(b, hdrOffDtStrings, uint32(offStrings))
	put32(b, hdrOffMemRsvmap, uint32(offRsv))
	put32(b, hdrVersion, 17)
	put32(b, hdrLastCompVersion, 16)
	put32(b, hdrSizeDtStrings, uint32(len(r.strs)))
	put32(b, hdrSizeDtStruct, uint32(len(r.st)))
	for i, v := range rsv {
		binary.BigEndian.PutUint64(b[offRsv+8*i:], v)
	}
	copy(b[offStruct:], r.st)
	copy(b[offStrings:], r.strs)
	return b
}
