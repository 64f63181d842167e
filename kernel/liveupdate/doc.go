// Package liveupdate ports Linux's Live Update Orchestrator
// (kernel/liveupdate/luo_core.c, luo_session.c, luo_file.c, luo_flb.c,
// luo_internal.h, include/linux/kho/abi/luo.h and
// include/uapi/linux/liveupdate.h).
//
// The port follows the project's reference profile: the 6.19 structure,
// hand-over ABI and limits (FDT root "luo-v1", node "luo-session-v2", 819
// sessions, 128 files per session, 64-byte names) with the later
// correctness fixes applied (M1-M14, M17, M18, M21-M23 and GET_NAME of
// ../shared/spec/luo-reference.md, and M26 of docs/README.md: a failed
// deserialization frees the session block and unwinds the failed file
// set), plus one repair: when kho_finalize()
// fails after a successful serialization, LUO undoes the serialization and
// returns EAGAIN so that a retried reboot can succeed.
//
// Every C global is a field of LUO, one per kernel. Serialized structs are
// bytes in simulated physical memory at physical addresses; only preserved
// memory and the "LUO" KHO subtree cross a kexec.
//
// # Lock order
//
// Outer to inner; a lock may be taken while holding any lock above it on
// its line, never the reverse:
//
//		luo_session_serialize_rwsem
//		  → luo_session_header.rwsem (incoming or outgoing; never both at once)
//		    → luo_session.mutex
//		      → luo_file.mutex
//		luo_session.mutex → luo_register_rwlock (read)
//		luo_session.mutex → luo_register_rwlock (read) → luo_flb_private.outgoing.lock
//		luo_file.mutex → luo_register_rwlock (read) → luo_flb_private.incoming.lock
//
//	  - luo_session_serialize_rwsem (LUO.serializeRwsem) is taken for read by
//	    every session mutator: luo_session_create, luo_session_retrieve,
//	    luo_session_release and every session-file ioctl; for write by
//	    luo_session_serialize, which keeps it after a successful
//	    serialization (the subsystem is frozen until kexec) and releases it on
//	    failure or when the serialization is undone (M13, M14).
//	  - The two list rwsems (lockdep classes
//	    "luo_session_global.incoming.rwsem" and
//	    "luo_session_global.outgoing.rwsem") guard their list and count.
//	    luo_session_retrieve holds the incoming one for read across the whole
//	    lookup and session-mutex section (M12); luo_session_serialize holds the
//	    outgoing one for write across the whole walk.
//	  - The session mutex guards the session's retrieved flag and file set;
//	    luo_session_getfile asserts it is held (M2).
//	  - The luo_file mutex guards one preserved file's file pointer,
//	    serialized data and retrieve status.
//	  - luo_register_rwlock (LUO.registerRwsem, M18) guards the handler list,
//	    each handler's FLB list, the global FLB list and count and each FLB's
//	    users: write for (un)registration of handlers and FLBs, read while
//	    walking them in luo_preserve_file and luo_file_deserialize (both under
//	    a session mutex), in luo_flb_file_preserve/_unpreserve (session
//	    mutex held), luo_flb_file_finish (luo_file mutex held) and
//	    luo_flb_serialize.
//	  - An FLB's luo_flb_private.outgoing.lock guards its outgoing count,
//	    data and object; .incoming.lock its incoming count, data, object and
//	    retrieved/finished flags, held across the whole of
//	    liveupdate_flb_get_incoming and of the last put's retrieve + finish
//	    (M20). At most one FLB lock is held at a time; FLB callbacks run
//	    under it, so they must not call FLBGetIncoming/FLBPutIncoming/
//	    FLBGetOutgoing of their own FLB.
//
// Three leaf locks sit below everything and are never held across a
// scheduling point: the global double-preservation map (M17,
// luo_preserved_files' xa_lock), the FLB lazy-init lock (M19,
// luo_flb_init_lock) and the log buffer.
//
// The /dev/liveupdate in_use flag is a try-lock (compare-and-swap, EBUSY);
// it never waits. It serializes luo_session_deserialize, which runs only
// in the exclusive opener.
//
// # Kernel API for handlers and FLBs (include/linux/liveupdate.h)
//
// A subsystem that preserves files registers a FileHandler (FileOps with
// every callback it implements, Owner its module) and the FLBs it depends
// on, usually from its module's init function, and unregisters them from
// its exit function:
//
//	l.RegisterFileHandler(fh)       liveupdate_register_file_handler()
//	l.UnregisterFileHandler(fh)     liveupdate_unregister_file_handler(); also
//	                                unregisters fh's FLBs
//	l.RegisterFLB(fh, flb)          liveupdate_register_flb()
//	l.UnregisterFLB(fh, flb)        liveupdate_unregister_flb()
//	l.FLBGetOutgoing(flb)           liveupdate_flb_get_outgoing(): the object
//	                                FLBOps.Preserve made (nil before)
//	l.FLBGetIncoming(flb)           liveupdate_flb_get_incoming(): retrieves
//	                                on first use; takes a reference
//	l.FLBPutIncoming(flb)           liveupdate_flb_put_incoming(): the last
//	                                reference runs FLBOps.Finish
//
// Callback order, per file: preserve runs the handler's FLBs' Preserve
// (first file only, FLB registration order) before the handler's
// Preserve; unpreserve runs the handler's Unpreserve, then the FLBs'
// Unpreserve (last file only, reverse order); reboot freezes files in
// preservation order and on failure unfreezes those frozen before, in the
// same order; finish asks CanFinish of every file, then finishes files
// newest first, each followed by its FLBs' reference drop (reverse order),
// whose last runs FLBOps.Finish. The incoming count of an FLB is loaded only
// by a retrieval (FLBGetIncoming, or the last put): a file finished while
// its FLB was never retrieved drops a zero count, a refcount underflow
// WARN, as upstream. Module pins: one per preserved or deserialized file
// on the handler's owner (until unpreserved or finished), one per FLB
// with live outgoing state (first preserve to last unpreserve) or
// retrieved incoming state (retrieval to finish). Snapshot shows handlers,
// their FLBs and every FLB's counts, data, objects and flags.
//
// Every call into a handler's or an FLB's ops goes through luo_callback.go,
// which tells Config.Calls (a CallRecorder), if set, of each one: callback,
// handler or FLB, session and token, file, result. The lockstep checker
// compares these with the model's prediction for every handler; with no
// recorder a call costs a nil check.
package liveupdate
