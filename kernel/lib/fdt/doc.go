// Package fdt is a Go port of the parts of libfdt (scripts/dtc/libfdt in the
// kernel tree) that Kexec HandOver and the Live Update Orchestrator use to
// write and read flattened device trees (FDT, "DTB"): the sequential writer
// of fdt_sw.c and the read-only accessors of fdt.c and fdt_ro.c, plus
// fdt_check_full() from dtc's fdt_check.c.
//
// # Mapping to libfdt
//
// The writer is a Writer over a caller-provided, fixed-size buffer, as with
// fdt_create(buf, bufsize):
//
//	fdt_create(buf, size)             Create(buf)
//	fdt_add_reservemap_entry(fdt,a,s) w.AddReservemapEntry(a, s)
//	fdt_finish_reservemap(fdt)        w.FinishReservemap()
//	fdt_begin_node(fdt, name)         w.BeginNode(name)
//	fdt_property(fdt, name, val, len) w.Property(name, val)
//	fdt_property_placeholder(...)     w.PropertyPlaceholder(name, n)
//	fdt_property_string/_u32/_u64     w.PropertyString/U32/U64
//	fdt_end_node(fdt)                 w.EndNode()
//	fdt_finish(fdt)                   w.Finish(); w.Bytes() is the blob
//
// The reader is an FDT opened over a byte slice; Open runs fdt_check_header()
// once, the way libfdt's FDT_RO_PROBE() runs it on every call:
//
//	fdt_check_header(fdt)             CheckHeader(blob), Open(blob)
//	fdt_check_full(fdt, bufsize)      Check(blob), f.Check()
//	fdt_totalsize(fdt)                f.TotalSize()
//	fdt_next_tag / fdt_next_node      f.NextTag / f.NextNode
//	fdt_first_subnode / _next_subnode f.FirstSubnode / f.NextSubnode
//	fdt_subnode_offset                f.SubnodeOffset
//	fdt_path_offset                   f.PathOffset
//	fdt_get_name                      f.GetName
//	fdt_get_path                      f.GetPath
//	fdt_first/next_property_offset    f.FirstProperty / f.NextProperty
//	fdt_getprop_by_offset             f.GetPropertyByOffset
//	fdt_getprop                       f.GetProp (+ GetPropU32/U64/U64LE/String)
//	fdt_node_check_compatible         f.NodeCheckCompatible
//	fdt_num_mem_rsv / fdt_get_mem_rsv f.NumMemRsv / f.GetMemRsv
//
// Offsets are int structure block offsets as in libfdt (the root node is at
// 0). Functions that return an offset return, on error, libfdt's negative
// code together with a Go error; the errors are the constants ErrNotFound,
// ErrNoSpace, ... of type Error, named like fdt_strerror() names them
// ("FDT_ERR_NOTFOUND"), and Code converts back to libfdt's int for ports of C
// that do arithmetic on results. Every ported function's doc comment names
// its C counterpart.
//
// # Robustness
//
// Hand-over data is read by the next kernel and may be corrupt. No reader
// function panics, loops forever or allocates more than the blob's size for
// any input: truncated blobs, bad magic or versions, block offsets and sizes
// outside the blob, unaligned or bogus node and property offsets,
// unterminated names and strings, property names outside the strings block,
// nesting that never closes or is too deep. They return errors instead. The
// walkers only ever move forward, every bound is checked in a way that cannot
// overflow, and the header is cached at Open so later changes to the bytes
// cannot move the bounds. Check validates a whole tree in linear time; it is
// stricter than fdt_check_full() (see FDT.Check), and everything the Writer
// produces passes it. Values returned by GetProp alias the blob.
//
// # Deviations from libfdt
//
// Pre-version-16 blobs are rejected (ErrBadVersion) rather than emulated.
// The Writer keeps its state in Go fields as well as in the header and
// enforces what libfdt leaves to its caller (node nesting, properties before
// subnodes, valid names) and clears the space it takes; see Writer. Check
// also requires the root node at offset 0 and the block alignment the
// specification asks for. An alias must name an absolute path, and string
// lists are never read past their end (libfdt's fdt_stringlist_contains()
// reads one byte too far on an unterminated list). These only turn inputs
// libfdt would mishandle into errors. TestWriterMatchesLibfdt and the opt-in
// TestLibfdtDifferential compare the port with the system's libfdt.
//
// There is no package-level mutable state: a Writer or FDT is all the state
// there is, so any number of simulated kernels can use the package at once.
package fdt
