// Package liveupdate holds the Go ports of the upstream LUO kselftests
// (tools/testing/selftests/liveupdate/): the single-boot tests of
// liveupdate.c and the two-stage kexec tests (luo_kexec_simple.c,
// luo_multi_session.c, luo_stress_sessions.c, luo_stress_files.c), adapted
// to the reference profile's limits (819 sessions, 128 files per session),
// plus tests of every errno a user can reach and benchmarks. A two-stage
// test runs stage 1, machine.Kexec() and stage 2 in one Go test; a task of
// the old kernel stands in for the selftests' daemon that holds the
// session fds across the reboot.
//
// The package has no code of its own: everything is in its tests, which
// drive the whole stack (machine, kernel, LUO, memfd) through
// userspace/libliveupdate.
package liveupdate
