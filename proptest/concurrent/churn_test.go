package concurrent

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/sched"
)

// midFinishRounds are two rounds in which the memfd handler's
// unregistration and a test FLB's query race the finish of an incoming
// session holding, oldest first, a test file and a memfd: the first
// round hands "a" over so, the second finishes it (ends, a FINISH or the
// close that releases it) while T0 unregisters the handler and queries
// the FLB.
func midFinishRounds(ends Instr) []Program {
	hand := Program{
		{
			{Kind: KCreate, Name: "a", Dst: SlotResult + 2, Pre: true},
			{Kind: KPreserve, Src: SlotResult + 2, File: firstTestFile, Token: 1, Pre: true},
			{Kind: KPreserve, Src: SlotResult + 2, File: 0, Token: 2, Pre: true},
			{Kind: KGetName, Src: SlotResult + 2},
			{Kind: KLoadMod, Post: true},
		},
		{{Kind: KGetName, Src: SlotResult + 2}},
	}
	race := Program{
		{
			{Kind: KRetrieve, Name: "a", Dst: SlotResult, Pre: true},
			{Kind: KUnregister},
			{Kind: KFLBGet, FLB: 0},
		},
		{ends},
	}
	return []Program{hand, race}
}

// TestUnregisterMidFinish: a FINISH frees its session's files newest
// first, each dropping its pin on its handler, so the memfd handler's
// unregistration may succeed once the session's memfd is gone and
// before its older test file is, whose FLB a query then still finds
// (unregisterMidFinish). Every schedule of the second round with at most
// one preemption is linearizable; one of them, the finish preempted
// between its two files, was "not linearizable" before (found by a
// 10-minute `luo concurrent` hunt, seed 18173280316578160789, with a
// FINISH; a close's release finishes the same way).
func TestUnregisterMidFinish(t *testing.T) {
	for _, ends := range []Instr{{Kind: KFinish, Src: SlotResult}, {Kind: KClose, Src: SlotResult}} {
		t.Run(ends.Kind.String(), func(t *testing.T) {
			progs := midFinishRounds(ends)
			cfg := Config{Rounds: len(progs), OutDir: t.TempDir()}
			su := &setups{}
			require.Nil(t, replay(cfg, su, progs[:1], nil, nil))
			x := sched.NewDFS(1)
			for x.Next() && x.Runs() <= 3000 {
				f := replay(cfg, su, progs, [][]int{nil}, x)
				require.Nil(t, f, "schedule %d: %v", x.Runs(), f)
			}
			require.Greater(t, x.Runs(), 10)
			t.Logf("%d schedules with at most one preemption, all linearizable", x.Runs())
		})
	}
}
