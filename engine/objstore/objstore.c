/*
 * objstore.c -- URI dispatch, key validation and request counters for every
 * backend.  Backends implement objstore_ops (objstore_int.h).
 */
#include "objstore/objstore_int.h"
#include "db/paths.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t g_requests[SHALE_OP_COUNT][2];
static _Atomic uint64_t g_bytes_read, g_bytes_written, g_retries;

/* shale_options embeds the store options: their size is part of its
 * layout and fixed within an ABI version (shale_objstore.h "reserved"). */
_Static_assert(sizeof(shale_objstore_options) == SHALE_OBJSTORE_OPTIONS_SIZE,
               "shale_objstore_options must keep its size: take new fields from reserved[]");

void shale_objstore_options_init(shale_objstore_options *o)
{
    memset(o, 0, sizeof *o);
    o->s3_path_style = -1;
    o->max_retries = 6;
    o->retry_base_ms = 50;
    o->retry_max_ms = 2000;
    o->timeout_ms = 20000;
    o->deadline_ms = 60000;
}

const char *shale_objop_name(shale_objop op)
{
    static const char *names[SHALE_OP_COUNT] = {
        "put", "put_if_absent", "get", "get_range", "head", "list", "delete"};
    return (unsigned)op < SHALE_OP_COUNT ? names[op] : "unknown";
}

void objstore_count_retry(void)
{
    atomic_fetch_add_explicit(&g_retries, 1, memory_order_relaxed);
}

void objstore_count_bytes(uint64_t read, uint64_t written)
{
    if (read)
        atomic_fetch_add_explicit(&g_bytes_read, read, memory_order_relaxed);
    if (written)
        atomic_fetch_add_explicit(&g_bytes_written, written, memory_order_relaxed);
}

void shale_objstore_global_stats(shale_objstats *out)
{
    for (int i = 0; i < SHALE_OP_COUNT; i++)
        for (int j = 0; j < 2; j++)
            out->requests[i][j] = atomic_load_explicit(&g_requests[i][j], memory_order_relaxed);
    out->bytes_read = atomic_load_explicit(&g_bytes_read, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&g_bytes_written, memory_order_relaxed);
    out->retries = atomic_load_explicit(&g_retries, memory_order_relaxed);
}

/* Decides whether a failed call is retried, and sleeps the backoff (full
 * jitter, exponential, capped).  Only throttling and timeouts are retried
 * here; backends that retry themselves (S3) are left alone.  A retried
 * put_if_absent may report SHALE_PRECONDITION_FAILED for its own earlier
 * attempt that took effect: callers that care compare contents. */
static bool retry(shale_objstore *s, shale_status rc, int attempt)
{
    if ((rc != SHALE_RETRYABLE && rc != SHALE_TIMEOUT) || s->ops->self_retrying ||
        attempt >= s->max_retries)
        return false;
    uint64_t cap = (uint64_t)s->retry_base_ms << (attempt < 16 ? attempt : 16);
    if (cap > (uint64_t)s->retry_max_ms)
        cap = (uint64_t)s->retry_max_ms;
    uint32_t r;
    random_bytes(&r, sizeof r);
    sleep_ms((uint32_t)(cap ? r % (cap + 1) : 0));
    objstore_count_retry();
    return true;
}

static shale_status count(shale_objop op, shale_status rc)
{
    int failed = !(rc == SHALE_OK || rc == SHALE_NOT_FOUND || rc == SHALE_PRECONDITION_FAILED);
    atomic_fetch_add_explicit(&g_requests[op][failed], 1, memory_order_relaxed);
    return rc;
}

shale_status shale_objstore_check_key(const char *key)
{
    if (!key || !*key)
        return shale_err(SHALE_INVALID_ARGUMENT, "object key is empty");
    size_t n = strlen(key);
    if (n > 1024)
        return shale_err(SHALE_INVALID_ARGUMENT, "object key longer than 1024 bytes");
    if (key[0] == '/')
        return shale_err(SHALE_INVALID_ARGUMENT, "object key '%s' is absolute", key);
    if (strstr(key, "//"))
        return shale_err(SHALE_INVALID_ARGUMENT, "object key '%s' has an empty segment", key);
    /* Reject "." and ".." segments anywhere. */
    const char *seg = key;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return shale_err(SHALE_INVALID_ARGUMENT,
                             "object key '%s' has a '.' or '..' segment", key);
        if (!end)
            break;
        seg = end + 1;
    }
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return shale_err(SHALE_INVALID_ARGUMENT,
                             "object key '%s' has a control character", key);
    return SHALE_OK;
}

