package concurrent_test

import (
	"flag"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"luomodel/proptest/concurrent"
)

// failTB runs rapid.Check without failing the test: it records whether
// the property failed.
type failTB struct {
	testing.TB
	failed bool
}

type failNow struct{}

func (f *failTB) Errorf(string, ...any) { f.failed = true }
func (f *failTB) Error(...any)          { f.failed = true }
func (f *failTB) Fatalf(string, ...any) { f.failed = true; panic(failNow{}) }
func (f *failTB) Fatal(...any)          { f.failed = true; panic(failNow{}) }
func (f *failTB) FailNow()              { f.failed = true; panic(failNow{}) }
func (f *failTB) Fail()                 { f.failed = true }
func (f *failTB) Failed() bool          { return f.failed }
func (f *failTB) Logf(string, ...any)   {}
func (f *failTB) Log(...any)            {}

// check runs prop with rapid's seed and check count set, and reports
// whether it failed.
func check(t *testing.T, seed uint64, checks int, prop func(*rapid.T)) (failed bool) {
	require.NoError(t, flag.Set("rapid.seed", strconv.FormatUint(seed, 10)))
	require.NoError(t, flag.Set("rapid.checks", strconv.Itoa(checks)))
	require.NoError(t, flag.Set("rapid.nofailfile", "true"))
	tb := &failTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(failNow); !ok {
					panic(r)
				}
			}
		}()
		rapid.Check(tb, prop)
	}()
	return tb.failed
}

var addrRE = regexp.MustCompile(`0x[0-9a-f]+|task/\d+`)

func normalize(s string) string { return addrRE.ReplaceAllString(s, "X") }

// TestMutantHunt is the acceptance run for a seeded bug. It only runs when
// LUOMODEL_MUTANT names the patch applied to the tree under test (e.g. in a
// scratch copy: git apply mutants/M1.patch; LUOMODEL_MUTANT=M1 go test
// -run TestMutantHunt -v ./proptest/concurrent/). For 20 seeds it checks
// that the scheduled campaign finds the bug, that rapid shrinks it to at
// most 3 context switches, and that the seed replays the same shrunk
// trace; it logs the median time to detection and how often free-running
// stress finds the bug in the same time.
//
// Time to detection is what the acceptance counts; the shrinking after it
// (rapid's, up to its 30 s, then Minimize) is what makes a 20-seed run
// long. LUOMODEL_MUTANT_SHRINK=0 measures detection only: rapid shrinks
// for at most a millisecond, Minimize and the checks of the shrunk
// failure are skipped, and the seed must still find the same failure
// again.
func TestMutantHunt(t *testing.T) {
	mutant := os.Getenv("LUOMODEL_MUTANT")
	if mutant == "" {
		t.Skip("set LUOMODEL_MUTANT to the applied mutant")
	}
	seeds := 20
	if s := os.Getenv("LUOMODEL_MUTANT_SEEDS"); s != "" {
		seeds, _ = strconv.Atoi(s)
	}
	shrink := os.Getenv("LUOMODEL_MUTANT_SHRINK") != "0"
	if !shrink {
		old := flag.Lookup("rapid.shrinktime").Value.String()
		require.NoError(t, flag.Set("rapid.shrinktime", "1ms"))
		t.Cleanup(func() { _ = flag.Set("rapid.shrinktime", old) })
	}
	cfg := concurrent.Config{OutDir: t.TempDir()}
	var times []time.Duration
	stressFound := 0
	for i := range seeds {
		seed := uint64(1000 + i)
		var first time.Time
		var found, last *concurrent.Failure
		start := time.Now()
		onFail := func(f *concurrent.Failure) {
			if first.IsZero() {
				first, found = time.Now(), f
			}
			last = f
		}
		failed := check(t, seed, 10000, concurrent.Property(cfg, nil, onFail))
		require.True(t, failed, "seed %d: %s not found", seed, mutant)
		took := first.Sub(start)
		times = append(times, took)
		if shrink {
			last = concurrent.Minimize(cfg, last)
			require.LessOrEqual(t, last.Switches, 3, "seed %d: shrunk to %d switches:\n%v", seed, last.Switches, last)
		}

		// The seed finds the same failure again (rapid's shrinking is
		// bounded by time, so compare what it found before shrinking),
		// and the shrunk failure replays identically.
		var again *concurrent.Failure
		check(t, seed, 10000, concurrent.Property(cfg, nil, func(f *concurrent.Failure) {
			if again == nil {
				again = f
			}
		}))
		require.NotNil(t, again)
		require.Equal(t, normalize(found.Trace), normalize(again.Trace), "seed %d does not replay", seed)
		if shrink {
			re := concurrent.Replay(cfg, last.Programs, last.Choices)
			require.NotNil(t, re, "seed %d: the shrunk failure does not replay", seed)
			require.Equal(t, normalize(last.Trace), normalize(re.Trace), "seed %d: the shrunk failure replays differently", seed)
			if i == 0 {
				t.Logf("seed %d shrunk failure:\n%v", seed, last)
			}
		}

		// Free-running stress, same time budget (at least one batch).
		deadline := time.Now().Add(took)
		stressHit := false
		for s := seed << 20; ; s++ {
			if check(t, s, 20, concurrent.StressProperty(cfg, nil, nil)) {
				stressFound++
				stressHit = true
				break
			}
			if time.Now().After(deadline) {
				break
			}
		}
		t.Logf("seed %d: found after %v (%s), %d switches, %d preemptions (shrunk: %v); stress in the same time: %v",
			seed, took, last.Category, last.Switches, last.Preemptions, shrink, stressHit)
	}
	slices.Sort(times)
	t.Logf("%s: found in %d/%d seeds; median time to detection %v (min %v, max %v); free-running stress found it in %d/%d within the same time",
		mutant, len(times), seeds, times[len(times)/2], times[0], times[len(times)-1], stressFound, seeds)
}
