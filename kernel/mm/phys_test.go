package mm

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRAMRawRoundTripAcrossPages(t *testing.T) {
	r := NewRAM(1 * mib)
	require.EqualValues(t, 1*mib, r.Size())
	require.EqualValues(t, 256, r.Pages())

	data := pattern(3*PageSize, 1)
	require.NoError(t, r.WriteRaw(PageSize-100, data))
	got := make([]byte, len(data))
	require.NoError(t, r.ReadRaw(PageSize-100, got))
	require.Equal(t, data, got)
	require.EqualValues(t, 4, r.TouchedPages())

	// Untouched memory reads as zero at cold boot and costs nothing.
	zero := make([]byte, PageSize)
	require.NoError(t, r.ReadRaw(100*PageSize, zero))
	require.Equal(t, make([]byte, PageSize), zero)
	require.EqualValues(t, 4, r.TouchedPages())
}

func TestRAMBounds(t *testing.T) {
	r := NewRAM(64*kib + 123) // rounded down to whole pages
	require.EqualValues(t, 64*kib, r.Size())
	b := make([]byte, 8)
	require.NoError(t, r.ReadRaw(64*kib-8, b))
	require.ErrorIs(t, r.ReadRaw(64*kib-7, b), syscall.EFAULT)
	require.ErrorIs(t, r.WriteRaw(64*kib, b), syscall.EFAULT)
	require.ErrorIs(t, r.WriteRaw(^PhysAddr(0)-3, b), syscall.EFAULT) // wraps
	require.ErrorIs(t, r.Poison(16), syscall.EFAULT)
	require.NoError(t, r.ReadRaw(64*kib, nil))
	require.EqualValues(t, 0, r.TouchedPages())
}

func TestRAMSparseGiB(t *testing.T) {
	r := NewRAM(1 * gib)
	for i := range 5 {
		require.NoError(t, r.WriteRaw(PhysAddr(i)*(200*mib)+17, []byte("hello")))
	}
	require.EqualValues(t, 5, r.TouchedPages())

	// A 1 GiB allocator over it touches no frame either.
	m := New(r, failReporter(t), nil)
	require.EqualValues(t, 5, r.TouchedPages())
	pa, err := m.AllocPages(4, true) // zeroing untouched frames is free
	require.NoError(t, err)
	require.EqualValues(t, 5, r.TouchedPages())
	require.NoError(t, m.WriteU64(pa+8, 42))
	require.EqualValues(t, 6, r.TouchedPages())
	m.FreePages(pa, 4) // freed frames give their memory back
	require.EqualValues(t, 5, r.TouchedPages())
}

func TestRAMScrubPoisonsAllButKept(t *testing.T) {
	r := NewRAM(256 * kib) // 64 frames
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, PageSize) }
	for pfn := range PFN(8) {
		require.NoError(t, r.WriteRaw(pfn.Addr(), page(byte(pfn+1))))
	}
	// Keep frame 2, frames 5-6 (a range ending mid-frame keeps the whole
	// frame) and frame 20, which was never written.
	r.Scrub([]Range{
		{Start: 2 * PageSize, Size: PageSize},
		{Start: 5*PageSize + 100, Size: PageSize},
		{Start: 20 * PageSize, Size: 10},
	})
	got := make([]byte, PageSize)
	for pfn := range PFN(32) {
		require.NoError(t, r.ReadRaw(pfn.Addr(), got))
		switch {
		case pfn == 2 || pfn == 5 || pfn == 6:
			require.Equal(t, page(byte(pfn+1)), got, "kept pfn %d", pfn)
		case pfn == 20:
			require.Equal(t, page(0), got, "kept untouched pfn %d", pfn)
		default:
			require.Equal(t, page(PoisonByte), got, "scrubbed pfn %d", pfn)
		}
	}
	// Only the kept frames cost memory.
	require.EqualValues(t, 4, r.TouchedPages())

	// A second scrub keeps what it is told to, and nothing else.
	r.Scrub([]Range{{Start: 20 * PageSize, Size: PageSize}})
	require.NoError(t, r.ReadRaw(2*PageSize, got))
	require.Equal(t, page(PoisonByte), got)
	require.NoError(t, r.ReadRaw(20*PageSize, got))
	require.Equal(t, page(0), got)
	require.EqualValues(t, 1, r.TouchedPages())
}

