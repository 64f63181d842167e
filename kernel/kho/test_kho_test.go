package kho_test

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel"
	"luomodel/kernel/bug"
	"luomodel/kernel/kho"
	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/mm"
	"luomodel/machine"
)

// This file ports lib/test_kho.c: random folios of random orders filled
// with random data, preserved along with a vmalloc'ed array describing
// them and a "kho_test" subtree recording their count and checksum; after
// kexec every folio is restored and the checksum compared.

const (
	khoTestMagic  = 0x4b484f21 // KHO_TEST_MAGIC, "KHO!"
	khoTestFDT    = "kho_test"
	khoTestCompat = "kho-test-v1"
)

// khoTestState is struct kho_test_state.
type khoTestState struct {
	folios      []*mm.Folio
	foliosInfo  *kho.VmArea
	foliosPhys  kho.Vmalloc
	fdt         *mm.Folio
	csum        uint32
	nrPreserved int
}

// failOnReport returns a report handler that fails t.
func failOnReport(t testing.TB) bug.Handler {
	return func(r *bug.Report) { t.Errorf("unexpected report:\n%s", r.String()) }
}

// orderDist picks a folio order: test_kho picks uniformly among all
// orders; this is mostly orders 0 and 1, sometimes up to MAX_PAGE_ORDER,
// so that a few MiB give thousands of folios of mixed orders.
func orderDist(rng *rand.Rand) uint {
	if rng.IntN(128) == 0 {
		return uint(rng.IntN(kho.MaxPageOrder + 1))
	}
	return uint(rng.IntN(2))
}

// khoTestGenerateData ports kho_test_generate_data(): allocate nr folios
// (test_kho: until max_mem bytes) of at most maxMem bytes in all, fill them
// with random bytes, checksum them in order.
func khoTestGenerateData(t testing.TB, k *kernel.Kernel, seed uint64, nr int, maxMem uint64) *khoTestState {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	src := rand.NewChaCha8(key)
	rng := rand.New(src)
	s := &khoTestState{}
	var alloc uint64
	for len(s.folios) < nr {
		order := orderDist(rng)
		for alloc+(mm.PageSize<<order) > maxMem && order > 0 {
			order--
		}
		if alloc+mm.PageSize > maxMem {
			break
		}
		f, err := k.MM().FolioAlloc(order, false)
		require.NoError(t, err)
		data := make([]byte, f.Size())
		_, _ = src.Read(data)
		require.NoError(t, f.Write(0, data))
		s.csum = crc32.Update(s.csum, crc32.IEEETable, data)
		s.folios = append(s.folios, f)
		alloc += f.Size()
	}
	return s
}

// khoTestPreserve ports kho_test_preserve() and kho_test_preserve_data().
func khoTestPreserve(t testing.TB, k *kernel.Kernel, s *khoTestState) {
	kh := k.KHO()
	info, err := kho.NewVmArea(k.MM(), uint64(len(s.folios))*8)
	require.NoError(t, err)
	s.foliosInfo = info
	s.foliosPhys, err = kh.PreserveVmalloc(info)
	require.NoError(t, err)
	var b [8]byte
	for i, f := range s.folios {
		binary.LittleEndian.PutUint64(b[:], uint64(f.PA())|uint64(f.Order()))
		require.NoError(t, info.WriteAt(uint64(i)*8, b[:]))
		require.NoError(t, kh.PreserveFolio(f))
		s.nrPreserved++
	}

	fdtSize := uint64(len(s.folios))*8 + mm.PageSize
	order := uint(0)
	for mm.PageSize<<order < fdtSize {
		order++
	}
	s.fdt, err = k.MM().FolioAlloc(order, true)
	require.NoError(t, err)
	require.NoError(t, kh.PreserveFolio(s.fdt))

	buf := make([]byte, fdtSize)
	w, err := fdt.Create(buf)
	require.NoError(t, err)
	var vm [kho.VmallocSize]byte
	s.foliosPhys.Encode(vm[:])
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	for _, step := range []func() error{
		w.FinishReservemap,
		func() error { return w.BeginNode("") },
		func() error { return w.Property("compatible", append([]byte(khoTestCompat), 0)) },
		func() error { return w.Property("magic", le32(khoTestMagic)) },
		func() error { return w.BeginNode("data") },
		func() error { return w.Property("nr_folios", le32(uint32(len(s.folios)))) },
		func() error { return w.Property("folios_info", vm[:]) },
		func() error { return w.Property("csum", le32(s.csum)) },
		w.EndNode,
		w.EndNode,
		w.Finish,
	} {
		require.NoError(t, step())
	}
	require.NoError(t, s.fdt.Write(0, w.Bytes()))
	require.NoError(t, kh.AddSubtree(khoTestFDT, s.fdt.PA()))
}

// khoTestSave ports kho_test_save().
func khoTestSave(t testing.TB, k *kernel.Kernel, seed uint64, nr int, maxMem uint64) *khoTestState {
	s := khoTestGenerateData(t, k, seed, nr, maxMem)
	khoTestPreserve(t, k, s)
	return s
}

