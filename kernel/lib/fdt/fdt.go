package fdt

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Format constants (scripts/dtc/libfdt/fdt.h and libfdt.h).
const (
	// Magic is FDT_MAGIC, the first word of a finished blob.
	Magic uint32 = 0xd00dfeed
	// SWMagic is FDT_SW_MAGIC, the magic of a tree still being written by
	// the sequential-write functions.
	SWMagic uint32 = ^Magic

	// TagSize is FDT_TAGSIZE: structure block tokens are 32-bit and
	// everything in the structure block is aligned to it.
	TagSize = 4

	// Structure block tokens (FDT_BEGIN_NODE ... FDT_END).
	TagBeginNode uint32 = 0x1
	TagEndNode   uint32 = 0x2
	TagProp      uint32 = 0x3
	TagNop       uint32 = 0x4
	TagEnd       uint32 = 0x9

	// Version is the format version the writer emits (FDT_LAST_SUPPORTED_VERSION).
	Version = 0x11
	// LastCompatibleVersion is FDT_LAST_COMPATIBLE_VERSION, the
	// last_comp_version the writer emits.
	LastCompatibleVersion = 0x10
	// FirstSupportedVersion is the oldest version the reader accepts.
	// libfdt accepts 0x02 and emulates the pre-v16 layout (full-path node
	// names, 8-byte aligned property values); this port does not, and
	// rejects such blobs with ErrBadVersion, like libfdt before v1.5 did.
	FirstSupportedVersion = 0x10
	// LastSupportedVersion is FDT_LAST_SUPPORTED_VERSION: a blob whose
	// last_comp_version is newer cannot be read.
	LastSupportedVersion = 0x11

	// Header sizes by version (FDT_V1_SIZE ... FDT_V17_SIZE).
	HeaderSizeV1  = 7 * 4
	HeaderSizeV2  = HeaderSizeV1 + 4
	HeaderSizeV3  = HeaderSizeV2 + 4
	HeaderSizeV16 = HeaderSizeV3
	HeaderSizeV17 = HeaderSizeV16 + 4

	// ReserveEntrySize is sizeof(struct fdt_reserve_entry): address and
	// size, both big-endian u64.
	ReserveEntrySize = 16

	// MaxDepth bounds node nesting (the root is at depth 1) for Check and
	// the writer, like FDT_MAX_DEPTH in drivers/of/fdt.c. libfdt itself
	// has no limit.
	MaxDepth = 64

	// maxTotalSize: libfdt keeps sizes in an int and rejects totalsize
	// values above INT_MAX.
	maxTotalSize = math.MaxInt32
)

// Offsets of the fields of struct fdt_header (all big-endian u32).
const (
	hdrMagic           = 0
	hdrTotalSize       = 4
	hdrOffDtStruct     = 8
	hdrOffDtStrings    = 12
	hdrOffMemRsvmap    = 16
	hdrVersion         = 20
	hdrLastCompVersion = 24
	hdrBootCPUIDPhys   = 28
	hdrSizeDtStrings   = 32
	hdrSizeDtStruct    = 36
)

// Header is struct fdt_header (scripts/dtc/libfdt/fdt.h), decoded. Fields a
// blob's version does not have are zero.
type Header struct {
	Magic           uint32
	TotalSize       uint32
	OffDtStruct     uint32
	OffDtStrings    uint32
	OffMemRsvmap    uint32
	Version         uint32
	LastCompVersion uint32
	BootCPUIDPhys   uint32 // version >= 2
	SizeDtStrings   uint32 // version >= 3
	SizeDtStruct    uint32 // version >= 17
}

func be32(b []byte, off int) uint32 { return binary.BigEndian.Uint32(b[off:]) }

func put32(b []byte, off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }

// tagAlign is FDT_TAGALIGN().
func tagAlign(n int) int { return (n + TagSize - 1) &^ (TagSize - 1) }

// headerSize ports scripts/dtc/libfdt/fdt.c:fdt_header_size_().
func headerSize(version uint32) int {
	switch {
	case version <= 1:
		return HeaderSizeV1
	case version <= 2:
		return HeaderSizeV2
	case version <= 3:
		return HeaderSizeV3
	case version <= 16:
		return HeaderSizeV16
	}
	return HeaderSizeV17
}

// decodeHeader reads the fields of the header that blob holds for version.
// The caller has checked len(blob) >= headerSize(version).
func decodeHeader(blob []byte) Header {
	h := Header{
		Magic:           be32(blob, hdrMagic),
		TotalSize:       be32(blob, hdrTotalSize),
		OffDtStruct:     be32(blob, hdrOffDtStruct),
		OffDtStrings:    be32(blob, hdrOffDtStrings),
		OffMemRsvmap:    be32(blob, hdrOffMemRsvmap),
		Version:         be32(blob, hdrVersion),
		LastCompVersion: be32(blob, hdrLastCompVersion),
	}
	if h.Version >= 2 {
		h.BootCPUIDPhys = be32(blob, hdrBootCPUIDPhys)
	}
	if h.Version >= 3 {
		h.SizeDtStrings = be32(blob, hdrSizeDtStrings)
	}
	if h.Version >= 17 {
		h.SizeDtStruct = be32(blob, hdrSizeDtStruct)
	}
	return h
}

