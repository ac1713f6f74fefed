/*
 * gc.c -- garbage collection of one database's own store (and WAL store).
 *
 * One pass, in this order:
 *   1. expired checkpoints leave the manifest (a manifest update);
 *   2. WAL SSTs: id <= replay_after_wal_id of the latest version, and not in
 *      the gap (replay_after, next_wal) of any live checkpoint's pinned
 *      version;
 *   3. compacted SSTs of this store that neither the latest version nor any
 *      pinned version names (handles whose store_uri is this store or
 *      none; a parent's SSTs are never ours to delete);
 *   4. manifest versions that are neither the latest nor pinned;
 *   5. temporaries a killed put left (file://: ".tmp-*"), never listed.
 * Every deletion also needs the object to be older than min_age_ms (by its
 * modification time, and for SSTs by the time in their ULID): a writer may
 * have written an SST it has not committed yet.  Only keys under wal/,
 * compacted/ and manifest/ that parse as Shale objects (paths.h, strictly)
 * are considered; every store is the pass's db_env's (env.h).  A
 * pinned version that cannot be read stops the pass before anything is
 * deleted.
 */
#include "db/checkpoint_int.h"
#include "db/env.h"
#include "db/wal.h"
#include "objstore/objstore_int.h"   /* objstore_sweep */
#include "util/misc.h"
#include "util/status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void shale_gc_options_init(shale_gc_options *g)
{
    memset(g, 0, sizeof *g);
    g->min_age_ms = 300000;
}

typedef struct gc_run {
    const shale_gc_options *g;
    shale_gc_result res;
    shale_objstore *s, *w;
    manifest *latest;
    manifest **pinned;
    size_t npinned;
    int64_t now;
} gc_run;

static shale_status expire_mut(manifest *m, void *arg)
{
    int64_t now = *(int64_t *)arg;
    size_t w = 0, removed = 0;
    for (size_t i = 0; i < m->checkpoint_count; i++) {
        checkpoint_rec *c = &m->checkpoints[i];
        if (c->expire_time_ms && c->expire_time_ms < now) {
            free(c->name);
            removed++;
        } else {
            m->checkpoints[w++] = *c;
        }
    }
    m->checkpoint_count = w;
    return removed ? SHALE_OK : SHALE_NOT_FOUND;  /* nothing to write */
}

static bool old_enough(const gc_run *r, int64_t mtime_ms)
{
    return r->now - mtime_ms >= (int64_t)r->g->min_age_ms;
}

static shale_status drop(gc_run *r, shale_objstore *s, const shale_objinfo *o,
                         const char *reason, uint64_t *counter)
{
    if (r->g->on_object)
        r->g->on_object(r->g->ctx, shale_objstore_uri(s), o->key, reason);
    (*counter)++;
    r->res.bytes_deleted += o->size;
    if (r->g->dry_run)
        return SHALE_OK;
    return shale_objstore_delete(s, o->key);
}

/* 5. Temporaries: what a put killed between its write and its link left
 * (file://: ".tmp-*" beside the key), which no list shows and nothing
 * else removes.  Same min age; counted in bytes_deleted and reported to
 * on_object, not in a counter of their own (shale_gc_result's layout is
 * fixed within an ABI version). */
typedef struct sweep_arg {
    gc_run *r;
    const char *uri;
} sweep_arg;

static void swept(void *ctx, const char *rel, uint64_t size)
{
    sweep_arg *a = ctx;
    if (a->r->g->on_object)
        a->r->g->on_object(a->r->g->ctx, a->uri, rel, "temporary of an interrupted write");
    a->r->res.bytes_deleted += size;
}

static shale_status gc_temporaries(gc_run *r, shale_objstore *s)
{
    sweep_arg a = {r, shale_objstore_uri(s)};
    shale_status rc = objstore_sweep(s, r->now - (int64_t)r->g->min_age_ms, r->g->dry_run,
                                     swept, &a);
    if (rc)
        shale_err_prefix(rc, "GC: sweeping temporaries");
    return rc;
}

static bool names_sst(const manifest *m, const char *id, const char *uri)
{
    for (size_t i = 0; i < m->l0_count; i++)
        if (!strcmp(m->l0[i].id, id) && (!m->l0[i].store_uri || !strcmp(m->l0[i].store_uri, uri)))
            return true;
    for (size_t r = 0; r < m->run_count; r++)
        for (size_t i = 0; i < m->runs[r].count; i++) {
            const sst_handle *h = &m->runs[r].ssts[i];
            if (!strcmp(h->id, id) && (!h->store_uri || !strcmp(h->store_uri, uri)))
                return true;
        }
    return false;
}

static shale_status gc_wal(gc_run *r)
{
    shale_objstore *w = r->w ? r->w : r->s;
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(w, PATH_WAL_DIR, &l);
    for (size_t i = 0; !rc && i < l.count; i++) {
        uint64_t id;
        if (!wal_key_parse(l.items[i].key, &id))
            continue;
        bool keep = id > r->latest->replay_after_wal_id || !old_enough(r, l.items[i].mtime_ms);
        for (size_t p = 0; !keep && p < r->npinned; p++)
            keep = id > r->pinned[p]->replay_after_wal_id && id < r->pinned[p]->next_wal_sst_id;
        if (!keep)
            rc = drop(r, w, &l.items[i], "WAL SST at or below replay_after_wal_id",
                      &r->res.wal_deleted);
    }
    shale_objlist_free(&l);
    return rc;
}

