package kho_test

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/mm"
)

// Layout of the fuzzed hand-over: three consecutive pages of a small RAM
// hold what the fuzzer gives, in order: the root FDT, a chunk of the
// memory map and a bitmap. The descriptor points at the first.
const (
	fuzzRAMSize  = 4 << 20
	fuzzFDTPA    = 0x10000
	fuzzChunkPA  = fuzzFDTPA + mm.PageSize
	fuzzBitmapPA = fuzzChunkPA + mm.PageSize
	fuzzMaxInput = 3 * mm.PageSize // the three pages
)

// fuzzSeed builds a valid hand-over in the fuzz layout: the root FDT (with
// one subtree), one order-0 chunk whose bitmap preserves the FDT page and
// a few more, optionally chained to a second chunk of order order2 (0: no
// second chunk) that reuses the bitmap.
func fuzzSeed(order2 uint32) []byte {
	in := make([]byte, fuzzMaxInput)
	w, err := fdt.Create(in[:mm.PageSize])
	if err != nil {
		panic(err)
	}
	for _, step := range []func() error{
		w.FinishReservemap,
		func() error { return w.BeginNode("") },
		func() error { return w.PropertyString("compatible", kho.FDTCompatible) },
		func() error { return w.PropertyU64LE(kho.PropPreservedMemoryMap, fuzzChunkPA) },
		func() error { return w.BeginNode("kho_test") },
		func() error { return w.PropertyU64LE(kho.PropSubFDT, 0x40000) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	} {
		if err := step(); err != nil {
			panic(err)
		}
	}
	chunk := in[mm.PageSize : 2*mm.PageSize]
	binary.LittleEndian.PutUint32(chunk[kho.ChunkHdrOffNumElms:], 1)
	binary.LittleEndian.PutUint64(chunk[kho.ChunkHdrSize+kho.BitmapPtrOffBitmap:], fuzzBitmapPA)
	if order2 != 0 {
		// The second chunk is the first one's page: a loop. Seeds with
		// it exercise the loop check.
		binary.LittleEndian.PutUint64(chunk[kho.ChunkHdrOffNext:], fuzzChunkPA)
	}
	bitmap := in[2*mm.PageSize:]
	for _, pfn := range []int{fuzzFDTPA / mm.PageSize, 0x40, 0x41, 0x200} {
		bitmap[pfn/8] |= 1 << (pfn % 8)
	}
	return in
}

// fuzzPages splits a hand-over in the fuzz layout into its three pages.
func fuzzPages(in []byte) (root, chunk, bitmap []byte) {
	page := func(i int) []byte {
		lo, hi := min(i*mm.PageSize, len(in)), min((i+1)*mm.PageSize, len(in))
		return in[lo:hi]
	}
	return page(0), page(1), page(2)
}

// FuzzKHOHandover places arbitrary bytes as the hand-over (root FDT, map
// chunk, bitmap) in RAM and boots a kernel on it: the boot must end in an
// error or a kernel whose preserved blocks are reserved, never a panic or
// a hang.
//
// The three pages are three fuzz arguments, each written at its own page
// (truncated to a page), so that the fuzzer's minimizer removes bytes from
// one without shifting the others. With one 12 KiB argument every removal
// moved the chunk and the bitmap, no candidate kept the coverage, and the
// minimizer's quadratic pass over the input ran until -fuzzminimizetime
// (60 s) for every new interesting input: the minute-long stalls of the
// first 5-minute runs.
func FuzzKHOHandover(f *testing.F) {
	for _, order2 := range []uint32{0, 1} {
		root, chunk, bitmap := fuzzPages(fuzzSeed(order2))
		f.Add(root, chunk, bitmap)
	}
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, root, chunk, bitmap []byte) {
		ram := mm.NewRAM(fuzzRAMSize)
		for i, p := range [][]byte{root, chunk, bitmap} {
			pa := mm.PhysAddr(fuzzFDTPA + i*mm.PageSize)
			if err := ram.WriteRaw(pa, p[:min(len(p), mm.PageSize)]); err != nil {
				t.Fatal(err)
			}
		}
		rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("report during boot:\n%s", r.String()) })
		k, err := kernel.Boot(kernel.BootParams{RAM: ram, Cmdline: "kho=on", Handover: fuzzFDTPA, Reporter: rep})
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("boot error %v is not a corrupt hand-over (EINVAL)", err)
			}
			return
		}
		in2 := k.KHO().Incoming()
		if in2 == nil {
			t.Fatal("booted with a hand-over but has no incoming state")
		}
		checkHandover(t, k, in2)
		if _, err := k.KHO().RetrieveSubtree("kho_test"); err != nil && !errors.As(err, new(syscall.Errno)) {
			t.Fatalf("RetrieveSubtree: %v is not an errno", err)
		}
	})
}

// checkHandover checks what a kernel accepted: the preserved blocks are
// inside RAM, aligned to their size, disjoint, hold the root FDT, and
// exactly their pages (and frame 0) are reserved; every other page is the
// allocator's. BlockAt finds the block of every address in one.
func checkHandover(t *testing.T, k *kernel.Kernel, in *kho.Handover) {
	reserved := map[mm.PhysAddr]bool{0: true}
	owner := map[mm.PhysAddr]kho.Block{}
	fdtPreserved := false
	var end uint64
	for _, b := range in.Blocks() {
		if uint64(b.PA)%b.Size() != 0 || uint64(b.PA) < end || uint64(b.PA)+b.Size() > fuzzRAMSize {
			t.Fatalf("preserved block %#x (order %d) misplaced (previous block ends at %#x)", uint64(b.PA), b.Order, end)
		}
		end = uint64(b.PA) + b.Size()
		fdtPreserved = fdtPreserved || (b.PA <= fuzzFDTPA && fuzzFDTPA < end)
		for pa := b.PA; uint64(pa) < end; pa += mm.PageSize {
			reserved[pa] = true
			owner[pa] = b
		}
	}
	if !fdtPreserved {
		t.Fatal("the root FDT's page is not in a preserved block")
	}
	for pa := mm.PhysAddr(0); pa < fuzzRAMSize; pa += mm.PageSize {
		st := k.MM().PageState(pa)
		if reserved[pa] != (st == mm.PageReserved) {
			t.Fatalf("page %#x is %v; preserved: %v", uint64(pa), st, reserved[pa])
		}
		want, inBlock := owner[pa]
		for _, at := range []mm.PhysAddr{pa, pa + mm.PageSize - 1} {
			if b, ok := in.BlockAt(at); ok != inBlock || b != want {
				t.Fatalf("BlockAt(%#x) = %v, %v; want %v, %v", uint64(at), b, ok, want, inBlock)
			}
		}
	}
}