// checkOff ports scripts/dtc/libfdt/fdt.c:check_off_().
func checkOff(hdrsize, totalsize, off uint32) bool {
	return off >= hdrsize && off <= totalsize
}

// checkBlock ports scripts/dtc/libfdt/fdt.c:check_block_(), in 64-bit
// arithmetic so base+size cannot wrap.
func checkBlock(hdrsize, totalsize, base, size uint32) bool {
	if !checkOff(hdrsize, totalsize, base) {
		return false
	}
	return uint64(base)+uint64(size) <= uint64(totalsize)
}

// CheckHeader ports scripts/dtc/libfdt/fdt.c:fdt_check_header(), plus the
// bufsize checks of fdt_check_full(): blob must hold a finished tree whose
// magic, versions, header and block bounds are sane and whose totalsize fits
// in len(blob). blob may be longer than the tree.
//
// Errors: ErrTruncated (blob shorter than the header or than totalsize, a
// block outside totalsize), ErrBadMagic, ErrBadState (an unfinished tree, as
// fdt_ro_probe_() reports it), ErrBadVersion.
func CheckHeader(blob []byte) error {
	if len(blob) < 4 {
		return ErrTruncated
	}
	switch be32(blob, hdrMagic) {
	case Magic:
	case SWMagic:
		return ErrBadState
	default:
		return ErrBadMagic
	}
	if len(blob) < HeaderSizeV1 {
		return ErrTruncated
	}
	version := be32(blob, hdrVersion)
	lastComp := be32(blob, hdrLastCompVersion)
	if version < FirstSupportedVersion || lastComp > LastSupportedVersion {
		return ErrBadVersion
	}
	if version < lastComp {
		return ErrBadVersion
	}
	hdrsize := headerSize(version)
	if len(blob) < hdrsize {
		return ErrTruncated
	}
	h := decodeHeader(blob)
	hs := uint32(hdrsize)
	if h.TotalSize < hs || h.TotalSize > maxTotalSize {
		return ErrTruncated
	}
	if uint64(h.TotalSize) > uint64(len(blob)) {
		return ErrTruncated
	}
	if !checkOff(hs, h.TotalSize, h.OffMemRsvmap) {
		return ErrTruncated
	}
	if h.Version < 17 {
		if !checkOff(hs, h.TotalSize, h.OffDtStruct) {
			return ErrTruncated
		}
	} else if !checkBlock(hs, h.TotalSize, h.OffDtStruct, h.SizeDtStruct) {
		return ErrTruncated
	}
	if !checkBlock(hs, h.TotalSize, h.OffDtStrings, h.SizeDtStrings) {
		return ErrTruncated
	}
	return nil
}

// FDT is a read-only view of a finished flattened device tree, the Go form
// of libfdt's "const void *fdt" for the fdt_ro.c functions.
//
// Open checks the header once and caches it; every method then bounds its
// accesses by the cached block limits, so a method never reads outside the
// blob, never panics and never loops forever, whatever the bytes say, and
// even if the caller changes the bytes afterwards (it then just returns
// errors or stale-but-bounded data). Offsets are structure block offsets as
// in libfdt; the root node is at offset 0. On error, methods that return an
// offset return the negative libfdt code (-FDT_ERR_*) with the error.
//
// An FDT has no mutable state; it is safe for concurrent use as long as
// nobody writes the underlying bytes.
type FDT struct {
	b       []byte // blob[:totalsize]
	hdr     Header
	st      []byte // the structure block
	strs    []byte // the strings block
	lastNul int    // index of the last NUL in strs, -1 if none
}

// Open checks the header of blob with CheckHeader and returns a reader for
// the tree in blob[:totalsize]. It does not copy blob. Use Check for a full
// structural validation of untrusted data.
func Open(blob []byte) (*FDT, error) {
	if err := CheckHeader(blob); err != nil {
		return nil, err
	}
	h := decodeHeader(blob)
	b := blob[:h.TotalSize:h.TotalSize]
	structEnd := h.TotalSize
	if h.Version >= 17 {
		structEnd = h.OffDtStruct + h.SizeDtStruct
	}
	strs := b[h.OffDtStrings : h.OffDtStrings+h.SizeDtStrings]
	return &FDT{
		b:       b,
		hdr:     h,
		st:      b[h.OffDtStruct:structEnd:structEnd],
		strs:    strs,
		lastNul: bytes.LastIndexByte(strs, 0),
	}, nil
}

// Bytes returns the blob, blob[:totalsize]. It aliases the bytes given to
// Open.
func (f *FDT) Bytes() []byte { return f.b }

// Header returns the decoded header.
func (f *FDT) Header() Header { return f.hdr }

// TotalSize is fdt_totalsize(): the size of the blob in bytes.
func (f *FDT) TotalSize() int { return int(f.hdr.TotalSize) }

// Version is fdt_version().
func (f *FDT) Version() int { return int(f.hdr.Version) }

// StructSize is the size of the structure block (fdt_size_dt_struct() for
// version 17; for version 16 it runs to totalsize).
func (f *FDT) StructSize() int { return len(f.st) }

// fail returns libfdt's negative return value for e, with e.
func fail(e Error) (int, error) { return -int(e), e }
