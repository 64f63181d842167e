//lint:file-ignore SA2001 the benchmarks time empty critical sections on purpose

package locking_test

import (
	"sync"
	"testing"

	"luomodel/kernel/locking"
)

// Uncontended Lock+Unlock and DownRead+UpRead, beside the sync types.
// "zero": a lock never Init'ed; "domain": Init'ed in a domain without
// lockdep (the production configuration); "lockdep": with lockdep.

func BenchmarkMutex(b *testing.B) {
	b.Run("sync", func(b *testing.B) {
		var m sync.Mutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("zero", func(b *testing.B) {
		var m locking.Mutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("domain", func(b *testing.B) {
		d, _ := newDomain(false)
		m := newMutex(d, "bench.mutex")
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep", func(b *testing.B) {
		d, _ := newDomain(true)
		m := newMutex(d, "bench.mutex")
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep-nested2", func(b *testing.B) {
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
		var m sync.RWMutex
		for b.Loop() {
			m.RLock()
			m.RUnlock()
		}
	})
	b.Run("zero", func(b *testing.B) {
		var s locking.RWSem
		for b.Loop() {
			s.DownRead()
			s.UpRead()
		}
	})
	b.Run("domain", func(b *testing.B) {
		d, _ := newDomain(false)
		var s locking.RWSem
		s.Init(d, "bench.rwsem")
		for b.Loop() {
			s.DownRead()
			s.UpRead()
		}
	})
	b.Run("lockdep", func(b *testing.B) {
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
		var m sync.RWMutex
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("domain", func(b *testing.B) {
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
