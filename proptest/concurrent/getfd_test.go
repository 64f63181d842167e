package concurrent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGetFDRacingClose: an F_GETFD that looked its fd up before a sibling
// thread closed it reads the fd's close-on-exec bit after the close, and
// Linux leaves that bit as it was (__put_unused_fd() clears only the open
// bit), so the answer is the closed fd's flag: linearizable as the fcntl
// before the close. The number is also reused: T0's close frees it, T1's
// RETRIEVE_SESSION gets it (O_CLOEXEC), and T2's close of T0's slot
// closes T1's session under the fcntl. Found by the main job (luo
// concurrent -seed 13703110468347057195): the port cleared the bit at
// close and answered 0. Every schedule with at most two preemptions must
// be linearizable.
func TestGetFDRacingClose(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KClose, Src: r + 2}},
		{{Kind: KRetrieve, Name: "a", Dst: r}, {Kind: KGetFD, Src: r}},
		{{Kind: KClose, Src: r + 2}},
	}
	runs, err := Exhaust(Config{Rounds: 1, OutDir: t.TempDir()}, prog, 2, 3000)
	require.NoError(t, err)
	require.Greater(t, runs, 10)
	t.Logf("%d schedules with at most two preemptions, all linearizable", runs)
}
