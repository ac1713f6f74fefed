/*
 * verify_warm.h -- Verify's reads of the parent made ahead, beside Clone
 * (issue 16).
 *
 * Verify by references reads, for every sampled window of every child,
 * the parent's SST open (its tail), the window's index partition and its
 * data blocks: three round trips one after the other on S3, after Clone.
 * None of them depends on what Clone writes: a child's SSTs are the
 * parent's objects at the split's checkpoint, those of its range (Verify
 * checks that), so the windows are known from the parent's pinned version
 * and the request's ranges.  The warm-up opens the parent's reader at the
 * checkpoint with Verify's block cache and prefetches every window there,
 * on a thread of its own, while Clone runs; Verify takes the reader and
 * the cache and finds those reads made.  What Verify compares is
 * unchanged: the child's reads go through the child's own reader (its
 * manifest, its range) and meet the same immutable objects in the cache,
 * as they did when the parent's scan had read them a moment before.
 *
 * Best effort: a warm-up that fails or is not started costs nothing but
 * its reads; Verify opens and reads what it lacks itself.
 *
 * Thread safety: start, take and free on the splitter's worker.
 */
#ifndef SHALE_AGENT_VERIFY_WARM_H
#define SHALE_AGENT_VERIFY_WARM_H

#include "splitter_int.h"

typedef struct verify_warm verify_warm;

/* Starts the warm-up for run r (references mode, the checkpoint known:
 * after FullFlush); NULL when there is nothing to warm or no thread.  r is
 * borrowed until verify_warm_take or verify_warm_free. */
verify_warm *verify_warm_start(run *r);

/* Waits until w has opened the parent's reader (or failed to), and hands
 * over its block cache and that reader when it opened them (owned by the
 * caller, which closes them only after verify_warm_free(w): w's thread
 * reads through them until then); else sets both NULL.  Accepts NULL
 * (both set NULL). */
void verify_warm_take(verify_warm *w, shale_cache **cache, shale_reader **parent);

/* Waits until w's prefetches are made (a window of Verify's, so that it
 * finds them in the cache rather than reading the same blocks beside
 * them).  Accepts NULL. */
void verify_warm_wait(verify_warm *w);

/* Joins and frees w, and what it holds unless handed over.  Accepts
 * NULL. */
void verify_warm_free(verify_warm *w);

#endif
