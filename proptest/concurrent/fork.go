package concurrent

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/anishathalye/porcupine"

	"luomodel/kernel"
	"luomodel/model"
)

// Processes in the rounds (issue 13): a thread may fork (Task.Fork:
// dup_fd() gives the child a copy of the fd table, the same numbers on
// the same files, with their close-on-exec flags) and then goes on as the
// child, a process of its own that runs the rest of the thread's program
// beside the parent's threads; a child may exec (do_close_on_exec()
// closes its close-on-exec fds, so a session fd or a retrieved file LUO
// returned goes, as upstream gives them O_CLOEXEC) and exits when its
// program ends (exit_files()). A session whose last fd goes in an exec or
// an exit is released there, racing the other threads; a close in one
// process of an fd the other inherited leaves the session alive. fcntl
// F_GETFD and F_SETFD read and set an fd's close-on-exec flag, F_DUPFD and
// F_DUPFD_CLOEXEC dup it: the model predicts the flag of every fd, so
// F_GETFD checks what LUO set on the fds it returned, and exec which of
// them go.
//
// A child does not fork again, and only a child execs (Linux's
// de_thread() would kill the parent's other threads: the round's process
// never execs). The child's slots are a copy of the parent's at the fork,
// each naming a child instance of the parent's instance (childInst), and
// its results go to its own slots.
//
// The check (lin.go) maps each process to its model task at the fork's
// linearization (linState.procs) and keeps fd instances per process, so
// that a number is looked up in the table of the process that used it.
// At the fork's linearization the child gets, of the parent's live
// instances, those whose numbers the port's child holds (ChildFDs, read
// right after the fork, when no one else can touch the child's table):
// dup_fd() copies what is installed when it runs, which need not be what
// the model's parent holds at the linearization point (a concurrent
// call's fd reserved but not yet installed, a close's hidden pin). Every
// other fd of the model's child is closed at once (the parent holds them,
// so nothing is released).
//
// An exec or exit that overlaps calls that can tell its releases apart is
// checked in steps, as a close is (lin.go): at its linearization, the
// files it closes that LUO can tell apart (sessions and the device) are
// pinned by hidden dups in the task, in the order the port drops them (by
// the port's fd number), and each is then released, a session in two
// halves (a retrieved session's finish or an outgoing one's unpreserve,
// then the close of the pin), the device in one (the close of the pin).
// An exit releases each file as it drops it (exit_files()); an exec drops
// them all first and releases those it dropped last only when it returns
// (the fput()s of do_close_on_exec() defer the release to task_work): its
// chain starts with a drop per file, which closes the pin unless it is the
// last reference, then the releases. Each step is a pseudo-operation
// (forkInput.Rel) that must follow the one before, anywhere from the call
// to the last return of the calls on fds it overlaps. The port tells how many such steps the call's files take
// (Chain), so the history holds that many.

// forkInput is what a fork, an exec or exit, or one of their release
// steps adds to its linInput. ChildFDs, of a fork, are the fds the port's
// child holds right after it. Chain, of an exec or exit, is the number of
// release steps of the session and device fds it closes in the port (two
// per session, one for the device, and an exec's drop of each); Chained
// marks one whose releases are split (chainStart), Rel one of those
// releases' steps (chainStep), Step its index (PinID names the exec or
// exit).
type forkInput struct {
	ChildFDs []int
	Chain    int
	Chained  bool
	Rel      bool
	Step     int
}

// forkFault is a broken port the harness imitates (Config.fault), for the
// tests that show the check catches it.
type forkFault int

const (
	_ forkFault = iota // 0: none, the port as it is
	// faultExecKeepsFDs: exec returns 0 and closes nothing.
	faultExecKeepsFDs
	// faultForkDropsCloexec: the child's fds lose their close-on-exec
	// flags (dup_fd() not copying close_on_exec), so its exec keeps them.
	faultForkDropsCloexec
)

// proc is a forked child process of a round, run by one thread.
type proc struct {
	id    int // its fork's NewInst (linInput.Proc)
	kt    *kernel.Task
	slots [NumSlots]atomic.Int64
}

// childInst is the instance id of the child's copy, made by the fork
// whose NewInst is fork, of the parent's instance inst (below
// 1<<childInstShift: the round's process's ids, as children do not fork).
func childInst(fork, inst int) int { return fork<<childInstShift | inst }

