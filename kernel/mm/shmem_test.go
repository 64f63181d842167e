package mm

import (
	"bytes"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"luomodel/kernel/vfs"
)

// readAll reads the whole file from offset 0.
func readAll(t *testing.T, f *vfs.File) []byte {
	t.Helper()
	m := &memfile{f: f}
	var out []byte
	buf := make([]byte, 3000) // not a page multiple on purpose
	for {
		n, err := m.read(buf)
		require.NoError(t, err)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

func TestShmemWriteReadSeek(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "rw", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)

	data := pattern(3*PageSize+123, 5)
	n, err := m.write(data)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	require.EqualValues(t, len(data), m.pos)
	require.EqualValues(t, len(data), si.Size())
	require.Equal(t, data, readAll(t, m.f))

	// Reading at EOF returns 0; lseek moves the position.
	n, err = m.read(make([]byte, 10))
	require.NoError(t, err)
	require.Zero(t, n)
	pos, err := m.seek(-123, SeekEnd)
	require.NoError(t, err)
	require.EqualValues(t, 3*PageSize, pos)
	got := make([]byte, 200)
	n, err = m.read(got)
	require.NoError(t, err)
	require.Equal(t, 123, n)
	require.Equal(t, data[3*PageSize:], got[:n])
	pos, err = m.seek(-100, SeekCur)
	require.NoError(t, err)
	require.EqualValues(t, 3*PageSize+23, pos)
	pos, err = m.seek(0, SeekCur)
	require.NoError(t, err)
	require.EqualValues(t, 3*PageSize+23, pos)
	pos, err = m.seek(10, SeekSet)
	require.NoError(t, err)
	require.EqualValues(t, 10, pos)

	// Overwrite in the middle, across a page boundary.
	m.pos = PageSize - 2
	_, err = m.write([]byte("ABCD"))
	require.NoError(t, err)
	copy(data[PageSize-2:], "ABCD")
	require.Equal(t, data, readAll(t, m.f))
	require.EqualValues(t, len(data), si.Size())

	// Bad seeks.
	_, err = m.seek(-1, SeekSet)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = m.seek(-int64(len(data))-1, SeekEnd)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = m.seek(0, 7)
	require.ErrorIs(t, err, syscall.EINVAL)
	m.pos = 5
	_, err = m.seek(MaxLFSFileSize, SeekCur)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.EqualValues(t, 5, m.pos, "a failed seek leaves the position")
	// Seeking past the end is fine; writing there makes a hole.
	pos, err = m.seek(1*mib, SeekSet)
	require.NoError(t, err)
	require.EqualValues(t, 1*mib, pos)

	// Negative positions are refused by read and write.
	m.pos = -1
	_, err = m.read(got)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = m.write(got)
	require.ErrorIs(t, err, syscall.EINVAL)
}

func TestShmemHoles(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "holes", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)

	m.pos = 5*PageSize + 10
	_, err := m.write([]byte("data"))
	require.NoError(t, err)
	require.EqualValues(t, 5*PageSize+14, si.Size())
	si.LockShared()
	require.Equal(t, 1, si.NrFoliosLocked(), "holes cost nothing")
	require.NotNil(t, si.LookupFolioLocked(5))
	require.Nil(t, si.LookupFolioLocked(0))
	si.UnlockShared()

	want := make([]byte, 5*PageSize+14)
	copy(want[5*PageSize+10:], "data")
	require.Equal(t, want, readAll(t, m.f))

	// SEEK_DATA / SEEK_HOLE.
	pos, err := m.seek(0, SeekData)
	require.NoError(t, err)
	require.EqualValues(t, 5*PageSize, pos)
	pos, err = m.seek(5*PageSize+3, SeekData)
	require.NoError(t, err)
	require.EqualValues(t, 5*PageSize+3, pos)
	pos, err = m.seek(0, SeekHole)
	require.NoError(t, err)
	require.EqualValues(t, 0, pos)
	pos, err = m.seek(5*PageSize+1, SeekHole)
	require.NoError(t, err)
	require.EqualValues(t, 5*PageSize+14, pos, "the end of file is a hole")
	_, err = m.seek(5*PageSize+14, SeekData)
	require.ErrorIs(t, err, syscall.ENXIO)
	_, err = m.seek(-1, SeekHole)
	require.ErrorIs(t, err, syscall.ENXIO)
	require.NoError(t, m.truncate(10*PageSize))
	_, err = m.seek(6*PageSize, SeekData)
	require.ErrorIs(t, err, syscall.ENXIO)
}

