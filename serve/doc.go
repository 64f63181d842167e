// Package serve runs a machine for real processes: `luo serve` boots one
// and serves the LUO-relevant system calls of client processes over a Unix
// socket, and the LD_PRELOAD shim (shim/libluoshim.c) is the client side.
//
// Each client process is one task of the running kernel, created when the
// process first touches the model (its first open of /dev/liveupdate or
// memfd_create) and identified by its connection and the credentials the
// socket reports (SO_PEERCRED). The task lives as long as the connection:
// when the process exits, or dies in the middle of a call, the connection
// closes and the task exits, closing its fds as exit_files() would. A
// fork of a process that has a task gives the child a fork of that task
// (Task.Fork: a copy of the fd table) before fork returns in either
// process. A kexec, asked for by `luo kexec` or by reboot(2) from a client,
// replaces the kernel; every client process of the old kernel is killed
// (SIGKILL), as a kexec ends every process, and later clients get tasks of
// the new kernel.
//
// The wire format (protocol.go) is little-endian and fixed: a request is
// a 40-byte header {u32 len; u32 op; s64 arg[4]} and len-36 bytes of data,
// a reply a 16-byte header {u32 len; s32 errno; s64 ret} and len-12 bytes
// of data. shim/luoshim_proto.h is its C twin. A message that does not
// parse closes that connection only; no input reaches a Go panic that
// escapes the connection's goroutine.
//
// Locking: Server.mu guards the connection and pending-fork tables;
// Server.kexecMu serializes kexecs. A connection's goroutine owns its
// conn; the only foreign access to it is closing its socket (net.Conn is
// safe for that).
package serve
