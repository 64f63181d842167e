package mm

import (
	"cmp"
	"slices"
	"sync/atomic"
	"syscall"
)

// Page geometry.
const (
	PageShift = 12
	PageSize  = 1 << PageShift
)

// PoisonByte is the pattern Scrub and Poison fill memory with: 0xaa, the
// PAGE_POISON value of mm/page_poison.c. A reader that sees 0xaaaa... where
// it expected hand-over data is reading memory the previous kernel did not
// preserve.
const PoisonByte = 0xaa

// PhysAddr is a physical address.
type PhysAddr uint64

// PFN is a page frame number.
type PFN uint64

// PFN returns the frame containing pa.
func (pa PhysAddr) PFN() PFN { return PFN(pa >> PageShift) }

// PageOffset is pa's offset inside its frame.
func (pa PhysAddr) PageOffset() uint64 { return uint64(pa) & (PageSize - 1) }

// Addr returns the first byte of the frame.
func (p PFN) Addr() PhysAddr { return PhysAddr(p) << PageShift }

// chunkShift sizes the second level of RAM's page table: 512 frames (2 MiB)
// per chunk, so an untouched 2 MiB costs one nil pointer.
const (
	chunkShift = 9
	chunkPages = 1 << chunkShift
)

// frame is the contents of one page frame.
type frame [PageSize]byte

// chunk is the second level of RAM's sparse page table.
type chunk struct {
	frames [chunkPages]atomic.Pointer[frame]
	// base holds, for each frame, the frame of a RAMImage that Restore
	// made it share (nil if none): while frames[i] is base[i], the frame
	// reads as the image and its first write copies it (copy on write).
	// Written only by Restore, which runs while no kernel runs; nil in a
	// chunk nothing was restored into.
	base *[chunkPages]*frame
}

// RAM is the machine's physical memory: bytes at physical addresses and
// nothing else, so it is the one thing that crosses a kexec.
//
// It is sparse: a frame costs Go memory only once something writes to it.
// A frame that holds no buffer reads as the background byte, which is 0 at
// cold boot and PoisonByte after the first Scrub. Frames are published with
// atomic pointers, so accesses to different frames never contend; accesses
// to the same bytes must be ordered by their users (as on a real machine).
//
// RAM does no checking beyond bounds: the page allocator (MM) checks the
// accesses of a running kernel, and the machine and early boot use the raw
// accessors directly.
type RAM struct {
	size   uint64                  // immutable: bytes, a whole number of pages
	chunks []atomic.Pointer[chunk] // immutable slice; entries set once
	// fill is what a frame without a buffer holds. Only Scrub changes it,
	// and Scrub runs while no kernel runs (the machine is between kernels).
	fill byte
	// touched counts frames that hold a buffer of their own (not the
	// zero frame, not a frame shared with a RAMImage).
	touched atomic.Int64
	// zero is a frame of zeros that every frame zeroed whole shares until
	// it is written (copy on write): the kernel zeroes what it allocates,
	// after the first Scrub the background is poison, and most of what is
	// zeroed (a session array sized for the limit) is never written.
	// Immutable: never written through.
	zero *frame
}

// NewRAM returns size bytes of physical memory, rounded down to whole pages.
// All of it reads as zero.
func NewRAM(size uint64) *RAM {
	size &^= PageSize - 1
	npages := size >> PageShift
	return &RAM{
		size:   size,
		chunks: make([]atomic.Pointer[chunk], (npages+chunkPages-1)/chunkPages),
		zero:   new(frame),
	}
}

// Size is the amount of physical memory in bytes.
func (r *RAM) Size() uint64 { return r.size }

// Pages is the number of page frames.
func (r *RAM) Pages() uint64 { return r.size >> PageShift }

// TouchedPages is the number of frames that hold their own buffer: the Go
// memory RAM costs is about TouchedPages()*PageSize.
func (r *RAM) TouchedPages() int64 { return r.touched.Load() }

// inRange reports whether [pa, pa+n) lies inside RAM.
func (r *RAM) inRange(pa PhysAddr, n uint64) bool {
	return uint64(pa) <= r.size && n <= r.size-uint64(pa)
}

