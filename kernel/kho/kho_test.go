package kho_test

import (
	"cmp"
	"encoding/binary"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/mm"
	"luomodel/machine"
)

// recorder collects reports instead of failing the test.
type recorder struct {
	mu   sync.Mutex
	reps []*bug.Report
}

func (r *recorder) handle(rep *bug.Report) {
	r.mu.Lock()
	r.reps = append(r.reps, rep)
	r.mu.Unlock()
}

func (r *recorder) take() []*bug.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reps
	r.reps = nil
	return out
}

func (r *recorder) kinds() []bug.Kind {
	var ks []bug.Kind
	for _, rep := range r.take() {
		ks = append(ks, rep.Kind)
	}
	return ks
}

func newMachine(t testing.TB, mib int, h bug.Handler) *machine.Machine {
	t.Helper()
	if h == nil {
		h = failOnReport(t)
	}
	m, err := machine.New(machine.Config{MemoryMiB: mib, Report: h})
	require.NoError(t, err)
	return m
}

func TestAllocPreserveEdgeCases(t *testing.T) {
	m := newMachine(t, 32, nil)
	kh := m.Kernel().KHO()
	mmu := m.Kernel().MM()

	_, err := kh.AllocPreserve(0)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = kh.AllocPreserve(mm.PageSize<<kho.MaxPageOrder + 1)
	require.ErrorIs(t, err, syscall.E2BIG)
	_, err = kh.AllocPreserve(1 << 62)
	require.ErrorIs(t, err, syscall.E2BIG)

	for _, c := range []struct {
		size  uint64
		order uint
	}{{1, 0}, {mm.PageSize, 0}, {mm.PageSize + 1, 1}, {5 * mm.PageSize, 3}, {mm.PageSize << kho.MaxPageOrder, kho.MaxPageOrder}} {
		pa, err := kh.AllocPreserve(c.size)
		require.NoError(t, err, "size %d", c.size)
		require.Zero(t, uint64(pa)%(mm.PageSize<<c.order), "aligned to its order")
		require.True(t, kh.IsPreserved(pa, c.order), "size %d preserved as order %d", c.size, c.order)
		got := make([]byte, mm.PageSize<<c.order)
		require.NoError(t, mmu.Read(pa, got))
		require.Equal(t, make([]byte, len(got)), got, "zeroed")
		kh.UnpreserveFree(pa)
		require.False(t, kh.IsPreserved(pa, c.order))
		require.Equal(t, mm.PageFree, mmu.PageState(pa))
	}
	kh.UnpreserveFree(0)
	kh.RestoreFree(0)

	// Out of memory: 4 MiB blocks until ENOMEM.
	var pas []mm.PhysAddr
	for {
		pa, err := kh.AllocPreserve(mm.PageSize << kho.MaxPageOrder)
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOMEM)
			break
		}
		pas = append(pas, pa)
	}
	require.NotEmpty(t, pas)
	for _, pa := range pas {
		kh.UnpreserveFree(pa)
	}
}

func TestRestoreErrors(t *testing.T) {
	rec := &recorder{}
	m := newMachine(t, 32, rec.handle)
	k := m.Kernel()
	pa, err := k.KHO().AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	big, err := k.KHO().AllocPreserve(4 * mm.PageSize)
	require.NoError(t, err)
	plain, err := k.MM().FolioAlloc(0, true)
	require.NoError(t, err)
	require.NoError(t, m.Kexec())
	require.Empty(t, rec.take())

	kh := m.Kernel().KHO()
	// Never preserved.
	_, err = kh.RestoreFolio(plain.PA())
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Equal(t, []bug.Kind{bug.KindWarn}, rec.kinds())
	// Not the head of the block, unaligned.
	_, err = kh.RestoreFolio(big + mm.PageSize)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = kh.RestoreFolio(pa + 8)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Equal(t, []bug.Kind{bug.KindWarn, bug.KindWarn}, rec.kinds())

	f, err := kh.RestoreFolio(pa)
	require.NoError(t, err)
	require.Equal(t, uint(0), f.Order())
	// Restored twice.
	_, err = kh.RestoreFolio(pa)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Equal(t, []bug.Kind{bug.KindWarn}, rec.kinds())
	f.Put()

	// restore_free of something restored or never preserved WARNs.
	kh.RestoreFree(big)
	require.Empty(t, rec.take())
	require.Equal(t, mm.PageFree, m.Kernel().MM().PageState(big))
	kh.RestoreFree(big)
	require.Equal(t, []bug.Kind{bug.KindWarn}, rec.kinds())

	// Unpreserving a folio that was never preserved WARNs too.
	g, err := m.Kernel().MM().FolioAlloc(3, false)
	require.NoError(t, err)
	kh.UnpreserveFolio(g)
	require.Equal(t, []bug.Kind{bug.KindWarn}, rec.kinds())
	g.Put()
}

