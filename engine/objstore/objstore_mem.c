/*
 * objstore_mem.c -- mem://name: an in-process store for tests.
 *
 * Stores with the same name share their objects for the life of the process
 * (so a test can reopen "mem://a" and see what it wrote); the name "" or a
 * name starting with "anon" is private to the handle.  Objects are kept in
 * a key-sorted array under one mutex: simple, and list is a binary search.
 */
#include "objstore/objstore_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct mem_obj {
    char *key;
    uint8_t *data;
    size_t len;
    int64_t mtime_ms;
} mem_obj;

typedef struct mem_space {
    char *name;
    pthread_mutex_t mu;
    mem_obj *objs;
    size_t count, cap;
    int refs;
    struct mem_space *next;
} mem_space;

typedef struct mem_store {
    shale_objstore base;
    mem_space *space;
} mem_store;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static mem_space *g_spaces;

/* Index of the first object with key >= key. */
static size_t lower_bound(mem_space *sp, const char *key)
{
    size_t lo = 0, hi = sp->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sp->objs[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static shale_status mem_put(shale_objstore *s, const char *key, const void *data,
                            size_t len, bool if_absent)
{
    mem_space *sp = ((mem_store *)s)->space;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return SHALE_OOM();
    if (len)
        memcpy(copy, data, len);
    pthread_mutex_lock(&sp->mu);
    size_t i = lower_bound(sp, key);
    if (i < sp->count && !strcmp(sp->objs[i].key, key)) {
        if (if_absent) {
            pthread_mutex_unlock(&sp->mu);
            free(copy);
            return SHALE_PRECONDITION_FAILED;
        }
        free(sp->objs[i].data);
        sp->objs[i].data = copy;
        sp->objs[i].len = len;
        sp->objs[i].mtime_ms = now_ms();
        pthread_mutex_unlock(&sp->mu);
        return SHALE_OK;
    }
    char *k = xstrdup(key);
    if (k && sp->count == sp->cap) {
        size_t ncap = sp->cap ? sp->cap * 2 : 64;
        mem_obj *n = realloc(sp->objs, ncap * sizeof *n);
        if (n) {
            sp->objs = n;
            sp->cap = ncap;
        }
    }
    if (!k || sp->count == sp->cap) {
        pthread_mutex_unlock(&sp->mu);
        free(k);
        free(copy);
        return SHALE_OOM();
    }
    memmove(sp->objs + i + 1, sp->objs + i, (sp->count - i) * sizeof *sp->objs);
    sp->objs[i].key = k;
    sp->objs[i].data = copy;   /* owned by the space from here on */
    sp->objs[i].len = len;
    sp->objs[i].mtime_ms = now_ms();
    sp->count++;
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

static shale_status mem_get_range(shale_objstore *s, const char *key, uint64_t offset,
                                  uint64_t len, bool whole, void **data, size_t *got)
{
    mem_space *sp = ((mem_store *)s)->space;
    pthread_mutex_lock(&sp->mu);
    size_t i = lower_bound(sp, key);
    if (i >= sp->count || strcmp(sp->objs[i].key, key)) {
        pthread_mutex_unlock(&sp->mu);
        return shale_err(SHALE_NOT_FOUND, "%s: object %s not found", s->uri ? s->uri : "mem",
                         key);
    }
    mem_obj *o = &sp->objs[i];
    if (whole) {
        offset = 0;
        len = o->len;
    } else if (offset > o->len) {
        pthread_mutex_unlock(&sp->mu);
        return shale_err(SHALE_INVALID_ARGUMENT, "%s: range offset %llu past end of %s (%zu bytes)",
                         s->uri ? s->uri : "mem", (unsigned long long)offset, key, o->len);
    }
    if (len > o->len - offset)
        len = o->len - offset;
    uint8_t *p = malloc(len ? len : 1);
    if (!p) {
        pthread_mutex_unlock(&sp->mu);
        return SHALE_OOM();
    }
    memcpy(p, o->data + offset, len);
    pthread_mutex_unlock(&sp->mu);
    *data = p;
    *got = len;
    return SHALE_OK;
}

static shale_status mem_head(shale_objstore *s, const char *key, uint64_t *size,
                             int64_t *mtime_ms)
{
    mem_space *sp = ((mem_store *)s)->space;
    pthread_mutex_lock(&sp->mu);
    size_t i = lower_bound(sp, key);
    shale_status rc = SHALE_NOT_FOUND;
    if (i < sp->count && !strcmp(sp->objs[i].key, key)) {
        *size = sp->objs[i].len;
        *mtime_ms = sp->objs[i].mtime_ms;
        rc = SHALE_OK;
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc)
        shale_err(rc, "%s: object %s not found", s->uri ? s->uri : "mem", key);
    return rc;
}

static shale_status mem_del(shale_objstore *s, const char *key)
{
    mem_space *sp = ((mem_store *)s)->space;
    pthread_mutex_lock(&sp->mu);
    size_t i = lower_bound(sp, key);
    if (i < sp->count && !strcmp(sp->objs[i].key, key)) {
        free(sp->objs[i].key);
        free(sp->objs[i].data);
        memmove(sp->objs + i, sp->objs + i + 1, (sp->count - i - 1) * sizeof *sp->objs);
        sp->count--;
    }
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

static shale_status mem_list(shale_objstore *s, const char *prefix, const char *cursor,
                             size_t max_keys, shale_objlist *page)
{
    mem_space *sp = ((mem_store *)s)->space;
    size_t plen = strlen(prefix);
    pthread_mutex_lock(&sp->mu);
    size_t i = lower_bound(sp, prefix);
    if (cursor && *cursor) {
        size_t j = lower_bound(sp, cursor);
        while (j < sp->count && strcmp(sp->objs[j].key, cursor) <= 0)
            j++;
        if (j > i)
            i = j;
    }
    size_t n = 0;
    while (i + n < sp->count && n < max_keys && !strncmp(sp->objs[i + n].key, prefix, plen))
        n++;
    bool more = i + n < sp->count && !strncmp(sp->objs[i + n].key, prefix, plen);
    page->items = calloc(n ? n : 1, sizeof *page->items);
    if (!page->items) {
        pthread_mutex_unlock(&sp->mu);
        return SHALE_OOM();
    }
    for (size_t k = 0; k < n; k++) {
        mem_obj *o = &sp->objs[i + k];
        page->items[k].key = xstrdup(o->key);
        page->items[k].size = o->len;
        page->items[k].mtime_ms = o->mtime_ms;
        page->count++;
        if (!page->items[k].key) {
            pthread_mutex_unlock(&sp->mu);
            shale_objlist_free(page);
            return SHALE_OOM();
        }
    }
    if (more && n > 0)
        page->next_cursor = xstrdup(page->items[n - 1].key);
    pthread_mutex_unlock(&sp->mu);
    return SHALE_OK;
}

static void space_release(mem_space *sp)
{
    pthread_mutex_lock(&g_mu);
    if (--sp->refs > 0 || sp->name) {
        /* Named spaces live for the process; only private ones are freed. */
        pthread_mutex_unlock(&g_mu);
        return;
    }
    pthread_mutex_unlock(&g_mu);
    for (size_t i = 0; i < sp->count; i++) {
        free(sp->objs[i].key);
        free(sp->objs[i].data);
    }
    free(sp->objs);
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

static void mem_close(shale_objstore *s)
{
    mem_store *m = (mem_store *)s;
    space_release(m->space);
    free(m);
}

static const objstore_ops mem_ops = {
    .scheme = "mem", .put = mem_put, .get_range = mem_get_range, .head = mem_head,
    .del = mem_del, .list = mem_list, .close = mem_close, .self_retrying = false,
};

shale_status objstore_mem_open(const char *rest, const shale_objstore_options *o,
                               shale_objstore **out)
{
    (void)o;
    mem_store *m = calloc(1, sizeof *m);
    if (!m)
        return SHALE_OOM();
    bool priv = !*rest || !strncmp(rest, "anon", 4);
    pthread_mutex_lock(&g_mu);
    mem_space *sp = NULL;
    if (!priv)
        for (sp = g_spaces; sp && strcmp(sp->name, rest); sp = sp->next)
            ;
    if (!sp) {
        sp = calloc(1, sizeof *sp);
        if (!sp || (!priv && !(sp->name = xstrdup(rest)))) {
            pthread_mutex_unlock(&g_mu);
            free(sp);
            free(m);
            return SHALE_OOM();
        }
        pthread_mutex_init(&sp->mu, NULL);
        if (!priv) {
            sp->next = g_spaces;
            g_spaces = sp;
        }
    }
    sp->refs++;
    pthread_mutex_unlock(&g_mu);
    m->base.ops = &mem_ops;
    m->space = sp;
    *out = &m->base;
    return SHALE_OK;
}