func TestRAMPoisonOnePage(t *testing.T) {
	r := NewRAM(64 * kib)
	require.NoError(t, r.WriteRaw(3*PageSize, []byte{1, 2, 3}))
	require.NoError(t, r.Poison(3))
	require.NoError(t, r.Poison(4))
	got := make([]byte, 2*PageSize)
	require.NoError(t, r.ReadRaw(3*PageSize, got))
	require.Equal(t, bytes.Repeat([]byte{PoisonByte}, 2*PageSize), got)
	// After a scrub, poisoning is free: the background is the poison.
	r.Scrub(nil)
	require.NoError(t, r.Poison(5))
	require.EqualValues(t, 0, r.TouchedPages())
}

func TestPhysAddrHelpers(t *testing.T) {
	pa := PhysAddr(0x12345)
	require.Equal(t, PFN(0x12), pa.PFN())
	require.EqualValues(t, 0x345, pa.PageOffset())
	require.Equal(t, PhysAddr(0x12000), pa.PFN().Addr())
	require.Equal(t, PhysAddr(0x3000), Range{Start: 0x1000, Size: 0x2000}.End())
}

// After a scrub (poison background), frames zeroed whole share one zero
// frame until written: they read as zeros and cost no memory; a write
// gives the frame its own copy, a partial zeroing of a shared frame is a
// no-op, and a scrub drops or keeps them like any frame.
func TestRAMZeroedFramesShareUntilWritten(t *testing.T) {
	r := NewRAM(256 * kib)
	r.Scrub(nil)
	page := func(b byte) []byte { return bytes.Repeat([]byte{b}, PageSize) }
	got := make([]byte, PageSize)
	r.setRaw(3*PageSize, 2*PageSize, 0)
	require.EqualValues(t, 0, r.TouchedPages())
	for _, pfn := range []PFN{3, 4} {
		require.NoError(t, r.ReadRaw(pfn.Addr(), got))
		require.Equal(t, page(0), got)
	}
	r.setRaw(3*PageSize+10, 20, 0)
	require.EqualValues(t, 0, r.TouchedPages())

	require.NoError(t, r.WriteRaw(3*PageSize+1, []byte{7}))
	require.EqualValues(t, 1, r.TouchedPages())
	require.NoError(t, r.ReadRaw(3*PageSize, got))
	want := page(0)
	want[1] = 7
	require.Equal(t, want, got)
	require.NoError(t, r.ReadRaw(4*PageSize, got))
	require.Equal(t, page(0), got, "the shared frame was written through")

	// Zeroing a written frame whole shares again.
	r.setRaw(3*PageSize, PageSize, 0)
	require.EqualValues(t, 0, r.TouchedPages())
	r.Scrub([]Range{{Start: 4 * PageSize, Size: PageSize}})
	require.NoError(t, r.ReadRaw(3*PageSize, got))
	require.Equal(t, page(PoisonByte), got)
	require.NoError(t, r.ReadRaw(4*PageSize, got))
	require.Equal(t, page(0), got)
}