func TestRestorePagesAndSplit(t *testing.T) {
	rec := &recorder{}
	m := newMachine(t, 32, rec.handle)
	k := m.Kernel()
	// 7 pages at an 8-aligned block: split into 4+2+1 as upstream.
	base, err := k.MM().AllocPages(3, true)
	require.NoError(t, err)
	require.NoError(t, k.KHO().PreservePages(base, 7))
	require.True(t, k.KHO().IsPreserved(base, 2))
	require.True(t, k.KHO().IsPreserved(base+4*mm.PageSize, 1))
	require.True(t, k.KHO().IsPreserved(base+6*mm.PageSize, 0))
	for i := range uint64(7) {
		require.NoError(t, k.MM().Write(base+mm.PhysAddr(i*mm.PageSize), []byte{byte(i + 1)}))
	}
	// A second range, unpreserved again before kexec.
	other, err := k.MM().AllocPages(1, false)
	require.NoError(t, err)
	require.NoError(t, k.KHO().PreservePages(other, 2))
	k.KHO().UnpreservePages(other, 2)
	require.NoError(t, m.Kexec())

	kh := m.Kernel().KHO()
	require.NoError(t, kh.RestorePages(base, 7))
	for i := range uint64(7) {
		pa := base + mm.PhysAddr(i*mm.PageSize)
		var b [1]byte
		require.NoError(t, m.Kernel().MM().Read(pa, b[:]))
		require.Equal(t, byte(i+1), b[0])
		m.Kernel().MM().FreePages(pa, 0) // order-0 pages, freed one by one
	}
	require.Empty(t, rec.take())
	require.ErrorIs(t, kh.RestorePages(other, 2), syscall.EINVAL)
	require.Equal(t, []bug.Kind{bug.KindWarn}, rec.kinds())
	require.Equal(t, mm.PageFree, m.Kernel().MM().PageState(other))
}

func TestSubtrees(t *testing.T) {
	m := newMachine(t, 32, nil)
	kh := m.Kernel().KHO()
	_, err := kh.RetrieveSubtree("LUO")
	require.ErrorIs(t, err, syscall.ENOENT, "cold boot")

	a, err := kh.AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	b, err := kh.AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	require.NoError(t, kh.AddSubtree("a", a))
	require.ErrorIs(t, kh.AddSubtree("a", b), syscall.EEXIST)
	require.ErrorIs(t, kh.AddSubtree("", b), syscall.EINVAL)
	require.ErrorIs(t, kh.AddSubtree("x/y", b), syscall.EINVAL)
	require.NoError(t, kh.AddSubtree("b", b))
	kh.RemoveSubtree(b)
	kh.RemoveSubtree(b) // absent: nothing happens
	require.NoError(t, kh.AddSubtree("b2", b))

	// Fill the root page: ENOMEM, and the tree is unchanged.
	n := 0
	for ; ; n++ {
		err := kh.AddSubtree("subtree-with-a-long-name-"+string(rune('A'+n%26))+string(rune('a'+n/26)), a)
		if err != nil {
			require.ErrorIs(t, err, syscall.ENOMEM)
			break
		}
	}
	require.Greater(t, n, 10)

	require.NoError(t, m.Kexec())
	kh = m.Kernel().KHO()
	got, err := kh.RetrieveSubtree("a")
	require.NoError(t, err)
	require.Equal(t, a, got)
	got, err = kh.RetrieveSubtree("b2")
	require.NoError(t, err)
	require.Equal(t, b, got)
	_, err = kh.RetrieveSubtree("b")
	require.ErrorIs(t, err, syscall.ENOENT)
	_, err = kh.RetrieveSubtree("nope")
	require.ErrorIs(t, err, syscall.ENOENT)
	kh.RestoreFree(a)
	kh.RestoreFree(b)
}

