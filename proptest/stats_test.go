package proptest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStatsCountAddsATable: a table counted with Count is part of the
// summary, printed after the campaign's own tables and before the
// invariants, and merges with another worker's by summing.
func TestStatsCountAddsATable(t *testing.T) {
	a, b := NewStats(), NewStats()
	a.Count("hostile", "hand-over kind", "preserve", "OK", 2)
	b.Count("hostile", "hand-over kind", "preserve", "OK", 3)
	b.Count("hostile", "hand-over kind", "freeze", "EIO", 1)
	p := a.Part()
	p.Merge(b.Part())
	tab := p.Table("hostile")
	require.NotNil(t, tab)
	require.Equal(t, int64(5), tab.Get("preserve", "OK"))
	require.Equal(t, int64(1), tab.Get("freeze", "EIO"))
	var out strings.Builder
	p.WriteTables(&out)
	s := out.String()
	require.Less(t, strings.Index(s, "hand-over kind"), strings.Index(s, "invariant "), s)
	require.Contains(t, s, "preserve")
	// A campaign table by name is the campaign's own.
	a.Count(TableOutcomes, "", "open", "OK", 1)
	require.Equal(t, int64(1), a.Part().Table(TableOutcomes).Get("open", "OK"))
}
