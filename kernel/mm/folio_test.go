package mm

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
)

func TestFolioLifecycle(t *testing.T) {
	m := newTestMM(t, 1*mib)
	free := m.Stats().FreePages
	f, err := m.FolioAlloc(2, true)
	require.NoError(t, err)
	require.EqualValues(t, 1, f.Refcount())
	require.EqualValues(t, 4, f.NrPages())
	require.EqualValues(t, 4*PageSize, f.Size())
	require.Equal(t, f.PA().PFN(), f.PFN())
	require.EqualValues(t, 2, f.Order())
	require.Same(t, m, f.MM())
	require.Same(t, f, m.PFNFolio(f.PFN()))
	require.Equal(t, 1, m.Folios())
	require.Contains(t, f.String(), "order 2")

	require.False(t, f.TestDirty())
	require.False(t, f.TestUptodate())
	f.MarkUptodate()
	f.MarkDirty()
	require.Equal(t, FolioUptodate|FolioDirty, f.Flags())
	f.ClearDirty()
	require.Equal(t, FolioUptodate, f.Flags())

	require.NoError(t, f.Write(3*PageSize, []byte("tail")))
	got := make([]byte, 4)
	require.NoError(t, f.Read(3*PageSize, got))
	require.Equal(t, "tail", string(got))

	f.Get()
	f.Pin()
	require.EqualValues(t, 3, f.Refcount())
	require.EqualValues(t, 1, f.Pincount())
	f.Unpin()
	f.Put()
	require.Equal(t, PageAllocated, m.PageState(f.PA()))
	f.Put()
	require.Equal(t, PageFree, m.PageState(f.PA()))
	require.Nil(t, m.PFNFolio(f.PFN()))
	require.Equal(t, 0, m.Folios())
	require.Equal(t, free, m.Stats().FreePages)
}

func TestFolioMisuseIsReported(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib)
	f, err := m.FolioAlloc(0, false)
	require.NoError(t, err)

	require.ErrorIs(t, f.Write(PageSize-2, []byte("abc")), syscall.EFAULT)
	reps := rec.take()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindWarn, reps[0].Kind)

	f.Unpin()
	reps = rec.take()
	require.Len(t, reps, 1)
	require.Contains(t, reps[0].Title, "unpin_folio() on unpinned folio")
	require.EqualValues(t, 1, f.Refcount())

	f.Put()
	require.Empty(t, rec.take())
	// Reading a freed folio names the caller, not the accessors.
	require.ErrorIs(t, f.Read(0, make([]byte, 4)), syscall.EFAULT)
	reps = rec.take()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindKASAN, reps[0].Kind)
	require.Equal(t, "KASAN: use-after-free in mm.TestFolioMisuseIsReported", reps[0].Title)
	f.Put()
	reps = rec.take()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindUAF, reps[0].Kind)
	require.Contains(t, reps[0].Title, "folio_put() on freed folio")

	f.Get()
	reps = rec.take()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindUAF, reps[0].Kind)

	_, err = m.FolioAlloc(MaxOrder+1, false)
	require.ErrorIs(t, err, syscall.ENOMEM)
}

func TestFolioFreedWhilePinnedWarns(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib)
	f, err := m.FolioAlloc(0, false)
	require.NoError(t, err)
	f.pins.Add(1) // a pin without its reference: a refcounting bug
	f.Put()
	reps := rec.take()
	require.Len(t, reps, 1)
	require.Equal(t, bug.KindWarn, reps[0].Kind)
	require.Contains(t, reps[0].Title, "freed while pinned")
}