// lookup returns pfn's buffer for reading (possibly the shared zero frame),
// or nil if it has none. pfn must be in range.
func (r *RAM) lookup(pfn PFN) *frame {
	c := r.chunks[pfn>>chunkShift].Load()
	if c == nil {
		return nil
	}
	return c.frames[pfn&(chunkPages-1)].Load()
}

// materialize returns pfn's buffer for writing, creating it (filled with
// the background byte, or a copy of the shared zero or image frame it
// reads) if it has none of its own. pfn must be in range.
func (r *RAM) materialize(pfn PFN) *frame { return r.materializeFor(pfn, false) }

// materializeFor is materialize for a writer that overwrites the whole
// frame if whole: a new buffer then skips the old contents' copy (an FDT
// or a block of LUO's is written a page at a time).
func (r *RAM) materializeFor(pfn PFN, whole bool) *frame {
	c := r.chunk(pfn)
	i := pfn & (chunkPages - 1)
	fp := &c.frames[i]
	for {
		old := fp.Load()
		if r.owned(c, i, old) {
			return old
		}
		fresh := new(frame)
		switch {
		case whole:
		case old == nil:
			if r.fill != 0 {
				fillBytes(fresh[:], r.fill)
			}
		case old != r.zero:
			*fresh = *old // an image frame
		}
		if fp.CompareAndSwap(old, fresh) {
			r.touched.Add(1)
			return fresh
		}
	}
}

// chunk returns the chunk of pfn, creating it if needed. pfn must be in
// range.
func (r *RAM) chunk(pfn PFN) *chunk {
	cp := &r.chunks[pfn>>chunkShift]
	c := cp.Load()
	if c == nil {
		fresh := new(chunk)
		if cp.CompareAndSwap(nil, fresh) {
			c = fresh
		} else {
			c = cp.Load()
		}
	}
	return c
}

// owned reports whether f, the buffer of frame i of c, is the frame's own
// (not nil, the zero frame or a shared image frame).
func (r *RAM) owned(c *chunk, i PFN, f *frame) bool {
	return f != nil && f != r.zero && (c.base == nil || f != c.base[i])
}

// share makes pfn read as zeros without a buffer of its own.
func (r *RAM) share(pfn PFN) {
	c := r.chunk(pfn)
	i := pfn & (chunkPages - 1)
	if old := c.frames[i].Swap(r.zero); r.owned(c, i, old) {
		r.touched.Add(-1)
	}
}

// drop releases pfn's buffer: the frame reads as the background byte again.
func (r *RAM) drop(pfn PFN) {
	c := r.chunks[pfn>>chunkShift].Load()
	if c == nil {
		return
	}
	i := pfn & (chunkPages - 1)
	if old := c.frames[i].Swap(nil); r.owned(c, i, old) {
		r.touched.Add(-1)
	}
}

// install makes pfn share the image frame f (copy on write). Like Restore,
// it must run while no kernel accesses the RAM.
func (r *RAM) install(pfn PFN, f *frame) {
	c := r.chunk(pfn)
	i := pfn & (chunkPages - 1)
	if old := c.frames[i].Swap(f); r.owned(c, i, old) {
		r.touched.Add(-1)
	}
	if c.base == nil {
		c.base = new([chunkPages]*frame)
	}
	c.base[i] = f
}

// fillBytes sets every byte of b to v.
func fillBytes(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for n := 1; n < len(b); n *= 2 {
		copy(b[n:], b[:n])
	}
}

// readRaw copies from [pa, pa+len(dst)), which must be in range.
func (r *RAM) readRaw(pa PhysAddr, dst []byte) {
	for len(dst) > 0 {
		off := pa.PageOffset()
		n := min(uint64(len(dst)), PageSize-off)
		if f := r.lookup(pa.PFN()); f != nil {
			copy(dst[:n], f[off:off+n])
		} else {
			fillBytes(dst[:n], r.fill)
		}
		dst = dst[n:]
		pa += PhysAddr(n)
	}
}

