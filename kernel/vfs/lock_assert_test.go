package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/locking"
)

// TestLockedHelpersAssertFileLock: the fd table's *Locked helpers report
// a lockdep_assert_held() failure when called without file_lock, and none
// with it.
func TestLockedHelpersAssertFileLock(t *testing.T) {
	v, reports := recordingVFS(t)
	fds := v.NewFDTable(8)
	fds.fileLock.Lock()
	fds.findNextFDLocked(0)
	require.Nil(t, fds.removeLocked(3))
	fds.fileLock.Unlock()
	require.Empty(t, reports())

	require.Nil(t, fds.removeLocked(3))
	reps := reports()
	require.NotEmpty(t, reps)
	require.Equal(t, locking.TitleAssertHeld, reps[0].Title)
	require.Contains(t, reps[0].Detail, "files_struct.file_lock")
}
