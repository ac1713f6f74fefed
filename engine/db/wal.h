/*
 * wal.h -- the WAL's format: object keys, encoding one WAL SST, and reading
 * a range of them in id order.  No writer state: the writer's thread
 * (wal_writer.c), the reader (reader.c), clones, checkpoints and GC use
 * this without the writer's private header.
 *
 * A WAL SST is an ordinary SST (table/sst.h, docs/format.md) of one sealed
 * WAL buffer, rows in internal-key order, no bloom filter, at
 * wal/<id:020>.sst (paths.c) in the WAL store (the main store unless the database
 * has a WAL store of its own).  Ids are consecutive from 1; a zero-entry
 * WAL SST is a fence (written by a writer when it opens).
 */
#ifndef SHALE_WAL_H
#define SHALE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "shale_objstore.h"
#include "db/manifest.h"
#include "db/paths.h"
#include "table/kv.h"
#include "util/buf.h"

/* Keys: wal_key() and PATH_KEY_MAX come from db/paths.h. */

/* A WAL buffer: the entries of one future WAL SST in the order they were
 * written (seq order), appended by the writer under its lock.  Appending
 * is a copy to the end of two arrays -- no search, no cache misses as it
 * grows, unlike a second skiplist insert per write; the sort into the
 * SST's internal order happens once, in wal_encode, on the WAL thread.
 * Owned by whoever holds it (the writer, then its wal_seal). */
typedef struct wal_rec {
    uint64_t seq;
    size_t off;              /* key bytes at bytes.data + off, value after */
    uint32_t klen, vlen;
    uint8_t kind;
} wal_rec;

typedef struct wal_buf {
    wal_rec *recs;
    size_t count, cap;
    shale_buf bytes;
} wal_buf;

wal_buf *wal_buf_new(void);                     /* NULL when out of memory */
void wal_buf_free(wal_buf *b);                  /* accepts NULL */
shale_status wal_buf_add(wal_buf *b, const kv_entry *e);
static inline size_t wal_buf_count(const wal_buf *b) { return b->count; }
/* Bytes the entries take (keys, values and per-entry overhead). */
static inline size_t wal_buf_bytes(const wal_buf *b)
{
    return b->bytes.len + b->count * sizeof(wal_rec);
}

/* Builds the SST image of a WAL buffer (all its entries, in internal order)
 * into *out, which the caller owns (buf_free).  block_size and
 * compression_level as in sst_options.  b is not changed. */
shale_status wal_encode(size_t block_size, int compression_level, const wal_buf *b,
                        shale_buf *out);

/* Turns the WAL log mode on for a WAL store on file:// (or fault+file://)
 * unless o->fs_wal_log is -1: creates <root>/.wal-log, which every handle
 * on the root follows from its next WAL call (objstore_fs_log.h).  Called
 * by a writer before its fence; no-op for other stores. */
shale_status wal_log_enable(const char *wal_uri, const shale_objstore_options *o);

/* Reading WAL SSTs in id order, for the writer's replay and the reader. */
typedef struct wal_replay_cb {
    shale_status (*entry)(void *ctx, const kv_entry *e);   /* every entry */
    shale_status (*after_sst)(void *ctx, uint64_t id);     /* may be NULL */
    void *ctx;
} wal_replay_cb;

/* Reads WAL ids from max(from, replay_after_wal_id + 1) until the first
 * missing one, returned in *first_free.  Ids below m->next_wal_sst_id must
 * exist: a missing one is SHALE_NOT_FOUND naming the object.  db_uri is
 * for messages. */
shale_status wal_read_range(shale_objstore *w, const char *db_uri, const manifest *m,
                            uint64_t from, const wal_replay_cb *cb, uint64_t *first_free);

#endif
