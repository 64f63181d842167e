package proptest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/liveupdate"
	"luomodel/machine"
	"luomodel/model"
)

// errnoUnknown marks an error from the port that is not a syscall.Errno.
const errnoUnknown = syscall.Errno(4095)

// Env is one machine and, unless it runs the port alone, the model that
// shadows it.
type Env struct {
	M *machine.Machine
	// S is the model's state; it is advanced only in lockstep mode.
	S        model.State
	lockstep bool
	tasks    map[model.TaskID]*kernel.Task
	nextTask model.TaskID
	// trace is every operation so far; its C-like lines are built only
	// when a failure prints them (TraceString).
	trace []traceEntry
	// ids binds the model's test files to the port's (env_handler.go).
	ids testIDs
	// calls records LUO's calls into handlers and FLBs, in lockstep mode
	// only (nil otherwise: the port alone runs without a recorder).
	calls *liveupdate.CallLog
	// portBuf is portCalls' buffer, reused from step to step.
	portBuf []model.Call
	// taskIDs is fdTablesAgree's buffer, reused from step to step.
	taskIDs []model.TaskID

	// excuse is a block the last hostile hand-over left without a
	// reference, which its kernel's ledger accepts (gen_hostile.go).
	excuse excuse

	// mu guards reports: handlers may be called from any goroutine.
	mu      sync.Mutex
	reports []*bug.Report
}

// traceEntry is one executed operation: tag (a fault armed, or ""), the
// operation and the port's result. Neither is written after execution
// (the port and the model copy the buffers they change).
type traceEntry struct {
	tag string
	// note, if set, is printed before the operation instead of a fault
	// tag (a hostile hand-over, gen_hostile.go).
	note string
	op   model.Op
	res  model.Result
	// calls are the handler and FLB callbacks the model predicted (a
	// copy), printed under the operation.
	calls []model.Call
}

// NewEnv boots a machine with LUO on. In lockstep mode the model follows.
func NewEnv(lockstep bool) (*Env, error) {
	e := &Env{
		S:        model.NewState(true),
		lockstep: lockstep,
		tasks:    map[model.TaskID]*kernel.Task{},
		nextTask: 1,
	}
	if lockstep {
		e.calls = &liveupdate.CallLog{}
	}
	m, err := machine.New(e.machineConfig())
	if err != nil {
		return nil, err
	}
	e.M = m
	return e, nil
}

// machineConfig is the configuration of e's machines: LUO on, reports to
// e, and in lockstep mode LUO's calls into handlers to e.calls.
func (e *Env) machineConfig() machine.Config {
	c := machine.Config{LiveUpdate: true, Report: e.report}
	if e.calls != nil {
		c.Calls = e.calls
	}
	return c
}

func (e *Env) report(r *bug.Report) {
	e.mu.Lock()
	e.reports = append(e.reports, r)
	e.mu.Unlock()
}

// Reports returns the reports filed so far.
func (e *Env) Reports() []*bug.Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*bug.Report(nil), e.reports...)
}

// ReportCount returns how many reports were filed so far.
func (e *Env) ReportCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reports)
}

// Mismatch is a disagreement between the port and the model.
type Mismatch struct {
	Op    model.Op
	Port  model.Result
	Model model.Result
	Err   error // the port's raw error when it was not an errno
}

func (m *Mismatch) Error() string {
	s := fmt.Sprintf("port and model disagree:\n  port:  %s\n  model: %s",
		model.Format(m.Op, m.Port), model.Format(m.Op, m.Model))
	if m.Err != nil {
		s += fmt.Sprintf("\n  port error: %v", m.Err)
	}
	return s
}

// Exec applies op to the port (and in lockstep mode to the model) and
// returns the port's result; a disagreement is a *Mismatch.
func (e *Env) Exec(op model.Op) (model.Result, error) {
	before := e.M.Kernel()
	pr, rawErr := e.runPort(op)
	if !e.lockstep {
		e.trace = append(e.trace, traceEntry{op: op, res: pr})
		return pr, e.checkCalls(before, op, pr)
	}
	// In place: e.S is the only copy (model.Step would clone it, which
	// costs O(state) per operation).
	mr := e.S.Apply(op)
	e.trace = append(e.trace, traceEntry{op: op, res: pr})
	if !pr.Equal(mr) {
		return pr, &Mismatch{Op: op, Port: pr, Model: mr, Err: rawErr}
	}
	return pr, e.checkCalls(before, op, pr)
}

// Task returns the port's task for a model task id.
func (e *Env) Task(id model.TaskID) *kernel.Task { return e.tasks[id] }

func toErrno(err error) (syscall.Errno, error) {
	if err == nil {
		return 0, nil
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en, nil
	}
	return errnoUnknown, err
}

