package concurrent

import (
	"testing"

	"github.com/anishathalye/porcupine"
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

// requireOnePreemptionLinearizable runs every schedule of prog, as round 1
// of a fresh check, with at most one preemption (up to 3,000) and requires
// more than ten of them, all passing.
func requireOnePreemptionLinearizable(t *testing.T, prog Program) {
	t.Helper()
	runs, err := Exhaust(Config{Rounds: 1, OutDir: t.TempDir()}, prog, 1, 3000)
	require.NoError(t, err, "%v", prog)
	require.Greater(t, runs, 10)
	t.Logf("%d schedules with at most one preemption, all linearizable", runs)
}

// TestFailureChoicesPerRound: a failure has one choices entry per round,
// even a round that failed before its schedule ran (its setup or
// prologue), which has none of its own; Minimize indexes the failing
// round's entry (it panicked on such a failure in round 2).
func TestFailureChoicesPerRound(t *testing.T) {
	done := [][]int{{1, 0, 2}}
	progs := []Program{{}, {}}
	f := &Failure{Category: "round prologue: port and model disagree"}
	f.attach(progs, done)
	require.Len(t, f.Choices, len(progs))
	require.Equal(t, []int{1, 0, 2}, f.Choices[0])
	require.Nil(t, f.Choices[1])

	g := &Failure{Category: "not linearizable", Choices: [][]int{{0, 1}}}
	g.attach(progs, done)
	require.Equal(t, [][]int{{1, 0, 2}, {0, 1}}, g.Choices)
}

// TestUndecidedRoundEndsCheck: a round whose linearizability search
// outlasts Config.LinTimeout passes without a verdict and leaves the
// model's state unknown, so the check ends there; before, the next round
// started from the model's state at the undecided round's start, and its
// setup disagreed with the port (the module the round unloaded was still
// loaded in the model). Found by the main job (luo concurrent -seed
// 18395534166334711099): no descent linearizes its round 1, and
// porcupine's search of it took 30 s then (10 s LinTimeout); here the
// search times out at once.
func TestUndecidedRoundEndsCheck(t *testing.T) {
	r := SlotResult
	round1 := Program{
		{
			{Kind: KRetrieve, Name: "a", Dst: r, Pre: true},
			{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true},
			{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true},
			{Kind: KPreserve, Src: r + 2, File: 1, Token: 2, Pre: true},
			{Kind: KCreate, Name: "b", Dst: r + 3},
			{Kind: KUnloadMod},
			{Kind: KFork},
			{Kind: KExec},
			{Kind: KRetrieve, Name: "c", Dst: r},
		},
		{{Kind: KRetrieve, Name: "b", Dst: r + 4}, {Kind: KCreate, Name: "c", Dst: r + 2}, {Kind: KCreate, Name: "c", Dst: r + 3}},
		{{Kind: KCreate, Name: "a", Dst: r}, {Kind: KUnloadMod}, {Kind: KRetrieve, Name: "a", Dst: r + 4}, {Kind: KRegister}},
	}
	round2 := Program{{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}}}
	choices := make([]int, 115)
	for _, i := range []int{0, 37, 45, 58, 114} {
		choices[i] = 1
	}
	cfg := Config{Rounds: 2, OutDir: t.TempDir()}
	searched := 0
	cfg.linCheck = func(porcupine.Model, []porcupine.Operation) (porcupine.CheckResult, porcupine.LinearizationInfo) {
		searched++
		return porcupine.Unknown, porcupine.LinearizationInfo{} // timed out
	}
	c, err := newChecker(cfg.withDefaults(), true, nil)
	require.NoError(t, err)
	require.Nil(t, c.round(1, round1, sched.Replay(choices)))
	require.Equal(t, 1, searched, "a descent linearized round 1: it no longer tests a timeout")
	require.True(t, c.undecided)
	require.Nil(t, replay(cfg, &setups{}, []Program{round1, round2}, [][]int{choices}, nil))
	require.Equal(t, 2, searched, "the replay's round 1 is undecided too")
}

