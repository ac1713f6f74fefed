/*
 * view.h -- read views, shared by the writer (db.c) and the read-only
 * reader (reader.c).
 *
 * A db_view is an immutable, reference-counted picture of what a read must
 * consult: the memtables (active first, then frozen ones newest first) and
 * one manifest version (L0 newest first, then sorted runs newest first).
 * A reader takes a reference under the owner's lock and then reads without
 * it; SST readers come from the environment's table cache.
 *
 * What views need to reach data -- the stores (a clone reads its parents'
 * SSTs in their stores), the table cache and the block cache -- is the
 * database's db_env (env.h); each view holds a reference on it.
 *
 * Thread safety: a db_view is immutable once made.
 */
#ifndef SHALE_VIEW_H
#define SHALE_VIEW_H

#include <stdbool.h>
#include <stdint.h>

#include "shale.h"
#include "db/env.h"
#include "db/manifest.h"
#include "db/memtable.h"
#include "table/cache.h"
#include "table/iter.h"
#include "table/sst.h"

typedef struct db_view {
    int refs;                  /* atomic */
    memtable **mems;           /* active first, then frozen newest first */
    size_t mem_count;
    manifest *man;             /* owned copy */
    db_env *env;               /* referenced */
} db_view;

/* Makes a view over mems (each gets a reference) and a copy of m. */
shale_status view_new(db_env *env, memtable **mems, size_t n, const manifest *m,
                      db_view **out);
void view_ref(db_view *v);
void view_unref(db_view *v);

/* A copy of the manifest version reader r stands on (*out owned by the
 * caller, manifest_free()): the version its open loaded, for a caller that
 * would otherwise list and read the same latest version again (the split's
 * Verify).  Defined in reader.c. */
shale_status reader_manifest_dup(shale_reader *r, manifest **out);

/* Opens SST h in reader r's table cache (footer, then metadata: two
 * requests), so that a scan that reaches it later finds it open.  A scan
 * opens the SSTs of its levels one after the other as it seeks; the split's
 * Verify opens every SST a reader will touch at once, first.  Defined in
 * reader.c. */
shale_status reader_open_sst(shale_reader *r, const sst_handle *h);

/* Fills the manifest part of a shale_db_info (last_seq = last_l0_seq). */
void view_fill_info(const manifest *m, shale_db_info *out);

/* True when key is inside the manifest's visible range. */
bool view_in_range(const manifest *m, const uint8_t *key, size_t klen);

/* Newest version of key with seq <= max_seq.  SHALE_NOT_FOUND if absent or
 * deleted.  *val malloc'd. */
shale_status view_get(db_view *v, const uint8_t *key, size_t klen, uint64_t max_seq,
                      void **val, size_t *vlen);

/* A user iterator over [start, end) intersected with the visible range, at
 * max_seq.  Holds a reference on v until freed. */
shale_status view_scan(db_view *v, uint64_t max_seq, const uint8_t *start, size_t slen,
                       const uint8_t *end, size_t elen, shale_iter **out);

/* An internal iterator over every entry of the view's SSTs and memtables
 * (used by compaction and tests).  include_mems selects memtables. */
shale_status view_internal_iter(db_view *v, bool include_mems, kv_iter **out);
/* The same over the SSTs and runs that may hold keys in [start, end)
 * (NULL bounds are open): the rest are not opened.  The iterator may still
 * yield keys outside the bounds; its caller bounds what it reads. */
shale_status view_internal_iter_range(db_view *v, bool include_mems, const uint8_t *start,
                                      size_t slen, const uint8_t *end, size_t elen,
                                      kv_iter **out);

/* An internal iterator over one sorted run: opens its SSTs lazily, in key
 * order.  Holds a reference on nothing but env (borrowed). */
kv_iter *run_iter_new(db_env *env, const sorted_run *run);

#endif
