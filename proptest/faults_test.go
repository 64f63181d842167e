package proptest

import (
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestLockstepWithFaults runs lockstep campaigns in which a third of the
// actions arm a fault: the model predicts every faulted operation, and at
// the end every file is released and every preserved block accounted
// for. It runs 20 checks unless -rapid.checks says otherwise.
func TestLockstepWithFaults(t *testing.T) {
	if !rapidChecksSet {
		old := flag.Lookup("rapid.checks").Value.String()
		require.NoError(t, flag.Set("rapid.checks", "20"))
		defer func() { _ = flag.Set("rapid.checks", old) }()
	}
	stats := NewStats()
	rapid.Check(t, LockstepWithFaults(stats))
	fired := int64(0)
	for _, r := range stats.Part().Table(TableFaults).Rows {
		fired += r.Cells[2] // Lead: armed, reached, fired
	}
	require.NotZero(t, fired, "no fault fired")
	var b strings.Builder
	stats.WriteSummary(&b)
	t.Logf("\n%s", b.String())
}
