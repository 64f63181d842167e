package kho

import (
	"encoding/binary"
	"syscall"

	"luomodel/kernel/mm"
)

// This file ports the vmalloc preservation of
// kernel/liveupdate/kexec_handover.c (kho_preserve_vmalloc(),
// kho_unpreserve_vmalloc(), kho_restore_vmalloc()), plus VmArea, the
// little of mm/vmalloc.c they need: a buffer of scattered order-0 pages that
// reads and writes as one.

// VmArea is a vmalloc() area (struct vm_struct): Size bytes backed by
// scattered order-0 pages, addressed by offset.
type VmArea struct {
	mm    *mm.MM        // immutable
	pages []mm.PhysAddr // immutable: vm->pages, one per page
	size  uint64        // immutable: bytes usable, <= len(pages)*PageSize
}

// NewVmArea ports vzalloc(): size bytes of zeroed memory in order-0
// pages. EINVAL for size 0; ENOMEM when memory runs out (nothing is kept).
func NewVmArea(m *mm.MM, size uint64) (*VmArea, error) {
	if size == 0 {
		return nil, syscall.EINVAL
	}
	n := (size + mm.PageSize - 1) / mm.PageSize
	if n > m.RAM().Pages() {
		return nil, syscall.ENOMEM
	}
	a := &VmArea{mm: m, size: size, pages: make([]mm.PhysAddr, 0, n)}
	for range n {
		pa, err := m.AllocPages(0, true)
		if err != nil {
			a.Free()
			return nil, syscall.ENOMEM
		}
		a.pages = append(a.pages, pa)
	}
	return a, nil
}

// Free ports vfree(): free every page.
func (a *VmArea) Free() {
	for _, pa := range a.pages {
		a.mm.FreePages(pa, 0)
	}
	a.pages = nil
}

// Size is the size in bytes.
func (a *VmArea) Size() uint64 { return a.size }

// NrPages is vm->nr_pages.
func (a *VmArea) NrPages() int { return len(a.pages) }

// Page returns the PA of page i.
func (a *VmArea) Page(i int) mm.PhysAddr { return a.pages[i] }

// access applies fn to the page pieces of [off, off+n). EFAULT outside the
// area.
func (a *VmArea) access(off uint64, n int, fn func(pa mm.PhysAddr, lo, hi int) error) error {
	if off > a.size || uint64(n) > a.size-off {
		return syscall.EFAULT
	}
	done := 0
	for done < n {
		pos := off + uint64(done)
		in := pos % mm.PageSize
		k := min(n-done, int(mm.PageSize-in))
		if err := fn(a.pages[pos/mm.PageSize]+mm.PhysAddr(in), done, done+k); err != nil {
			return err
		}
		done += k
	}
	return nil
}

// ReadAt copies from the area at off into dst.
func (a *VmArea) ReadAt(off uint64, dst []byte) error {
	return a.access(off, len(dst), func(pa mm.PhysAddr, lo, hi int) error {
		return a.mm.Read(pa, dst[lo:hi])
	})
}

// WriteAt copies src into the area at off.
func (a *VmArea) WriteAt(off uint64, src []byte) error {
	return a.access(off, len(src), func(pa mm.PhysAddr, lo, hi int) error {
		return a.mm.Write(pa, src[lo:hi])
	})
}

// newVmallocChunk ports new_vmalloc_chunk(): a zeroed, preserved page
// linked after cur (if cur is not 0).
func (k *KHO) newVmallocChunk(cur mm.PhysAddr) (mm.PhysAddr, error) {
	pa, err := k.mm.AllocPages(0, true)
	if err != nil {
		return 0, syscall.ENOMEM
	}
	if err := k.PreservePages(pa, 1); err != nil {
		k.mm.FreePages(pa, 0)
		return 0, err
	}
	if cur != 0 {
		if err := writeU64(k.mm, cur+VmallocChunkOffNext, uint64(pa)); err != nil {
			k.UnpreservePages(pa, 1)
			k.mm.FreePages(pa, 0)
			return 0, err
		}
	}
	return pa, nil
}

func writeU64(m *mm.MM, pa mm.PhysAddr, v uint64) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return m.Write(pa, b[:])
}

