//go:build amd64 || arm64

package bug

import "unsafe"

// getfp returns its caller's frame pointer (fp_$GOARCH.s).
func getfp() unsafe.Pointer

// FrameCallers stores in pcs the return addresses of the frames above its
// caller (skip 0: starting in the caller), skipping skip of them, by
// following the frame-pointer chain as the runtime's execution tracer does
// (fpTracebackPCs): on amd64 and arm64
// every Go frame saves its caller's frame pointer at *fp and its return
// address one word above. The addresses are physical frames; CallersFrames
// expands the inlined calls within them, but unlike runtime.Callers the
// walk counts physical frames in skip and keeps the frames of wrappers.
// It returns how many it stored.
//
// The walk reads only the current goroutine's stack and makes no call, so
// the stack cannot move under it. The chain ends with a nil frame pointer
// at the goroutine's first frame; a pointer that does not go up the stack
// ends it too.
//
//go:noinline
func FrameCallers(skip int, pcs []uintptr) int {
	fp := getfp() // FrameCallers' own frame: its return address is in the caller
	for ; skip > 0 && fp != nil; skip-- {
		fp = nextFrame(fp)
	}
	n := 0
	for ; n < len(pcs) && fp != nil; n++ {
		pcs[n] = *(*uintptr)(unsafe.Add(fp, unsafe.Sizeof(uintptr(0))))
		fp = nextFrame(fp)
	}
	return n
}

// nextFrame returns the frame pointer saved in frame fp: the caller's.
func nextFrame(fp unsafe.Pointer) unsafe.Pointer {
	next := *(*unsafe.Pointer)(fp)
	if uintptr(next) <= uintptr(fp) {
		return nil // not up the stack: the end of the chain
	}
	return next
}
