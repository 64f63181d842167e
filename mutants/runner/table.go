package runner

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintTable writes the kill table, then the median and worst time to
// kill over the killed mutants.
func PrintTable(w io.Writer, rs []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mutant\tstatus\tkilled by\texpected\ttime to kill\tfound after\tcheck")
	for _, r := range rs {
		exp := "-"
		if r.Mutant != nil {
			var es []string
			for _, e := range r.Mutant.Expect {
				es = append(es, string(e))
			}
			exp = strings.Join(es, "|")
			if r.MainJob && r.Status == StatusKilled {
				if r.Matches {
					exp += " (match)"
				} else {
					exp += " (differs)"
				}
			}
		} else if r.Status == StatusClean {
			exp = "nothing"
		}
		check := "-"
		if r.Check != nil {
			check = fmt.Sprintf("#%d %s", r.Index+1, r.Check.String())
		} else if r.Mutant == nil && r.Status == StatusClean {
			check = "all checks of the zoo"
		}
		by := string(r.By)
		if by == "" {
			by = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID(), r.Status, by, exp, fmtDur(r.KillTime), fmtDur(r.Found), check)
	}
	tw.Flush()
	var kills, finds []time.Duration
	for _, r := range rs {
		if r.Mutant != nil && r.Status == StatusKilled {
			kills = append(kills, r.KillTime)
			if r.FoundSet {
				finds = append(finds, r.Found)
			} else {
				finds = append(finds, r.KillTime)
			}
		}
	}
	n := 0
	for _, r := range rs {
		if r.Mutant != nil {
			n++
		}
	}
	fmt.Fprintf(w, "\n%d/%d mutants killed", len(kills), n)
	if len(kills) > 0 {
		slices.Sort(kills)
		fmt.Fprintf(w, "; time to kill: median %s, worst %s", fmtDur(median(kills)), fmtDur(kills[len(kills)-1]))
		slices.Sort(finds)
		fmt.Fprintf(w, "; time to find: median %s, worst %s", fmtDur(median(finds)), fmtDur(finds[len(finds)-1]))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "(time to kill: the killing check's wall time without its build, including a campaign's shrinking; found after: the campaign's own time to the first failure; time to find: found after where printed, else the time to kill)")
}

func median(ds []time.Duration) time.Duration {
	n := len(ds)
	if n%2 == 1 {
		return ds[n/2]
	}
	return (ds[n/2-1] + ds[n/2]) / 2
}

// PrintFailures writes, for every row that is not a success, why: the
// stale or build output, or the excerpt of the unexpected kill.
func PrintFailures(w io.Writer, rs []*Result, verbose bool) {
	for _, r := range rs {
		if r.Status.OK() && !verbose {
			continue
		}
		text := r.Detail
		if text == "" {
			text = r.Output
		}
		if text == "" {
			if r.Status == StatusSurvived {
				text = "every check passed"
			} else {
				continue
			}
		}
		fmt.Fprintf(w, "\n--- %s: %s", r.ID(), r.Status)
		if r.By != "" {
			fmt.Fprintf(w, " (%s)", r.By)
		}
		fmt.Fprintf(w, "\n%s\n", indent(text))
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// AllOK reports whether every row succeeded.
func AllOK(rs []*Result) bool {
	for _, r := range rs {
		if !r.Status.OK() {
			return false
		}
	}
	return true
}