// runPort performs op on the port; it never panics outward.
func (e *Env) runPort(op model.Op) (r model.Result, raw error) {
	defer func() {
		if p := recover(); p != nil {
			r = model.Result{Errno: errnoUnknown}
			raw = fmt.Errorf("panic: %v", p)
		}
	}()
	res := func(ret int64, err error) (model.Result, error) {
		en, raw := toErrno(err)
		if en != 0 {
			return model.Result{Errno: en}, raw
		}
		return model.Result{Ret: ret}, nil
	}
	switch op.Kind {
	case model.OpNewTask:
		k := e.M.Kernel()
		if k == nil {
			return model.Result{Errno: errnoUnknown}, errors.New("machine halted")
		}
		id := e.nextTask
		e.nextTask++
		e.tasks[id] = k.NewTask()
		return model.Result{Ret: int64(id)}, nil
	case model.OpKexec:
		return res(0, e.M.Kexec())
	case model.OpTestCtl:
		return e.runTestCtl(op)
	case model.OpRegisterHandler, model.OpUnregisterHandler:
		k := e.M.Kernel()
		if k == nil || k.LUO() == nil {
			return model.Result{Errno: errnoUnknown}, errors.New("no running kernel with LUO")
		}
		if op.Kind == model.OpRegisterHandler {
			return res(0, k.LUO().RegisterFileHandler(k.MemfdHandler()))
		}
		return res(0, k.LUO().UnregisterFileHandler(k.MemfdHandler()))
	}
	t := e.tasks[op.Task]
	if t == nil {
		return model.Result{Errno: errnoUnknown}, fmt.Errorf("no task %d", op.Task)
	}
	switch op.Kind {
	case model.OpExit:
		t.Exit()
		return model.Result{}, nil
	case model.OpOpen:
		fd, err := t.Open(op.Path, op.Flags)
		return res(int64(fd), err)
	case model.OpClose:
		return res(0, t.Close(op.FD))
	case model.OpDup:
		fd, err := t.Dup(op.FD)
		return res(int64(fd), err)
	case model.OpIoctl:
		var buf []byte
		if op.Buf != nil {
			buf = append([]byte{}, op.Buf...)
		}
		err := t.Ioctl(op.FD, op.Cmd, buf)
		r, raw := res(0, err)
		r.Data = buf
		return r, raw
	case model.OpRead:
		p := make([]byte, op.N)
		n, err := t.Read(op.FD, p)
		r, raw := res(int64(n), err)
		if r.Errno == 0 {
			if n < 0 || n > len(p) {
				return r, fmt.Errorf("read returned %d", n)
			}
			r.Data = p[:n]
		}
		return r, raw
	case model.OpWrite:
		n, err := t.Write(op.FD, append([]byte{}, op.Buf...))
		return res(int64(n), err)
	case model.OpLseek:
		off, err := t.Lseek(op.FD, op.Off, op.Whence)
		return res(off, err)
	case model.OpFtruncate:
		return res(0, t.Ftruncate(op.FD, op.Off))
	case model.OpMemfdCreate:
		fd, err := t.MemfdCreate(op.Name, uint(op.Flags))
		return res(int64(fd), err)
	case model.OpInitModule:
		return res(0, t.InitModule(op.Name))
	case model.OpDeleteModule:
		return res(0, t.DeleteModule(op.Name, oNonblock))
	case model.OpFork:
		child, err := t.Fork()
		if err != nil {
			return res(0, err)
		}
		id := e.nextTask
		e.nextTask++
		e.tasks[id] = child
		return model.Result{Ret: int64(id)}, nil
	case model.OpExec:
		return res(0, t.Exec())
	case model.OpFcntl:
		v, err := t.Fcntl(op.FD, int(op.Cmd), op.Arg)
		return res(int64(v), err)
	case model.OpSetrlimit:
		return res(0, t.Setrlimit(op.Arg, op.Cur, op.Max))
	case model.OpDropCaches:
		return res(0, t.DropCaches(op.Arg))
	}
	return model.Result{Errno: syscall.ENOSYS}, nil
}

// TraceLen is the number of operations executed so far.
func (e *Env) TraceLen() int { return len(e.trace) }

// TraceString renders the trace as C-like lines, numbered.
func (e *Env) TraceString() string {
	var b strings.Builder
	for i, t := range e.trace {
		l := model.Format(t.op, t.res)
		if t.tag != "" {
			l = "[fault " + t.tag + "] " + l
		}
		if t.note != "" {
			l = t.note + " " + l
		}
		if len(t.calls) > 0 {
			l += "\n" + strings.TrimRight(model.FormatCalls(t.calls), "\n")
		}
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}
