package liveupdatetest

import (
	"errors"
	"syscall"

	"luomodel/kernel/liveupdate"
	"luomodel/kernel/module"
)

// instance is one load of the module: the objects its init creates and
// its exit destroys. Immutable once init returns.
type instance struct {
	d    *Driver
	mod  *module.Module
	ops  liveupdate.FileOps
	fh   liveupdate.FileHandler
	flbs [NumFLBs]*liveupdate.FLB
	// luo is whether the handler and FLBs are registered (false when LUO
	// is disabled).
	luo bool
}

// moduleInit is the module's init function: register /dev/liveupdate_test,
// the file handler (owned by the module), its NumFLBs FLBs, then load the
// incoming FLB state (FLBGetIncoming and FLBPutIncoming of each, as
// upstream's test module retrieves its FLBs at registration), so that the
// incoming counts are loaded before any file finishes. A disabled LUO
// leaves only the device. A failure unwinds what was done.
func (d *Driver) moduleInit(m *module.Module) error {
	in := &instance{d: d, mod: m}
	in.ops = liveupdate.FileOps{
		CanPreserve: in.canPreserve,
		Preserve:    in.preserve,
		Unpreserve:  in.unpreserve,
		Freeze:      in.freeze,
		Unfreeze:    in.unfreeze,
		Retrieve:    in.retrieve,
		CanFinish:   in.canFinish,
		Finish:      in.finish,
		GetID:       in.getID,
		Owner:       m,
	}
	in.fh = liveupdate.FileHandler{Ops: &in.ops, Compatible: Compatible}
	for i := range in.flbs {
		in.flbs[i] = in.newFLB(i)
	}

	d.mu.Lock()
	if d.inst != nil {
		d.mu.Unlock()
		return syscall.EEXIST
	}
	d.inst = in
	d.mu.Unlock()

	err := in.register()
	if err != nil {
		d.mu.Lock()
		d.inst = nil
		d.mu.Unlock()
		return err
	}
	for _, flb := range in.flbs {
		if !in.luo {
			break
		}
		if _, err := d.luo.FLBGetIncoming(flb); err == nil {
			d.luo.FLBPutIncoming(flb)
		}
	}
	return nil
}

// register is the registration part of moduleInit, unwound on failure.
func (in *instance) register() error {
	d := in.d
	err := d.luo.RegisterFileHandler(&in.fh)
	if errors.Is(err, syscall.EOPNOTSUPP) {
		return nil // no live update: a plain device
	}
	if err != nil {
		return err
	}
	in.luo = true
	for _, flb := range in.flbs {
		if err := d.luo.RegisterFLB(&in.fh, flb); err != nil {
			// Unregistering the handler unregisters its FLBs.
			_ = d.luo.UnregisterFileHandler(&in.fh)
			return err
		}
	}
	return nil
}

// moduleExit is the module's exit function: unregister the handler (and
// with it the FLBs) and the device. delete_module() runs it only when no
// reference is held, so no file uses the handler.
func (d *Driver) moduleExit(m *module.Module) {
	d.mu.Lock()
	in := d.inst
	d.mu.Unlock()
	if in == nil || in.mod != m {
		return
	}
	if in.luo {
		err := d.luo.UnregisterFileHandler(&in.fh)
		d.rep.WarnOn(err != nil, "liveupdate_test: unregistering the handler: %v", err)
	}
	d.mu.Lock()
	d.inst = nil
	d.mu.Unlock()
}
