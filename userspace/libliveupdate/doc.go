// Package libliveupdate is the Go version of the upstream LUO selftests'
// helper library (tools/testing/selftests/liveupdate/luo_test_utils.c and
// luo_test_utils.h). It is userspace: it talks to the kernel only through a
// kernel.Task's syscalls, encoding the uapi structs of
// include/uapi/linux/liveupdate.h itself, byte for byte, as a C program
// would. It imports no kernel internals.
//
// Every helper takes the calling task first and returns Linux errnos
// (syscall.Errno), so errors.Is(err, syscall.EEXIST) works.
package libliveupdate
