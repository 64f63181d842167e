package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"luomodel/proptest"
	"luomodel/proptest/summary"
)

// tablesText renders a summary's parts as luo check prints their tables.
func tablesText(s *summary.Summary) string {
	var b strings.Builder
	for _, p := range s.Parts {
		fmt.Fprintf(&b, "%s: %s\n", p.Name, p.CountsLine())
		p.WriteTables(&b)
	}
	return b.String()
}

// TestShardsMergeToWholeCampaign runs one campaign whole on two workers
// and as four shards, merges the shards' JSON summaries with luo report
// and requires the same counters and tables, as printed and as JSON.
func TestShardsMergeToWholeCampaign(t *testing.T) {
	dir := t.TempDir()
	common := []string{"-q", "-checks", "60", "-campaign", "11", "-concurrent-checks", "10"}
	var out, errs strings.Builder
	whole := filepath.Join(dir, "whole.json")
	require.Equal(t, 0, checkMain(append(common, "-j", "2", "-json", whole), nil, &out, &errs), "%s%s", &out, &errs)
	var files []string
	for i := range 4 {
		f := filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		var o strings.Builder
		require.Equal(t, 0, checkMain(append(common, "-j", "1", "-shard", fmt.Sprintf("%d/4", i), "-json", f), nil, &o, &errs), "%s%s", &o, &errs)
		files = append(files, f)
	}
	merged := filepath.Join(dir, "merged.json")
	var rep strings.Builder
	require.Equal(t, 0, reportMain(append([]string{"-json", merged}, files...), &rep, &errs), "%s%s", &rep, &errs)

	w, err := summary.ReadJSON(whole)
	require.NoError(t, err)
	m, err := summary.ReadJSON(merged)
	require.NoError(t, err)
	require.Equal(t, []string{"0/4", "1/4", "2/4", "3/4"}, m.Shards)
	require.Len(t, m.Parts, 2)
	require.Equal(t, int64(60), m.Part("lockstep").Counts["checks"])
	require.Equal(t, int64(10), m.Part("concurrent").Counts["checks"])
	require.Equal(t, w.Parts, m.Parts)
	require.Equal(t, tablesText(w), tablesText(m))
	// The report prints the tables luo check prints.
	var lock strings.Builder
	w.Part("lockstep").WriteTables(&lock)
	require.Contains(t, out.String(), lock.String())
	require.Contains(t, rep.String(), lock.String())
}

// TestReportFailsOnMissingShard: a campaign with a shard missing is not
// reported as passed.
func TestReportFailsOnMissingShard(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "s.json")
	var out, errs strings.Builder
	require.Equal(t, 0, checkMain([]string{"-q", "-checks", "20", "-campaign", "3", "-concurrent", "0", "-shard", "1/2", "-json", f}, nil, &out, &errs))
	out.Reset()
	require.Equal(t, 1, reportMain([]string{f}, &out, &errs))
	require.Contains(t, out.String(), "INCOMPLETE: shard(s) 0/2 missing")
}

// failingProp is the lockstep property with a bug planted in the checker
// itself: about one check in 40 fails after its lockstep run, depending
// only on rapid's draws, so a failure and its replay are deterministic.
func failingProp(stats *proptest.Stats, skip map[string]bool) func(*rapid.T) {
	lockstep := proptest.LockstepSkipping(stats, skip)
	return func(t *rapid.T) {
		lockstep(t)
		if rapid.IntRange(0, 39).Draw(t, "planted") == 17 {
			t.Fatalf("planted failure")
		}
	}
}

// replayArgs extracts the arguments of a printed replay command.
func replayArgs(t *testing.T, replay string) []string {
	args, ok := strings.CutPrefix(replay, "go run ./cmd/luo check ")
	require.True(t, ok, replay)
	return strings.Fields(args)
}

