package concurrent_test

import (
	"flag"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"luomodel/proptest/concurrent"
)

// benchSchedules runs b.N rapid checks of one round of 3 threads x 4
// syscalls each and reports schedules per second.
func benchSchedules(b *testing.B, noLin bool) {
	cfg := concurrent.Config{Gen: concurrent.Gen{MaxThreads: 3, MaxOps: 4}, Rounds: 1, NoLin: noLin, OutDir: b.TempDir()}
	var st concurrent.Stats
	_ = flag.Set("rapid.checks", strconv.Itoa(b.N))
	b.ResetTimer()
	rapid.Check(b, concurrent.Property(cfg, &st, nil))
	b.ReportMetric(float64(st.Schedules.Load())/b.Elapsed().Seconds(), "schedules/s")
}

func BenchmarkSchedulesLin(b *testing.B)   { benchSchedules(b, false) }
func BenchmarkSchedulesNoLin(b *testing.B) { benchSchedules(b, true) }
