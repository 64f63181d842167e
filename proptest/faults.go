package proptest

import (
	"strconv"

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
	model.FaultGetUnusedFD:      fault.GetUnusedFD,
	model.FaultAllocPages:       fault.FolioAlloc,
	model.FaultKHOPreserveFolio: fault.KHOPreserveFolio,
	model.FaultKHOPreservePages: fault.KHOPreservePages,
	model.FaultLUOFDTSetup:      fault.LUOFDTSetup,
	model.FaultFLBPreserve:      fault.FLBPreserve,
	model.FaultFLBRetrieve:      fault.FLBRetrieve,
}

// ExecFault runs op with site (a model.Fault* name) armed on the port's
// injector for its next call, and in lockstep mode on the model through
// ApplyFault; the site is disarmed afterwards whether it fired or not. A
// disagreement is a *Mismatch. ok is false if the model does not predict
// this pair (nothing ran).
func (e *Env) ExecFault(site string, op model.Op) (res model.Result, ok bool, err error) {
	return e.ExecFaultNth(site, 1, op)
}

// ExecFaultNth is ExecFault with the site armed to fail its nth call
// within op (fault.Attr{Nth: nth}; the model: ApplyFaultNth).
func (e *Env) ExecFaultNth(site string, nth int, op model.Op) (res model.Result, ok bool, err error) {
	ps, known := faultSites[site]
	if !known || nth < 1 {
		return model.Result{}, false, nil
	}
	var mr model.Result
	if e.lockstep {
		// ApplyFaultNth leaves e.S untouched when !ok (it clones
		// what it needs itself).
		if mr, ok = e.S.ApplyFaultNth(site, nth, op); !ok {
			return model.Result{}, false, nil
		}
	}
	inj := e.M.Faults()
	before := e.M.Kernel()
	inj.Arm(ps, fault.Attr{Nth: uint64(nth)})
	pr, rawErr := e.runPort(op)
	inj.Disarm(ps)
	tag := site
	if nth > 1 {
		tag += "#" + strconv.Itoa(nth)
	}
	e.trace = append(e.trace, traceEntry{tag: tag, op: op, res: pr})
	if e.lockstep && !pr.Equal(mr) {
		return pr, true, &Mismatch{Op: op, Port: pr, Model: mr, Err: rawErr}
	}
	return pr, true, e.checkCalls(before, op, pr)
}

// FaultAction builds one faulted operation from the model's state.
type FaultAction struct {
	Name string
	Site string
	// When is the state in which the action makes sense (nil: always);
	// elsewhere it is not drawn.
	When  func(s *model.State) bool
	Build func(c *Ctx) (model.Op, bool)
	// Nth draws which call of the site within the operation fails (nil:
	// the first).
	Nth func(c *Ctx) int
}

// withNth returns fa armed for a drawn call of its site: 1 to max, 1 the
// simplest.
func withNth(fa FaultAction, max int) FaultAction {
	fa.Nth = func(c *Ctx) int { return 1 + c.Src.Intn(max, "fault nth") }
	return fa
}

