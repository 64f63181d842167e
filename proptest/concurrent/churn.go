package concurrent

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/anishathalye/porcupine"

	"luomodel/kernel"
	"luomodel/kernel/lib/liveupdatetest"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/locking"
	"luomodel/kernel/module"
	"luomodel/model"
)

// LUO's in-kernel face in the rounds (issues 12 and 17): the test module
// loaded and unloaded, its FLBs linked and unlinked, an FLB's incoming
// object taken and put, and the memfd handler unregistered and
// registered, while other threads preserve, retrieve, finish and close.
//
// Two of these operations are not atomic, and a spec that treats them as
// atomic reports histories no sequential order explains although the
// kernel did nothing wrong; a spec that accepts anything catches nothing.
// The check therefore states them as follows.
//
// init_module() and delete_module() have transient states: a module is
// listed as coming before its init runs (the handler and FLBs register one
// by one, a second init_module() is EBUSY, delete_module() is EBUSY), and
// going before its exit runs (try_module_get() fails, init_module() is
// EEXIST, delete_module() EBUSY) until it is unlisted. kernel/module tells
// an observer (Modules.SetObserver) of each state change at the instant it
// happens, and the check records it as an operation of its own, of zero
// width: "coming" applies the model's init_module (the whole load) and
// "going" its delete_module, which the model accepts only with no
// reference held, so an unload of a pinned module is still a failure;
// "live" and "gone" end the transient state. The syscall that made the
// phases must then return 0 and changes nothing itself; one that made none
// is checked against the model, except that while a phase is open the
// answers the transient state dictates are the expected ones (EBUSY,
// EEXIST, and for a test-module call that a coming module's objects are
// not there yet, ENODEV).
//
// delete_module(O_NONBLOCK) is EWOULDBLOCK while anyone holds a reference,
// and unregistering a file handler EBUSY while a luo_file uses it; both
// counts also hold transient references, taken and dropped inside other
// calls: a session's release finishes its files one by one (a test FLB may
// be finished, visibly to flb-get-incoming, while the file still pins the
// module and the handler), a preserve pins the handler before it fails,
// the test module's calls pin the module. So EWOULDBLOCK and EBUSY are
// also accepted, with no effect, when a call that can hold such a
// reference overlaps the unload or unregistration in real time (mayBusy),
// and only then. Nothing is lost by it: a refused unload or
// unregistration changes nothing, so the model state stays exact, and a
// reference leaked or lost shows at the quiescent point, where the test
// module's reference count, the registered handlers and the FLBs linked
// to the test handler are compared with the model's (modelRegistry), as
// is every later answer that depends on them. A wrong errno still fails:
// every other answer of these calls is the model's. A callback lost or run
// twice changes an FLB's count or finished state or a module pin, which
// the quiescent comparison and the next flb-get-incoming see; a call into
// the gone module is a use-after-free report of kernel/module.

// Phases of a module's life recorded as operations (linInput.Phase).
const (
	phaseComing = "coming"
	phaseLive   = "live"
	phaseGoing  = "going"
	phaseGone   = "gone"
)

// modPhase is the open transient state of the test module in a linState.
type modPhase int

const (
	modStable modPhase = iota
	modComing
	modGoing
)

// churnKind reports whether k is one of this file's instructions, which
// act on the running kernel as a whole: drawn after a reboot that
// completed in the same round, they are not run (they would change the
// new kernel before the checker's probe deserializes the hand-over, which
// the model does not follow).
func churnKind(k Kind) bool {
	switch k {
	case KFLBGet, KLoadMod, KUnloadMod, KRegFLB, KUnregFLB, KRegister, KUnregister:
		return true
	}
	return false
}

// execTestCtl runs a test-module FLB command the way the module's own
// code does it on behalf of a user (an ioctl of one of its files): with a
// reference on the module (none while it is going: ENODEV), and the
// (un)registrations only once its init is over (a coming module's
// objects are its init's). The get is liveupdate_flb_get_incoming() and
// the put that follows (the model's TestCmdFLBIncoming).
func execTestCtl(k *kernel.Kernel, op model.Op) (model.Result, error) {
	d := k.LiveupdateTest()
	fh, flb, mod := d.FileHandler(), d.FLB(op.FLB), d.Module()
	if fh == nil || flb == nil {
		return model.Result{Errno: syscall.ENODEV}, nil
	}
	if !module.TryGet(mod) {
		return model.Result{Errno: syscall.ENODEV}, nil
	}
	defer module.Put(mod)
	l := k.LUO()
	switch op.TestCmd {
	case model.TestCmdFLBIncoming:
		obj, err := l.FLBGetIncoming(flb)
		if err != nil {
			return errnoResult(err)
		}
		l.FLBPutIncoming(flb)
		o, ok := obj.(*liveupdatetest.FLBObject)
		if !ok || o == nil {
			return model.Result{Errno: errnoUnknown}, fmt.Errorf("FLB object %T", obj)
		}
		return model.Result{Ret: 1, Data: append([]byte{}, o.State...)}, nil
	case model.TestCmdRegisterFLB, model.TestCmdUnregisterFLB:
		if mod.State() != module.StateLive {
			return model.Result{Errno: syscall.ENODEV}, nil
		}
		if op.TestCmd == model.TestCmdUnregisterFLB {
			l.UnregisterFLB(fh, flb)
			return model.Result{}, nil
		}
		return errnoResult(l.RegisterFLB(fh, flb))
	}
	return model.Result{Errno: syscall.ENOSYS}, nil
}