// TestShardFailureReplays: a failure found in one shard (on two workers)
// stops the campaign, is recorded in its JSON summary with a replay
// command, which fails the same way with one worker; luo report fails.
func TestShardFailureReplays(t *testing.T) {
	dir := t.TempDir()
	var failed *summary.Summary
	var path string
	for i := 0; i < 4 && failed == nil; i++ {
		path = filepath.Join(dir, fmt.Sprintf("shard%d.json", i))
		var out, errs strings.Builder
		code := checkMain([]string{"-q", "-checks", "400", "-campaign", "5", "-concurrent", "0", "-shrinktime", "2s",
			"-j", "2", "-shard", fmt.Sprintf("%d/4", i), "-json", path}, failingProp, &out, &errs)
		s, err := summary.ReadJSON(path)
		require.NoError(t, err)
		if code == 1 {
			require.Contains(t, out.String(), "planted failure")
			require.Contains(t, out.String(), "replay: go run ./cmd/luo check -seed ")
			failed = s
		} else {
			require.Equal(t, 0, code, "%s%s", &out, &errs)
		}
	}
	require.NotNil(t, failed, "no shard found the planted failure")
	require.Len(t, failed.Failures, 1)
	f := failed.Failures[0]
	require.Equal(t, "lockstep", f.Campaign)
	require.NotZero(t, f.Seed)
	require.Contains(t, f.Message, "planted failure")

	var out, errs strings.Builder
	require.Equal(t, 1, checkMain(append(replayArgs(t, f.Replay), "-q", "-shrinktime", "2s"), failingProp, &out, &errs))
	require.Contains(t, out.String(), "planted failure")
	require.Contains(t, out.String(), fmt.Sprintf("seed: %d", f.Seed))

	out.Reset()
	require.Equal(t, 1, reportMain([]string{path}, &out, &errs))
	require.Contains(t, out.String(), f.Replay)
}

// TestTimedCampaignsAlternate: with time budgets the concurrent campaign
// runs in slices between lockstep slices, not after the lockstep budget:
// the lockstep checks pause (a concurrent slice of a second) before the
// lockstep budget is spent, and both campaigns' tables are reported.
func TestTimedCampaignsAlternate(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	prop := func(stats *proptest.Stats, skip map[string]bool) func(*rapid.T) {
		lockstep := proptest.LockstepSkipping(stats, skip)
		return func(t *rapid.T) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			lockstep(t)
		}
	}
	f := filepath.Join(t.TempDir(), "s.json")
	var out, errs strings.Builder
	require.Equal(t, 0, checkMain([]string{"-q", "-campaign", "3", "-duration", "2s", "-concurrent", "2s", "-j", "1", "-json", f},
		prop, &out, &errs), "%s%s", &out, &errs)
	require.Contains(t, out.String(), "slices=2")
	s, err := summary.ReadJSON(f)
	require.NoError(t, err)
	require.Len(t, s.Parts, 2)
	require.NotZero(t, s.Part("concurrent").Counts["checks"])
	var gap time.Duration
	for i := 1; i < len(starts); i++ {
		gap = max(gap, starts[i].Sub(starts[i-1]))
	}
	require.GreaterOrEqual(t, gap, 900*time.Millisecond, "no concurrent slice between lockstep checks")
}

// benchCampaign runs a 200-check campaign on j workers per iteration and
// reports checks/s: BenchmarkCheckJobs2's figure over BenchmarkCheckJobs1's
// is the speed-up of -j 2 (the checks are the same on any number of
// workers). It runs in the test process, without the GODEBUG that luo
// check re-executes itself with (godebug.go): set GODEBUG=madvdontneed=0 to
// measure what luo check runs.
func benchCampaign(b *testing.B, j int) {
	const checks = 200
	n := 0
	start := time.Now()
	for b.Loop() {
		var out, errs strings.Builder
		if code := checkMain([]string{"-q", "-checks", strconv.Itoa(checks), "-campaign", "9", "-concurrent", "0", "-j", strconv.Itoa(j)}, nil, &out, &errs); code != 0 {
			b.Fatalf("%s%s", &out, &errs)
		}
		n += checks
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "checks/s")
}

func BenchmarkCheckJobs1(b *testing.B) { benchCampaign(b, 1) }
func BenchmarkCheckJobs2(b *testing.B) { benchCampaign(b, 2) }
