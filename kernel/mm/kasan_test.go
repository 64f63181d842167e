package mm

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
)

// requireOneKASAN asserts that exactly one KASAN report was filed and that
// its title and detail contain the given fragments.
func requireOneKASAN(t *testing.T, rec *recorder, title string, detail ...string) *bug.Report {
	t.Helper()
	reps := rec.take()
	require.Len(t, reps, 1)
	r := reps[0]
	require.Equal(t, bug.KindKASAN, r.Kind)
	require.Contains(t, r.Title, title)
	for _, d := range detail {
		require.Contains(t, r.Detail, d)
	}
	return r
}

func TestKASANUseAfterFree(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib)
	pa, err := m.AllocPages(0, true)
	require.NoError(t, err)
	require.NoError(t, m.WriteU64(pa, 7))
	m.FreePages(pa, 0)
	require.Empty(t, rec.take())

	_, err = m.ReadU64(pa + 16)
	require.ErrorIs(t, err, syscall.EFAULT)
	r := requireOneKASAN(t, rec, "KASAN: use-after-free in mm.TestKASANUseAfterFree",
		"Read of size 8 at addr", "is free", "Freed by task", "mm.TestKASANUseAfterFree")
	require.Contains(t, r.String(), "BUG (kasan): KASAN: use-after-free")

	require.ErrorIs(t, m.Write(pa, []byte{1}), syscall.EFAULT)
	requireOneKASAN(t, rec, "use-after-free", "Write of size 1")
	require.ErrorIs(t, m.Zero(pa, 8), syscall.EFAULT)
	requireOneKASAN(t, rec, "use-after-free", "Write of size 8")
}

func TestKASANAccessStraddlingAllocation(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib)
	pa, err := m.AllocPages(0, true)
	require.NoError(t, err)
	// The page after the allocation is free (never allocated): an access
	// running off the end is caught and copies nothing.
	buf := pattern(16, 3)
	require.ErrorIs(t, m.Write(pa+PageSize-8, buf), syscall.EFAULT)
	requireOneKASAN(t, rec, "wild-memory-access", "never allocated")
	got := make([]byte, 8)
	require.NoError(t, m.Read(pa+PageSize-8, got))
	require.Equal(t, make([]byte, 8), got)
	m.FreePages(pa, 0)
}

func TestKASANWildAccesses(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib, Range{Start: 4 * PageSize, Size: PageSize})
	cases := []struct {
		name   string
		pa     PhysAddr
		detail string
	}{
		{"never allocated", 10 * PageSize, "never allocated"},
		{"frame 0", 0, "reserved"},
		{"reserved, unclaimed", 4*PageSize + 8, "reserved"},
		{"beyond RAM", 1 * mib, "beyond the end of RAM"},
		{"wrapping", ^PhysAddr(0) - 2, "beyond the end of RAM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.ReadU32(c.pa)
			require.ErrorIs(t, err, syscall.EFAULT)
			requireOneKASAN(t, rec, "wild-memory-access", c.detail)
		})
	}
	// Zero-length accesses touch nothing and are fine anywhere.
	require.NoError(t, m.Read(10*PageSize, nil))
	require.Empty(t, rec.take())
}

func TestKASANDoubleAndInvalidFree(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib, Range{Start: 4 * PageSize, Size: PageSize})
	pa, err := m.AllocPages(2, false)
	require.NoError(t, err)
	before := m.Stats()

	m.FreePages(pa+PageSize, 2)
	requireOneKASAN(t, rec, "invalid-free", "not the head")
	m.FreePages(pa, 1)
	requireOneKASAN(t, rec, "invalid-free", "allocated with order 2")
	m.FreePages(pa+1, 2)
	requireOneKASAN(t, rec, "invalid-free", "unaligned")
	m.FreePages(4*PageSize, 0)
	requireOneKASAN(t, rec, "invalid-free", "reserved")
	m.FreePages(200*PageSize, 0)
	requireOneKASAN(t, rec, "invalid-free", "never allocated")
	m.FreePages(2*mib, 0)
	requireOneKASAN(t, rec, "invalid-free", "beyond end of RAM")
	require.Equal(t, before, m.Stats(), "a bad free changes nothing")

	m.FreePages(pa, 2)
	require.Empty(t, rec.take())
	m.FreePages(pa, 2)
	requireOneKASAN(t, rec, "double-free", "already free", "Freed by task")
	// Part of a freed block: still a double free.
	m.FreePages(pa+2*PageSize, 0)
	requireOneKASAN(t, rec, "double-free")
	checkFreeLists(t, m)
}

func TestKASANFreeLogForgetsOldFrees(t *testing.T) {
	m, rec := newRecordingMM(t, 1*mib)
	q, err := m.AllocPages(6, false)
	require.NoError(t, err)
	m.FreePages(q, 6)
	// Push that free out of the bounded log.
	churned := make(map[PhysAddr]bool)
	for range freeLogSize {
		p, err := m.AllocPages(0, false)
		require.NoError(t, err)
		churned[p] = true
		m.FreePages(p, 0)
	}
	target := q + 32*PageSize
	require.False(t, churned[target])
	_, err = m.ReadU8(target)
	require.ErrorIs(t, err, syscall.EFAULT)
	requireOneKASAN(t, rec, "use-after-free", "too old to be remembered")
}
