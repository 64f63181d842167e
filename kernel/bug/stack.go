package bug

import (
	"fmt"
	"runtime"
	"strings"
)

// Stack is a captured call stack, kept as program counters and rendered
// only when a report needs it (lib/stackdepot.c keeps stacks the same way).
type Stack []uintptr

// CaptureStack records up to depth frames of the current stack, starting
// skip frames above the caller of CaptureStack (skip 0: the caller itself).
func CaptureStack(skip, depth int) Stack {
	pcs := make([]uintptr, depth)
	return Stack(pcs[:runtime.Callers(skip+2, pcs)])
}

// String renders s innermost first, one " function\n\tfile:line" pair a
// frame, as in a kernel splat.
func (s Stack) String() string {
	if len(s) == 0 {
		return ""
	}
	var b strings.Builder
	frames := runtime.CallersFrames(s)
	for {
		fr, more := frames.Next()
		fmt.Fprintf(&b, " %s\n\t%s:%d\n", fr.Function, fr.File, fr.Line)
		if !more {
			break
		}
	}
	return b.String()
}
