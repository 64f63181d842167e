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
	a.Count("callbacks", "callback", "preserve", "OK", 2)
	b.Count("callbacks", "callback", "preserve", "OK", 3)
	b.Count("callbacks", "callback", "freeze", "EIO", 1)
	p := a.Part()
	p.Merge(b.Part())
	tab := p.Table("callbacks")
	require.NotNil(t, tab)
	require.Equal(t, int64(5), tab.Get("preserve", "OK"))
	require.Equal(t, int64(1), tab.Get("freeze", "EIO"))
	var out strings.Builder
	p.WriteTables(&out)
	s := out.String()
	require.Less(t, strings.Index(s, "callback "), strings.Index(s, "invariant "), s)
	require.Contains(t, s, "preserve")
}
