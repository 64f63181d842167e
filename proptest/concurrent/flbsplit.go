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
// session and that an FLB registration overlaps (SplitFLB), and adds its
// tail. The tail names the call by its index in hist, its ID once
// numberOps has run: no later pass reorders hist.
func addFLBTails(hist []porcupine.Operation) []porcupine.Operation {
	n := len(hist)
	client := maxClientID(hist)
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
		in.SplitFLB = true
		c.Input = in
		client++
		hist = append(hist, porcupine.Operation{
			ClientId: client,
			Input:    linInput{Thread: in.Thread, Op: model.Op{Task: in.Op.Task}, FLBTail: true, TailOf: i, FDInst: -1, BufInst: -1},
			Call:     c.Call,
			Output:   linOutput{},
			Return:   c.Return,
		})
	}
	return hist
}

// mayFinishFiles reports whether in's step may finish a retrieved
// session's files or unpreserve an outgoing one's.
func mayFinishFiles(in linInput) bool {
	switch {
	case in.Observe || in.Unpin || in.FLBTail:
		return false
	case in.UnpinFinish || in.Fork != nil && in.Fork.Rel:
		return true
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
		next := *st
		next.canon, next.fp, next.interned, next.succ = "", 0, false, nil
		next.flbTails = maps.Clone(st.flbTails)
		delete(next.flbTails, in.TailOf)
		if w != model.NoFLBWork {
			next.s = model.RunFLBWork(st.s, w)
		}
		return true, &next
	}
	if in.Op.Kind == model.OpKexec && !in.Observe {
		for _, w := range st.flbTails {
			if w != model.NoFLBWork {
				return false, st // the reboot waits for the finish
			}
		}
	}
	from := st
	if in.SplitFLB {
		armed := *st
		armed.canon, armed.fp, armed.interned, armed.succ = "", 0, false, nil
		armed.s = model.DeferringFLBWork(st.s)
		from = &armed
	}
	ok, next := linStepProcs(from, in, out)
	if !ok {
		return false, st
	}
	if next == from && from == st {
		return true, st
	}
	if next == from || next == st {
		// A step that changed nothing returns its own state: copy it,
		// so that the split's records stay off st.
		c := *next
		c.canon, c.fp, c.interned, c.succ = "", 0, false, nil
		next = &c
	}
	w := model.TakeFLBWork(&next.s)
	if in.Observe {
		return true, next // every tail came before: the round is over
	}
	next.flbTails = st.flbTails
	if in.SplitFLB {
		next.flbTails = maps.Clone(st.flbTails)
		if next.flbTails == nil {
			next.flbTails = map[int]model.FLBWork{}
		}
		next.flbTails[in.ID] = w
	}
	return true, next
}
