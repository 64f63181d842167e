package vfs

// Context carries what a file operation needs from the calling task: its fd
// table (for ioctls that install fds) and the task's pending fput work.
// Subsystems never see package kernel. A Context belongs to one syscall of
// one task and is not shared between goroutines.
type Context struct {
	FDs *FDTable

	// delayed holds files whose last reference this task dropped with
	// Fput; their release runs at TaskWorkRun. Owned by the syscall.
	delayed []*File
}

// Fput ports fs/file_table.c:fput() called from a task: the reference is dropped now, but
// if it was the last one the release runs only when the syscall returns
// to user space (task_work, ____fput()), so it runs with no lock held even
// if the caller holds some now. A nil Context releases at once.
func (c *Context) Fput(f *File) {
	if !f.put() {
		return
	}
	if c == nil {
		f.release()
		return
	}
	c.delayed = append(c.delayed, f)
}

// TaskWorkRun ports kernel/task_work.c:task_work_run() for delayed fputs: run the releases
// Fput deferred, including any that those releases defer in turn. The
// syscall layer calls it just before returning to user space.
func (c *Context) TaskWorkRun() {
	for len(c.delayed) > 0 {
		fs := c.delayed
		c.delayed = nil
		for _, f := range fs {
			f.release()
		}
	}
}
