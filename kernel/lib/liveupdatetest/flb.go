package liveupdatetest

import (
	"encoding/binary"
	"syscall"

	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
)

// The test FLBs, after lib/tests/liveupdate.c: "liveupdate-test-flb-vN",
// owned by the module. A preserved test FLB owns one preserved page, a
// struct liveupdate_test_flb_ser holding its state (Driver.SetFLBState);
// its PA is the FLB's data. Retrieve checks the page before claiming it
// (so a directed failure leaves it for a retry), then restores it into an
// FLBObject and frees it.

// FLBObject is a test FLB's live object, outgoing or incoming.
type FLBObject struct {
	Index int
	// State is the FLB's preserved state, byte for byte.
	State []byte
	// PA is the preserved page (outgoing) or where it was (incoming).
	PA mm.PhysAddr
}

func (in *instance) newFLB(i int) *liveupdate.FLB {
	return &liveupdate.FLB{
		Compatible: FLBCompatible(i),
		Ops: &liveupdate.FLBOps{
			Preserve:   func(a *liveupdate.FLBOpArgs) error { return in.flbPreserve(i, a) },
			Unpreserve: func(a *liveupdate.FLBOpArgs) { in.flbUnpreserve(i, a) },
			Retrieve:   func(a *liveupdate.FLBOpArgs) error { return in.flbRetrieve(i, a) },
			Finish:     func(a *liveupdate.FLBOpArgs) { in.flbFinish(i, a) },
			Owner:      in.mod,
		},
	}
}

func (in *instance) flbPreserve(i int, a *liveupdate.FLBOpArgs) error {
	err := func() error {
		if e := in.d.decide(OpFLBPreserve, 0, i); e != 0 {
			return e
		}
		in.d.mu.Lock()
		state := append([]byte(nil), in.d.flbState[i]...)
		in.d.mu.Unlock()
		pa, err := in.d.kho.AllocPreserve(mm.PageSize)
		if err != nil {
			return err
		}
		buf := make([]byte, mm.PageSize)
		(&FLBSer{Magic: FLBSerMagic + uint64(i), Index: uint64(i), Len: uint64(len(state)), State: state}).Encode(buf)
		if err := in.d.mm.Write(pa, buf); err != nil {
			in.d.kho.UnpreserveFree(pa)
			return syscall.EIO
		}
		a.Data = uint64(pa)
		a.Obj = &FLBObject{Index: i, State: state, PA: pa}
		return nil
	}()
	in.d.record(Call{Op: OpFLBPreserve, FLB: i, Result: errResult(err)})
	return err
}

func (in *instance) flbUnpreserve(i int, a *liveupdate.FLBOpArgs) {
	if o, ok := a.Obj.(*FLBObject); ok {
		in.d.kho.UnpreserveFree(o.PA)
	}
	in.d.record(Call{Op: OpFLBUnpreserve, FLB: i})
}

func (in *instance) flbRetrieve(i int, a *liveupdate.FLBOpArgs) error {
	err := func() error {
		pa := mm.PhysAddr(a.Data)
		if !in.unclaimed(pa) {
			// Restored already: by an earlier load of the module
			// (its FLB state is fresh, LUO's entries are not).
			return syscall.EINVAL
		}
		hdr, ok := in.peekSer(pa, FLBSerOffState)
		if !ok || binary.LittleEndian.Uint64(hdr[FLBSerOffMagic:]) != FLBSerMagic+uint64(i) ||
			binary.LittleEndian.Uint64(hdr[FLBSerOffLen:]) > FLBStateMax {
			return syscall.EINVAL
		}
		if e := in.d.decide(OpFLBRetrieve, 0, i); e != 0 {
			return e
		}
		f, err := in.d.kho.RestoreFolio(pa)
		if err != nil {
			return syscall.EINVAL
		}
		buf := make([]byte, mm.PageSize)
		rerr := f.Read(0, buf)
		f.Put()
		if rerr != nil {
			return syscall.EINVAL
		}
		s := DecodeFLBSer(buf)
		a.Obj = &FLBObject{Index: i, State: s.State, PA: pa}
		return nil
	}()
	in.d.record(Call{Op: OpFLBRetrieve, FLB: i, Result: errResult(err)})
	return err
}

// unclaimed reports whether pa heads an incoming block nobody restored.
func (in *instance) unclaimed(pa mm.PhysAddr) bool {
	return in.d.kho.Unrestored(pa)
}

func (in *instance) flbFinish(i int, _ *liveupdate.FLBOpArgs) {
	in.d.record(Call{Op: OpFLBFinish, FLB: i})
}
