package account

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/kho"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
)

// TestMisfits: an object must start a block of 2^get_order(size) pages.
func TestMisfits(t *testing.T) {
	preserved := []kho.Block{{PA: 0x1000, Order: 0}, {PA: 0x4000, Order: 2}, {PA: 0x10000, Order: 4}}
	objs := []sizedObject{
		{0x1000, mm.PageSize, "one page"},
		{0x4000, 3*mm.PageSize + 1, "four pages"},
		{0, mm.PageSize, "absent"},
	}
	require.Empty(t, misfits(preserved, objs, nil))
	objs = append(objs, sizedObject{0x10000, 4 * mm.PageSize, "four pages in sixteen"}, sizedObject{0x2000, 1, "not preserved"})
	sessions := []liveupdate.SessionState{{Name: "s", FilesPA: 0x4000}}
	require.Equal(t, []string{
		"four pages in sixteen at 0x10000: a block of order 4 for 16384 bytes (get_order: 2)",
		"not preserved at 0x2000: not the start of a preserved block",
		`file array of outgoing session "s" at 0x4000: a block of order 2 for 8192 bytes (get_order: 1)`,
	}, misfits(preserved, objs, sessions))
	require.Equal(t, uint(0), orderFor(1))
	require.Equal(t, uint(0), orderFor(mm.PageSize))
	require.Equal(t, uint(1), orderFor(mm.PageSize+1))
}
