package concurrent

import (
	"errors"
	"fmt"
	"syscall"

	"luomodel/kernel"
	"luomodel/model"
)

// errnoUnknown marks a port error that is not an errno.
const errnoUnknown = syscall.Errno(4095)

// execPort performs op on task t of the port and returns its result the
// way the model states it. It never panics outward (doSyscall already
// turns a kernel panic into EFAULT and a report).
func execPort(t *kernel.Task, op model.Op) (r model.Result, raw error) {
	defer func() {
		if p := recover(); p != nil {
			r, raw = model.Result{Errno: errnoUnknown}, fmt.Errorf("panic: %v", p)
		}
	}()
	res := func(ret int64, err error) (model.Result, error) {
		if err == nil {
			return model.Result{Ret: ret}, nil
		}
		var en syscall.Errno
		if errors.As(err, &en) {
			return model.Result{Errno: en}, nil
		}
		return model.Result{Errno: errnoUnknown}, err
	}
	switch op.Kind {
	case model.OpOpen:
		fd, err := t.Open(op.Path, op.Flags)
		return res(int64(fd), err)
	case model.OpClose:
		return res(0, t.Close(op.FD))
	case model.OpDup:
		fd, err := t.Dup(op.FD)
		return res(int64(fd), err)
	case model.OpIoctl:
		buf := append([]byte{}, op.Buf...)
		err := t.Ioctl(op.FD, op.Cmd, buf)
		r, raw := res(0, err)
		r.Data = buf
		return r, raw
	case model.OpWrite:
		n, err := t.Write(op.FD, append([]byte{}, op.Buf...))
		return res(int64(n), err)
	case model.OpMemfdCreate:
		fd, err := t.MemfdCreate(op.Name, uint(op.Flags))
		return res(int64(fd), err)
	case model.OpInitModule:
		return res(0, t.InitModule(op.Name))
	case model.OpDeleteModule:
		return res(0, t.DeleteModule(op.Name, 0x800)) // O_NONBLOCK
	case model.OpExec:
		return res(0, t.Exec())
	case model.OpExit:
		t.Exit()
		return model.Result{}, nil
	case model.OpFcntl:
		v, err := t.Fcntl(op.FD, int(op.Cmd), op.Arg)
		return res(int64(v), err)
	}
	return model.Result{Errno: syscall.ENOSYS}, nil
}

// opFor builds the model op of instruction in, reading fds from slots.
func opFor(in Instr, task model.TaskID, slot func(int) int) model.Op {
	op := model.Op{Task: task}
	switch in.Kind {
	case KOpenDev:
		op.Kind, op.Path, op.Flags = model.OpOpen, model.DevLiveUpdate, model.ORdwr
	case KCloseDev:
		op.Kind, op.FD = model.OpClose, slot(SlotDev)
	case KCreate, KRetrieve:
		op.Kind, op.FD, op.Buf = model.OpIoctl, slot(SlotDev), model.SessionArgBuf(in.Name)
		op.Cmd = model.IoctlCreateSession
		if in.Kind == KRetrieve {
			op.Cmd = model.IoctlRetrieveSession
		}
	case KClose:
		op.Kind, op.FD = model.OpClose, slot(in.Src)
	case KDup:
		op.Kind, op.FD = model.OpDup, slot(in.Src)
	case KPreserve:
		op.Kind, op.FD, op.Cmd = model.OpIoctl, slot(in.Src), model.IoctlSessionPreserveFD
		op.Buf = model.FDArgBuf(int32(slot(SlotFile0+in.File)), in.Token)
	case KRetrieveFD:
		op.Kind, op.FD, op.Cmd = model.OpIoctl, slot(in.Src), model.IoctlSessionRetrieveFD
		op.Buf = model.FDArgBuf(-1, in.Token)
	case KFinish:
		op.Kind, op.FD, op.Cmd, op.Buf = model.OpIoctl, slot(in.Src), model.IoctlSessionFinish, model.FinishArgBuf(0)
	case KGetName:
		op.Kind, op.FD, op.Cmd, op.Buf = model.OpIoctl, slot(in.Src), model.IoctlSessionGetName, model.GetNameArgBuf(0)
	case KReboot:
		op.Kind = model.OpKexec
	case KFLBGet:
		op = model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdFLBIncoming, FLB: in.FLB}
	case KRegFLB, KUnregFLB:
		op = model.Op{Kind: model.OpTestCtl, TestCmd: model.TestCmdRegisterFLB, FLB: in.FLB}
		if in.Kind == KUnregFLB {
			op.TestCmd = model.TestCmdUnregisterFLB
		}
	case KLoadMod:
		op.Kind, op.Name = model.OpInitModule, model.TestModuleName
	case KUnloadMod:
		op.Kind, op.Name = model.OpDeleteModule, model.TestModuleName
	case KRegister:
		op.Kind = model.OpRegisterHandler
	case KUnregister:
		op.Kind = model.OpUnregisterHandler
	case KFork:
		op.Kind = model.OpFork
	case KExec:
		op.Kind = model.OpExec
	case KExit:
		op.Kind = model.OpExit
	case KGetFD:
		op.Kind, op.FD, op.Arg, op.Cmd = model.OpFcntl, slot(in.Src), in.Arg, model.FGetfd
	case KSetFD:
		op.Kind, op.FD, op.Arg, op.Cmd = model.OpFcntl, slot(in.Src), in.Arg, model.FSetfd
	case KDupFD:
		op.Kind, op.FD, op.Arg, op.Cmd = model.OpFcntl, slot(in.Src), in.Arg, model.FDupfd
	case KDupFDCloexec:
		op.Kind, op.FD, op.Arg, op.Cmd = model.OpFcntl, slot(in.Src), in.Arg, model.FDupfdCloexec
	}
	return op
}

// fdResult returns the fd a successful op returned, if it returns one.
func fdResult(op model.Op, r model.Result) (int, bool) {
	if r.Errno != 0 {
		return 0, false
	}
	switch op.Kind {
	case model.OpOpen, model.OpDup, model.OpMemfdCreate:
		return int(r.Ret), true
	case model.OpFcntl:
		if op.Cmd == model.FDupfd || op.Cmd == model.FDupfdCloexec {
			return int(r.Ret), true
		}
	case model.OpIoctl:
		switch op.Cmd {
		case model.IoctlCreateSession, model.IoctlRetrieveSession, model.IoctlSessionRetrieveFD:
			if len(r.Data) >= 8 {
				return int(int32(le32(r.Data[4:]))), true
			}
		}
	}
	return 0, false
}

// withFD returns r with its returned fd replaced by fd.
func withFD(op model.Op, r model.Result, fd int) model.Result {
	if op.Kind == model.OpIoctl {
		r.Data = append([]byte{}, r.Data...)
		putLE32(r.Data[4:], uint32(int32(fd)))
		return r
	}
	r.Ret = int64(fd)
	return r
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func putLE32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