static shale_status gc_ssts(gc_run *r)
{
    const char *uri = shale_objstore_uri(r->s);
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(r->s, PATH_SST_DIR, &l);
    for (size_t i = 0; !rc && i < l.count; i++) {
        char id[PATH_ULID_LEN + 1];
        if (!sst_key_parse(l.items[i].key, id))
            continue;
        int64_t born = ulid_time_ms(id);
        if (born < 0 || !old_enough(r, born) || !old_enough(r, l.items[i].mtime_ms))
            continue;
        bool keep = names_sst(r->latest, id, uri);
        for (size_t p = 0; !keep && p < r->npinned; p++)
            keep = names_sst(r->pinned[p], id, uri);
        if (!keep)
            rc = drop(r, r->s, &l.items[i], "SST no live manifest version names",
                      &r->res.ssts_deleted);
    }
    shale_objlist_free(&l);
    return rc;
}

static shale_status gc_manifests(gc_run *r)
{
    shale_objlist l;
    shale_status rc = shale_objstore_list_all(r->s, PATH_MANIFEST_DIR, &l);
    /* A dry run that found expired checkpoints did not write the version
     * that would drop them: report as if it had (the current latest is then
     * superseded, and the expired checkpoints pin nothing). */
    bool superseded = r->g->dry_run && r->res.checkpoints_removed;
    for (size_t i = 0; !rc && i < l.count; i++) {
        uint64_t id;
        if (!manifest_key_parse(l.items[i].key, &id) || id > r->latest->id ||
            (id == r->latest->id && !superseded) || !old_enough(r, l.items[i].mtime_ms))
            continue;
        bool pinned = false;
        for (size_t c = 0; c < r->latest->checkpoint_count && !pinned; c++) {
            const checkpoint_rec *cp = &r->latest->checkpoints[c];
            if (superseded && cp->expire_time_ms && cp->expire_time_ms < r->now)
                continue;
            pinned = cp->manifest_id == id;
        }
        if (!pinned)
            rc = drop(r, r->s, &l.items[i], "manifest version no checkpoint pins",
                      &r->res.manifests_deleted);
    }
    shale_objlist_free(&l);
    return rc;
}

shale_status shale_gc(const char *uri, const shale_options *opts, const shale_gc_options *g,
                      shale_gc_result *out)
{
    shale_gc_options gd;
    if (!g) {
        shale_gc_options_init(&gd);
        g = &gd;
    }
    gc_run r;
    memset(&r, 0, sizeof r);
    r.g = g;
    r.now = now_ms();
    db_env *env = NULL;
    shale_status rc = uri ? db_env_open(uri, opts, &env)
                          : shale_err(SHALE_INVALID_ARGUMENT, "gc: store URI is NULL");
    const shale_options *o = rc ? NULL : db_env_options(env);
    if (!rc)
        r.s = db_env_main(env);
    if (!rc)
        rc = manifest_store_load_latest(r.s, 0, &r.latest);
    for (size_t i = 0; !rc && i < r.latest->checkpoint_count; i++) {
        const checkpoint_rec *c = &r.latest->checkpoints[i];
        if (c->expire_time_ms && c->expire_time_ms < r.now) {
            r.res.checkpoints_removed++;
            if (g->on_object)
                g->on_object(g->ctx, uri, c->id, "expired checkpoint");
        }
    }
    if (!rc && !g->dry_run && r.res.checkpoints_removed) {
        rc = manifest_store_update(r.s, &r.latest, expire_mut, &r.now);
        if (rc == SHALE_NOT_FOUND)
            rc = SHALE_OK;  /* someone else removed them */
    }
    if (!rc) {
        r.pinned = calloc(r.latest->checkpoint_count + 1, sizeof *r.pinned);
        if (!r.pinned)
            rc = SHALE_OOM();
    }
    for (size_t i = 0; !rc && i < r.latest->checkpoint_count; i++) {
        const checkpoint_rec *c = &r.latest->checkpoints[i];
        if (g->dry_run && c->expire_time_ms && c->expire_time_ms < r.now)
            continue;
        rc = c->manifest_id == r.latest->id
                 ? ((r.pinned[r.npinned] = manifest_dup(r.latest)) ? SHALE_OK : SHALE_OOM())
                 : manifest_store_load(r.s, c->manifest_id, &r.pinned[r.npinned]);
        if (rc)
            shale_err_prefix(rc, "gc: checkpoint %s pins manifest %llu", c->id,
                             (unsigned long long)c->manifest_id);
        else
            r.npinned++;
    }
    const char *wuri = o && o->wal_store_uri ? o->wal_store_uri
                       : r.latest                ? r.latest->wal_store_uri
                                                 : NULL;
    if (!rc && wuri && strcmp(wuri, uri))
        rc = db_env_store(env, wuri, &r.w);
    if (!rc)
        rc = gc_wal(&r);
    if (!rc)
        rc = gc_ssts(&r);
    if (!rc)
        rc = gc_manifests(&r);
    if (!rc)
        rc = gc_temporaries(&r, r.s);
    if (!rc && r.w)
        rc = gc_temporaries(&r, r.w);
    for (size_t i = 0; i < r.npinned; i++)
        manifest_free(r.pinned[i]);
    free(r.pinned);
    manifest_free(r.latest);
    db_env_unref(env);   /* closes r.s and r.w */
    if (out)
        *out = r.res;
    return rc;
}
