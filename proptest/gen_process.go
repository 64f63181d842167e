package proptest

import (
	"luomodel/model"
)

// The process actions: fork (the child inherits every fd, so sessions and
// files are shared between processes), exec (close-on-exec fds are closed:
// every fd LUO returns is close-on-exec, so a session whose fds all go is
// released), fcntl on fd flags and F_DUPFD, and RLIMIT_NOFILE. The model
// predicts the close-on-exec flag of every fd; F_GETFD reads it back and
// the check "model: fd tables ... agree" compares all of them after every step.

// maxProcesses bounds the live tasks fork makes.
const maxProcesses = 6

// processActions returns the process actions, appended to Actions().
func processActions() []Action {
	return []Action{
		{"fork", func(s *model.State) int {
			switch {
			case liveCount(s) >= maxProcesses:
				return 0
			case haveSessionFile(s):
				return 20
			}
			return 5
		}, forkAction},
		{"exec", when(2, haveSessionFile), single(func(c *Ctx) (model.Op, bool) {
			task, ok := c.task(kindIs(model.KindSession))
			return model.Op{Kind: model.OpExec, Task: task}, ok
		})},
		{"fcntl", when(4, haveSessionFile), single(buildFcntl)},
		{"seal", when(3, haveMemfd), single(buildSeal)},
		{"setrlimit", always(1), setrlimitAction},
	}
}

// forkAction forks a task, preferring one that holds a session; then,
// sometimes, the parent exits at once (the child's inherited fds keep its
// sessions) or the child execs at once (fork+exec: the child drops every
// close-on-exec fd, the parent keeps the sessions).
func forkAction(c *Ctx) bool {
	parent, ok := c.task(kindIs(model.KindSession))
	if !ok {
		return false
	}
	r := c.Do(model.Op{Kind: model.OpFork, Task: parent})
	if r.Errno != 0 {
		return true
	}
	child := model.TaskID(r.Ret)
	switch n := c.Src.Intn(100, "after fork"); {
	case n >= 80:
		c.Do(model.Op{Kind: model.OpExit, Task: parent})
	case n >= 60:
		c.Do(model.Op{Kind: model.OpExec, Task: child})
	}
	return true
}

// fcntlLabel names an fcntl operation for the coverage table by its
// command: "F_GETFD", ..., or "FCNTL_OTHER".
func fcntlLabel(op model.Op) string {
	if n := model.FcntlName(int(op.Cmd)); n != "" {
		return n
	}
	return "FCNTL_OTHER"
}

// buildFcntl draws an fcntl on an fd of a task, mostly one LUO returned
// (a session fd or a retrieved memfd), with a command and an argument at
// the edges of its checks.
func buildFcntl(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpFcntl, kindIs(model.KindSession))
	if !ok {
		return op, false
	}
	nofile := model.NRFileMax
	if t := c.S.Tasks[op.Task]; t.Alive {
		nofile = t.Nofile
	}
	switch n := c.Src.Intn(100, "fcntl cmd"); {
	case n < 35:
		op.Cmd = model.FGetfd
	case n < 60:
		op.Cmd = model.FSetfd
		op.Arg = pick(c.Src, "fd flags", []int{0, model.FdCloexec, 3, 2})
	case n < 90:
		op.Cmd = model.FDupfd
		if n >= 75 {
			op.Cmd = model.FDupfdCloexec
		}
		op.Arg = pick(c.Src, "dup from", []int{0, 3, 100, nofile - 1, nofile, -1})
	default:
		op.Cmd = uint32(pick(c.Src, "other cmd", []int{3, 99})) // F_GETFL, junk
	}
	return op, true
}

// buildSeal draws an F_ADD_SEALS (one seal, two, an unknown bit) or an
// F_GET_SEALS, mostly on a memfd: the seals then decide later writes and
// truncates, and a write seal on a memfd LUO pins is EBUSY.
func buildSeal(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpFcntl, kindIs(model.KindMemfd))
	if !ok {
		return op, false
	}
	op.Cmd = model.FGetSeals
	if c.Src.Intn(3, "seal cmd") != 0 {
		op.Cmd = model.FAddSeals
		op.Arg = pick(c.Src, "seals", []int{model.SealWrite, model.SealGrow, model.SealShrink, model.SealSeal,
			model.SealFutureWrite, model.SealExec, model.SealGrow | model.SealShrink, 0x40, 0})
	}
	return op, true
}

