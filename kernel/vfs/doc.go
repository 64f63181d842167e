// Package vfs ports the slice of Linux's fs/ that LUO stands on: struct
// file with its reference count and file operations, anonymous-inode files,
// the per-process fd table, misc character devices and /dev/null.
//
// A VFS is one kernel's instance: it owns the misc-device registry and the
// registry of live files that tests use to find leaks.
package vfs