func TestShmemTruncate(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	mm := s.MM()
	free := mm.Stats().FreePages
	m := mustMemfd(t, s, "trunc", 0)
	si := ShmemInodeOf(m.f)

	data := pattern(4*PageSize, 1)
	_, err := m.write(data)
	require.NoError(t, err)
	require.Equal(t, free-4, mm.Stats().FreePages)

	// Shrink into the middle of page 1: pages 2 and 3 are freed.
	require.NoError(t, m.truncate(PageSize+100))
	require.EqualValues(t, PageSize+100, si.Size())
	require.Equal(t, free-2, mm.Stats().FreePages)
	require.Equal(t, data[:PageSize+100], readAll(t, m.f))

	// Grow: a hole, and the old tail of page 1 reads as zeros (it was
	// zeroed by the shrink, not just hidden).
	require.NoError(t, m.truncate(3*PageSize))
	want := make([]byte, 3*PageSize)
	copy(want, data[:PageSize+100])
	require.Equal(t, want, readAll(t, m.f))
	require.Equal(t, free-2, mm.Stats().FreePages)

	require.ErrorIs(t, m.truncate(-1), syscall.EINVAL)
	require.NoError(t, m.truncate(3*PageSize)) // same size: nothing happens
	require.NoError(t, m.truncate(0))
	require.Equal(t, free, mm.Stats().FreePages)
	require.Empty(t, readAll(t, m.f))
	m.f.Put()
}

func TestShmemFrozenRejectsSizeChanges(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "frozen", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)
	_, err := m.write(pattern(PageSize+10, 2))
	require.NoError(t, err)

	si.Lock()
	si.FreezeLocked(true)
	require.True(t, si.FrozenLocked())
	si.Unlock()

	require.ErrorIs(t, m.truncate(5), syscall.EPERM)
	require.ErrorIs(t, m.truncate(1*mib), syscall.EPERM)
	require.NoError(t, m.truncate(PageSize+10), "no size change is fine")
	m.pos = PageSize + 5
	n, err := m.write([]byte("0123456789")) // crosses EOF: EPERM, nothing written
	require.ErrorIs(t, err, syscall.EPERM)
	require.Zero(t, n)
	m.pos = 2*PageSize - 3
	n, err = m.write(pattern(10, 0))
	require.ErrorIs(t, err, syscall.EPERM)
	require.Zero(t, n)
	m.pos = 0
	n, err = m.write([]byte("inside")) // within the size: allowed
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.EqualValues(t, PageSize+10, si.Size())

	si.Lock()
	si.FreezeLocked(false)
	si.Unlock()
	require.NoError(t, m.truncate(5))
}

func TestShmemShortWriteAtFreezeBoundary(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "short", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)
	require.NoError(t, m.truncate(2*PageSize))
	si.Lock()
	si.FreezeLocked(true)
	si.Unlock()
	// The first page fits, the second would grow the file: a short write.
	m.pos = PageSize
	n, err := m.write(pattern(2*PageSize, 1))
	require.NoError(t, err)
	require.Equal(t, PageSize, n)
	require.EqualValues(t, 2*PageSize, m.pos)
	si.Lock()
	si.FreezeLocked(false)
	si.Unlock()
}

func TestShmemWriteENOMEM(t *testing.T) {
	s := newTestShmem(t, 64*kib) // 15 usable frames
	m := mustMemfd(t, s, "big", 0)
	n, err := m.write(pattern(20*PageSize, 1))
	require.NoError(t, err, "a short write reports progress")
	require.Equal(t, 15*PageSize, n)
	n, err = m.write([]byte("more"))
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.Zero(t, n)
	m.f.Put()
	require.EqualValues(t, 15, s.MM().Stats().FreePages)
}

