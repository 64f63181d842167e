package proptest

import (
	"os"
	"runtime"
	"runtime/debug"
)

// CampaignGCPercent is the GC percent of a checking campaign (CampaignGC).
const CampaignGCPercent = 400

// CampaignGC sets the garbage collector of a checking process, as
// cmd/compile does for its own short-lived batch work, unless the user set
// GOGC: the GC runs when the heap has grown by CampaignGCPercent percent
// of the live heap instead of Go's default 100. It returns a function
// that restores the previous setting.
//
// Why: a check boots machines whose memory (RAM frames, page metadata,
// buffers) is all garbage at its end, so the live heap stays tiny (about
// 1 MB per worker) while hundreds of KB are allocated per check. At 100
// the heap goal is the 4 MB minimum, which fills and drains many times a
// second: GC marking, sweeping and the scavenger returning the freed
// pages to the OS (then faulting them back in) took about a third of a
// concurrent schedule's CPU and a quarter of a lockstep campaign's. At
// 400 the goal is 16 MB: a campaign of two workers peaks at about 180 MB,
// nothing on the 24 GiB machines it runs on. Larger percents measured no
// faster (the heap then leaves the caches).
//
// `luo check` and `luo concurrent` call it at start, and the concurrent
// campaign's benchmarks (proptest/concurrent) too, so that they measure
// what the campaign runs.
func CampaignGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(CampaignGCPercent)
	return func() { debug.SetGCPercent(old) }
}

// NoHeapProfile stops the runtime's heap profile sampling, which a
// campaign never writes: by default the runtime records the stack of one
// allocation per 512 KiB allocated, and a concurrent check allocates about
// 300 KiB, so every other check pays a stack walk (about 1% of its CPU).
// It returns a function that restores the previous rate. `luo check` and
// `luo concurrent` call it at start, and the concurrent benchmarks too
// unless asked for a heap profile.
func NoHeapProfile() (restore func()) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 0
	return func() { runtime.MemProfileRate = old }
}
