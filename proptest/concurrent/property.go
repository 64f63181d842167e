package concurrent

import (
	"sync/atomic"

	"pgregory.net/rapid"

	"luomodel/kernel/sched"
)

// Stats counts what a campaign explored; safe for concurrent use.
type Stats struct {
	Checks    atomic.Int64 // rapid test cases (machines)
	Schedules atomic.Int64 // rounds run under the scheduler (one schedule each)
	Ops       atomic.Int64 // syscalls issued by threads
	Switches  atomic.Int64
	Preempts  atomic.Int64
}

// Property returns the rapid property of the concurrent lockstep check:
// boot, hand two sessions over, then cfg.Rounds rounds of a drawn program
// run under the controlled scheduler with rapid choosing every context
// switch, each checked as described in the package doc. onFail, if not
// nil, sees every failure (the last one it sees is rapid's shrunk one).
func Property(cfg Config, stats *Stats, onFail func(*Failure)) func(*rapid.T) {
	return property(cfg, stats, onFail, true)
}

// StressProperty is Property with the threads running free on real
// goroutines (no scheduler, reboot instructions skipped): under -race, and
// with go-deadlock's watchdog on, an independent check of the same
// programs.
func StressProperty(cfg Config, stats *Stats, onFail func(*Failure)) func(*rapid.T) {
	return property(cfg, stats, onFail, false)
}

func property(cfg Config, stats *Stats, onFail func(*Failure), scheduled bool) func(*rapid.T) {
	cfg = cfg.withDefaults()
	return func(t *rapid.T) {
		c, err := newChecker(cfg)
		if err != nil {
			t.Fatalf("boot and setup: %v", err)
		}
		if stats != nil {
			stats.Checks.Add(1)
		}
		for r := 1; r <= cfg.Rounds; r++ {
			prog := cfg.Gen.Draw(t, "program")
			var ch sched.Chooser
			if scheduled {
				ch = sched.Rapid(t)
			}
			f := c.round(r, prog, ch)
			if stats != nil {
				stats.Schedules.Add(1)
				for _, th := range prog {
					stats.Ops.Add(int64(len(th)))
				}
				if f != nil {
					stats.Switches.Add(int64(f.Switches))
				}
			}
			if f != nil {
				if onFail != nil {
					onFail(f)
				}
				// rapid shrinks only toward the same error text, so the
				// fatal message is the failure's stable category; the
				// account (addresses, paths) is logged.
				t.Logf("%v", f)
				t.Fatalf("%s", f.Category)
			}
		}
	}
}
