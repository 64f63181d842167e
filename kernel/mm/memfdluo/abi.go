package memfdluo

import (
	"encoding/binary"

	"luomodel/kernel/kho"
	"luomodel/kernel/mm"
)

// This file ports include/linux/kho/abi/memfd.h: the hand-over format of a
// preserved memfd. Both structs are __packed and little-endian in
// simulated physical memory; the Go types are their decoded form. A change
// to either layout requires a new Compatible string.

// Compatible is MEMFD_LUO_FH_COMPATIBLE.
const Compatible = "memfd-v1"

// Folio flags (MEMFD_LUO_FOLIO_DIRTY, MEMFD_LUO_FOLIO_UPTODATE).
const (
	// FolioDirty marks a folio that holds data written by the user.
	FolioDirty = 1 << 0
	// FolioUptodate marks a folio that has been zeroed or filled.
	FolioUptodate = 1 << 1
)

// struct memfd_luo_folio_ser: {u64 pfn:52; u64 flags:12} @0, u64 index @8.
const (
	FolioSerOffPFNFlags = 0
	FolioSerOffIndex    = 8
	FolioSerSize        = 16

	folioPFNBits   = 52
	folioFlagsBits = 12
	folioPFNMask   = 1<<folioPFNBits - 1
	folioFlagsMask = 1<<folioFlagsBits - 1
)

// struct memfd_luo_ser: pos u64 @0, size u64 @8, nr_folios u64 @16,
// folios struct kho_vmalloc @24.
const (
	SerOffPos      = 0
	SerOffSize     = 8
	SerOffNrFolios = 16
	SerOffFolios   = 24
	SerSize        = SerOffFolios + kho.VmallocSize
)

// FolioSer is struct memfd_luo_folio_ser: one folio of the file.
type FolioSer struct {
	// PFN is the folio's first page frame (52 bits); 0 marks an unused slot.
	PFN mm.PFN
	// Flags are FolioDirty and FolioUptodate (12 bits).
	Flags uint16
	// Index is the folio's page offset in the file (pgoff_t).
	Index uint64
}

// Encode writes f in its 16-byte form into b. Bits beyond the bitfields'
// widths are dropped, as C's bitfield assignment does.
func (f FolioSer) Encode(b []byte) {
	_ = b[FolioSerSize-1]
	w := uint64(f.PFN)&folioPFNMask | (uint64(f.Flags)&folioFlagsMask)<<folioPFNBits
	binary.LittleEndian.PutUint64(b[FolioSerOffPFNFlags:], w)
	binary.LittleEndian.PutUint64(b[FolioSerOffIndex:], f.Index)
}

// DecodeFolioSer reads a struct memfd_luo_folio_ser from b.
func DecodeFolioSer(b []byte) FolioSer {
	_ = b[FolioSerSize-1]
	w := binary.LittleEndian.Uint64(b[FolioSerOffPFNFlags:])
	return FolioSer{
		PFN:   mm.PFN(w & folioPFNMask),
		Flags: uint16(w >> folioPFNBits & folioFlagsMask),
		Index: binary.LittleEndian.Uint64(b[FolioSerOffIndex:]),
	}
}

// Ser is struct memfd_luo_ser: the main serialization structure of one
// preserved memfd; serialized_data is its physical address.
type Ser struct {
	// Pos is the file position (f_pos) at preserve, updated at freeze.
	Pos uint64
	// Size is i_size.
	Size uint64
	// NrFolios is the number of entries in the Folios array.
	NrFolios uint64
	// Folios describes the preserved vmalloc array of FolioSer entries.
	Folios kho.Vmalloc
}

// Encode writes s in its 40-byte form into b.
func (s Ser) Encode(b []byte) {
	_ = b[SerSize-1]
	binary.LittleEndian.PutUint64(b[SerOffPos:], s.Pos)
	binary.LittleEndian.PutUint64(b[SerOffSize:], s.Size)
	binary.LittleEndian.PutUint64(b[SerOffNrFolios:], s.NrFolios)
	s.Folios.Encode(b[SerOffFolios:])
}

// DecodeSer reads a struct memfd_luo_ser from b. It does not validate:
// Retrieve and Finish bound NrFolios and KHO validates the addresses.
func DecodeSer(b []byte) Ser {
	_ = b[SerSize-1]
	return Ser{
		Pos:      binary.LittleEndian.Uint64(b[SerOffPos:]),
		Size:     binary.LittleEndian.Uint64(b[SerOffSize:]),
		NrFolios: binary.LittleEndian.Uint64(b[SerOffNrFolios:]),
		Folios:   kho.DecodeVmalloc(b[SerOffFolios:]),
	}
}
