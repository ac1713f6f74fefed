/*
 * shale_admin.h -- what tools need to know about a database without being
 * its writer: shard facts and balanced split points.  The agent and the CLI
 * use it; so can a controller that embeds the engine.
 *
 * Everything here reads the manifest and the SSTs' footers, indexes and
 * properties, never a data block: on S3 a call costs a LIST and a GET for
 * the manifest plus two ranged GETs per SST.
 *
 * Memory handed out is freed with the matching _clear()/_free() function.
 * Thread safety: plain functions, safe from any thread.
 */
#ifndef SHALE_ADMIN_H
#define SHALE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "shale.h"

SHALE_API_BEGIN

/* A key: bytes and length (data malloc'd, or NULL when len is 0). */
typedef struct shale_key {
    uint8_t *data;
    size_t len;
} shale_key;

/* Facts about the shard at its latest manifest version, from its SSTs (not
 * its memtable or WAL: flush first for data written since).  The figures
 * count the data blocks that hold keys of the visible range (for a clone,
 * only the part of its parent's SSTs it sees; a block across a bound
 * counts in proportion): bytes as stored (compressed), kv_bytes as user
 * key + value bytes, approx_keys as entries.  Versions not yet compacted
 * away and tombstones count too, so they are estimates of what a scan
 * would see.  (SSTs of format 1 carry no per-block counts: their kv_bytes
 * is their stored bytes and their entries are spread by size.) */
typedef struct shale_shard_info {
    uint64_t manifest_id;
    uint64_t bytes;
    uint64_t kv_bytes;
    uint64_t approx_keys;
    uint64_t sst_count;                 /* L0 + sorted-run SSTs */
    uint64_t data_blocks;               /* data blocks counted in bytes */
    uint32_t l0_count, sorted_run_count;
    uint64_t replay_after_wal_id, next_wal_sst_id;
    bool initialized;
    /* The visible range [start, end); an empty key is unbounded. */
    shale_key range_start, range_end;
} shale_shard_info;

/* Fills *out (caller-provided; free its keys with shale_shard_info_clear).
 * opts may be NULL. */
shale_status shale_shard_info_get(const char *uri, const shale_options *opts,
                                  shale_shard_info *out);
void shale_shard_info_clear(shale_shard_info *i);   /* accepts NULL */

typedef enum shale_split_by {
    SHALE_SPLIT_BY_BYTES = 0,   /* key + value bytes (kv_bytes above) */
    SHALE_SPLIT_BY_KEYS = 1     /* entries (approx_keys above) */
} shale_split_by;

/* Boundaries that cut the shard's visible range into `ways` children of
 * about equal weight, and each child's estimated weight. */
typedef struct shale_split_points {
    uint32_t ways;
    shale_split_by by;
    shale_key *boundaries;      /* ways - 1 keys, strictly ascending, each
                                   inside the visible range */
    uint64_t *weights;          /* ways entries: child i's estimated bytes
                                   or keys */
    uint64_t total;             /* sum of weights */
} shale_split_points;

/* Computes split points from the SSTs' block indexes (no data block is
 * read).  A boundary is the last key of some data block: the one where the
 * weight below it (whole blocks, plus an interpolated part of the blocks
 * it falls inside) is nearest each i/ways share; the same manifest always
 * gives the same answer.  ways is 2..1024.  SHALE_INVALID_ARGUMENT when the
 * shard holds too few blocks to give `ways` distinct boundaries (an empty
 * shard has none).  Free with shale_split_points_clear. */
shale_status shale_split_points_get(const char *uri, const shale_options *opts, uint32_t ways,
                                    shale_split_by by, shale_split_points *out);
void shale_split_points_clear(shale_split_points *p);   /* accepts NULL */

/* Keys as text, the way the CLI, the manifest and split requests write
 * them: printable ASCII except '%' as itself, every other byte as %XX.
 * Both return malloc'd memory (shale_free) or NULL: escape only when out
 * of memory, unescape also for a malformed %XX (then *len is untouched). */
char *shale_key_escape(const void *key, size_t len);
uint8_t *shale_key_unescape(const char *text, size_t *len);

SHALE_API_END

#endif /* SHALE_ADMIN_H */
