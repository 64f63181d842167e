package proptest

import (
	"pgregory.net/rapid"

	"luomodel/kernel/fault"
	"luomodel/model"
)

// This file holds the lockstep fault actions of issue 8: arm one fault
// site of the port for its next call, run one operation on port and
// model, disarm, and compare. The model predicts the outcome
// (model.State.ApplyFault): the errno, and that nothing changed before a
// kexec; a failed freeze or kho_finalize makes Kexec fail with every
// session unfrozen and usable, so a later kexec succeeds; a failed
// deserialization after a kexec makes every open of /dev/liveupdate fail
// with EIO. Every check's campaign draws them (newRun), rarely;
// LockstepWithFaults draws them often.

// faultSites maps the model's names of the sites it predicts to the
// port's sites.
var faultSites = map[string]fault.Site{
	model.FaultCopyToUser:       fault.CopyToUser,
	model.FaultSessionAlloc:     fault.LUOSessionAlloc,
	model.FaultAnonInode:        fault.AnonInodeGetfile,
	model.FaultHandlerFreeze:    fault.HandlerFreeze,
	model.FaultKHOFinalize:      fault.KHOFinalize,
	model.FaultCanFinish:        fault.HandlerCanFinish,
	model.FaultFileAlloc:        fault.LUOFileAlloc,
	model.FaultHandlerPreserve:  fault.HandlerPreserve,
	model.FaultKHOAllocPreserve: fault.KHOAllocPreserve,
	model.FaultHandlerRetrieve:  fault.HandlerRetrieve,
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
	Name string
	Site string
	// When is the state in which the action makes sense (nil: always);
	// elsewhere it is not drawn.
	When  func(s *model.State) bool
	Build func(c *Ctx) (model.Op, bool)
}

// deserializePending is the state in which the next open of
// /dev/liveupdate runs the deserialization of handed-over sessions.
func deserializePending(s *model.State) bool {
	return !s.Deserialized && !s.DevInUse && len(s.Incoming) > 0
}

// FaultActions returns the fault actions: each pairs a site with the
// operation that reaches it.
func FaultActions() []FaultAction {
	openDevice := func(c *Ctx) (model.Op, bool) {
		task, ok := c.task(nil)
		return model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate, Flags: model.ORdwr}, ok
	}
	kexec := func(*Ctx) (model.Op, bool) { return model.Op{Kind: model.OpKexec}, true }
	haveOutgoing := func(s *model.State) bool { return len(s.Outgoing) > 0 }
	return []FaultAction{
		{"fault_session_alloc", model.FaultSessionAlloc, devInUse, buildCreateSession},
		{"fault_anon_inode", model.FaultAnonInode, devInUse, buildCreateSession},
		{"fault_create_copy_to_user", model.FaultCopyToUser, devInUse, buildCreateSession},
		{"fault_preserve_copy_to_user", model.FaultCopyToUser, haveOutgoingFile, buildPreserveFD},
		{"fault_preserve_file_alloc", model.FaultFileAlloc, haveOutgoingFile, buildPreserveFD},
		{"fault_handler_preserve", model.FaultHandlerPreserve, haveOutgoingFile, buildPreserveFD},
		{"fault_kho_alloc_preserve", model.FaultKHOAllocPreserve, haveOutgoingFile, buildPreserveFD},
		{"fault_get_name_copy_to_user", model.FaultCopyToUser, haveSessionFile, buildGetName},
		{"fault_freeze", model.FaultHandlerFreeze, haveOutgoing, kexec},
		{"fault_kho_finalize", model.FaultKHOFinalize, nil, kexec},
		{"fault_deserialize_session_alloc", model.FaultSessionAlloc, deserializePending, openDevice},
		{"fault_deserialize_file_alloc", model.FaultFileAlloc, deserializePending, openDevice},
		{"fault_retrieve_session_copy_to_user", model.FaultCopyToUser, canRetrieveSession, buildRetrieveSession},
		{"fault_handler_retrieve", model.FaultHandlerRetrieve, haveIncomingFile, buildRetrieveFD},
		{"fault_retrieve_fd_copy_to_user", model.FaultCopyToUser, haveIncomingFile, buildRetrieveFD},
		{"fault_can_finish", model.FaultCanFinish, haveIncomingFile, buildFinish},
		{"fault_finish_copy_to_user", model.FaultCopyToUser, haveIncomingFile, buildFinish},
	}
}

// FaultSummary renders the port's fault sites that were hit or fired,
// for the summary of `luo check`.
func (e *Env) FaultSummary() string { return e.M.Faults().Summary() }

// SkipFaults, in the skip set of LockstepSkipping, leaves out every fault
// action.
const SkipFaults = "faults"

// Weights of the fault actions, in the tenths of gen.go: the default
// campaign draws them rarely (about 2% of actions) so that the deep
// states stay reachable; LockstepWithFaults draws them often.
const (
	faultWeight      = 2
	faultWeightHeavy = 30
)

// faultActions returns FaultActions not in skip as actions of r, each of
// the given weight where it applies: each arms its site, runs its
// operation through Env.ExecFault and fails the run on a disagreement. A
// kexec that goes through anyway starts two tasks of the new kernel, as
// the plain kexec action does.
func (r *run) faultActions(weight int, skip map[string]bool) []Action {
	var acts []Action
	for _, fa := range FaultActions() {
		if skip[fa.Name] || skip[SkipFaults] {
			continue
		}
		acts = append(acts, Action{
			Name: fa.Name,
			Weight: func(s *model.State) int {
				if fa.When != nil && !fa.When(s) {
					return 0
				}
				return weight
			},
			Run: func(c *Ctx) bool {
				op, ok := fa.Build(c)
				if !ok {
					return false
				}
				res, ok, err := r.e.ExecFault(fa.Site, op)
				if !ok {
					return false
				}
				r.touched = true
				r.stats.faultOp(fa.Site, op, res.Errno)
				if r.ops != nil {
					*r.ops = append(*r.ops, op)
				}
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

// LockstepWithFaults is Lockstep with the fault actions drawn about a
// third of the time instead of rarely. Like every check, it ends with the
// ledger of kernel/fault/account: every file released, every preserved
// block handed over, restored or reserved for a documented reason.
func LockstepWithFaults(stats *Stats) func(*rapid.T) {
	return func(t *rapid.T) {
		r, err := newRunWeighted(t, true, stats, nil, faultWeightHeavy)
		if err != nil {
			t.Fatalf("boot: %v", err)
		}
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
	}
}
