package mm

import (
	"testing"

	"luomodel/kernel/bug"
)

func benchMM(b *testing.B) *MM {
	return New(NewRAM(256*mib), bug.NewReporter(func(r *bug.Report) { b.Errorf("%s", r.String()) }), nil)
}

func benchAllocFree(b *testing.B, order uint) {
	m := benchMM(b)
	b.ReportAllocs()
	for b.Loop() {
		pa, err := m.AllocPages(order, false)
		if err != nil {
			b.Fatal(err)
		}
		m.FreePages(pa, order)
	}
}

func BenchmarkAllocFreeOrder0(b *testing.B) { benchAllocFree(b, 0) }
func BenchmarkAllocFreeOrder4(b *testing.B) { benchAllocFree(b, 4) }

// BenchmarkAllocFreeOrder0Batch allocates 512 pages, then frees them, so
// the buddy splits and merges rather than reusing one block.
func BenchmarkAllocFreeOrder0Batch(b *testing.B) {
	m := benchMM(b)
	pas := make([]PhysAddr, 512)
	b.ReportAllocs()
	for b.Loop() {
		for i := range pas {
			pa, err := m.AllocPages(0, false)
			if err != nil {
				b.Fatal(err)
			}
			pas[i] = pa
		}
		for _, pa := range pas {
			m.FreePages(pa, 0)
		}
	}
}

func benchAccess4K(b *testing.B, write bool) {
	m := benchMM(b)
	pa, err := m.AllocPages(0, true)
	if err != nil {
		b.Fatal(err)
	}
	buf := pattern(PageSize, 1)
	if err := m.Write(pa, buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(PageSize)
	b.ReportAllocs()
	for b.Loop() {
		if write {
			err = m.Write(pa, buf)
		} else {
			err = m.Read(pa, buf)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead4K(b *testing.B)  { benchAccess4K(b, false) }
func BenchmarkWrite4K(b *testing.B) { benchAccess4K(b, true) }

func benchMemfd64K(b *testing.B, write bool) {
	s := newTestShmem(b, 256*mib)
	m := mustMemfd(b, s, "bench", 0)
	defer m.f.Put()
	buf := pattern(64*kib, 1)
	if _, err := m.write(buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 * kib)
	b.ReportAllocs()
	for b.Loop() {
		m.pos = 0
		var n int
		var err error
		if write {
			n, err = m.write(buf)
		} else {
			n, err = m.read(buf)
		}
		if err != nil || n != len(buf) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkMemfdWrite64K(b *testing.B) { benchMemfd64K(b, true) }
func BenchmarkMemfdRead64K(b *testing.B)  { benchMemfd64K(b, false) }

// BenchmarkMemfdCreateWriteClose is a memfd's whole life: create, fill
// 64 KiB (allocating 16 folios), close (freeing them).
func BenchmarkMemfdCreateWriteClose(b *testing.B) {
	s := newTestShmem(b, 256*mib)
	buf := pattern(64*kib, 1)
	b.ReportAllocs()
	for b.Loop() {
		f, err := s.MemfdCreate("bench", 0)
		if err != nil {
			b.Fatal(err)
		}
		m := &memfile{f: f}
		if _, err := m.write(buf); err != nil {
			b.Fatal(err)
		}
		f.Put()
	}
}

func BenchmarkNewMM1GiB(b *testing.B) {
	rep := bug.NewReporter(nil)
	b.ReportAllocs()
	for b.Loop() {
		New(NewRAM(1*gib), rep, []Range{{Start: 100 * mib, Size: 64 * kib}})
	}
}