func TestVmallocRoundTrip(t *testing.T) {
	rec := &recorder{}
	m := newMachine(t, 32, rec.handle)
	k := m.Kernel()
	// More pages than one chunk lists (511).
	const size = 600*mm.PageSize + 123
	a, err := kho.NewVmArea(k.MM(), size)
	require.NoError(t, err)
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i / 7)
	}
	require.NoError(t, a.WriteAt(0, data))
	v, err := k.KHO().PreserveVmalloc(a)
	require.NoError(t, err)
	require.Equal(t, uint32(601), v.TotalPages)
	var desc [kho.VmallocSize]byte
	v.Encode(desc[:])
	require.Equal(t, v, kho.DecodeVmalloc(desc[:]))

	// A second area, preserved and unpreserved: nothing of it survives.
	b, err := kho.NewVmArea(k.MM(), 3*mm.PageSize)
	require.NoError(t, err)
	vb, err := k.KHO().PreserveVmalloc(b)
	require.NoError(t, err)
	k.KHO().UnpreserveVmalloc(vb)
	b.Free()
	free := k.MM().Stats().FreePages

	require.NoError(t, m.Kexec())
	require.Empty(t, rec.take())
	kh := m.Kernel().KHO()
	r, err := kh.RestoreVmalloc(v)
	require.NoError(t, err)
	got := make([]byte, size)
	require.NoError(t, r.ReadAt(0, got))
	require.Equal(t, data, got)
	r.Free()

	// Restoring again, or the unpreserved one, fails.
	_, err = kh.RestoreVmalloc(v)
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = kh.RestoreVmalloc(vb)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.NotEmpty(t, rec.take())
	// Bad descriptors.
	_, err = kh.RestoreVmalloc(kho.Vmalloc{First: v.First, TotalPages: 1, Flags: 0x80})
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = kh.RestoreVmalloc(kho.Vmalloc{First: v.First, TotalPages: 1, Order: 11})
	require.ErrorIs(t, err, syscall.EINVAL)
	_ = free
}

func TestVmallocCountMismatch(t *testing.T) {
	rec := &recorder{}
	m := newMachine(t, 32, rec.handle)
	k := m.Kernel()
	a, err := kho.NewVmArea(k.MM(), 5*mm.PageSize)
	require.NoError(t, err)
	v, err := k.KHO().PreserveVmalloc(a)
	require.NoError(t, err)
	require.NoError(t, m.Kexec())
	before := m.Kernel().MM().Stats()
	bad := v
	bad.TotalPages = 4
	_, err = m.Kernel().KHO().RestoreVmalloc(bad)
	require.ErrorIs(t, err, syscall.EINVAL)
	// The pages restored before the failure were freed again, not leaked.
	after := m.Kernel().MM().Stats()
	require.Equal(t, before.AllocatedPages, after.AllocatedPages)
}

// TestUnpreservedIsPoisoned: data in a folio that was not preserved reads
// as poison after kexec, and the new kernel's access to it through MM is a
// KASAN report.
func TestUnpreservedIsPoisoned(t *testing.T) {
	rec := &recorder{}
	m := newMachine(t, 32, rec.handle)
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(0, false)
	require.NoError(t, err)
	secret := []byte("private data of the old kernel")
	require.NoError(t, f.Write(0, secret))
	kept, err := k.KHO().AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	require.NoError(t, k.MM().Write(kept, secret))
	require.NoError(t, m.Kexec())
	require.Empty(t, rec.take())

	raw := make([]byte, len(secret))
	require.NoError(t, m.RAM().ReadRaw(f.PA(), raw))
	for _, c := range raw {
		require.Equal(t, byte(mm.PoisonByte), c)
	}
	require.NoError(t, m.RAM().ReadRaw(kept, raw))
	require.Equal(t, secret, raw)

	err = m.Kernel().MM().Read(f.PA(), raw)
	require.ErrorIs(t, err, syscall.EFAULT)
	require.Equal(t, []bug.Kind{bug.KindKASAN}, rec.kinds())
	// Preserved but not restored memory is reserved: also a KASAN report.
	require.ErrorIs(t, m.Kernel().MM().Read(kept, raw), syscall.EFAULT)
	require.Equal(t, []bug.Kind{bug.KindKASAN}, rec.kinds())
}

