//go:build !amd64 && !arm64

package bug

import "runtime"

// FrameCallers stores in pcs the return addresses of the frames above its
// caller, skipping skip of them. Without frame pointers to follow it falls
// back to the runtime's unwinder, which is correct but slower.
func FrameCallers(skip int, pcs []uintptr) int {
	return runtime.Callers(skip+2, pcs)
}
