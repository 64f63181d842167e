package mm

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/locking"
)

// MaxOrder ports MAX_PAGE_ORDER: the largest block is 2^MaxOrder pages
// (4 MiB).
const MaxOrder = 10

// Range is a physically contiguous range.
type Range struct {
	Start PhysAddr
	Size  uint64
}

// End is the first address after r.
func (r Range) End() PhysAddr { return r.Start + PhysAddr(r.Size) }

// PageState is what the allocator knows about one page frame.
type PageState uint8

// Page states.
const (
	// PageFree: in the buddy allocator (never allocated, or freed).
	PageFree PageState = iota
	// PageAllocated: part of an allocated block (head or tail page).
	PageAllocated
	// PageReserved: not available to the allocator: handed over by the
	// previous kernel and not claimed yet, or the always-reserved frame 0.
	PageReserved
	// PageInvalid: beyond the end of RAM.
	PageInvalid
)

var pageStateNames = [...]string{
	PageFree:      "free",
	PageAllocated: "allocated",
	PageReserved:  "reserved",
	PageInvalid:   "beyond end of RAM",
}

// String names s for reports.
func (s PageState) String() string {
	if int(s) < len(pageStateNames) {
		return pageStateNames[s]
	}
	return fmt.Sprintf("PageState(%d)", s)
}

// Encoding of pageMeta.word: the low byte is a pgKind, the next byte the
// block order (for heads), and bit 16 says the frame was allocated at least
// once, which tells use-after-free from wild accesses.
const (
	pgKindMask   = 0xff
	pgOrderShift = 8
	pgEverAlloc  = 1 << 16
)

type pgKind uint32

const (
	pgFree     pgKind = iota // free, not the head of a free block
	pgBuddy                  // head of a free block (PageBuddy); order valid
	pgHead                   // head of an allocated block; order valid
	pgTail                   // allocated, not a head
	pgReserved               // reserved
)

// noPFN terminates free lists.
const noPFN = ^uint32(0)

// pageMeta ports the slice of struct page the allocator and the access
// checker need.
type pageMeta struct {
	// word is kind|order|flags. Written under MM.lock; read without it by
	// the access checker, hence atomic.
	word atomic.Uint32
	// next and prev link free-block heads into MM.free; guarded by MM.lock.
	next, prev uint32
}

func (p *pageMeta) kind() pgKind    { return pgKind(p.word.Load() & pgKindMask) }
func (p *pageMeta) order() uint     { return uint(p.word.Load()>>pgOrderShift) & 0xff }
func (p *pageMeta) everAlloc() bool { return p.word.Load()&pgEverAlloc != 0 }

// set sets kind and order, keeping the ever-allocated flag.
func (p *pageMeta) set(k pgKind, order uint) {
	ever := p.word.Load() & pgEverAlloc
	if k == pgHead || k == pgTail {
		ever = pgEverAlloc
	}
	p.word.Store(uint32(k) | uint32(order)<<pgOrderShift | ever)
}

// freeArea ports struct free_area: the free blocks of one order.
type freeArea struct {
	head   uint32 // first block's PFN, or noPFN
	nrFree uint64 // number of blocks
}

// Stats counts page frames by state.
type Stats struct {
	TotalPages     uint64 // frames of RAM
	FreePages      uint64 // in the buddy allocator
	AllocatedPages uint64 // handed out (including claimed reserved frames)
	ReservedPages  uint64 // reserved and not claimed (including frame 0)
}

// MM is one kernel's page allocator over RAM: a buddy allocator (ported
// from mm/page_alloc.c) plus a KASAN-like checker of every access a kernel
// makes through it. It is rebuilt from scratch at every boot; only RAM
// survives a kexec.
//
// Frame 0 is always reserved, so physical address 0 can mean "none", as
// NULL does in C.
//
// lock ports zone->lock. It is a spinlock in Linux: its critical sections
// never block or reach a scheduling point, so under the controlled
// scheduler it is never contended and a sync.Mutex is the right model.
type MM struct {
	ram    *RAM            // immutable
	rep    *bug.Reporter   // immutable
	faults *fault.Injector // immutable; nil: no fault injection

	lock  sync.Mutex
	pages []pageMeta             // slice immutable; entries described by pageMeta
	free  [MaxOrder + 1]freeArea // guarded by lock
	stats Stats                  // guarded by lock
	// freed remembers where recent frees happened, for reports.
	freed freeLog // guarded by lock
	// folios maps the head PFN of every live folio to it (pfn_folio()).
	folios map[PFN]*Folio // guarded by lock
}

