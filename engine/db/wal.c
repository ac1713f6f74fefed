/*
 * wal.c -- the WAL's format (wal.h): keys, encoding, reading a range.
 *
 * Replay reads ids replay_after_wal_id+1, +2, ... until the first missing
 * one.  Ids below the manifest's next_wal_sst_id were written by an earlier
 * writer and must exist; a missing one fails with SHALE_NOT_FOUND naming
 * the object, since silently stopping there would lose data.
 */
#include "db/wal.h"
#include "table/sst.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

shale_status wal_log_enable(const char *wal_uri, const shale_objstore_options *o)
{
    if (o->fs_wal_log < 0)
        return SHALE_OK;
    if (!strncmp(wal_uri, "fault+", 6))
        wal_uri += 6;  /* the directory under the wrapper */
    if (strncmp(wal_uri, "file://", 7))
        return SHALE_OK;
    /* A handle of its own opened with the option makes the directory; the
     * database's handles see it on their next WAL call. */
    shale_objstore_options lo = *o;
    lo.fs_wal_log = 1;
    shale_objstore *s = NULL;
    shale_status rc = shale_objstore_open(wal_uri, &lo, &s);
    shale_objstore_close(s);
    return rc ? shale_err_prefix(rc, "turning the WAL log mode on") : SHALE_OK;
}

wal_buf *wal_buf_new(void)
{
    return calloc(1, sizeof(wal_buf));
}

void wal_buf_free(wal_buf *b)
{
    if (!b)
        return;
    free(b->recs);
    buf_free(&b->bytes);
    free(b);
}

shale_status wal_buf_add(wal_buf *b, const kv_entry *e)
{
    if (e->klen > UINT32_MAX || e->vlen > UINT32_MAX)
        return shale_err(SHALE_INVALID_ARGUMENT, "WAL entry of %zu + %zu bytes is too big",
                         e->klen, e->vlen);
    if (b->count == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 1024;
        wal_rec *nr = realloc(b->recs, nc * sizeof *nr);
        if (!nr)
            return SHALE_OOM();
        b->recs = nr;
        b->cap = nc;
    }
    size_t off = b->bytes.len;
    shale_status rc = buf_reserve(&b->bytes, e->klen + e->vlen);
    if (rc)
        return rc;
    if (e->klen)
        memcpy(b->bytes.data + off, e->key, e->klen);
    if (e->vlen)
        memcpy(b->bytes.data + off + e->klen, e->val, e->vlen);
    b->bytes.len = off + e->klen + e->vlen;
    b->recs[b->count++] = (wal_rec){e->seq, off, (uint32_t)e->klen, (uint32_t)e->vlen, e->kind};
    return SHALE_OK;
}

static int entry_cmp(const void *a, const void *b)
{
    return kv_cmp(a, b);
}

shale_status wal_encode(size_t block_size, int compression_level, const wal_buf *b,
                        shale_buf *out)
{
    /* WAL SSTs are read whole at replay: no bloom filter, light compression
     * only where the options ask for it. */
    sst_options so = {block_size, compression_level, 0};
    kv_entry *es = malloc((b->count ? b->count : 1) * sizeof *es);
    if (!es)
        return SHALE_OOM();
    for (size_t i = 0; i < b->count; i++) {
        const wal_rec *r = &b->recs[i];
        const uint8_t *k = b->bytes.data + r->off;
        es[i] = (kv_entry){k, r->klen, r->seq, r->kind, r->kind == KV_PUT ? k + r->klen : NULL,
                           r->vlen};
    }
    /* Seqs are distinct, so the order is total and qsort's instability
     * does not matter. */
    if (b->count > 1)
        qsort(es, b->count, sizeof *es, entry_cmp);
    kv_iter *it = array_iter_new(es, b->count);
    shale_status rc = it ? sst_build_from_iter(&so, it, out, NULL) : SHALE_OOM();
    kv_iter_destroy(it);
    free(es);
    return rc;
}

/* Feeds every entry of one WAL SST image to cb->entry. */
static shale_status replay_one(const char *key, uint8_t *data, size_t len,
                               const wal_replay_cb *cb)
{
    sst_reader *r = NULL;
    shale_status rc = sst_reader_open_mem(key, data, len, true, &r);
    if (rc)
        return rc;
    kv_iter *it = sst_iter_new(r);
    if (!it) {
        sst_reader_unref(r);
        return SHALE_OOM();
    }
    for (kv_iter_seek_first(it); kv_iter_valid(it) && !rc; kv_iter_next(it)) {
        kv_entry e;
        kv_iter_entry(it, &e);
        rc = cb->entry(cb->ctx, &e);
    }
    if (!rc)
        rc = kv_iter_status(it);
    kv_iter_destroy(it);
    sst_reader_unref(r);
    return rc;
}

shale_status wal_read_range(shale_objstore *w, const char *db_uri, const manifest *m,
                            uint64_t from, const wal_replay_cb *cb, uint64_t *first_free)
{
    uint64_t id = from <= m->replay_after_wal_id ? m->replay_after_wal_id + 1 : from;
    for (;; id++) {
        char key[PATH_KEY_MAX];
        wal_key(id, key, sizeof key);
        void *data = NULL;
        size_t len = 0;
        shale_status rc = shale_objstore_get(w, key, &data, &len);
        if (rc == SHALE_NOT_FOUND) {
            if (id < m->next_wal_sst_id)
                return shale_err(SHALE_NOT_FOUND,
                                 "%s: WAL SST %s/%s is needed for replay (replay_after_wal_id="
                                 "%llu, next_wal_sst_id=%llu) but is missing: wrong WAL store "
                                 "or lost data",
                                 db_uri, shale_objstore_uri(w), key,
                                 (unsigned long long)m->replay_after_wal_id,
                                 (unsigned long long)m->next_wal_sst_id);
            break;
        }
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
        rc = replay_one(key, data, len, cb);
        if (!rc && cb->after_sst)
            rc = cb->after_sst(cb->ctx, id);
        if (rc)
            return shale_err_prefix(rc, "%s: replaying %s", db_uri, key);
    }
    *first_free = id;
    return SHALE_OK;
}

