package concurrent_test

import (
	"flag"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"luomodel/proptest"
	"luomodel/proptest/concurrent"
)

// benchSchedules runs b.N rapid checks of one round of 3 threads x 4
// syscalls each and reports schedules per second. It runs with the
// campaign's GC setting (proptest.CampaignGC, GC percent 400, which `luo
// check` and `luo concurrent` set at start), not Go's default: at 100, GC
// and the scavenger take about a third of a schedule's CPU (GOGC=100 in
// the environment measures that). It does not have the GODEBUG
// madvdontneed=0 that luo re-executes itself with (cmd/luo/godebug.go;
// the runtime reads it only at start-up): set it in the environment to
// measure exactly what luo runs. Like luo, it samples no heap profile
// unless -test.memprofile asks for one. luo is built with the profile
// cmd/luo/default.pgo (PGO); go test applies it only when asked, as `make
// bench` does: go test -pgo=$PWD/cmd/luo/default.pgo.
func benchSchedules(b *testing.B, noLin bool) {
	defer proptest.CampaignGC()()
	if f := flag.Lookup("test.memprofile"); f == nil || f.Value.String() == "" {
		defer proptest.NoHeapProfile()()
	}
	cfg := concurrent.Config{Gen: concurrent.Gen{MaxThreads: 3, MaxOps: 4}, Rounds: 1, NoLin: noLin, OutDir: b.TempDir()}
	var st concurrent.Stats
	_ = flag.Set("rapid.checks", strconv.Itoa(b.N))
	b.ResetTimer()
	rapid.Check(b, concurrent.Property(cfg, &st, nil))
	b.ReportMetric(float64(st.Schedules.Load())/b.Elapsed().Seconds(), "schedules/s")
}

func BenchmarkSchedulesLin(b *testing.B)   { benchSchedules(b, false) }
func BenchmarkSchedulesNoLin(b *testing.B) { benchSchedules(b, true) }
