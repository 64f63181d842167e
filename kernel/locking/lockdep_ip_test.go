//lint:file-ignore SA2001 these tests only need a lock taken and released

package locking

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
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
func ipCallersVia(skip int, pcs []uintptr) int { return ipCallers(skip, pcs) }

//go:noinline
func ipCallersOuter(skip int, pcs []uintptr) int { return ipCallersVia(skip, pcs) }

// The frame-pointer walk names the same callers as the runtime's unwinder.
func TestIPCallersMatchesRuntimeCallers(t *testing.T) {
	pcs := make([]uintptr, 4)
	n := ipCallersOuter(0, pcs)
	require.Positive(t, n)
	got := frameNames(pcs[:n])
	require.Equal(t, []string{
		"luomodel/kernel/locking.ipCallersVia",
		"luomodel/kernel/locking.ipCallersOuter",
		"luomodel/kernel/locking.TestIPCallersMatchesRuntimeCallers",
		"testing.tRunner",
	}, got[:4])

	n = ipCallersOuter(2, pcs)
	want := make([]uintptr, len(pcs))
	m := runtime.Callers(1, want)
	require.Equal(t, frameNames(want[:m])[:2], frameNames(pcs[:n])[:2],
		"skipping two frames starts at the test, as runtime.Callers(1) does")

	// A buffer larger than the stack ends at the goroutine's first frame.
	big := make([]uintptr, 1024)
	n = ipCallersOuter(0, big)
	require.Less(t, n, len(big))
	require.Equal(t, "runtime.goexit", frameNames(big[:n])[len(frameNames(big[:n]))-1])
}

// Tasks that drop their last lock stay in the table for a while, but a
// sweep drops those that stayed idle, so the table does not grow with the
// number of goroutines that ever took a lock.
func TestLockdepIdleTasksAreSwept(t *testing.T) {
	d := NewDomain(Options{Lockdep: true, Reporter: bug.NewReporter(func(r *bug.Report) { t.Errorf("%s", r.String()) })})
	var m Mutex
	m.Init(d, "test.mutex")
	const tasks = 20000
	for range tasks {
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.Lock()
			m.Unlock()
		}()
		<-done
	}
	total := 0
	for i := range d.ld.shards {
		sh := &d.ld.shards[i]
		sh.mu.Lock()
		require.LessOrEqual(t, len(sh.tasks), 2*sweepEvery+1, "shard %d", i)
		total += len(sh.tasks)
		for _, tk := range sh.tasks {
			require.Empty(t, tk.held)
		}
		sh.mu.Unlock()
	}
	require.Less(t, total, tasks/2)
	require.NotContains(t, d.DebugShowAllLocks(), "task/", "idle tasks hold no lock")

	// A busy task keeps its entry across sweeps.
	id := CurrentTask()
	for range 4 * sweepEvery * taskShards {
		m.Lock()
		m.Unlock()
	}
	sh := d.ld.shard(id)
	sh.mu.Lock()
	_, ok := sh.tasks[id]
	sh.mu.Unlock()
	require.True(t, ok)
}
