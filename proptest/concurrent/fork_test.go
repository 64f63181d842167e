package concurrent

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// forkPrograms share a session between two processes: the parent's
// prologue retrieves "a" or "b" or creates "c"; one thread forks, and its
// child execs (closing its copy of the session fd, or keeping it after
// F_SETFD cleared the flag) and exits, while the parent's other thread
// closes its own copy and looks the session up by name: the session is
// released by whichever process lets go last.
func forkPrograms() []Program {
	const r = SlotResult
	return []Program{
		{
			{{Kind: KRetrieve, Name: "a", Dst: r, Pre: true}, {Kind: KFork}, {Kind: KExec}, {Kind: KGetFD, Src: r}},
			{{Kind: KClose, Src: r}, {Kind: KRetrieve, Name: "a", Dst: r + 1}},
		},
		{
			{{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true}, {Kind: KFork}, {Kind: KSetFD, Src: r + 2, Arg: 0}, {Kind: KExec}, {Kind: KGetName, Src: r + 2}},
			{{Kind: KClose, Src: r + 2}, {Kind: KCreate, Name: "c", Dst: r + 3}, {Kind: KDupFDCloexec, Src: r, Arg: 0, Dst: r + 4}},
		},
		{
			{{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true}, {Kind: KFork}, {Kind: KClose, Src: r + 1}, {Kind: KDupFD, Src: SlotDev, Arg: 12, Dst: r + 4}},
			{{Kind: KFinish, Src: r + 1}, {Kind: KClose, Src: r + 1}, {Kind: KFLBGet, FLB: 0}},
		},
	}
}

// TestForkExhaustive checks every schedule with at most one preemption of
// forkPrograms on the reference port.
func TestForkExhaustive(t *testing.T) {
	for _, prog := range forkPrograms() {
		requireOnePreemptionLinearizable(t, prog)
	}
}

// TestForkFaultsCaught shows that the check catches an exec that closes
// nothing and a fork whose child loses the close-on-exec flags: the
// session fds LUO returns are O_CLOEXEC, so the model has the child's
// exec close them.
func TestForkFaultsCaught(t *testing.T) {
	for _, fault := range []forkFault{faultExecKeepsFDs, faultForkDropsCloexec} {
		_, err := Exhaust(Config{Rounds: 1, OutDir: t.TempDir(), fault: fault}, forkPrograms()[0], 1, 3000)
		var f *Failure
		require.ErrorAs(t, err, &f, "fault %d not caught", fault)
		require.Equal(t, "not linearizable", f.Category)
		t.Logf("fault %d: %s", fault, f.Trace)
	}
}

// TestForkCloexecOfLUOFds checks, in one schedule, what F_GETFD returns
// on the fds LUO returns (sessions, retrieved files: FD_CLOEXEC, as
// upstream's get_unused_fd_flags(O_CLOEXEC)) and on a dup (clear).
func TestForkCloexecOfLUOFds(t *testing.T) {
	const r = SlotResult
	c, err := newChecker(Config{Rounds: 1}, true, nil)
	require.NoError(t, err)
	c.out = &Outcomes{}
	prog := Program{
		{{Kind: KRetrieve, Name: "a", Dst: r}, {Kind: KRetrieveFD, Src: r, Token: 1, Dst: r + 1},
			{Kind: KGetFD, Src: r}, {Kind: KGetFD, Src: r + 1}, {Kind: KDup, Src: r, Dst: r + 2}, {Kind: KGetFD, Src: r + 2}},
		{},
	}
	f := c.round(1, prog, nil)
	require.Nil(t, f)
	require.Equal(t, int64(2), c.out.n[KGetFD]["FD_CLOEXEC"])
	require.Equal(t, int64(1), c.out.n[KGetFD]["ok"])
}

// TestForkChildReleaseOfRetrieved checks every schedule with at most one
// preemption of a child that retrieves a session and closes it while the
// parent's other thread runs (and forks too): the close's release is
// split (addPins) and its pin is a hidden fd of the child's table whose
// number, in the parent's, holds an outgoing session with a file
// preserved. The release's first half finishes the retrieved session and
// must not unpreserve the parent's session's files (the check once
// stepped the half on the round's process's task, not the closing
// task's: "not linearizable", the crossed outgoing session lacking its
// file in the model only).
func TestForkChildReleaseOfRetrieved(t *testing.T) {
	const r = SlotResult
	prog := Program{
		{
			{Kind: KRetrieve, Name: "b", Dst: r, Pre: true}, {Kind: KCreate, Name: "c", Dst: r + 1, Pre: true},
			{Kind: KPreserve, Src: r + 1, File: 0, Token: 1, Pre: true},
			{Kind: KFork}, {Kind: KExec}, {Kind: KRetrieve, Name: "a", Dst: r + 2}, {Kind: KClose, Src: r + 2},
		},
		{{Kind: KGetName, Src: r + 1}, {Kind: KFork}, {Kind: KGetName, Src: r}},
	}
	requireOnePreemptionLinearizable(t, prog)
}

