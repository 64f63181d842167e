package mm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

// TestAllocatorHelpersAssertZoneLock: a free-list helper called without
// zone->lock is reported; with it, and through the public API, nothing is.
func TestAllocatorHelpersAssertZoneLock(t *testing.T) {
	m, rec := newRecordingMM(t, 1<<20)
	pa, err := m.AllocPages(0, false)
	require.NoError(t, err)
	m.FreePages(pa, 0)
	m.lock.Lock()
	_, _ = m.checkReservedLocked(pa, 0)
	m.lock.Unlock()
	require.Empty(t, rec.take())

	_, _ = m.checkReservedLocked(pa, 0)
	reps := rec.take()
	require.Len(t, reps, 1)
	require.Contains(t, reps[0].Title, locking.TitleAssertHeld)
}
