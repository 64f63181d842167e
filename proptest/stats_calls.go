package proptest

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"luomodel/model"
)

// The callback coverage of a campaign: which handler and FLB callbacks of
// the test module ran with which outcome, counted from the model's trace
// of every operation (the port's trace is checked against it). A row is
// "test.<callback>" or "flb.<callback>"; a column is the result (OK, true,
// false, -ERRNO: each errno a directive or a fault injects), or for the
// void callbacks that undo something, what caused them: unfreeze after a
// failed freeze (rollback) or a failed kho_finalize (finalize), an FLB's
// unpreserve for its last file (last) or to undo a failed preserve
// (rollback).

// ExpectedCalls lists the callback x outcome cells a default `luo check`
// must reach.
var ExpectedCalls = map[string][]string{
	"test.can_preserve": {"true", "false"},
	"test.get_id":       {"OK"},
	"test.preserve":     {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.freeze":       {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.unfreeze":     {"rollback", "finalize"},
	"test.unpreserve":   {"OK"},
	"test.retrieve":     {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.can_finish":   {"true", "false"},
	"test.finish":       {"OK"},
	"flb.preserve":      {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"flb.unpreserve":    {"last", "rollback"},
	"flb.retrieve":      {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"flb.finish":        {"OK"},
}

// callCells returns the cells an operation's calls reach: the test
// handler's and the FLBs' (the memfd handler's are in the op table).
func callCells(op model.Op, res model.Result, calls []model.Call) []string {
	var cells []string
	failed := false // a freeze or preserve of this operation failed
	for _, c := range calls {
		if (c.Name == model.CbFreeze || c.Name == model.CbPreserve) && c.Result != 0 {
			failed = true
		}
	}
	for _, c := range calls {
		var row string
		switch {
		case c.FLB != "":
			row = "flb." + c.Name
		case c.Handler == model.TestCompatible:
			row = "test." + c.Name
		default:
			continue
		}
		col := "OK"
		switch {
		case c.Bool && c.Result == 0:
			col = "true"
		case c.Bool:
			col = "false"
		case c.Result != 0:
			col = "-" + model.ErrnoName(c.Result)
		case row == "test.unfreeze" && failed:
			col = "rollback"
		case row == "test.unfreeze":
			col = "finalize"
		case row == "flb.unpreserve" && op.Kind == model.OpIoctl && res.Errno != 0:
			col = "rollback"
		case row == "flb.unpreserve":
			col = "last"
		}
		cells = append(cells, row+"/"+col)
	}
	return cells
}

// calls counts the callback cells of one operation.
func (s *Stats) calls(op model.Op, res model.Result, calls []model.Call) {
	if s == nil || len(calls) == 0 {
		return
	}
	cells := callCells(op, res, calls)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.callCells == nil {
		s.callCells = map[string]int{}
	}
	for _, c := range cells {
		s.callCells[c]++
	}
}

// missingCallsLocked returns the expected callback cells not reached.
func (s *Stats) missingCallsLocked() []string {
	var miss []string
	for row, cols := range ExpectedCalls {
		for _, c := range cols {
			if s.callCells[row+"/"+c] == 0 {
				miss = append(miss, row+"/"+c)
			}
		}
	}
	sort.Strings(miss)
	return miss
}

// MissingCalls returns the expected callback cells not reached so far.
func (s *Stats) MissingCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.missingCallsLocked()
}

// writeCallsLocked prints the callback x outcome table.
func (s *Stats) writeCallsLocked(w io.Writer) {
	rowSet := map[string]bool{}
	colSet := map[string]bool{}
	for row, cols := range ExpectedCalls {
		rowSet[row] = true
		for _, c := range cols {
			colSet[c] = true
		}
	}
	for cell := range s.callCells {
		row, col, _ := strings.Cut(cell, "/")
		rowSet[row], colSet[col] = true, true
	}
	rows := slices.Sorted(func(yield func(string) bool) {
		for r := range rowSet {
			if !yield(r) {
				return
			}
		}
	})
	var cols []string
	for _, c := range []string{"OK", "true", "false", "last", "rollback", "finalize"} {
		if colSet[c] {
			cols = append(cols, c)
			delete(colSet, c)
		}
	}
	var errs []string
	for c := range colSet {
		errs = append(errs, c)
	}
	sort.Strings(errs)
	cols = append(cols, errs...)
	fmt.Fprintf(w, "%-18s", "callback")
	for _, c := range cols {
		fmt.Fprintf(w, " %8s", c)
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%-18s", r)
		for _, c := range cols {
			switch n := s.callCells[r+"/"+c]; {
			case n > 0:
				fmt.Fprintf(w, " %8d", n)
			case slices.Contains(ExpectedCalls[r], c):
				fmt.Fprintf(w, " %8s", "!")
			default:
				fmt.Fprintf(w, " %8s", ".")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	if miss := s.missingCallsLocked(); len(miss) > 0 {
		fmt.Fprintf(w, "WARNING: %d expected callback outcome(s) never reached (\"!\" above): %s\n\n", len(miss), strings.Join(miss, ", "))
	} else {
		fmt.Fprintf(w, "every expected callback x outcome cell was reached\n\n")
	}
}
