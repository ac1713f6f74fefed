/* buf.c -- see buf.h. */
#include "util/buf.h"
#include "util/coding.h"
#include "util/status_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Buffers of BUF_MAP_MIN bytes or more are mapped directly (mmap, grown
 * with mremap, unmapped when freed); smaller ones come from malloc.  The
 * capacity says which: mapped exactly when cap >= BUF_MAP_MIN.  Why (issue
 * 19, peak RSS): SST images and data-block buffers of up to 64 MiB are
 * built by the flush, compactor and WAL threads; through malloc, the ones
 * under glibc's dynamic mmap threshold (which rises to 32 MiB once such a
 * buffer is freed) came from those threads' arenas and stayed resident
 * after free.  A mapping gives its pages back at once, and growing it
 * moves no bytes. */
#define BUF_MAP_MIN ((size_t)1 << 20)
#define PAGE_ROUND(n) (((n) + 4095) & ~(size_t)4095)

static bool buf_mapped(const shale_buf *b)
{
    return b->cap >= BUF_MAP_MIN;
}

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
    if (cap < BUF_MAP_MIN) {
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return SHALE_OOM();
        b->data = p;
        b->cap = cap;
        return SHALE_OK;
    }
    if (cap > SIZE_MAX - 4096)
        return SHALE_OOM();
    cap = PAGE_ROUND(cap);
    void *p;
    if (buf_mapped(b)) {
        p = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            return SHALE_OOM();
    } else {
        p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return SHALE_OOM();
        if (b->len)
            memcpy(p, b->data, b->len);
        free(b->data);
    }
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
    if (buf_mapped(b))
        munmap(b->data, b->cap);
    else
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint8_t *buf_detach(shale_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    if (buf_mapped(b)) {
        /* The caller free()s: hand over a malloc'd copy. */
        if (!(p = malloc(b->len ? b->len : 1)))
            return NULL;
        memcpy(p, b->data, b->len);
        munmap(b->data, b->cap);
    } else if (!p) {
        p = malloc(1);
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