// TestPrepareKexecFailureKeepsKernel: when kho_finalize() cannot get memory
// for the map, Kexec fails and the old kernel keeps running; once memory is
// back the kexec succeeds.
func TestPrepareKexecFailureKeepsKernel(t *testing.T) {
	m := newMachine(t, 16, nil)
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(0, true)
	require.NoError(t, err)
	require.NoError(t, k.KHO().PreserveFolio(f))
	var hog []mm.PhysAddr
	for {
		pa, err := k.MM().AllocPages(0, false)
		if err != nil {
			break
		}
		hog = append(hog, pa)
	}
	err = m.Kexec()
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.Same(t, k, m.Kernel())
	require.False(t, k.Dead())
	require.Nil(t, m.Halted())
	for _, pa := range hog {
		k.MM().FreePages(pa, 0)
	}
	require.NoError(t, m.Kexec())
	require.True(t, k.Dead())
	g, err := m.Kernel().KHO().RestoreFolio(f.PA())
	require.NoError(t, err)
	g.Put()
}

// TestFinalizeTwice: a second kho_finalize() replaces the map and frees
// the first one.
func TestFinalizeTwice(t *testing.T) {
	m := newMachine(t, 16, nil)
	k := m.Kernel()
	require.NoError(t, k.KHO().Finalize())
	used := k.MM().Stats().AllocatedPages
	require.NoError(t, k.KHO().Finalize())
	require.Equal(t, used, k.MM().Stats().AllocatedPages)
	require.True(t, k.KHO().Finalized())
	require.NoError(t, m.Kexec())
}

// TestKHODisabled: with kho=off nothing is handed over and the API says
// so.
func TestKHODisabled(t *testing.T) {
	m, err := machine.New(machine.Config{MemoryMiB: 16, KHODisabled: true, Report: failOnReport(t)})
	require.NoError(t, err)
	kh := m.Kernel().KHO()
	require.False(t, kh.IsEnabled())
	require.ErrorIs(t, kh.Finalize(), syscall.EOPNOTSUPP)
	require.ErrorIs(t, kh.AddSubtree("x", 0x1000), syscall.EOPNOTSUPP)
	pa, err := kh.AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	require.NoError(t, m.Kexec())
	require.Equal(t, mm.PhysAddr(0), m.LastHandover())
	_, err = m.Kernel().KHO().RetrieveSubtree("x")
	require.ErrorIs(t, err, syscall.ENOENT)
	require.Equal(t, mm.PageFree, m.Kernel().MM().PageState(pa))
}

// prepared boots a machine, preserves a folio and a subtree, prepares the
// kexec and returns the RAM and the hand-over descriptor, for tests that
// corrupt the hand-over before booting the next kernel themselves.
func prepared(t testing.TB) (*machine.Machine, mm.PhysAddr) {
	m := newMachine(t, 16, nil)
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(1, true)
	require.NoError(t, err)
	require.NoError(t, k.KHO().PreserveFolio(f))
	sub, err := k.KHO().AllocPreserve(mm.PageSize)
	require.NoError(t, err)
	require.NoError(t, k.KHO().AddSubtree("sub", sub))
	pa, err := k.PrepareKexec()
	require.NoError(t, err)
	k.MarkDead()
	return m, pa
}

func bootOn(t testing.TB, m *machine.Machine, pa mm.PhysAddr) (*kernel.Kernel, error) {
	rep := bug.NewReporter(failOnReport(t))
	return kernel.Boot(kernel.BootParams{RAM: m.RAM(), Cmdline: m.Cmdline(), Handover: pa, Reporter: rep, Lockdep: true})
}

func readU64(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) uint64 {
	var b [8]byte
	require.NoError(t, ram.ReadRaw(pa, b[:]))
	return binary.LittleEndian.Uint64(b[:])
}

