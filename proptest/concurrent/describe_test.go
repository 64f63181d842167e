package concurrent

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/model"
)

// TestDescribeFormats: the observation's renderings, built without fmt,
// read as fmt renders the same values (failure reports and the recorded
// traces show them).
func TestDescribeFormats(t *testing.T) {
	for _, l := range [][]string{nil, {}, {"a"}, {"liveupdate-test-flb-v0/1", "x/2(unlinked)"}} {
		require.Equal(t, fmt.Sprintf("%v", l), listString(l))
		require.Equal(t, fmt.Sprintf(" module=%s handlers=%v test-flbs=%v", "refs=2", l, l), describeRegistry("refs=2", l, l))
	}
	require.Equal(t, "outgoing=[] incoming=[a(retrieved) b] device-open=true",
		describeBefore(nil, []string{"a", "b"}, []bool{true, false}, true))
	require.Equal(t, "outgoing=[c a] incoming=[] device-open=false",
		describeBefore([]string{"c", "a"}, nil, nil, false))
	require.Equal(t, fmt.Sprintf(" warns=%d", 3), describeWarns(3))
	require.Equal(t, " flbs-in=[a/1 b/0]", describeFLBsIn([]string{"b", "a"}, []int{0, 1}))
	post := []Instr{{Kind: KLoadMod, Post: true}}
	require.Equal(t, fmt.Sprintf("probe: %s=%d open=%d ", KLoadMod, int(syscall.EEXIST), int(syscall.ENOENT)),
		describeProbe(post, []model.Result{{Errno: syscall.EEXIST}}, model.Result{Errno: syscall.ENOENT}))
}
