// Package model is the abstract, sequential model of everything user space
// can observe of LUO and of the kernel slices it stands on: the
// /dev/liveupdate device, outgoing and incoming sessions, preserved files,
// the fd tables of tasks, memfd contents, and what a live update (kexec)
// hands to the next kernel.
//
// The model is pure: Step(state, op) returns the result every syscall must
// produce (errno, returned fd or count, bytes) and the next state, without
// side effects, so the same model serves the lockstep property tests
// (proptest), the `luo check` campaign and a linearizability checker.
// States are values: Step never mutates its input (it clones first; memfd
// contents are immutable byte slices shared between clones).
//
// Errnos follow the reference profile of ../shared/spec/luo-reference.md:
// the 6.19 structure and limits (819 outgoing sessions -> ENOMEM, 128 files
// per session -> ENOSPC, 64-byte names) with every post-merge fix (name
// validation, session-type gates, GET_NAME, reserved fields, the global
// double-preservation map, remembered retrieve status, cached deserialize
// errors). Checks run in the kernel's order: the ioctl dispatch of spec 1.6
// first, then each operation's own order.
//
// Beyond syscalls it predicts two things a kernel, not user space, does:
// the memfd handler's (un)registration (a module load or unload), and
// hostile hand-overs (hostile.go): the LUO data corrupted between two
// kernels, deserialized by the model check by check at the first open.
//
// The model imports nothing of the port.
package model
