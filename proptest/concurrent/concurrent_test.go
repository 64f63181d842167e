package concurrent_test

import (
	"os"
	"testing"
	"time"

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