static shale_status check_prefix(const char *prefix)
{
    if (!prefix || !*prefix)
        return SHALE_OK;
    if (prefix[0] == '/' || strstr(prefix, ".."))
        return shale_err(SHALE_INVALID_ARGUMENT, "list prefix '%s' is not allowed", prefix);
    return SHALE_OK;
}

static objstore_open_hook_fn g_open_hook;
static void *g_open_hook_ctx;

void objstore_set_open_hook(objstore_open_hook_fn fn, void *ctx)
{
    g_open_hook_ctx = ctx;
    g_open_hook = fn;
}

/* The manifest cache and its key (objstore_int.h): without memory for the
 * key the store goes without the cache -- a miss only costs a GET. */
static void objstore_set_mcache(shale_objstore *s, const shale_objstore_options *opts)
{
    s->mcache = opts->manifest_cache;
    s->mcache_key = NULL;
    if (!s->mcache)
        return;
    const char *ep = opts->s3_endpoint && *opts->s3_endpoint ? opts->s3_endpoint : "";
    size_t n = strlen(ep) + 1 + strlen(s->uri) + 1;
    if (!(s->mcache_key = malloc(n)) ||
        snprintf(s->mcache_key, n, "%s %s", ep, s->uri) < 0) {
        free(s->mcache_key);
        s->mcache_key = NULL;
        s->mcache = NULL;
    }
}

shale_status shale_objstore_open(const char *uri, const shale_objstore_options *opts,
                                 shale_objstore **out)
{
    shale_objstore_options defaults;
    if (!opts) {
        shale_objstore_options_init(&defaults);
        opts = &defaults;
    }
    *out = NULL;
    if (!uri)
        return shale_err(SHALE_INVALID_ARGUMENT, "store URI is NULL");
    if (g_open_hook)
        g_open_hook(g_open_hook_ctx, uri, opts);
    if (!strncmp(uri, "fault+", 6)) {
        shale_status frc = objstore_faulturi_open(uri, opts, out);
        if (!frc && !((*out)->uri = xstrdup(uri))) {
            (*out)->ops->close(*out);
            *out = NULL;
            return SHALE_OOM();
        }
        if (!frc) {
            (*out)->max_retries = opts->max_retries < 0 ? 0 : opts->max_retries;
            (*out)->retry_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : 50;
            (*out)->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : 2000;
            objstore_set_mcache(*out, opts);
        }
        return frc;
    }
    const char *sep = strstr(uri, "://");
    if (!sep)
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "store URI '%s' has no scheme (file://, s3://, mem://)", uri);
    size_t slen = (size_t)(sep - uri);
    const char *rest = sep + 3;
    shale_status rc;
    shale_objstore *s = NULL;
    if (slen == 4 && !strncmp(uri, "file", 4))
        rc = objstore_fs_open(rest, opts, &s);
    else if (slen == 3 && !strncmp(uri, "mem", 3))
        rc = objstore_mem_open(rest, opts, &s);
    else if (slen == 2 && !strncmp(uri, "s3", 2))
        rc = objstore_s3_open(rest, opts, &s);
    else
        return shale_err(SHALE_INVALID_ARGUMENT,
                         "store URI '%s': unknown scheme (file://, s3://, mem://)", uri);
    if (rc)
        return rc;
    size_t n = strlen(uri);
    while (n > slen + 3 && uri[n - 1] == '/')
        n--;
    s->uri = malloc(n + 1);
    if (!s->uri) {
        s->ops->close(s);
        return SHALE_OOM();
    }
    memcpy(s->uri, uri, n);
    s->uri[n] = '\0';
    s->max_retries = opts->max_retries < 0 ? 0 : opts->max_retries;
    s->retry_base_ms = opts->retry_base_ms > 0 ? opts->retry_base_ms : 50;
    s->retry_max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : 2000;
    objstore_set_mcache(s, opts);
    *out = s;
    return SHALE_OK;
}

void shale_objstore_close(shale_objstore *s)
{
    if (!s)
        return;
    char *uri = s->uri, *mkey = s->mcache_key;
    s->ops->close(s);
    free(uri);
    free(mkey);
}

const char *shale_objstore_uri(const shale_objstore *s)
{
    return s->uri ? s->uri : "";
}

shale_status shale_objstore_put(shale_objstore *s, const char *key, const void *data,
                                size_t len)
{
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0; (rc = s->ops->put(s, key, data, len, false)) && retry(s, rc, a); a++)
        ;
    if (!rc)
        objstore_count_bytes(0, len);
    return count(SHALE_OP_PUT, rc);
}

