package kho

import (
	"strings"
	"syscall"

	"luomodel/kernel/bug"
	"luomodel/kernel/fault"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
)

// Config is what a booting kernel hands KHO.
type Config struct {
	// Enabled is "kho=" from the command line (kho_enable).
	Enabled  bool
	MM       *mm.MM
	Domain   *locking.Domain
	Reporter *bug.Reporter
	// Incoming is what Populate found before the MM was built; nil on a
	// cold boot.
	Incoming *Handover
	// Faults is the machine's fault injector; nil for none.
	Faults *fault.Injector
}

// subtree is one child node of the outgoing root FDT.
type subtree struct {
	name string
	fdt  mm.PhysAddr
}

// KHO is one kernel's hand-over state: what it preserves for the next
// kernel (struct kho_out) and what the previous kernel handed to it
// (struct kho_in).
type KHO struct {
	mm      *mm.MM          // immutable
	rep     *bug.Reporter   // immutable
	faults  *fault.Injector // immutable; nil: no fault injection
	enabled bool            // immutable (kho_enable is __ro_after_init)

	// outMu is kho_out.lock: it serializes changes to the root FDT and
	// finalization.
	outMu locking.Mutex
	// fdtPA is the page holding the outgoing root FDT; immutable after
	// New, 0 when disabled.
	fdtPA     mm.PhysAddr
	subtrees  []subtree     // guarded by outMu; the root FDT's child nodes
	memMap    mm.PhysAddr   // guarded by outMu; the "preserved-memory-map" value
	chunks    []mm.PhysAddr // guarded by outMu; the pages of memMap's chain
	finalized bool          // guarded by outMu
	// rootBuf is writeRootLocked's scratch page, reused; guarded by outMu.
	rootBuf []byte

	track memTrack

	// in is the incoming hand-over; immutable, nil on a cold boot.
	in *Handover
	// inMu guards heads, the page->private marks of kho_in.
	inMu locking.Mutex
	// heads maps the head PFN of every preserved block not yet restored
	// to its order: KHO_PAGE_MAGIC in page->private. Guarded by inMu.
	heads map[mm.PFN]uint
}

// New ports kho_init() (and the kho_memory_init() marking of the incoming
// blocks): it sets up the outgoing root FDT in preserved memory. With KHO
// disabled it returns a KHO whose IsEnabled is false and that hands nothing
// over.
func New(cfg Config) (*KHO, error) {
	k := &KHO{mm: cfg.MM, rep: cfg.Reporter, faults: cfg.Faults, enabled: cfg.Enabled, in: cfg.Incoming}
	if k.rep == nil {
		k.rep = cfg.Domain.Reporter()
	}
	k.outMu.Init(cfg.Domain, "kho_out.lock")
	k.inMu.Init(cfg.Domain, "kho_in.lock")
	k.track.init(cfg.Domain)
	k.heads = make(map[mm.PFN]uint)
	if k.in != nil {
		for _, b := range k.in.blocks {
			k.heads[b.PA.PFN()] = b.Order
		}
	}
	if !k.enabled {
		return k, nil
	}
	pa, err := k.AllocPreserve(mm.PageSize)
	if err != nil {
		return nil, err
	}
	k.fdtPA = pa
	k.outMu.Lock()
	err = k.writeRootLocked()
	k.outMu.Unlock()
	if err != nil {
		k.UnpreserveFree(pa)
		return nil, err
	}
	return k, nil
}

// IsEnabled ports kho_is_enabled().
func (k *KHO) IsEnabled() bool { return k.enabled }

// IsKHOBoot ports is_kho_boot(): this kernel was booted with hand-over
// data.
func (k *KHO) IsKHOBoot() bool { return k.in != nil }

// FDTAddr is the PA of the outgoing root FDT: the descriptor kexec hands
// to the next kernel (kho_fill_kimage()'s image->kho.fdt). 0 when KHO is
// disabled.
func (k *KHO) FDTAddr() mm.PhysAddr { return k.fdtPA }

// Incoming returns the hand-over this kernel booted with, or nil.
func (k *KHO) Incoming() *Handover { return k.in }

// writeRootLocked ports kho_out_fdt_setup() and the effect of
// kho_add_subtree()/kho_remove_subtree()/kho_update_memory_map() on the
// root FDT: it writes the whole tree into its preserved page. Upstream
// edits the tree in place with the read-write libfdt functions; writing it
// afresh gives the same tree.
//
// Requires: k.outMu held (asserted; instrumentation: upstream's callers
// hold kho_out.lock, the FDT edits do not assert it).
func (k *KHO) writeRootLocked() error {
	k.outMu.AssertHeld()
	if k.rootBuf == nil {
		k.rootBuf = make([]byte, mm.PageSize)
	}
	buf := k.rootBuf // cleared by fdt.Create
	w, err := fdt.Create(buf)
	if err != nil {
		return syscall.ENOMEM
	}
	if err := k.writeRootNodesLocked(w); err != nil {
		// Only a full page (FDT_ERR_NOSPACE) can fail here;
		// kho_add_subtree() reports it as -ENOMEM.
		return syscall.ENOMEM
	}
	return k.mm.Write(k.fdtPA, buf)
}

