package concurrent_test

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"luomodel/kernel/locking"
	"luomodel/proptest/concurrent"
)

func TestMain(m *testing.M) {
	// go-deadlock watches the free-running stress; its reports go to
	// standard error and fail the stress test through the kernel's
	// reporter only when a machine is involved, so a watchdog report is
	// also treated as fatal here.
	locking.ConfigureDeadlockDetection(locking.DeadlockDetection{
		Enabled: true,
		Timeout: 20 * time.Second,
		Report: func(text string) {
			os.Stderr.WriteString("go-deadlock: " + text)
			os.Exit(3)
		},
	})
	goleak.VerifyTestMain(m)
}

func TestConcurrentLockstep(t *testing.T) {
	var st concurrent.Stats
	rapid.Check(t, concurrent.Property(concurrent.Config{OutDir: t.TempDir()}, &st, nil))
	t.Logf("%d checks, %d schedules, %d thread syscalls", st.Checks.Load(), st.Schedules.Load(), st.Ops.Load())
}

func TestStress(t *testing.T) {
	var st concurrent.Stats
	rapid.Check(t, concurrent.StressProperty(concurrent.Config{OutDir: t.TempDir()}, &st, nil))
}

// TestLongCampaign runs LUOMODEL_CONCURRENT_CHECKS checks (each two rounds,
// two schedules) on the tree under test; off by default.
func TestLongCampaign(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LUOMODEL_CONCURRENT_CHECKS"))
	if n == 0 {
		t.Skip("set LUOMODEL_CONCURRENT_CHECKS")
	}
	var st concurrent.Stats
	require.NoError(t, flag.Set("rapid.checks", strconv.Itoa(n)))
	rapid.Check(t, concurrent.Property(concurrent.Config{OutDir: t.TempDir()}, &st, nil))
	t.Logf("%d checks, %d schedules, %d thread syscalls, %d context switches", st.Checks.Load(), st.Schedules.Load(), st.Ops.Load(), st.Switches.Load())
}

// A deterministic replay of a fixed two-thread program with a recorded
// choice list reproduces the same interleaving, and the reference port
// passes every schedule of it with at most one preemption (DFS).
func TestReplayAndExhaustive(t *testing.T) {
	prog := concurrent.Program{
		{{Kind: concurrent.KRetrieve, Name: "a", Dst: concurrent.SlotResult}, {Kind: concurrent.KClose, Src: concurrent.SlotResult}},
		{{Kind: concurrent.KRetrieve, Name: "a", Dst: concurrent.SlotResult}},
	}
	cfg := concurrent.Config{Rounds: 1, OutDir: t.TempDir()}
	require.Nil(t, concurrent.Replay(cfg, []concurrent.Program{prog}, [][]int{{0, 1, 0, 1}}))
	runs, err := concurrent.Exhaust(cfg, prog, 1, 2000)
	require.NoError(t, err)
	require.Greater(t, runs, 10)
	t.Logf("%d schedules with at most one preemption", runs)
}
