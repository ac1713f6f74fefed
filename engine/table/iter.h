/*
 * iter.h -- the internal iterator interface (LevelDB style) and the merging
 * iterator.
 *
 * Internal iterators yield every version of every key in internal order
 * (kv.h): key ascending, seq descending.  Snapshot filtering, deduplication,
 * tombstones and range bounds are the user iterator's job (db/iter.c).
 *
 * An entry returned by entry() is borrowed until the next seek/next/destroy
 * on that iterator.  A failed read makes valid() false and status() the
 * error; it is never reported as end of data silently.
 */
#ifndef SHALE_ITER_H
#define SHALE_ITER_H

#include <stdbool.h>
#include "shale_status.h"
#include "table/kv.h"

typedef struct kv_iter kv_iter;

typedef struct kv_iter_ops {
    void (*seek_first)(kv_iter *it);
    /* Positions at the first entry whose user key is >= key (any seq). */
    void (*seek)(kv_iter *it, const uint8_t *key, size_t klen);
    void (*next)(kv_iter *it);
    bool (*valid)(const kv_iter *it);
    void (*entry)(const kv_iter *it, kv_entry *out);
    shale_status (*status)(const kv_iter *it);
    void (*destroy)(kv_iter *it);
} kv_iter_ops;

struct kv_iter {
    const kv_iter_ops *ops;
};

static inline void kv_iter_seek_first(kv_iter *it) { it->ops->seek_first(it); }
static inline void kv_iter_seek(kv_iter *it, const uint8_t *k, size_t n) { it->ops->seek(it, k, n); }
static inline void kv_iter_next(kv_iter *it) { it->ops->next(it); }
static inline bool kv_iter_valid(const kv_iter *it) { return it->ops->valid(it); }
static inline void kv_iter_entry(const kv_iter *it, kv_entry *e) { it->ops->entry(it, e); }
static inline shale_status kv_iter_status(const kv_iter *it) { return it->ops->status(it); }
static inline void kv_iter_destroy(kv_iter *it) { if (it) it->ops->destroy(it); }

/* Merges n child iterators into one in internal order.  Takes ownership of
 * the children (and of the array's contents, not the array).  When two
 * children hold the same key and seq, the earlier child comes first.
 * Returns NULL on allocation failure (children destroyed).  The merged
 * iterator starts unpositioned: call seek_first or seek. */
kv_iter *merge_iter_new(kv_iter **children, size_t n);

/* An iterator over a sorted array of entries (tests, WAL buffers).  The
 * entries and their bytes are borrowed for the iterator's life. */
kv_iter *array_iter_new(const kv_entry *entries, size_t n);

#endif
