package concurrent

import (
	"maps"

	"github.com/anishathalye/porcupine"

	"luomodel/model"
)

// This file lets an FLB's registration run inside a session's finish or
// unpreserve. Both handle the set's files one by one, and each test file's
// FLB half takes luo_register_rwlock on its own, so an FLB linked or
// unlinked by a concurrent call (register_flb, unregister_flb, the test
// module's init or exit) counts for some of the session's test files and
// not for the others: with an FLB unlinked while two of its files were
// preserved, a finish that the unregistration overtakes between the two
// files files one refcount underflow WARN instead of two or none.
//
// A call that may finish or unpreserve a session (a FINISH, a close, an
// exec or exit and their release steps, a release's first half) and that
// such a registration overlaps is split: its step leaves the FLB half of
// the last test file it handles undone (model.DeferringFLBWork), and an
// FLBTail pseudo-operation over the call's span does it. Linearized right
// after the call, the tail is the call's single step; linearized after the
// registration, it is the call overtaken between its files. A reboot
// waits for a finish (the serialize rwsem, which the finish holds for
// read, is the reboot's for write), so none is linearized while a tail
// has work left.
//
// A PRESERVE_FD whose handler fails after its FLBs were counted undoes
// them under a lock of its own too; the concurrent campaign arms no
// handler failures, so that split is not needed here.

// addFLBTails marks every call of hist that may finish or unpreserve a
// session and that an FLB registration overlaps (SplitFLB), and adds a
// tail for it: one per call, or one per exec or exit for the steps of its
// release chain, which the steps share (their tail comes after the last
// of them). A tail is keyed by its call's index in hist, its ID once
// numberOps has run (no later pass reorders hist), or a chain's by
// chainTailKey. Nothing is split in a round where no session can hold two
// test files: startTests is the most test files a session held when the
// round began, and every PRESERVE_FD of a test file may add one.
func addFLBTails(hist []porcupine.Operation, startTests int) []porcupine.Operation {
	n := len(hist)
	for _, o := range hist {
		in := o.Input.(linInput)
		if in.Op.Kind == model.OpIoctl && in.Op.Cmd == model.IoctlSessionPreserveFD && isTestFileInst(in.BufInst) {
			startTests++
		}
	}
	if startTests < 2 {
		return hist
	}
	client := maxClientID(hist)
	tails := map[int]int{} // key -> index in hist of its tail
	for i := range n {
		c := &hist[i]
		in := c.Input.(linInput)
		if !mayFinishFiles(in) {
			continue
		}
		overlapped := false
		for j := range n {
			o := hist[j]
			if j != i && changesFLBLinks(o.Input.(linInput)) && o.Call <= c.Return && o.Return >= c.Call {
				overlapped = true
				break
			}
		}
		if !overlapped {
			continue
		}
		key := i
		if in.Fork != nil && in.Fork.Rel {
			key = chainTailKey(in.PinID)
		}
		in.SplitFLB, in.TailOf = true, key
		c.Input = in
		if t, ok := tails[key]; ok {
			// A chain's tail spans all its steps.
			hist[t].Call, hist[t].Return = min(hist[t].Call, c.Call), max(hist[t].Return, c.Return)
			continue
		}
		client++
		tails[key] = len(hist)
		hist = append(hist, porcupine.Operation{
			ClientId: client,
			Input:    linInput{Thread: in.Thread, Op: model.Op{Task: in.Op.Task}, FLBTail: true, TailOf: key, FDInst: -1, BufInst: -1},
			Call:     c.Call,
			Output:   linOutput{},
			Return:   c.Return,
		})
	}
	return hist
}

// chainTailKey is the tail key of the release chain of the exec or exit
// whose pin is pinID: negative, apart from the calls' indices.
func chainTailKey(pinID int) int { return -1 - pinID }

// isTestFileInst reports whether inst is the instance of a fixed test
// file (the setup's, which every PRESERVE_FD of the campaign preserves),
// or a forked child's copy of one (childInst).
func isTestFileInst(inst int) bool {
	inst &= 1<<20 - 1
	return inst >= SlotFile0+firstTestFile && inst < SlotFile0+NumFiles
}

// mayFinishFiles reports whether in's step may finish a retrieved
// session's files or unpreserve an outgoing one's.
func mayFinishFiles(in linInput) bool {
	switch {
	case in.Observe || in.Unpin || in.FLBTail:
		return false
	case in.UnpinFinish || in.Fork != nil && in.Fork.Rel:
		return true
	case in.Fork != nil && in.Fork.Chained:
		return false // its release chain does
	}
	switch in.Op.Kind {
	case model.OpClose, model.OpExec, model.OpExit:
		return true
	case model.OpIoctl:
		return in.Op.Cmd == model.IoctlSessionFinish
	}
	return false
}

// changesFLBLinks reports whether in links or unlinks test FLBs: an FLB's
// (un)registration, or the test module's init or exit.
func changesFLBLinks(in linInput) bool {
	switch in.Op.Kind {
	case model.OpInitModule, model.OpDeleteModule:
		return !in.Observe && in.Phase == ""
	case model.OpTestCtl:
		return in.Op.TestCmd == model.TestCmdRegisterFLB || in.Op.TestCmd == model.TestCmdUnregisterFLB
	}
	return false
}

// splitFLBStep is linStep in a round with split calls: a tail's step, a
// split call's, or any step while tails are pending, which carries them
// over (the other steps build their states without them).
func splitFLBStep(st *linState, in linInput, out linOutput) (bool, *linState) {
	if in.FLBTail {
		w, ok := st.flbTails[in.TailOf]
		if !ok {
			return false, st // the call comes first
		}
		next := copyLinState(st)
		next.flbTails = maps.Clone(st.flbTails)
		delete(next.flbTails, in.TailOf)
		if w != model.NoFLBWork {
			next.s = model.RunFLBWork(st.s, w)
		}
		return true, next
	}
	if in.Op.Kind == model.OpKexec && !in.Observe {
		for _, w := range st.flbTails {
			if w != model.NoFLBWork {
				return false, st // the reboot waits for the finish
			}
		}
	}
	if in.Observe && len(st.flbTails) > 0 {
		// A tail linearized before a step that shares it (a chain's)
		// leaves that step's record behind: no such order.
		return false, st
	}
	from := st
	// One split per tail: a chain's steps arm until one defers.
	w0, started := st.flbTails[in.TailOf]
	if in.SplitFLB && (!started || w0 == model.NoFLBWork) {
		from = copyLinState(st)
		from.s = model.DeferringFLBWork(st.s)
	}
	ok, next := linStepProcs(from, in, out)
	if !ok {
		return false, st
	}
	if next == st && from == st {
		return true, st // nothing changed, nothing to record
	}
	if next == from || next == st {
		// A step that changed nothing returns its own state: copy it,
		// so that the split's records stay off st.
		next = copyLinState(next)
	}
	w := model.TakeFLBWork(&next.s)
	if in.Observe {
		return true, next // every tail came before: the round is over
	}
	next.flbTails = st.flbTails
	if in.SplitFLB && (!started || w != model.NoFLBWork) {
		next.flbTails = maps.Clone(st.flbTails)
		if next.flbTails == nil {
			next.flbTails = map[int]model.FLBWork{}
		}
		next.flbTails[in.TailOf] = w
	}
	return true, next
}

// copyLinState is a fresh, uninterned copy of st.
func copyLinState(st *linState) *linState {
	c := *st
	c.canon, c.fp, c.interned, c.succ = "", 0, false, nil
	return &c
}