// buildPreserveAny is the PRESERVE_FD of a fault action: half the time,
// when the test module is loaded and has a file to preserve, of a test
// file, whose handler has FLBs (a fault then unwinds their preserves too:
// memfd's handler has none), else as buildPreserveFD draws it.
func buildPreserveAny(c *Ctx) (model.Op, bool) {
	if c.S.Test.Loaded && haveTestFile(c.S) && chance(c.Src, "preserve a test file", 50) {
		return buildPreserveTest(c)
	}
	return buildPreserveFD(c)
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
	luoEnabled := func(s *model.State) bool { return s.Enabled }
	return []FaultAction{
		{"fault_session_alloc", model.FaultSessionAlloc, devInUse, buildCreateSession, nil},
		{"fault_anon_inode", model.FaultAnonInode, devInUse, buildCreateSession, nil},
		// RETRIEVE_SESSION's file: the session stays unretrieved.
		{"fault_retrieve_session_anon_inode", model.FaultAnonInode, canRetrieveSession, buildRetrieveSession, nil},
		{"fault_create_copy_to_user", model.FaultCopyToUser, devInUse, buildCreateSession, nil},
		{"fault_preserve_copy_to_user", model.FaultCopyToUser, haveOutgoingFile, buildPreserveAny, nil},
		{"fault_preserve_file_alloc", model.FaultFileAlloc, haveOutgoingFile, buildPreserveAny, nil},
		{"fault_handler_preserve", model.FaultHandlerPreserve, haveOutgoingFile, buildPreserveAny, nil},
		{"fault_kho_alloc_preserve", model.FaultKHOAllocPreserve, haveOutgoingFile, buildPreserveAny, nil},
		{"fault_get_name_copy_to_user", model.FaultCopyToUser, haveSessionFile, buildGetName, nil},
		{"fault_freeze", model.FaultHandlerFreeze, haveOutgoing, kexec, nil},
		{"fault_kho_finalize", model.FaultKHOFinalize, nil, kexec, nil},
		{"fault_deserialize_session_alloc", model.FaultSessionAlloc, deserializePending, openDevice, nil},
		{"fault_deserialize_file_alloc", model.FaultFileAlloc, deserializePending, openDevice, nil},
		{"fault_retrieve_session_copy_to_user", model.FaultCopyToUser, canRetrieveSession, buildRetrieveSession, nil},
		{"fault_handler_retrieve", model.FaultHandlerRetrieve, haveIncomingFile, buildRetrieveFD, nil},
		{"fault_retrieve_fd_copy_to_user", model.FaultCopyToUser, haveIncomingFile, buildRetrieveFD, nil},
		{"fault_can_finish", model.FaultCanFinish, haveIncomingFile, buildFinish, nil},
		{"fault_finish_copy_to_user", model.FaultCopyToUser, haveIncomingFile, buildFinish, nil},
		// fd reservation: every call that returns an fd.
		{"fault_open_fd", model.FaultGetUnusedFD, nil, buildOpenAny, nil},
		{"fault_dup_fd", model.FaultGetUnusedFD, nil, buildDup, nil},
		{"fault_memfd_create_fd", model.FaultGetUnusedFD, nil, buildMemfdCreate, nil},
		{"fault_create_session_fd", model.FaultGetUnusedFD, devInUse, buildCreateSession, nil},
		{"fault_retrieve_session_fd", model.FaultGetUnusedFD, canRetrieveSession, buildRetrieveSession, nil},
		{"fault_retrieve_fd_fd", model.FaultGetUnusedFD, haveIncomingFile, buildRetrieveFD, nil},
		{"fault_fcntl_dupfd_fd", model.FaultGetUnusedFD, nil, buildFcntlDupfd, nil},
		// Folio allocation: a memfd write, and PRESERVE_FD's first
		// allocation.
		{"fault_write_alloc_pages", model.FaultAllocPages, haveMemfd, buildWrite, nil},
		{"fault_preserve_alloc_pages", model.FaultAllocPages, haveOutgoingFile, buildPreserveMemfd, nil},
		// Preservation: any of PRESERVE_FD's kho_preserve_folio() calls
		// (file array, memfd_luo_ser, each page: up to 6 in the
		// campaign's files) and kho_preserve_pages() calls (the folio
		// array's chunk and pages).
		withNth(FaultAction{"fault_preserve_kho_preserve_folio", model.FaultKHOPreserveFolio, haveOutgoingFile, buildPreserveMemfd, nil}, 7),
		withNth(FaultAction{"fault_preserve_kho_preserve_pages", model.FaultKHOPreservePages, haveOutgoingFile, buildPreserveMemfd, nil}, 3),
		// FDT building: any step of the next kernel's luo_fdt_setup(),
		// so that the unwind of the session and FLB blocks is reached.
		withNth(FaultAction{"fault_kexec_fdt_setup", model.FaultLUOFDTSetup, luoEnabled, kexec, nil}, 9),
		// The handler and FLB sites at any call (gen_handler.go).
		withNth(FaultAction{"fault_freeze_nth", model.FaultHandlerFreeze, haveOutgoingTest, kexec, nil}, 4),
		withNth(FaultAction{"fault_can_finish_nth", model.FaultCanFinish, haveIncomingFile, buildFinish, nil}, 3),
		{"fault_kho_finalize_test", model.FaultKHOFinalize, haveOutgoingTest, kexec, nil},
		withNth(FaultAction{"fault_flb_preserve", model.FaultFLBPreserve, haveOutgoingFile, buildPreserveTest, nil}, 2),
		withNth(FaultAction{"fault_flb_retrieve", model.FaultFLBRetrieve, flbHandedOver, buildFLBRetrieve, nil}, 2),
	}
}

// The builders of the fault actions that the plain actions build inline.

func buildOpenAny(c *Ctx) (model.Op, bool) {
	task, ok := c.task(nil)
	op := model.Op{Kind: model.OpOpen, Task: task, Flags: model.ORdwr}
	op.Path = pick(c.Src, "path", []string{model.DevLiveUpdate, model.DevNull, "/dev/nonexistent"})
	return op, ok
}

func buildDup(c *Ctx) (model.Op, bool) {
	return c.fileOp(model.OpDup, func(*model.File) bool { return true })
}

func buildMemfdCreate(c *Ctx) (model.Op, bool) {
	task, ok := c.task(nil)
	return model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "guest"}, ok
}

func buildWrite(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpWrite, ioFile)
	op.Buf = c.data()
	return op, ok
}

// buildPreserveMemfd is buildPreserveFD preferring a memfd with contents
// that no session preserves yet, with a fresh token: the call that
// reaches memfd_luo_preserve_folios().
func buildPreserveMemfd(c *Ctx) (model.Op, bool) {
	s := c.S
	for _, task := range liveTasks(s) {
		sfds := fdsOf(s, task, sessionFile(s, false))
		mfds := fdsOf(s, task, func(f *model.File) bool {
			return f.Kind == model.KindMemfd && !s.Preserved[f.Inode] && len(s.Inodes[f.Inode].Data) > 0
		})
		if len(sfds) == 0 || len(mfds) == 0 || chance(c.Src, "any preserve", 20) {
			continue
		}
		sfd := pick(c.Src, "session", sfds)
		op := model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionPreserveFD}
		op.Buf = model.FDArgBuf(int32(pick(c.Src, "memfd", mfds)), c.freshToken(c.sessionOf(task, sfd)))
		return op, true
	}
	return buildPreserveFD(c)
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
				nth := 1
				if fa.Nth != nil {
					nth = fa.Nth(c)
				}
				res, ok, err := r.e.ExecFaultNth(fa.Site, nth, op)
				if !ok {
					return false
				}
				r.touched = true
				r.stats.faultOp(fa.Site, op, res.Errno)
				r.stats.calls(op, res, r.e.S.Calls)
				if r.ops != nil {
					*r.ops = append(*r.ops, recordedOp{Op: op, Site: fa.Site, Nth: nth})
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
// ledger of proptest/account: every file released, every preserved
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