shale_status shale_objstore_put_if_absent(shale_objstore *s, const char *key,
                                          const void *data, size_t len)
{
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0; (rc = s->ops->put(s, key, data, len, true)) && retry(s, rc, a); a++)
        ;
    if (!rc)
        objstore_count_bytes(0, len);
    return count(SHALE_OP_PUT_IF_ABSENT, rc);
}

shale_status shale_objstore_get(shale_objstore *s, const char *key, void **data,
                                size_t *len)
{
    *data = NULL;
    *len = 0;
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0; (rc = s->ops->get_range(s, key, 0, 0, true, data, len)) && retry(s, rc, a);
         a++)
        ;
    if (!rc)
        objstore_count_bytes(*len, 0);
    return count(SHALE_OP_GET, rc);
}

shale_status shale_objstore_get_range(shale_objstore *s, const char *key, uint64_t offset,
                                      uint64_t len, void **data, size_t *got)
{
    *data = NULL;
    *got = 0;
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0;
         (rc = s->ops->get_range(s, key, offset, len, false, data, got)) && retry(s, rc, a);
         a++)
        ;
    if (!rc)
        objstore_count_bytes(*got, 0);
    return count(SHALE_OP_GET_RANGE, rc);
}

/* ---- reader handles ---------------------------------------------------------
 * A backend with reader_open makes its own handle (file://: a descriptor);
 * the others get a bare shale_objreader whose reads are get_range calls on
 * the key through the store's own ops, so a fault wrapper's rules act on
 * them as on any ranged GET.  Opens are counted as HEADs when they look at
 * the object, reads as GET_RANGEs; both go through the retry policy. */

shale_status shale_objstore_reader_open(shale_objstore *s, const char *key, uint64_t size_hint,
                                        shale_objreader **out)
{
    return shale_objreader_open(s, key, size_hint, out);
}

shale_status shale_objreader_open(shale_objstore *s, const char *key, uint64_t size_hint,
                                  shale_objreader **out)
{
    *out = NULL;
    shale_objreader *r = NULL;
    char *k = NULL;
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    if (!(k = xstrdup(key)))
        return SHALE_OOM();
    if (s->ops->reader_open) {
        for (int a = 0; (rc = s->ops->reader_open(s, key, size_hint, &r)) && retry(s, rc, a);
             a++)
            ;
        count(SHALE_OP_HEAD, rc);
        if (rc)
            goto out;
    } else {
        if (!(r = calloc(1, sizeof *r))) {
            rc = SHALE_OOM();
            goto out;
        }
        if (size_hint) {
            r->size = size_hint;  /* taken on trust: no request */
        } else {
            int64_t mt;
            for (int a = 0; (rc = s->ops->head(s, key, &r->size, &mt)) && retry(s, rc, a); a++)
                ;
            count(SHALE_OP_HEAD, rc);
            if (rc) {
                free(r);
                r = NULL;
                goto out;
            }
        }
    }
    r->store = s;
    r->key = k;
    k = NULL;
    *out = r;
out:
    free(k);
    return rc;
}

shale_status shale_objreader_read(shale_objreader *r, uint64_t offset, uint64_t len,
                                  void **data, size_t *got)
{
    *data = NULL;
    *got = 0;
    shale_objstore *s = r->store;
    shale_status rc;
    for (int a = 0; (rc = s->ops->reader_read
                              ? s->ops->reader_read(r, offset, len, data, got)
                              : s->ops->get_range(s, r->key, offset, len, false, data, got)) &&
                    retry(s, rc, a);
         a++)
        ;
    if (!rc)
        objstore_count_bytes(*got, 0);
    return count(SHALE_OP_GET_RANGE, rc);
}

uint64_t shale_objreader_size(const shale_objreader *r)
{
    return r->size;
}

void shale_objreader_close(shale_objreader *r)
{
    if (!r)
        return;
    char *key = r->key;
    if (r->store->ops->reader_close)
        r->store->ops->reader_close(r);
    else
        free(r);
    free(key);
}

shale_status shale_objstore_head(shale_objstore *s, const char *key, uint64_t *size,
                                 int64_t *mtime_ms)
{
    uint64_t sz = 0;
    int64_t mt = 0;
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0; (rc = s->ops->head(s, key, &sz, &mt)) && retry(s, rc, a); a++)
        ;
    rc = count(SHALE_OP_HEAD, rc);
    if (size)
        *size = sz;
    if (mtime_ms)
        *mtime_ms = mt;
    return rc;
}

