package mm

import (
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkFreeLists verifies the buddy invariants: every free-list block is a
// naturally aligned free head of its order, no two free buddies of the same
// order coexist, and the lists hold exactly Stats().FreePages frames.
func checkFreeLists(t *testing.T, m *MM) {
	t.Helper()
	m.lock.Lock()
	defer m.lock.Unlock()
	var total uint64
	heads := make(map[PFN]uint)
	for order := range uint(MaxOrder + 1) {
		var n uint64
		for pfn := m.free[order].head; pfn != noPFN; pfn = m.pages[pfn].next {
			p := &m.pages[pfn]
			require.Equal(t, pgBuddy, p.kind(), "pfn %#x", pfn)
			require.Equal(t, order, p.order(), "pfn %#x", pfn)
			require.Zero(t, PFN(pfn)&(PFN(1)<<order-1), "pfn %#x misaligned for order %d", pfn, order)
			heads[PFN(pfn)] = order
			total += 1 << order
			n++
		}
		require.Equal(t, m.free[order].nrFree, n)
	}
	for pfn, order := range heads {
		if order == MaxOrder {
			continue
		}
		bo, ok := heads[pfn^PFN(1)<<order]
		require.False(t, ok && bo == order, "free buddies %#x and %#x of order %d not merged", pfn, pfn^PFN(1)<<order, order)
	}
	require.Equal(t, m.stats.FreePages, total)
	require.Equal(t, m.stats.TotalPages, m.stats.FreePages+m.stats.AllocatedPages+m.stats.ReservedPages)
}

func TestAllocFreeOrders(t *testing.T) {
	m := newTestMM(t, 16*mib)
	st := m.Stats()
	require.EqualValues(t, 4096, st.TotalPages)
	require.EqualValues(t, 1, st.ReservedPages) // frame 0
	require.EqualValues(t, 4095, st.FreePages)
	checkFreeLists(t, m)

	var pas []PhysAddr
	for order := range uint(MaxOrder + 1) {
		pa, err := m.AllocPages(order, false)
		require.NoError(t, err)
		require.NotZero(t, pa, "PA 0 is never handed out")
		require.Zero(t, uint64(pa)&(PageSize<<order-1), "order %d block at %#x is misaligned", order, pa)
		require.Equal(t, PageAllocated, m.PageState(pa))
		require.Equal(t, PageAllocated, m.PageState(pa+PageSize<<order-1))
		pas = append(pas, pa)
	}
	checkFreeLists(t, m)
	require.EqualValues(t, 2047, m.Stats().AllocatedPages)
	for order, pa := range pas {
		m.FreePages(pa, uint(order))
		require.Equal(t, PageFree, m.PageState(pa))
	}
	checkFreeLists(t, m)
	require.Equal(t, st, m.Stats())
	// Everything merged back: with frame 0 reserved, the free lists hold
	// one block of each order below MaxOrder in the first 4 MiB and three
	// order-10 blocks.
	require.EqualValues(t, 3, m.free[MaxOrder].nrFree)

	_, err := m.AllocPages(MaxOrder+1, false)
	require.ErrorIs(t, err, syscall.ENOMEM)
}

func TestAllocZeroedAndStale(t *testing.T) {
	m := newTestMM(t, 1*mib)
	pa, err := m.AllocPages(1, false)
	require.NoError(t, err)
	require.NoError(t, m.Write(pa, pattern(2*PageSize, 9)))
	require.NoError(t, m.Zero(pa+10, 20))
	got := make([]byte, 2*PageSize)
	require.NoError(t, m.Read(pa, got))
	want := pattern(2*PageSize, 9)
	clear(want[10:30])
	require.Equal(t, want, got)
	m.FreePages(pa, 1)

	pa2, err := m.AllocPages(1, true)
	require.NoError(t, err)
	require.NoError(t, m.Read(pa2, got))
	require.Equal(t, make([]byte, 2*PageSize), got)
	m.FreePages(pa2, 1)
}

func TestAllocExhaustionAndMerge(t *testing.T) {
	m := newTestMM(t, 1*mib) // 256 frames, 255 usable
	var pas []PhysAddr
	for {
		pa, err := m.AllocPages(0, false)
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOMEM)
			break
		}
		pas = append(pas, pa)
	}
	require.Len(t, pas, 255)
	require.EqualValues(t, 0, m.Stats().FreePages)
	_, err := m.AllocPages(3, false)
	require.ErrorIs(t, err, syscall.ENOMEM)
	checkFreeLists(t, m)

	// Free every other frame: nothing can merge, no order-1 block exists.
	for i := 0; i < len(pas); i += 2 {
		m.FreePages(pas[i], 0)
	}
	checkFreeLists(t, m)
	_, err = m.AllocPages(1, false)
	require.ErrorIs(t, err, syscall.ENOMEM)
	// Free the rest: buddies merge back into large blocks.
	for i := 1; i < len(pas); i += 2 {
		m.FreePages(pas[i], 0)
	}
	checkFreeLists(t, m)
	pa, err := m.AllocPages(7, false)
	require.NoError(t, err)
	m.FreePages(pa, 7)
	require.EqualValues(t, 255, m.Stats().FreePages)
}

