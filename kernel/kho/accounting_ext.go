package kho

import (
	"maps"
	"math/bits"
	"slices"

	"luomodel/kernel/mm"
)

// This file is not a port: it is the checker's accounting of preserved
// memory (issue 8), so that the end of every run can show that each block
// was handed over, freed, or is a documented leak.

// Accounting is where the preserved blocks of one kernel stand.
type Accounting struct {
	// Preserved are the outgoing blocks marked for hand-over now (the
	// tracker's bits), sorted by address.
	Preserved []Block
	// Restored are the incoming blocks a user restored (claimed), and
	// Unrestored those still reserved, both sorted by address.
	Restored   []Block
	Unrestored []Block
	// RootFDT is the PA of this kernel's outgoing root FDT and InRootFDT
	// that of the incoming one (0 if none). The incoming root FDT is
	// preserved and never restored: it stays reserved for the kernel's
	// lifetime, by design.
	RootFDT, InRootFDT mm.PhysAddr
}

// Account returns the kernel's preserved-memory accounting.
//
// Requires: no KHO lock held.
func (k *KHO) Account() Accounting {
	a := Accounting{RootFDT: k.fdtPA}
	k.track.mu.Lock()
	for _, order := range slices.Sorted(maps.Keys(k.track.orders)) {
		phys := k.track.orders[order]
		for _, idx := range slices.Sorted(maps.Keys(phys.bits)) {
			for w, word := range phys.bits[idx].words {
				for ; word != 0; word &= word - 1 {
					bit := bits.TrailingZeros64(word)
					high := idx*PreserveBits + uint64(w*64+bit)
					a.Preserved = append(a.Preserved, Block{PA: mm.PFN(high << order).Addr(), Order: order})
				}
			}
		}
	}
	k.track.mu.Unlock()
	slices.SortFunc(a.Preserved, func(x, y Block) int { return cmpPA(x.PA, y.PA) })

	if k.in == nil {
		return a
	}
	a.InRootFDT = k.in.fdtPA
	k.inMu.Lock()
	for _, b := range k.in.blocks {
		if _, ok := k.heads[b.PA.PFN()]; ok {
			a.Unrestored = append(a.Unrestored, b)
		} else {
			a.Restored = append(a.Restored, b)
		}
	}
	k.inMu.Unlock()
	return a
}

// Unrestored reports whether pa heads an incoming block nobody has
// restored: whether Account().Unrestored lists it, without building the
// accounting.
//
// Requires: no KHO lock held.
func (k *KHO) Unrestored(pa mm.PhysAddr) bool {
	if k.in == nil {
		return false
	}
	k.inMu.Lock()
	defer k.inMu.Unlock()
	for _, b := range k.in.blocks {
		if b.PA == pa {
			_, ok := k.heads[b.PA.PFN()]
			return ok
		}
	}
	return false
}

func cmpPA(x, y mm.PhysAddr) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}