func writeU64(t testing.TB, ram *mm.RAM, pa mm.PhysAddr, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	require.NoError(t, ram.WriteRaw(pa, b[:]))
}

// memMapOf returns the PA of the preserved-memory map of the root FDT at
// pa and the RAM address of the property's value.
func memMapOf(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) (mm.PhysAddr, mm.PhysAddr) {
	blob := make([]byte, mm.PageSize)
	require.NoError(t, ram.ReadRaw(pa, blob))
	f, err := fdt.Open(blob)
	require.NoError(t, err)
	v, err := f.GetProp(0, kho.PropPreservedMemoryMap)
	require.NoError(t, err)
	// The value aliases blob: find its offset.
	off := -1
	for i := 0; i+8 <= len(blob); i++ {
		if &blob[i] == &v[0] {
			off = i
			break
		}
	}
	require.GreaterOrEqual(t, off, 0)
	return mm.PhysAddr(binary.LittleEndian.Uint64(v)), pa + mm.PhysAddr(off)
}

// TestCorruptHandover: every kind of corrupt hand-over data fails the next
// boot with EINVAL, never a panic or a hang.
func TestCorruptHandover(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr
	}{
		{"fdt-magic", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			require.NoError(t, ram.WriteRaw(pa, []byte{0xde, 0xad}))
			return pa
		}},
		{"fdt-poisoned", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			require.NoError(t, ram.Poison(pa.PFN()))
			return pa
		}},
		{"fdt-compatible", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			blob := make([]byte, mm.PageSize)
			require.NoError(t, ram.ReadRaw(pa, blob))
			i := indexOf(blob, []byte("kho-v1"))
			require.GreaterOrEqual(t, i, 0)
			require.NoError(t, ram.WriteRaw(pa+mm.PhysAddr(i), []byte("kho-v9")))
			return pa
		}},
		{"fdt-outside-ram", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			return mm.PhysAddr(ram.Size() - 8)
		}},
		{"fdt-wild", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			return 1 << 62
		}},
		{"map-zero", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			_, at := memMapOf(t, ram, pa)
			writeU64(t, ram, at, 0)
			return pa
		}},
		{"map-outside-ram", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			_, at := memMapOf(t, ram, pa)
			writeU64(t, ram, at, ram.Size())
			return pa
		}},
		{"map-unaligned", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, at := memMapOf(t, ram, pa)
			writeU64(t, ram, at, uint64(mp)+8)
			return pa
		}},
		{"chain-loop", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			last := mp
			for next := readU64(t, ram, last); next != 0; next = readU64(t, ram, last) {
				last = mm.PhysAddr(next)
			}
			writeU64(t, ram, last, uint64(mp))
			return pa
		}},
		{"chain-self-loop", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			writeU64(t, ram, mp, uint64(mp))
			return pa
		}},
		{"chain-next-wild", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			writeU64(t, ram, mp, 0xffff_ffff_ffff_f000)
			return pa
		}},
		{"chunk-order", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			require.NoError(t, ram.WriteRaw(mp+kho.ChunkHdrOffOrder, []byte{40, 0, 0, 0}))
			return pa
		}},
		{"chunk-num-elms", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			require.NoError(t, ram.WriteRaw(mp+kho.ChunkHdrOffNumElms, []byte{0xff, 0xff, 0xff, 0xff}))
			return pa
		}},
		{"bitmap-outside-ram", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			writeU64(t, ram, mp+kho.ChunkHdrSize+kho.BitmapPtrOffBitmap, ram.Size()+mm.PageSize)
			return pa
		}},
		{"phys-start-outside-ram", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			writeU64(t, ram, mp+kho.ChunkHdrSize+kho.BitmapPtrOffPhysStart, 1<<40)
			return pa
		}},
		{"bitmap-all-ones", func(t testing.TB, ram *mm.RAM, pa mm.PhysAddr) mm.PhysAddr {
			mp, _ := memMapOf(t, ram, pa)
			bm := mm.PhysAddr(readU64(t, ram, mp+kho.ChunkHdrSize+kho.BitmapPtrOffBitmap))
			ones := make([]byte, mm.PageSize)
			for i := range ones {
				ones[i] = 0xff
			}
			require.NoError(t, ram.WriteRaw(bm, ones))
			return pa
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, pa := prepared(t)
			bad := c.corrupt(t, m.RAM(), pa)
			k, err := bootOn(t, m, bad)
			require.ErrorIs(t, err, syscall.EINVAL)
			require.Nil(t, k)
		})
	}
}

