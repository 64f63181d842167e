package concurrent

import (
	"sync"

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

	mu   sync.RWMutex
	gens map[[2]int]*rapid.Generator[int] // by [min, max]; guarded by mu
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
	r.mu.RLock()
	g := r.gens[key]
	r.mu.RUnlock()
	if g != nil {
		return g
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if g = r.gens[key]; g == nil {
		if r.gens == nil {
			r.gens = map[[2]int]*rapid.Generator[int]{}
		}
		g = rapid.IntRange(lo, hi)
		r.gens[key] = g
	}
	return g
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
