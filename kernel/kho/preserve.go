package kho

import (
	"syscall"

	"luomodel/kernel/fault"
	"luomodel/kernel/mm"
)

// This file ports the preservation and restore entry points of
// kernel/liveupdate/kexec_handover.c for folios, contiguous pages and
// kho_alloc_preserve() blocks.

// PreserveFolio ports kho_preserve_folio(): preserve the whole folio, with
// its order, across kexec. ENOMEM if the tracker cannot grow.
func (k *KHO) PreserveFolio(f *mm.Folio) error {
	if err := k.faults.Fail(fault.KHOPreserveFolio); err != nil {
		return err // the tracker could not grow
	}
	return k.track.preserveOrder(k.mm, f.PFN(), f.Order())
}

// UnpreserveFolio ports kho_unpreserve_folio(): undo PreserveFolio; the
// folio (PA and order) must match a preserved one exactly.
func (k *KHO) UnpreserveFolio(f *mm.Folio) {
	k.rep.WarnOn(!k.track.unpreserveOrder(f.PFN(), f.Order()),
		"kho: unpreserve of folio %#x order %d that was never preserved", uint64(f.PA()), f.Order())
}

// IsPreserved reports whether the block of 2^order pages at pa is marked
// for preservation in this kernel's tracker (a debugging and test aid; no
// upstream counterpart).
func (k *KHO) IsPreserved(pa mm.PhysAddr, order uint) bool {
	return k.track.isPreserved(pa.PFN(), order)
}

// PreservePages ports kho_preserve_pages(): preserve nrPages contiguous
// order-0 pages at pa, as the largest aligned blocks that fit. On failure
// what was marked is unmarked again.
func (k *KHO) PreservePages(pa mm.PhysAddr, nrPages uint64) error {
	if pa.PageOffset() != 0 || nrPages == 0 {
		return syscall.EINVAL
	}
	if err := k.faults.Fail(fault.KHOPreservePages); err != nil {
		return err // the tracker could not grow
	}
	start := pa.PFN()
	end := start + mm.PFN(nrPages)
	for pfn := start; pfn < end; {
		order := blockOrder(pfn, end)
		if err := k.track.preserveOrder(k.mm, pfn, order); err != nil {
			k.track.unpreserveRange(start, pfn)
			return err
		}
		pfn += 1 << order
	}
	return nil
}

// UnpreservePages ports kho_unpreserve_pages(): undo PreservePages with the
// same arguments.
func (k *KHO) UnpreservePages(pa mm.PhysAddr, nrPages uint64) {
	start := pa.PFN()
	k.track.unpreserveRange(start, start+mm.PFN(nrPages))
}

// restorePage ports the magic check of kho_restore_page(): pa must be the
// head of a preserved block not yet restored; its mark is cleared so that a
// second restore fails. It returns the block's order. Upstream
// WARN_ON_ONCE()s and returns NULL; here every failure files a WARN (a
// checker wants each one) and returns EINVAL.
//
// Requires: k.inMu not held.
func (k *KHO) restorePage(pa mm.PhysAddr) (uint, error) {
	k.inMu.Lock()
	order, ok := k.heads[pa.PFN()]
	if ok && pa.PageOffset() == 0 {
		delete(k.heads, pa.PFN())
	}
	k.inMu.Unlock()
	if k.rep.WarnOn(!ok || pa.PageOffset() != 0,
		"kho: restore of %#x, which is not a preserved block (never preserved, or already restored)", uint64(pa)) {
		return 0, syscall.EINVAL
	}
	return order, nil
}

// unrestorePage puts back the mark restorePage cleared, when the allocator
// refused the block; it keeps a failed restore from losing the block.
//
// Requires: k.inMu not held.
func (k *KHO) unrestorePage(pa mm.PhysAddr, order uint) {
	k.inMu.Lock()
	k.heads[pa.PFN()] = order
	k.inMu.Unlock()
}