const childInstShift = 20

// forkStep is linStep for a fork.
func forkStep(st *linState, in linInput, out linOutput) (bool, *linState) {
	res, next := model.Step(st.s, in.Op)
	if !out.Pending && res.Errno != out.Res.Errno {
		return false, st
	}
	if res.Errno != 0 || out.Pending {
		// Failed, or killed by the reboot before it returned: no child
		// runs (the kexec ends every process).
		return true, newLinState(next, st.inst, st.pins, st.mod)
	}
	child := model.TaskID(res.Ret)
	byNum := map[int]int{} // port number -> the parent's newest instance
	for id, fd := range st.inst {
		if fd.proc != in.Proc || fd.port < 0 || !slices.Contains(in.Fork.ChildFDs, fd.port) {
			continue
		}
		if cur, ok := byNum[fd.port]; !ok || id > cur {
			byNum[fd.port] = id
		}
	}
	inst := maps.Clone(st.inst)
	if inst == nil {
		inst = map[int]instFD{}
	}
	keep := map[int]bool{}
	for num, id := range byNum {
		fd := st.inst[id]
		inst[childInst(in.NewInst, id)] = instFD{model: fd.model, port: num, ret: out.Ret, proc: in.NewInst}
		keep[fd.model] = true
	}
	for _, fd := range slices.Sorted(maps.Keys(next.Tasks[child].FDs)) {
		if !keep[fd] {
			next.Apply(model.Op{Kind: model.OpClose, Task: child, FD: fd})
		}
	}
	procs := maps.Clone(st.procs)
	if procs == nil {
		procs = map[int]model.TaskID{}
	}
	procs[in.NewInst] = child
	ns := newLinState(next, inst, st.pins, st.mod)
	ns.procs = procs
	return true, ns
}

// closedInsts returns inst without the instances of process proc whose
// model fds task no longer holds (an exec or exit closed them).
func closedInsts(inst map[int]instFD, s *model.State, task model.TaskID, proc int) map[int]instFD {
	t := s.Tasks[task]
	out := make(map[int]instFD, len(inst))
	for k, v := range inst {
		if v.proc == proc && (t == nil || !t.Alive || !hasFD(t, v.model)) {
			continue
		}
		out[k] = v
	}
	return out
}

func hasFD(t *model.Task, fd int) bool { _, ok := t.FDs[fd]; return ok }

// chainStart is linStepFD for an exec or exit whose releases are split
// (forkInput.Chained): it pins the sessions and the device it closes
// (pinFD.chain) and closes the rest at once.
func chainStart(st *linState, in linInput, out linOutput, op model.Op) (bool, *linState) {
	s := st.s.CopyOnWrite()
	t := s.Tasks[op.Task]
	if t == nil || !t.Alive {
		// No task (a call a reboot killed, linearized after it): nothing
		// to release (an empty chain).
		res, next := model.Step(st.s, op)
		if !out.Pending && !sameIgnoringFDs(op, res, out.Res) {
			return false, st
		}
		pins := withPin(st.pins, in.NewInst, pinFD{fd: -1, inst: -1, task: op.Task, chain: []int{}})
		return true, newLinState(next, st.inst, pins, st.mod)
	}
	port := map[int]int{} // model fd -> port number
	for _, fd := range st.inst {
		if fd.proc == in.Proc && fd.port >= 0 {
			port[fd.model] = fd.port
		}
	}
	var ents []int
	for fd, fid := range t.FDs {
		if op.Kind == model.OpExec && !t.Cloexec[fd] {
			continue
		}
		if f := s.Files[fid]; f != nil && (f.Kind == model.KindSession || f.Kind == model.KindDevice) {
			ents = append(ents, fd)
		}
	}
	order := func(fd int) int {
		if p, ok := port[fd]; ok {
			return p
		}
		return 1<<20 + fd // no instance: after those the port numbered
	}
	slices.SortFunc(ents, func(a, b int) int { return cmp.Compare(order(a), order(b)) })
	var pinned []int
	var session []bool // of each pin
	for _, fd := range ents {
		kind := s.Files[t.FDs[fd]].Kind
		if r := s.Apply(model.Op{Kind: model.OpDup, Task: op.Task, FD: fd}); r.Errno == 0 {
			pinned = append(pinned, int(r.Ret))
			session = append(session, kind == model.KindSession)
		}
	}
	chain := make([]int, 0, 3*len(pinned))
	if op.Kind == model.OpExec {
		for _, p := range pinned {
			chain = append(chain, p<<2|relDrop)
		}
	}
	for i, p := range pinned {
		if session[i] {
			chain = append(chain, p<<2|relFinish)
		}
		chain = append(chain, p<<2|relClose)
	}
	var res model.Result
	exit := op.Kind == model.OpExit && len(chain) > 0
	switch {
	case op.Kind == model.OpExec || !exit:
		res = s.Apply(op)
	default:
		// The exit, but for the task's death and the pins: the last
		// release ends the task. (t is the task before the dups: s
		// copied it at the first.)
		for _, fd := range slices.Sorted(maps.Keys(t.FDs)) {
			if !slices.Contains(pinned, fd) {
				s.Apply(model.Op{Kind: model.OpClose, Task: op.Task, FD: fd})
			}
		}
	}
	if !out.Pending && !sameIgnoringFDs(op, res, out.Res) {
		return false, st
	}
	pins := withPin(st.pins, in.NewInst, pinFD{fd: -1, inst: -1, task: op.Task, chain: chain, exit: exit})
	inst := st.inst
	if op.Kind == model.OpExit {
		inst = maps.Clone(inst)
		maps.DeleteFunc(inst, func(_ int, v instFD) bool { return v.proc == in.Proc })
	} else {
		inst = closedInsts(inst, &s, op.Task, in.Proc)
	}
	return true, newLinState(s, inst, pins, st.mod)
}

