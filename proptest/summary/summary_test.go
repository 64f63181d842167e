package summary

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMergeIsOrderFree: tables counted in different orders and split
// differently merge to the same canonical table.
func TestMergeIsOrderFree(t *testing.T) {
	a, b, whole := New("t", "op"), New("t", "op"), New("t", "op")
	for _, x := range []*Table{a, b, whole} {
		x.Lead = []string{"OK"}
		x.Expected = map[string][]string{"open": {"OK", "EBUSY"}}
	}
	a.Add("open", "ENOENT", 2)
	a.Add("close", "OK", 1)
	b.Add("open", "OK", 3)
	b.Add("close", "OK", 4)
	whole.Add("close", "OK", 5)
	whole.Add("open", "OK", 3)
	whole.Add("open", "ENOENT", 2)
	m := New("t", "")
	m.Merge(b)
	m.Merge(a)
	m.Normalize()
	whole.Normalize()
	require.Equal(t, whole.Columns, m.Columns)
	require.Equal(t, whole.Rows, m.Rows)
	require.Equal(t, []string{"OK", "EBUSY", "ENOENT"}, m.Columns)
	require.Equal(t, []string{"open/EBUSY"}, m.Missing())
	var buf strings.Builder
	m.Write(&buf)
	require.Contains(t, buf.String(), "!")
	require.Contains(t, buf.String(), "WARNING: 1 expected t cell(s) never reached")
}

// TestJSONRoundTrip: a summary written and read back merges like the
// original, and a different campaign or a shard given twice is refused.
func TestJSONRoundTrip(t *testing.T) {
	s := &Summary{Version: Version, Campaign: 9, Shards: []string{"0/2"}}
	p := s.Part("lockstep")
	p.Add("checks", 10)
	tab := New("outcomes", "operation")
	tab.Add("open", "OK", 7)
	p.Tables = append(p.Tables, tab)
	s.Failures = []Failure{{Campaign: "lockstep", Seed: 3, Replay: "go run ./cmd/luo check -seed 3", Message: "x"}}
	path := filepath.Join(t.TempDir(), "s.json")
	require.NoError(t, s.WriteJSON(path))
	r, err := ReadJSON(path)
	require.NoError(t, err)
	require.Equal(t, s.Failures, r.Failures)
	var all Summary
	require.NoError(t, all.Merge(r))
	require.Error(t, all.Merge(r), "shard merged twice")
	other := *r
	other.Campaign, other.Shards = 8, []string{"1/2"}
	require.Error(t, all.Merge(&other))
	other.Campaign = 9
	require.NoError(t, all.Merge(&other))
	require.Equal(t, int64(20), all.Part("lockstep").Counts["checks"])
	require.Equal(t, int64(14), all.Part("lockstep").Table("outcomes").Get("open", "OK"))
	require.Len(t, all.Failures, 2)
}
