package mm

import (
	"fmt"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
)

// FolioFlags ports the folio flags memfd_luo hands over (enum pageflags).
type FolioFlags uint32

// Folio flags.
const (
	// FolioUptodate ports PG_uptodate: the contents are valid.
	FolioUptodate FolioFlags = 1 << iota
	// FolioDirty ports PG_dirty: the contents differ from the backing store.
	FolioDirty
)

// Folio ports struct folio: 2^order physically contiguous pages handled as
// one, with a reference count. The Go object is per kernel; the bytes live
// in RAM at PA. A folio in a page cache records its mapping and index.
type Folio struct {
	mm    *MM      // immutable
	pa    PhysAddr // immutable
	order uint     // immutable

	flags atomic.Uint32 // FolioFlags; atomic like the page flag bit ops
	refs  atomic.Int64  // folio_ref_count(); the pages are freed at 0
	pins  atomic.Int64  // FOLL_PIN pins (each also holds a reference)

	// mapping and index are set when the folio enters a page cache and
	// cleared when it leaves; guarded by the mapping's i_rwsem.
	mapping *ShmemInode
	index   uint64
}

// FolioAlloc ports mm/page_alloc.c:folio_alloc(): a folio of 2^order pages with one
// reference; zeroed ports __GFP_ZERO. ENOMEM as AllocPages.
func (m *MM) FolioAlloc(order uint, zeroed bool) (*Folio, error) {
	pa, err := m.AllocPages(order, zeroed)
	if err != nil {
		return nil, err
	}
	return m.newFolio(pa, order), nil
}

// ClaimFolio claims the reserved block (pa, order) like Claim and returns
// it as a folio with one reference: the allocator half of
// kernel/liveupdate/kexec_handover.c:kho_restore_folio(). The folio's flags
// start clear.
func (m *MM) ClaimFolio(pa PhysAddr, order uint) (*Folio, error) {
	if err := m.Claim(pa, order); err != nil {
		return nil, err
	}
	return m.newFolio(pa, order), nil
}

// newFolio wraps the allocated block (pa, order) in a folio with one
// reference and registers it for PFNFolio.
func (m *MM) newFolio(pa PhysAddr, order uint) *Folio {
	f := &Folio{mm: m, pa: pa, order: order}
	f.refs.Store(1)
	m.lock.Lock()
	m.folios[pa.PFN()] = f
	m.lock.Unlock()
	return f
}

// PFNFolio ports include/linux/mm.h:pfn_folio() for folio heads: the live folio whose first
// page is pfn, or nil.
func (m *MM) PFNFolio(pfn PFN) *Folio {
	m.lock.Lock()
	defer m.lock.Unlock()
	return m.folios[pfn]
}

// Folios is the number of live folios (for leak checks).
func (m *MM) Folios() int {
	m.lock.Lock()
	defer m.lock.Unlock()
	return len(m.folios)
}

// PA is the physical address of the first page (PFN_PHYS(folio_pfn())).
func (f *Folio) PA() PhysAddr { return f.pa }

// PFN ports include/linux/mm.h:folio_pfn().
func (f *Folio) PFN() PFN { return f.pa.PFN() }

// Order ports include/linux/mm.h:folio_order().
func (f *Folio) Order() uint { return f.order }

// Size ports include/linux/mm.h:folio_size(): bytes.
func (f *Folio) Size() uint64 { return PageSize << f.order }

// NrPages ports include/linux/mm.h:folio_nr_pages().
func (f *Folio) NrPages() uint64 { return 1 << f.order }

// MM returns the allocator the folio belongs to.
func (f *Folio) MM() *MM { return f.mm }

// Refcount ports include/linux/page_ref.h:folio_ref_count().
func (f *Folio) Refcount() int64 { return f.refs.Load() }

// Pincount ports include/linux/mm.h:folio_maybe_dma_pinned()'s count: how many pins are held.
func (f *Folio) Pincount() int64 { return f.pins.Load() }

// Get ports include/linux/mm.h:folio_get(): take a reference. Getting a folio whose pages
// were freed is reported (KindUAF).
func (f *Folio) Get() *Folio {
	if f.refs.Add(1) <= 1 {
		f.mm.rep.File(&bug.Report{Kind: bug.KindUAF,
			Title: fmt.Sprintf("folio_get() on freed folio pfn %#x", f.PFN())})
	}
	return f
}

