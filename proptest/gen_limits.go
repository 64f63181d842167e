package proptest

import (
	"strconv"

	"luomodel/model"
)

// The limit actions drive one resource to its limit in a single step, so
// that ENOMEM (819 outgoing sessions), ENOSPC (128 files per session) and
// EMFILE (1024 fds per task) are reached in every campaign, and usually
// give the resource back so that later steps stay cheap.

// fillSessions creates sessions until the outgoing list is full and one
// more fails with ENOMEM, then usually closes them again.
func fillSessions(c *Ctx) bool {
	task, dev, ok := c.ensureDevice()
	if !ok {
		return false
	}
	// Drawn 0 (where shrinking leads) creates a single session.
	limit := len(c.S.Outgoing) + 1
	if c.Src.Intn(100, "to the limit") >= 5 {
		limit = model.SessionMax
	}
	var made []int
	// The names taken before the loop (the loop's own are s0, s1, ... in
	// order, never drawn twice): one pass instead of a search per name.
	taken := map[string]bool{}
	for _, id := range c.S.Outgoing {
		taken[c.S.Sessions[id].Name] = true
	}
	for i := 0; len(c.S.Outgoing) < min(limit, model.SessionMax); i++ {
		name := "s" + strconv.Itoa(i)
		if taken[name] {
			continue
		}
		r := c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: dev, Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf(name)})
		if r.Errno != 0 {
			break // EMFILE: the fd table filled first
		}
		made = append(made, newFD(r))
	}
	if len(c.S.Outgoing) == model.SessionMax {
		c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: dev, Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf("full")})
	}
	if !chance(c.Src, "keep sessions", 20) {
		for _, fd := range made {
			c.Do(model.Op{Kind: model.OpClose, Task: task, FD: fd})
		}
	}
	return true
}

// fillFiles preserves memfds in one outgoing session until it holds 128
// files and one more fails with ENOSPC; the memfds' fds are closed (LUO
// keeps its references).
func fillFiles(c *Ctx) bool {
	task, ok := c.task(sessionFile(c.S, false))
	if !ok || !c.S.Tasks[task].Alive {
		return false
	}
	sfds := fdsOf(c.S, task, sessionFile(c.S, false))
	if len(sfds) == 0 {
		return false
	}
	sfd := pick(c.Src, "session fd", sfds)
	se := c.sessionOf(task, sfd)
	preserve := func(token uint64) (model.Result, bool) {
		r := c.Do(model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "fill"})
		if r.Errno != 0 {
			return r, false
		}
		mfd := int(r.Ret)
		c.Do(model.Op{Kind: model.OpWrite, Task: task, FD: mfd, Buf: []byte{byte(token)}})
		r = c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: sfd, Cmd: model.IoctlSessionPreserveFD,
			Buf: model.FDArgBuf(int32(mfd), token)})
		c.Do(model.Op{Kind: model.OpClose, Task: task, FD: mfd})
		return r, true
	}
	// Drawn 0 (where shrinking leads) preserves a single file.
	limit := len(se.Out) + 1
	if c.Src.Intn(100, "to the limit") >= 5 {
		limit = model.FileMax
	}
	for token := uint64(1000); len(se.Out) < min(limit, model.FileMax); token++ {
		if r, ok := preserve(token); !ok || r.Errno != 0 {
			return true
		}
	}
	if len(se.Out) == model.FileMax {
		preserve(5000)
	}
	return true
}

// fillFDs dups an fd until the task's fd table is full (EMFILE), tries
// the fd-allocating calls there, then usually closes the dups again.
func fillFDs(c *Ctx) bool {
	live := liveTasks(c.S)
	if len(live) == 0 {
		return false
	}
	// Prefer a task that can try RETRIEVE_FD and the device ioctls.
	task := pick(c.Src, "task", live)
	for _, want := range []func(*model.File) bool{sessionFile(c.S, true), kindIs(model.KindDevice)} {
		var with []model.TaskID
		for _, id := range live {
			if len(fdsOf(c.S, id, want)) > 0 {
				with = append(with, id)
			}
		}
		if len(with) > 0 {
			task = pick(c.Src, "task", with)
			break
		}
	}
	if len(c.S.Tasks[task].FDs) == 0 {
		c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevNull, Flags: model.ORdwr})
	}
	any := fdsOf(c.S, task, func(*model.File) bool { return true })
	if len(any) == 0 {
		return true
	}
	src := any[0]
	// Drawn 0 (where shrinking leads) dups once.
	limit := len(c.S.Tasks[task].FDs) + 1
	if c.Src.Intn(100, "to the limit") >= 5 {
		limit = model.NRFileMax
	}
	var dups []int
	for len(c.S.Tasks[task].FDs) < min(limit, model.NRFileMax) {
		r := c.Do(model.Op{Kind: model.OpDup, Task: task, FD: src})
		if r.Errno != 0 {
			break
		}
		dups = append(dups, int(r.Ret))
	}
	// Every fd-allocating call now fails with EMFILE, after its own
	// earlier checks.
	c.Do(model.Op{Kind: model.OpDup, Task: task, FD: src})
	c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevNull, Flags: model.ORdwr})
	c.Do(model.Op{Kind: model.OpMemfdCreate, Task: task, Name: "guest"})
	if devs := fdsOf(c.S, task, kindIs(model.KindDevice)); len(devs) > 0 {
		c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: devs[0], Cmd: model.IoctlCreateSession, Buf: model.SessionArgBuf("a")})
		c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: devs[0], Cmd: model.IoctlRetrieveSession, Buf: model.SessionArgBuf(c.retrieveName())})
	} else if !c.S.DevInUse {
		c.Do(model.Op{Kind: model.OpOpen, Task: task, Path: model.DevLiveUpdate, Flags: model.ORdwr})
	}
	if ins := fdsOf(c.S, task, sessionFile(c.S, true)); len(ins) > 0 {
		se := c.sessionOf(task, ins[0])
		c.Do(model.Op{Kind: model.OpIoctl, Task: task, FD: ins[0], Cmd: model.IoctlSessionRetrieveFD, Buf: model.FDArgBuf(0, c.retrieveToken(se))})
	}
	if !chance(c.Src, "keep fds", 10) {
		for _, fd := range dups {
			c.Do(model.Op{Kind: model.OpClose, Task: task, FD: fd})
		}
	}
	return true
}
