//lint:file-ignore SA2001 the benchmarks time empty critical sections on purpose

package locking_test

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"luomodel/kernel/locking"
)

// cpuPerOp reports, when the returned function runs after the loop, the
// CPU time the process spent per operation ("cpu-ns/op") beside the wall
// time: on a loaded machine ns/op mostly measures the other processes,
// CPU time much less so. Use it as `defer cpuPerOp(b)()`.
func cpuPerOp(b *testing.B) func() {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Uncontended Lock+Unlock and DownRead+UpRead, beside the sync types.
// "zero": a lock used without Init (a bug the next Init would report; the
// lock still works, on the magic check's slow path); "domain": Init'ed in a
// domain without lockdep (the production configuration); "lockdep": with
// lockdep.

func BenchmarkMutex(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		defer cpuPerOp(b)()
		var m sync.Mutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("zero", func(b *testing.B) {
		defer cpuPerOp(b)()
		var m locking.Mutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("domain", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(false)
		m := newMutex(d, "bench.mutex")
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(true)
		m := newMutex(d, "bench.mutex")
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep-nested2", func(b *testing.B) {
		defer cpuPerOp(b)()
		// Two classes: a known dependency on every acquisition.
		d, _ := newDomain(true)
		outer, inner := newMutex(d, "bench.outer"), newMutex(d, "bench.inner")
		for b.Loop() {
			outer.Lock()
			inner.Lock()
			inner.Unlock()
			outer.Unlock()
		}
	})
	b.Run("guard", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(false)
		m := newMutex(d, "bench.mutex")
		for b.Loop() {
			func() {
				defer m.Guard()()
			}()
		}
	})
}

func BenchmarkRWSemRead(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		defer cpuPerOp(b)()
		var m sync.RWMutex
		for b.Loop() {
			m.RLock()
			m.RUnlock()
		}
	})
	b.Run("zero", func(b *testing.B) {
		defer cpuPerOp(b)()
		var s locking.RWSem
		for b.Loop() {
			s.DownRead()
			s.UpRead()
		}
	})
	b.Run("domain", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(false)
		var s locking.RWSem
		s.Init(d, "bench.rwsem")
		for b.Loop() {
			s.DownRead()
			s.UpRead()
		}
	})
	b.Run("lockdep", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(true)
		var s locking.RWSem
		s.Init(d, "bench.rwsem")
		for b.Loop() {
			s.DownRead()
			s.UpRead()
		}
	})
}

func BenchmarkRWSemWrite(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		defer cpuPerOp(b)()
		var m sync.RWMutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("domain", func(b *testing.B) {
		defer cpuPerOp(b)()
		d, _ := newDomain(false)
		var s locking.RWSem
		s.Init(d, "bench.rwsem")
		for b.Loop() {
			s.DownWrite()
			s.UpWrite()
		}
	})
}

// BenchmarkYield is a scheduling point with no scheduler installed.
func BenchmarkYield(b *testing.B) {
	defer cpuPerOp(b)()
	d, _ := newDomain(false)
	for b.Loop() {
		d.Yield(locking.PointPhase)
	}
}

// BenchmarkMutexParallel: many tasks, one lock, lockdep on.
func BenchmarkMutexParallel(b *testing.B) {
	for _, ld := range []bool{false, true} {
		name := "domain"
		if ld {
			name = "lockdep"
		}
		b.Run(name, func(b *testing.B) {
			defer cpuPerOp(b)()
			d, _ := newDomain(ld)
			m := newMutex(d, "bench.mutex")
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.Lock()
					m.Unlock()
				}
			})
		})
	}
}
