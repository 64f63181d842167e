//lint:file-ignore SA2001 these tests are about which task gets a lock, not what it guards

package locking_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goroutinesContain reports whether some goroutine's stack mentions fn.
func goroutinesContain(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// A task that was waiting for a lock when its domain was retired (its
// kernel replaced by kexec) never runs on once the lock is released: it
// gives the lock back and parks. A lock taken after Retire works, for
// whoever tears the dead kernel down.
func TestRetiredDomainStopsWaiters(t *testing.T) {
	d, rec := newDomain(true)
	m := newMutex(d, "test.retire")
	m.Lock()
	ranOn := make(chan struct{})
	go func() {
		m.Lock() // the waiter: parks in parkRetired, by design never returns
		close(ranOn)
	}()
	require.Eventually(t, func() bool { return goroutinesContain("sync.(*Mutex).Lock") },
		10*time.Second, time.Millisecond, "the waiter never blocked")

	d.Retire()
	require.True(t, d.Retired())
	m.Unlock()
	require.Eventually(t, func() bool { return goroutinesContain("locking.parkRetired") },
		10*time.Second, time.Millisecond, "the waiter did not stop")
	require.True(t, m.TryLock(), "the stopped waiter gave the lock back")
	m.Unlock()
	select {
	case <-ranOn:
		t.Fatal("a task of a retired domain ran on after its lock wait")
	default:
	}
	m.Lock()
	m.Unlock()
	require.Empty(t, rec.titles())
}
