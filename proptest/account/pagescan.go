package account

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"luomodel/kernel"
	"luomodel/kernel/kho"
	"luomodel/kernel/mm"
)

// unreferencedBlocks is a leak scan of the page allocator in the manner of
// mm/kmemleak.c (which scans slab objects; page allocations it leaves
// alone): a block the kernel allocated is in use only if something can
// still find it. The scan looks for its address, conservatively:
//
//   - in the kernel's objects, reached from k: every integer that holds
//     an address inside the block (a PhysAddr, a PFN, a u64 of handler
//     data) and every folio of it;
//   - in memory, as kmemleak scans objects' contents: every aligned
//     64-bit word of every allocated block (a KHO chunk list, a vmalloc
//     descriptor's chain).
//
// Preserved blocks are the ledger's (accounted for by owner above) and
// count as found, as do the addresses in also (the incoming root FDT,
// kept for the kernel's lifetime). The page allocator's own bookkeeping
// (mm.MM, which lists every folio it handed out) is not a reference, nor
// is the incoming hand-over's record (kho.Handover, which lists every
// block the previous kernel preserved: a block restored here is in use
// only if its new owner still has it), nor what only the lock validator,
// the reporter, the fault injector or the scheduler hold. As with kmemleak, a stray integer that happens to hold an
// address hides a leak; it never invents one.
//
// Call it only when nothing runs in k: the walk reads objects without
// their locks.
func unreferencedBlocks(k *kernel.Kernel, preserved []kho.Block, also ...mm.PhysAddr) []mm.Range {
	m := k.MM()
	blocks := m.AllocatedBlocks()
	if len(blocks) == 0 {
		return nil
	}
	found := make([]bool, len(blocks))
	mark := func(v uint64) {
		i := sort.Search(len(blocks), func(i int) bool { return uint64(blocks[i].End()) > v })
		if i < len(blocks) && uint64(blocks[i].Start) <= v {
			found[i] = true
		}
	}
	for _, b := range preserved {
		mark(uint64(b.PA))
	}
	for _, pa := range also {
		mark(uint64(pa))
	}
	w := walker{mark: mark, seen: map[visit]bool{}}
	w.value(reflect.ValueOf(k))
	// Contents: an allocated block refers to what the words in it name.
	var buf []byte
	for _, b := range blocks {
		buf = slices.Grow(buf[:0], int(b.Size))[:b.Size]
		if m.RAM().ReadRaw(b.Start, buf) != nil {
			continue
		}
		for off := 0; off+8 <= len(buf); off += 8 {
			if v := binary.LittleEndian.Uint64(buf[off:]); v != 0 {
				mark(v)
			}
		}
	}
	var out []mm.Range
	for i, b := range blocks {
		if !found[i] {
			out = append(out, b)
		}
	}
	return out
}

// describeUnreferenced renders the blocks of unreferencedBlocks.
func describeUnreferenced(rs []mm.Range) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("ordinary memory: %#x (%d pages) allocated, but no kernel object or memory refers to it", uint64(r.Start), r.Size/mm.PageSize)
	}
	return out
}

// visit is a pointer the walk has followed, with the type it was
// followed as (a struct and its first field share an address).
type visit struct {
	p uintptr
	t reflect.Type
}

// walker is the object walk of unreferencedBlocks.
type walker struct {
	mark func(uint64)
	seen map[visit]bool
}

// skip reports whether the walk leaves objects of type t alone: the page
// allocator and RAM, the incoming hand-over's record, and the packages whose objects hold no reference
// the scan counts (the lock validator's classes and traces, reports,
// fault injection, the scheduler).
func skip(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[mm.MM](), reflect.TypeFor[mm.RAM](), reflect.TypeFor[kho.Handover]():
		return true
	}
	switch t.PkgPath() {
	case "luomodel/kernel/locking", "luomodel/kernel/bug", "luomodel/kernel/fault", "luomodel/kernel/sched":
		return true
	}
	return false
}

// value walks v, marking the integers in it.
func (w *walker) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Uint64, reflect.Uint, reflect.Uint32:
		if v.Type() == reflect.TypeFor[mm.PFN]() {
			w.mark(v.Uint() << mm.PageShift)
		} else {
			w.mark(v.Uint())
		}
	case reflect.Int64, reflect.Int:
		if n := v.Int(); n > 0 {
			w.mark(uint64(n))
		}
	case reflect.Pointer:
		if v.IsNil() || skip(v.Type().Elem()) {
			return
		}
		key := visit{v.Pointer(), v.Type()}
		if w.seen[key] {
			return
		}
		w.seen[key] = true
		w.value(v.Elem())
	case reflect.Interface:
		if !v.IsNil() {
			w.value(v.Elem())
		}
	case reflect.Struct:
		t := v.Type()
		if skip(t) {
			return
		}
		if t.PkgPath() == "sync/atomic" && strings.HasPrefix(t.Name(), "Pointer[") {
			w.atomicPointer(v)
			return
		}
		for i := range v.NumField() {
			w.value(v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		if k := v.Type().Elem().Kind(); k == reflect.Uint8 || k == reflect.Uintptr {
			return // data and return addresses, not kernel objects
		}
		if v.Kind() == reflect.Slice && v.IsNil() {
			return
		}
		for i := range v.Len() {
			w.value(v.Index(i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			w.value(it.Key())
			w.value(it.Value())
		}
	}
}

// atomicPointer walks what a sync/atomic.Pointer[T] points to: its word
// is an unsafe.Pointer, typed by its zero-length [0]*T field.
func (w *walker) atomicPointer(v reflect.Value) {
	var elem reflect.Type
	var p unsafe.Pointer
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Array:
			elem = f.Type().Elem() // *T
		case reflect.UnsafePointer:
			p = unsafe.Pointer(f.Pointer())
		}
	}
	if elem == nil || p == nil {
		return
	}
	w.value(reflect.NewAt(elem.Elem(), p))
}
