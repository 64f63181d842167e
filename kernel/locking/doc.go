// Package locking ports the parts of Linux's kernel/locking/ that LUO and
// its substrate use: struct mutex, struct rw_semaphore, lockdep, and the
// scheduling points the controlled scheduler hooks into.
//
// Every lock belongs to a Domain (one per kernel) and, once initialised with
// Init, to a lockdep class named where the lock is declared, e.g.
// "luo_session.mutex". A zero lock that was never Init'ed works but is
// invisible to lockdep.
package locking
