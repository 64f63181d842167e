package model

import (
	"bytes"
	"syscall"
)

// OpKind is the syscall (or machine action) an Op performs.
type OpKind int

// Operation kinds.
const (
	OpNewTask      OpKind = iota + 1 // a new process (Kernel.NewTask)
	OpExit                           // Task.Exit
	OpOpen                           // open(Path, Flags)
	OpClose                          // close(FD)
	OpDup                            // dup(FD)
	OpIoctl                          // ioctl(FD, Cmd, Buf)
	OpRead                           // read(FD, N bytes)
	OpWrite                          // write(FD, Buf)
	OpLseek                          // lseek(FD, Off, Whence)
	OpFtruncate                      // ftruncate(FD, Off)
	OpMemfdCreate                    // memfd_create(Name, Flags)
	OpKexec                          // reboot(LINUX_REBOOT_CMD_KEXEC)
	OpInitModule                     // init_module(Name): load the test module
	OpDeleteModule                   // delete_module(Name)
	OpTestCtl                        // a test-module command (TestCmd*); no task
	// The memfd handler's registration, as a module load or unload
	// would do it (not a syscall: liveupdate_register_file_handler() and
	// liveupdate_unregister_file_handler()); Task is unused.
	OpRegisterHandler
	OpUnregisterHandler
	OpFork      // Task.Fork: a child with a copy of the fd table
	OpExec      // Task.Exec: close-on-exec fds closed
	OpFcntl     // fcntl(FD, Cmd, Arg)
	OpSetrlimit // setrlimit(Arg, {Cur, Max})
	// OpDropCaches writes Arg to /proc/sys/vm/drop_caches.
	OpDropCaches
)

var opKindNames = map[OpKind]string{
	OpNewTask: "newtask", OpExit: "exit", OpOpen: "open", OpClose: "close",
	OpDup: "dup", OpIoctl: "ioctl", OpRead: "read", OpWrite: "write",
	OpLseek: "lseek", OpFtruncate: "ftruncate", OpMemfdCreate: "memfd_create",
	OpKexec: "kexec", OpInitModule: "init_module", OpDeleteModule: "delete_module",
	OpTestCtl:         "testctl",
	OpRegisterHandler: "register_handler", OpUnregisterHandler: "unregister_handler",
	OpFork: "fork", OpExec: "exec", OpFcntl: "fcntl",
	OpSetrlimit: "setrlimit", OpDropCaches: "drop_caches",
}

func (k OpKind) String() string {
	if n, ok := opKindNames[k]; ok {
		return n
	}
	return "op?"
}

// Op is one syscall as user space issues it.
type Op struct {
	Kind  OpKind
	Task  TaskID
	FD    int
	Path  string // open
	Name  string // memfd_create
	Flags int    // open, memfd_create
	Cmd   uint32 // ioctl, fcntl
	// Buf is the ioctl user buffer (read and written in place by the
	// kernel) or the bytes to write.
	Buf    []byte
	N      int   // read length
	Off    int64 // lseek offset, ftruncate length
	Whence int   // lseek

	// OpTestCtl: the command, the test file or FLB it addresses, and a
	// directive's callback, call number and errno.
	TestCmd  int
	TestFile TestFileID
	FLB      int
	Callback string
	Nth      int
	Errno    syscall.Errno

	// Arg is fcntl's argument, or setrlimit's resource.
	Arg int
	// Cur and Max are setrlimit's soft and hard limits.
	Cur, Max uint64
}

// Result is what the syscall returned.
type Result struct {
	Errno syscall.Errno
	// Ret is the returned fd, byte count or offset (0 on error); for
	// OpNewTask and OpFork the new TaskID.
	Ret int64
	// Data is the bytes read, or for ioctl the user buffer after the call.
	Data []byte
}

// Equal reports whether two results are identical.
func (r Result) Equal(o Result) bool {
	return r.Errno == o.Errno && r.Ret == o.Ret && bytes.Equal(r.Data, o.Data)
}

func errResult(e syscall.Errno) Result { return Result{Errno: e} }

func okResult(ret int64) Result { return Result{Ret: ret} }