// RestoreFolio ports kho_restore_folio(): in the next kernel, turn the
// preserved block at pa back into a folio of its preserved order, with one
// reference. EINVAL (and a WARN) if pa was not preserved or was already
// restored.
func (k *KHO) RestoreFolio(pa mm.PhysAddr) (*mm.Folio, error) {
	order, err := k.restorePage(pa)
	if err != nil {
		return nil, err
	}
	f, err := k.mm.ClaimFolio(pa, order)
	if k.rep.WarnOn(err != nil, "kho: cannot claim preserved folio %#x order %d: %v", uint64(pa), order, err) {
		k.unrestorePage(pa, order)
		return nil, syscall.EINVAL
	}
	return f, nil
}

// RestorePages ports kho_restore_pages(): restore nrPages contiguous
// order-0 pages preserved with PreservePages; each becomes an allocated
// order-0 page of this kernel. EINVAL (and a WARN) if a block was not
// preserved with the same split; the blocks before it stay restored, as
// upstream.
func (k *KHO) RestorePages(pa mm.PhysAddr, nrPages uint64) error {
	if pa.PageOffset() != 0 || nrPages == 0 {
		return syscall.EINVAL
	}
	start := pa.PFN()
	end := start + mm.PFN(nrPages)
	for pfn := start; pfn < end; {
		want := blockOrder(pfn, end)
		order, err := k.restorePage(pfn.Addr())
		if err != nil {
			return err
		}
		if k.rep.WarnOn(order != want, "kho: restore_pages of %#x: block preserved with order %d, expected %d",
			uint64(pfn.Addr()), order, want) {
			k.unrestorePage(pfn.Addr(), order)
			return syscall.EINVAL
		}
		for i := mm.PFN(0); i < 1<<order; i++ {
			if err := k.mm.Claim((pfn + i).Addr(), 0); err != nil {
				k.rep.WarnOn(true, "kho: cannot claim preserved page %#x: %v", uint64((pfn + i).Addr()), err)
				return syscall.EINVAL
			}
		}
		pfn += 1 << order
	}
	return nil
}

// AllocPreserve ports kho_alloc_preserve(): a zeroed, physically
// contiguous folio of 2^get_order(size) pages, preserved; it returns its
// PA. EINVAL for size 0, E2BIG above MAX_PAGE_ORDER, ENOMEM when memory
// runs out.
func (k *KHO) AllocPreserve(size uint64) (mm.PhysAddr, error) {
	if size == 0 {
		return 0, syscall.EINVAL
	}
	if size > uint64(mm.PageSize)<<MaxPageOrder {
		return 0, syscall.E2BIG
	}
	if err := k.faults.Fail(fault.KHOAllocPreserve); err != nil {
		return 0, err // folio_alloc() failed
	}
	f, err := k.mm.FolioAlloc(getOrder(size), true)
	if err != nil {
		return 0, syscall.ENOMEM
	}
	if err := k.PreserveFolio(f); err != nil {
		f.Put()
		return 0, err
	}
	return f.PA(), nil
}

// getOrder is get_order(): the smallest order whose block holds size bytes.
func getOrder(size uint64) uint {
	order := uint(0)
	for (uint64(mm.PageSize) << order) < size {
		order++
	}
	return order
}

// UnpreserveFree ports kho_unpreserve_free(): unpreserve and free a block
// of AllocPreserve; pa 0 is a no-op.
func (k *KHO) UnpreserveFree(pa mm.PhysAddr) {
	if pa == 0 {
		return
	}
	f := k.mm.PFNFolio(pa.PFN())
	if k.rep.WarnOn(f == nil || f.PA() != pa, "kho: unpreserve_free of %#x, which is not a folio", uint64(pa)) {
		return
	}
	k.UnpreserveFolio(f)
	f.Put()
}

// RestoreFree ports kho_restore_free(): in the next kernel, claim the
// block AllocPreserve preserved at pa and free it; pa 0 is a no-op. A
// block that was not preserved, or was already restored, is a WARN.
func (k *KHO) RestoreFree(pa mm.PhysAddr) {
	if pa == 0 {
		return
	}
	f, err := k.RestoreFolio(pa)
	if err != nil {
		return
	}
	f.Put()
}
