// Package liveupdate ports Linux's Live Update Orchestrator
// (kernel/liveupdate/luo_core.c, luo_session.c, luo_file.c).
package liveupdate
