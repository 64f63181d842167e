package concurrent

import (
	"sync"
	"sync/atomic"

	"pgregory.net/rapid"
)

// generators hands out the generators a program is drawn with, each made
// once: rapid.IntRange and rapid.SampledFrom build a generator (two
// allocations) at every call, and the program's draws made a tenth of a
// check's allocations. A kept generator draws exactly what a fresh one
// would, so seeds replay alike. Safe for concurrent use: the checks of a
// property share one.
type generators struct {
	names, dupFDMin *rapid.Generator[int] // indices into names, dupFDMins

	mu sync.Mutex // serializes additions
	// gens maps [min, max] to its generator. Lookups read it lock-free;
	// an addition publishes a copy with the new entry (a property's
	// ranges are few, so copies stop early).
	gens atomic.Pointer[map[[2]int]*rapid.Generator[int]]
}

// dupFDMins are the F_DUPFD minimums drawn: mostly any fd, sometimes one
// above every fd the round holds.
var dupFDMins = []int{0, 0, 12}

func newGenerators() *generators {
	return &generators{names: sampledIndex(names), dupFDMin: sampledIndex(dupFDMins)}
}

// sampledIndex draws an index into s as rapid.SampledFrom(s) does.
func sampledIndex[T any](s []T) *rapid.Generator[int] {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	return rapid.SampledFrom(idx)
}

// get returns the generator of [lo, hi].
func (r *generators) get(lo, hi int) *rapid.Generator[int] {
	key := [2]int{lo, hi}
	if m := r.gens.Load(); m != nil {
		if g := (*m)[key]; g != nil {
			return g
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.gens.Load()
	if old != nil {
		if g := (*old)[key]; g != nil {
			return g
		}
	}
	m := make(map[[2]int]*rapid.Generator[int], 1+lenOf(old))
	if old != nil {
		for k, g := range *old {
			m[k] = g
		}
	}
	g := rapid.IntRange(lo, hi)
	m[key] = g
	r.gens.Store(&m)
	return g
}

func lenOf(m *map[[2]int]*rapid.Generator[int]) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// drawer draws a program's values from t.
type drawer struct {
	t    *rapid.T
	gens *generators
}

// intn draws an int in [lo, hi].
func (d drawer) intn(lo, hi int, label string) int { return d.gens.get(lo, hi).Draw(d.t, label) }

// name draws a session name.
func (d drawer) name(label string) string { return names[d.gens.names.Draw(d.t, label)] }