shale_status shale_objstore_delete(shale_objstore *s, const char *key)
{
    shale_status rc = shale_objstore_check_key(key);
    if (rc)
        return rc;
    for (int a = 0; (rc = s->ops->del(s, key)) && retry(s, rc, a); a++)
        ;
    if (rc == SHALE_NOT_FOUND)
        rc = SHALE_OK;
    return count(SHALE_OP_DELETE, rc);
}

shale_status shale_objstore_delete_many(shale_objstore *s, const char *const *keys, size_t n)
{
    shale_status rc = SHALE_OK;
    for (size_t i = 0; i < n && !rc; i++)
        rc = shale_objstore_check_key(keys[i]);
    if (rc || !s->ops->del_many) {
        for (size_t i = 0; i < n && !rc; i++)
            rc = shale_objstore_delete(s, keys[i]);
        return rc;
    }
    for (int a = 0; (rc = s->ops->del_many(s, keys, n)) && retry(s, rc, a); a++)
        ;
    if (rc == SHALE_NOT_FOUND)
        rc = SHALE_OK;
    for (size_t i = 0; i < n; i++)   /* as n DELETEs (the failure counted once) */
        count(SHALE_OP_DELETE, i + 1 == n ? rc : SHALE_OK);
    return rc;
}

shale_status shale_objstore_list(shale_objstore *s, const char *prefix, const char *cursor,
                                 size_t max_keys, shale_objlist *page)
{
    memset(page, 0, sizeof *page);
    shale_status rc = check_prefix(prefix);
    if (rc)
        return rc;
    if (max_keys == 0)
        max_keys = 1000;
    for (int a = 0;
         (rc = s->ops->list(s, prefix ? prefix : "", cursor, max_keys, page)) && retry(s, rc, a);
         a++)
        memset(page, 0, sizeof *page);
    return count(SHALE_OP_LIST, rc);
}

void shale_objlist_free(shale_objlist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i].key);
    free(l->items);
    free(l->next_cursor);
    memset(l, 0, sizeof *l);
}

shale_status shale_objstore_list_all(shale_objstore *s, const char *prefix,
                                     shale_objlist *out)
{
    memset(out, 0, sizeof *out);
    char *cursor = NULL;
    size_t cap = 0;
    shale_status rc = SHALE_OK;
    for (;;) {
        shale_objlist page;
        rc = shale_objstore_list(s, prefix, cursor, 0, &page);
        free(cursor);
        cursor = NULL;
        if (rc)
            break;
        if (out->count + page.count > cap) {
            size_t ncap = cap ? cap * 2 : 64;
            while (ncap < out->count + page.count)
                ncap *= 2;
            shale_objinfo *items = realloc(out->items, ncap * sizeof *items);
            if (!items) {
                shale_objlist_free(&page);
                rc = SHALE_OOM();
                break;
            }
            out->items = items;
            cap = ncap;
        }
        if (page.count)
            memcpy(out->items + out->count, page.items, page.count * sizeof *page.items);
        out->count += page.count;
        free(page.items);
        cursor = page.next_cursor;
        if (!cursor)
            break;
    }
    if (rc)
        shale_objlist_free(out);
    return rc;
}

shale_status shale_objstore_probe_conditional(shale_objstore *s)
{
    char id[37], key[PATH_KEY_MAX];
    uuid_new(id);
    probe_key(id, key, sizeof key);
    shale_status rc = shale_objstore_put_if_absent(s, key, "1", 1);
    if (rc)
        return shale_err_prefix(rc, "probing conditional create on %s",
                                shale_objstore_uri(s));
    rc = shale_objstore_put_if_absent(s, key, "2", 1);
    shale_objstore_delete(s, key);
    return probe_verdict(s, key, rc);
}

shale_status probe_verdict(shale_objstore *s, const char *key, shale_status rc)
{
    if (rc == SHALE_PRECONDITION_FAILED)
        return SHALE_OK;
    if (rc == SHALE_OK)
        return shale_err(SHALE_UNSUPPORTED,
                         "store %s does not honour create-if-absent (If-None-Match: *): "
                         "a second conditional create of %s succeeded; fencing is unsafe "
                         "(set unsafe_allow_unconditional_store to proceed anyway)",
                         shale_objstore_uri(s), key);
    return shale_err_prefix(rc, "probing conditional create on %s", shale_objstore_uri(s));
}

shale_status objstore_sweep(shale_objstore *s, int64_t older_than_ms, bool dry,
                            void (*each)(void *ctx, const char *rel, uint64_t size), void *ctx)
{
    return s && s->ops->sweep ? s->ops->sweep(s, older_than_ms, dry, each, ctx) : SHALE_OK;
}
