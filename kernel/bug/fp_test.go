package bug

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// frameNames resolves pcs into function names, inlined calls expanded.
func frameNames(pcs []uintptr) []string {
	var names []string
	it := runtime.CallersFrames(pcs)
	for {
		f, more := it.Next()
		names = append(names, f.Function)
		if !more {
			return names
		}
	}
}

//go:noinline
func frameCallersVia(skip int, pcs []uintptr) int { return FrameCallers(skip, pcs) }

//go:noinline
func frameCallersOuter(skip int, pcs []uintptr) int { return frameCallersVia(skip, pcs) }

// The frame-pointer walk names the same callers as the runtime's unwinder.
func TestFrameCallersMatchesRuntimeCallers(t *testing.T) {
	pcs := make([]uintptr, 4)
	n := frameCallersOuter(0, pcs)
	require.Positive(t, n)
	got := frameNames(pcs[:n])
	require.Equal(t, []string{
		"luomodel/kernel/bug.frameCallersVia",
		"luomodel/kernel/bug.frameCallersOuter",
		"luomodel/kernel/bug.TestFrameCallersMatchesRuntimeCallers",
		"testing.tRunner",
	}, got[:4])

	n = frameCallersOuter(2, pcs)
	want := make([]uintptr, len(pcs))
	m := runtime.Callers(1, want)
	require.Equal(t, frameNames(want[:m])[:2], frameNames(pcs[:n])[:2],
		"skipping two frames starts at the test, as runtime.Callers(1) does")

	// A buffer larger than the stack ends at the goroutine's first frame.
	big := make([]uintptr, 1024)
	n = frameCallersOuter(0, big)
	require.Less(t, n, len(big))
	require.Equal(t, "runtime.goexit", frameNames(big[:n])[len(frameNames(big[:n]))-1])
}
