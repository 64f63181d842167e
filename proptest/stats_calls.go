package proptest

import (
	"strings"

	"luomodel/model"
	"luomodel/proptest/summary"
)

// The callback coverage of a campaign: which handler and FLB callbacks
// (the test module's and memfd's) ran with which outcome, counted from the
// model's trace of every operation (LUO's calls are checked against it).
// A row is "test.<callback>", "memfd.<callback>" or "flb.<callback>"; a
// column is the result (OK, true,
// false, -ERRNO: each errno a directive or a fault injects), or for the
// void callbacks that undo something, what caused them: unfreeze after a
// failed freeze (rollback) or a failed kho_finalize (finalize), an FLB's
// unpreserve for its last file (last) or to undo a failed preserve
// (rollback).

// ExpectedCalls lists the callback x outcome cells a default `luo check`
// must reach.
var ExpectedCalls = map[string][]string{
	"test.can_preserve":  {"true", "false"},
	"test.get_id":        {"OK"},
	"test.preserve":      {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.freeze":        {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.unfreeze":      {"rollback", "finalize"},
	"test.unpreserve":    {"OK"},
	"test.retrieve":      {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"test.can_finish":    {"true", "false"},
	"test.finish":        {"OK"},
	"flb.preserve":       {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"flb.unpreserve":     {"last", "rollback"},
	"flb.retrieve":       {"OK", "-ENOMEM", "-EIO", "-ENOSPC"},
	"flb.finish":         {"OK"},
	"memfd.can_preserve": {"true", "false"},
	"memfd.get_id":       {"OK"},
	"memfd.preserve":     {"OK", "-ENOMEM"},
	"memfd.freeze":       {"OK"},
	"memfd.unpreserve":   {"OK"},
	"memfd.retrieve":     {"OK"},
	"memfd.finish":       {"OK"},
}

// callCells returns the cells an operation's calls reach.
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
		case c.Handler == model.MemfdCompatible:
			row = "memfd." + c.Name
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

// TableCallbacks names the callback x outcome table.
const TableCallbacks = "callbacks"

// newCallbacksTable returns the empty callback x outcome table: results
// and causes first, then the errnos.
func newCallbacksTable() *summary.Table {
	t := summary.New(TableCallbacks, "callback")
	t.Lead = []string{"OK", "true", "false", "last", "rollback", "finalize"}
	t.Expected = map[string][]string{}
	for row, cols := range ExpectedCalls {
		t.Expected[row] = append([]string(nil), cols...)
	}
	return t
}

// calls counts the callback cells of one operation.
func (s *Stats) calls(op model.Op, res model.Result, calls []model.Call) {
	if s == nil || len(calls) == 0 {
		return
	}
	cells := callCells(op, res, calls)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cells {
		row, col, _ := strings.Cut(c, "/")
		s.callbacks.Add(row, col, 1)
	}
}

// MissingCalls returns the expected callback cells not reached so far.
func (s *Stats) MissingCalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callbacks.Missing()
}