func TestRAMSaveRestore(t *testing.T) {
	r := NewRAM(256 * kib) // 64 frames
	kept := []Range{{Start: 2 * PageSize, Size: PageSize}, {Start: 10 * PageSize, Size: 2 * PageSize}}
	want := bytes.Repeat([]byte{0x5a}, 2*PageSize)
	require.NoError(t, r.WriteRaw(10*PageSize, want))
	img, err := r.Save(kept)
	require.NoError(t, err)

	// A boot scribbles over the kept frames and others.
	require.NoError(t, r.WriteRaw(10*PageSize, bytes.Repeat([]byte{1}, 2*PageSize)))
	require.NoError(t, r.WriteRaw(20*PageSize, []byte{2}))
	r.Restore(img)

	got := make([]byte, 2*PageSize)
	require.NoError(t, r.ReadRaw(10*PageSize, got))
	require.Equal(t, want, got)
	one := make([]byte, 1)
	require.NoError(t, r.ReadRaw(20*PageSize, one))
	require.Equal(t, byte(PoisonByte), one[0])

	_, err = r.Save([]Range{{Start: 64 * PageSize, Size: 1}})
	require.ErrorIs(t, err, syscall.EFAULT)
}

func TestRAMRestoreSharesFrames(t *testing.T) {
	src := NewRAM(256 * kib)
	want := bytes.Repeat([]byte{0x5a}, 3*PageSize)
	require.NoError(t, src.WriteRaw(4*PageSize, want))
	// Frames 4 and 5 whole, part of frame 6, and a piece of frame 8.
	img, err := src.Save([]Range{{Start: 4 * PageSize, Size: PageSize + 100}, {Start: 5 * PageSize, Size: PageSize + 100}, {Start: 8*PageSize + 7, Size: 9}})
	require.NoError(t, err)

	a, b := NewRAM(256*kib), NewRAM(256*kib)
	a.Restore(img)
	b.Restore(img)
	require.EqualValues(t, 2, a.TouchedPages(), "whole frames are shared, pieces copied")

	// A write to a shared frame copies it: the image and other RAMs keep
	// the saved bytes.
	require.NoError(t, a.WriteRaw(4*PageSize+1, []byte{1}))
	require.EqualValues(t, 3, a.TouchedPages())
	got := make([]byte, 2*PageSize+100)
	require.NoError(t, a.ReadRaw(4*PageSize, got))
	require.Equal(t, append(append([]byte{0x5a}, 1), want[2:len(got)]...), got)
	require.NoError(t, b.ReadRaw(4*PageSize, got))
	require.Equal(t, want[:len(got)], got)
	c := NewRAM(256 * kib)
	c.Restore(img)
	require.NoError(t, c.ReadRaw(4*PageSize, got))
	require.Equal(t, want[:len(got)], got)

	// Beyond the pieces, a partly kept frame reads as the RAM had it.
	one := make([]byte, 1)
	require.NoError(t, b.ReadRaw(6*PageSize+100, one))
	require.Equal(t, byte(0), one[0])
	require.NoError(t, b.ReadRaw(7*PageSize, one))
	require.Equal(t, byte(PoisonByte), one[0])

	// Scrubbing and zeroing shared frames gives nothing back that is not
	// the RAM's own; restoring again replaces what was written.
	require.NoError(t, a.Poison(5))
	a.Scrub(nil)
	require.EqualValues(t, 0, a.TouchedPages())
	a.Restore(img)
	require.NoError(t, a.ReadRaw(4*PageSize, got))
	require.Equal(t, want[:len(got)], got)
	require.EqualValues(t, 2, a.TouchedPages())
}

func TestRAMXorRaw(t *testing.T) {
	r := NewRAM(64 * kib)
	require.NoError(t, r.WriteRaw(PageSize, []byte{0x0f, 0xf0, 0xff}))
	require.NoError(t, r.XorRaw(PageSize+1, []byte{0xff, 0x0f}))
	got := make([]byte, 3)
	require.NoError(t, r.ReadRaw(PageSize, got))
	require.Equal(t, []byte{0x0f, 0x0f, 0xf0}, got)

	last := PhysAddr(r.Size() - 1)
	require.ErrorIs(t, r.XorRaw(last, []byte{1, 1}), syscall.EFAULT)
	require.NoError(t, r.ReadRaw(last, got[:1]))
	require.Equal(t, byte(0), got[0], "a failed XorRaw changes nothing")
}