// TestLookupFindsKilledCallsFD: a dup that the reboot kills after it
// installed its fd at the number a close freed, before it returned, leaves
// that number to a later close, which closes the dup's fd: the number of
// a killed call's fd is unknown, and a lookup that finds nothing else may
// have found it. Found by the main job (luo concurrent -seed
// 9572192757882193989), whose schedule this replays: T0's close of "b"
// frees fd 5, T2's dup of the device takes it and is killed, T1's close
// of fd 5 returns 0.
func TestLookupFindsKilledCallsFD(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true}, {Kind: KClose, Src: r + 1}},
		{{Kind: KClose, Src: r + 1}, {Kind: KReboot}},
		{{Kind: KDup, Src: SlotDev, Dst: r}},
	}
	choices := make([]int, 32)
	choices[14], choices[19], choices[26], choices[31] = 2, 1, 1, 1
	out := replayRound(t, prog, choices)
	require.Equal(t, int64(2), out.n[KClose]["ok"], "the replayed schedule no longer closes fd 5 twice")
}

// TestPinKeepsClosedInstance: a close whose slot's fd was closed already
// closes the number's new holder, and its pin must keep that instance, so
// that a call that looked the holder up before the close still reaches
// its file. Found by the main job (luo concurrent -seed
// 9309754645610715461), whose schedule this replays: T1 closes "c" (fd
// 5) and retrieves "a" at 5; T0's close of "c"'s slot finds 5 and closes
// "a" while T1's RETRIEVE_FD on "a" runs, which then gets its memfd at
// the freed 5. The pin kept the slot's instance ("c"), so the RETRIEVE_FD
// could only be linearized before the close, where its memfd, newer and
// at the same number, was taken for the close's target.
func TestPinKeepsClosedInstance(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KCreate, Name: "a", Dst: r + 3, Pre: true}, {Kind: KClose, Src: r + 2}},
		{{Kind: KClose, Src: r + 2}, {Kind: KRetrieve, Name: "a", Dst: r}, {Kind: KRetrieveFD, Src: r, Token: 1, Dst: r}},
		{{Kind: KClose, Src: r + 3}, {Kind: KClose, Src: r + 2}},
	}
	choices := make([]int, 48)
	choices[0], choices[8], choices[26], choices[47] = 1, 1, 1, 1
	out := replayRound(t, prog, choices)
	require.Equal(t, int64(1), out.n[KRetrieveFD]["ok"], "the replayed schedule no longer retrieves the memfd")
	require.Equal(t, int64(3), out.n[KClose]["ok"], "the replayed schedule no longer closes \"a\" through \"c\"'s slot")
}

// TestBusyOpenAfterSerialization: an open of /dev/liveupdate while it is
// open fails in luo_open() before any LUO lock, so a thread runs it in
// the old kernel after the reboot serialized, behind its FLB
// unregistration that came too late to keep the FLB from crossing (luo
// concurrent -seed 1650118802214265629). Every schedule with at most one
// preemption must be linearizable.
func TestBusyOpenAfterSerialization(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KPreserve, Src: r + 2, File: 2, Token: 1, Pre: true}, {Kind: KUnregFLB, FLB: 0}, {Kind: KOpenDev, Dst: r}},
		{{Kind: KReboot}},
	}
	requireOnePreemptionLinearizable(t, prog)
}

// TestPreserveBusyByPeer: a PRESERVE_FD enters its file in LUO's map of
// preserved files before its FLBs count it, so a second PRESERVE_FD of
// the file answers EBUSY while the first still waits to count the FLBs,
// and an FLB unlinked in between is not counted. Found by the main job
// (luo concurrent -seed 13366496097891757373): the EBUSY placed the first
// preserve, one step in the model, before the unlink. Every schedule with
// at most one preemption must be linearizable.
func TestPreserveBusyByPeer(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KCreate, Name: "a", Dst: r + 3, Pre: true}, {Kind: KPreserve, Src: r + 3, File: 3, Token: 2}},
		{{Kind: KPreserve, Src: r + 2, File: 3, Token: 1}, {Kind: KUnregFLB, FLB: 0}},
	}
	requireOnePreemptionLinearizable(t, prog)
}

