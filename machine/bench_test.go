package machine_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/mm"
	"luomodel/machine"
)

// BenchmarkKexecIdle: kexec of a machine that preserves nothing but KHO's
// own root FDT.
func BenchmarkKexecIdle(b *testing.B) {
	m := newMachine(b, machine.Config{MemoryMiB: 256, NoLockdep: true})
	b.ReportAllocs()
	for b.Loop() {
		require.NoError(b, m.Kexec())
	}
}

// BenchmarkKexecPreserved: kexec of a machine with N MiB of preserved
// order-0 folios. Between kexecs (untimed) the folios are restored and
// preserved again by the new kernel.
func BenchmarkKexecPreserved(b *testing.B) {
	for _, mib := range []int{16, 32, 64} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) {
			m := newMachine(b, machine.Config{MemoryMiB: 256, NoLockdep: true})
			n := mib << 20 / mm.PageSize
			pas := make([]mm.PhysAddr, 0, n)
			k := m.Kernel()
			for range n {
				f, err := k.MM().FolioAlloc(0, false)
				require.NoError(b, err)
				require.NoError(b, f.Write(0, []byte{1, 2, 3}))
				require.NoError(b, k.KHO().PreserveFolio(f))
				pas = append(pas, f.PA())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				require.NoError(b, m.Kexec())
				b.StopTimer()
				k := m.Kernel()
				for _, pa := range pas {
					f, err := k.KHO().RestoreFolio(pa)
					require.NoError(b, err)
					require.NoError(b, k.KHO().PreserveFolio(f))
				}
				b.StartTimer()
			}
		})
	}
}
