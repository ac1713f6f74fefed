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

#define PAR_THREADS 32

typedef shale_status (*par_fn)(void *ctx, size_t i);

/* *failed (may be NULL): the index whose error is returned. */
shale_status par_for(size_t n, par_fn fn, void *ctx, size_t *failed);

#endif
