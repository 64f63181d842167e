package vfs

import (
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestFDTableAgainstModel drives an FDTable with random operations and
// compares every result with a map-based model of files_struct: lowest
// free fd, the limit, reserved-but-uninstalled fds, close-on-exec, and
// the reference count of every file; RLIMIT_NOFILE changes (across the
// array's growth), F_DUPFD, fork (dup_fd) and exec (do_close_on_exec).
func TestFDTableAgainstModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		v := newTestVFS(t)
		limit := rapid.IntRange(1, 80).Draw(rt, "limit")
		fds := v.NewFDTable(limit)
		defer fds.CloseAll()

		type slot struct {
			file    *File // nil: reserved, not installed
			cloexec bool
		}
		model := map[int]slot{}
		// stale is the close-on-exec bit a freed number keeps until it
		// is handed out again (__put_unused_fd() leaves it).
		stale := map[int]bool{}
		free := func(fd int) {
			stale[fd] = model[fd].cloexec
			delete(model, fd)
		}
		refs := map[*File]int64{}
		const span = 140 // every fd a drawn limit allows, and a few more
		lowestFrom := func(from int) int {
			for fd := from; fd < limit; fd++ {
				if _, used := model[fd]; !used {
					return fd
				}
			}
			return -1
		}
		lowest := func() int { return lowestFrom(0) }
		anyFD := rapid.IntRange(-1, span)
		installed := func() []int {
			var fds []int
			for fd, s := range model {
				if s.file != nil {
					fds = append(fds, fd)
				}
			}
			slices.Sort(fds)
			return fds
		}

		rt.Repeat(map[string]func(*rapid.T){
			"reserve": func(rt *rapid.T) {
				cloexec := rapid.Bool().Draw(rt, "cloexec")
				flags := 0
				if cloexec {
					flags = syscall.O_CLOEXEC
				}
				fd, err := fds.GetUnusedFD(flags)
				want := lowest()
				if want < 0 {
					require.ErrorIs(rt, err, syscall.EMFILE)
					return
				}
				require.NoError(rt, err)
				require.Equal(rt, want, fd)
				model[fd] = slot{cloexec: cloexec}
			},
			"install": func(rt *rapid.T) {
				var reserved []int
				for fd, s := range model {
					if s.file == nil {
						reserved = append(reserved, fd)
					}
				}
				if len(reserved) == 0 {
					rt.Skip("nothing reserved")
				}
				slices.Sort(reserved)
				fd := rapid.SampledFrom(reserved).Draw(rt, "fd")
				f := v.NewFile("f", syscall.O_RDWR, NoFileOperations{}, nil, nil)
				fds.Install(fd, f)
				model[fd] = slot{file: f, cloexec: model[fd].cloexec}
				refs[f] = 1
			},
			"unreserve": func(rt *rapid.T) {
				for fd, s := range model {
					if s.file == nil {
						fds.PutUnusedFD(fd)
						free(fd)
						return
					}
				}
				rt.Skip("nothing reserved")
			},
			"close": func(rt *rapid.T) {
				fd := anyFD.Draw(rt, "fd")
				err := fds.Close(fd)
				s, ok := model[fd]
				if !ok || s.file == nil {
					require.ErrorIs(rt, err, syscall.EBADF)
					return
				}
				require.NoError(rt, err)
				free(fd)
				refs[s.file]--
			},
			"dup": func(rt *rapid.T) {
				fd := anyFD.Draw(rt, "fd")
				nfd, err := fds.Dup(fd)
				s, ok := model[fd]
				switch {
				case !ok || s.file == nil:
					require.ErrorIs(rt, err, syscall.EBADF)
				case lowest() < 0:
					require.ErrorIs(rt, err, syscall.EMFILE)
				default:
					require.NoError(rt, err)
					require.Equal(rt, lowest(), nfd)
					model[nfd] = slot{file: s.file}
					refs[s.file]++
				}
			},
			"dupfrom": func(rt *rapid.T) {
				inst := installed()
				if len(inst) == 0 {
					rt.Skip("nothing installed")
				}
				src := model[rapid.SampledFrom(inst).Draw(rt, "src")].file
				from := anyFD.Draw(rt, "from")
				cloexec := rapid.Bool().Draw(rt, "cloexec")
				flags := 0
				if cloexec {
					flags = syscall.O_CLOEXEC
				}
				nfd, err := fds.DupFrom(src, from, flags)
				switch want := lowestFrom(max(from, 0)); {
				case from < 0 || from >= limit:
					require.ErrorIs(rt, err, syscall.EINVAL)
				case want < 0:
					require.ErrorIs(rt, err, syscall.EMFILE)
				default:
					require.NoError(rt, err)
					require.Equal(rt, want, nfd)
					model[nfd] = slot{file: src, cloexec: cloexec}
					refs[src]++
				}
			},
			"setlimit": func(rt *rapid.T) {
				limit = rapid.IntRange(0, span-10).Draw(rt, "limit")
				fds.SetLimit(limit)
				require.Equal(rt, limit, fds.Limit())
			},
			"exec": func(rt *rapid.T) {
				ctx := &Context{FDs: fds}
				fds.CloseOnExec(ctx)
				clear(stale) // the bits go a word at a time
				for fd, s := range model {
					switch {
					case !s.cloexec:
					case s.file == nil:
						model[fd] = slot{} // stays reserved, bit cleared
					default:
						delete(model, fd)
						refs[s.file]--
					}
				}
				ctx.TaskWorkRun()
			},
			"fork": func(rt *rapid.T) {
				child := fds.Fork()
				require.Equal(rt, limit, child.Limit())
				inst := installed()
				got := child.FDs()
				if len(inst) == 0 {
					require.Empty(rt, got)
				} else {
					require.Equal(rt, inst, got)
				}
				for fd := range span {
					s, ok := model[fd]
					require.Equal(rt, ok && s.file != nil && s.cloexec, child.IsCloseOnExec(fd), "child fd %d", fd)
				}
				extra := map[*File]int64{}
				for _, fd := range inst {
					extra[model[fd].file]++
				}
				for f, n := range extra {
					require.Equal(rt, refs[f]+n, f.Count(), "the child holds a reference per fd")
				}
				child.CloseAll()
			},
			"get": func(rt *rapid.T) {
				fd := anyFD.Draw(rt, "fd")
				f, err := fds.Get(fd)
				s, ok := model[fd]
				if !ok || s.file == nil {
					require.ErrorIs(rt, err, syscall.EBADF)
					return
				}
				require.NoError(rt, err)
				require.Same(rt, s.file, f)
				f.Put()
			},
			"": func(rt *rapid.T) {
				for fd := range span {
					s, ok := model[fd]
					require.Equal(rt, ok && s.cloexec || !ok && stale[fd], fds.IsCloseOnExec(fd), "fd %d", fd)
				}
				got := fds.FDs()
				if inst := installed(); len(inst) == 0 {
					require.Empty(rt, got)
				} else {
					require.Equal(rt, inst, got)
				}
				for f, n := range refs {
					require.Equal(rt, n, f.Count())
					require.Equal(rt, n == 0, f.Released())
				}
			},
		})
		for fd, s := range model {
			if s.file == nil {
				fds.PutUnusedFD(fd)
			}
		}
	})
}
