// Package scenario holds targeted checks for bugs of the zoo (mutants/)
// that the lockstep campaign cannot reach: a hostile hand-over, which the
// campaign never produces (a corrupt session block read by the first open
// of /dev/liveupdate), and registration of file handlers concurrent with
// the walks of the handler list, which only the race detector sees.
//
// Each test passes on the reference port and files no report; the mutant
// patches of mutants/ name the test that kills them. The package has no
// non-test code.
package scenario
