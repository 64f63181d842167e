//lint:file-ignore SA2001 these tests only need a lock taken and released

package locking

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/bug"
)

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
