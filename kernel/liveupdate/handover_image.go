package liveupdate

import (
	"encoding/binary"
	"fmt"

	"luomodel/kernel/kho"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/mm"
)

// This file is not a port: it is the checker's view of the LUO data a
// kernel left in physical memory for the next one, found from the bytes
// alone, and the structured ways to corrupt them in place, as a buggy or
// malicious previous kernel would have left them. The campaign's hostile
// hand-overs (proptest) and the hand-over tests build their corruptions
// with it.

// RawMemory is physical memory read and written without allocation
// checks (*mm.RAM).
type RawMemory interface {
	ReadRaw(pa mm.PhysAddr, dst []byte) error
	WriteRaw(pa mm.PhysAddr, src []byte) error
}

// HandoverImage locates the outgoing LUO data of a prepared kexec.
type HandoverImage struct {
	mem RawMemory
	// Root is the KHO root FDT (the hand-over descriptor).
	Root mm.PhysAddr
	// subtreeName is the PA of the "LUO" node's name in the root FDT.
	subtreeName mm.PhysAddr
	// FDT is the LUO FDT; Sessions the luo_session_header_ser block.
	FDT      mm.PhysAddr
	Sessions mm.PhysAddr
}

// LocateHandover finds the LUO subtree of the KHO hand-over whose root FDT
// is at root, and the session block its "luo-session" node names.
func LocateHandover(mem RawMemory, root mm.PhysAddr) (*HandoverImage, error) {
	blob := make([]byte, mm.PageSize)
	if err := mem.ReadRaw(root, blob); err != nil {
		return nil, err
	}
	f, err := fdt.Open(blob)
	if err != nil {
		return nil, fmt.Errorf("KHO root FDT: %w", err)
	}
	off, err := f.SubnodeOffset(0, FDTKHOEntryName)
	if err != nil {
		return nil, fmt.Errorf("no %q subtree: %w", FDTKHOEntryName, err)
	}
	v, err := f.GetProp(off, kho.PropSubFDT)
	if err != nil || len(v) != 8 {
		return nil, fmt.Errorf("%q subtree has no %q: %v", FDTKHOEntryName, kho.PropSubFDT, err)
	}
	img := &HandoverImage{
		mem:         mem,
		Root:        root,
		subtreeName: root + mm.PhysAddr(f.Header().OffDtStruct) + mm.PhysAddr(off+fdt.TagSize),
		FDT:         mm.PhysAddr(binary.LittleEndian.Uint64(v)),
	}
	lblob := make([]byte, FDTSize)
	if err := mem.ReadRaw(img.FDT, lblob); err != nil {
		return nil, err
	}
	lf, err := fdt.Open(lblob)
	if err != nil {
		return nil, fmt.Errorf("LUO FDT: %w", err)
	}
	soff, err := lf.SubnodeOffset(0, FDTSessionNodeName)
	if err != nil {
		return nil, fmt.Errorf("LUO FDT: no %q: %w", FDTSessionNodeName, err)
	}
	p, err := lf.GetProp(soff, FDTSessionHeader)
	if err != nil || len(p) != 8 {
		return nil, fmt.Errorf("LUO FDT: no %q: %v", FDTSessionHeader, err)
	}
	img.Sessions = mm.PhysAddr(binary.LittleEndian.Uint64(p))
	return img, nil
}

// Count reads the session block's count.
func (h *HandoverImage) Count() (uint64, error) {
	var b [SessionHeaderSerSize]byte
	if err := h.mem.ReadRaw(h.Sessions, b[:]); err != nil {
		return 0, err
	}
	return DecodeSessionHeaderSer(b[:]).Count, nil
}

// SetCount writes the session block's count.
func (h *HandoverImage) SetCount(n uint64) error {
	var b [SessionHeaderSerSize]byte
	(&SessionHeaderSer{Count: n}).Encode(b[:])
	return h.mem.WriteRaw(h.Sessions, b[:])
}

// SessionPA is the PA of session entry i.
func (h *HandoverImage) SessionPA(i int) mm.PhysAddr { return sessionSerPA(h.Sessions, i) }

// Session reads session entry i.
func (h *HandoverImage) Session(i int) (SessionSer, error) {
	var b [SessionSerSize]byte
	if err := h.mem.ReadRaw(h.SessionPA(i), b[:]); err != nil {
		return SessionSer{}, err
	}
	return DecodeSessionSer(b[:]), nil
}

// SetSession writes session entry i.
func (h *HandoverImage) SetSession(i int, s SessionSer) error {
	var b [SessionSerSize]byte
	s.Encode(b[:])
	return h.mem.WriteRaw(h.SessionPA(i), b[:])
}

// SetSessionName writes the name field of session entry i: name, then
// NULs, truncated to the field (64 bytes of name leave it unterminated).
func (h *HandoverImage) SetSessionName(i int, name string) error {
	s, err := h.Session(i)
	if err != nil {
		return err
	}
	s.Name = [SessionNameLength]byte{}
	copy(s.Name[:], name)
	return h.SetSession(i, s)
}

// filePA is the PA of entry j of session i's file array.
func (h *HandoverImage) filePA(i, j int) (mm.PhysAddr, error) {
	s, err := h.Session(i)
	if err != nil {
		return 0, err
	}
	if s.FileSetSer.Files == 0 {
		return 0, fmt.Errorf("session entry %d has no file array", i)
	}
	return mm.PhysAddr(s.FileSetSer.Files) + mm.PhysAddr(j*FileSerSize), nil
}

// File reads entry j of session i's file array.
func (h *HandoverImage) File(i, j int) (FileSer, error) {
	pa, err := h.filePA(i, j)
	if err != nil {
		return FileSer{}, err
	}
	var b [FileSerSize]byte
	if err := h.mem.ReadRaw(pa, b[:]); err != nil {
		return FileSer{}, err
	}
	return DecodeFileSer(b[:]), nil
}

// SetFile writes entry j of session i's file array.
func (h *HandoverImage) SetFile(i, j int, f FileSer) error {
	pa, err := h.filePA(i, j)
	if err != nil {
		return err
	}
	var b [FileSerSize]byte
	f.Encode(b[:])
	return h.mem.WriteRaw(pa, b[:])
}

// HideSubtree renames the root FDT's "LUO" node in place (to "LUX"): the
// next kernel finds no LUO subtree, as if the previous one never
// registered it.
func (h *HandoverImage) HideSubtree() error {
	return h.mem.WriteRaw(h.subtreeName, []byte("LUX"))
}

// TruncateFDT rewrites the LUO FDT header's totalsize to size, cutting
// the tree short.
func (h *HandoverImage) TruncateFDT(size uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], size)
	return h.mem.WriteRaw(h.FDT+4, b[:]) // fdt_header.totalsize
}
