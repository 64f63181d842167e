package fault_test

import (
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/fault"
)

func calls(inj *fault.Injector, s fault.Site, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = inj.Fail(s) != nil
	}
	return out
}

func TestNilInjectorNeverFails(t *testing.T) {
	var inj *fault.Injector
	require.NoError(t, inj.Fail(fault.KHOAllocPreserve))
	require.False(t, inj.Should(fault.HandlerCanFinish))
	require.Zero(t, inj.Hits(fault.KHOAllocPreserve))
	inj.DisarmAll()
	inj.SetCounting(true)
	require.Len(t, inj.Stats(), int(fault.NumSites))
}

func TestUnarmedCountsOnlyWhenCounting(t *testing.T) {
	inj := fault.New(1)
	require.NoError(t, inj.Fail(fault.CopyToUser))
	require.Zero(t, inj.Hits(fault.CopyToUser))
	inj.SetCounting(true)
	require.NoError(t, inj.Fail(fault.CopyToUser))
	require.NoError(t, inj.Fail(fault.CopyToUser))
	require.EqualValues(t, 2, inj.Hits(fault.CopyToUser))
	require.Zero(t, inj.Fires(fault.CopyToUser))
	inj.SetCounting(false)
	require.NoError(t, inj.Fail(fault.CopyToUser))
	require.EqualValues(t, 2, inj.Hits(fault.CopyToUser))
}

func TestNthFiresOnceWithTheSiteErrno(t *testing.T) {
	inj := fault.New(1)
	inj.Arm(fault.KHOAllocPreserve, fault.Attr{Nth: 3})
	require.Equal(t, []bool{false, false, true, false, false}, calls(inj, fault.KHOAllocPreserve, 5))
	require.False(t, inj.Armed(fault.KHOAllocPreserve))
	require.EqualValues(t, 1, inj.Fires(fault.KHOAllocPreserve))
	require.EqualValues(t, 3, inj.Hits(fault.KHOAllocPreserve), "hits count only while armed")

	inj.ArmNext(fault.CopyToUser)
	require.ErrorIs(t, inj.Fail(fault.CopyToUser), syscall.EFAULT)
	require.NoError(t, inj.Fail(fault.CopyToUser))
	// Other sites are untouched.
	require.NoError(t, inj.Fail(fault.GetUnusedFD))
}

func TestIntervalAndTimes(t *testing.T) {
	inj := fault.New(1)
	inj.Arm(fault.LUOFileAlloc, fault.Attr{Interval: 2, Times: 2})
	require.Equal(t, []bool{false, true, false, true, false, false}, calls(inj, fault.LUOFileAlloc, 6))
	inj.Arm(fault.LUOFileAlloc, fault.Attr{Interval: 3, Times: -1})
	require.Equal(t, []bool{false, false, true, false, false, true, false, false, true}, calls(inj, fault.LUOFileAlloc, 9))
	require.True(t, inj.Armed(fault.LUOFileAlloc))
	inj.Disarm(fault.LUOFileAlloc)
	require.Equal(t, []bool{false, false, false}, calls(inj, fault.LUOFileAlloc, 3))
}

func TestErrOverrideAndShould(t *testing.T) {
	inj := fault.New(1)
	inj.Arm(fault.HandlerFreeze, fault.Attr{Err: syscall.ENOSPC})
	require.ErrorIs(t, inj.Fail(fault.HandlerFreeze), syscall.ENOSPC)
	inj.ArmNext(fault.HandlerCanFinish)
	require.True(t, inj.Should(fault.HandlerCanFinish))
	require.False(t, inj.Should(fault.HandlerCanFinish))
}

func TestProbabilityIsSeeded(t *testing.T) {
	run := func(seed uint64) []bool {
		inj := fault.New(seed)
		inj.Arm(fault.FolioAlloc, fault.Attr{Probability: 0.3, Times: -1})
		return calls(inj, fault.FolioAlloc, 200)
	}
	a, b := run(7), run(7)
	require.Equal(t, a, b, "same seed, same decisions")
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	require.Greater(t, n, 20)
	require.Less(t, n, 100)
	require.NotEqual(t, a, run(8))
}

func TestSitesHaveNamesAndParse(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range fault.Sites() {
		require.NotEmpty(t, s.String())
		require.False(t, seen[s.String()], "duplicate name %s", s)
		seen[s.String()] = true
		require.NotZero(t, s.Errno())
		p, ok := fault.ParseSite(s.String())
		require.True(t, ok)
		require.Equal(t, s, p)
	}
	_, ok := fault.ParseSite("nope")
	require.False(t, ok)
}

func TestSummaryListsFiredSites(t *testing.T) {
	inj := fault.New(1)
	inj.ArmNext(fault.KHOFinalize)
	_ = inj.Fail(fault.KHOFinalize)
	require.Contains(t, inj.Summary(), "kho_finalize:")
	require.NotContains(t, inj.Summary(), "copy_to_user")
}

func TestConcurrentFailFiresExactlyTimes(t *testing.T) {
	inj := fault.New(1)
	inj.Arm(fault.GetUnusedFD, fault.Attr{Times: 10})
	var wg sync.WaitGroup
	var mu sync.Mutex
	fired := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if inj.Fail(fault.GetUnusedFD) != nil {
					mu.Lock()
					fired++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 10, fired)
	require.EqualValues(t, 10, inj.Fires(fault.GetUnusedFD))
}

// BenchmarkFailUnarmed is the cost every hooked call pays when no fault is
// armed: one atomic load.
func BenchmarkFailUnarmed(b *testing.B) {
	inj := fault.New(1)
	for b.Loop() {
		_ = inj.Fail(fault.FolioAlloc)
	}
}

// BenchmarkFailArmedElsewhere is the cost when another site is armed.
func BenchmarkFailArmedElsewhere(b *testing.B) {
	inj := fault.New(1)
	inj.Arm(fault.CopyToUser, fault.Attr{Nth: 1 << 62})
	for b.Loop() {
		_ = inj.Fail(fault.FolioAlloc)
	}
}
