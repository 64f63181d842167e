package model

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
)

// Format renders op and its result as one C-like trace line, e.g.
//
//	t1: ioctl(3, LIVEUPDATE_IOCTL_CREATE_SESSION, {size=72, fd=0, name="a"}) = 0 {fd=4}
//	t1: write(5, "abc", 3) = 3
func Format(op Op, r Result) string {
	var call string
	switch op.Kind {
	case OpNewTask:
		return fmt.Sprintf("fork() = t%d", r.Ret)
	case OpKexec:
		return "reboot(LINUX_REBOOT_CMD_KEXEC) = " + ret(r)
	case OpRegisterHandler:
		return "liveupdate_register_file_handler(memfd) = " + ret(r)
	case OpUnregisterHandler:
		return "liveupdate_unregister_file_handler(memfd) = " + ret(r)
	case OpExit:
		call = "exit()"
	case OpOpen:
		call = fmt.Sprintf("open(%q, %s)", op.Path, openFlags(op.Flags))
	case OpClose:
		call = fmt.Sprintf("close(%d)", op.FD)
	case OpDup:
		call = fmt.Sprintf("dup(%d)", op.FD)
	case OpIoctl:
		call = fmt.Sprintf("ioctl(%d, %s, %s)", op.FD, cmdName(op.Cmd), ioctlArg(op.Cmd, op.Buf))
		s := fmt.Sprintf("t%d: %s = %s", op.Task, call, ret(r))
		if r.Errno == 0 {
			s += ioctlOut(op.Cmd, r.Data)
		}
		return s
	case OpRead:
		call = fmt.Sprintf("read(%d, %d)", op.FD, op.N)
		if r.Errno == 0 {
			return fmt.Sprintf("t%d: %s = %d %s", op.Task, call, r.Ret, quote(r.Data))
		}
	case OpWrite:
		call = fmt.Sprintf("write(%d, %s, %d)", op.FD, quote(op.Buf), len(op.Buf))
	case OpLseek:
		call = fmt.Sprintf("lseek(%d, %d, %s)", op.FD, op.Off, whenceName(op.Whence))
	case OpFtruncate:
		call = fmt.Sprintf("ftruncate(%d, %d)", op.FD, op.Off)
	case OpMemfdCreate:
		call = fmt.Sprintf("memfd_create(%q, %#x)", op.Name, op.Flags)
	case OpInitModule:
		call = fmt.Sprintf("init_module(%q)", op.Name)
	case OpDeleteModule:
		call = fmt.Sprintf("delete_module(%q, O_NONBLOCK)", op.Name)
	case OpTestCtl:
		return fmt.Sprintf("%s: %s = %s", TestModuleName, testCtlCall(op), ret(r))
	case OpFork:
		if r.Errno == 0 {
			return fmt.Sprintf("t%d: fork() = t%d", op.Task, r.Ret)
		}
		call = "fork()"
	case OpExec:
		call = "execve()"
	case OpFcntl:
		name := FcntlName(int(op.Cmd))
		if name == "" {
			name = fmt.Sprint(int(op.Cmd))
		}
		arg := fmt.Sprint(op.Arg)
		if op.Cmd == FAddSeals {
			arg = sealNames(uint32(op.Arg))
		}
		call = fmt.Sprintf("fcntl(%d, %s, %s)", op.FD, name, arg)
	case OpSetrlimit:
		res := fmt.Sprint(op.Arg)
		if op.Arg == RlimitNofile {
			res = "RLIMIT_NOFILE"
		}
		call = fmt.Sprintf("setrlimit(%s, {%s, %s})", res, rlimName(op.Cur), rlimName(op.Max))
	case OpDropCaches:
		call = fmt.Sprintf("write(\"/proc/sys/vm/drop_caches\", \"%d\")", op.Arg)
	default:
		call = fmt.Sprintf("op%d()", int(op.Kind))
	}
	return fmt.Sprintf("t%d: %s = %s", op.Task, call, ret(r))
}

func ret(r Result) string {
	if r.Errno != 0 {
		return "-1 " + ErrnoName(r.Errno)
	}
	return fmt.Sprint(r.Ret)
}

// ErrnoName is the errno's C name ("EEXIST"), or "OK" for 0.
func ErrnoName(e syscall.Errno) string {
	// A switch, not a map literal: this runs for every result counted,
	// and a literal would build its map at every call.
	switch e {
	case 0:
		return "OK"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.ESRCH:
		return "ESRCH"
	case syscall.EIO:
		return "EIO"
	case syscall.ENXIO:
		return "ENXIO"
	case syscall.E2BIG:
		return "E2BIG"
	case syscall.EBADF:
		return "EBADF"
	case syscall.EAGAIN:
		return "EAGAIN"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.EFAULT:
		return "EFAULT"
	case syscall.EBUSY:
		return "EBUSY"
	case syscall.EEXIST:
		return "EEXIST"
	case syscall.EINVAL:
		return "EINVAL"
	case syscall.EMFILE:
		return "EMFILE"
	case syscall.ENOTTY:
		return "ENOTTY"
	case syscall.EFBIG:
		return "EFBIG"
	case syscall.ENOSPC:
		return "ENOSPC"
	case syscall.ESPIPE:
		return "ESPIPE"
	case syscall.ENOSYS:
		return "ENOSYS"
	case syscall.EOPNOTSUPP:
		return "EOPNOTSUPP"
	case syscall.ENODATA:
		return "ENODATA"
	case syscall.ENODEV:
		return "ENODEV"
	}
	return fmt.Sprintf("errno%d", int(e))
}

