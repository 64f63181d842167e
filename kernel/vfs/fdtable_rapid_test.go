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
// the reference count of every file.
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
		refs := map[*File]int64{}
		lowest := func() int {
			for fd := range limit {
				if _, used := model[fd]; !used {
					return fd
				}
			}
			return -1
		}
		anyFD := rapid.IntRange(-1, limit+1)

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
						delete(model, fd)
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
				delete(model, fd)
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
				var installed []int
				for fd := range limit {
					s, ok := model[fd]
					require.Equal(rt, ok && s.cloexec, fds.IsCloseOnExec(fd), "fd %d", fd)
					if ok && s.file != nil {
						installed = append(installed, fd)
					}
				}
				got := fds.FDs()
				if len(installed) == 0 {
					require.Empty(rt, got)
				} else {
					require.Equal(rt, installed, got)
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