// writeRootNodesLocked writes the root FDT's structure with w: the root node,
// its properties and one child node per subtree (what kho_out_fdt_setup()
// and kho_add_subtree() put there). Requires: k.outMu held (its caller,
// writeRootLocked, asserts it).
func (k *KHO) writeRootNodesLocked(w *fdt.Writer) error {
	if err := w.FinishReservemap(); err != nil {
		return err
	}
	if err := w.BeginNode(""); err != nil {
		return err
	}
	if err := w.PropertyString("compatible", FDTCompatible); err != nil {
		return err
	}
	if err := w.PropertyU64LE(PropPreservedMemoryMap, uint64(k.memMap)); err != nil {
		return err
	}
	for _, s := range k.subtrees {
		if err := w.BeginNode(s.name); err != nil {
			return err
		}
		if err := w.PropertyU64LE(PropSubFDT, uint64(s.fdt)); err != nil {
			return err
		}
		if err := w.EndNode(); err != nil {
			return err
		}
	}
	if err := w.EndNode(); err != nil {
		return err
	}
	return w.Finish()
}

// validSubtreeName reports whether name can be a node name: libfdt would
// mangle an empty name or one with '/' or NUL.
func validSubtreeName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/\x00")
}

// AddSubtree ports kho_add_subtree(): record fdtPA, the PA of a preserved
// FDT, as child node name of the root FDT. EEXIST if name is taken,
// EINVAL for an impossible node name, ENOMEM when the root page is full,
// EOPNOTSUPP when KHO is disabled.
//
// Requires: k.outMu not held.
func (k *KHO) AddSubtree(name string, fdtPA mm.PhysAddr) error {
	if !k.enabled {
		return syscall.EOPNOTSUPP
	}
	if !validSubtreeName(name) {
		return syscall.EINVAL
	}
	k.outMu.Lock()
	defer k.outMu.Unlock()
	for _, s := range k.subtrees {
		if s.name == name {
			return syscall.EEXIST
		}
	}
	k.subtrees = append(k.subtrees, subtree{name: name, fdt: fdtPA})
	if err := k.writeRootLocked(); err != nil {
		k.subtrees = k.subtrees[:len(k.subtrees)-1]
		return err
	}
	return nil
}

// RemoveSubtree ports kho_remove_subtree(): remove the child node whose
// "fdt" is fdtPA, if any.
//
// Requires: k.outMu not held.
func (k *KHO) RemoveSubtree(fdtPA mm.PhysAddr) {
	if !k.enabled {
		return
	}
	k.outMu.Lock()
	defer k.outMu.Unlock()
	for i, s := range k.subtrees {
		if s.fdt == fdtPA {
			k.subtrees = append(k.subtrees[:i:i], k.subtrees[i+1:]...)
			// A smaller tree always fits.
			k.rep.WarnOn(k.writeRootLocked() != nil, "kho: cannot rewrite root FDT")
			return
		}
	}
}

// RetrieveSubtree ports kho_retrieve_subtree(): the PA of the incoming
// subtree name. ENOENT without hand-over data or for an unknown name,
// EINVAL when its "fdt" property is malformed.
func (k *KHO) RetrieveSubtree(name string) (mm.PhysAddr, error) {
	if k.in == nil {
		return 0, syscall.ENOENT
	}
	return k.in.retrieveSubtree(name)
}

// Finalize ports kho_finalize(): serialize the preserved-memory map and
// point the root FDT at it. A second Finalize replaces the map (the old
// chain is freed, as kho_update_memory_map() does). EOPNOTSUPP when
// disabled; ENOMEM when memory for the map runs out, with the previous
// state intact.
//
// Requires: k.outMu not held.
func (k *KHO) Finalize() error {
	if !k.enabled {
		return syscall.EOPNOTSUPP
	}
	if err := k.faults.Fail(fault.KHOFinalize); err != nil {
		return err // kho_mem_serialize() could not allocate
	}
	k.outMu.Lock()
	defer k.outMu.Unlock()
	first, chunks, err := k.track.serialize(k.mm)
	if err != nil {
		return err
	}
	oldMap, oldChunks := k.memMap, k.chunks
	k.memMap, k.chunks = first, chunks
	if err := k.writeRootLocked(); err != nil {
		k.memMap, k.chunks = oldMap, oldChunks
		freeChunks(k.mm, chunks)
		return err
	}
	freeChunks(k.mm, oldChunks)
	k.finalized = true
	return nil
}

// Finalized ports kho_finalized().
func (k *KHO) Finalized() bool {
	k.outMu.Lock()
	defer k.outMu.Unlock()
	return k.finalized
}