func errnoResult(err error) (model.Result, error) {
	if err == nil {
		return model.Result{}, nil
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return model.Result{Errno: en}, nil
	}
	return model.Result{Errno: errnoUnknown}, err
}

// execRegistration registers or unregisters the memfd file handler of k,
// as a module load or unload would: registration takes
// luo_register_rwlock for write, so the scheduler interleaves it with the
// handler-list walks of PRESERVE_FD and of the sessions' release (issue
// 17). The model predicts it (model.OpRegisterHandler,
// model.OpUnregisterHandler): EEXIST, ENOENT, EBUSY while a luo_file pins
// the handler.
func execRegistration(k *kernel.Kernel, op model.Op) (model.Result, error) {
	if op.Kind == model.OpRegisterHandler {
		return errnoResult(k.LUO().RegisterFileHandler(k.MemfdHandler()))
	}
	return errnoResult(k.LUO().UnregisterFileHandler(k.MemfdHandler()))
}

// observeModule is kernel/module's observer (installed on each round's
// kernel): a state change of the test module made by a round's thread is
// recorded as a phase operation at its instant, and marks the thread's
// call as the one that made it.
func (c *checker) observeModule(m *module.Module, s module.State) {
	if !c.inRound.Load() || m.Name() != model.TestModuleName {
		return
	}
	gid := locking.CurrentTask()
	c.mu.Lock()
	defer c.mu.Unlock()
	th := slices.Index(c.gids, gid)
	if th < 0 {
		return
	}
	var phase string
	switch s {
	case module.StateComing:
		phase = phaseComing
	case module.StateLive:
		phase = phaseLive
	case module.StateGoing:
		phase = phaseGoing
	case module.StateGone:
		phase = phaseGone
	}
	t := c.clock.Add(1)
	c.hist = append(c.hist, porcupine.Operation{
		ClientId: maxThreads + 1000 + len(c.hist),
		Input:    linInput{Thread: th, Op: model.Op{Task: c.task}, Phase: phase, FDInst: -1, BufInst: -1, Call: t},
		Call:     t,
		Output:   linOutput{},
		Return:   c.clock.Add(1),
	})
	if op := c.inflight[th]; op != nil && (phase == phaseComing || phase == phaseGoing) {
		in := op.Input.(linInput)
		in.Phased = true
		op.Input = in
	}
	step := 0
	if sc := c.sch.Load(); sc != nil {
		step = sc.Steps()
	}
	c.events = append(c.events, histEvent{step: step, thread: th, note: "module " + m.Name() + " " + phase})
}

// mayHoldRef reports whether a call of hist can hold a transient
// reference on the test module (mod) or a luo_file's on the memfd
// handler (!mod) while it runs: see this file's doc.
func mayHoldRef(in linInput, mod bool) bool {
	if in.Observe || in.Phase != "" {
		return false
	}
	if in.Unpin || in.UnpinFinish || in.Fork != nil && in.Fork.Rel {
		return true // a release in progress
	}
	op := in.Op
	switch op.Kind {
	case model.OpClose, model.OpExec, model.OpExit:
		return true
	case model.OpIoctl:
		switch op.Cmd {
		case model.IoctlSessionFinish, model.IoctlSessionPreserveFD:
			return true
		case model.IoctlSessionRetrieveFD:
			return mod
		}
	case model.OpTestCtl:
		return mod
	}
	return false
}

// markMayBusy sets MayBusy on every delete_module() of the test module
// and every unregistration of the memfd handler that a call which can
// hold a transient reference overlaps.
func markMayBusy(hist []porcupine.Operation) {
	for i := range hist {
		in := hist[i].Input.(linInput)
		var mod bool
		switch {
		case in.Phase != "" || in.Observe:
			continue
		case in.Op.Kind == model.OpDeleteModule:
			mod = true
		case in.Op.Kind == model.OpUnregisterHandler:
		default:
			continue
		}
		for j := range hist {
			o := hist[j]
			if j == i || o.Call > hist[i].Return || o.Return < hist[i].Call {
				continue
			}
			if mayHoldRef(o.Input.(linInput), mod) {
				in.MayBusy = true
				hist[i].Input = in
				break
			}
		}
	}
}

