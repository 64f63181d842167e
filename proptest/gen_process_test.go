package proptest

import (
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/model"
)

// TestProcessActionsReachCells: the process actions reach their cells in
// a few seeded runs (the full table is `luo check`'s).
func TestProcessActionsReachCells(t *testing.T) {
	stats := NewStats()
	src := prngSource{rand.New(rand.NewPCG(13, 13))}
	for range 100 {
		randomRun(t, src, benchSteps, true, stats)
	}
	for _, cell := range []string{
		"fork/OK", "exec/OK", "F_GETFD/OK", "F_SETFD/OK", "F_DUPFD/OK", "F_DUPFD_CLOEXEC/OK",
		"F_DUPFD/EINVAL", "setrlimit/OK", "CREATE_SESSION/EMFILE",
	} {
		require.NotContains(t, stats.Missing(), cell)
	}
}

// TestFDTablesAgreeSeesCloexec: the fd-table check compares the
// close-on-exec flag of every fd, so a port that got one wrong is caught
// even if no F_GETFD asks.
func TestFDTablesAgreeSeesCloexec(t *testing.T) {
	e, do := lockstepEnv(t, false)
	do(model.Op{Kind: model.OpNewTask})
	dev := int(do(model.Op{Kind: model.OpOpen, Task: 1, Path: model.DevLiveUpdate, Flags: model.ORdwr}).Ret)
	r := do(model.Op{Kind: model.OpIoctl, Task: 1, FD: dev, Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf("s")})
	require.Zero(t, r.Errno)
	child := model.TaskID(do(model.Op{Kind: model.OpFork, Task: 1}).Ret)
	require.NoError(t, fdTablesAgree(e))

	// Behind the model's back: the child's session fd loses FD_CLOEXEC.
	require.NoError(t, e.Task(child).FcntlSetFD(newFD(r), 0))
	require.ErrorContains(t, fdTablesAgree(e), "close-on-exec port false, model true")
	require.NoError(t, e.Task(child).FcntlSetFD(newFD(r), syscall.FD_CLOEXEC))
	require.NoError(t, fdTablesAgree(e))

	do(model.Op{Kind: model.OpExit, Task: 1})
	do(model.Op{Kind: model.OpExec, Task: child})
	require.NoError(t, fdTablesAgree(e))
	require.Empty(t, e.S.OutgoingNames())
	do(model.Op{Kind: model.OpExit, Task: child})
	require.NoError(t, fdTablesAgree(e))
	require.NoError(t, portLeaks(e))
}
