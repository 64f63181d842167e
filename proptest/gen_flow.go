package proptest

import (
	"encoding/binary"

	"luomodel/model"
)

// liveUpdateStep performs the next syscall (or short group of syscalls)
// of a live update as a VMM does it, read off the model's state: open the
// device, create a session, fill memfds and preserve them, kexec; in the
// new kernel open the device, retrieve the session, retrieve each file and
// read it back, finish. Each step is its own action, so that shrinking can
// drop any of them, and the plan needs no memory of its own: a step undone
// by another action is simply done again.
func liveUpdateStep(c *Ctx) bool {
	s := c.S
	live := liveTasks(s)
	if len(live) == 0 {
		return false
	}
	if s.DeserializeErr != 0 || s.SetupFailed {
		// Every open of /dev/liveupdate fails with EIO (an injected
		// fault failed the deserialization), or there is no
		// /dev/liveupdate (one failed luo_fdt_setup()): user space
		// reboots.
		c.Do(model.Op{Kind: model.OpKexec})
		c.Do(model.Op{Kind: model.OpNewTask})
		c.Do(model.Op{Kind: model.OpNewTask})
		return true
	}
	// The new kernel's side first: pick up what was handed over.
	for _, task := range live {
		for _, sfd := range fdsOf(s, task, sessionFile(s, true)) {
			se := c.sessionOf(task, sfd)
			all := len(se.In) > 0
			for _, f := range se.In {
				if f.Retrieved || f.RetrieveErr != 0 {
					continue // done, or failed for good (M6)
				}
				all = false
				r := c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionRetrieveFD, Buf: model.FDArgBuf(0, f.Token)})
				if r.Errno == 0 {
					mfd := newFD(r)
					c.Do(model.Op{Kind: model.OpLseek, Task: task, FD: mfd, Off: 0, Whence: model.SeekSet})
					c.Do(model.Op{Kind: model.OpRead, Task: task, FD: mfd, N: 6000})
				}
				return true
			}
			if all {
				if chance(c.Src, "close instead of finish", 25) {
					c.Do(model.Op{Kind: model.OpClose, Task: task, FD: sfd})
				} else {
					c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionFinish, Buf: model.FinishArgBuf(0)})
				}
				return true
			}
		}
	}
	devTask, dev, haveDev := deviceHolder(s)
	for _, id := range s.Incoming {
		se := s.Sessions[id]
		if se.Retrieved {
			continue
		}
		if !haveDev {
			if testModuleNeeded(s) {
				return c.loadTestModule(live[0])
			}
			return c.openDevice(live[0])
		}
		c.Do(model.Op{Kind: model.OpIoctl, Task: devTask, FD: dev, Cmd: model.IoctlRetrieveSession, Buf: model.SessionArgBuf(se.Name)})
		return true
	}
	// The old kernel's side: prepare a session and update.
	if !haveDev {
		return c.openDevice(live[0])
	}
	task, sfd, acted := c.outgoingSessionFD(live, devTask, dev)
	if sfd < 0 {
		return acted
	}
	se := c.sessionOf(task, sfd)
	if len(se.Out) > 0 && (len(se.Out) >= 3 || !chance(c.Src, "more files", 65)) {
		c.Do(model.Op{Kind: model.OpKexec})
		c.Do(model.Op{Kind: model.OpNewTask})
		c.Do(model.Op{Kind: model.OpNewTask})
		return true
	}
	free := fdsOf(s, task, func(f *model.File) bool {
		return f.Kind == model.KindMemfd && !s.Preserved[f.Inode]
	})
	if len(free) > 0 {
		mfd := free[0]
		f := s.Files[s.Tasks[task].FDs[mfd]]
		if len(s.Inodes[f.Inode].Data) == 0 {
			c.Do(model.Op{Kind: model.OpWrite, Task: task, FD: mfd, Buf: c.data()})
			return true
		}
		c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionPreserveFD,
			Buf: model.FDArgBuf(int32(mfd), c.freshToken(se))})
		return true
	}
	c.Do(model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "guest"})
	return true
}

// deviceHolder returns the live task holding /dev/liveupdate and its fd.
func deviceHolder(s *model.State) (model.TaskID, int, bool) {
	for _, id := range liveTasks(s) {
		if fds := fdsOf(s, id, kindIs(model.KindDevice)); len(fds) > 0 {
			return id, fds[0], true
		}
	}
	return 0, 0, false
}

// openDevice opens /dev/liveupdate in task; false if it is held by
// another file (an fd of no live task cannot hold it: exit closes all).
func (c *Ctx) openDevice(task model.TaskID) bool {
	if c.S.DevInUse {
		return false
	}
	c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate, Flags: model.ORdwr})
	return true
}

// ensureDevice returns a live task holding /dev/liveupdate open, opening
// it in a live task if no task holds it.
func (c *Ctx) ensureDevice() (model.TaskID, int, bool) {
	if task, fd, ok := deviceHolder(c.S); ok {
		return task, fd, true
	}
	live := liveTasks(c.S)
	if len(live) == 0 || c.S.DevInUse {
		return 0, 0, false
	}
	task := pick(c.Src, "task", live)
	r := c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate, Flags: model.ORdwr})
	if r.Errno != 0 {
		return 0, 0, false
	}
	return task, int(r.Ret), true
}

// newFD returns the fd a successful fd-returning ioctl wrote back.
func newFD(r model.Result) int { return int(int32(binary.LittleEndian.Uint32(r.Data[4:]))) }

// outgoingSessionFD returns the first of live's fds on an outgoing session,
// in task order. Without one it creates the first free name of
// SessionNames through the device dev of devTask and returns sfd -1 with
// acted true, or with every name taken sfd -1 and acted false.
func (c *Ctx) outgoingSessionFD(live []model.TaskID, devTask model.TaskID, dev int) (task model.TaskID, sfd int, acted bool) {
	s := c.S
	for _, t := range live {
		if fds := fdsOf(s, t, sessionFile(s, false)); len(fds) > 0 {
			return t, fds[0], false
		}
	}
	for _, name := range SessionNames {
		if s.FindOutgoing(name) == nil {
			c.Do(model.Op{Kind: model.OpIoctl, Task: devTask, FD: dev, Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf(name)})
			return 0, -1, true
		}
	}
	return 0, -1, false
}
