package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"luomodel/proptest/concurrent"
)

// This file is the concurrent campaign of `luo check`: programs of several
// threads under the controlled scheduler, checked for linearizability
// against the model (proptest/concurrent). runCheck calls
// concurrentCampaign with its share of the time budget; `luo concurrent`
// runs it alone.

// concurrentResult is what a concurrent campaign did.
type concurrentResult struct {
	Checks, Schedules, Ops int64
	Failure                *concurrent.Failure // minimized; nil if none
	Seed                   uint64              // the rapid seed of the failing batch
}

// concurrentCampaign runs batches of concurrent checks until d has passed
// (or, with seed != 0, one batch of that seed) and returns what it found.
// rapid's flags must be registered and parsed (runCheck does it).
func concurrentCampaign(d time.Duration, seed, campaign uint64, outDir string) concurrentResult {
	cfg := concurrent.Config{OutDir: outDir}
	var st concurrent.Stats
	var res concurrentResult
	start := time.Now()
	master := rand.New(rand.NewPCG(campaign, 0x636f6e63))
	for {
		s := seed
		if s == 0 {
			if time.Since(start) >= d {
				break
			}
			s = master.Uint64() | 1
		}
		_ = flag.Set("rapid.seed", strconv.FormatUint(s, 10))
		_ = flag.Set("rapid.checks", "10")
		var last *concurrent.Failure
		tb := &campaignTB{name: "luo-check-concurrent"}
		func() {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(failNow); !ok {
						tb.Errorf("panic: %v", p)
					}
				}
			}()
			rapid.Check(tb, concurrent.Property(cfg, &st, func(f *concurrent.Failure) { last = f }))
		}()
		if tb.Failed() && last != nil {
			res.Failure, res.Seed = concurrent.Minimize(cfg, last), s
			break
		}
		if seed != 0 {
			break
		}
	}
	res.Checks, res.Schedules, res.Ops = st.Checks.Load(), st.Schedules.Load(), st.Ops.Load()
	return res
}

// reportConcurrent prints the campaign's summary and, on failure, the
// account and the replay command.
func reportConcurrent(w io.Writer, r concurrentResult, elapsed time.Duration) {
	fmt.Fprintf(w, "luo check (concurrent): checks=%d schedules=%d thread-syscalls=%d elapsed=%s\n",
		r.Checks, r.Schedules, r.Ops, elapsed.Round(time.Millisecond))
	if r.Failure == nil {
		return
	}
	fmt.Fprintf(w, "\nFAIL: %v\n", r.Failure)
	fmt.Fprintf(w, "replay: luo concurrent -seed %d\n", r.Seed)
}

// runConcurrent is `luo concurrent`: the concurrent campaign alone.
func runConcurrent(args []string) int {
	fs := flag.NewFlagSet("concurrent", flag.ExitOnError)
	duration := fs.Duration("duration", time.Minute, "how long to run (ignored with -seed)")
	seed := fs.Uint64("seed", 0, "replay the batch with this seed (as printed by a failure)")
	campaign := fs.Uint64("campaign", uint64(time.Now().UnixNano()), "seed of the campaign's batch seeds")
	out := fs.String("out", "", "directory for porcupine's HTML visualization (default: the temp dir)")
	_ = fs.Parse(args)
	registerRapidFlags()
	start := time.Now()
	r := concurrentCampaign(*duration, *seed, *campaign, *out)
	reportConcurrent(os.Stdout, r, time.Since(start))
	if r.Failure != nil {
		return 1
	}
	fmt.Println("PASS")
	return 0
}

// registerRapidFlags makes rapid's flags settable outside a test binary:
// rapid registers them on the standard flag set and calls testing.Short().
func registerRapidFlags() {
	if flag.Lookup("test.short") == nil {
		testing.Init()
	}
	_ = flag.CommandLine.Parse(nil)
	_ = flag.Set("rapid.nofailfile", "true")
}
