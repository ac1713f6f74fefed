/* batch.c -- write batches (see batch.h and shale.h). */
#include "db/batch.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <stdlib.h>

#define MAX_KEY_BYTES (64u << 10)
#define MAX_VALUE_BYTES (256u << 20)

shale_batch *shale_batch_new(void)
{
    return calloc(1, sizeof(shale_batch));
}

shale_status batch_check(uint8_t kind, const void *key, size_t klen, const void *val,
                         size_t vlen)
{
    if (!key && klen)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: NULL batch or key");
    if (klen == 0)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: empty keys are not allowed");
    if (klen > MAX_KEY_BYTES)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: key of %zu bytes exceeds %u", klen,
                         MAX_KEY_BYTES);
    if (vlen > MAX_VALUE_BYTES)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: value of %zu bytes exceeds %u", vlen,
                         MAX_VALUE_BYTES);
    if (!val && vlen)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: NULL value with length %zu", vlen);
    if (kind != KV_PUT && vlen)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: a delete carries no value");
    return SHALE_OK;
}

static shale_status add(shale_batch *b, uint8_t kind, const void *key, size_t klen,
                        const void *val, size_t vlen)
{
    if (!b)
        return shale_err(SHALE_INVALID_ARGUMENT, "batch: NULL batch or key");
    shale_status rc = batch_check(kind, key, klen, val, vlen);
    if (rc)
        return rc;
    size_t mark = b->buf.len;
    rc = buf_append_u8(&b->buf, kind);
    if (!rc) rc = buf_append_varint(&b->buf, klen);
    if (!rc) rc = buf_append(&b->buf, key, klen);
    if (!rc && kind == KV_PUT) {
        rc = buf_append_varint(&b->buf, vlen);
        if (!rc) rc = buf_append(&b->buf, val, vlen);
    }
    if (rc) {
        b->buf.len = mark;
        return rc;
    }
    b->count++;
    return SHALE_OK;
}

shale_status shale_batch_put(shale_batch *b, const void *key, size_t klen, const void *val,
                             size_t vlen)
{
    return add(b, KV_PUT, key, klen, val, vlen);
}

shale_status shale_batch_delete(shale_batch *b, const void *key, size_t klen)
{
    return add(b, KV_DELETE, key, klen, NULL, 0);
}

void shale_batch_clear(shale_batch *b)
{
    if (b) {
        buf_reset(&b->buf);
        b->count = 0;
    }
}

size_t shale_batch_count(const shale_batch *b)
{
    return b ? b->count : 0;
}

void shale_batch_free(shale_batch *b)
{
    if (!b)
        return;
    buf_free(&b->buf);
    free(b);
}

bool batch_next(const shale_batch *b, size_t *pos, kv_entry *e)
{
    const uint8_t *p = b->buf.data;
    size_t n = b->buf.len, i = *pos;
    if (i >= n)
        return false;
    uint64_t klen = 0, vlen = 0;
    e->kind = p[i++];
    i += get_varint(p + i, n - i, &klen);
    e->key = p + i;
    e->klen = klen;
    i += klen;
    e->val = NULL;
    e->vlen = 0;
    if (e->kind == KV_PUT) {
        i += get_varint(p + i, n - i, &vlen);
        e->val = p + i;
        e->vlen = vlen;
        i += vlen;
    }
    e->seq = 0;
    *pos = i;
    return true;
}

size_t batch_bytes(const shale_batch *b)
{
    return b->buf.len + b->count * 64;
}