// Put ports include/linux/mm.h:folio_put(): drop a reference; the last one frees the pages.
// Dropping a reference that is not held is reported (KindUAF) and does
// nothing else.
func (f *Folio) Put() {
	n := f.refs.Add(-1)
	switch {
	case n > 0:
		return
	case n < 0:
		f.refs.Add(1)
		f.mm.rep.File(&bug.Report{Kind: bug.KindUAF,
			Title: fmt.Sprintf("folio_put() on freed folio pfn %#x", f.PFN())})
		return
	}
	f.mm.rep.WarnOn(f.pins.Load() != 0, "folio pfn %#x freed while pinned", f.PFN())
	f.mm.lock.Lock()
	if f.mm.folios[f.PFN()] == f {
		delete(f.mm.folios, f.PFN())
	}
	f.mm.lock.Unlock()
	f.mm.FreePages(f.pa, f.order)
}

// Pin ports the FOLL_PIN side of mm/gup.c:pin_user_pages() for one folio: a pin is
// a reference that also says "do not move or free me" (try_grab_folio()).
func (f *Folio) Pin() {
	f.Get()
	f.pins.Add(1)
}

// Unpin ports mm/gup.c:unpin_folio(). Unpinning a folio that is not pinned is a
// WARN and does nothing.
func (f *Folio) Unpin() {
	if f.mm.rep.WarnOn(f.pins.Add(-1) < 0, "unpin_folio() on unpinned folio pfn %#x", f.PFN()) {
		f.pins.Add(1)
		return
	}
	f.Put()
}

// Flags returns the folio's flags.
func (f *Folio) Flags() FolioFlags { return FolioFlags(f.flags.Load()) }

// TestDirty ports include/linux/page-flags.h:folio_test_dirty().
func (f *Folio) TestDirty() bool { return f.Flags()&FolioDirty != 0 }

// TestUptodate ports include/linux/page-flags.h:folio_test_uptodate().
func (f *Folio) TestUptodate() bool { return f.Flags()&FolioUptodate != 0 }

// MarkDirty ports mm/page-writeback.c:folio_mark_dirty().
func (f *Folio) MarkDirty() { f.flags.Or(uint32(FolioDirty)) }

// ClearDirty ports include/linux/page-flags.h:folio_clear_dirty().
func (f *Folio) ClearDirty() { f.flags.And(^uint32(FolioDirty)) }

// MarkUptodate ports include/linux/page-flags.h:folio_mark_uptodate().
func (f *Folio) MarkUptodate() { f.flags.Or(uint32(FolioUptodate)) }

// Mapping ports folio->mapping: the shmem inode whose page cache holds the
// folio, or nil. Requires that inode's lock (or a folio no one else sees).
func (f *Folio) Mapping() *ShmemInode { return f.mapping }

// Index ports folio->index: the page index in the mapping.
func (f *Folio) Index() uint64 { return f.index }

// Read copies from the folio's memory at byte offset off (checked access).
// An access beyond the folio is a WARN and fails with EFAULT.
func (f *Folio) Read(off uint64, dst []byte) error {
	if err := f.checkBounds(off, len(dst)); err != nil {
		return err
	}
	return f.mm.Read(f.pa+PhysAddr(off), dst)
}

// Write copies into the folio's memory at byte offset off, checked like
// Read.
func (f *Folio) Write(off uint64, src []byte) error {
	if err := f.checkBounds(off, len(src)); err != nil {
		return err
	}
	return f.mm.Write(f.pa+PhysAddr(off), src)
}

// checkBounds validates an access of n bytes at off inside the folio.
func (f *Folio) checkBounds(off uint64, n int) error {
	if f.mm.rep.WarnOn(off > f.Size() || uint64(n) > f.Size()-off,
		"%s: access of %d bytes at offset %#x is outside the folio", f, n, off) {
		return syscall.EFAULT
	}
	return nil
}

// zero ports folio_zero_range(): clear n bytes at byte offset off,
// checked like Read.
func (f *Folio) zero(off, n uint64) error {
	if err := f.checkBounds(off, int(n)); err != nil {
		return err
	}
	return f.mm.Zero(f.pa+PhysAddr(off), n)
}

// ZeroAll ports folio_zero_range(folio, 0, folio_size(folio)).
func (f *Folio) ZeroAll() error { return f.zero(0, f.Size()) }

// zeroOutside ports folio_zero_segments(folio, 0, off, off+n, size):
// clear the folio but for the n bytes at off.
func (f *Folio) zeroOutside(off, n uint64) error {
	if err := f.zero(0, off); err != nil {
		return err
	}
	return f.zero(off+n, f.Size()-off-n)
}

// String identifies the folio in reports.
func (f *Folio) String() string {
	return fmt.Sprintf("folio(pfn %#x, order %d)", f.PFN(), f.order)
}
