package liveupdate

import (
	"fmt"
	"sync"
	"syscall"

	"luomodel/kernel/vfs"
)

// This file is the recording seam of LUO's in-kernel face: every call LUO
// makes into a file handler (struct liveupdate_file_ops) or an FLB (struct
// liveupdate_flb_ops) goes through one of the call* functions below, which
// call the op and, when a CallRecorder is set, hand it one Callback: which
// callback, of which handler or FLB, about which file (session and token),
// with which result. It is instrumentation, not a C counterpart: in C the
// call sites call the ops directly (ops->preserve(&args) and so on); the
// port keeps those call sites where C has them and routes them here, so
// that a checker sees what LUO called for every handler, not only for one
// that records its own callbacks. luo_callback_test.go asserts that no
// other file calls an op.
//
// With no recorder set a call costs one nil check and allocates nothing.

// CallbackOp names one callback LUO makes.
type CallbackOp uint8

// The handler callbacks, then the FLB ones.
const (
	CallCanPreserve CallbackOp = iota
	CallPreserve
	CallUnpreserve
	CallFreeze
	CallUnfreeze
	CallRetrieve
	CallCanFinish
	CallFinish
	CallGetID
	CallFLBPreserve
	CallFLBUnpreserve
	CallFLBRetrieve
	CallFLBFinish

	// NumCallbackOps is the number of callbacks.
	NumCallbackOps
)

var callbackOpNames = [NumCallbackOps]string{
	CallCanPreserve:   "can_preserve",
	CallPreserve:      "preserve",
	CallUnpreserve:    "unpreserve",
	CallFreeze:        "freeze",
	CallUnfreeze:      "unfreeze",
	CallRetrieve:      "retrieve",
	CallCanFinish:     "can_finish",
	CallFinish:        "finish",
	CallGetID:         "get_id",
	CallFLBPreserve:   "preserve",
	CallFLBUnpreserve: "unpreserve",
	CallFLBRetrieve:   "retrieve",
	CallFLBFinish:     "finish",
}

// String is the op's member name in its ops struct, e.g. "can_finish"
// (an FLB op is named without a prefix, as in struct liveupdate_flb_ops).
func (o CallbackOp) String() string {
	if o >= NumCallbackOps {
		return fmt.Sprintf("CallbackOp(%d)", int(o))
	}
	return callbackOpNames[o]
}

// IsFLB tells an FLB callback from a handler one.
func (o CallbackOp) IsFLB() bool { return o >= CallFLBPreserve && o < NumCallbackOps }

// IsBool says whether the callback returns bool (can_preserve,
// can_finish).
func (o CallbackOp) IsBool() bool { return o == CallCanPreserve || o == CallCanFinish }

// Callback is one call LUO made into a handler or an FLB, recorded after
// it returned.
type Callback struct {
	Op CallbackOp
	// Handler is the handler of a handler callback, FLB the FLB of an FLB
	// callback (exactly one is set).
	Handler *FileHandler
	FLB     *FLB
	// Session and Token name the file a handler callback is about: the
	// session whose set it is in (or is being preserved into) and its
	// token. Empty for FLB callbacks.
	Session string
	Token   uint64
	// File is the file argument: nil for a file of the new kernel not
	// retrieved (yet); for retrieve, the file the handler returned (nil
	// if it failed). SerializedData is the handler's u64 as LUO passed it
	// in (after preserve: as the handler returned it).
	File           *vfs.File
	SerializedData uint64
	// Ret is what the callback returned, as C would: 0 or a negative
	// errno for an int op, 1 or 0 for a bool one, the id for get_id, 0
	// for a void one.
	Ret int64
}

// Errno is the errno of an int callback's Ret (0 for success), EBUSY for
// a bool callback that said no.
func (c *Callback) Errno() syscall.Errno {
	if c.Op.IsBool() {
		if c.Ret == 0 {
			return syscall.EBUSY
		}
		return 0
	}
	if c.Op == CallGetID || c.Ret >= 0 {
		return 0
	}
	return syscall.Errno(-c.Ret)
}

