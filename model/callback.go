package model

import (
	"fmt"
	"strings"
	"syscall"
)

// This file is the model's prediction of LUO's in-kernel face: every call
// LUO makes into a file handler or a File-Lifecycle-Bound object (FLB),
// in order, with its result. Apply records the calls of the operation it
// applies in State.Calls; the lockstep checker compares them with the
// calls the port's handlers recorded, so a callback too many, too few or
// out of order is a disagreement.

// Handler callback names (struct liveupdate_file_ops).
const (
	CbCanPreserve = "can_preserve"
	CbPreserve    = "preserve"
	CbUnpreserve  = "unpreserve"
	CbFreeze      = "freeze"
	CbUnfreeze    = "unfreeze"
	CbRetrieve    = "retrieve"
	CbCanFinish   = "can_finish"
	CbFinish      = "finish"
	CbGetID       = "get_id"
)

// FLB callback names (struct liveupdate_flb_ops).
const (
	FlbPreserve   = "preserve"
	FlbUnpreserve = "unpreserve"
	FlbRetrieve   = "retrieve"
	FlbFinish     = "finish"
)

// HandlerCallbacks and FLBCallbacks list the callbacks in the order of a
// file's life, for coverage tables.
var (
	HandlerCallbacks = []string{CbCanPreserve, CbGetID, CbPreserve, CbFreeze, CbUnfreeze, CbUnpreserve, CbRetrieve, CbCanFinish, CbFinish}
	FLBCallbacks     = []string{FlbPreserve, FlbUnpreserve, FlbRetrieve, FlbFinish}
)

// ObjRef names the file a handler callback is about, stably across
// kexec: a test file by its TestFileID (kept in its payload), a memfd by
// the token and session it is preserved under. Zero for FLB callbacks.
type ObjRef struct {
	Test    TestFileID // test files
	Session string     // memfds: the session's name
	Token   uint64     // memfds: the token
}

func (o ObjRef) String() string {
	switch {
	case o.Test != 0:
		return fmt.Sprintf("test#%d", o.Test)
	case o.Session != "":
		return fmt.Sprintf("%q/%d", o.Session, o.Token)
	}
	return "-"
}

// Call is one callback LUO made.
type Call struct {
	// Handler is the handler's compatible string for a handler
	// callback; FLB is the FLB's compatible string for an FLB callback
	// (exactly one is set).
	Handler string
	FLB     string
	Name    string // a Cb* or Flb* name
	File    ObjRef // handler callbacks
	// Result: for int callbacks the errno (0 success); for bool ones
	// (can_preserve, can_finish) 0 for true and EBUSY for false; void
	// callbacks 0.
	Result syscall.Errno
	// Bool marks a bool callback (Result renders true/false).
	Bool bool
}

// String renders a call C-like, e.g.
//
//	liveupdate-test-v1.freeze(test#3) = -ENOMEM
//	flb liveupdate-test-flb-v0.retrieve() = 0
func (c Call) String() string {
	res := "0"
	switch {
	case c.Bool && c.Result == 0:
		res = "true"
	case c.Bool:
		res = "false"
	case c.Result != 0:
		res = "-" + ErrnoName(c.Result)
	}
	if c.FLB != "" {
		return fmt.Sprintf("flb %s.%s() = %s", c.FLB, c.Name, res)
	}
	return fmt.Sprintf("%s.%s(%s) = %s", c.Handler, c.Name, c.File, res)
}

// FormatCalls renders calls one per line, indented under an operation's
// trace line.
func FormatCalls(calls []Call) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString("        -> ")
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// isBoolCallback says whether a handler callback returns bool.
func isBoolCallback(name string) bool { return name == CbCanPreserve || name == CbCanFinish }

// record appends a call to the operation's trace.
func (s *State) record(c Call) { s.Calls = append(s.Calls, c) }

// recordHandler appends a handler callback.
func (s *State) recordHandler(handler, name string, file ObjRef, res syscall.Errno) {
	s.record(Call{Handler: handler, Name: name, File: file, Result: res, Bool: isBoolCallback(name)})
}

// recordFLB appends an FLB callback.
func (s *State) recordFLB(flb, name string, res syscall.Errno) {
	s.record(Call{FLB: flb, Name: name, Result: res})
}
