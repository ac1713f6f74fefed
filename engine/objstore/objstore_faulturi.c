/*
 * objstore_faulturi.c -- "fault+<uri>" stores: proxies to one fault wrapper
 * per URI, shared by every handle in the process.
 *
 * The engine opens stores by URI in many places (the writer, its store
 * pool, clones, readers, GC, the agent).  A test cannot hand it a wrapped
 * handle, but it can hand it a fault URI: every open of that URI returns a
 * thin proxy to the same wrapper, so one set of rules (added through
 * shale_fault_for_uri() or the SHALE_FAULTS environment variable) sees
 * every call.  Wrappers live until the process exits; they are test tools.
 */
#include "objstore/objstore_int.h"
#include "objstore/objstore_fault.h"
#include "util/misc.h"
#include "util/status_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct shared_wrapper {
    char *uri;                 /* the whole fault URI */
    shale_objstore *wrapper;   /* fault wrapper over the inner store */
    shale_fault *ctl;
    struct shared_wrapper *next;
} shared_wrapper;

typedef struct proxy {
    shale_objstore base;
    shale_objstore *target;    /* the shared wrapper (not owned) */
} proxy;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static shared_wrapper *g_wrappers;

static shale_status shared_get(const char *uri, const shale_objstore_options *o,
                               shared_wrapper **out)
{
    pthread_mutex_lock(&g_mu);
    shared_wrapper *w = g_wrappers;
    while (w && strcmp(w->uri, uri))
        w = w->next;
    shale_status rc = SHALE_OK;
    if (!w) {
        shale_objstore *inner = NULL;
        w = calloc(1, sizeof *w);
        if (!w || !(w->uri = xstrdup(uri))) {
            rc = SHALE_OOM();
        } else if (!(rc = shale_objstore_open(uri + 6, o, &inner))) {
            rc = shale_objstore_fault_wrap(inner, &w->wrapper, &w->ctl);
            const char *env = getenv("SHALE_FAULTS");
            if (!rc && env && *env)
                rc = objstore_fault_parse(w->ctl, env);
        }
        if (rc) {
            if (w && w->wrapper)
                shale_objstore_close(w->wrapper);
            if (w)
                free(w->uri);
            free(w);
            w = NULL;
        } else {
            w->next = g_wrappers;
            g_wrappers = w;
        }
    }
    pthread_mutex_unlock(&g_mu);
    *out = w;
    return rc;
}

static shale_status px_put(shale_objstore *s, const char *key, const void *data, size_t len,
                           bool if_absent)
{
    shale_objstore *t = ((proxy *)s)->target;
    return t->ops->put(t, key, data, len, if_absent);
}

static shale_status px_get_range(shale_objstore *s, const char *key, uint64_t off,
                                 uint64_t len, bool whole, void **data, size_t *got)
{
    shale_objstore *t = ((proxy *)s)->target;
    return t->ops->get_range(t, key, off, len, whole, data, got);
}

static shale_status px_head(shale_objstore *s, const char *key, uint64_t *size,
                            int64_t *mtime_ms)
{
    shale_objstore *t = ((proxy *)s)->target;
    return t->ops->head(t, key, size, mtime_ms);
}

static shale_status px_del(shale_objstore *s, const char *key)
{
    shale_objstore *t = ((proxy *)s)->target;
    return t->ops->del(t, key);
}

static shale_status px_list(shale_objstore *s, const char *prefix, const char *cursor,
                            size_t max_keys, shale_objlist *page)
{
    shale_objstore *t = ((proxy *)s)->target;
    return t->ops->list(t, prefix, cursor, max_keys, page);
}

static shale_status px_sweep(shale_objstore *s, int64_t older_than_ms, bool dry,
                              void (*each)(void *, const char *, uint64_t), void *ctx)
{
    return objstore_sweep(((proxy *)s)->target, older_than_ms, dry, each, ctx);
}

static void px_close(shale_objstore *s)
{
    free(s);
}

/* No reader ops, as for the wrapper itself: handle reads reach the rules. */
static const objstore_ops proxy_ops = {
    .scheme = "fault", .put = px_put, .get_range = px_get_range, .head = px_head,
    .del = px_del, .list = px_list, .close = px_close, .self_retrying = false,
    .sweep = px_sweep,
};

shale_status objstore_faulturi_open(const char *uri, const shale_objstore_options *o,
                                    shale_objstore **out)
{
    shared_wrapper *w = NULL;
    shale_status rc = shared_get(uri, o, &w);
    if (rc)
        return rc;
    proxy *p = calloc(1, sizeof *p);
    if (!p)
        return SHALE_OOM();
    p->base.ops = &proxy_ops;
    p->target = w->wrapper;
    *out = &p->base;
    return SHALE_OK;
}

shale_fault *shale_fault_for_uri(const char *fault_uri, const shale_objstore_options *opts)
{
    if (!fault_uri || strncmp(fault_uri, "fault+", 6)) {
        shale_err(SHALE_INVALID_ARGUMENT, "'%s' is not a fault+ URI", fault_uri ? fault_uri : "");
        return NULL;
    }
    shale_objstore_options d;
    if (!opts) {
        shale_objstore_options_init(&d);
        opts = &d;
    }
    shared_wrapper *w = NULL;
    return shared_get(fault_uri, opts, &w) ? NULL : w->ctl;
}
