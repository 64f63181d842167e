package liveupdate

// This file is not a port: it is the checkers' read-only access to the
// handler registry (the conformance kit, luotest, wraps a registered
// handler's callbacks to watch LUO's calls into it).

// RegisteredHandler returns the registered file handler whose compatible
// string is compatible, nil if there is none.
//
// Takes luo_register_rwlock for read.
func (l *LUO) RegisteredHandler(compatible string) *FileHandler {
	if !l.Enabled() {
		return nil
	}
	l.registerRwsem.DownRead()
	defer l.registerRwsem.UpRead()
	for _, r := range l.handlers {
		if r.fh.Compatible == compatible {
			return r.fh
		}
	}
	return nil
}
