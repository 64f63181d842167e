package concurrent

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/sched"
)

// TestLookupFindsNumbersNewHolder: a close drops "b"'s fd 5, a create of
// "a" installs its new session at 5 before it returns, and a dup of fd 5
// that started after the install dups "a": "b" is then released and only
// "a" is left. Found by a luo concurrent run (seed 5157541799566537695),
// whose schedule this replays: the checker resolved the lookup to the file
// the close's pin keeps whenever that step succeeded, which left "b" held
// by the dup, so the create's session was never tried.
func TestLookupFindsNumbersNewHolder(t *testing.T) {
	prog := Program{
		{{Kind: KRetrieve, Name: "b", Dst: SlotResult + 1, Pre: true}, {Kind: KClose, Src: SlotResult + 1}},
		{{Kind: KCreate, Name: "a", Dst: SlotResult}},
		{{Kind: KRetrieve, Name: "a", Dst: SlotResult + 4}, {Kind: KDupFD, Src: SlotResult + 1, Dst: SlotResult}, {Kind: KRetrieve, Name: "b", Dst: SlotResult}},
	}
	choices := make([]int, 30)
	for _, i := range []int{1, 2, 10, 15, 29} {
		choices[i] = 1
	}
	out := replayRound(t, prog, choices)
	// The schedule still reaches the case: the dup succeeds while "b" is
	// still listed.
	require.Equal(t, int64(1), out.n[KDupFD]["ok"], "the replayed schedule no longer reaches the case")
	require.Equal(t, int64(1), out.n[KRetrieve]["EINVAL"], "the replayed schedule no longer reaches the case")
}

// replayRound runs prog as round 1 of a fresh check under the given
// scheduling choices, requires it to pass, and returns its outcomes.
func replayRound(t *testing.T, prog Program, choices []int) *Outcomes {
	t.Helper()
	c, err := newChecker(Config{Rounds: 1, OutDir: t.TempDir()}, true, nil)
	require.NoError(t, err)
	c.out = &Outcomes{}
	require.Nil(t, c.round(1, prog, sched.Replay(choices)))
	return c.out
}