// A release chain's entries (pinFD.chain) are pin fd<<2 | one of these.
const (
	relFinish = iota + 1 // a session's first half, if the pin is its last reference
	relClose             // the close of the pin: the release's second half if last
	relDrop              // an exec's drop: the close of the pin unless it is the last
)

// chainStep is a step of the releases of an exec or exit (forkInput.Rel),
// the chain's step-th (pinFD.chain): a session's first half, if its pin
// is its last reference (luo_session_release(): a retrieved session is
// finished, an outgoing one's files unpreserved, before either is
// unlisted), or the close of a pin. The last step releases whatever the
// port did not count, and ends an exiting task.
func chainStep(st *linState, in linInput) (bool, *linState) {
	pin, ok := st.pins[in.PinID]
	if !ok || pin.chain == nil || pin.next != in.Fork.Step {
		return false, st // the exec or exit, and the steps before, come first
	}
	s := st.s.CopyOnWrite()
	release := func(e int) {
		fd := e >> 2
		switch e & 3 {
		case relFinish:
			if lastRef(&s, pin.task, fd) {
				s.Apply(model.Op{Kind: model.OpIoctl, Task: pin.task, FD: fd, Cmd: model.IoctlSessionFinish, Buf: model.FinishArgBuf(0)})
				s = model.UnpreserveSessionFiles(s, pin.task, fd)
			}
		case relDrop:
			if !lastRef(&s, pin.task, fd) {
				s.Apply(model.Op{Kind: model.OpClose, Task: pin.task, FD: fd})
			}
		case relClose:
			s.Apply(model.Op{Kind: model.OpClose, Task: pin.task, FD: fd}) // EBADF once dropped
		}
	}
	k := in.Fork.Step
	if k < len(pin.chain) {
		release(pin.chain[k])
	}
	pins := maps.Clone(st.pins)
	if k == in.Fork.Chain-1 {
		for _, e := range pin.chain[min(k+1, len(pin.chain)):] {
			release(e)
		}
		if pin.exit {
			s.Apply(model.Op{Kind: model.OpExit, Task: pin.task})
		}
		delete(pins, in.PinID)
	} else {
		pin.next++
		pins[in.PinID] = pin
	}
	return true, newLinState(s, st.inst, pins, st.mod)
}