// writeRaw copies src to [pa, pa+len(src)), which must be in range.
func (r *RAM) writeRaw(pa PhysAddr, src []byte) {
	for len(src) > 0 {
		off := pa.PageOffset()
		n := min(uint64(len(src)), PageSize-off)
		f := r.materializeFor(pa.PFN(), n == PageSize)
		copy(f[off:off+n], src[:n])
		src = src[n:]
		pa += PhysAddr(n)
	}
}

// setRaw sets [pa, pa+n), which must be in range, to v. Whole frames that
// end up equal to the background are dropped instead of written, so zeroing
// freshly allocated memory at cold boot costs no Go memory.
func (r *RAM) setRaw(pa PhysAddr, n uint64, v byte) {
	for n > 0 {
		off := pa.PageOffset()
		k := min(n, PageSize-off)
		switch f := r.lookup(pa.PFN()); {
		case k == PageSize && v == r.fill:
			r.drop(pa.PFN())
		case k == PageSize && v == 0:
			r.share(pa.PFN())
		case v == r.fill && f == nil, v == 0 && f == r.zero:
			// Already reads as v.
		default:
			f := r.materialize(pa.PFN())
			fillBytes(f[off:off+k], v)
		}
		n -= k
		pa += PhysAddr(k)
	}
}

// ReadRaw copies physical memory at pa into dst without any allocation
// check: the machine's and early boot's view of memory. An access that
// reaches beyond RAM fails with EFAULT and copies nothing.
func (r *RAM) ReadRaw(pa PhysAddr, dst []byte) error {
	if !r.inRange(pa, uint64(len(dst))) {
		return syscall.EFAULT
	}
	r.readRaw(pa, dst)
	return nil
}

// WriteRaw copies src into physical memory at pa without any allocation
// check. An access that reaches beyond RAM fails with EFAULT and writes
// nothing.
func (r *RAM) WriteRaw(pa PhysAddr, src []byte) error {
	if !r.inRange(pa, uint64(len(src))) {
		return syscall.EFAULT
	}
	r.writeRaw(pa, src)
	return nil
}

// XorRaw XORs mask into physical memory at pa, as ReadRaw and WriteRaw
// see it: how fuzzers corrupt a hand-over in place. EFAULT beyond RAM,
// with nothing changed.
func (r *RAM) XorRaw(pa PhysAddr, mask []byte) error {
	b := make([]byte, len(mask))
	if err := r.ReadRaw(pa, b); err != nil {
		return err
	}
	for i := range b {
		b[i] ^= mask[i]
	}
	return r.WriteRaw(pa, b)
}

// RAMImage is a copy of some ranges of RAM, e.g. what survives a kexec,
// so that a harness can boot many kernels from one hand-over. Its frames
// are immutable: every RAM it is restored into shares the frames the
// ranges cover whole, copying one only when it is written.
type RAMImage struct {
	keep   []Range
	frames []imageFrame // frames the ranges cover whole
	pieces []imagePiece // the bytes of frames the ranges cover in part
}

// imageFrame is a whole frame of a RAMImage.
type imageFrame struct {
	pfn PFN
	f   *frame
}

// imagePiece is part of a frame of a RAMImage.
type imagePiece struct {
	pa PhysAddr
	b  []byte
}

// Save copies the ranges of keep; EFAULT if one reaches beyond RAM.
func (r *RAM) Save(keep []Range) (*RAMImage, error) {
	img := &RAMImage{keep: append([]Range(nil), keep...)}
	for _, k := range keep {
		if !r.inRange(k.Start, k.Size) {
			return nil, syscall.EFAULT
		}
	}
	// Byte intervals of keep, sorted and merged, so that a frame is either
	// covered whole or in pieces that are saved as bytes.
	spans := make([]interval[uint64], 0, len(keep))
	for _, k := range keep {
		if k.Size > 0 {
			spans = append(spans, interval[uint64]{uint64(k.Start), uint64(k.Start) + k.Size})
		}
	}
	merged := mergeIntervals(spans)
	piece := func(start, end uint64) {
		if start < end {
			b := make([]byte, end-start)
			r.readRaw(PhysAddr(start), b)
			img.pieces = append(img.pieces, imagePiece{PhysAddr(start), b})
		}
	}
	for _, s := range merged {
		first := (s.start + PageSize - 1) &^ (PageSize - 1) // first whole frame
		last := s.end &^ (PageSize - 1)                     // end of the last whole frame
		if first >= last {
			piece(s.start, s.end)
			continue
		}
		piece(s.start, first)
		for pa := first; pa < last; pa += PageSize {
			f := new(frame)
			r.readRaw(PhysAddr(pa), f[:])
			img.frames = append(img.frames, imageFrame{PhysAddr(pa).PFN(), f})
		}
		piece(last, s.end)
	}
	return img, nil
}