// khoTestRestore ports kho_test_restore() and kho_test_restore_data(). It
// returns the number of folios restored. Unlike the module, it restores
// and frees the subtree's own folio, so that nothing stays reserved.
func khoTestRestore(t testing.TB, k *kernel.Kernel) int {
	kh := k.KHO()
	fdtPA, err := kh.RetrieveSubtree(khoTestFDT)
	require.NoError(t, err)
	fdtFolio, err := kh.RestoreFolio(fdtPA)
	require.NoError(t, err)
	blob := make([]byte, fdtFolio.Size())
	require.NoError(t, fdtFolio.Read(0, blob))
	fdtFolio.Put()

	f, err := fdt.Open(blob)
	require.NoError(t, err)
	require.NoError(t, f.NodeCheckCompatible(0, khoTestCompat))
	magic, err := f.GetProp(0, "magic")
	require.NoError(t, err)
	require.Equal(t, uint32(khoTestMagic), binary.LittleEndian.Uint32(magic))

	node, err := f.PathOffset("/data")
	require.NoError(t, err)
	nrb, err := f.GetProp(node, "nr_folios")
	require.NoError(t, err)
	require.Len(t, nrb, 4)
	csb, err := f.GetProp(node, "csum")
	require.NoError(t, err)
	require.Len(t, csb, 4)
	vmb, err := f.GetProp(node, "folios_info")
	require.NoError(t, err)
	require.Len(t, vmb, kho.VmallocSize)

	info, err := kh.RestoreVmalloc(kho.DecodeVmalloc(vmb))
	require.NoError(t, err)
	nr := int(binary.LittleEndian.Uint32(nrb))
	var csum uint32
	var b [8]byte
	for i := range nr {
		require.NoError(t, info.ReadAt(uint64(i)*8, b[:]))
		v := binary.LittleEndian.Uint64(b[:])
		order := uint(v & (mm.PageSize - 1))
		pa := mm.PhysAddr(v &^ (mm.PageSize - 1))
		folio, err := kh.RestoreFolio(pa)
		require.NoError(t, err, "folio %d at %#x", i, uint64(pa))
		require.Equal(t, order, folio.Order())
		data := make([]byte, folio.Size())
		require.NoError(t, folio.Read(0, data))
		csum = crc32.Update(csum, crc32.IEEETable, data)
		folio.Put()
	}
	info.Free()
	require.Equal(t, binary.LittleEndian.Uint32(csb), csum, "checksum of restored folios")
	return nr
}

// TestKHOTestModule is the test_kho round trip: thousands of folios of
// mixed orders survive a kexec byte for byte, and once they and their
// descriptors are restored and freed only the incoming root FDT stays
// reserved.
func TestKHOTestModule(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	m, err := machine.New(machine.Config{MemoryMiB: 128, Report: failOnReport(t)})
	require.NoError(t, err)

	s := khoTestSave(t, m.Kernel(), seed, 3000, 64<<20)
	require.Equal(t, 3000, len(s.folios))
	orders := map[uint]bool{}
	for _, f := range s.folios {
		orders[f.Order()] = true
	}
	require.Greater(t, len(orders), 3, "mixed orders")

	require.NoError(t, m.Kexec())
	k := m.Kernel()
	require.Equal(t, len(s.folios), khoTestRestore(t, k))
	// Frame 0 and the incoming root FDT, which nobody restores.
	require.Equal(t, uint64(2), k.MM().Stats().ReservedPages)

	// A second kexec hands over nothing of the test: ENOENT.
	require.NoError(t, m.Kexec())
	_, err = m.Kernel().KHO().RetrieveSubtree(khoTestFDT)
	require.ErrorIs(t, err, errENOENT)
}

// TestKHOTestModuleNoGoPointers proves that only RAM bytes cross a kexec:
// the machine's RAM is copied, through raw accessors only, into a brand
// new RAM and a kernel booted on the copy with nothing but the command line
// and the hand-over address restores the test data.
func TestKHOTestModuleNoGoPointers(t *testing.T) {
	m, err := machine.New(machine.Config{MemoryMiB: 16, Report: failOnReport(t)})
	require.NoError(t, err)
	s := khoTestSave(t, m.Kernel(), 1, 300, 2<<20)

	handover, err := m.Kernel().PrepareKexec()
	require.NoError(t, err)
	require.NotZero(t, handover)

	old := m.RAM()
	fresh := mm.NewRAM(old.Size())
	page := make([]byte, mm.PageSize)
	zero := make([]byte, mm.PageSize)
	for pfn := mm.PFN(0); uint64(pfn) < old.Pages(); pfn++ {
		require.NoError(t, old.ReadRaw(pfn.Addr(), page))
		if string(page) != string(zero) {
			require.NoError(t, fresh.WriteRaw(pfn.Addr(), page))
		}
	}
	rep := bug.NewReporter(failOnReport(t))
	k, err := kernel.Boot(kernel.BootParams{RAM: fresh, Cmdline: m.Cmdline(), Handover: handover, Reporter: rep, Lockdep: true})
	require.NoError(t, err)
	require.Equal(t, len(s.folios), khoTestRestore(t, k))
}
