package mm

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// staleFile is a memfd of three pages whose page 1 holds a folio with
// stale bytes that is not uptodate (as one retrieved without PG_uptodate
// would be), between two written pages.
func staleFile(t *testing.T) (*Shmem, *memfile, *ShmemInode, *Folio) {
	t.Helper()
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "stale", 0)
	si := ShmemInodeOf(m.f)
	_, err := m.write(pattern(3*PageSize, 1))
	require.NoError(t, err)
	folio, err := s.mm.FolioAlloc(0, false)
	require.NoError(t, err)
	require.NoError(t, folio.Write(0, bytes.Repeat([]byte{0xee}, PageSize)))
	si.Lock()
	si.deleteFromPageCacheLocked(1)
	require.NoError(t, si.AddToPageCacheLocked(folio, 1))
	si.Unlock()
	folio.Put()
	require.False(t, folio.TestUptodate())
	return s, m, si, folio
}

// A folio that is not uptodate holds no data: a read sees zeros, SEEK_DATA
// and SEEK_HOLE see a hole (shmem_get_folio_gfp(SGP_READ),
// folio_seek_hole_data()).
func TestShmemNotUptodateReadsAsHole(t *testing.T) {
	_, m, _, _ := staleFile(t)
	defer m.f.Put()
	got := readAll(t, m.f)
	want := pattern(3*PageSize, 1)
	clear(want[PageSize : 2*PageSize])
	require.Equal(t, want, got)
	pos, err := m.seek(0, SeekHole)
	require.NoError(t, err)
	require.EqualValues(t, PageSize, pos)
	pos, err = m.seek(PageSize, SeekData)
	require.NoError(t, err)
	require.EqualValues(t, 2*PageSize, pos)
}

// A write into such a folio keeps only what it wrote
// (shmem_write_end()); then it is uptodate and dirty.
func TestShmemWriteClearsNotUptodate(t *testing.T) {
	_, m, _, folio := staleFile(t)
	defer m.f.Put()
	_, err := m.seek(PageSize+10, SeekSet)
	require.NoError(t, err)
	_, err = m.write([]byte("abc"))
	require.NoError(t, err)
	require.True(t, folio.TestUptodate())
	require.True(t, folio.TestDirty())
	page := make([]byte, PageSize)
	copy(page[10:], "abc")
	require.Equal(t, page, readAll(t, m.f)[PageSize:2*PageSize])
}

// Filling holes for a pin (SGP_CACHE) takes a cached folio as it is; a
// hole gets a zeroed, uptodate, clean folio.
func TestShmemPinKeepsCachedFolio(t *testing.T) {
	_, m, si, folio := staleFile(t)
	defer m.f.Put()
	si.Lock()
	require.NoError(t, si.truncateLocked(3*PageSize)) // no change
	si.SetSizeLocked(4 * PageSize)
	folios, err := si.PinFoliosLocked(0, 4*PageSize-1)
	require.NoError(t, err)
	si.Unlock()
	require.Same(t, folio, folios[1])
	require.False(t, folio.TestUptodate())
	require.True(t, folios[3].TestUptodate())
	require.False(t, folios[3].TestDirty())
	UnpinFolios(folios)
}

// drop_caches evicts the clean folios no one else holds: a pinned one and
// the dirty ones stay. An evicted page is a hole again.
func TestShmemDropPagecache(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	m := mustMemfd(t, s, "drop", 0)
	defer m.f.Put()
	si := ShmemInodeOf(m.f)
	_, err := m.write([]byte("written"))
	require.NoError(t, err)
	require.NoError(t, m.truncate(3*PageSize))
	si.Lock()
	folios, err := si.PinFoliosLocked(0, 3*PageSize-1) // fills pages 1 and 2, clean
	si.Unlock()
	require.NoError(t, err)
	require.Zero(t, s.DropPagecache(), "every clean folio is pinned")
	UnpinFolios(folios[2:])
	require.Equal(t, 1, s.DropPagecache(), "page 2 is clean and unpinned")
	UnpinFolios(folios[:2])
	require.Equal(t, 1, s.DropPagecache(), "page 1 too; page 0 is dirty")
	require.Zero(t, s.DropPagecache())
	pos, err := m.seek(0, SeekHole)
	require.NoError(t, err)
	require.EqualValues(t, PageSize, pos)
	got := readAll(t, m.f)
	require.Equal(t, "written", string(got[:7]))
	require.Equal(t, make([]byte, 3*PageSize-7), got[7:])
	// A shrink to the middle of the written page dirties it (it was
	// already); a partial page of a clean folio becomes dirty.
	require.NoError(t, m.truncate(PageSize+5))
	si.Lock()
	folios, err = si.PinFoliosLocked(0, PageSize+4)
	si.Unlock()
	require.NoError(t, err)
	UnpinFolios(folios)
	require.False(t, folios[1].TestDirty())
	require.NoError(t, m.truncate(PageSize+2))
	require.True(t, folios[1].TestDirty())
	require.Zero(t, s.DropPagecache())
}

// An evicted inode leaves the superblock's list; drop_caches walks only
// live ones.
func TestShmemInodeListFollowsEviction(t *testing.T) {
	s := newTestShmem(t, 4*mib)
	a := mustMemfd(t, s, "a", 0)
	b := mustMemfd(t, s, "b", 0)
	require.Len(t, s.list, 2)
	a.f.Put()
	require.Len(t, s.list, 1)
	require.Same(t, ShmemInodeOf(b.f), s.list[0])
	b.f.Put()
	require.Empty(t, s.list)
	require.Zero(t, s.DropPagecache())
}

// Folio.zeroOutside keeps exactly the bytes given.
func TestFolioZeroOutside(t *testing.T) {
	m := newTestMM(t, 1*mib)
	f, err := m.FolioAlloc(0, false)
	require.NoError(t, err)
	defer f.Put()
	require.NoError(t, f.Write(0, bytes.Repeat([]byte{1}, PageSize)))
	require.NoError(t, f.zeroOutside(100, 3))
	got := make([]byte, PageSize)
	require.NoError(t, f.Read(0, got))
	want := make([]byte, PageSize)
	copy(want[100:], []byte{1, 1, 1})
	require.Equal(t, want, got)
}