func TestReservedRangesAndClaim(t *testing.T) {
	res := []Range{
		{Start: 8 * PageSize, Size: 4 * PageSize}, // frames 8-11
		{Start: 100*PageSize + 1, Size: 1},        // frame 100, widened
		{Start: 250 * PageSize, Size: 1 * mib},    // frames 250-255, clipped
	}
	m := newTestMM(t, 1*mib, res...)
	require.EqualValues(t, 1+4+1+6, m.Stats().ReservedPages)
	checkFreeLists(t, m)
	for _, pfn := range []PFN{0, 8, 11, 100, 250, 255} {
		require.Equal(t, PageReserved, m.PageState(pfn.Addr()), "pfn %d", pfn)
	}
	require.Equal(t, PageInvalid, m.PageState(256*PageSize))

	// Reserved frames are never handed out.
	var pas []PhysAddr
	for {
		pa, err := m.AllocPages(0, false)
		if err != nil {
			break
		}
		require.NotEqual(t, PageReserved, m.PageState(pa))
		pas = append(pas, pa)
	}
	require.Len(t, pas, 256-12)
	for _, pa := range pas {
		m.FreePages(pa, 0)
	}

	// Claim turns reserved into allocated, once.
	require.NoError(t, m.RAM().WriteRaw(9*PageSize, []byte("handed over")))
	require.NoError(t, m.Claim(8*PageSize, 2))
	require.Equal(t, PageAllocated, m.PageState(9*PageSize))
	got := make([]byte, 11)
	require.NoError(t, m.Read(9*PageSize, got))
	require.Equal(t, "handed over", string(got))
	require.ErrorIs(t, m.Claim(8*PageSize, 2), syscall.EINVAL)   // twice
	require.ErrorIs(t, m.Claim(0, 0), syscall.EINVAL)            // frame 0
	require.ErrorIs(t, m.Claim(20*PageSize, 0), syscall.EINVAL)  // free frame
	require.ErrorIs(t, m.Claim(251*PageSize, 1), syscall.EINVAL) // misaligned
	require.ErrorIs(t, m.Claim(100*PageSize+8, 0), syscall.EINVAL)
	require.ErrorIs(t, m.Claim(256*PageSize, 0), syscall.EINVAL)
	checkFreeLists(t, m)

	// A claimed block frees like any other.
	m.FreePages(8*PageSize, 2)
	require.Equal(t, PageFree, m.PageState(8*PageSize))

	// Unclaimed hand-over memory can be given back.
	require.NoError(t, m.FreeReserved(100*PageSize, 0))
	require.ErrorIs(t, m.FreeReserved(100*PageSize, 0), syscall.EINVAL)
	require.EqualValues(t, 6, m.ReleaseReserved())
	require.EqualValues(t, 1, m.Stats().ReservedPages) // frame 0 stays
	require.EqualValues(t, 255, m.Stats().FreePages)
	checkFreeLists(t, m)
}

func TestClaimFolio(t *testing.T) {
	m := newTestMM(t, 1*mib, Range{Start: 16 * PageSize, Size: 2 * PageSize})
	f, err := m.ClaimFolio(16*PageSize, 1)
	require.NoError(t, err)
	require.Equal(t, PFN(16), f.PFN())
	require.EqualValues(t, 1, f.Refcount())
	require.Same(t, f, m.PFNFolio(16))
	_, err = m.ClaimFolio(16*PageSize, 1)
	require.ErrorIs(t, err, syscall.EINVAL)
	f.Put()
	require.Nil(t, m.PFNFolio(16))
	require.Equal(t, PageFree, m.PageState(17*PageSize))
}

// TestBootFreeBlocks: the boot's free pass, which walks the gaps between
// the merged reserved intervals, hands out exactly the blocks a frame-by-
// frame walk does (each unreserved frame starts the largest naturally
// aligned block of unreserved frames, up to MaxOrder), for random reserved
// ranges: overlapping, touching, empty, unaligned, past the end of RAM.
func TestBootFreeBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 200 {
		size := uint64(1+r.IntN(4)) * mib
		n := PFN(size / PageSize)
		var res []Range
		for range r.IntN(8) {
			start := PhysAddr(r.Uint64N(size + 4*PageSize))
			if r.IntN(2) == 0 {
				start &^= PageSize - 1
			}
			res = append(res, Range{Start: start, Size: r.Uint64N(64 * PageSize)})
		}
		if r.IntN(10) == 0 {
			res = append(res, Range{Start: PhysAddr(size / 2), Size: ^uint64(0)})
		}
		reserved := map[PFN]bool{0: true}
		for _, rg := range res {
			if rg.Size == 0 || uint64(rg.Start) >= size {
				continue
			}
			end := min(uint64(rg.Start)+rg.Size, size)
			if end < uint64(rg.Start) {
				end = size
			}
			for pfn := rg.Start.PFN(); uint64(pfn.Addr()) < end; pfn++ {
				reserved[pfn] = true
			}
		}
		want := map[PFN]uint{}
		for pfn := PFN(0); pfn < n; {
			if reserved[pfn] {
				pfn++
				continue
			}
			order := uint(0)
			for order < MaxOrder {
				sz := PFN(1) << (order + 1)
				fits := pfn&(sz-1) == 0 && pfn+sz <= n
				for p := pfn; fits && p < pfn+sz; p++ {
					fits = !reserved[p]
				}
				if !fits {
					break
				}
				order++
			}
			want[pfn] = order
			pfn += 1 << order
		}

		m := newTestMM(t, size, res...)
		checkFreeLists(t, m)
		got := map[PFN]uint{}
		for order := range uint(MaxOrder + 1) {
			for pfn := m.free[order].head; pfn != noPFN; pfn = m.pages[pfn].next {
				got[PFN(pfn)] = order
			}
		}
		require.Equal(t, want, got, "iteration %d: reserved %v", iter, res)
		require.EqualValues(t, len(reserved), m.Stats().ReservedPages, "iteration %d", iter)
		for pfn := range n {
			require.Equal(t, reserved[pfn], m.PageState(pfn.Addr()) == PageReserved, "iteration %d: pfn %d", iter, pfn)
		}
	}
}