// New builds the allocator of a booting kernel over ram; reserved ranges
// (memory handed over by the previous kernel) are not handed out until
// claimed (Claim, ClaimFolio) or released (FreeReserved, ReleaseReserved).
// Ranges are widened to whole pages and clipped to RAM.
func New(ram *RAM, rep *bug.Reporter, reserved []Range) *MM {
	return NewWithFaults(ram, rep, reserved, nil)
}

// NewWithFaults is New for a machine with a fault injector: AllocPages
// consults its fault.FolioAlloc site (fail_page_alloc).
func NewWithFaults(ram *RAM, rep *bug.Reporter, reserved []Range, inj *fault.Injector) *MM {
	n := ram.Pages()
	m := &MM{
		ram:    ram,
		rep:    rep,
		faults: inj,
		pages:  make([]pageMeta, n),
		folios: make(map[PFN]*Folio),
	}
	m.stats.TotalPages = n
	for o := range m.free {
		m.free[o].head = noPFN
	}
	// The reserved frames as sorted, merged intervals: frame 0 and every
	// frame of reserved.
	var res []interval[PFN]
	if n > 0 {
		res = frameSpans(reserved, ram.Size(), []interval[PFN]{{0, 1}})
	}
	for _, iv := range res {
		for pfn := iv.start; pfn < iv.end; pfn++ {
			m.pages[pfn].set(pgReserved, 0)
		}
		m.stats.ReservedPages += uint64(iv.end - iv.start)
	}

	// Hand every maximal run of unreserved frames, the gaps between the
	// reserved intervals, to the buddy allocator in the largest aligned
	// blocks that fit (memblock_free_all()). Not yet published: nobody
	// contends; held so that the free-list helpers' assertion holds at
	// boot too.
	m.lock.Lock()
	defer m.lock.Unlock()
	free := PFN(0)
	for _, iv := range append(res, interval[PFN]{PFN(n), PFN(n)}) {
		for pfn := free; pfn < iv.start; {
			order := uint(0)
			for order < MaxOrder {
				size := PFN(1) << (order + 1)
				if pfn&(size-1) != 0 || pfn+size > iv.start {
					break
				}
				order++
			}
			m.addToFreeListLocked(pfn, order)
			m.stats.FreePages += 1 << order
			pfn += 1 << order
		}
		free = iv.end
	}
	return m
}

// RAM returns the physical memory m manages.
func (m *MM) RAM() *RAM { return m.ram }

// Reporter returns the sink of m's KASAN reports.
func (m *MM) Reporter() *bug.Reporter { return m.rep }

// Stats returns the current page counts.
func (m *MM) Stats() Stats {
	m.lock.Lock()
	defer m.lock.Unlock()
	return m.stats
}

// PageState returns the allocation state of the frame containing pa.
func (m *MM) PageState(pa PhysAddr) PageState {
	pfn := pa.PFN()
	if uint64(pfn) >= uint64(len(m.pages)) {
		return PageInvalid
	}
	switch m.pages[pfn].kind() {
	case pgHead, pgTail:
		return PageAllocated
	case pgReserved:
		return PageReserved
	default:
		return PageFree
	}
}

// AllocatedBlocks returns the blocks handed out (AllocPages, and reserved
// blocks claimed), in address order: for the checkers' scan of leaked
// pages. No kernel code needs them.
func (m *MM) AllocatedBlocks() []Range {
	m.lock.Lock()
	defer m.lock.Unlock()
	var out []Range
	for pfn := 0; pfn < len(m.pages); {
		p := &m.pages[pfn]
		switch p.kind() {
		case pgHead:
			out = append(out, Range{Start: PFN(pfn).Addr(), Size: PageSize << p.order()})
			pfn += 1 << p.order()
		case pgBuddy:
			pfn += 1 << p.order() // a free block, skipped whole
		default:
			pfn++
		}
	}
	return out
}

// addToFreeListLocked ports mm/page_alloc.c:__add_to_free_list() plus set_buddy_order():
// pfn becomes the head of a free block of order. Requires m.lock.
func (m *MM) addToFreeListLocked(pfn PFN, order uint) {
	m.assertZoneLocked()
	p := &m.pages[pfn]
	p.set(pgBuddy, order)
	area := &m.free[order]
	p.prev = noPFN
	p.next = area.head
	if area.head != noPFN {
		m.pages[area.head].prev = uint32(pfn)
	}
	area.head = uint32(pfn)
	area.nrFree++
}

// delFromFreeListLocked ports mm/page_alloc.c:del_page_from_free_list(): pfn, the head of a
// free block of order, leaves its list and becomes a plain free frame.
func (m *MM) delFromFreeListLocked(pfn PFN, order uint) {
	m.assertZoneLocked()
	p := &m.pages[pfn]
	area := &m.free[order]
	if p.prev != noPFN {
		m.pages[p.prev].next = p.next
	} else {
		area.head = p.next
	}
	if p.next != noPFN {
		m.pages[p.next].prev = p.prev
	}
	p.next, p.prev = noPFN, noPFN
	p.set(pgFree, 0)
	area.nrFree--
}

