/*
 * iter_int.h -- the user-facing iterator over an internal iterator.
 */
#ifndef SHALE_ITER_INT_H
#define SHALE_ITER_INT_H

#include <stddef.h>
#include <stdint.h>
#include "shale.h"
#include "table/iter.h"

/* Wraps an internal iterator (owned) into a user iterator that yields, for
 * each user key in [start, end) (NULL/0-length bound = unbounded), the
 * newest version with seq <= snapshot_seq, skipping keys whose newest
 * visible version is a tombstone.  release(ctx) is called once when the
 * iterator is freed; release may be NULL.  Positions on the first key.  On
 * failure the internal iterator is destroyed and release(ctx) called. */
shale_status user_iter_new(kv_iter *internal, uint64_t snapshot_seq,
                           const uint8_t *start, size_t slen,
                           const uint8_t *end, size_t elen,
                           void (*release)(void *ctx), void *ctx, shale_iter **out);

#endif
