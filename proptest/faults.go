package proptest

import (
	"pgregory.net/rapid"

	"luomodel/kernel/fault"
	"luomodel/kernel/fault/account"
	"luomodel/model"
)

// This file holds the lockstep fault actions of issue 8: arm one fault
// site of the port for its next call, run one operation on port and
// model, disarm, and compare. The model predicts the outcome
// (model.State.ApplyFault): the errno, and that nothing changed before a
// kexec; a failed freeze or kho_finalize makes Kexec fail with every
// session unfrozen and usable, so a later kexec succeeds.

// faultSites maps the model's names of the sites it predicts to the
// port's sites.
var faultSites = map[string]fault.Site{
	model.FaultCopyToUser:    fault.CopyToUser,
	model.FaultSessionAlloc:  fault.LUOSessionAlloc,
	model.FaultAnonInode:     fault.AnonInodeGetfile,
	model.FaultHandlerFreeze: fault.HandlerFreeze,
	model.FaultKHOFinalize:   fault.KHOFinalize,
	model.FaultCanFinish:     fault.HandlerCanFinish,
}

// ExecFault runs op with site (a model.Fault* name) armed on the port's
// injector for its next call, and in lockstep mode on the model through
// ApplyFault; the site is disarmed afterwards whether it fired or not. A
// disagreement is a *Mismatch. ok is false if the model does not predict
// this pair (nothing ran).
func (e *Env) ExecFault(site string, op model.Op) (res model.Result, ok bool, err error) {
	ps, known := faultSites[site]
	if !known {
		return model.Result{}, false, nil
	}
	var mr model.Result
	if e.lockstep {
		next := e.S.Clone()
		if mr, ok = next.ApplyFault(site, op); !ok {
			return model.Result{}, false, nil
		}
		e.S = next
	}
	inj := e.M.Faults()
	inj.ArmNext(ps)
	pr, rawErr := e.runPort(op)
	inj.Disarm(ps)
	e.Trace = append(e.Trace, "[fault "+site+"] "+model.Format(op, pr))
	if e.lockstep && !pr.Equal(mr) {
		return pr, true, &Mismatch{Op: op, Port: pr, Model: mr, Err: rawErr}
	}
	return pr, true, nil
}

// FaultAction builds one faulted operation from the model's state.
type FaultAction struct {
	Name  string
	Site  string
	Build func(c *Ctx) (model.Op, bool)
}

// FaultActions returns the fault actions: each pairs a site with the
// operation that reaches it.
func FaultActions() []FaultAction {
	createSession := func(c *Ctx) (model.Op, bool) {
		op, ok := c.fileOp(model.OpIoctl, kindIs(model.KindDevice))
		op.Cmd = model.IoctlCreateSession
		op.Buf = model.SessionArgBuf(c.createName())
		return op, ok
	}
	finish := func(c *Ctx) (model.Op, bool) {
		op, ok := c.fileOp(model.OpIoctl, sessionFile(c.S, true))
		op.Cmd = model.IoctlSessionFinish
		op.Buf = model.FinishArgBuf(0)
		return op, ok
	}
	kexec := func(*Ctx) (model.Op, bool) { return model.Op{Kind: model.OpKexec}, true }
	return []FaultAction{
		{"fault_session_alloc", model.FaultSessionAlloc, createSession},
		{"fault_anon_inode", model.FaultAnonInode, createSession},
		{"fault_create_copy_to_user", model.FaultCopyToUser, createSession},
		{"fault_freeze", model.FaultHandlerFreeze, kexec},
		{"fault_kho_finalize", model.FaultKHOFinalize, kexec},
		{"fault_can_finish", model.FaultCanFinish, finish},
	}
}

// FaultSummary renders the port's fault sites that were hit or fired,
// for the summary of `luo check`.
func (e *Env) FaultSummary() string { return e.M.Faults().Summary() }

// faultActions returns FaultActions as actions of r: each arms its site,
// runs its operation through Env.ExecFault and fails the run on a
// disagreement. A kexec that goes through anyway starts two tasks of the
// new kernel, as the plain kexec action does.
func (r *run) faultActions() []Action {
	var acts []Action
	for _, fa := range FaultActions() {
		acts = append(acts, Action{
			Name:   fa.Name,
			Weight: func(*model.State) int { return 4 },
			Run: func(c *Ctx) bool {
				op, ok := fa.Build(c)
				if !ok {
					return false
				}
				res, ok, err := r.e.ExecFault(fa.Site, op)
				if !ok {
					return false
				}
				r.stats.op(op, res.Errno)
				if err != nil {
					r.fail("%v", err)
				}
				if op.Kind == model.OpKexec && res.Errno == 0 {
					c.Do(model.Op{Kind: model.OpNewTask})
					c.Do(model.Op{Kind: model.OpNewTask})
				}
				return true
			},
		})
	}
	return acts
}

// LockstepWithFaults is Lockstep with the fault actions added to the
// action set; at the end every preserved block must be accounted for.
func LockstepWithFaults(stats *Stats) func(*rapid.T) {
	return func(t *rapid.T) {
		r, err := newRun(t, true, stats, nil)
		if err != nil {
			t.Fatalf("boot: %v", err)
		}
		r.acts = append(r.acts, r.faultActions()...)
		src := newRapidSource(t)
		t.Repeat(map[string]func(*rapid.T){
			"step": func(t *rapid.T) {
				if !r.step(src) {
					t.Skip("not applicable")
				}
			},
			"": func(*rapid.T) { r.checkInvariants() },
		})
		r.teardown()
		if err := account.Check(r.e.M); err != nil {
			r.fail("%v", err)
		}
	}
}
