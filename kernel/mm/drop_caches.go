package mm

// DropPagecache ports fs/drop_caches.c:drop_pagecache_sb() for shmem's
// superblock: invalidate the page cache of every inode not yet evicted,
// oldest first, and return the number of folios evicted. Like Linux it
// takes s_inode_list_lock only to find the inodes, never across an
// invalidation; unlike Linux it takes the list once, so an inode created
// during the walk is not visited (Linux visits those it meets at the
// list's tail), and an inode evicted meanwhile has an empty page cache.
// No lock may be held.
func (s *Shmem) DropPagecache() int {
	s.listLock.Lock()
	inodes := append([]*ShmemInode(nil), s.list...)
	s.listLock.Unlock()
	n := 0
	for _, si := range inodes {
		si.Lock()
		n += si.InvalidateLocked()
		si.Unlock()
	}
	return n
}
