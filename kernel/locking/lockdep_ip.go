package locking

import (
	"runtime"
	"slices"
	"strings"
)

// This file is lockdep's cheap record of where a lock was acquired. Linux
// keeps one word per held lock, held_lock.acquire_ip (_RET_IP_), and saves
// full stack traces (save_trace()) only when a new dependency enters the
// graph. A Go lock has no free _RET_IP_: runtime.Callers walks the frames
// with the full unwinder and costs tens of nanoseconds per frame, which on
// every acquisition dominated checking campaigns. So a held lock keeps a
// few return addresses read off the frame-pointer chain (bug.FrameCallers, a
// load per frame; runtime.Callers where Go keeps no frame
// pointers), and the rare paths (a new dependency, a report) still take
// full stacks with runtime.Callers.

// heldIPs is how many return addresses a held lock keeps: its acquire IP
// and the callers above it, enough to name the caller after this package's
// own frames (up to three: acquire's caller, Lock, Guard) are dropped. On
// the frame-pointer walk each one costs a load, not an unwind.
const heldIPs = 8

// acquireIPs is a held lock's acquisition site: the innermost return
// addresses of the acquiring task's physical frames, starting in the
// caller of (*lockdep).acquire.
type acquireIPs struct {
	n  uint8
	pc [heldIPs]uintptr
}

func (a *acquireIPs) pcs() []uintptr { return a.pc[:a.n] }

// ownPkgPrefix is this package's prefix of function names,
// "luomodel/kernel/locking.", derived from a function of the package so
// that it follows the module path.
func ownPkgPrefix() string {
	pc, _, _, _ := runtime.Caller(0)
	name := runtime.FuncForPC(pc).Name()
	return name[:strings.LastIndexByte(name, '.')+1]
}

// callerFrames resolves pcs into frames (inlined calls expanded), dropping
// the leading frames of this package: a held lock's record starts inside
// the lock operation, and a report shows the code that called it. If every
// frame is this package's, all are kept.
func callerFrames(pcs []uintptr) []runtime.Frame {
	if len(pcs) == 0 {
		return nil
	}
	// Clone: a held lock's PCs live in the held_lock itself, which must not
	// escape to the heap on the acquire fast path.
	it := runtime.CallersFrames(slices.Clone(pcs))
	var frames []runtime.Frame
	for {
		f, more := it.Next()
		if f.Function == "runtime.goexit" {
			break
		}
		frames = append(frames, f)
		if !more {
			break
		}
	}
	own := ownPkgPrefix()
	for i, f := range frames {
		if !strings.HasPrefix(f.Function, own) {
			return frames[i:]
		}
	}
	return frames
}
