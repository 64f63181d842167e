package concurrent

import (
	"errors"
	"syscall"

	"luomodel/kernel"
	"luomodel/model"
)

// execRegistration registers or unregisters the memfd file handler of k
// (the running kernel), as a module load or unload would, from a round's
// thread: registration takes luo_register_rwlock for write, so the
// scheduler interleaves it with the handler-list walks of PRESERVE_FD and
// of the first open's deserialization (issue 17). The model predicts it
// (model.OpRegisterHandler, model.OpUnregisterHandler): EEXIST, ENOENT,
// EBUSY while a luo_file pins the handler.
//
// A registration drawn after a reboot that completed in the same round
// is not run: it would change the new kernel's handler list before the
// checker's probe deserializes the hand-over, which the model does not
// follow. Which kernel an in-flight one changed is observed after the
// round (portCrossed).
func execRegistration(k *kernel.Kernel, op model.Op) model.Result {
	if k == nil || k.LUO() == nil {
		return model.Result{Errno: errnoUnknown}
	}
	var err error
	if op.Kind == model.OpRegisterHandler {
		err = k.LUO().RegisterFileHandler(k.MemfdHandler())
	} else {
		err = k.LUO().UnregisterFileHandler(k.MemfdHandler())
	}
	if err == nil {
		return model.Result{}
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return model.Result{Errno: en}
	}
	return model.Result{Errno: errnoUnknown}
}