// phaseStep is linStep for a phase operation.
func phaseStep(st *linState, in linInput) (bool, *linState) {
	switch in.Phase {
	case phaseComing, phaseGoing:
		if st.mod != modStable {
			return false, st
		}
		op := model.Op{Kind: model.OpInitModule, Task: in.Op.Task, Name: model.TestModuleName}
		next := modComing
		if in.Phase == phaseGoing {
			op.Kind, next = model.OpDeleteModule, modGoing
		}
		r, s := model.Step(st.s, op)
		if r.Errno != 0 {
			return false, st
		}
		return true, newLinState(s, st.inst, st.pins, next)
	case phaseLive:
		if st.mod != modComing {
			return false, st
		}
	case phaseGone:
		if st.mod != modGoing {
			return false, st
		}
	}
	return true, newLinState(st.s, st.inst, st.pins, modStable)
}

// churnStep is linStep for the calls whose answers a module's transient
// state or a transient reference decides (see this file's doc); ok is
// false for every other call.
func churnStep(st *linState, in linInput, out linOutput) (handled, ok bool) {
	op := in.Op
	en := out.Res.Errno
	switch {
	case op.Kind == model.OpInitModule || op.Kind == model.OpDeleteModule:
		if in.Phased {
			return true, out.Pending || en == 0
		}
		if out.Pending {
			return true, true // killed before it changed anything
		}
		switch st.mod {
		case modComing:
			return true, en == syscall.EBUSY
		case modGoing:
			if op.Kind == model.OpInitModule {
				return true, en == syscall.EEXIST
			}
			return true, en == syscall.EBUSY
		}
		r, _ := model.Step(st.s, op)
		if en == syscall.EWOULDBLOCK && in.MayBusy && st.s.Test.Loaded && r.Errno == 0 {
			return true, true
		}
		return true, en != 0 && r.Equal(out.Res)
	case op.Kind == model.OpUnregisterHandler && en == syscall.EBUSY && in.MayBusy && !out.Pending:
		r, _ := model.Step(st.s, op)
		return true, r.Errno == 0 || r.Errno == syscall.EBUSY
	case op.Kind == model.OpTestCtl && st.mod == modComing && en == syscall.ENODEV && !out.Pending:
		return true, true
	}
	return false, false
}

// modelRegistry and portRegistry render what the quiescent check compares
// of LUO's in-kernel face: the test module and its reference count, the
// registered file handlers, and the FLBs linked to the test handler with
// their users.
func modelRegistry(s *model.State) string {
	mod := "unloaded"
	if s.Test.Loaded {
		mod = "refs=" + strconv.Itoa(s.ModuleRefs())
	}
	var hs, flbs []string
	if s.Enabled && !s.MemfdUnregistered {
		hs = append(hs, model.MemfdCompatible)
	}
	if s.Test.Loaded && s.Enabled {
		hs = append(hs, model.TestCompatible)
		for _, i := range s.Test.Links {
			flbs = append(flbs, model.TestFLBCompatible(i)+"/1")
		}
	}
	slices.Sort(hs)
	return describeRegistry(mod, hs, flbs)
}

func portRegistry(k *kernel.Kernel, d *liveupdate.DebugState) string {
	mod := "unloaded"
	if m := k.Modules().Find(model.TestModuleName); m != nil {
		mod = "refs=" + strconv.FormatInt(m.Refcount(), 10)
		if st := m.State(); st != module.StateLive {
			mod += " " + st.String()
		}
	}
	hs := slices.Clone(d.Handlers)
	slices.Sort(hs)
	var flbs []string
	if i := slices.Index(d.Handlers, model.TestCompatible); i >= 0 && i < len(d.HandlerFLBs) {
		for _, name := range d.HandlerFLBs[i] {
			users := -1
			for _, g := range d.FLBs {
				if g.Compatible == name {
					users = g.Users
				}
			}
			flbs = append(flbs, name+"/"+strconv.Itoa(users))
		}
	}
	// An FLB listed globally but linked to no handler is a leftover.
	for _, g := range d.FLBs {
		if !slices.ContainsFunc(flbs, func(f string) bool { return strings.HasPrefix(f, g.Compatible+"/") }) {
			flbs = append(flbs, g.Compatible+"/"+strconv.Itoa(g.Users)+"(unlinked)")
		}
	}
	return describeRegistry(mod, hs, flbs)
}

func describeRegistry(mod string, hs, flbs []string) string {
	return " module=" + mod + " handlers=" + listString(hs) + " test-flbs=" + listString(flbs)
}

// listString renders l as fmt's %v does ("[a b]"), without its
// reflection: the observation renders a few lists per round, on both
// sides.
func listString(l []string) string { return "[" + strings.Join(l, " ") + "]" }
