/*
 * iter.c -- the user-facing iterator (shale_iter) over an internal one.
 *
 * The internal iterator yields every version in internal order (key asc,
 * seq desc).  For each user key the first version with seq <= snapshot is
 * the visible one: a put is returned, a tombstone hides the key; older
 * versions of the same key are skipped.  Bounds are copied, so callers may
 * free theirs after the call.  The key is copied into the iterator's buffer:
 * next() moves the internal iterator (which may invalidate its entry) and
 * then compares with it to skip older versions.  The value is not copied:
 * it is the internal entry's, borrowed until the internal iterator moves,
 * which is exactly as long as shale_iter_value() promises.  (Copying it
 * was half of a warm scan of 1 KiB values: perf, docs/benchmarks.md.)
 */
#include "db/iter_int.h"
#include "util/buf.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>

struct shale_iter {
    kv_iter *in;
    uint64_t snap;
    uint8_t *end; size_t elen;   /* NULL: unbounded */
    shale_buf key;
    const uint8_t *val; size_t vlen;   /* the internal entry's */
    bool valid;
    shale_status rc;
    void (*release)(void *);
    void *ctx;
};

/* Moves to the next visible key at or after the internal position, given
 * that every version of `skip` (if non-NULL) must be passed over. */
static void settle(shale_iter *it, bool skip_current_key)
{
    it->valid = false;
    while (kv_iter_valid(it->in)) {
        kv_entry e;
        kv_iter_entry(it->in, &e);
        if (skip_current_key && !kv_key_cmp(e.key, e.klen, it->key.data, it->key.len)) {
            kv_iter_next(it->in);
            continue;
        }
        skip_current_key = false;
        if (it->end && kv_key_cmp(e.key, e.klen, it->end, it->elen) >= 0)
            break;
        if (e.seq > it->snap) {
            kv_iter_next(it->in);
            continue;
        }
        /* The newest visible version of this key. */
        buf_reset(&it->key);
        if (buf_append(&it->key, e.key, e.klen)) {
            it->rc = SHALE_OOM();
            return;
        }
        if (e.kind == KV_PUT) {
            it->val = e.val;
            it->vlen = e.vlen;
            it->valid = true;
            return;
        }
        skip_current_key = true;  /* a tombstone hides older versions */
        kv_iter_next(it->in);
    }
    shale_status rc = kv_iter_status(it->in);
    if (rc)
        it->rc = rc;
}

shale_status user_iter_new(kv_iter *internal, uint64_t snapshot_seq, const uint8_t *start,
                           size_t slen, const uint8_t *end, size_t elen,
                           void (*release)(void *ctx), void *ctx, shale_iter **out)
{
    *out = NULL;
    shale_iter *it = calloc(1, sizeof *it);
    if (!it || (end && elen && !(it->end = malloc(elen)))) {
        free(it);
        kv_iter_destroy(internal);
        if (release)
            release(ctx);
        return SHALE_OOM();
    }
    if (end && elen) {
        memcpy(it->end, end, elen);
        it->elen = elen;
    }
    it->in = internal;
    it->snap = snapshot_seq;
    it->release = release;
    it->ctx = ctx;
    if (start && slen)
        kv_iter_seek(internal, start, slen);
    else
        kv_iter_seek_first(internal);
    settle(it, false);
    *out = it;
    return SHALE_OK;
}

bool shale_iter_valid(const shale_iter *it)
{
    return it && it->valid && it->rc == SHALE_OK;
}

void shale_iter_next(shale_iter *it)
{
    if (!shale_iter_valid(it))
        return;
    kv_iter_next(it->in);
    settle(it, true);
}

const void *shale_iter_key(const shale_iter *it, size_t *klen)
{
    *klen = it->key.len;
    return it->key.data ? it->key.data : (const void *)"";
}

const void *shale_iter_value(const shale_iter *it, size_t *vlen)
{
    *vlen = it->vlen;
    return it->val ? it->val : (const void *)"";
}

shale_status shale_iter_status(const shale_iter *it)
{
    return it ? it->rc : SHALE_OK;
}

void shale_iter_free(shale_iter *it)
{
    if (!it)
        return;
    kv_iter_destroy(it->in);
    if (it->release)
        it->release(it->ctx);
    buf_free(&it->key);
    free(it->end);
    free(it);
}