func indexOf(b, sub []byte) int {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	return -1
}

// TestCorruptHandoverHaltsMachine: a kexec whose next kernel cannot parse
// the hand-over halts the machine (a panic in Linux).
func TestCorruptHandoverHaltsMachine(t *testing.T) {
	m := newMachine(t, 16, nil)
	k := m.Kernel()
	// Preserve one page twice, as two overlapping blocks.
	pa, err := k.MM().AllocPages(1, true)
	require.NoError(t, err)
	require.NoError(t, k.KHO().PreservePages(pa, 2))
	require.NoError(t, k.KHO().PreservePages(pa, 1))
	err = m.Kexec()
	require.ErrorIs(t, err, machine.ErrKernelPanic)
	require.ErrorIs(t, err, syscall.EINVAL)
	require.Nil(t, m.Kernel())
	require.True(t, k.Dead())
	require.ErrorIs(t, m.Kexec(), machine.ErrHalted)
}

// TestMalformedSubtreeProperty: a subtree whose "fdt" is not 8 bytes is
// EINVAL for kho_retrieve_subtree().
func TestMalformedSubtreeProperty(t *testing.T) {
	m, pa := prepared(t)
	mp, _ := memMapOf(t, m.RAM(), pa)
	buf := make([]byte, mm.PageSize)
	w, err := fdt.Create(buf)
	require.NoError(t, err)
	for _, step := range []func() error{
		w.FinishReservemap,
		func() error { return w.BeginNode("") },
		func() error { return w.PropertyString("compatible", kho.FDTCompatible) },
		func() error { return w.PropertyU64LE(kho.PropPreservedMemoryMap, uint64(mp)) },
		func() error { return w.BeginNode("sub") },
		func() error { return w.Property(kho.PropSubFDT, []byte{1, 2, 3, 4}) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	} {
		require.NoError(t, step())
	}
	require.NoError(t, m.RAM().WriteRaw(pa, buf))
	k, err := bootOn(t, m, pa)
	require.NoError(t, err)
	_, err = k.KHO().RetrieveSubtree("sub")
	require.ErrorIs(t, err, syscall.EINVAL)
	_, err = k.KHO().RetrieveSubtree("other")
	require.ErrorIs(t, err, syscall.ENOENT)
}

// TestAccountUnrestored: Account lists every preserved block (bits in
// several words and orders) and the incoming blocks as restored or not;
// Unrestored agrees with it block by block.
func TestAccountUnrestored(t *testing.T) {
	m := newMachine(t, 32, nil)
	k := m.Kernel()
	var want []kho.Block
	for _, order := range []uint{0, 0, 1, 3} {
		pa, err := k.KHO().AllocPreserve(mm.PageSize << order)
		require.NoError(t, err)
		want = append(want, kho.Block{PA: pa, Order: order})
	}
	a := k.KHO().Account()
	for _, b := range want {
		require.Contains(t, a.Preserved, b)
	}
	require.True(t, slices.IsSortedFunc(a.Preserved, func(x, y kho.Block) int { return cmp.Compare(x.PA, y.PA) }))
	require.False(t, k.KHO().Unrestored(want[0].PA), "a cold-booted kernel has no incoming blocks")
	require.NoError(t, m.Kexec())

	kh := m.Kernel().KHO()
	f, err := kh.RestoreFolio(want[1].PA)
	require.NoError(t, err)
	defer f.Put()
	a = kh.Account()
	require.Contains(t, a.Restored, want[1])
	for _, b := range want {
		require.Equal(t, slices.Contains(a.Unrestored, b), kh.Unrestored(b.PA), "block %+v", b)
		require.Equal(t, b != want[1], kh.Unrestored(b.PA), "block %+v", b)
	}
	require.False(t, kh.Unrestored(want[3].PA+mm.PageSize), "not a block's head")
}
