package kho_test

import (
	"encoding/binary"
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
	fuzzMaxInput = 3 * mm.PageSize
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

// FuzzKHOHandover places arbitrary bytes as the hand-over (root FDT, map
// chunk, bitmap) in RAM and boots a kernel on it: the boot must end in an
// error or a kernel whose preserved blocks are reserved, never a panic or
// a hang.
func FuzzKHOHandover(f *testing.F) {
	f.Add(fuzzSeed(0))
	f.Add(fuzzSeed(1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > fuzzMaxInput {
			in = in[:fuzzMaxInput]
		}
		ram := mm.NewRAM(fuzzRAMSize)
		if err := ram.WriteRaw(fuzzFDTPA, in); err != nil {
			t.Fatal(err)
		}
		rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("report during boot:\n%s", r) })
		k, err := kernel.Boot(kernel.BootParams{RAM: ram, Cmdline: "kho=on", Handover: fuzzFDTPA, Reporter: rep})
		if err != nil {
			return
		}
		in2 := k.KHO().Incoming()
		if in2 == nil {
			t.Fatal("booted with a hand-over but has no incoming state")
		}
		for _, b := range in2.Blocks() {
			if st := k.MM().PageState(b.PA); st != mm.PageReserved && b.PA != 0 {
				t.Fatalf("preserved block %#x is %v", uint64(b.PA), st)
			}
		}
		_, _ = k.KHO().RetrieveSubtree("kho_test")
	})
}
