/*
 * manifest_cache.c -- manifest versions this process read or wrote, by
 * (store key, id): shale_manifest_cache in shale_objstore.h.  The store
 * key is its URI after the S3 endpoint, if any (objstore_int.h).
 *
 * Why it is sound: version N of a database is written once, by a
 * create-if-absent of manifest/<N>.manifest, and never rewritten; only a
 * GC deletes it, and only a version older than its min_age that is not
 * the latest.  So the bytes of N as read or written once are the bytes a
 * later GET of N returns while it exists.  The cache answers only reads
 * BY ID (manifest_store_load); every decision about which version is the
 * latest (the LIST of manifest/, the HEAD of the next id, the
 * create-if-absent of a new version) still goes to the store.
 *
 * Layout: a list, newest first, bounded by the bytes held; the oldest
 * entries are dropped to make room.  A split holds a handful (its
 * parent's versions and one or two per child), so a linear search is
 * enough.  One mutex: the entries are copied out under it.
 */
#include "db/manifest.h"
#include "objstore/objstore_int.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MCACHE_DEFAULT_BYTES (16u << 20)

typedef struct mc_entry {
    char *uri;
    uint64_t id;
    void *data;
    size_t len;
    struct mc_entry *next;
} mc_entry;

struct shale_manifest_cache {
    pthread_mutex_t mu;
    size_t max_bytes, bytes;
    mc_entry *head;              /* newest first */
    atomic_uint_fast64_t hits;
};

shale_status shale_manifest_cache_new(size_t max_bytes, shale_manifest_cache **out)
{
    *out = NULL;
    shale_manifest_cache *c = calloc(1, sizeof *c);
    if (!c)
        return SHALE_OOM();
    if (pthread_mutex_init(&c->mu, NULL)) {
        free(c);
        return shale_err(SHALE_NO_MEMORY, "manifest cache: pthread_mutex_init failed");
    }
    c->max_bytes = max_bytes ? max_bytes : MCACHE_DEFAULT_BYTES;
    atomic_init(&c->hits, 0);
    *out = c;
    return SHALE_OK;
}

static void mc_entry_free(mc_entry *e)
{
    free(e->uri);
    free(e->data);
    free(e);
}

void shale_manifest_cache_free(shale_manifest_cache *c)
{
    if (!c)
        return;
    for (mc_entry *e = c->head, *n; e; e = n) {
        n = e->next;
        mc_entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

uint64_t shale_manifest_cache_hits(const shale_manifest_cache *c)
{
    return c ? atomic_load(&((shale_manifest_cache *)c)->hits) : 0;
}

bool manifest_cache_get(shale_objstore *s, uint64_t id, void **data, size_t *len)
{
    shale_manifest_cache *c = s->mcache;
    if (!c)
        return false;
    const char *uri = s->mcache_key;
    bool found = false;
    pthread_mutex_lock(&c->mu);
    for (mc_entry *e = c->head; e; e = e->next)
        if (e->id == id && !strcmp(e->uri, uri)) {
            /* A copy: the caller frees it as it frees a GET's bytes. */
            if ((*data = malloc(e->len ? e->len : 1))) {
                memcpy(*data, e->data, e->len);
                *len = e->len;
                found = true;
            }
            break;
        }
    pthread_mutex_unlock(&c->mu);
    if (found)
        atomic_fetch_add(&c->hits, 1);
    return found;
}

void manifest_cache_put(shale_objstore *s, uint64_t id, const void *data, size_t len)
{
    shale_manifest_cache *c = s->mcache;
    if (!c || len > c->max_bytes)
        return;   /* best effort: a miss only costs the GET it saves */
    mc_entry *n = calloc(1, sizeof *n);
    if (!n || !(n->uri = xstrdup(s->mcache_key)) || !(n->data = malloc(len ? len : 1))) {
        if (n)
            mc_entry_free(n);
        return;
    }
    memcpy(n->data, data, len);
    n->len = len;
    n->id = id;
    pthread_mutex_lock(&c->mu);
    mc_entry **pp = &c->head;
    while (*pp) {   /* the same version again (read after its write): once */
        mc_entry *e = *pp;
        if (e->id == id && !strcmp(e->uri, n->uri)) {
            *pp = e->next;
            c->bytes -= e->len;
            mc_entry_free(e);
        } else {
            pp = &e->next;
        }
    }
    n->next = c->head;
    c->head = n;
    c->bytes += len;
    /* Over the bound: drop from the oldest end (never the new entry). */
    while (c->bytes > c->max_bytes) {
        mc_entry **last = &c->head->next, *prev = c->head;
        if (!*last)
            break;
        while ((*last)->next) {
            prev = *last;
            last = &(*last)->next;
        }
        c->bytes -= (*last)->len;
        mc_entry_free(*last);
        prev->next = NULL;
    }
    pthread_mutex_unlock(&c->mu);
}
