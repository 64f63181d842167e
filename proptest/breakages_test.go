package proptest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBreakages re-runs the acceptance experiments of issue 5: each patch
// under testdata/breakages breaks the port the way a wrong kernel patch
// would; applied alone to a copy of the committed tree, `luo check` with
// its default settings must fail with a shrunk trace. It takes minutes, so
// it runs only with LUOMODEL_BREAKAGES=1 (`make breakages`);
// LUOMODEL_CAMPAIGN picks the campaign seed (default 1).
func TestBreakages(t *testing.T) {
	if os.Getenv("LUOMODEL_BREAKAGES") == "" {
		t.Skip("set LUOMODEL_BREAKAGES=1 (make breakages)")
	}
	campaign := os.Getenv("LUOMODEL_CAMPAIGN")
	if campaign == "" {
		campaign = "1"
	}
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	patches, err := filepath.Glob("testdata/breakages/*.patch")
	require.NoError(t, err)
	require.NotEmpty(t, patches)
	found := regexp.MustCompile(`found after \S+, shrunk in \S+`)
	trace := regexp.MustCompile(`trace \(\d+ operations\)`)
	seed := regexp.MustCompile(`seed: \d+`)
	for _, p := range patches {
		patch, err := filepath.Abs(p)
		require.NoError(t, err)
		t.Run(strings.TrimSuffix(filepath.Base(p), ".patch"), func(t *testing.T) {
			dir := t.TempDir()
			run := func(name string, args ...string) string {
				cmd := exec.Command(name, args...)
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "%s %s\n%s", name, strings.Join(args, " "), out)
				return string(out)
			}
			archive := exec.Command("sh", "-c", "git archive HEAD | tar -x -C "+dir)
			archive.Dir = root
			out, err := archive.CombinedOutput()
			require.NoError(t, err, "%s", out)
			run("git", "apply", patch)
			run("go", "build", "-o", "luo", "./cmd/luo")
			cmd := exec.Command("./luo", "check", "-q", "-campaign", campaign)
			cmd.Dir = dir
			b, err := cmd.Output()
			res := string(b)
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "luo check did not fail: %v\n%s", err, res)
			require.Contains(t, res, "\nFAIL\n")
			require.Regexp(t, trace, res)
			t.Logf("campaign %s: %s; %s; %s", campaign, found.FindString(res), trace.FindString(res), seed.FindString(res))
			i := strings.Index(res, "\nFAIL\n")
			t.Logf("%s", res[i:])
		})
	}
}