func openFlags(f int) string {
	var p []string
	switch f & OAccmode {
	case ORdonly:
		p = append(p, "O_RDONLY")
	case OWronly:
		p = append(p, "O_WRONLY")
	case ORdwr:
		p = append(p, "O_RDWR")
	default:
		p = append(p, "3")
	}
	if f&OCloexec != 0 {
		p = append(p, "O_CLOEXEC")
	}
	if rest := f &^ (OAccmode | OCloexec); rest != 0 {
		p = append(p, fmt.Sprintf("%#x", rest))
	}
	return strings.Join(p, "|")
}

func whenceName(w int) string {
	switch w {
	case SeekSet:
		return "SEEK_SET"
	case SeekCur:
		return "SEEK_CUR"
	case SeekEnd:
		return "SEEK_END"
	case SeekData:
		return "SEEK_DATA"
	case SeekHole:
		return "SEEK_HOLE"
	}
	return fmt.Sprint(w)
}

func cmdName(cmd uint32) string {
	if n := IoctlName(cmd); n != "" {
		return n
	}
	return fmt.Sprintf("%#x", cmd)
}

func quote(b []byte) string {
	const max = 32
	if len(b) > max {
		return fmt.Sprintf("%q...", b[:max])
	}
	return fmt.Sprintf("%q", b)
}

// cNameQ renders a 64-byte name field as a C string literal.
func cNameQ(field []byte) string {
	n, ok := cName(field)
	s := fmt.Sprintf("%q", n)
	if !ok {
		s += " (no NUL)"
	} else if i := len(n) + 1; i < len(field) {
		for _, c := range field[i:] {
			if c != 0 {
				s += " (+bytes after NUL)"
				break
			}
		}
	}
	return s
}

// ioctlArg decodes an ioctl buffer for the trace.
func ioctlArg(cmd uint32, b []byte) string {
	if len(b) < 4 {
		return fmt.Sprintf("[%d bytes] %x", len(b), b)
	}
	size := binary.LittleEndian.Uint32(b)
	var s string
	known := 0
	switch cmd {
	case IoctlCreateSession, IoctlRetrieveSession, IoctlSessionGetName:
		if len(b) >= SizeofSessionArg {
			known = SizeofSessionArg
			mid := "fd"
			if cmd == IoctlSessionGetName {
				mid = "reserved"
			}
			s = fmt.Sprintf("{size=%d, %s=%d, name=%s", size, mid, int32(binary.LittleEndian.Uint32(b[4:])), cNameQ(b[8:72]))
		}
	case IoctlSessionPreserveFD, IoctlSessionRetrieveFD:
		if len(b) >= SizeofFDArg {
			known = SizeofFDArg
			s = fmt.Sprintf("{size=%d, fd=%d, token=%d", size, int32(binary.LittleEndian.Uint32(b[4:])), binary.LittleEndian.Uint64(b[8:]))
		}
	case IoctlSessionFinish:
		if len(b) >= SizeofFinishArg {
			known = SizeofFinishArg
			s = fmt.Sprintf("{size=%d, reserved=%d", size, binary.LittleEndian.Uint32(b[4:]))
		}
	}
	if known == 0 {
		return fmt.Sprintf("{size=%d, [%d bytes] %x}", size, len(b), b)
	}
	if len(b) > known {
		tail := b[known:]
		nz := false
		for _, c := range tail {
			nz = nz || c != 0
		}
		if nz {
			s += fmt.Sprintf(", tail=%x", tail)
		} else {
			s += fmt.Sprintf(", tail=%d zero bytes", len(tail))
		}
	}
	return s + "}"
}

// ioctlOut renders what a successful ioctl wrote back.
func ioctlOut(cmd uint32, b []byte) string {
	switch cmd {
	case IoctlCreateSession, IoctlRetrieveSession, IoctlSessionRetrieveFD:
		if len(b) >= 8 {
			return fmt.Sprintf(" {fd=%d}", int32(binary.LittleEndian.Uint32(b[4:])))
		}
	case IoctlSessionGetName:
		if len(b) >= SizeofGetNameArg {
			return fmt.Sprintf(" {name=%s}", cNameQ(b[8:72]))
		}
	}
	return ""
}

// testCtlCall renders a test-module command.
func testCtlCall(op Op) string {
	switch op.TestCmd {
	case TestCmdFail:
		if op.TestFile == 0 {
			return fmt.Sprintf("fail(flb %s.%s, call %d, -%s)", TestFLBCompatible(op.FLB), op.Callback, op.Nth, ErrnoName(op.Errno))
		}
		return fmt.Sprintf("fail(test#%d.%s, call %d, -%s)", op.TestFile, op.Callback, op.Nth, ErrnoName(op.Errno))
	case TestCmdRefuse:
		return fmt.Sprintf("refuse_finish(test#%d, %v)", op.TestFile, op.Nth != 0)
	case TestCmdProbeRegister:
		what := "file_handler"
		if op.Nth != 0 {
			what = "flb"
			if op.FLB != 0 {
				what = "flb of an unregistered handler"
			}
		}
		if op.Callback != "" {
			what += " without " + op.Callback
		}
		return fmt.Sprintf("probe_register(%s, %q)", what, op.Name)
	}
	return fmt.Sprintf("%s(%s)", TestCmdName(op.TestCmd), TestFLBCompatible(op.FLB))
}

func rlimName(v uint64) string {
	if v == RlimInfinity {
		return "RLIM_INFINITY"
	}
	return fmt.Sprint(v)
}

// sealNames renders F_ADD_SEALS's argument as C would spell it:
// "F_SEAL_WRITE|F_SEAL_GROW", an unknown bit in hex, "0" for none.
func sealNames(seals uint32) string {
	var parts []string
	for i, n := range []string{"F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE", "F_SEAL_FUTURE_WRITE", "F_SEAL_EXEC"} {
		if seals&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := seals &^ sealsAll; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", rest))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}
