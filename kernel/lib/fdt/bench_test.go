package fdt

import "testing"

// BenchmarkWriteSmallTree writes the LUO tree (luo_fdt_setup()) into a
// 4096-byte buffer, as the kernel does at every boot.
func BenchmarkWriteSmallTree(b *testing.B) {
	buf := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := writeLUO(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetProp reads "luo-session-header" from the LUO tree the way
// luo_session_setup_incoming() does: find the node, then the property.
func BenchmarkGetProp(b *testing.B) {
	f, err := Open(mustLUO(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		off, err := f.SubnodeOffset(0, "luo-session")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.GetPropU64LE(off, "luo-session-header"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck validates the LUO tree (Open + Check), as a parser of
// hand-over data would before trusting it.
func BenchmarkCheck(b *testing.B) {
	blob := mustLUO(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(blob); err != nil {
			b.Fatal(err)
		}
	}
}