// markAllocatedLocked makes [pfn, pfn+2^order) an allocated block.
func (m *MM) markAllocatedLocked(pfn PFN, order uint) {
	m.assertZoneLocked()
	m.pages[pfn].set(pgHead, order)
	for i := PFN(1); i < 1<<order; i++ {
		m.pages[pfn+i].set(pgTail, 0)
	}
}

// rmqueueSmallestLocked ports mm/page_alloc.c:__rmqueue_smallest() and expand(): take the
// smallest free block of at least order and split it down to order.
func (m *MM) rmqueueSmallestLocked(order uint) (PFN, bool) {
	m.assertZoneLocked()
	for cur := order; cur <= MaxOrder; cur++ {
		head := m.free[cur].head
		if head == noPFN {
			continue
		}
		pfn := PFN(head)
		m.delFromFreeListLocked(pfn, cur)
		for cur > order {
			cur--
			m.addToFreeListLocked(pfn+PFN(1)<<cur, cur)
		}
		return pfn, true
	}
	return 0, false
}

// AllocPages ports mm/page_alloc.c:alloc_pages(): 2^order contiguous, naturally aligned
// pages; zeroed ports __GFP_ZERO. Without it the pages hold whatever the
// frames held (zeros, PoisonByte, or an earlier owner's data). Fails with
// ENOMEM when no block is free, and for orders beyond MaxOrder.
func (m *MM) AllocPages(order uint, zeroed bool) (PhysAddr, error) {
	if order > MaxOrder {
		return 0, syscall.ENOMEM
	}
	if err := m.faults.Fail(fault.FolioAlloc); err != nil {
		return 0, err // should_fail_alloc_page()
	}
	m.lock.Lock()
	pfn, ok := m.rmqueueSmallestLocked(order)
	if ok {
		m.markAllocatedLocked(pfn, order)
		m.stats.FreePages -= 1 << order
		m.stats.AllocatedPages += 1 << order
	}
	m.lock.Unlock()
	if !ok {
		return 0, syscall.ENOMEM
	}
	if zeroed {
		m.ram.setRaw(pfn.Addr(), PageSize<<order, 0)
	}
	return pfn.Addr(), nil
}

// FreePages ports mm/page_alloc.c:__free_pages(): return an allocated block to the buddy
// allocator, merging it with free buddies. Freeing something that is not
// the head of an allocated block of that order (a double free, a tail
// page, a reserved or never-allocated frame, a wrong order) is reported as
// KASAN "double-free" or "invalid-free" and changes nothing.
//
// The frames' contents are discarded (as with init_on_free): a frame that
// is free costs no Go memory, and a kernel that reads it anyway is reported.
func (m *MM) FreePages(pa PhysAddr, order uint) {
	m.lock.Lock()
	if title, detail := m.checkFreeLocked(pa, order); title != "" {
		m.lock.Unlock()
		m.rep.File(&bug.Report{
			Kind:   bug.KindKASAN,
			Title:  fmt.Sprintf("KASAN: %s in %s", title, callerName(2)),
			Detail: detail,
		})
		return
	}
	pfn := pa.PFN()
	m.freed.record(pfn, order)
	m.stats.AllocatedPages -= 1 << order
	m.freeOneLocked(pfn, order)
	m.lock.Unlock()
}

// freeOneLocked ports mm/page_alloc.c:__free_one_page(): free [pfn, pfn+2^order), all of
// whose frames are allocated or reserved, and merge buddies.
func (m *MM) freeOneLocked(pfn PFN, order uint) {
	m.assertZoneLocked()
	for i := PFN(0); i < 1<<order; i++ {
		m.ram.drop(pfn + i)
		m.pages[pfn+i].set(pgFree, 0)
	}
	m.stats.FreePages += 1 << order
	n := PFN(len(m.pages))
	for order < MaxOrder {
		buddy := pfn ^ PFN(1)<<order
		if buddy+PFN(1)<<order > n {
			break
		}
		bp := &m.pages[buddy]
		if bp.kind() != pgBuddy || bp.order() != order {
			break
		}
		m.delFromFreeListLocked(buddy, order)
		pfn = min(pfn, buddy)
		order++
	}
	m.addToFreeListLocked(pfn, order)
}