// addChains marks every exec and exit of hist that closes sessions or the
// device (Chain) and overlaps a call that can tell its releases apart
// (seesRelease), and adds its release steps (see chainStep), each from
// the call to the last return among it and the calls on fds that overlap
// it. An exec or exit that overlaps only calls that cannot is checked as
// one step: those calls answer the same whatever it released, and a file
// one of them holds for the call (fdget()) is the last reference only if
// its fd was closed meanwhile, and that close's release is split (addPins).
// An exec or exit a reboot killed is split too: it may have released some
// of its files and not the others (a release waits on the serialize
// rwsem the reboot holds); the steps linearized after the reboot are
// no-ops.
func addChains(hist []porcupine.Operation) []porcupine.Operation {
	n := len(hist)
	client := maxClientID(hist)
	for i := range n {
		c := &hist[i]
		in := c.Input.(linInput)
		out := c.Output.(linOutput)
		if in.Fork == nil || in.Fork.Chain == 0 || !out.Pending && out.Res.Errno != 0 {
			continue
		}
		last, overlap := c.Return, false
		for j := range n {
			o := hist[j]
			oin := o.Input.(linInput)
			if j == i || oin.Observe || o.Call > c.Return || o.Return < c.Call {
				continue
			}
			overlap = overlap || seesRelease(oin)
			if (oin.FDInst >= 0 || oin.BufInst >= 0) && o.Return > last {
				last = o.Return
			}
		}
		if !overlap {
			continue
		}
		f := *in.Fork
		f.Chained = true
		in.Fork = &f
		c.Input = in
		for step := range f.Chain {
			client++
			hist = append(hist, porcupine.Operation{
				ClientId: client,
				Input: linInput{Thread: in.Thread, Op: model.Op{Task: in.Op.Task}, Proc: in.Proc,
					Fork: &forkInput{Rel: true, Step: step, Chain: f.Chain}, PinID: in.NewInst, FDInst: -1, BufInst: -1},
				Call:   c.Call,
				Output: linOutput{},
				Return: last,
			})
		}
	}
	return hist
}

// seesRelease reports whether a call's answer may depend on a session's
// or the device's release, or on its halves: not so for fd-table calls
// (fork, exec, exit, fcntl, dup, close), which answer by the caller's table
// alone, nor for the halves of closes' releases, which answer nothing.
func seesRelease(in linInput) bool {
	if in.Unpin || in.UnpinFinish {
		return false
	}
	switch in.Op.Kind {
	case model.OpFork, model.OpExec, model.OpExit, model.OpFcntl, model.OpDup, model.OpClose:
		return false
	}
	return true
}

// portChain counts the release steps (chainStep) of the fds an exec (all:
// an exit) of kt would close that hold a session (two) or the device
// (one), and an exec's drop of each: the files whose releases LUO can
// tell apart. kt is a child no other thread touches.
func portChain(kt *kernel.Task, all bool) int {
	infos, err := kt.FDInfos()
	if err != nil {
		return 0
	}
	n := 0
	for _, fi := range infos {
		if !all && !fi.CloseOnExec {
			continue
		}
		name, err := kt.Readlink(fi.FD)
		switch {
		case err != nil:
		case strings.HasPrefix(name, "anon_inode:[luo_session]"):
			n += 2
		case name == model.DevLiveUpdate:
			n++
		default:
			continue
		}
		if !all {
			n++ // the exec's drop
		}
	}
	return n
}

// markGetFDRaces marks every F_GETFD of hist that a close, exec or exit
// of its process overlaps (RacesClose). fcntl(F_GETFD) looks the fd up,
// then reads the number's close-on-exec bit without the table's lock
// (get_close_on_exec()); a close in between frees the number and leaves
// its bit, and a call that reserves the number meanwhile sets or clears
// it, even one that then fails and frees it again (alloc_fd(), then
// put_unused_fd(): a RETRIEVE_SESSION's O_CLOEXEC fd reserved before its
// EINVAL). So the answer of an F_GETFD that races a close is either flag,
// not always the one of a linearization point.
func markGetFDRaces(hist []porcupine.Operation) {
	for i := range hist {
		in := hist[i].Input.(linInput)
		if in.Observe || in.Op.Kind != model.OpFcntl || in.Op.Cmd != model.FGetfd {
			continue
		}
		for j, o := range hist {
			oin := o.Input.(linInput)
			if j == i || oin.Observe || oin.Proc != in.Proc || o.Call > hist[i].Return || o.Return < hist[i].Call {
				continue
			}
			if k := oin.Op.Kind; k == model.OpClose || k == model.OpExec || k == model.OpExit {
				in.RacesClose = true
				hist[i].Input = in
				break
			}
		}
	}
}

// eitherFlag reports whether two F_GETFD results are both successes,
// whatever flag each answered.
func eitherFlag(a, b model.Result) bool {
	return a.Errno == 0 && b.Errno == 0
}
