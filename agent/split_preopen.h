/*
 * split_preopen.h -- Fence's writer open started beside journal version 1
 * (split_accept.c), finished by the worker's Fence (split_steps.c).
 *
 * The open's reads and its conditional-create probe (a round trip on S3)
 * go out while version 1 (which records Fence Running) is being written;
 * the open then waits in shale_open_at_fenced_after()'s barrier, before
 * any write that is state, until the worker's Fence lets it go on -- the
 * worker runs a job only after its version 1 is durable, so the fence
 * write still follows the journal record, and an abort or refusal before
 * the worker's Fence cancels the open with nothing fenced.
 */
#ifndef SHALE_AGENT_SPLIT_PREOPEN_H
#define SHALE_AGENT_SPLIT_PREOPEN_H

#include "shale.h"

typedef struct preopen preopen;

/* Starts the open of uri (opts copied; uri and opts' strings borrowed:
 * they must outlive the preopen) at manifest version hint on a thread of
 * its own.  latest: the caller read hint as the latest version a moment
 * ago (shale_open_at_latest_fenced_after: a HEAD of the next version, no
 * listing); else the versions after it are listed (shale_open_at).  NULL
 * when no thread could be made (the worker then opens plainly). */
preopen *preopen_start(const char *uri, const shale_options *opts, uint64_t hint, bool latest);

/* The worker's Fence: lets the open fence and returns its result (*db the
 * writer, owned by the caller, on SHALE_OK; the open's message set
 * otherwise).  Once only; p stays the caller's to free. */
shale_status preopen_finish(preopen *p, shale_db **db);

/* Cancels an open not finished (it fails at its barrier, nothing fenced),
 * joins its thread and frees p.  A finished one is only freed.  Accepts
 * NULL. */
void preopen_free(preopen *p);

#endif
