package model

// This file splits a session's finish or unpreserve where an FLB's
// registration can run inside it. luo_file_finish() and
// luo_file_unpreserve_files() handle the set's files one by one, and each
// test file's FLB half (luo_flb_file_finish(), luo_flb_file_unpreserve())
// takes luo_register_rwlock for read on its own: a registration or
// unregistration of an FLB (write) can run between two files' halves,
// under the session mutex and the serialize rwsem the finish holds. The
// model applies a finish in one step; a concurrent checker that sees an
// FLB's (un)registration overlap one asks the step to leave the FLB half
// of its last test file undone (DeferringFLBWork), and runs it as a step
// of its own (RunFLBWork), which it may order after the registration.

// FLBWork is the FLB half of one test file's finish or unpreserve, done
// over the FLBs linked when it runs.
type FLBWork uint8

const (
	// NoFLBWork: nothing was deferred.
	NoFLBWork FLBWork = iota
	// FLBFinishWork is luo_flb_file_finish().
	FLBFinishWork
	// FLBUnpreserveWork is luo_flb_file_unpreserve().
	FLBUnpreserveWork
)

// flbSplit is State.flbSplit: whether the step defers an FLB half, and
// the half it deferred.
type flbSplit struct {
	armed    bool
	deferred FLBWork
}

// DeferringFLBWork returns s armed so that the first finish or unpreserve
// of a session with two or more test files that a step from it makes
// (Step, Apply on a Clone, UnpreserveSessionFiles) leaves the FLB half of
// the last test file it handles undone; TakeFLBWork then returns that
// half. One split point is enough for the campaigns, whose sessions hold
// at most two test files (there are two test file slots). s itself is not
// changed.
func DeferringFLBWork(s State) State {
	s.flbSplit = flbSplit{armed: true}
	return s
}

// TakeFLBWork returns the FLB half a step from a DeferringFLBWork state
// deferred (NoFLBWork if it handled fewer than two test files), and
// clears the split from s.
func TakeFLBWork(s *State) FLBWork {
	w := s.flbSplit.deferred
	s.flbSplit = flbSplit{}
	return w
}

// RunFLBWork does a deferred FLB half on s: over the FLBs linked now, in
// reverse link order, as luo_flb_file_finish() or _unpreserve() does.
func RunFLBWork(s State, w FLBWork) State {
	n := s.stepCopy()
	switch w {
	case FLBFinishWork:
		n.flbFileFinish()
	case FLBUnpreserveWork:
		n.flbFileUnpreserve()
	}
	n.settleTestModulePins()
	return n
}

// deferFLBHalf reports whether the FLB half of the nth of a finish's or
// unpreserve's tests test files (counted in the order it handles them) is
// deferred as w: the step is armed, the file is the last one and another
// came before it. The split is disarmed once taken.
func (s *State) deferFLBHalf(w FLBWork, nth, tests int) bool {
	if !s.flbSplit.armed || nth != tests || tests < 2 {
		return false
	}
	s.flbSplit = flbSplit{deferred: w}
	return true
}

// countTestFiles is the number of test files of an incoming set.
func countTestFiles(in []InFile) int {
	n := 0
	for _, f := range in {
		if f.Handler == TestCompatible {
			n++
		}
	}
	return n
}

// MaxSessionTestFiles is the most test files one session holds.
func (s *State) MaxSessionTestFiles() int {
	most := 0
	for _, se := range s.Sessions {
		n := countTestFiles(se.In)
		for _, of := range se.Out {
			if s.Files[of.File].Kind == KindTest {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}
