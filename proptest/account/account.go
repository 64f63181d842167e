// Package account is the end-of-run accounting of issue 8: after a run,
// every file must have been released, every block of preserved memory
// must be handed over, freed, or listed as a documented leak with its
// reason, every block of ordinary memory still allocated must be
// referenced by something (a kmemleak-style scan, pagescan.go), and every
// goroutine must be gone. The lockstep checker calls Check at the end of
// each check; tests call it after their last step.
//
// The reasons follow the spec's Part 6: before a kexec every failure
// undoes itself, so the only preserved blocks left once every task has
// exited are the boot-time ones (KHO's root FDT, LUO's FDT and session
// block); after a kexec what was never retrieved stays reserved (its
// session is still pending), a failed deserialization leaks by design
// what the sessions restored before the failure own (it frees the session
// block and the failed file set's array), a LUO disabled by a failed
// luo_late_startup() leaks all that was handed over, and the incoming root
// and LUO FDTs stay reserved for the kernel's lifetime.
package account

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/goleak"

	"luomodel/kernel"
	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/machine"
)

// State is where a block stands.
type State string

const (
	// HandedOver: preserved in this kernel, to be handed to the next.
	HandedOver State = "handed over"
	// Restored: preserved by the previous kernel and claimed here.
	Restored State = "restored"
	// Reserved: preserved by the previous kernel and still reserved, for
	// the documented reason.
	Reserved State = "reserved"
	// Leaked: preserved or reserved with no reason: a bug.
	Leaked State = "leaked"
)

// Entry is one block of preserved memory.
type Entry struct {
	Block  kho.Block
	State  State
	Reason string
}

