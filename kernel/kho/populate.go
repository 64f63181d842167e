package kho

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"syscall"

	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/mm"
)

// This file ports the incoming side of kernel/liveupdate/kexec_handover.c
// that runs before the page allocator exists: kho_populate(),
// kho_get_mem_map_phys(), kho_mem_deserialize() and deserialize_bitmap().
// They read physical memory raw, given only the physical address of the
// root FDT, so the next kernel is built from bytes alone (design rule 2).
//
// Upstream trusts the previous kernel: a corrupt chunk list crashes or
// hangs early boot, and a bad root FDT just disables revival. Here every
// corruption (bad FDT, bad map address, a loop in the chunk chain, blocks
// outside RAM or overlapping, orders out of range) makes Populate fail
// with an error wrapping EINVAL, which fails the boot, and nothing in the
// parse can panic or run unbounded.

// Block is one preserved block: 2^Order pages at PA.
type Block struct {
	PA    mm.PhysAddr
	Order uint
}

// Size is the block's size in bytes.
func (b Block) Size() uint64 { return mm.PageSize << b.Order }

// Handover is the hand-over data found in physical memory: the incoming
// root FDT (struct kho_in) and the deserialized preserved-memory map.
// It holds only values read from RAM, copied. Immutable once Populate
// returns it, so kernels booted from the same saved memory share one.
type Handover struct {
	fdtPA    mm.PhysAddr
	memMapPA mm.PhysAddr
	// fdt is a copy of the root FDT. Upstream reads it through
	// phys_to_virt(); its page is preserved and never restored, so the copy
	// never goes stale.
	fdt *fdt.FDT
	// blocks are the preserved blocks, sorted by PA, non-overlapping.
	blocks []Block
	// meta are the pages of the memory map itself (chunks and bitmaps):
	// ordinary memory of the previous kernel that must survive the kexec
	// scrub but is free again once deserialized.
	meta []mm.PhysAddr
}

// FDTAddr is the PA of the incoming root FDT.
func (h *Handover) FDTAddr() mm.PhysAddr { return h.fdtPA }

// Blocks returns the preserved blocks, sorted by address.
func (h *Handover) Blocks() []Block { return slices.Clone(h.blocks) }

// BlockAt returns the preserved block that contains pa, if any: the blocks
// are sorted and disjoint (Populate rejects overlaps), so a binary search
// finds it without copying them.
func (h *Handover) BlockAt(pa mm.PhysAddr) (Block, bool) {
	i := sort.Search(len(h.blocks), func(i int) bool {
		b := h.blocks[i]
		return uint64(b.PA)+b.Size() > uint64(pa)
	})
	if i < len(h.blocks) && h.blocks[i].PA <= pa {
		return h.blocks[i], true
	}
	return Block{}, false
}

// Reserved returns the preserved blocks as ranges, for mm.New: memory the
// new kernel must not hand out until a user restores it.
func (h *Handover) Reserved() []mm.Range {
	if h == nil {
		return nil
	}
	r := make([]mm.Range, 0, len(h.blocks))
	for _, b := range h.blocks {
		r = append(r, mm.Range{Start: b.PA, Size: b.Size()})
	}
	return r
}