// Restore writes img back and scrubs every frame outside it: RAM as a
// kexec that preserved exactly img's ranges leaves it. The frames img
// covers whole are shared with it until written. Like Scrub, it must run
// while no kernel accesses the RAM.
func (r *RAM) Restore(img *RAMImage) {
	for _, p := range img.pieces {
		r.writeRaw(p.pa, p.b)
	}
	for _, f := range img.frames {
		r.install(f.pfn, f.f)
	}
	r.Scrub(img.keep)
}

// Poison fills frame pfn with PoisonByte; EFAULT beyond RAM.
func (r *RAM) Poison(pfn PFN) error {
	if uint64(pfn) >= r.Pages() {
		return syscall.EFAULT
	}
	r.setRaw(pfn.Addr(), PageSize, PoisonByte)
	return nil
}

// Scrub poisons every frame that no range of keep covers (partially covered
// frames are kept whole): what the machine does at kexec to everything the
// outgoing kernel did not preserve, so that a new kernel relying on
// unpreserved memory reads PoisonByte instead of stale data. It must run
// while no kernel accesses the RAM. Kept frames keep their contents;
// scrubbed frames give their Go memory back.
func (r *RAM) Scrub(keep []Range) {
	merged := frameSpans(keep, r.size, nil)

	// Kept frames without a buffer read as the old background: give them
	// one before the background changes.
	if r.fill != PoisonByte {
		for _, s := range merged {
			for pfn := s.start; pfn < s.end; pfn++ {
				if r.lookup(pfn) == nil {
					r.materialize(pfn)
				}
			}
		}
	}
	// Frames in increasing order against the sorted spans: next is the
	// first span that does not end at or before the frame.
	next := 0
	for ci := range r.chunks {
		c := r.chunks[ci].Load()
		if c == nil {
			continue
		}
		for fi := range c.frames {
			if c.frames[fi].Load() == nil {
				continue
			}
			pfn := PFN(ci)<<chunkShift | PFN(fi)
			for next < len(merged) && merged[next].end <= pfn {
				next++
			}
			if next == len(merged) || merged[next].start > pfn {
				r.drop(pfn)
			}
		}
	}
	r.fill = PoisonByte
}

// interval is the half-open interval [start, end).
type interval[T cmp.Ordered] struct{ start, end T }

// frameSpans returns the frames of ranges, widened to whole frames and
// clipped to size bytes of RAM (empty ranges and ranges past it dropped),
// with spans, as sorted, merged [first, last) intervals.
func frameSpans(ranges []Range, size uint64, spans []interval[PFN]) []interval[PFN] {
	spans = slices.Grow(spans, len(ranges))
	for _, r := range ranges {
		if r.Size == 0 || uint64(r.Start) >= size {
			continue
		}
		end := min(uint64(r.Start)+r.Size, size)
		if end < uint64(r.Start) { // overflow
			end = size
		}
		spans = append(spans, interval[PFN]{r.Start.PFN(), PhysAddr(end + PageSize - 1).PFN()})
	}
	return mergeIntervals(spans)
}

// mergeIntervals sorts spans by start and merges those that overlap or
// touch, in place: Save and Scrub walk the ranges a kexec keeps this way,
// in bytes and in frames.
func mergeIntervals[T cmp.Ordered](spans []interval[T]) []interval[T] {
	slices.SortFunc(spans, func(a, b interval[T]) int { return cmp.Compare(a.start, b.start) })
	merged := spans[:0]
	for _, s := range spans {
		if n := len(merged); n > 0 && s.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}
