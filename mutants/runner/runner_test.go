package runner

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestZooHeadersParse: every patch of the zoo has a title, an expect line
// and at least one check, and the required mutants are all there.
func TestZooHeadersParse(t *testing.T) {
	ms, err := Load("..")
	require.NoError(t, err)
	have := map[string]bool{}
	for _, m := range ms {
		have[m.ID] = true
		require.NotEmpty(t, m.Title, m.ID)
		require.NotEmpty(t, m.Expect, m.ID)
		require.NotEmpty(t, m.Checks, m.ID)
	}
	for _, id := range []string{"M1", "M2", "M3", "M4", "M5", "M6", "M7", "M8", "M9", "M10",
		"M11", "M12", "M13", "M14", "M17", "M18", "M21", "M22",
		"V6-init", "V6-deserialized", "V6-logfree"} {
		require.True(t, have[id], "mutant %s missing", id)
	}
	for i := 1; i < len(ms); i++ {
		require.True(t, idLess(ms[i-1].ID, ms[i].ID), "%s before %s", ms[i-1].ID, ms[i].ID)
	}
}

// TestZooPatchesApply: every patch applies to the tree it sits in (a
// stale patch is a failure to fix, caught here before `make mutants`).
func TestZooPatchesApply(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	ms, err := Load("..")
	require.NoError(t, err)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	for _, m := range ms {
		p, err := filepath.Abs(m.Path)
		require.NoError(t, err)
		cmd := exec.Command("git", "apply", "--check", p)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", m.ID, out)
	}
}

func TestParseHeader(t *testing.T) {
	c := Check{Kind: KindTest, Args: []string{"-race", "./x", "-run", "^T$", "-rapid.checks=5"}}
	b, pkg, run, err := c.testParts()
	require.NoError(t, err)
	require.Equal(t, []string{"-race"}, b)
	require.Equal(t, "./x", pkg)
	require.Equal(t, []string{"-run", "^T$", "-rapid.checks=5"}, run)
	require.Equal(t, "-test.run", testFlag("-run"))
	require.Equal(t, "-test.timeout=3s", testFlag("-timeout=3s"))
	require.Equal(t, "-rapid.checks=5", testFlag("-rapid.checks=5"))
	require.Equal(t, "^T$", testFlag("^T$"))

	args, err := splitArgs(`test ./p -run '^TestA$|^TestB$' "-x=a b"`)
	require.NoError(t, err)
	require.Equal(t, []string{"test", "./p", "-run", "^TestA$|^TestB$", "-x=a b"}, args)
	_, err = splitArgs(`-run 'x`)
	require.Error(t, err)

	require.True(t, idLess("M2", "M10"))
	require.True(t, idLess("M22", "V6-init"))
	require.False(t, idLess("V6-init", "M1"))
}

func TestClassify(t *testing.T) {
	cases := []struct {
		out      string
		timedOut bool
		want     Class
	}{
		{"FAIL\n[rapid] failed after 4 tests: port and model disagree:\n  port: x", false, ClassLockstep},
		{"the kernel filed 1 report(s); first:\n===\nBUG (lockdep): suspicious lock\nport and model disagree", false, ClassLockdep},
		{"BUG (warn): panic in syscall ioctl: runtime error", false, ClassOops},
		{"BUG (warn): liveupdate: x", false, ClassWarn},
		{"BUG (uaf): use-after-free of luo_session", false, ClassUAF},
		{"==================\nWARNING: DATA RACE\nRead at", false, ClassRace},
		{"panic: test timed out after 10s\n\tgoroutine 1 [running]:", false, ClassTimeout},
		{"    Error Trace:\tx_test.go:12\n    Error: Not equal", false, ClassAssert},
		{"[rapid] failed after 3 tests: F7 preservation map == outgoing + retrieved files: map has 0 entries", false, ClassInvariant},
		{"[rapid] failed after 3 tests: leak: 1 file(s) alive", false, ClassLeak},
		{"history is not linearizable", false, ClassLinear},
		{"[rapid] failed after 0 tests: the kernel filed 1 report(s); first:\nlockdep: lockdep_assert_held() failed", false, ClassLockdep},
		{"first:\nwarn: panic in syscall ioctl: nil", false, ClassOops},
		{"first:\nuaf: use-after-free of luo_session", false, ClassUAF},
		{"nothing recognisable", true, ClassTimeout},
		{"nothing recognisable", false, ClassUnknown},
	}
	for _, c := range cases {
		require.Equal(t, c.want, Classify(c.out, c.timedOut), c.out)
	}
	require.Equal(t, 1600*time.Millisecond, FoundAfter("found after 1.6s, shrunk in 5.58s"))
	require.Zero(t, FoundAfter("PASS"))
	require.Equal(t, "BUG (uaf): x\nline", Excerpt("stats\nmore\nBUG (uaf): x\nline\nmore", 2))
}
