package mm

import (
	"maps"
	"slices"
)

// InvalidateLocked ports mm/truncate.c:invalidate_mapping_pages(mapping,
// 0, -1) for a shmem inode: evict every folio of the page cache that
// mapping_evict_folio() may free, in index order, and return how many
// went. A dirty folio stays (its data exists nowhere else), and so does
// one that someone holds besides the page cache (pinned by memfd_luo, say:
// folio_ref_count() above the cache's reference). The port has no mmap,
// writeback or folio private data, Linux's other reasons to keep a folio.
// An evicted folio's page is a hole again. Requires Lock (asserted;
// instrumentation: Linux takes each folio's lock, the port's page cache
// is guarded by i_rwsem).
func (si *ShmemInode) InvalidateLocked() int {
	si.rwsem.AssertHeldWrite()
	n := 0
	for _, index := range slices.Sorted(maps.Keys(si.cache)) {
		if f := si.cache[index]; !f.TestDirty() && f.Refcount() == 1 {
			si.deleteFromPageCacheLocked(index)
			n++
		}
	}
	return n
}