func TestShmemCloseReleasesAllFolios(t *testing.T) {
	s := newTestShmem(t, 8*mib)
	mm := s.MM()
	before := mm.Stats()
	var files []*memfile
	for i := range 5 {
		m := mustMemfd(t, s, fmt.Sprint("leak", i), 0)
		m.pos = int64(i) * 3 * PageSize
		_, err := m.write(pattern(10*PageSize+i, byte(i)))
		require.NoError(t, err)
		require.NoError(t, m.truncate(int64(i+20)*PageSize))
		files = append(files, m)
	}
	require.EqualValues(t, 5, s.LiveInodes())
	require.Less(t, mm.Stats().FreePages, before.FreePages)
	for _, m := range files {
		m.f.Get()
		m.f.Put() // not the last reference: nothing is released
		require.False(t, m.f.Released())
		m.f.Put()
	}
	require.EqualValues(t, 0, s.LiveInodes())
	require.Equal(t, before, mm.Stats())
	require.Equal(t, 0, mm.Folios())
	vfs.CheckNoLeaks(t, s.vfs)
}

func TestShmemPinFoliosFillsHoles(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "pin", 0)
	si := ShmemInodeOf(m.f)
	m.pos = PageSize
	_, err := m.write([]byte("x"))
	require.NoError(t, err)
	require.NoError(t, m.truncate(3*PageSize+1))

	si.Lock()
	_, err = si.PinFoliosLocked(0, 4*PageSize) // past i_size
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = si.PinFoliosLocked(5, 4)
	require.ErrorIs(t, err, syscall.EINVAL)
	folios, err := si.PinFoliosLocked(0, si.Size()-1)
	require.NoError(t, err)
	require.Len(t, folios, 4)
	for i, f := range folios {
		require.EqualValues(t, i, f.Index())
		require.Same(t, si, f.Mapping())
		require.True(t, f.TestUptodate())
		require.EqualValues(t, 1, f.Pincount())
		require.EqualValues(t, 2, f.Refcount()) // page cache + pin
		require.Same(t, f, si.LookupFolioLocked(uint64(i)))
	}
	require.True(t, folios[1].TestDirty(), "written")
	require.False(t, folios[0].TestDirty(), "hole filled by the pin")
	require.Equal(t, 4, si.NrFoliosLocked())
	si.Unlock()

	// The file goes away while pinned: the folios outlive it.
	m.f.Put()
	for _, f := range folios {
		require.EqualValues(t, 1, f.Refcount())
		require.Nil(t, f.Mapping())
	}
	want := make([]byte, PageSize)
	want[0] = 'x'
	got := make([]byte, PageSize)
	require.NoError(t, folios[1].Read(0, got))
	require.Equal(t, want, got)
	UnpinFolios(folios)
	require.Equal(t, 0, s.MM().Folios())
}

func TestShmemPinFoliosENOMEMUnpins(t *testing.T) {
	s := newTestShmem(t, 64*kib) // 15 usable frames
	m := mustMemfd(t, s, "pin", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)
	require.NoError(t, m.truncate(20*PageSize))
	si.Lock()
	_, err := si.PinFoliosLocked(0, si.Size()-1)
	require.ErrorIs(t, err, syscall.ENOMEM)
	for i := range uint64(15) {
		require.EqualValues(t, 0, si.LookupFolioLocked(i).Pincount())
	}
	si.Unlock()
}

