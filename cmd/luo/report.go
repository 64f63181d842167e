package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"luomodel/proptest/summary"
)

// runReport is `luo report FILE...`: merge the JSON summaries of a
// campaign's shards (luo check -shard I/N -json FILE) and print the tables
// luo check prints for the whole campaign. It fails if any shard failed
// (printing each failure's replay command), if the files belong to
// different campaigns, or if a shard is missing or given twice.
func runReport(args []string) int { return reportMain(args, os.Stdout, os.Stderr) }

func reportMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonPath := fs.String("json", "", "also write the merged summary to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "usage: luo report [-json FILE] SUMMARY.json...\n")
		return 2
	}
	var all summary.Summary
	for _, path := range fs.Args() {
		s, err := summary.ReadJSON(path)
		if err != nil {
			fmt.Fprintf(stderr, "luo: %v\n", err)
			return 2
		}
		if err := all.Merge(s); err != nil {
			fmt.Fprintf(stderr, "luo: %s: %v\n", path, err)
			return 2
		}
	}
	code := 0
	missing := missingShards(all.Shards)
	fmt.Fprintf(stdout, "luo report: %d summaries campaign=%d shards=%s elapsed(longest)=%.0fs\n\n",
		fs.NArg(), all.Campaign, strings.Join(all.Shards, ","), all.ElapsedSeconds)
	writeParts(stdout, &all)
	if len(missing) > 0 {
		fmt.Fprintf(stdout, "INCOMPLETE: shard(s) %s missing\n", strings.Join(missing, ", "))
		code = 1
	}
	for _, f := range all.Failures {
		fmt.Fprintf(stdout, "FAIL (%s campaign, shard %s): seed %d\n%s\nreplay: %s\n\n", f.Campaign, f.Shard, f.Seed, strings.TrimSpace(f.Message), f.Replay)
		code = 1
	}
	if *jsonPath != "" {
		if err := all.WriteJSON(*jsonPath); err != nil {
			fmt.Fprintf(stderr, "luo: %v\n", err)
			return 2
		}
	}
	if code == 0 {
		fmt.Fprintf(stdout, "PASS\n")
	}
	return code
}

// writeParts prints each part's counters and tables as luo check does.
func writeParts(w io.Writer, s *summary.Summary) {
	for _, p := range s.Parts {
		fmt.Fprintf(w, "%s: %s\n\n", p.Name, p.CountsLine())
		p.WriteTables(w)
	}
}

// missingShards lists the shards "I/N" absent from got, for every N seen.
func missingShards(got []string) []string {
	var miss []string
	ns := map[int]bool{}
	for _, g := range got {
		if sh, err := parseShard(g); err == nil {
			ns[sh.N] = true
		}
	}
	for n := range ns {
		for i := range n {
			if s := (Shard{i, n}).String(); !slices.Contains(got, s) {
				miss = append(miss, s)
			}
		}
	}
	slices.Sort(miss)
	return miss
}
