/* buf.c -- see buf.h. */
#include "util/buf.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <stdlib.h>
#include <string.h>

shale_status buf_reserve(shale_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return SHALE_OOM();
    size_t need = b->len + extra;
    if (need <= b->cap)
        return SHALE_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return SHALE_OOM();
    b->data = p;
    b->cap = cap;
    return SHALE_OK;
}

shale_status buf_append(shale_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return SHALE_OK;
    shale_status rc = buf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SHALE_OK;
}

shale_status buf_append_u8(shale_buf *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

shale_status buf_append_u32le(shale_buf *b, uint32_t v)
{
    uint8_t t[4];
    put_u32le(t, v);
    return buf_append(b, t, 4);
}

shale_status buf_append_u64le(shale_buf *b, uint64_t v)
{
    uint8_t t[8];
    put_u64le(t, v);
    return buf_append(b, t, 8);
}

shale_status buf_append_varint(shale_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = put_varint(t, v);
    return buf_append(b, t, n);
}

void buf_reset(shale_buf *b)
{
    b->len = 0;
}

void buf_free(shale_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *buf_detach(shale_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (!p)
        p = malloc(1);
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
