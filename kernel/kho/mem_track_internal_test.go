package kho

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
)

// TestSerializeChunkRollover: kho_mem_serialize() starts a new chunk when
// one holds ChunkBitmapSize bitmaps, and for each order. The campaigns
// cannot reach it (an order-0 bitmap spans 128 MiB: more than a chunk's
// worth needs tens of GiB of preserved memory), so the tracker is fed
// blocks far past a small machine's memory (it only records bits) and the
// chunk list is walked as kho_mem_deserialize() would: every chunk within
// its capacity, every block found once, in order.
func TestSerializeChunkRollover(t *testing.T) {
	rep := bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })
	m := mm.New(mm.NewRAM(8<<20), rep, nil)
	var tr memTrack
	tr.init(locking.NewDomain(locking.Options{Lockdep: true, Reporter: rep}))

	type block struct {
		order uint
		pfn   uint64
	}
	var want []block
	// One block per bitmap: 2 chunks and a bit of order 0, one of order 2.
	for i := range uint64(2*ChunkBitmapSize + 3) {
		want = append(want, block{0, i*PreserveBits + i%7})
	}
	for i := range uint64(2) {
		want = append(want, block{2, (i*PreserveBits + 1) << 2})
	}
	for _, b := range want {
		require.NoError(t, tr.preserveOrder(m, mm.PFN(b.pfn), b.order))
	}
	first, chunks, err := tr.serialize(m)
	require.NoError(t, err)
	require.Len(t, chunks, 4)

	var got []block
	page := make([]byte, mm.PageSize)
	bitmap := make([]byte, mm.PageSize)
	for pa := first; pa != 0; {
		require.NoError(t, m.Read(pa, page))
		hdr := decodeChunkHdr(page)
		require.LessOrEqual(t, hdr.numElms, uint32(ChunkBitmapSize))
		for i := range int(hdr.numElms) {
			elm := decodeBitmapPtr(page[ChunkHdrSize+i*BitmapPtrSize:])
			require.NoError(t, m.Read(elm.bitmap, bitmap))
			for byteIdx, v := range bitmap {
				for bit := range 8 {
					if v&(1<<bit) != 0 {
						block0 := uint64(elm.physStart) >> (mm.PageShift + hdr.order)
						got = append(got, block{uint(hdr.order), (block0 + uint64(byteIdx*8+bit)) << hdr.order})
					}
				}
			}
		}
		pa = hdr.next
	}
	require.Equal(t, want, got)
	freeChunks(m, chunks)
}