// buildFcntlDupfd draws an F_DUPFD or F_DUPFD_CLOEXEC (for the fd
// reservation's fault site).
func buildFcntlDupfd(c *Ctx) (model.Op, bool) {
	op, ok := c.fileOp(model.OpFcntl, kindIs(model.KindSession))
	op.Cmd = pick(c.Src, "dup cmd", []uint32{model.FDupfd, model.FDupfdCloexec})
	op.Arg = pick(c.Src, "dup from", []int{0, 3, 100})
	return op, ok
}

// setrlimitAction mostly narrows a task's RLIMIT_NOFILE to the fds it has
// open (or one more), tries the fd-allocating calls there (EMFILE without
// filling the table), and restores the default; sometimes it passes bad
// limits instead (EINVAL, EPERM) or leaves the narrowed limit in place.
func setrlimitAction(c *Ctx) bool {
	task, ok := c.task(nil)
	if !ok {
		return false
	}
	t := c.S.Tasks[task]
	if !t.Alive || chance(c.Src, "bad rlimit", 20) {
		op := model.Op{Kind: model.OpSetrlimit, Task: task, Arg: model.RlimitNofile, Cur: model.NRFileMax, Max: model.NofileMaxDefault}
		switch c.Src.Intn(6, "bad rlimit kind") {
		case 0:
			op.Cur = op.Max + 1 // EINVAL
		case 5:
			op.Max = model.NrOpen + 1
			op.Cur = op.Max + 1 // EINVAL: checked before the hard limit's EPERM
		case 1:
			op.Max = model.RlimInfinity // EPERM
		case 2:
			op.Max = model.NrOpen + 1 // EPERM
		case 3:
			op.Max = model.NrOpen // OK: root may raise the hard limit
		default:
			op.Arg = pick(c.Src, "resource", []int{0, 16, -1}) // EINVAL
		}
		c.Do(op)
		return true
	}
	cur := uint64(len(t.FDs) + c.Src.Intn(2, "slack"))
	c.Do(model.Op{Kind: model.OpSetrlimit, Task: task, Arg: model.RlimitNofile, Cur: cur, Max: max(cur, t.NofileMax)})
	for range 1 + c.Src.Intn(3, "tries") {
		c.Do(c.allocOp(task))
	}
	if !chance(c.Src, "keep narrow limit", 5) {
		c.Do(model.Op{Kind: model.OpSetrlimit, Task: task, Arg: model.RlimitNofile, Cur: model.NRFileMax, Max: max(model.NofileMaxDefault, t.NofileMax)})
	}
	return true
}

// allocOp draws an fd-allocating call of task: open, dup, memfd_create,
// F_DUPFD, or a LUO ioctl that returns an fd where the task holds the
// file it needs.
func (c *Ctx) allocOp(task model.TaskID) model.Op {
	var ops []model.Op
	if fds := fdsOf(c.S, task, nil); len(fds) > 0 {
		ops = append(ops,
			model.Op{Kind: model.OpDup, Task: task, FD: fds[0]},
			model.Op{Kind: model.OpFcntl, Task: task, FD: fds[0], Cmd: pick(c.Src, "dup cmd", []uint32{model.FDupfd, model.FDupfdCloexec})})
	}
	if devs := fdsOf(c.S, task, kindIs(model.KindDevice)); len(devs) > 0 {
		ops = append(ops,
			model.Op{Kind: model.OpIoctl, Task: task, FD: devs[0], Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf(c.createName())},
			model.Op{Kind: model.OpIoctl, Task: task, FD: devs[0], Cmd: model.IoctlRetrieveSession, Buf: model.SessionArgBuf(c.retrieveName())})
	}
	if ins := fdsOf(c.S, task, sessionFile(c.S, true)); len(ins) > 0 {
		ops = append(ops, model.Op{Kind: model.OpIoctl, Task: task, FD: ins[0], Cmd: model.IoctlSessionRetrieveFD,
			Buf: model.FDArgBuf(0, c.retrieveToken(c.sessionOf(task, ins[0])))})
	}
	ops = append(ops,
		model.Op{Kind: model.OpOpen, Task: task, Path: model.DevNull, Flags: model.ORdwr},
		model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "guest"})
	return pick(c.Src, "alloc op", ops)
}
