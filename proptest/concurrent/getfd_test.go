package concurrent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGetFDRacingClose: an F_GETFD looks its fd up, then reads the
// number's close-on-exec bit without the table's lock, so a sibling
// thread's close in between makes it read whatever the number's bit is
// then. Linux leaves the bit at close (__put_unused_fd() clears only the
// open bit), and every reservation of the number sets or clears it, one
// that fails too. Every schedule with at most two preemptions (one for
// the second program) must be linearizable:
//   - T0's close frees a number, T1's RETRIEVE_SESSION gets it
//     (O_CLOEXEC), T2's close of T0's slot closes T1's session under
//     T1's F_GETFD, which answers FD_CLOEXEC (luo concurrent -seed
//     13703110468347057195: the port cleared the bit at close and
//     answered 0);
//   - T1's F_GETFD of its dup (no O_CLOEXEC) races T2's close of it, and
//     T0's RETRIEVE_SESSION of the retrieved "a" reserves the number
//     with O_CLOEXEC before its EINVAL: the F_GETFD answers FD_CLOEXEC for
//     an fd that never had it (luo concurrent -seed
//     12047433206067927489).
func TestGetFDRacingClose(t *testing.T) {
	r := SlotResult
	for _, c := range []struct {
		bound int
		prog  Program
	}{
		{2, Program{
			{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KClose, Src: r + 2}},
			{{Kind: KRetrieve, Name: "a", Dst: r}, {Kind: KGetFD, Src: r}},
			{{Kind: KClose, Src: r + 2}},
		}},
		{1, Program{
			{{Kind: KRetrieve, Name: "a", Dst: r, Pre: true}, {Kind: KRetrieve, Name: "a", Dst: r}},
			{{Kind: KDup, Src: SlotDev, Dst: r}, {Kind: KGetFD, Src: r}},
			{{Kind: KClose, Src: r}},
		}},
	} {
		runs, err := Exhaust(Config{Rounds: 1, OutDir: t.TempDir()}, c.prog, c.bound, 3000)
		require.NoError(t, err)
		require.Greater(t, runs, 10)
		t.Logf("%d schedules with at most %d preemptions, all linearizable", runs, c.bound)
	}
}
