/*
 * par.h -- run independent store work for every item at once.
 *
 * A split's work per child (claims, emptiness checks, identities) is a few
 * requests to that child's own store; on S3 each costs a round trip, so
 * doing them one child after another makes a split's time grow with its
 * children.  par_for() runs fn for items 0..n-1 on up to PAR_THREADS
 * threads (the work waits on the network, not the CPU: the bound is the
 * store's parallelism, not the cores) and returns the error of the lowest
 * failing index, with its message, as a loop in order would report it.
 * Every item runs, even after a failure (the items must not depend on
 * each other).
 *
 * Thread safety: fn is called from several threads at once; ctx is shared.
 */
#ifndef SHALE_AGENT_PAR_H
#define SHALE_AGENT_PAR_H

#include "shale_status.h"
#include <stddef.h>

/* A split names at most 64 children (request.c) and the submit's identity
 * check reads the parent's two stores beside them: 66 items in one wave.
 * With 32, a 32-child split's identity reads (34 items) and its claims
 * took a second wave each -- one more round trip on the chain at 32
 * children (the trace: 19 against 18 at 2 and 8).  Children's own WAL
 * stores (rare) may still take a second wave. */
#define PAR_THREADS 66

typedef shale_status (*par_fn)(void *ctx, size_t i);

/* *failed (may be NULL): the index whose error is returned. */
shale_status par_for(size_t n, par_fn fn, void *ctx, size_t *failed);

#endif