// TestExitKilledByReboot: a child's exit releases the sessions it alone
// still holds one after the other, each under the serialize rwsem, and a
// reboot that takes the rwsem between two of them kills the exit half
// done: the first session is gone, the second crosses. Found by the main
// job (luo concurrent -seed 13368966899149161267): the checker took a
// killed exit for all or nothing. Every schedule with at most two
// preemptions must be linearizable on the reference port.
func TestExitKilledByReboot(t *testing.T) {
	const r = SlotResult
	prog := Program{
		{
			{Kind: KCreate, Name: "c", Dst: r + 2, Pre: true},
			{Kind: KCreate, Name: "a", Dst: r + 3, Pre: true},
			{Kind: KFork},
		},
		{{Kind: KClose, Src: r + 2}, {Kind: KClose, Src: r + 3}, {Kind: KReboot}},
	}
	runs, err := Exhaust(Config{Rounds: 1, OutDir: t.TempDir()}, prog, 2, 20000)
	require.NoError(t, err)
	require.Greater(t, runs, 10)
	t.Logf("%d schedules", runs)
}

// TestExecDefersReleases: an exec drops its close-on-exec fds in order but
// releases those it dropped last only when it returns (task_work), so a
// session it dropped first can outlive one it dropped after, whose last
// reference another thread's close dropped meanwhile. Found by a luo
// concurrent run (seed 270610671706218375), whose schedule this replays:
// the child's exec drops "a" after the parent's close of it, "b" before
// the parent's, and the parent then finds "b" gone and "a" still listed.
// The checker used to release each file as the exec dropped it.
func TestExecDefersReleases(t *testing.T) {
	const r = SlotResult
	prog := Program{
		{
			{Kind: KRetrieve, Name: "a", Dst: r, Pre: true},
			{Kind: KRetrieve, Name: "b", Dst: r + 1, Pre: true},
			{Kind: KClose, Src: r + 1},
			{Kind: KRetrieve, Name: "b", Dst: r},
			{Kind: KRetrieve, Name: "a", Dst: r},
		},
		{{Kind: KClose, Src: r}},
		{{Kind: KFork}, {Kind: KExec}},
	}
	choices := make([]int, 24)
	choices[0], choices[10], choices[23] = 2, 2, 1
	out := replayRound(t, prog, choices)
	// The schedule still reaches the case: "b" gone, "a" listed.
	require.Equal(t, int64(1), out.n[KRetrieve]["ENOENT"], "the replayed schedule no longer releases b before a")
	require.Equal(t, int64(1), out.n[KRetrieve]["EINVAL"], "the replayed schedule no longer releases b before a")
}

// TestChildRunsOnAfterSerialization: a thread forks while another reboots;
// its child unlinks an FLB and exits after the reboot serialized (the FLB
// crossed), in the old kernel, which runs on until the jump. The child's
// exit drops only copies of fds its parent still holds, so it takes no
// LUO lock and returns there. Found by the main job (luo concurrent -seed
// 7495866118959697987): the checker placed a child's exit in the running
// kernel only, so the unlink had to come before the serialization. So
// may the child's exec, and a fork and its child's exit. Every
// schedule with at most one preemption must be linearizable.
func TestChildRunsOnAfterSerialization(t *testing.T) {
	const r = SlotResult
	prog := Program{
		{{Kind: KCreate, Name: "a", Dst: r + 2, Pre: true}, {Kind: KPreserve, Src: r + 2, File: 2, Token: 1, Pre: true}},
		{{Kind: KFork}, {Kind: KUnregFLB, FLB: 0}},
		{{Kind: KReboot}},
	}
	requireOnePreemptionLinearizable(t, prog)

	// The child's exec, which drops only copies too (the same seed).
	prog[1] = append(prog[1], Instr{Kind: KExec})
	requireOnePreemptionLinearizable(t, prog)

	// The fork itself after the serialization: dup_fd() takes no LUO
	// lock either (luo concurrent -seed 6809117789579463493).
	prog = Program{
		{{Kind: KCreate, Name: "a", Dst: r + 2, Pre: true}, {Kind: KPreserve, Src: r + 2, File: 2, Token: 1, Pre: true}, {Kind: KFork}},
		{{Kind: KReboot}},
		{{Kind: KUnregFLB, FLB: 0}},
	}
	requireOnePreemptionLinearizable(t, prog)
}
