package kho

import (
	"encoding/binary"

	"luomodel/kernel/mm"
)

// This file holds the hand-over ABI of Linux 6.19: the names and
// properties of the root FDT (kernel/liveupdate/kexec_handover.c) and the
// __packed little-endian layouts of the serialized structs
// (kexec_handover.c's khoser_* structs and
// include/linux/kho/abi/kexec_handover.h's struct kho_vmalloc). Every
// struct here is bytes in simulated physical memory; the Go types are only
// their decoded form.

// Root FDT names (KHO_FDT_COMPATIBLE, PROP_PRESERVED_MEMORY_MAP,
// PROP_SUB_FDT).
const (
	FDTCompatible          = "kho-v1"
	PropPreservedMemoryMap = "preserved-memory-map"
	PropSubFDT             = "fdt"
)

// PageMagic is KHO_PAGE_MAGIC ("KHOP"), the mark the next kernel puts on the
// head page of every preserved block (page->private); restore checks it.
const PageMagic = 0x4b484f50

// MaxPageOrder is MAX_PAGE_ORDER (x86-64, 4 KiB pages): the largest folio
// KHO will allocate, preserve or restore.
const MaxPageOrder = mm.MaxOrder

// PreserveBits is PRESERVE_BITS: one page-sized bitmap tracks this many
// blocks of one order (struct kho_mem_phys_bits).
const PreserveBits = mm.PageSize * 8

// Sizes and offsets of struct khoser_mem_chunk_hdr (next u64 @0, order u32
// @8, num_elms u32 @12) and struct khoser_mem_bitmap_ptr (phys_start u64 @0,
// bitmap u64 @8).
const (
	ChunkHdrOffNext    = 0
	ChunkHdrOffOrder   = 8
	ChunkHdrOffNumElms = 12
	ChunkHdrSize       = 16

	BitmapPtrOffPhysStart = 0
	BitmapPtrOffBitmap    = 8
	BitmapPtrSize         = 16

	// ChunkBitmapSize is KHOSER_BITMAP_SIZE: bitmap pointers per chunk
	// page, (4096 - 16) / 16 = 255.
	ChunkBitmapSize = (mm.PageSize - ChunkHdrSize) / BitmapPtrSize
)

// Sizes and offsets of struct kho_vmalloc_chunk (next u64 @0, phys u64[511]
// @8) and struct kho_vmalloc (first u64 @0, total_pages u32 @8, flags u16
// @12, order u16 @14).
const (
	VmallocChunkOffNext = 0
	VmallocChunkOffPhys = 8
	// VmallocChunkSize is KHO_VMALLOC_SIZE: page addresses per chunk,
	// (4096 - 8) / 8 = 511.
	VmallocChunkSize = (mm.PageSize - 8) / 8

	VmallocOffFirst      = 0
	VmallocOffTotalPages = 8
	VmallocOffFlags      = 12
	VmallocOffOrder      = 14
	VmallocSize          = 16
)

// KHO's vmalloc flags (KHO_VMALLOC_ALLOC, KHO_VMALLOC_HUGE_VMAP).
const (
	VmallocFlagAlloc    = 0x0001
	VmallocFlagHugeVmap = 0x0002
	vmallocFlagsKnown   = VmallocFlagAlloc | VmallocFlagHugeVmap
)

// chunkHdr is struct khoser_mem_chunk_hdr, decoded.
type chunkHdr struct {
	next    mm.PhysAddr
	order   uint32
	numElms uint32
}

func decodeChunkHdr(b []byte) chunkHdr {
	return chunkHdr{
		next:    mm.PhysAddr(binary.LittleEndian.Uint64(b[ChunkHdrOffNext:])),
		order:   binary.LittleEndian.Uint32(b[ChunkHdrOffOrder:]),
		numElms: binary.LittleEndian.Uint32(b[ChunkHdrOffNumElms:]),
	}
}

func (h chunkHdr) encode(b []byte) {
	binary.LittleEndian.PutUint64(b[ChunkHdrOffNext:], uint64(h.next))
	binary.LittleEndian.PutUint32(b[ChunkHdrOffOrder:], h.order)
	binary.LittleEndian.PutUint32(b[ChunkHdrOffNumElms:], h.numElms)
}

// bitmapPtr is struct khoser_mem_bitmap_ptr, decoded.
type bitmapPtr struct {
	physStart mm.PhysAddr
	bitmap    mm.PhysAddr
}

func decodeBitmapPtr(b []byte) bitmapPtr {
	return bitmapPtr{
		physStart: mm.PhysAddr(binary.LittleEndian.Uint64(b[BitmapPtrOffPhysStart:])),
		bitmap:    mm.PhysAddr(binary.LittleEndian.Uint64(b[BitmapPtrOffBitmap:])),
	}
}

func (p bitmapPtr) encode(b []byte) {
	binary.LittleEndian.PutUint64(b[BitmapPtrOffPhysStart:], uint64(p.physStart))
	binary.LittleEndian.PutUint64(b[BitmapPtrOffBitmap:], uint64(p.bitmap))
}

// Vmalloc is struct kho_vmalloc: the descriptor of a preserved vmalloc
// area, which its user stores in its own serialized data (memfd_luo keeps
// one in struct memfd_luo_ser). First is the PA of the first
// kho_vmalloc_chunk page; each chunk lists the PAs of the area's blocks of
// 2^Order pages, zero-terminated, and links to the next chunk.
type Vmalloc struct {
	First      mm.PhysAddr
	TotalPages uint32
	Flags      uint16
	Order      uint16
}

// Encode writes v in its 16-byte __packed little-endian form into b.
func (v Vmalloc) Encode(b []byte) {
	_ = b[VmallocSize-1]
	binary.LittleEndian.PutUint64(b[VmallocOffFirst:], uint64(v.First))
	binary.LittleEndian.PutUint32(b[VmallocOffTotalPages:], v.TotalPages)
	binary.LittleEndian.PutUint16(b[VmallocOffFlags:], v.Flags)
	binary.LittleEndian.PutUint16(b[VmallocOffOrder:], v.Order)
}

// DecodeVmalloc reads a struct kho_vmalloc from the first 16 bytes of b.
// It does not validate: RestoreVmalloc does.
func DecodeVmalloc(b []byte) Vmalloc {
	_ = b[VmallocSize-1]
	return Vmalloc{
		First:      mm.PhysAddr(binary.LittleEndian.Uint64(b[VmallocOffFirst:])),
		TotalPages: binary.LittleEndian.Uint32(b[VmallocOffTotalPages:]),
		Flags:      binary.LittleEndian.Uint16(b[VmallocOffFlags:]),
		Order:      binary.LittleEndian.Uint16(b[VmallocOffOrder:]),
	}
}
