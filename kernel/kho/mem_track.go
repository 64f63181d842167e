package kho

import (
	"encoding/binary"
	"maps"
	"math/bits"
	"slices"

	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
)

// This file ports the outgoing preserved-memory tracker of
// kernel/liveupdate/kexec_handover.c (6.19): struct kho_mem_track, its
// per-order sparse bitmaps, and kho_mem_serialize(), which turns them into
// the khoser_mem_chunk list the next kernel reads.

// physBits is struct kho_mem_phys_bits: one page of bitmap, PreserveBits
// blocks of one order starting at a PreserveBits-aligned block index. The
// bitmap page is allocated from the MM when first needed, as upstream's
// get_zeroed_page(); the bits are kept here and copied into that page by
// kho_mem_serialize(), so marking a block costs no memory access. Only the
// words up to the highest bit set so far are kept (the rest are zero): the
// blocks of a small machine's memory fill a small part of a page.
type physBits struct {
	pa    mm.PhysAddr // immutable: the page holding the bitmap
	words []uint64    // guarded by memTrack.mu; at most PreserveBits/64
}

// set sets bit, growing the words to hold it (to the words of the blocks in
// memory, whole, so that a bitmap grows once).
//
// Requires: memTrack.mu held.
func (b *physBits) set(bit uint64, ramWords int) {
	if w := int(bit / 64); w >= len(b.words) {
		grown := make([]uint64, max(w+1, ramWords))
		copy(grown, b.words)
		b.words = grown
	}
	b.words[bit/64] |= 1 << (bit % 64)
}

// clear clears bit.
//
// Requires: memTrack.mu held.
func (b *physBits) clear(bit uint64) {
	if w := int(bit / 64); w < len(b.words) {
		b.words[w] &^= 1 << (bit % 64)
	}
}

// test reports whether bit is set.
//
// Requires: memTrack.mu held.
func (b *physBits) test(bit uint64) bool {
	w := int(bit / 64)
	return w < len(b.words) && b.words[w]&(1<<(bit%64)) != 0
}

// ramWords is how many words of the bitmap of (order, index) cover blocks
// in m's memory.
func ramWords(m *mm.MM, order uint, index uint64) int {
	blocks := (m.RAM().Pages() + 1<<order - 1) >> order
	first := index * PreserveBits
	if blocks <= first {
		return 0
	}
	return int((min(blocks-first, PreserveBits) + 63) / 64)
}

// memPhys is struct kho_mem_phys: the bitmaps of one order, by
// pfn_high / PreserveBits.
type memPhys struct {
	bits map[uint64]*physBits // guarded by memTrack.mu
}

// memTrack is struct kho_mem_track.
type memTrack struct {
	// mu stands for the xarray locks and atomic bitops of upstream. It is a
	// leaf: nothing else is taken while it is held.
	mu     locking.Mutex
	orders map[uint]*memPhys // guarded by mu
	// pages is every bitmap page, to free them if the kernel's KHO is torn
	// down; guarded by mu.
	pages []mm.PhysAddr
}

func (t *memTrack) init(dom *locking.Domain) {
	t.mu.Init(dom, "kho_mem_track.lock")
	t.orders = make(map[uint]*memPhys)
}

// loadOrAllocBits ports xa_load_or_alloc() on an order's bitmap array: the
// bitmap for index, allocating its page when missing. The page is allocated
// without mu held and installed with a compare-and-exchange, like upstream's
// xa_cmpxchg(): a racing allocation is freed.
//
// Requires: t.mu not held.
func (t *memTrack) loadOrAllocBits(m *mm.MM, order uint, index uint64) (*physBits, error) {
	t.mu.Lock()
	if b := t.lookupLocked(order, index); b != nil {
		t.mu.Unlock()
		return b, nil
	}
	t.mu.Unlock()

	pa, err := m.AllocPages(0, true)
	if err != nil {
		return nil, err
	}

	t.mu.Lock()
	if b := t.lookupLocked(order, index); b != nil {
		t.mu.Unlock()
		m.FreePages(pa, 0)
		return b, nil
	}
	phys := t.orders[order]
	if phys == nil {
		phys = &memPhys{bits: make(map[uint64]*physBits)}
		t.orders[order] = phys
	}
	b := &physBits{pa: pa}
	phys.bits[index] = b
	t.pages = append(t.pages, pa)
	t.mu.Unlock()
	return b, nil
}

// lookupLocked returns the bitmap of (order, index) or nil.
//
// Requires: t.mu held (asserted; instrumentation: upstream's xa_load() is
// RCU-safe, the port's maps are guarded by mu).
func (t *memTrack) lookupLocked(order uint, index uint64) *physBits {
	t.mu.AssertHeld()
	phys := t.orders[order]
	if phys == nil {
		return nil
	}
	return phys.bits[index]
}