// checkFreeLocked validates a free of (pa, order); it returns a KASAN bug
// title and detail, or "" if the free is valid.
func (m *MM) checkFreeLocked(pa PhysAddr, order uint) (string, string) {
	m.assertZoneLocked()
	pfn := pa.PFN()
	switch {
	case pa.PageOffset() != 0:
		return "invalid-free", fmt.Sprintf("free of unaligned address %#x (order %d)", pa, order)
	case order > MaxOrder || uint64(pfn) >= uint64(len(m.pages)) ||
		uint64(pfn)+1<<order > uint64(len(m.pages)):
		return "invalid-free", fmt.Sprintf("free of %#x order %d: beyond end of RAM (%#x)", pa, order, m.ram.Size())
	}
	p := &m.pages[pfn]
	switch p.kind() {
	case pgHead:
		if p.order() != order {
			return "invalid-free", fmt.Sprintf("free of %#x with order %d; it was allocated with order %d", pa, order, p.order())
		}
		return "", ""
	case pgTail:
		return "invalid-free", fmt.Sprintf("free of %#x, which is not the head of its allocation", pa)
	case pgReserved:
		return "invalid-free", fmt.Sprintf("free of %#x, which is reserved (not claimed)", pa)
	default:
		if p.everAlloc() {
			return "double-free", fmt.Sprintf("free of %#x order %d, which is already free\n%s", pa, order, m.freed.describe(pfn))
		}
		return "invalid-free", fmt.Sprintf("free of %#x, which was never allocated", pa)
	}
}

// Claim turns a reserved block into an allocated one: 2^order frames at
// pa, naturally aligned, all reserved. It is the allocator half of KHO's
// kho_restore_pages()/kho_restore_folio() (which, in Linux, hands the
// memblock-reserved struct pages to their new owner). EINVAL if pa is
// unaligned, out of range or any frame is not reserved; nothing changes
// then. Frame 0 cannot be claimed.
func (m *MM) Claim(pa PhysAddr, order uint) error {
	m.lock.Lock()
	defer m.lock.Unlock()
	pfn, err := m.checkReservedLocked(pa, order)
	if err != nil {
		return err
	}
	m.markAllocatedLocked(pfn, order)
	m.stats.ReservedPages -= 1 << order
	m.stats.AllocatedPages += 1 << order
	return nil
}

// checkReservedLocked validates that (pa, order) is a reserved block other
// than frame 0.
func (m *MM) checkReservedLocked(pa PhysAddr, order uint) (PFN, error) {
	m.assertZoneLocked()
	pfn := pa.PFN()
	if order > MaxOrder || pa.PageOffset() != 0 || pfn&(PFN(1)<<order-1) != 0 || pfn == 0 ||
		uint64(pfn)+1<<order > uint64(len(m.pages)) {
		return 0, syscall.EINVAL
	}
	for i := PFN(0); i < 1<<order; i++ {
		if m.pages[pfn+i].kind() != pgReserved {
			return 0, syscall.EINVAL
		}
	}
	return pfn, nil
}

// FreeReserved ports mm/page_alloc.c:free_reserved_area() for one block: give reserved
// frames that nobody will claim to the buddy allocator. EINVAL as for
// Claim.
func (m *MM) FreeReserved(pa PhysAddr, order uint) error {
	m.lock.Lock()
	defer m.lock.Unlock()
	pfn, err := m.checkReservedLocked(pa, order)
	if err != nil {
		return err
	}
	m.stats.ReservedPages -= 1 << order
	for i := PFN(0); i < 1<<order; i++ {
		m.freeOneLocked(pfn+i, 0)
	}
	return nil
}

// ReleaseReserved frees every reserved frame except frame 0 and returns
// how many it freed: the end of boot for hand-over memory nobody claimed.
func (m *MM) ReleaseReserved() uint64 {
	m.lock.Lock()
	defer m.lock.Unlock()
	var n uint64
	for pfn := PFN(1); uint64(pfn) < uint64(len(m.pages)); pfn++ {
		if m.pages[pfn].kind() == pgReserved {
			m.freeOneLocked(pfn, 0)
			n++
		}
	}
	m.stats.ReservedPages -= n
	return n
}

// assertZoneLocked is the instrumentation every *Locked function of the
// allocator runs: the caller must hold zone->lock (m.lock), which
// mm/page_alloc.c's free-list helpers rely on without asserting it.
// m.lock is a sync.Mutex that lockdep does not see, so the check is that
// someone holds it (TryLock fails): a call without the lock trips it
// unless another task happens to hold the lock at that moment.
func (m *MM) assertZoneLocked() {
	if !m.lock.TryLock() {
		return
	}
	m.lock.Unlock()
	m.rep.File(&bug.Report{
		Kind:   bug.KindLockdep,
		Title:  locking.TitleAssertHeld + " (zone->lock)",
		Detail: "a page allocator free-list helper ran without zone->lock",
		Stack:  bug.CaptureStack(2, 16).String(),
	})
}