// TestPinKeepsNumbersNewHolder: a PRESERVE_FD on a stale number (its
// slot's session "b" closed) looks up the session "a" a create installed
// there before the call; a close of "a" then drops the number, but the
// preserve's reference keeps "a" until it returns, and its handler scan
// runs after the memfd handler's unregistration: ENOENT. Found by the main
// job (luo concurrent -seed 17156294119094410233), whose schedule this
// replays: a closed instance was reached through a pin only by calls that
// named that instance, not by calls whose number it had taken over, so
// the preserve could only answer EBADF once "a" was closed.
func TestPinKeepsNumbersNewHolder(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KRetrieve, Name: "a", Dst: r, Pre: true}, {Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true}, {Kind: KCreate, Name: "a", Dst: r}, {Kind: KRetrieve, Name: "b", Dst: r}},
		{{Kind: KClose, Src: r}, {Kind: KRetrieve, Name: "a", Dst: r}, {Kind: KPreserve, Src: r + 1, File: 0, Token: 1}},
		{{Kind: KClose, Src: r + 1}, {Kind: KClose, Src: r}, {Kind: KUnregister}},
	}
	choices := make([]int, 145)
	for i, c := range map[int]int{0: 2, 3: 1, 11: 2, 12: 2, 26: 1, 27: 2, 29: 1, 31: 2, 43: 2, 101: 1, 102: 1, 109: 1} {
		choices[i] = c
	}
	out := replayRound(t, prog, choices)
	require.Equal(t, int64(1), out.n[KPreserve]["ENOENT"], "the replayed schedule no longer reaches the case")
	require.Equal(t, int64(1), out.n[KUnregister]["ok"], "the replayed schedule no longer reaches the case")
}

// TestIoctlLooksUpAtCall: an ioctl looks its fd up first thing (fdget()
// before any lock), so the file it uses is the one its number named when
// it was called: a PRESERVE_FD on "c" that a close of "c" and a create of
// "a" at the freed number overlap preserves into "c" (its reference keeps
// "c" until it returns), never into "a", even when it must be linearized
// after the create: here after the memfd handler's unregistration (which
// the preserve's file, counted as a user, would have refused) and
// re-registration. Found by the main job (luo concurrent -seed
// 16303068425812666013; its schedule has one preemption): the checker
// tried the number's live holder before the pinned file, so the preserve
// landed in "a", which crossed the kexec empty.
func TestIoctlLooksUpAtCall(t *testing.T) {
	r := SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KPreserve, Src: r + 2, File: 1, Token: 2}},
		{
			// The incoming sessions' files use the memfd handler: finish
			// them first.
			{Kind: KRetrieve, Name: "a", Dst: r + 3, Pre: true}, {Kind: KClose, Src: r + 3, Pre: true},
			{Kind: KRetrieve, Name: "b", Dst: r + 3, Pre: true}, {Kind: KClose, Src: r + 3, Pre: true},
			{Kind: KUnregister},
		},
		{{Kind: KClose, Src: r + 2}, {Kind: KCreate, Name: "a", Dst: r}, {Kind: KRegister}},
	}
	requireOnePreemptionLinearizable(t, prog)
}

// TestPinnedCloseAfterSerialization: a close of a new session's last fd
// that runs after the reboot serialized (behind an FLB's unregistration
// that the serialized FLB block shows came after it) drops the fd alone,
// its release left to the pin: in the old kernel it is fd-table-only, and
// its release halves are no-ops (unlockedInOld). It was "not
// linearizable" (found by a 10-minute `luo concurrent` hunt, seed
// 18198359342582987857).
func TestPinnedCloseAfterSerialization(t *testing.T) {
	requireOnePreemptionLinearizable(t, Program{
		{
			{Kind: KCreate, Name: "c", Dst: SlotResult + 2, Pre: true},
			{Kind: KPreserve, Src: SlotResult + 2, File: firstTestFile, Token: 1, Pre: true},
			{Kind: KReboot},
		},
		{{Kind: KUnregFLB, FLB: 0}, {Kind: KGetName, Src: SlotResult + 2}},
		{{Kind: KClose, Src: SlotResult + 2}},
	})
}