// String renders c C-like, e.g. `memfd-v1.freeze("s"/7) = 0` or
// `flb liveupdate-test-flb-v0.retrieve() = -ENOMEM`.
func (c Callback) String() string {
	var res string
	switch {
	case c.Op.IsBool():
		res = fmt.Sprint(c.Ret != 0)
	case c.Op == CallGetID:
		res = fmt.Sprintf("%#x", c.Ret)
	case c.Ret < 0:
		res = fmt.Sprintf("-%d (%v)", -c.Ret, syscall.Errno(-c.Ret))
	default:
		res = "0"
	}
	if c.Op.IsFLB() {
		return fmt.Sprintf("flb %s.%s() = %s", c.FLB.Compatible, c.Op, res)
	}
	return fmt.Sprintf("%s.%s(%q/%d) = %s", c.Handler.Compatible, c.Op, c.Session, c.Token, res)
}

// CallRecorder receives every Callback of the LUO it is set on, in call
// order, synchronously from the calling task (so from any goroutine: a
// recorder shared by concurrent tasks must lock). It must not call into
// LUO.
type CallRecorder interface {
	RecordCallback(c Callback)
}

// CallLog is a CallRecorder that keeps the records until Take. Two
// buffers alternate, so a steady campaign allocates only while they grow.
type CallLog struct {
	mu sync.Mutex
	// calls are the records since the last Take; spare is the slice the
	// last Take returned. Guarded by mu.
	calls []Callback
	spare []Callback
}

// RecordCallback implements CallRecorder.
func (l *CallLog) RecordCallback(c Callback) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// Take returns the records so far and empties the log; the slice is valid
// until the next Take.
func (l *CallLog) Take() []Callback {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.calls
	clear(l.spare) // drop the files and handlers the older records point at
	l.calls, l.spare = l.spare[:0], out
	return out
}

// errRet is an int op's Ret.
func errRet(err error) int64 {
	if err == nil {
		return 0
	}
	return -int64(toErrno(err))
}

func boolRet(ok bool) int64 {
	if ok {
		return 1
	}
	return 0
}

// fileSetSession is the name of the session that owns fs, for a record.
// Like every read of session->name it reports a use-after-free of a freed
// session.
func (l *LUO) fileSetSession(fs *fileSet) string {
	if fs.owner != nil {
		l.sessionName(fs.owner)
	}
	return fs.name
}

// recordFile hands the recorder a handler callback about f's file.
func (l *LUO) recordFile(op CallbackOp, fs *fileSet, f *luoFile, file *vfs.File, ret int64) {
	l.calls.RecordCallback(Callback{Op: op, Handler: f.fh, Session: l.fileSetSession(fs), Token: f.token,
		File: file, SerializedData: f.serializedData, Ret: ret})
}

// callCanPreserve is ops->can_preserve(fh, file), asked while preserving
// file under token in fs.
func (l *LUO) callCanPreserve(fs *fileSet, token uint64, fh *FileHandler, file *vfs.File) bool {
	checkHandlerOwner(fh, ".can_preserve")
	ok := fh.Ops.CanPreserve(fh, file)
	if l.calls != nil {
		l.calls.RecordCallback(Callback{Op: CallCanPreserve, Handler: fh, Session: l.fileSetSession(fs), Token: token,
			File: file, Ret: boolRet(ok)})
	}
	return ok
}

// callGetID ports luo_file.c:luo_get_id(): the key of the
// double-preservation map, the handler's get_id or else the file's
// identity. fs and token name the file for the record.
func (l *LUO) callGetID(fs *fileSet, token uint64, fh *FileHandler, file *vfs.File) preservedKey {
	checkHandlerOwner(fh, ".get_id")
	if fh.Ops.GetID == nil {
		return preservedKey{file: file}
	}
	id := fh.Ops.GetID(file)
	if l.calls != nil {
		l.calls.RecordCallback(Callback{Op: CallGetID, Handler: fh, Session: l.fileSetSession(fs), Token: token,
			File: file, Ret: int64(id)})
	}
	return preservedKey{id: id}
}

// callPreserve is ops->preserve(args) for f, a luo_file not yet in fs.
func (l *LUO) callPreserve(fs *fileSet, f *luoFile, args *FileOpArgs) error {
	checkHandlerOwner(f.fh, ".preserve")
	err := f.fh.Ops.Preserve(args)
	if l.calls != nil {
		l.calls.RecordCallback(Callback{Op: CallPreserve, Handler: f.fh, Session: l.fileSetSession(fs), Token: f.token,
			File: args.File, SerializedData: args.SerializedData, Ret: errRet(err)})
	}
	return err
}

