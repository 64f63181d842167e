package liveupdate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
	"luomodel/kernel/locking"
)

// TestFileSetHelpersAssertSessionMutex: luo_file's *Locked functions
// report a lockdep_assert_held() failure when run without the owning
// session's mutex.
func TestFileSetHelpersAssertSessionMutex(t *testing.T) {
	tk := newTestKernel(t)
	var got []*bug.Report
	s := tk.luo.sessionAlloc([SessionNameLength]byte{'x'})
	tk.luo.sessionLock(s)
	require.False(t, tk.luo.tokenIsUsedLocked(&s.fileSet, 1))
	s.mutex.Unlock()

	tk.rep.SetHandler(func(r *bug.Report) { got = append(got, r) })
	require.False(t, tk.luo.tokenIsUsedLocked(&s.fileSet, 1))
	require.Len(t, got, 1)
	require.Equal(t, locking.TitleAssertHeld, got[0].Title)
	require.Contains(t, got[0].Detail, "luo_session.mutex")
}
