package kho_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"luomodel/kernel/mm"
	"luomodel/machine"
)

// BenchmarkPreserveFolio: kho_preserve_folio() + kho_unpreserve_folio() of
// an order-0 folio.
func BenchmarkPreserveFolio(b *testing.B) {
	m, err := machine.New(machine.Config{MemoryMiB: 64, NoLockdep: true, Report: failOnReport(b)})
	require.NoError(b, err)
	k := m.Kernel()
	f, err := k.MM().FolioAlloc(0, false)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := k.KHO().PreserveFolio(f); err != nil {
			b.Fatal(err)
		}
		k.KHO().UnpreserveFolio(f)
	}
}

// BenchmarkPreserveRestoreFolio: per folio, the whole cycle across a
// kexec: preserve 4096 order-0 folios, kexec, restore them all; the
// reported time is per folio (kexec included).
func BenchmarkPreserveRestoreFolio(b *testing.B) {
	const n = 4096
	m, err := machine.New(machine.Config{MemoryMiB: 64, NoLockdep: true, Report: failOnReport(b)})
	require.NoError(b, err)
	pas := make([]mm.PhysAddr, n)
	k := m.Kernel()
	for i := range pas {
		f, err := k.MM().FolioAlloc(0, false)
		require.NoError(b, err)
		pas[i] = f.PA()
	}
	b.ReportAllocs()
	for b.Loop() {
		k := m.Kernel()
		for _, pa := range pas {
			if err := k.KHO().PreserveFolio(k.MM().PFNFolio(pa.PFN())); err != nil {
				b.Fatal(err)
			}
		}
		require.NoError(b, m.Kexec())
		k = m.Kernel()
		for _, pa := range pas {
			if _, err := k.KHO().RestoreFolio(pa); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/folio")
}