// callUnpreserve is ops->unpreserve(args) for f in fs.
func (l *LUO) callUnpreserve(fs *fileSet, f *luoFile, args *FileOpArgs) {
	checkHandlerOwner(f.fh, ".unpreserve")
	f.fh.Ops.Unpreserve(args)
	if l.calls != nil {
		l.recordFile(CallUnpreserve, fs, f, args.File, 0)
	}
}

// callFreeze is ops->freeze(args) for f in fs; a handler without one is
// not called (and nothing is recorded).
func (l *LUO) callFreeze(fs *fileSet, f *luoFile, args *FileOpArgs) error {
	checkHandlerOwner(f.fh, ".freeze")
	if f.fh.Ops.Freeze == nil {
		return nil
	}
	err := f.fh.Ops.Freeze(args)
	if l.calls != nil {
		l.recordFile(CallFreeze, fs, f, args.File, errRet(err))
	}
	return err
}

// callUnfreeze is ops->unfreeze(args) for f in fs, if the handler has one.
func (l *LUO) callUnfreeze(fs *fileSet, f *luoFile, args *FileOpArgs) {
	checkHandlerOwner(f.fh, ".unfreeze")
	if f.fh.Ops.Unfreeze == nil {
		return
	}
	f.fh.Ops.Unfreeze(args)
	if l.calls != nil {
		l.recordFile(CallUnfreeze, fs, f, args.File, 0)
	}
}

// callRetrieve is ops->retrieve(args) for f in fs; the record's file is
// the one the handler returned.
func (l *LUO) callRetrieve(fs *fileSet, f *luoFile, args *FileOpArgs) error {
	checkHandlerOwner(f.fh, ".retrieve")
	err := f.fh.Ops.Retrieve(args)
	if l.calls != nil {
		var file *vfs.File
		if err == nil {
			file = args.File
		}
		l.recordFile(CallRetrieve, fs, f, file, errRet(err))
	}
	return err
}

// callCanFinish is ops->can_finish(args) for f in fs; a handler without
// one can always finish (and is not called).
func (l *LUO) callCanFinish(fs *fileSet, f *luoFile, args *FileOpArgs) bool {
	checkHandlerOwner(f.fh, ".can_finish")
	if f.fh.Ops.CanFinish == nil {
		return true
	}
	ok := f.fh.Ops.CanFinish(args)
	if l.calls != nil {
		l.recordFile(CallCanFinish, fs, f, args.File, boolRet(ok))
	}
	return ok
}

// callFinish is ops->finish(args) for f in fs.
func (l *LUO) callFinish(fs *fileSet, f *luoFile, args *FileOpArgs) {
	checkHandlerOwner(f.fh, ".finish")
	f.fh.Ops.Finish(args)
	if l.calls != nil {
		l.recordFile(CallFinish, fs, f, args.File, 0)
	}
}

// recordFLB hands the recorder an FLB callback.
func (l *LUO) recordFLB(op CallbackOp, flb *FLB, ret int64) {
	l.calls.RecordCallback(Callback{Op: op, FLB: flb, Ret: ret})
}

// callFLBPreserve is flb->ops->preserve(args).
func (l *LUO) callFLBPreserve(flb *FLB, args *FLBOpArgs) error {
	checkFLBOwner(flb, ".preserve")
	err := flb.Ops.Preserve(args)
	if l.calls != nil {
		l.recordFLB(CallFLBPreserve, flb, errRet(err))
	}
	return err
}

// callFLBUnpreserve is flb->ops->unpreserve(args).
func (l *LUO) callFLBUnpreserve(flb *FLB, args *FLBOpArgs) {
	checkFLBOwner(flb, ".unpreserve")
	if flb.Ops.Unpreserve == nil {
		return
	}
	flb.Ops.Unpreserve(args)
	if l.calls != nil {
		l.recordFLB(CallFLBUnpreserve, flb, 0)
	}
}

// callFLBRetrieve is flb->ops->retrieve(args).
func (l *LUO) callFLBRetrieve(flb *FLB, args *FLBOpArgs) error {
	checkFLBOwner(flb, ".retrieve")
	err := flb.Ops.Retrieve(args)
	if l.calls != nil {
		l.recordFLB(CallFLBRetrieve, flb, errRet(err))
	}
	return err
}

// callFLBFinish is flb->ops->finish(args).
func (l *LUO) callFLBFinish(flb *FLB, args *FLBOpArgs) {
	checkFLBOwner(flb, ".finish")
	flb.Ops.Finish(args)
	if l.calls != nil {
		l.recordFLB(CallFLBFinish, flb, 0)
	}
}