// PreserveVmalloc ports kho_preserve_vmalloc(): preserve every page of a
// and a chain of kho_vmalloc_chunk pages listing them; it returns the
// descriptor to store in the caller's own serialized data. ENOMEM when
// memory runs out, with everything undone.
func (k *KHO) PreserveVmalloc(a *VmArea) (Vmalloc, error) {
	v := Vmalloc{Flags: VmallocFlagAlloc}
	chunk, err := k.newVmallocChunk(0)
	if err != nil {
		return Vmalloc{}, err
	}
	v.First = chunk
	idx := 0
	for _, pa := range a.pages {
		if err := k.PreservePages(pa, 1); err != nil {
			k.UnpreserveVmalloc(v)
			return Vmalloc{}, err
		}
		slot := chunk + VmallocChunkOffPhys + mm.PhysAddr(8*idx)
		if err := writeU64(k.mm, slot, uint64(pa)); err != nil {
			k.UnpreservePages(pa, 1)
			k.UnpreserveVmalloc(v)
			return Vmalloc{}, err
		}
		idx++
		if idx == VmallocChunkSize {
			next, err := k.newVmallocChunk(chunk)
			if err != nil {
				k.UnpreserveVmalloc(v)
				return Vmalloc{}, err
			}
			chunk, idx = next, 0
		}
	}
	v.TotalPages = uint32(len(a.pages))
	return v, nil
}

// readVmallocChunk reads the page of a kho_vmalloc_chunk at pa: its next
// link and its page addresses up to the first 0.
func readVmallocChunk(m *mm.MM, pa mm.PhysAddr) (next mm.PhysAddr, phys []mm.PhysAddr, err error) {
	page := make([]byte, mm.PageSize)
	if err := m.Read(pa, page); err != nil {
		return 0, nil, err
	}
	next = mm.PhysAddr(binary.LittleEndian.Uint64(page[VmallocChunkOffNext:]))
	for i := range VmallocChunkSize {
		p := binary.LittleEndian.Uint64(page[VmallocChunkOffPhys+8*i:])
		if p == 0 {
			break
		}
		phys = append(phys, mm.PhysAddr(p))
	}
	return next, phys, nil
}

// UnpreserveVmalloc ports kho_unpreserve_vmalloc(): unpreserve the pages
// listed by v and free its chunks. The area itself stays allocated.
func (k *KHO) UnpreserveVmalloc(v Vmalloc) {
	contig := uint64(1) << v.Order
	for chunk := v.First; chunk != 0; {
		next, phys, err := readVmallocChunk(k.mm, chunk)
		if k.rep.WarnOn(err != nil, "kho: unpreserve_vmalloc: unreadable chunk %#x", uint64(chunk)) {
			return
		}
		k.UnpreservePages(chunk, 1)
		for _, pa := range phys {
			k.UnpreservePages(pa, contig)
		}
		k.mm.FreePages(chunk, 0)
		chunk = next
	}
}

// RestoreVmalloc ports kho_restore_vmalloc(): in the next kernel, restore
// the pages v lists and return them as an area. Each chunk is restored
// before it is read, so a chain that loops or names memory that was not
// preserved fails the restore check; counts that disagree with
// v.TotalPages fail too. Errors are EINVAL (ENOMEM for the page array).
// Unlike upstream, which leaks them, pages restored before a failure are
// freed again.
func (k *KHO) RestoreVmalloc(v Vmalloc) (*VmArea, error) {
	if v.Flags&^vmallocFlagsKnown != 0 || v.Order > MaxPageOrder {
		return nil, syscall.EINVAL
	}
	total := uint64(v.TotalPages)
	if total > k.mm.RAM().Pages() {
		return nil, syscall.ENOMEM
	}
	contig := uint64(1) << v.Order
	a := &VmArea{mm: k.mm, size: total * mm.PageSize, pages: make([]mm.PhysAddr, 0, total)}
	fail := func(err error) (*VmArea, error) {
		a.Free()
		return nil, err
	}
	for chunk := v.First; chunk != 0; {
		if err := k.RestorePages(chunk, 1); err != nil {
			return fail(syscall.EINVAL)
		}
		next, phys, err := readVmallocChunk(k.mm, chunk)
		k.mm.FreePages(chunk, 0)
		if err != nil {
			return fail(syscall.EINVAL)
		}
		for _, pa := range phys {
			if uint64(len(a.pages))+contig > total {
				return fail(syscall.EINVAL)
			}
			if err := k.RestorePages(pa, contig); err != nil {
				return fail(syscall.EINVAL)
			}
			for j := range contig {
				a.pages = append(a.pages, pa+mm.PhysAddr(j*mm.PageSize))
			}
		}
		chunk = next
	}
	if uint64(len(a.pages)) != total {
		return fail(syscall.EINVAL)
	}
	return a, nil
}