// preserveOrder ports __kho_preserve_order(): mark the block of 2^order
// pages at pfn.
//
// Requires: t.mu not held.
func (t *memTrack) preserveOrder(m *mm.MM, pfn mm.PFN, order uint) error {
	high := uint64(pfn) >> order
	bit := high % PreserveBits
	t.mu.Lock()
	words := ramWords(m, order, high/PreserveBits)
	b := t.lookupLocked(order, high/PreserveBits)
	if b != nil {
		// The common case takes the lock once.
		b.set(bit, words)
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	b, err := t.loadOrAllocBits(m, order, high/PreserveBits)
	if err != nil {
		return err
	}
	t.mu.Lock()
	b.set(bit, words)
	t.mu.Unlock()
	return nil
}

// unpreserveOrder ports __kho_unpreserve_order(). It reports whether the
// tracker had a bitmap for the block (upstream WARN_ON_ONCE()s if not).
//
// Requires: t.mu not held.
func (t *memTrack) unpreserveOrder(pfn mm.PFN, order uint) bool {
	high := uint64(pfn) >> order
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.lookupLocked(order, high/PreserveBits)
	if b == nil {
		return false
	}
	b.clear(high % PreserveBits)
	return true
}

// isPreserved reports whether the block of 2^order pages at pfn is marked.
//
// Requires: t.mu not held.
func (t *memTrack) isPreserved(pfn mm.PFN, order uint) bool {
	high := uint64(pfn) >> order
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.lookupLocked(order, high/PreserveBits)
	if b == nil {
		return false
	}
	return b.test(high % PreserveBits)
}

// blockOrder is the order __kho_preserve() / kho_preserve_pages() use for
// the next block of a pfn range: the largest naturally aligned block that
// fits, min(count_trailing_zeros(pfn), ilog2(end - pfn)).
func blockOrder(pfn, end mm.PFN) uint {
	o := uint(bits.Len64(uint64(end-pfn))) - 1
	if pfn != 0 {
		o = min(o, uint(bits.TrailingZeros64(uint64(pfn))))
	}
	return o
}

// unpreserveRange ports __kho_unpreserve(): clear [pfn, end) block by
// block.
//
// Requires: t.mu not held.
func (t *memTrack) unpreserveRange(pfn, end mm.PFN) {
	for pfn < end {
		order := blockOrder(pfn, end)
		t.unpreserveOrder(pfn, order)
		pfn += 1 << order
	}
}

// serialize ports kho_mem_serialize(): write every bitmap into its page and
// build the khoser_mem_chunk list, one or more chunks per order, in
// ascending order and index as xa_for_each() visits them. It returns the PA
// of the first chunk and the chunk pages. The chunks are ordinary memory,
// not preserved, as upstream: the next kernel reads them before its
// allocator exists and never again.
//
// Requires: t.mu not held.
func (t *memTrack) serialize(m *mm.MM) (first mm.PhysAddr, chunks []mm.PhysAddr, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()

	fail := func(e error) (mm.PhysAddr, []mm.PhysAddr, error) {
		freeChunks(m, chunks)
		return 0, nil, e
	}
	page := make([]byte, mm.PageSize)
	var cur mm.PhysAddr
	var hdr chunkHdr
	flush := func() error {
		hdr.encode(page)
		return m.Write(cur, page)
	}
	newChunk := func(order uint) error {
		pa, err := m.AllocPages(0, true)
		if err != nil {
			return err
		}
		if cur != 0 {
			hdr.next = pa
			if err := flush(); err != nil {
				m.FreePages(pa, 0)
				return err
			}
		}
		chunks = append(chunks, pa)
		cur = pa
		clear(page)
		hdr = chunkHdr{order: uint32(order)}
		return nil
	}

	buf := make([]byte, mm.PageSize)
	for _, order := range slices.Sorted(maps.Keys(t.orders)) {
		phys := t.orders[order]
		if err := newChunk(order); err != nil {
			return fail(err)
		}
		for _, idx := range slices.Sorted(maps.Keys(phys.bits)) {
			b := phys.bits[idx]
			if hdr.numElms == ChunkBitmapSize {
				if err := newChunk(order); err != nil {
					return fail(err)
				}
			}
			for i, w := range b.words {
				binary.LittleEndian.PutUint64(buf[i*8:], w)
			}
			clear(buf[len(b.words)*8:])
			if err := m.Write(b.pa, buf); err != nil {
				return fail(err)
			}
			elm := bitmapPtr{
				physStart: mm.PhysAddr((idx * PreserveBits) << (order + mm.PageShift)),
				bitmap:    b.pa,
			}
			elm.encode(page[ChunkHdrSize+int(hdr.numElms)*BitmapPtrSize:])
			hdr.numElms++
		}
	}
	if cur != 0 {
		if err := flush(); err != nil {
			return fail(err)
		}
	}
	if len(chunks) > 0 {
		first = chunks[0]
	}
	return first, chunks, nil
}

// freeChunks ports kho_mem_ser_free().
func freeChunks(m *mm.MM, chunks []mm.PhysAddr) {
	for _, pa := range chunks {
		m.FreePages(pa, 0)
	}
}
