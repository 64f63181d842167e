package mm

import (
	"fmt"
	"runtime"
	"strings"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// This file is the KASAN-like checker of the page allocator (after
// mm/kasan/generic.c and mm/kasan/report.c): every access a kernel makes
// through MM must lie in allocated frames. The granule is a page: the
// allocator knows nothing finer.

// freeLogSize bounds how many recent frees keep their stack (KASAN keeps
// free stacks in a bounded stack depot and quarantine, too).
const freeLogSize = 1024

// freeStackDepth is how many frames of a free's stack the log keeps.
const freeStackDepth = 16

// freeRecord is one remembered free.
type freeRecord struct {
	pfn   PFN
	order uint
	seq   uint64
	task  int64
	at    bug.Trace
}

// freeLog is a ring of the most recent frees. Its owner guards it.
type freeLog struct {
	// recs grows by doubling up to freeLogSize, then is a ring: most
	// kernels (a checker boots thousands) free far fewer pages than that.
	recs []freeRecord
	seq  uint64 // number of frees recorded
}

// record remembers that the current task freed [pfn, pfn+2^order) here.
// Cost: a walk of the frame-pointer chain, and an allocation only while
// the log grows.
func (l *freeLog) record(pfn PFN, order uint) {
	if i := int(l.seq); i == len(l.recs) && i < freeLogSize {
		grown := make([]freeRecord, max(16, 2*i))
		copy(grown, l.recs)
		l.recs = grown
	}
	r := &l.recs[l.seq%uint64(len(l.recs))]
	l.seq++
	r.pfn, r.order, r.seq, r.task = pfn, order, l.seq, locking.CurrentTask()
	// From the caller of FreePages: skip record and FreePages itself.
	r.at.Capture(2, freeStackDepth)
}

// describe renders the newest remembered free covering pfn.
func (l *freeLog) describe(pfn PFN) string {
	var best *freeRecord
	for i := range l.recs {
		r := &l.recs[i]
		if r.seq == 0 || pfn < r.pfn || pfn >= r.pfn+PFN(1)<<r.order {
			continue
		}
		if best == nil || r.seq > best.seq {
			best = r
		}
	}
	if best == nil {
		return "the free of this page is too old to be remembered"
	}
	return fmt.Sprintf("Freed by task %d (pfn %#x, order %d):\n", best.task, best.pfn, best.order) +
		best.at.String()
}

// callerName names the function that called into package mm's memory
// accessors: the first frame, skip frames up, that is not a method of MM,
// RAM or Folio. It is the "in <function>" of a KASAN title.
func callerName(skip int) string {
	var pcs [16]uintptr
	n := runtime.Callers(skip+1, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	last := "?"
	for {
		f, more := frames.Next()
		name := f.Function
		if i := strings.LastIndex(name, "/"); i >= 0 {
			name = name[i+1:]
		}
		last = name
		if !isAccessorFrame(name) {
			return name
		}
		if !more {
			return last
		}
	}
}

// isAccessorFrame reports whether the function named name (package-
// qualified, e.g. "mm.(*MM).Read") is one of the accessors a KASAN title
// looks through.
func isAccessorFrame(name string) bool {
	for _, p := range []string{"mm.(*MM).", "mm.(*RAM).", "mm.(*Folio).", "mm.callerName"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// checkAccess ports mm/kasan/generic.c:kasan_check_range() for the page allocator: every byte
// of [pa, pa+n) must be in an allocated frame. Otherwise it files a KASAN
// report and returns EFAULT.
func (m *MM) checkAccess(pa PhysAddr, n uint64, write bool) error {
	if n == 0 {
		return nil
	}
	end := uint64(pa) + n
	if end < uint64(pa) || end > m.ram.Size() {
		bad := max(pa, PhysAddr(m.ram.Size()))
		m.badAccess(pa, n, write, bad, "wild-memory-access", "the address is beyond the end of RAM")
		return syscall.EFAULT
	}
	last := PhysAddr(end - 1).PFN()
	for pfn := pa.PFN(); pfn <= last; pfn++ {
		p := &m.pages[pfn]
		switch p.kind() {
		case pgHead, pgTail:
			continue
		case pgReserved:
			m.badAccess(pa, n, write, max(pa, pfn.Addr()), "wild-memory-access",
				fmt.Sprintf("the page (pfn %#x) is reserved: hand-over memory not claimed by this kernel, or frame 0", pfn))
		default:
			if p.everAlloc() {
				m.lock.Lock()
				freed := m.freed.describe(pfn)
				m.lock.Unlock()
				m.badAccess(pa, n, write, max(pa, pfn.Addr()), "use-after-free",
					fmt.Sprintf("the page (pfn %#x) is free\n%s", pfn, freed))
			} else {
				m.badAccess(pa, n, write, max(pa, pfn.Addr()), "wild-memory-access",
					fmt.Sprintf("the page (pfn %#x) is free and was never allocated", pfn))
			}
		}
		return syscall.EFAULT
	}
	return nil
}

// badAccess ports mm/kasan/report.c:kasan_report(): file a KindKASAN report for an access
// of n bytes at pa whose first bad byte is at bad.
func (m *MM) badAccess(pa PhysAddr, n uint64, write bool, bad PhysAddr, what, state string) {
	op := "Read"
	if write {
		op = "Write"
	}
	m.rep.File(&bug.Report{
		Kind:  bug.KindKASAN,
		Title: fmt.Sprintf("KASAN: %s in %s", what, callerName(2)),
		Detail: fmt.Sprintf("%s of size %d at addr %#x by task %d\nThe buggy address %#x: %s",
			op, n, pa, locking.CurrentTask(), bad, state),
	})
}
