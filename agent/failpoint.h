/*
 * failpoint.h -- crash points for the kill-matrix tests.
 *
 * SHALE_FAILPOINTS="Fence.before,Clone.mid" makes the process SIGKILL
 * itself when it reaches a listed point.  Points are "<Step>.before",
 * "<Step>.after", "<Step>.mid" inside WipeLocalWAL, Clone and Complete,
 * "Journal.<v>" right after journal version v is written, and
 * "Lease.taken" / "Lease.released" right after those lease records.  Unset
 * (the normal case), failpoint() costs one getenv per call.
 */
#ifndef SHALE_AGENT_FAILPOINT_H
#define SHALE_AGENT_FAILPOINT_H

/* Kills the process (SIGKILL, no cleanup) if `name` is armed. */
void failpoint(const char *name);

#endif