// TestShmemRestorePath drives what memfd_luo's retrieve does: a new memfd
// from MemfdAllocFile, its size set, and folios claimed from hand-over
// memory inserted into its page cache.
func TestShmemRestorePath(t *testing.T) {
	rep := failReporter(t)
	ram := NewRAM(4 * mib)
	// The "previous kernel" left two pages at frames 100 and 101.
	require.NoError(t, ram.WriteRaw(100*PageSize, []byte("page zero")))
	require.NoError(t, ram.WriteRaw(101*PageSize, []byte("page two")))
	s := newTestShmem(t, 4*mib)
	s.mm = New(ram, rep, []Range{{Start: 100 * PageSize, Size: 2 * PageSize}})

	f, err := s.MemfdAllocFile("", 0)
	require.NoError(t, err)
	require.Equal(t, "", f.Name())
	require.Equal(t, MemfdFileFlags, f.Flags())
	si := ShmemInodeOf(f)
	require.EqualValues(t, F_SEAL_SEAL, si.Seals())

	si.Lock()
	si.SetSizeLocked(3*PageSize - 5)
	for i, idx := range []uint64{0, 2} {
		folio, err := s.mm.ClaimFolio(PhysAddr(100+i)*PageSize, 0)
		require.NoError(t, err)
		require.NoError(t, si.AddToPageCacheLocked(folio, idx))
		require.ErrorIs(t, si.AddToPageCacheLocked(folio, idx+10), syscall.EINVAL)
		folio.MarkUptodate()
		folio.MarkDirty()
		folio.Put() // the cache keeps its own reference
		require.EqualValues(t, 1, folio.Refcount())
	}
	other, err := s.mm.FolioAlloc(0, true)
	require.NoError(t, err)
	require.ErrorIs(t, si.AddToPageCacheLocked(other, 0), syscall.EEXIST)
	big, err := s.mm.FolioAlloc(1, true)
	require.NoError(t, err)
	require.ErrorIs(t, si.AddToPageCacheLocked(big, 5), syscall.EINVAL)
	si.Unlock()
	other.Put()
	big.Put()

	got := readAll(t, f)
	require.Len(t, got, 3*PageSize-5)
	require.Equal(t, "page zero", string(got[:9]))
	require.Equal(t, make([]byte, PageSize), got[PageSize:2*PageSize])
	require.Equal(t, "page two", string(got[2*PageSize:2*PageSize+8]))
	f.Put()
	require.Equal(t, 0, s.mm.Folios())
	require.EqualValues(t, 1, s.mm.Stats().ReservedPages)
}

func TestShmemConcurrentWriters(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := newTestShmem(t, 16*mib)
	m := mustMemfd(t, s, "concurrent", 0)
	const writers, chunk, rounds = 8, 1500, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer owns disjoint byte ranges that straddle pages
			// shared with its neighbours; a reader runs alongside.
			mine := &memfile{f: m.f}
			for r := range rounds {
				mine.pos = int64(r*writers+w) * chunk
				n, err := mine.write(bytes.Repeat([]byte{byte(w + 1)}, chunk))
				if err != nil || n != chunk {
					t.Errorf("writer %d: n=%d err=%v", w, n, err)
					return
				}
				rd := &memfile{f: m.f}
				if _, err := rd.read(make([]byte, 5000)); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, m.f)
	require.Len(t, got, writers*rounds*chunk)
	for i, b := range got {
		slot := i / chunk
		require.Equal(t, byte(slot%writers+1), b, "byte %d", i)
	}
	m.f.Put()
	require.EqualValues(t, 0, s.LiveInodes())
}

func TestShmemHugeSparseFile(t *testing.T) {
	s := newTestShmem(t, 1*mib) // 255 usable frames
	m := mustMemfd(t, s, "huge", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)
	require.NoError(t, m.truncate(MaxLFSFileSize))
	m.pos = MaxLFSFileSize - 3
	n, err := m.write([]byte("abcdef")) // clipped at s_maxbytes
	require.NoError(t, err)
	require.Equal(t, 3, n)
	_, err = m.write([]byte("x"))
	require.ErrorIs(t, err, syscall.EFBIG)
	pos, err := m.seek(0, SeekData)
	require.NoError(t, err)
	require.EqualValues(t, (MaxLFSFileSize-3)&^(PageSize-1), pos)
	pos, err = m.seek(1*gib, SeekHole)
	require.NoError(t, err)
	require.EqualValues(t, 1*gib, pos)
	m.pos = MaxLFSFileSize - 3
	got := make([]byte, 10)
	n, err = m.read(got)
	require.NoError(t, err)
	require.Equal(t, "abc", string(got[:n]))

	// Pinning a file larger than memory runs out of memory cleanly.
	si.Lock()
	_, err = si.PinFoliosLocked(0, si.Size()-1)
	require.ErrorIs(t, err, syscall.ENOMEM)
	si.Unlock()
	require.NoError(t, m.truncate(0))
	require.EqualValues(t, 255, s.MM().Stats().FreePages)
}