// Keep returns every range that must survive the kexec scrub: the
// preserved blocks (including the root FDT, which is itself preserved)
// and the pages of the memory map.
func (h *Handover) Keep() []mm.Range {
	r := h.Reserved()
	for _, pa := range h.meta {
		r = append(r, mm.Range{Start: pa, Size: mm.PageSize})
	}
	slices.SortFunc(r, func(a, b mm.Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	return r
}

// corrupt is the error of every malformed hand-over: EINVAL, with what was
// wrong.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("kho: corrupt hand-over: %s: %w", fmt.Sprintf(format, args...), syscall.EINVAL)
}

// Populate ports kho_populate() and kho_mem_deserialize(): it reads the
// root FDT at fdtPA from raw memory, checks it ("kho-v1"), reads the
// preserved-memory map it points to and returns the preserved blocks.
// fdtPA 0 (cold boot) returns nil, nil.
func Populate(ram *mm.RAM, fdtPA mm.PhysAddr) (*Handover, error) {
	if fdtPA == 0 {
		return nil, nil
	}
	size := ram.Size()
	if fdtPA%8 != 0 || uint64(fdtPA) >= size || size-uint64(fdtPA) < mm.PageSize {
		return nil, corrupt("root FDT at %#x outside memory", uint64(fdtPA))
	}
	// The root FDT is one page (kho_out_fdt_setup()'s fdt_create(root,
	// PAGE_SIZE)); early_memremap() maps that much.
	blob := make([]byte, mm.PageSize)
	if err := ram.ReadRaw(fdtPA, blob); err != nil {
		return nil, corrupt("root FDT at %#x: %v", uint64(fdtPA), err)
	}
	f, err := fdt.Open(blob)
	if err != nil {
		return nil, corrupt("root FDT at %#x is invalid: %v", uint64(fdtPA), err)
	}
	if err := f.Check(); err != nil {
		return nil, corrupt("root FDT at %#x is invalid: %v", uint64(fdtPA), err)
	}
	if err := f.NodeCheckCompatible(0, FDTCompatible); err != nil {
		return nil, corrupt("root FDT is incompatible with %q: %v", FDTCompatible, err)
	}
	memMap, err := memMapPhys(f)
	if err != nil {
		return nil, err
	}
	h := &Handover{fdtPA: fdtPA, memMapPA: memMap, fdt: f}
	if err := h.deserialize(ram); err != nil {
		return nil, err
	}
	return h, nil
}

// memMapPhys ports kho_get_mem_map_phys(). A missing or zero map is an
// error: a finalized KHO always preserves at least its own root FDT.
func memMapPhys(f *fdt.FDT) (mm.PhysAddr, error) {
	v, err := f.GetProp(0, PropPreservedMemoryMap)
	if err != nil || len(v) != 8 {
		return 0, corrupt("failed to get preserved memory bitmaps")
	}
	pa := mm.PhysAddr(binary.LittleEndian.Uint64(v))
	if pa == 0 {
		return 0, corrupt("empty preserved memory map (KHO was not finalized)")
	}
	return pa, nil
}

// pageInRAM reports whether pa is a page-aligned address of a page in RAM.
func pageInRAM(ram *mm.RAM, pa mm.PhysAddr) bool {
	return pa%mm.PageSize == 0 && uint64(pa) < ram.Size() && ram.Size()-uint64(pa) >= mm.PageSize
}

// deserialize ports kho_mem_deserialize() and deserialize_bitmap(): walk
// the chunk list, collect every set bit as a block. Each chunk and bitmap
// is checked before use; the walk is bounded by the number of pages of RAM
// (a longer list must revisit a page: a loop).
func (h *Handover) deserialize(ram *mm.RAM) error {
	ramPages := ram.Size() / mm.PageSize
	seenMeta := make(map[mm.PhysAddr]bool)
	chunk := make([]byte, mm.PageSize)
	bitmap := make([]byte, mm.PageSize)
	for pa := h.memMapPA; pa != 0; {
		if !pageInRAM(ram, pa) {
			return corrupt("memory map chunk at %#x outside memory", uint64(pa))
		}
		if seenMeta[pa] {
			return corrupt("memory map chunk at %#x visited twice (loop)", uint64(pa))
		}
		seenMeta[pa] = true
		h.meta = append(h.meta, pa)
		if err := ram.ReadRaw(pa, chunk); err != nil {
			return corrupt("memory map chunk at %#x: %v", uint64(pa), err)
		}
		hdr := decodeChunkHdr(chunk)
		if hdr.order > MaxPageOrder {
			return corrupt("memory map chunk at %#x: order %d", uint64(pa), hdr.order)
		}
		if hdr.numElms > ChunkBitmapSize {
			return corrupt("memory map chunk at %#x: %d bitmaps", uint64(pa), hdr.numElms)
		}
		order := uint(hdr.order)
		span := uint64(PreserveBits) << (order + mm.PageShift)
		for i := range int(hdr.numElms) {
			elm := decodeBitmapPtr(chunk[ChunkHdrSize+i*BitmapPtrSize:])
			if uint64(elm.physStart)%span != 0 || uint64(elm.physStart) >= ram.Size() {
				return corrupt("bitmap %d of chunk %#x: phys_start %#x", i, uint64(pa), uint64(elm.physStart))
			}
			if !pageInRAM(ram, elm.bitmap) {
				return corrupt("bitmap %d of chunk %#x at %#x outside memory", i, uint64(pa), uint64(elm.bitmap))
			}
			if !seenMeta[elm.bitmap] {
				seenMeta[elm.bitmap] = true
				h.meta = append(h.meta, elm.bitmap)
			}
			if err := ram.ReadRaw(elm.bitmap, bitmap); err != nil {
				return corrupt("bitmap at %#x: %v", uint64(elm.bitmap), err)
			}
			if err := h.deserializeBitmap(ram, order, elm.physStart, bitmap); err != nil {
				return err
			}
			if uint64(len(h.blocks)) > ramPages {
				return corrupt("more preserved blocks than pages of memory")
			}
		}
		if uint64(len(h.meta)) > ramPages {
			return corrupt("memory map larger than memory")
		}
		pa = hdr.next
	}
	return h.check()
}

// deserializeBitmap ports deserialize_bitmap(): every set bit is a block of
// 2^order pages at physStart + bit << (order + PAGE_SHIFT).
func (h *Handover) deserializeBitmap(ram *mm.RAM, order uint, physStart mm.PhysAddr, bitmap []byte) error {
	size := uint64(mm.PageSize) << order
	var zeros [zeroSpan]byte
	for span := 0; span < PreserveBits/8; span += zeroSpan {
		// for_each_set_bit(): a span of clear words at once (a bitmap
		// tracks a page's worth of blocks; few are set).
		if bytes.Equal(bitmap[span:span+zeroSpan], zeros[:]) {
			continue
		}
		for w := span / 8; w < (span+zeroSpan)/8; w++ {
			word := binary.LittleEndian.Uint64(bitmap[w*8:])
			for word != 0 {
				bit := uint64(w*64) + uint64(bits.TrailingZeros64(word))
				word &= word - 1
				pa := uint64(physStart) + bit*size
				if pa >= ram.Size() || ram.Size()-pa < size {
					return corrupt("preserved block %#x (order %d) outside memory", pa, order)
				}
				h.blocks = append(h.blocks, Block{PA: mm.PhysAddr(pa), Order: order})
				if uint64(len(h.blocks)) > ram.Size()/mm.PageSize {
					return corrupt("more preserved blocks than pages of memory")
				}
			}
		}
	}
	return nil
}

// zeroSpan is how many bytes of a bitmap deserializeBitmap tests for zero
// at once.
const zeroSpan = 256

// check sorts the blocks and rejects overlaps between blocks and between
// blocks and the map's own pages, and requires the root FDT to be inside a
// preserved block.
func (h *Handover) check() error {
	slices.SortFunc(h.blocks, func(a, b Block) int {
		switch {
		case a.PA < b.PA:
			return -1
		case a.PA > b.PA:
			return 1
		}
		return 0
	})
	for i := 1; i < len(h.blocks); i++ {
		prev := h.blocks[i-1]
		if uint64(prev.PA)+prev.Size() > uint64(h.blocks[i].PA) {
			return corrupt("preserved blocks %#x (order %d) and %#x (order %d) overlap",
				uint64(prev.PA), prev.Order, uint64(h.blocks[i].PA), h.blocks[i].Order)
		}
	}
	for _, pa := range h.meta {
		if _, ok := h.blockContaining(pa); ok {
			return corrupt("memory map page %#x inside a preserved block", uint64(pa))
		}
	}
	if _, ok := h.blockContaining(h.fdtPA); !ok {
		return corrupt("root FDT at %#x is not preserved", uint64(h.fdtPA))
	}
	return nil
}

// blockContaining returns the preserved block that holds pa.
func (h *Handover) blockContaining(pa mm.PhysAddr) (Block, bool) {
	i, found := slices.BinarySearchFunc(h.blocks, pa, func(b Block, t mm.PhysAddr) int {
		switch {
		case b.PA < t:
			return -1
		case b.PA > t:
			return 1
		}
		return 0
	})
	if found {
		return h.blocks[i], true
	}
	if i == 0 {
		return Block{}, false
	}
	b := h.blocks[i-1]
	if uint64(pa) < uint64(b.PA)+b.Size() {
		return b, true
	}
	return Block{}, false
}

// retrieveSubtree ports kho_retrieve_subtree() on the incoming root FDT.
func (h *Handover) retrieveSubtree(name string) (mm.PhysAddr, error) {
	off, err := h.fdt.SubnodeOffset(0, name)
	if err != nil {
		return 0, syscall.ENOENT
	}
	v, err := h.fdt.GetProp(off, PropSubFDT)
	if err != nil || len(v) != 8 {
		return 0, syscall.EINVAL
	}
	return mm.PhysAddr(binary.LittleEndian.Uint64(v)), nil
}