func (e Entry) String() string {
	s := fmt.Sprintf("%#x order %d: %s", uint64(e.Block.PA), e.Block.Order, e.State)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Ledger is the accounting of one kernel.
type Ledger struct {
	// Outgoing are this kernel's preserved blocks, Incoming the previous
	// kernel's.
	Outgoing, Incoming []Entry
	// LiveFiles names the files not released.
	LiveFiles []string
	// Misfits names the preserved objects of this kernel whose block is
	// not the one kho_alloc_preserve() makes for the object's size.
	Misfits []string
	// Unreferenced names the allocated blocks of ordinary memory that
	// nothing refers to any more (unreferencedBlocks): leaked pages.
	Unreferenced []string
}

// Leaks returns every entry in state Leaked.
func (l *Ledger) Leaks() []Entry {
	var out []Entry
	for _, e := range append(append([]Entry(nil), l.Outgoing...), l.Incoming...) {
		if e.State == Leaked {
			out = append(out, e)
		}
	}
	return out
}

// Err is nil if nothing leaked, else an error naming every leak.
func (l *Ledger) Err() error {
	var msgs []string
	for _, f := range l.LiveFiles {
		msgs = append(msgs, "file not released: "+f)
	}
	for _, e := range l.Leaks() {
		msgs = append(msgs, "preserved memory: "+e.String())
	}
	for _, m := range l.Misfits {
		msgs = append(msgs, "preserved memory: "+m)
	}
	msgs = append(msgs, l.Unreferenced...)
	if len(msgs) == 0 {
		return nil
	}
	return errors.New("account: " + strings.Join(msgs, "\n  "))
}

// String renders the ledger, one block a line.
func (l *Ledger) String() string {
	var b strings.Builder
	for _, e := range l.Outgoing {
		fmt.Fprintf(&b, "out %s\n", e)
	}
	for _, e := range l.Incoming {
		fmt.Fprintf(&b, "in  %s\n", e)
	}
	for _, f := range l.LiveFiles {
		fmt.Fprintf(&b, "file %s\n", f)
	}
	for _, u := range l.Unreferenced {
		fmt.Fprintf(&b, "page %s\n", u)
	}
	return b.String()
}

// contains reports whether block b holds pa.
func contains(b kho.Block, pa mm.PhysAddr) bool {
	return pa != 0 && pa >= b.PA && uint64(pa-b.PA) < b.Size()
}

// reasons maps addresses to why they are held.
type reasons []struct {
	pa  mm.PhysAddr
	why string
}

func (r *reasons) add(pa mm.PhysAddr, why string) {
	if pa != 0 {
		*r = append(*r, struct {
			pa  mm.PhysAddr
			why string
		}{pa, why})
	}
}

func (r reasons) find(b kho.Block) (string, bool) {
	for _, x := range r {
		if contains(b, x.pa) {
			return x.why, true
		}
	}
	return "", false
}

// Take accounts for the running kernel of m. A halted machine has nothing
// to account for.
func Take(m *machine.Machine) *Ledger {
	k := m.Kernel()
	if k == nil {
		return &Ledger{}
	}
	return TakeKernel(k)
}

// TakeKernel accounts for k.
func TakeKernel(k *kernel.Kernel) *Ledger {
	led := &Ledger{}
	for _, f := range k.VFS().LiveFiles() {
		led.LiveFiles = append(led.LiveFiles, f.String())
	}
	a := k.KHO().Account()
	var st liveupdate.DebugState
	if l := k.LUO(); l != nil {
		st = l.Snapshot()
	}

	// Outgoing: KHO's root FDT, LUO's FDT and session block, the file
	// arrays of outgoing sessions, and (opaque to LUO) the handler data
	// of their files.
	var out reasons
	out.add(a.RootFDT, "KHO root FDT")
	out.add(st.FDTOut, "LUO FDT")
	out.add(st.Outgoing.HeaderSer, "LUO session block")
	out.add(st.FLBOut, "LUO FLB block")
	outFiles := 0
	for _, s := range st.Outgoing.Sessions {
		out.add(s.FilesPA, fmt.Sprintf("file array of outgoing session %q", s.Name))
		outFiles += len(s.Files)
	}
	led.Misfits = misfits(a.Preserved, []sizedObject{
		{a.RootFDT, mm.PageSize, "KHO root FDT"},
		{st.FDTOut, liveupdate.FDTSize, "LUO FDT"},
		{st.Outgoing.HeaderSer, liveupdate.SessionBlockSize, "LUO session block"},
		{st.FLBOut, liveupdate.FLBBlockSize, "LUO FLB block"},
	}, st.Outgoing.Sessions)
	for _, b := range a.Preserved {
		why, ok := out.find(b)
		switch {
		case ok:
		case outFiles > 0:
			why, ok = fmt.Sprintf("handler data of the %d preserved file(s)", outFiles), true
		}
		e := Entry{Block: b, State: HandedOver, Reason: why}
		if !ok {
			e.State, e.Reason = Leaked, "preserved, but no preserved object owns it"
		}
		led.Outgoing = append(led.Outgoing, e)
	}

	// Incoming.
	var in reasons
	in.add(a.InRootFDT, "incoming KHO root FDT: reserved for the kernel's lifetime")
	in.add(st.FDTIn, "incoming LUO FDT: never freed (6.19)")
	in.add(st.FLBIn, "incoming LUO FLB block: never freed (7.0)")
	// Incoming FLB state not finished yet: its owner frees its data at
	// the FLB's finish.
	flbPending := len(st.FLBInEntries)
	for _, f := range st.FLBs {
		if f.Finished {
			flbPending--
		}
	}
	failed := st.Deserialized && st.DeserializeErr != 0
	// LUO disabled after its early startup read the hand-over (a failed
	// luo_late_startup()): no /dev/liveupdate, so nothing handed over can
	// ever be deserialized.
	disabled := !st.Enabled && st.Incoming.Active
	// A failed deserialization frees the session block as a successful
	// one does (M26); only what the sessions restored before the failure
	// own, and the handler data behind them, stays.
	var keptBlock mm.PhysAddr
	switch {
	case failed:
		keptBlock = st.Incoming.HeaderSer
	case disabled:
		in.add(st.Incoming.HeaderSer, "session block: LUO disabled by a failed luo_late_startup(), leaked by design")
	case !st.Deserialized:
		in.add(st.Incoming.HeaderSer, "session block: /dev/liveupdate never opened, sessions not deserialized")
	}
	pending := 0
	for _, s := range st.Incoming.Sessions {
		state := "never retrieved"
		if s.Retrieved {
			state = "retrieved, finish failed or pending"
		}
		in.add(s.FilesPA, fmt.Sprintf("file array of incoming session %q (%s)", s.Name, state))
		for _, f := range s.Files {
			if f.RetrieveStatus == 0 {
				pending++
			}
		}
	}
	for _, b := range append(a.Restored, a.Unrestored...) {
		e := Entry{Block: b, State: Restored}
		if slicesContains(a.Unrestored, b) {
			why, ok := in.find(b)
			switch {
			case contains(b, keptBlock):
				why, ok = "session block kept after a failed deserialization", false
			case ok:
			case pending > 0:
				why, ok = fmt.Sprintf("handler data of the %d unretrieved incoming file(s)", pending), true
			case flbPending > 0:
				why, ok = fmt.Sprintf("FLB data of the %d incoming FLB(s) not finished", flbPending), true
			case failed:
				why, ok = "behind a failed deserialization: leaked by design", true
			case disabled:
				why, ok = "behind sessions LUO (disabled) cannot deserialize: leaked by design", true
			case !st.Deserialized && st.Incoming.Active:
				why, ok = "behind sessions not deserialized yet", true
			case st.FDTIn == 0:
				// A hand-over without a LUO subtree (a hostile or
				// buggy previous kernel): nothing here can claim it.
				why, ok = "handed over without a LUO subtree: no owner in this kernel, reserved for good", true
			}
			e.State, e.Reason = Reserved, why
			if !ok {
				if why == "" {
					why = "handed over, but neither restored nor owned"
				}
				e.State, e.Reason = Leaked, why
			}
		}
		led.Incoming = append(led.Incoming, e)
	}
	led.Unreferenced = describeUnreferenced(unreferencedBlocks(k, a.Preserved, a.InRootFDT))
	return led
}

// sizedObject is a preserved object of known size: where
// kho_alloc_preserve() put it.
type sizedObject struct {
	pa   mm.PhysAddr
	size uint64
	name string
}

// misfits checks that every object (and every outgoing session's file
// array) starts a preserved block of 2^get_order(size) pages, as
// kho_alloc_preserve() allocates it: a block of another size wastes
// memory or cuts the object short.
func misfits(preserved []kho.Block, objs []sizedObject, sessions []liveupdate.SessionState) []string {
	for _, s := range sessions {
		objs = append(objs, sizedObject{s.FilesPA, liveupdate.FileBlockSize, fmt.Sprintf("file array of outgoing session %q", s.Name)})
	}
	var out []string
	for _, o := range objs {
		if o.pa == 0 {
			continue
		}
		want := orderFor(o.size)
		i := slices.IndexFunc(preserved, func(b kho.Block) bool { return b.PA == o.pa })
		switch {
		case i < 0:
			out = append(out, fmt.Sprintf("%s at %#x: not the start of a preserved block", o.name, uint64(o.pa)))
		case preserved[i].Order != want:
			out = append(out, fmt.Sprintf("%s at %#x: a block of order %d for %d bytes (get_order: %d)", o.name, uint64(o.pa), preserved[i].Order, o.size, want))
		}
	}
	return out
}

// orderFor is get_order(size): the smallest order whose block of pages
// holds size bytes.
func orderFor(size uint64) uint {
	order := uint(0)
	for uint64(mm.PageSize)<<order < size {
		order++
	}
	return order
}

func slicesContains(bs []kho.Block, b kho.Block) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// Excuse marks the leaked incoming block that holds pa as reserved for
// why: a reason the caller knows and the kernel does not show (a folio
// whose only reference a corrupt hand-over rewrote). It reports whether
// there was such a block.
func (l *Ledger) Excuse(pa mm.PhysAddr, why string) bool {
	for i := range l.Incoming {
		if e := &l.Incoming[i]; e.State == Leaked && contains(e.Block, pa) {
			e.State, e.Reason = Reserved, why
			return true
		}
	}
	return false
}

// Check is Take(m).Err(): nil if every file was released and every
// preserved block is handed over, restored, or reserved for a documented
// reason.
func Check(m *machine.Machine) error { return Take(m).Err() }

// Goroutines returns an error naming every goroutine still running besides
// the caller's and those opts ignore (goleak.Find): call it when a run's
// machines and tasks are done.
func Goroutines(opts ...goleak.Option) error { return goleak.Find(opts...) }
