/*
 * cache.h -- the block cache: an LRU of decoded (decompressed, verified)
 * data blocks bounded by total bytes, shared by every SST reader of a
 * database.  Sharded to keep lock contention low.
 *
 * Thread safety: every function may be called from many threads at once.
 */
#ifndef SHALE_CACHE_H
#define SHALE_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* The public shale_cache (shale.h) is this cache. */
typedef struct shale_cache block_cache;

/* A cached block; data/len are valid until cached_block_release(). */
typedef struct cached_block {
    const uint8_t *data;
    size_t len;
} cached_block;

/* capacity 0 returns NULL: callers treat a NULL cache as "no cache". */
block_cache *block_cache_new(size_t capacity_bytes);
void block_cache_free(block_cache *c);   /* accepts NULL */

/* A 64-bit id for an SST object (hash of store URI and key). */
uint64_t block_cache_file_id(const char *store_uri, const char *key);

/* Returns a referenced block or NULL. */
const cached_block *block_cache_lookup(block_cache *c, uint64_t file_id, uint64_t offset);
/* Inserts a block, taking ownership of data (malloc'd), and returns a
 * referenced handle to it (NULL on allocation failure, data freed).  If the
 * key is already present, data is freed and the existing block returned. */
const cached_block *block_cache_insert(block_cache *c, uint64_t file_id, uint64_t offset,
                                       uint8_t *data, size_t len);
void block_cache_release(block_cache *c, const cached_block *b);

/* Bytes currently held, for stats and tests. */
size_t block_cache_usage(block_cache *c);

/* Length of the longest hash chain over all shards: a lookup walks one
 * chain under its shard's lock, so this bounds a lookup's cost.  For tests
 * and diagnostics; takes every shard lock in turn. */
size_t block_cache_longest_chain(block_cache *c);

#endif
