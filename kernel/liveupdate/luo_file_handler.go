package liveupdate

import (
	"luomodel/kernel/module"
	"luomodel/kernel/vfs"
)

// HandlerCompatLength ports LIVEUPDATE_HNDL_COMPAT_LENGTH (incl. the NUL).
const HandlerCompatLength = 48

// FileOpArgs ports struct liveupdate_file_op_args, the argument pack of
// every file-handler callback.
type FileOpArgs struct {
	Handler *FileHandler
	// RetrieveStatus ports retrieve_status: 0 not attempted, 1 retrieved,
	// a negative errno if retrieve failed. Given to can_finish and finish.
	RetrieveStatus int
	// File is the file (in), or the retrieved file (out of Retrieve).
	File *vfs.File
	// SerializedData is the handler's opaque u64, kept across kexec.
	SerializedData uint64
	// PrivateData is runtime-only state from Preserve; never serialized.
	PrivateData any
}

// FileOps ports struct liveupdate_file_ops. CanPreserve, Preserve,
// Unpreserve, Retrieve and Finish are required; the rest are optional (nil).
type FileOps struct {
	CanPreserve func(h *FileHandler, f *vfs.File) bool
	Preserve    func(a *FileOpArgs) error
	Unpreserve  func(a *FileOpArgs)
	Freeze      func(a *FileOpArgs) error
	Unfreeze    func(a *FileOpArgs)
	Retrieve    func(a *FileOpArgs) error
	CanFinish   func(a *FileOpArgs) bool
	Finish      func(a *FileOpArgs)
	// GetID keys the global double-preservation map; nil means the file's
	// identity (the struct file pointer in C).
	GetID func(f *vfs.File) uint64
	// Owner is the module that implements the ops (THIS_MODULE); nil for
	// built-in code. LUO pins it once per preserved or deserialized file
	// and drops the pin after its last use of the handler (M16).
	Owner *module.Module
}

// checkHandlerOwner is every call into a file handler and every read of
// its struct: like KASAN on the owner's module memory, it reports a
// use-after-free if the module that owns fh is gone.
func checkHandlerOwner(fh *FileHandler, what string) {
	if o := fh.Ops.Owner; o != nil && o.State() == module.StateGone {
		o.Check("file handler " + fh.Compatible + " " + what)
	}
}

// FileHandler ports struct liveupdate_file_handler.
type FileHandler struct {
	Ops        *FileOps
	Compatible string // at most HandlerCompatLength-1 bytes, e.g. "memfd-v1"
}

// handlerList returns luo_file_handler_list. The list is guarded by
// luo_register_rwlock: every walk asserts it held (lockdep_assert_held(),
// the run-time form of a __guarded_by annotation), so that a walk without
// the lock is reported even when no registration races it (M18).
//
// Requires: l.registerRwsem held, for read or write.
func (l *LUO) handlerList() []*registeredHandler {
	l.registerRwsem.AssertHeld()
	return l.handlers
}
