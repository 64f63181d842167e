package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// This file is what the lockstep and the concurrent campaigns share: the
// campaign's sequence of batches, its partition into shards, and the
// workers that run batches in parallel.
//
// A campaign is an endless sequence of batches: batch k is one rapid.Check
// of batchChecks checks from the k-th seed of a PRNG seeded by the
// campaign seed. Which checks a campaign runs is therefore defined by
// seeds alone: with -checks C it is the first C checks of the sequence;
// with a time budget it is a prefix of the sequence as long as the time
// allows. Shard I of N runs the batches k with k mod N == I, so N shards
// of one -checks campaign run exactly its checks, each once; N shards of a
// timed campaign run disjoint parts of the sequence (each a prefix of its
// own share), however fast their machines are. Workers (-j) take the next
// batch of their shard from a shared counter: with -checks they run the
// same checks as one worker, only sooner.

// batchChecks is how many checks one rapid.Check call runs.
const batchChecks = 10

// Shard is a part of a campaign: batches k with k mod N == I.
type Shard struct{ I, N int }

// String renders the shard as "I/N".
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// parseShard reads "I/N" with 0 <= I < N.
func parseShard(v string) (Shard, error) {
	i, n, ok := strings.Cut(v, "/")
	if !ok {
		return Shard{}, fmt.Errorf("-shard %q: want I/N", v)
	}
	a, err1 := strconv.Atoi(i)
	b, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || b < 1 || a < 0 || a >= b {
		return Shard{}, fmt.Errorf("-shard %q: want I/N with 0 <= I < N", v)
	}
	return Shard{a, b}, nil
}

// batchSpec is one batch to run.
type batchSpec struct {
	K    int    // index in the campaign's sequence
	Seed uint64 // rapid's seed of its first check
	N    int    // checks
}

// dispenser hands out the batches of a shard in sequence order until the
// check budget or the deadline is spent or the campaign is stopped.
// sync.Mutex: workers of a campaign share it; no kernel task waits on it.
type dispenser struct {
	mu       sync.Mutex
	master   *rand.Rand // guarded by mu; the campaign's seed sequence
	next     int        // guarded by mu; index of master's next seed
	shard    Shard
	checks   int       // total budget of the whole campaign; 0: none
	deadline time.Time // zero: none
	stopped  atomic.Bool
}

func newDispenser(campaign, stream uint64, shard Shard, checks int, d time.Duration) *dispenser {
	dp := &dispenser{master: rand.New(rand.NewPCG(campaign, stream)), shard: shard, checks: checks}
	if checks == 0 {
		dp.deadline = time.Now().Add(d)
	}
	return dp
}

// take returns the next batch of the shard, or false when there is none.
func (dp *dispenser) take() (batchSpec, bool) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	for !dp.stopped.Load() {
		k := dp.next
		seed := dp.master.Uint64() | 1
		dp.next++
		n := batchChecks
		if dp.checks > 0 {
			n = min(n, dp.checks-k*batchChecks)
			if n <= 0 {
				return batchSpec{}, false
			}
		} else if !time.Now().Before(dp.deadline) {
			return batchSpec{}, false
		}
		if k%dp.shard.N == dp.shard.I {
			return batchSpec{K: k, Seed: seed, N: n}, true
		}
	}
	return batchSpec{}, false
}

// extend sets the deadline of a timed dispenser to d from now: `luo
// check` runs its two campaigns in alternating slices, each slice a
// continuation of the same sequence of batches.
func (dp *dispenser) extend(d time.Duration) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	if dp.checks == 0 {
		dp.deadline = time.Now().Add(d)
	}
}

// stop makes take return false from now on.
func (dp *dispenser) stop() { dp.stopped.Store(true) }

// rapidGate serializes the start of rapid.Check calls: rapid reads its
// seed and number of checks from its flags (package-level) when a Check
// begins, so a worker holds the gate from setting them until its property
// first runs, when rapid has read them. sync.Mutex: no kernel task waits
// on it.
type rapidGate struct{ mu sync.Mutex }

// check runs rapid.Check(tb, prop) for n checks from seed.
func (g *rapidGate) check(tb *campaignTB, seed uint64, n int, prop func(*rapid.T)) {
	g.mu.Lock()
	var once sync.Once
	release := func() { once.Do(g.mu.Unlock) }
	defer release()
	_ = flag.Set("rapid.seed", strconv.FormatUint(seed, 10))
	if testing.Short() {
		// rapid runs a fifth of its checks under -test.short, which a
		// campaign run in a test binary (go test -short) inherits: a
		// batch is n checks either way.
		n *= 5
	}
	_ = flag.Set("rapid.checks", strconv.Itoa(n))
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(failNow); !ok {
					tb.Errorf("panic: %v", p)
				}
			}
		}()
		rapid.Check(tb, func(t *rapid.T) {
			release()
			prop(t)
		})
	}()
}

// race decides which worker's failure a campaign reports: the first to
// fail. The others' checks are skipped from then on, so that a worker
// shrinking a second failure gives up at once.
type race struct{ winner atomic.Int64 }

func newRace() *race {
	r := &race{}
	r.winner.Store(-1)
	return r
}

// claim makes worker w the winner unless another is.
func (r *race) claim(w int) { r.winner.CompareAndSwap(-1, int64(w)) }

// lost says whether another worker than w failed first.
func (r *race) lost(w int) bool { x := r.winner.Load(); return x >= 0 && x != int64(w) }

// guard wraps worker w's property: skipped once another worker failed,
// and a failure (a fatal error or a panic) claims the race.
func (r *race) guard(w int, prop func(*rapid.T)) func(*rapid.T) {
	return func(t *rapid.T) {
		if r.lost(w) {
			t.Skip("another worker failed first")
		}
		defer func() {
			p := recover()
			// rapid's own panics are a skip or a failure (Failed).
			if t.Failed() || p != nil && reflect.TypeOf(p).PkgPath() != "pgregory.net/rapid" {
				r.claim(w)
			}
			if p != nil {
				panic(p)
			}
		}()
		prop(t)
	}
}

// runWorkers runs j workers; each calls work(w) once.
func runWorkers(j int, work func(w int)) {
	var wg sync.WaitGroup
	for w := range j {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	wg.Wait()
}
