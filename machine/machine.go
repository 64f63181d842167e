// Package machine is a simulated computer: physical memory and the kernel
// running on it, which can replace itself by kexec with live update.
package machine

import (
	"luomodel/kernel"
	"luomodel/kernel/bug"
)

// Config describes the machine and its kernel command line.
type Config struct {
	// LiveUpdate is "liveupdate=on" on the kernel command line.
	LiveUpdate bool
	// MemoryMiB is simulated physical memory; 0 picks the default.
	MemoryMiB int
	// KHODisabled is "kho=off"; the zero Config has KHO enabled.
	KHODisabled bool
	// Report receives every report (WARN, lockdep, KASAN); nil panics.
	Report bug.Handler
}

// Machine is the simulated computer.
type Machine struct {
	k *kernel.Kernel
}

// New cold-boots the first kernel.
func New(cfg Config) (*Machine, error) { return &Machine{}, nil }

// Kernel returns the running kernel.
func (m *Machine) Kernel() *kernel.Kernel { return m.k }

// Kexec ports reboot(LINUX_REBOOT_CMD_KEXEC) with live update; on error the
// current kernel keeps running.
func (m *Machine) Kexec() error { return nil }
