/*
 * s3_readahead.c -- reader handles of s3:// stores, reading ahead when
 * reads are sequential (verify, scans).
 *
 * The second read that starts where the previous one ended fetches a window
 * (256 KiB, doubling to 4 MiB while reads keep going) and later reads inside
 * it make no request; the window is freed once read to its end, so an idle
 * handle holds at most the rest of one window.  Random reads (point
 * lookups) fetch exactly what they ask for, and reads that ask for no more
 * than they get are not kept: a handle then reads the key as it is now.
 * Reads go through the store's own get_range (retries, status mapping).
 */
#include "objstore/objstore_int.h"
#include "objstore/objstore_s3.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define RA_MIN (256u << 10)   /* first readahead window */
#define RA_MAX (4u << 20)     /* largest readahead window */


typedef struct s3_reader {
    shale_objreader base;
    pthread_mutex_t mu;
    uint64_t next;          /* where the previous read ended */
    uint32_t window;        /* readahead size; 0 until reads are sequential */
    uint8_t *cache;         /* a window fetched ahead, or NULL */
    uint64_t c_off, c_len;
    bool c_eof;             /* the cache runs to the object's end */
} s3_reader;

shale_status objstore_s3_reader_open(shale_objstore *st, const char *key, uint64_t size_hint,
                                     shale_objreader **out)
{
    uint64_t size = size_hint;
    if (!size_hint) {
        int64_t mt;
        shale_status rc = st->ops->head(st, key, &size, &mt);
        if (rc)
            return rc;
    }
    s3_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SHALE_OOM();
    pthread_mutex_init(&r->mu, NULL);
    r->base.size = size;
    r->next = UINT64_MAX;
    *out = &r->base;
    return SHALE_OK;
}

/* Copies [off, off+len) out of the cache if it holds it (short at the
 * object's end).  Called with mu held. */
static bool from_cache(s3_reader *r, uint64_t off, uint64_t len, void **data, size_t *got)
{
    if (!r->cache || off < r->c_off)
        return false;
    uint64_t end = r->c_off + r->c_len;
    if (off + len > end && !(r->c_eof && off <= end))
        return false;
    size_t n = (size_t)(off + len <= end ? len : end - off);
    *data = malloc(n ? n : 1);
    if (!*data)
        return false;
    memcpy(*data, r->cache + (off - r->c_off), n);
    *got = n;
    if (off + n >= end) {  /* used up: a handle holds memory only mid-window */
        free(r->cache);
        r->cache = NULL;
    }
    return true;
}

shale_status objstore_s3_reader_read(shale_objreader *rd, uint64_t offset, uint64_t len,
                                     void **data, size_t *got)
{
    s3_reader *r = (s3_reader *)rd;
    pthread_mutex_lock(&r->mu);
    bool hit = from_cache(r, offset, len, data, got);
    bool sequential = offset == r->next;
    r->next = offset + len;
    if (!hit) {
        r->window = sequential ? (r->window ? (r->window < RA_MAX ? r->window * 2 : RA_MAX)
                                            : RA_MIN)
                               : 0;
    }
    uint64_t want = len;
    if (!hit && sequential && r->window > len)
        want = r->window;
    pthread_mutex_unlock(&r->mu);
    if (hit)
        return SHALE_OK;
    void *buf = NULL;
    size_t n = 0;
    shale_objstore *st = rd->store;
    shale_status rc = st->ops->get_range(st, rd->key, offset, want, false, &buf, &n);
    if (rc || want == len) {
        *data = buf;
        *got = n;
        return rc;
    }
    /* A window: keep it, hand out the part asked for. */
    size_t take = n < len ? n : (size_t)len;
    *data = malloc(take ? take : 1);
    if (!*data) {
        free(buf);
        return SHALE_OOM();
    }
    memcpy(*data, buf, take);
    *got = take;
    pthread_mutex_lock(&r->mu);
    free(r->cache);
    r->cache = buf;
    r->c_off = offset;
    r->c_len = n;
    r->c_eof = n < want;
    pthread_mutex_unlock(&r->mu);
    return SHALE_OK;
}

void objstore_s3_reader_close(shale_objreader *rd)
{
    s3_reader *r = (s3_reader *)rd;
    pthread_mutex_destroy(&r->mu);
    free(r->cache);
    free(r);
}
