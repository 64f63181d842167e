package memfdluo

import (
	"encoding/binary"
	"fmt"

	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
)

// This file is not a port: it is the checker's view of a preserved
// memfd's folio array as a kernel left it in physical memory for the next
// one, found from the bytes alone, so that a hostile hand-over can rewrite
// an entry in place (proptest's HostileFolioNotPreserved), as a buggy or
// malicious previous kernel would have left it.

// HandoverFolios locates the folio array of the struct memfd_luo_ser at a
// file's serialized_data.
type HandoverFolios struct {
	mem liveupdate.RawMemory
	// Ser is the struct memfd_luo_ser.
	Ser Ser
	// pages are the array's pages, in order, from its kho_vmalloc
	// chunks.
	pages []mm.PhysAddr
}

// LocateFolios reads the struct memfd_luo_ser at serPA and the chain of
// kho_vmalloc chunks that lists its folio array's pages.
func LocateFolios(mem liveupdate.RawMemory, serPA mm.PhysAddr) (*HandoverFolios, error) {
	var b [SerSize]byte
	if err := mem.ReadRaw(serPA, b[:]); err != nil {
		return nil, err
	}
	h := &HandoverFolios{mem: mem, Ser: DecodeSer(b[:])}
	page := make([]byte, mm.PageSize)
	contig := mm.PhysAddr(1) << h.Ser.Folios.Order
	for chunk, n := h.Ser.Folios.First, 0; chunk != 0; n++ {
		if n > int(h.Ser.Folios.TotalPages) {
			return nil, fmt.Errorf("memfd folio array: chunk chain of %#x loops", uint64(h.Ser.Folios.First))
		}
		if err := mem.ReadRaw(chunk, page); err != nil {
			return nil, err
		}
		for i := range kho.VmallocChunkSize {
			pa := mm.PhysAddr(binary.LittleEndian.Uint64(page[kho.VmallocChunkOffPhys+8*i:]))
			if pa == 0 {
				break
			}
			for j := range contig {
				h.pages = append(h.pages, pa+j*mm.PageSize)
			}
		}
		chunk = mm.PhysAddr(binary.LittleEndian.Uint64(page[kho.VmallocChunkOffNext:]))
	}
	return h, nil
}

// entryPA is the PA of entry i (entries do not straddle pages).
func (h *HandoverFolios) entryPA(i uint64) (mm.PhysAddr, error) {
	off := i * FolioSerSize
	if i >= h.Ser.NrFolios || off/mm.PageSize >= uint64(len(h.pages)) {
		return 0, fmt.Errorf("memfd folio array: no entry %d (%d folios)", i, h.Ser.NrFolios)
	}
	return h.pages[off/mm.PageSize] + mm.PhysAddr(off%mm.PageSize), nil
}

// Folio reads entry i.
func (h *HandoverFolios) Folio(i uint64) (FolioSer, error) {
	pa, err := h.entryPA(i)
	if err != nil {
		return FolioSer{}, err
	}
	var b [FolioSerSize]byte
	if err := h.mem.ReadRaw(pa, b[:]); err != nil {
		return FolioSer{}, err
	}
	return DecodeFolioSer(b[:]), nil
}

// Capacity is how many entries the array's pages hold.
func (h *HandoverFolios) Capacity() uint64 { return uint64(len(h.pages)) * mm.PageSize / FolioSerSize }

// SetNrFolios rewrites nr_folios of the struct memfd_luo_ser at serPA
// (the one LocateFolios read).
func (h *HandoverFolios) SetNrFolios(serPA mm.PhysAddr, nr uint64) error {
	h.Ser.NrFolios = nr
	var b [SerSize]byte
	h.Ser.Encode(b[:])
	return h.mem.WriteRaw(serPA, b[:])
}

// SetFolio writes entry i.
func (h *HandoverFolios) SetFolio(i uint64, f FolioSer) error {
	pa, err := h.entryPA(i)
	if err != nil {
		return err
	}
	var b [FolioSerSize]byte
	f.Encode(b[:])
	return h.mem.WriteRaw(pa, b[:])
}
